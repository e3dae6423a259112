//! Typed refusals: one enum per layer (stateless UAS, registrar, relay, auth), each naming
//! its status line ([`Refusal::reply`]) and a stable metric/log label ([`Refusal::label`]).
//! Every reply the edge writes itself goes through one path, `Core::respond` (`stateless`).
//!
//! The reason phrases are those RFC 3261 §21 gives, or a more precise one where the
//! RFC lets the UAS choose (§21: "the reason phrase is for the human user").

/// A refusal: what the requester gets, and how it is counted.
pub trait Refusal: Copy {
    /// The status code and reason phrase of the reply.
    fn reply(self) -> (u16, &'static [u8]);
    /// A stable snake_case name (metric label, log field).
    fn label(self) -> &'static str;
}

/// Declares a refusal enum with its code, reason and label per variant.
macro_rules! refusals {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = ($code:expr, $reason:expr, $label:expr),)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $v,)*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
        }

        impl Refusal for $name {
            #[inline]
            fn reply(self) -> (u16, &'static [u8]) {
                match self {
                    $($name::$v => ($code, $reason),)*
                }
            }

            fn label(self) -> &'static str {
                match self {
                    $($name::$v => $label,)*
                }
            }
        }
    };
}

refusals! {
    /// Requests the edge answers itself without state (RFC 3261 §8.2).
    StatelessRefusal {
        /// §8.2.2.1: a Request-URI scheme we do not route.
        UnsupportedScheme = (416, b"Unsupported URI Scheme", "unsupported_scheme"),
        /// §8.2.2.3: a Require option tag we do not support (with Unsupported).
        BadExtension = (420, b"Bad Extension", "bad_extension"),
        /// Not an open relay: an OPTIONS for a foreign Request-URI.
        RelayingForbidden = (403, b"Relaying Forbidden", "relaying_forbidden"),
        /// §9.2: a CANCEL matching no INVITE transaction.
        NoTransaction = (481, b"Call/Transaction Does Not Exist", "no_transaction"),
        /// §8.2.1: a method we do not recognise (with Allow).
        NotImplemented = (501, b"Not Implemented", "not_implemented"),
        /// §8.2.1 / §21.4.6: recognised, not handled here (with Allow).
        MethodNotAllowed = (405, b"Method Not Allowed", "method_not_allowed"),
    }
}

refusals! {
    /// REGISTER refusals (RFC 3261 §10.3 steps 1–8, RFC 5626, issue limits).
    RegistrarRefusal {
        /// Step 1: the Request-URI names a domain we do not serve.
        DomainNotServed = (403, b"Domain Not Served", "domain_not_served"),
        /// Step 5: the To of a foreign domain or scheme.
        NotFound = (404, b"Not Found", "aor_not_found"),
        /// The canonical AoR is longer than a binding may hold.
        AorTooLong = (400, b"Address Of Record Too Long", "aor_too_long"),
        /// A Contact that does not parse.
        BadContact = (400, b"Bad Contact", "bad_contact"),
        /// A Contact `expires` that does not parse.
        BadContactExpires = (400, b"Bad Contact Expires", "bad_contact_expires"),
        /// A Contact `q` that does not parse.
        BadContactQ = (400, b"Bad Contact q-value", "bad_contact_q"),
        /// A Contact URI or instance over the stored field size.
        ContactTooLong = (400, b"Contact Too Long", "contact_too_long"),
        /// A Call-ID over the stored field size.
        CallIdTooLong = (400, b"Call-ID Too Long", "call_id_too_long"),
        /// Step 6: `*` with other contacts or an Expires other than 0.
        InvalidWildcard = (400, b"Invalid Wildcard Contact", "invalid_wildcard"),
        /// More contacts than `[registrar] max_contacts`.
        TooManyContacts = (403, b"Too Many Contacts", "too_many_contacts"),
        /// Step 7: the same Call-ID with a lower CSeq.
        OutOfOrderCSeq = (500, b"Out of Order CSeq", "out_of_order_cseq"),
        /// Step 7: the request contradicts itself (the same binding twice).
        InconsistentBindings = (500, b"Inconsistent Bindings", "inconsistent_bindings"),
        /// Step 7 / §21.4.17: under `min_expires` (with Min-Expires).
        IntervalTooBrief = (423, b"Interval Too Brief", "interval_too_brief"),
        /// §21.5.4: the shard holds its share of `max_bindings` (with Retry-After).
        TableFull = (503, b"Service Unavailable", "table_full"),
    }
}

