//! The syntax checks every request and response must pass before a proxy or registrar acts
//! on it (RFC 3261 §8.2, §16.3 step 1, §18.1.2), and how to answer when one fails.

use crate::error::{ParseError, ParseErrorKind as K, Reply};
use crate::header::HeaderName;
use crate::message::Message;
use crate::uri::Scheme;

/// Headers every request and response carries (RFC 3261 §8.1.1).
const MANDATORY: [HeaderName; 5] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
];

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
    pub fn validate(&self) -> Result<(), ParseError> {
        if let Some(defect) = self.defect {
            return Err(defect);
        }
        if let Some(method) = self.method() {
            let uri = self.request_uri()?;
            if matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) && uri.headers().is_some() {
                return Err(ParseError::new(
                    K::BadRequestUri,
                    self.request_uri_span_start(),
                ));
            }
            let cseq = self.check_mandatory()?;
            if cseq.method != method {
                let at = self.header(HeaderName::CSeq).map_or(0, |v| self.offset(v));
                return Err(ParseError::new(K::CSeqMethodMismatch, at));
            }
        } else {
            self.check_mandatory()?;
        }
        self.max_forwards()?;
        self.expires()?;
        for c in self.contacts() {
            c?;
        }
        for r in self.routes().chain(self.record_routes()) {
            r?;
        }
        self.content_type()?;
        Ok(())
    }

    fn check_mandatory(&self) -> Result<crate::fields::CSeq<'a>, ParseError> {
        for name in MANDATORY {
            match self.count(name) {
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
        self.top_via()?;
        for v in self.vias() {
            v?;
        }
        self.from()?;
        self.to()?;
        self.call_id()?;
        self.cseq()
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
