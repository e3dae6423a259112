//! Header names: resolved once at index time, compact forms included (RFC 3261 §7.3.3,
//! RFC 3265 §7.2 `o`/`u`, RFC 3515 `r`, RFC 3892 `b`, RFC 4028 `x`, RFC 8224 `y`).

macro_rules! header_names {
    ($( $variant:ident => $canon:literal $(, $compact:literal)? ;)*) => {
        /// A header field name the edge knows, or [`HeaderName::Other`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum HeaderName {
            $(
                #[doc = concat!("`", $canon, "`")]
                $variant,
            )*
            /// Any other header; compare its name bytes.
            Other,
        }

        /// Every known name, in declaration order.
        const ALL: &[HeaderName] = &[$(HeaderName::$variant,)*];

        impl HeaderName {
            /// The canonical spelling, as written when serializing.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(HeaderName::$variant => $canon,)*
                    HeaderName::Other => "",
                }
            }

            /// Resolves a header name, case-insensitively, compact forms included.
            pub fn from_bytes(name: &[u8]) -> HeaderName {
                if !crate::lex::is_token_str(name) {
                    return HeaderName::Other;
                }
                HeaderName::from_token(name)
            }

            /// [`HeaderName::from_bytes`] without the `token` check: a known name resolves
            /// from any bytes by one perfect-hash lookup by (length, first and last letter)
            /// and one exact case-insensitive comparison; anything else is `Other`.
            #[inline]
            pub(crate) fn from_token(name: &[u8]) -> HeaderName {
                let (Some(&first), Some(&last)) = (name.first(), name.last()) else {
                    return HeaderName::Other;
                };
                if name.len() == 1 {
                    // `| 0x20` maps only `X` and `x` onto the letter `x`.
                    return match first | 0x20 {
                        $($( $compact => HeaderName::$variant, )?)*
                        _ => HeaderName::Other,
                    };
                }
                let (h, canon) = NAME_TABLE[slot(name.len(), first, last)];
                if crate::lex::eq_token_ci(canon, name) {
                    h
                } else {
                    HeaderName::Other
                }
            }

            pub(crate) fn bad_reason(self) -> &'static str {
                match self {
                    $(HeaderName::$variant => concat!("Malformed ", $canon, " Header"),)*
                    HeaderName::Other => "Malformed Header",
                }
            }

            pub(crate) fn missing_reason(self) -> &'static str {
                match self {
                    $(HeaderName::$variant => concat!("Missing ", $canon, " Header"),)*
                    HeaderName::Other => "Missing Header",
                }
            }

            pub(crate) fn duplicate_reason(self) -> &'static str {
                match self {
                    $(HeaderName::$variant => concat!("Duplicate ", $canon, " Header"),)*
                    HeaderName::Other => "Duplicate Header",
                }
            }
        }
    };
}

header_names! {
    Via => "Via", b'v';
    From => "From", b'f';
    To => "To", b't';
    CallId => "Call-ID", b'i';
    CSeq => "CSeq";
    MaxForwards => "Max-Forwards";
    Contact => "Contact", b'm';
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Route => "Route";
    RecordRoute => "Record-Route";
    Path => "Path";
    ContentLength => "Content-Length", b'l';
    ContentType => "Content-Type", b'c';
    ContentEncoding => "Content-Encoding", b'e';
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    Supported => "Supported", b'k';
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Allow => "Allow";
    AllowEvents => "Allow-Events", b'u';
    Accept => "Accept";
    UserAgent => "User-Agent";
    Server => "Server";
    Event => "Event", b'o';
    Subject => "Subject", b's';
    ReferTo => "Refer-To", b'r';
    ReferredBy => "Referred-By", b'b';
    SessionExpires => "Session-Expires", b'x';
    Identity => "Identity", b'y';
    Date => "Date";
    RetryAfter => "Retry-After";
    PAssertedIdentity => "P-Asserted-Identity";
    Timestamp => "Timestamp";
}

const SLOTS: usize = 128;

/// A perfect hash of the known names (checked at compile time): `| 0x20` folds the case of
/// letters; for other token bytes it is just a consistent mapping.
const fn slot(len: usize, first: u8, last: u8) -> usize {
    (len + (first | 0x20) as usize * 11 + (last | 0x20) as usize * 23) % SLOTS
}

/// Known names by [`slot`], with their canonical spelling; built at compile time, which fails
/// if two names share a slot. Empty slots have an empty name, which matches nothing.
static NAME_TABLE: [(HeaderName, &[u8]); SLOTS] = {
    let mut t: [(HeaderName, &[u8]); SLOTS] = [(HeaderName::Other, b""); SLOTS];
    let mut i = 0;
    while i < ALL.len() {
        let name = ALL[i].as_str().as_bytes();
        let s = slot(name.len(), name[0], name[name.len() - 1]);
        assert!(t[s].1.is_empty(), "header name hash collision");
        t[s] = (ALL[i], name);
        i += 1;
    }
    t
};