refusals! {
    /// Relay refusals (RFC 3261 §16), stateless before a transaction exists, or the final
    /// response of our own server transaction after.
    RelayRefusal {
        /// §16.3 item 3: Max-Forwards reached 0.
        TooManyHops = (483, b"Too Many Hops", "too_many_hops"),
        /// §16.3 item 4: the request already went through us.
        LoopDetected = (482, b"Loop Detected", "loop_detected"),
        /// §16.3 item 5 / §8.2.2.3: a Proxy-Require we do not support (with Unsupported).
        BadExtension = (420, b"Bad Extension", "bad_extension"),
        /// A dialog token of ours that does not verify.
        NotHere = (404, b"Not Here", "not_here"),
        /// §16.4: a Route we cannot follow.
        BadRoute = (400, b"Bad Route", "bad_route"),
        /// §16.5: a foreign Request-URI without the right to relay out.
        RelayingForbidden = (403, b"Relaying Forbidden", "relaying_forbidden"),
        /// §16.5: a next hop with no IP address we may use.
        NextHopUnresolvable = (503, b"Next Hop Unresolvable", "next_hop_unresolvable"),
        /// RFC 3261 §18.1.1 / §26.2.2: the target asks for a transport (`;transport=`,
        /// `sips:`) we have no socket for (issue 19; with a Warning when stateless) —
        /// never sent over another transport.
        TransportUnavailable = (503, b"Transport Unavailable", "transport_unavailable"),
        /// §16.5: no binding for the Request-URI.
        NotFound = (404, b"Not Found", "not_found"),
        /// §21.4.18, issue 20: with the cluster on, no binding here nor on any live edge
        /// (or the shared store could not say in time, or a peer edge relayed a request for
        /// a binding that is gone here too).
        Unavailable = (480, b"Temporarily Unavailable", "unavailable"),
        /// The transaction table or a lookup is out of room (with Retry-After when stateless).
        Overloaded = (503, b"Service Unavailable", "overloaded"),
        /// §16.7 item 6 / §16.9: nothing better came back.
        ServerError = (500, b"Server Internal Error", "server_error"),
        /// §9.2 / §16.10: the INVITE was cancelled.
        RequestTerminated = (487, b"Request Terminated", "request_terminated"),
        /// RFC 5626 §5.3 / §11.5: the flow the request must take is known to have failed.
        FlowFailed = (430, b"Flow Failed", "flow_failed"),
    }
}

refusals! {
    /// Authentication refusals other than a challenge (RFC 3261 §22, RFC 7616).
    AuthRefusal {
        /// A CLI-authenticated trunk presenting a caller it may not use.
        CliNotAuthorized = (403, b"CLI Not Authorized", "cli_not_authorized"),
        /// §10.3 step 4: the digest user may only register its own AoR.
        UsernameMismatch = (403, b"Authentication Username Mismatch", "username_mismatch"),
        /// IP authentication: the source may not use this account.
        SourceNotAllowed = (403, b"Source Address Not Allowed", "source_not_allowed"),
        /// Credentials that do not parse.
        MalformedCredentials = (400, b"Malformed Credentials", "malformed_credentials"),
        /// Credentials without a username, nonce, uri, response or qop field.
        IncompleteCredentials = (400, b"Incomplete Credentials", "incomplete_credentials"),
        /// RFC 7616 §3.4.6: the digest-uri does not name the Request-URI.
        DigestUriMismatch = (400, b"Digest URI Mismatch", "digest_uri_mismatch"),
        /// RFC 7616 §3.4: an `nc` that does not parse.
        BadNonceCount = (400, b"Bad Nonce Count", "bad_nonce_count"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<R: Refusal>(all: &[R]) {
        let mut labels = std::collections::HashSet::new();
        for &r in all {
            let (code, reason) = r.reply();
            assert!((300..700).contains(&code), "{code}");
            assert!(!reason.is_empty());
            assert!(labels.insert(r.label()), "duplicate label {}", r.label());
        }
    }

    #[test]
    fn refusals_are_errors_with_unique_labels() {
        check(StatelessRefusal::ALL);
        check(RegistrarRefusal::ALL);
        check(RelayRefusal::ALL);
        check(AuthRefusal::ALL);
    }
}
