//! Following a binding's Path (RFC 3327 §5.3, issue 15 item 4): a request to a contact
//! registered through other proxies goes to the first Path hop, with the Path as its
//! Route set, instead of straight to the Contact.
//!
//! | rule | source |
//! | --- | --- |
//! | the Path stored at registration becomes the request's Route headers, in order | RFC 3327 §5.3, RFC 3261 §16.6 step 6 |
//! | the request goes to the first Route, a loose router that removes its own entry | RFC 3261 §16.6 steps 7–8, §16.12 |
//! | leading Path entries that are ours (an entry we would route back to ourselves) are removed first | RFC 3261 §16.4 |
//! | the first hop's address: its URI when the host is an IP literal, else the address the REGISTER came from (the outermost Path hop sent it; no DNS in the core) | RFC 5626 §5.3 (flow the registration came on) |

use std::net::SocketAddr;

use sipedge_msg::{Items, NameAddr, Uri};

/// Where a request to a binding with a Path goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathHop {
    /// The destination: the first Path hop.
    pub(crate) dest: SocketAddr,
    /// The Route header value: the Path without our own leading entries (empty when
    /// nothing is left).
    pub(crate) route: Vec<u8>,
}

/// The first hop and Route set of `path` (the comma-joined Path values stored with the
/// binding); `registered_from` is the source of the REGISTER. `None` when every entry is
/// ours or none parses: the binding is then reached as if it had no Path.
pub(crate) fn first_hop(
    path: &[u8],
    registered_from: SocketAddr,
    is_ours: impl Fn(&Uri<'_>) -> bool,
) -> Option<PathHop> {
    let mut items = Items::new(path).peekable();
    let first = loop {
        let item = items.next()?;
        let Ok(na) = NameAddr::parse(item) else {
            return None;
        };
        if !is_ours(na.uri()) {
            break (item, na);
        }
    };
    let dest = crate::proxy::route::uri_addr(first.1.uri()).unwrap_or(registered_from);
    let mut route = first.0.to_vec();
    for item in items {
        route.extend_from_slice(b", ");
        route.extend_from_slice(item);
    }
    Some(PathHop { dest, route })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_ours(_: &Uri<'_>) -> bool {
        false
    }

    #[test]
    fn the_first_hop_gets_the_request_and_the_whole_path_is_the_route() {
        let src: SocketAddr = "198.51.100.50:5060".parse().expect("literal");
        let hop = first_hop(
            b"<sip:198.51.100.60:5070;lr;ob>, <sip:p2.example.net;lr>",
            src,
            not_ours,
        )
        .expect("a hop");
        assert_eq!(hop.dest, "198.51.100.60:5070".parse().expect("literal"));
        assert_eq!(
            hop.route,
            b"<sip:198.51.100.60:5070;lr;ob>, <sip:p2.example.net;lr>"
        );
    }

    #[test]
    fn a_named_first_hop_is_reached_where_the_register_came_from() {
        let src: SocketAddr = "198.51.100.50:5080".parse().expect("literal");
        let hop = first_hop(b"<sip:edge1.example.net;lr>", src, not_ours).expect("a hop");
        assert_eq!(hop.dest, src);
    }

    #[test]
    fn our_own_leading_entries_are_removed_and_all_ours_means_no_path() {
        let src: SocketAddr = "198.51.100.50:5080".parse().expect("literal");
        let ours = |u: &Uri<'_>| u.host() == b"192.0.2.1";
        let hop =
            first_hop(b"<sip:192.0.2.1;lr>, <sip:198.51.100.60;lr>", src, ours).expect("a hop");
        assert_eq!(hop.dest, "198.51.100.60:5060".parse().expect("literal"));
        assert_eq!(hop.route, b"<sip:198.51.100.60;lr>");
        assert_eq!(first_hop(b"<sip:192.0.2.1;lr>", src, ours), None);
        assert_eq!(first_hop(b"garbage<", src, not_ours), None);
        assert_eq!(first_hop(b"", src, not_ours), None);
    }
}
