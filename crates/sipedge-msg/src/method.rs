//! Request methods (RFC 3261 §7.1 and the extensions a SIP edge meets every day).

use crate::lex::is_token_str;

/// A request method. Methods the edge does not know are carried as their bytes, so a proxy
/// can forward them (RFC 3261 §8.2.1, §16.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// RFC 3261
    Invite,
    /// RFC 3261
    Ack,
    /// RFC 3261
    Bye,
    /// RFC 3261
    Cancel,
    /// RFC 3261
    Register,
    /// RFC 3261
    Options,
    /// RFC 3262
    Prack,
    /// RFC 6665
    Subscribe,
    /// RFC 6665
    Notify,
    /// RFC 3903
    Publish,
    /// RFC 6086
    Info,
    /// RFC 3515
    Refer,
    /// RFC 3428
    Message,
    /// RFC 3311
    Update,
    /// Any other `token` (method names are case-sensitive, RFC 3261 §7.1).
    Extension(&'a [u8]),
}

impl<'a> Method<'a> {
    /// Resolves a method token; `None` when `s` is not a token.
    pub fn from_bytes(s: &'a [u8]) -> Option<Method<'a>> {
        Some(match s {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"PUBLISH" => Method::Publish,
            b"INFO" => Method::Info,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"UPDATE" => Method::Update,
            _ if is_token_str(s) => Method::Extension(s),
            _ => return None,
        })
    }

    /// The method's bytes as on the wire.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Method::Invite => b"INVITE",
            Method::Ack => b"ACK",
            Method::Bye => b"BYE",
            Method::Cancel => b"CANCEL",
            Method::Register => b"REGISTER",
            Method::Options => b"OPTIONS",
            Method::Prack => b"PRACK",
            Method::Subscribe => b"SUBSCRIBE",
            Method::Notify => b"NOTIFY",
            Method::Publish => b"PUBLISH",
            Method::Info => b"INFO",
            Method::Refer => b"REFER",
            Method::Message => b"MESSAGE",
            Method::Update => b"UPDATE",
            Method::Extension(s) => s,
        }
    }
}

impl core::fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn known_and_extension() {
        assert_eq!(Method::from_bytes(b"INVITE"), Some(Method::Invite));
        // Case matters: "invite" is an extension method, not INVITE.
        assert_eq!(
            Method::from_bytes(b"invite"),
            Some(Method::Extension(b"invite"))
        );
        assert_eq!(
            Method::from_bytes(b"!interesting-Method0123456789_*+`.%indeed'~"),
            Some(Method::Extension(
                b"!interesting-Method0123456789_*+`.%indeed'~"
            ))
        );
        assert_eq!(Method::from_bytes(b"IN VITE"), None);
        assert_eq!(Method::from_bytes(b""), None);
    }
}
