//! Parse errors: small `Copy` values that say what was wrong, where, and how to answer it.

use crate::header::HeaderName;

/// What went wrong while parsing. Each kind maps to the SIP reply a server sends for it
/// (see [`ParseErrorKind::reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The datagram or stream message exceeds the configured maximum size.
    MessageTooLarge,
    /// More header lines than the configured maximum.
    TooManyHeaders,
    /// Bytes that are not a SIP message at all (no start line could be found).
    NotSip,
    /// The start line does not follow RFC 3261 §7.1 / §7.2 (e.g. extra or trailing SP).
    BadStartLine,
    /// The method is not a `token`.
    BadMethod,
    /// The Request-URI is malformed (RFC 3261 §25.1 `Request-URI`).
    BadRequestUri,
    /// The Request-URI is longer than the configured maximum (414).
    RequestUriTooLong,
    /// A SIP version other than 2.0 (RFC 3261 §8.2.2.2 → 505).
    UnsupportedVersion,
    /// A status code that is not three digits (responses are dropped).
    BadStatusCode,
    /// A header line with no `name:` (RFC 3261 §7.3).
    BadHeaderLine,
    /// The header section never ends with an empty line (stream transports).
    UnterminatedHeaders,
    /// A header field whose value does not follow its grammar.
    BadHeader(HeaderName),
    /// A header field that every request or response must carry is missing (RFC 3261 §8.1.1).
    MissingHeader(HeaderName),
    /// A single-valued header field appears more than once.
    DuplicateHeader(HeaderName),
    /// Content-Length declares more bytes than the datagram holds (RFC 3261 §18.3).
    BodyTruncated,
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    CSeqMethodMismatch,
    /// Content-Length is required on stream transports (RFC 3261 §18.3).
    MissingContentLength,
}

/// How a server answers a message that failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Send this status code with this reason phrase.
    Status(u16, &'static str),
    /// No answer is possible or wise: count it and drop it.
    Drop,
}

impl ParseErrorKind {
    /// The answer to a *request* that failed with this error. Responses that fail to parse are
    /// always dropped (RFC 3261 §18.1.2: a malformed response is discarded).
    pub fn reply(self) -> Reply {
        use ParseErrorKind::*;
        match self {
            MessageTooLarge => Reply::Status(513, "Message Too Large"),
            TooManyHeaders => Reply::Status(400, "Too Many Header Fields"),
            NotSip => Reply::Drop,
            BadStartLine => Reply::Status(400, "Malformed Request-Line"),
            BadMethod => Reply::Status(400, "Malformed Method"),
            BadRequestUri => Reply::Status(400, "Malformed Request-URI"),
            RequestUriTooLong => Reply::Status(414, "Request-URI Too Long"),
            UnsupportedVersion => Reply::Status(505, "Version Not Supported"),
            BadStatusCode => Reply::Drop,
            BadHeaderLine => Reply::Status(400, "Malformed Header Line"),
            UnterminatedHeaders => Reply::Status(400, "Unterminated Header Section"),
            BadHeader(name) => Reply::Status(400, name.bad_reason()),
            MissingHeader(name) => Reply::Status(400, name.missing_reason()),
            DuplicateHeader(name) => Reply::Status(400, name.duplicate_reason()),
            BodyTruncated => Reply::Status(400, "Content-Length Exceeds Message"),
            CSeqMethodMismatch => Reply::Status(400, "CSeq Method Mismatch"),
            MissingContentLength => Reply::Status(400, "Missing Content-Length"),
        }
    }

    /// Number of distinct [`ParseErrorKind::index`] values.
    pub const COUNT: usize = 17;

    /// A dense index (0..COUNT) for per-kind counters; header-specific kinds share one slot.
    pub fn index(self) -> usize {
        use ParseErrorKind::*;
        match self {
            MessageTooLarge => 0,
            TooManyHeaders => 1,
            NotSip => 2,
            BadStartLine => 3,
            BadMethod => 4,
            BadRequestUri => 5,
            RequestUriTooLong => 6,
            UnsupportedVersion => 7,
            BadStatusCode => 8,
            BadHeaderLine => 9,
            UnterminatedHeaders => 10,
            BadHeader(_) => 11,
            MissingHeader(_) => 12,
            DuplicateHeader(_) => 13,
            BodyTruncated => 14,
            CSeqMethodMismatch => 15,
            MissingContentLength => 16,
        }
    }

    /// The label of each index, in index order.
    pub const LABELS: [&'static str; Self::COUNT] = [
        "message_too_large",
        "too_many_headers",
        "not_sip",
        "bad_start_line",
        "bad_method",
        "bad_request_uri",
        "request_uri_too_long",
        "unsupported_version",
        "bad_status_code",
        "bad_header_line",
        "unterminated_headers",
        "bad_header",
        "missing_header",
        "duplicate_header",
        "body_truncated",
        "cseq_method_mismatch",
        "missing_content_length",
    ];

    /// A short stable label, for metrics (`sipedge_parse_errors_total{kind=...}`).
    pub fn label(self) -> &'static str {
        use ParseErrorKind::*;
        match self {
            MessageTooLarge => "message_too_large",
            TooManyHeaders => "too_many_headers",
            NotSip => "not_sip",
            BadStartLine => "bad_start_line",
            BadMethod => "bad_method",
            BadRequestUri => "bad_request_uri",
            RequestUriTooLong => "request_uri_too_long",
            UnsupportedVersion => "unsupported_version",
            BadStatusCode => "bad_status_code",
            BadHeaderLine => "bad_header_line",
            UnterminatedHeaders => "unterminated_headers",
            BadHeader(_) => "bad_header",
            MissingHeader(_) => "missing_header",
            DuplicateHeader(_) => "duplicate_header",
            BodyTruncated => "body_truncated",
            CSeqMethodMismatch => "cseq_method_mismatch",
            MissingContentLength => "missing_content_length",
        }
    }
}

/// A parse failure: what, and the byte offset in the message where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// What was wrong.
    pub kind: ParseErrorKind,
    /// Byte offset into the message buffer.
    pub at: u32,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, at: u32) -> Self {
        Self { kind, at }
    }

    /// The answer to a request that failed with this error (see [`ParseErrorKind::reply`]).
    pub fn reply(self) -> Reply {
        self.kind.reply()
    }
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.kind.reply() {
            Reply::Status(code, reason) => write!(f, "{code} {reason} at byte {}", self.at),
            Reply::Drop => write!(f, "{} at byte {}", self.kind.label(), self.at),
        }
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::ParseErrorKind;
    use crate::HeaderName;

    #[test]
    fn labels_match_indices() {
        for k in [
            ParseErrorKind::MessageTooLarge,
            ParseErrorKind::NotSip,
            ParseErrorKind::BadHeader(HeaderName::Via),
            ParseErrorKind::MissingHeader(HeaderName::CSeq),
            ParseErrorKind::MissingContentLength,
            ParseErrorKind::CSeqMethodMismatch,
        ] {
            assert_eq!(ParseErrorKind::LABELS[k.index()], k.label());
        }
    }
}