/// Candidates per first letter for [`HeaderName::known_prefix`].
const PER_LETTER: usize = 6;

/// Known names (length, name, spelling) by their folded first letter; built at compile time,
/// which fails if a letter has more than [`PER_LETTER`] names. Unused entries have length 0.
static BY_FIRST: [[(u8, HeaderName, &[u8]); PER_LETTER]; 26] = {
    let mut t: [[(u8, HeaderName, &[u8]); PER_LETTER]; 26] =
        [[(0, HeaderName::Other, b""); PER_LETTER]; 26];
    let mut i = 0;
    while i < ALL.len() {
        let name = ALL[i].as_str().as_bytes();
        let k = ((name[0] | 0x20) - b'a') as usize;
        let mut j = 0;
        while t[k][j].0 != 0 {
            j += 1;
            assert!(
                j < PER_LETTER,
                "too many header names with one first letter"
            );
        }
        t[k][j] = (name.len() as u8, ALL[i], name);
        i += 1;
    }
    t
};

impl HeaderName {
    /// The known name that `line` starts with when a colon follows it directly (`Via:`,
    /// `v:`), and its length: the indexer's fast path, which needs no search for the colon.
    /// Any other shape (`Via :`, unknown names) gives `None` and takes the general path,
    /// which finds the same name.
    #[inline]
    pub(crate) fn known_prefix(line: &[u8]) -> Option<(HeaderName, usize)> {
        let first = *line.first()?;
        if line.get(1) == Some(&b':') {
            let h = HeaderName::from_token(&line[..1]);
            return (h != HeaderName::Other).then_some((h, 1));
        }
        let candidates = BY_FIRST.get((first | 0x20).wrapping_sub(b'a') as usize)?;
        for &(len, h, canon) in candidates {
            let len = len as usize;
            if len == 0 {
                break;
            }
            if line.get(len) == Some(&b':') && crate::lex::eq_token_ci(canon, &line[..len]) {
                return Some((h, len));
            }
        }
        None
    }

    /// Headers whose value is a comma-separated list that may also be split over several
    /// header lines (RFC 3261 §7.3.1). Contact is one too, but `*` and quoted display names
    /// make its splitting rule the general one in [`crate::list`].
    pub fn is_list(self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Path
                | HeaderName::Allow
                | HeaderName::AllowEvents
                | HeaderName::Supported
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Unsupported
                | HeaderName::Accept
        )
    }

    /// Headers that must appear at most once (RFC 3261 §7.3.1 and §20).
    pub fn is_single(self) -> bool {
        matches!(
            self,
            HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::Expires
        )
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName;

    #[test]
    fn names_and_compact_forms() {
        assert_eq!(HeaderName::from_bytes(b"via"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"V"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"cAlL-iD"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"i"), HeaderName::CallId);
        for (c, h) in [
            (b"m", HeaderName::Contact),
            (b"e", HeaderName::ContentEncoding),
            (b"l", HeaderName::ContentLength),
            (b"c", HeaderName::ContentType),
            (b"f", HeaderName::From),
            (b"s", HeaderName::Subject),
            (b"k", HeaderName::Supported),
            (b"t", HeaderName::To),
            (b"o", HeaderName::Event),
            (b"u", HeaderName::AllowEvents),
            (b"r", HeaderName::ReferTo),
            (b"b", HeaderName::ReferredBy),
            (b"x", HeaderName::SessionExpires),
            (b"y", HeaderName::Identity),
        ] {
            assert_eq!(HeaderName::from_bytes(c), h);
        }
        assert_eq!(HeaderName::from_bytes(b"q"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"X-Custom"), HeaderName::Other);
        assert_eq!(HeaderName::Via.bad_reason(), "Malformed Via Header");
        for &h in super::ALL {
            assert_eq!(HeaderName::from_bytes(h.as_str().as_bytes()), h);
            let upper = h.as_str().to_ascii_uppercase();
            assert_eq!(HeaderName::from_bytes(upper.as_bytes()), h);
        }
        assert_eq!(HeaderName::from_bytes(b"Viaa"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b""), HeaderName::Other);
        for &h in super::ALL {
            let line = format!("{}: x", h.as_str().to_ascii_uppercase());
            let len = h.as_str().len();
            assert_eq!(HeaderName::known_prefix(line.as_bytes()), Some((h, len)));
        }
        assert_eq!(
            HeaderName::known_prefix(b"v: x"),
            Some((HeaderName::Via, 1))
        );
        assert_eq!(HeaderName::known_prefix(b"Via : x"), None);
        assert_eq!(HeaderName::known_prefix(b"X-Via: x"), None);
        assert_eq!(HeaderName::known_prefix(b"q: x"), None);
        assert_eq!(HeaderName::known_prefix(b"Call\rID: x"), None);
    }
}
