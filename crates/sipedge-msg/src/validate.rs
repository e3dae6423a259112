//! The syntax checks every request and response must pass before a proxy or registrar acts
//! on it (RFC 3261 §8.2, §16.3 step 1, §18.1.2), and how to answer when one fails.

use crate::addr::{Contact, NameAddr};
use crate::error::{ParseError, ParseErrorKind as K, Reply};
use crate::fields::CSeq;
use crate::header::HeaderName;
use crate::message::Message;
use crate::uri::{Scheme, Uri};
use crate::via::Via;

/// Headers every request and response carries (RFC 3261 §8.1.1), in discriminant order
/// (`HeaderName as usize` is the index: see the test below).
const MANDATORY: [HeaderName; 5] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
];

/// What [`Message::validated`] parsed on its way, kept so that nobody parses it again: the
/// Request-URI, the top Via, From, To, Call-ID, CSeq, Max-Forwards, Expires and the first
/// Contact. Every field borrows the message's bytes; the values are the ones the accessors
/// of [`Message`] return (`top_via()`, `to()`, …).
#[derive(Debug, Clone, Copy)]
pub struct Validated<'a> {
    /// The Request-URI (`None` for a response).
    pub request_uri: Option<Uri<'a>>,
    /// The topmost Via (RFC 3261 §20.42).
    pub top_via: Via<'a>,
    /// From (RFC 3261 §20.20).
    pub from: NameAddr<'a>,
    /// To (RFC 3261 §20.39).
    pub to: NameAddr<'a>,
    /// Call-ID (RFC 3261 §20.8).
    pub call_id: &'a [u8],
    /// CSeq (RFC 3261 §20.16).
    pub cseq: CSeq<'a>,
    /// Max-Forwards when present (RFC 3261 §20.22).
    pub max_forwards: Option<u8>,
    /// Expires when present (RFC 3261 §20.19), saturating as [`Message::expires`] does.
    pub expires: Option<u32>,
    /// The first Contact value, when there is one (RFC 3261 §20.10).
    pub first_contact: Option<Contact<'a>>,
    /// How many Contact values the message has, across all its Contact lines.
    pub contact_count: u32,
}

impl<'a> Validated<'a> {
    /// Every Contact of `msg` (the message this was made from), as [`Message::contacts`]
    /// gives them, without parsing the first one again.
    pub fn contacts<'m>(
        &self,
        msg: &'m Message<'a>,
    ) -> impl Iterator<Item = Result<Contact<'a>, ParseError>> + 'm {
        self.first_contact.map(Ok).into_iter().chain(
            // The first is not parsed again.
            msg.contacts_after(usize::from(self.first_contact.is_some())),
        )
    }

    /// Every Via of `msg` (the message this was made from), top first, as [`Message::vias`]
    /// gives them, without parsing the top one again.
    pub fn vias<'m>(
        &self,
        msg: &'m Message<'a>,
    ) -> impl Iterator<Item = Result<Via<'a>, ParseError>> + 'm {
        std::iter::once(Ok(self.top_via)).chain(msg.vias_after(1))
    }

    /// True when To carries a tag (RFC 3261 §8.2.6.2: a response then keeps it).
    pub fn to_has_tag(&self) -> bool {
        self.to.tag().is_some()
    }
}

impl<'a> Message<'a> {
    /// Checks the message the way a stateful proxy and registrar need it checked:
    ///
    /// * defects found while indexing (start line, header lines, Content-Length framing);
    /// * the Request-URI parses; a SIP/SIPS Request-URI carries no `?headers`
    ///   (RFC 3261 §19.1.1 Table 1 — RFC 4475 §3.1.2.11 `escruri`);
    /// * Via, From, To, Call-ID and CSeq are present, single where single, and well-formed;
    /// * the CSeq method equals the request method (RFC 3261 §8.1.1.5);
    /// * Max-Forwards (0–255), Expires, Contact, Route, Record-Route and Content-Type, when
    ///   present, follow their grammar.
    ///
    /// Other headers are not inspected: a proxy forwards what it does not understand.
    /// [`Message::validated`] runs the same checks and keeps what they parsed.
    pub fn validate(&self) -> Result<(), ParseError> {
        self.validated().map(|_| ())
    }

