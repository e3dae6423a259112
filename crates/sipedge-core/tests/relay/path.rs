//! Issue 15 item 4: a request to a binding registered with a Path goes to the first Path
//! hop with the Path as its Route set (RFC 3327 §5.3), not to the Contact.

use super::*;

const P1: &str = "198.51.100.60:5070";

fn register_via_proxy(c: &mut Core, path: &str) {
    let r = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {P1};branch=z9hG4bKp1reg\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKbobreg\r\nMax-Forwards: 69\r\nFrom: <sip:bob@{DOMAIN}>;tag=r1\r\nTo: <sip:bob@{DOMAIN}>\r\nCall-ID: reg-path\r\nCSeq: 1 REGISTER\r\nSupported: path\r\nPath: {path}\r\nContact: <sip:bob@{BOB}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send(c, 0, P1, r.as_bytes());
    assert_eq!(out[0].status(), Some(200));
}

#[test]
fn a_call_to_a_binding_with_path_goes_to_the_first_path_hop() {
    let mut c = Core::new(config());
    register_via_proxy(
        &mut c,
        &format!("<sip:{P1};lr;ob>, <sip:p2.example.net;lr>"),
    );
    let out = send(&mut c, 0, ALICE, &invite("path1"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!(out[1].to, addr(P1), "the first Path hop, not bob's Contact");
    assert_eq!(out[1].ruri(), format!("sip:bob@{BOB}"));
    let routes: Vec<String> = out[1]
        .msg()
        .header_items(HeaderName::Route)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(
        routes,
        [
            format!("<sip:{P1};lr;ob>"),
            "<sip:p2.example.net;lr>".into()
        ]
    );
}

#[test]
fn a_named_first_path_hop_is_reached_where_the_register_came_from() {
    let mut c = Core::new(config());
    register_via_proxy(&mut c, "<sip:edge1.example.net;lr>");
    let out = send(&mut c, 0, ALICE, &invite("path2"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!(out[1].to, addr(P1));
}
