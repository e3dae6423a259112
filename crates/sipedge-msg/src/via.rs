//! Via (RFC 3261 §20.42, §18.2.1 received, RFC 3581 rport).

use crate::lex::{
    eq_token_ci, is_ws, parse_port, parse_u32, skip_token, skip_ws, trim, trim_start,
};
use crate::params::{scan, Params};
use crate::uri::{split_host, strip_brackets};

/// The `rport` parameter (RFC 3581 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RPort {
    /// No rport parameter.
    Absent,
    /// `;rport` without a value: the client asks for symmetric response routing.
    Requested,
    /// `;rport=N`.
    Port(u16),
}

/// Why a Via could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaError;

/// One Via value: `SIP/2.0/UDP host:port;branch=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) protocol: &'a [u8],
    pub(crate) transport: &'a [u8],
    pub(crate) host: &'a [u8],
    pub(crate) port: Option<u16>,
    pub(crate) params: Params<'a>,
    pub(crate) branch: Option<&'a [u8]>,
    pub(crate) received: Option<&'a [u8]>,
    pub(crate) rport: RPort,
}

impl<'a> Via<'a> {
    /// Parses one Via value (one item of a comma list).
    pub fn parse(raw: &'a [u8]) -> Result<Via<'a>, ViaError> {
        Self::parse_trimmed(trim(raw))
    }

    /// [`Via::parse`] of a value without surrounding whitespace (the header values and
    /// list items of [`crate::Message`] are trimmed already).
    pub(crate) fn parse_trimmed(raw: &'a [u8]) -> Result<Via<'a>, ViaError> {
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, then LWS
        // (SLASH = SWS "/" SWS), scanned once.
        let mut parts = [&b""[..]; 3];
        let mut i = 0;
        let fast_end = if raw.len() > 8 && eq_token_ci(b"SIP/2.0/", &raw[..8]) {
            // The usual `SIP/2.0/UDP`: only the transport token to find.
            skip_token(raw, 8)
        } else {
            0
        };
        if fast_end > 8 {
            parts = [&raw[..3], &raw[4..7], &raw[8..fast_end]];
            i = fast_end;
        } else {
            for (n, part) in parts.iter_mut().enumerate() {
                if n > 0 {
                    i = skip_ws(raw, i);
                    if raw.get(i) != Some(&b'/') {
                        return Err(ViaError);
                    }
                    i = skip_ws(raw, i + 1);
                }
                let start = i;
                i = skip_token(raw, i);
                if i == start {
                    return Err(ViaError);
                }
                *part = &raw[start..i];
            }
        }
        if i >= raw.len() || !is_ws(raw[i]) {
            return Err(ViaError);
        }
        // `raw` is trimmed: its tails need only their start trimmed.
        let rest = trim_start(&raw[i..]);
        let (host, after) = split_host(rest).map_err(|_| ViaError)?;
        let mut after = trim_start(after);
        let mut port = None;
        if let [b':', tail @ ..] = after {
            let tail = trim_start(tail);
            let (p, end) = parse_port(tail).ok_or(ViaError)?;
            port = Some(p);
            after = trim_start(&tail[end..]);
        }
        let mut via = Via {
            raw,
            protocol: parts[0],
            transport: parts[2],
            host,
            port,
            params: Params::default(),
            branch: None,
            received: None,
            rport: RPort::Absent,
        };
        if !eq_token_ci(b"SIP", parts[0]) {
            return Err(ViaError);
        }
        match after {
            [] => {}
            [b';', p @ ..] => {
                // branch, received and rport may each appear once: a second one would make
                // the reply's routing ambiguous (found by fuzzing: `;rport=1;rport`).
                let mut ok = true;
                let shaped = scan(p, |name, value| match name.len() {
                    6 if eq_token_ci(b"branch", name) => {
                        ok &= via.branch.is_none();
                        via.branch = value.filter(|v| !v.is_empty());
                        ok &= via.branch.is_some();
                    }
                    8 if eq_token_ci(b"received", name) => {
                        ok &= via.received.is_none() && value.is_some();
                        via.received = value;
                    }
                    5 if eq_token_ci(b"rport", name) => {
                        ok &= via.rport == RPort::Absent;
                        via.rport = match value {
                            None => RPort::Requested,
                            Some(v) => match parse_u32(v).and_then(|p| u16::try_from(p).ok()) {
                                Some(port) => RPort::Port(port),
                                None => {
                                    ok = false;
                                    RPort::Requested
                                }
                            },
                        };
                    }
                    _ => {}
                });
                if !(shaped && ok) {
                    return Err(ViaError);
                }
                via.params = Params::new(p);
            }
            _ => return Err(ViaError),
        }
        Ok(via)
    }

    /// The value as written.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    /// `SIP` (protocol-name).
    pub fn protocol(&self) -> &'a [u8] {
        self.protocol
    }
    /// `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, `WSS`, or any other token as written.
    pub fn transport(&self) -> &'a [u8] {
        self.transport
    }
    /// The sent-by host (IPv6 references keep their brackets).
    pub fn host(&self) -> &'a [u8] {
        self.host
    }
    /// The sent-by host without IPv6 brackets.
    pub fn host_unbracketed(&self) -> &'a [u8] {
        strip_brackets(self.host)
    }
    /// The sent-by port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// All parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The branch parameter (RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.branch
    }
    /// True when the branch carries the RFC 3261 magic cookie `z9hG4bK`.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch.is_some_and(|b| b.starts_with(b"z9hG4bK"))
    }
    /// The received parameter (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<&'a [u8]> {
        self.received
    }
    /// The rport parameter (RFC 3581).
    pub fn rport(&self) -> RPort {
        self.rport
    }
    /// The maddr parameter.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.params.value(b"maddr")
    }
    /// The ttl parameter (0–255).
    pub fn ttl(&self) -> Option<u8> {
        self.params
            .value(b"ttl")
            .and_then(parse_u32)
            .and_then(|t| u8::try_from(t).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_and_odd_vias() {
        let v = Via::parse(b"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK77;rport;received=10.0.0.1")
            .unwrap();
        assert_eq!(v.transport(), b"UDP");
        assert_eq!(v.host(), b"192.0.2.1");
        assert_eq!(v.port(), Some(5060));
        assert_eq!(v.branch(), Some(&b"z9hG4bK77"[..]));
        assert!(v.has_rfc3261_branch());
        assert_eq!(v.rport(), RPort::Requested);
        assert_eq!(v.received(), Some(&b"10.0.0.1"[..]));

        let v = Via::parse(
            b"SIP / 2.0 / TCP  [2001:db8::9:1] ;branch=z9hG4bKas3;rport=5070;ttl=3;maddr=224.0.0.1",
        )
        .unwrap();
        assert_eq!(v.transport(), b"TCP");
        assert_eq!(v.host_unbracketed(), b"2001:db8::9:1");
        assert_eq!(v.port(), None);
        assert_eq!(v.rport(), RPort::Port(5070));
        assert_eq!(v.ttl(), Some(3));
        assert_eq!(v.maddr(), Some(&b"224.0.0.1"[..]));

        let v = Via::parse(b"SIP/2.0/UDP host.example.com : 5062 ; branch = z9hG4bK1").unwrap();
        assert_eq!(v.port(), Some(5062));
        assert_eq!(v.branch(), Some(&b"z9hG4bK1"[..]));
    }

    #[test]
    fn rejects() {
        for bad in [
            &b"SIP/2.0 host"[..],
            b"SIP/2.0/UDP",
            b"SIP/2.0/UDP host:99999",
            b"SIP/2.0/UDP host;branch",
            b"SIP/2.0/UDP host;;branch=1",
            b"SIP/2.0/UDP 2001:db8::9:1",
            b"HTTP/1.1/TCP host",
            b"SIP/2.0/UDP h;branch=z9hG4bK1;rport=1;rport",
            b"SIP/2.0/UDP h;branch=z9hG4bK1;branch=z9hG4bK2",
            b"",
        ] {
            assert!(
                Via::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