    /// [`Message::validate`], returning the fields it parsed ([`Validated`]) so the caller
    /// need not parse them again. The checks, their order and their errors are the same.
    pub fn validated(&self) -> Result<Validated<'a>, ParseError> {
        if let Some(defect) = self.defect {
            return Err(defect);
        }
        let (request_uri, m) = if let Some(method) = self.method() {
            let uri = self.request_uri()?;
            if matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) && uri.headers().is_some() {
                return Err(ParseError::new(
                    K::BadRequestUri,
                    self.request_uri_span_start(),
                ));
            }
            let m = self.check_mandatory()?;
            if m.cseq.method != method {
                let at = self.header(HeaderName::CSeq).map_or(0, |v| self.offset(v));
                return Err(ParseError::new(K::CSeqMethodMismatch, at));
            }
            (Some(uri), m)
        } else {
            (None, self.check_mandatory()?)
        };
        let max_forwards = self.max_forwards()?;
        let expires = self.expires()?;
        let mut first_contact = None;
        let mut contact_count = 0u32;
        for c in self.contacts() {
            let c = c?;
            if contact_count == 0 {
                first_contact = Some(c);
            }
            contact_count += 1;
        }
        for r in self.routes().chain(self.record_routes()) {
            r?;
        }
        self.content_type()?;
        Ok(Validated {
            request_uri,
            top_via: m.top_via,
            from: m.from,
            to: m.to,
            call_id: m.call_id,
            cseq: m.cseq,
            max_forwards,
            expires,
            first_contact,
            contact_count,
        })
    }

    fn check_mandatory(&self) -> Result<Mandatory<'a>, ParseError> {
        // One pass over the index counts all five (they are the first header names).
        let mut counts = [0usize; MANDATORY.len()];
        for h in self.headers.iter() {
            if let Some(c) = counts.get_mut(h.name as usize) {
                *c += 1;
            }
        }
        for (name, count) in MANDATORY.into_iter().zip(counts) {
            match count {
                0 => return Err(ParseError::new(K::MissingHeader(name), self.body.start)),
                1 => {}
                _ if name.is_single() => {
                    let second = self.header_values(name).nth(1).unwrap_or_default();
                    return Err(ParseError::new(
                        K::DuplicateHeader(name),
                        self.offset(second),
                    ));
                }
                _ => {}
            }
        }
        // An empty Via line holds no value at all (found by fuzzing): the top one must exist.
        let top_via = self.top_via()?;
        // The top Via is the first item of `vias()` (its line has an item, or `top_via`
        // failed): only the others are left to check.
        for v in self.vias_after(1) {
            v?;
        }
        Ok(Mandatory {
            top_via,
            from: self.from()?,
            to: self.to()?,
            call_id: self.call_id()?,
            cseq: self.cseq()?,
        })
    }

    fn offset(&self, v: &[u8]) -> u32 {
        crate::lex::offset_in(self.buf, v)
    }

    fn request_uri_span_start(&self) -> u32 {
        self.request_uri_span().map_or(0, |s| s.start)
    }

    /// How to answer this message given a failed check. Responses are never answered
    /// (RFC 3261 §18.1.2 discards them), nor ACKs (RFC 3261 §17), nor a request without any
    /// Via (a response could not be matched to it). A malformed top Via still gets its 400
    /// (RFC 4475 §3.1.2.1 `badinv01`), sent back to the source address; missing
    /// From/To/Call-ID/CSeq do not prevent the answer either (RFC 4475 §3.3.1 `insuf`): the
    /// response copies whichever of them exist.
    pub fn error_reply(&self, err: ParseError) -> Reply {
        if self.is_response()
            || matches!(self.method(), Some(crate::Method::Ack))
            || self.header(HeaderName::Via).is_none()
        {
            return Reply::Drop;
        }
        err.reply()
    }
}

/// The mandatory headers, parsed by [`Message::check_mandatory`].
struct Mandatory<'a> {
    top_via: Via<'a>,
    from: NameAddr<'a>,
    to: NameAddr<'a>,
    call_id: &'a [u8],
    cseq: CSeq<'a>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn mandatory_names_are_the_first_discriminants() {
        for (i, name) in super::MANDATORY.into_iter().enumerate() {
            assert_eq!(name as usize, i, "{name:?}");
        }
    }
}
