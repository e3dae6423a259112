//! `Message::parse` on arbitrary bytes: when it succeeds, every accessor is called and every
//! lazy iterator is run to its end, then `validate()` (and `error_reply` on failure). The same
//! bytes are also framed as a TCP stream with `Message::frame_stream`, frame after frame, and
//! parsed again with tight limits. Nothing may panic; a few invariants are asserted as well
//! (see `common.rs` and `stream` below).

#![no_main]

mod common;
mod known;

use libfuzzer_sys::fuzz_target;
use sipedge_msg::{is_keepalive, Message, ParseOptions, StreamFrame};

fuzz_target!(|data: &[u8]| {
    std::hint::black_box(is_keepalive(data));
    if let Ok(msg) = Message::parse(data) {
        // Cloning is cheap and must give the same answers.
        let copy = msg.clone();
        let v = common::exercise(&msg);
        assert_eq!(v, copy.validate());
    }

    // Tight limits reach the TooManyHeaders / RequestUriTooLong / MessageTooLarge paths.
    let tight = ParseOptions {
        max_message_bytes: data.len().saturating_sub(1).max(1),
        max_headers: 3,
        max_request_uri_bytes: 12,
    };
    if let Ok(msg) = Message::parse_with(data, &tight) {
        let _ = common::exercise(&msg);
    }

    stream(data, &ParseOptions::default());
});

/// Frames `data` as a stream, message after message, until it needs more bytes or fails.
fn stream(data: &[u8], opts: &ParseOptions) {
    let mut rest = data;
    while !rest.is_empty() {
        match Message::frame_stream(rest, opts) {
            Ok(StreamFrame::Incomplete) => break,
            Ok(StreamFrame::Keepalive { len, ping }) => {
                assert!(
                    len > 0 && len <= rest.len(),
                    "keepalive len {len} of {}",
                    rest.len()
                );
                assert!(rest[..len].iter().all(|&b| b == b'\r' || b == b'\n'));
                assert!(!ping || rest[..len].starts_with(b"\r\n\r\n"));
                rest = &rest[len..];
            }
            Ok(StreamFrame::Message { msg, len }) => {
                assert!(
                    len > 0 && len <= rest.len(),
                    "frame len {len} of {}",
                    rest.len()
                );
                let framed = &rest[..len];
                assert_eq!(
                    msg.as_bytes(),
                    framed,
                    "a framed message is its frame's bytes"
                );
                assert_eq!(msg.content_length(), Some(msg.body().len() as u32));
                let v = common::exercise(&msg);
                // The same bytes as a datagram give the same message.
                let udp = Message::parse_with(framed, opts)
                    .expect("a framed message parses as a datagram");
                assert!(
                    msg.headers().eq(udp.headers()),
                    "stream and datagram headers differ"
                );
                assert_eq!(msg.body(), udp.body());
                assert_eq!(v, udp.validate(), "stream and datagram validation differ");
                rest = &rest[len..];
            }
            Err(e) => {
                std::hint::black_box(e.to_string());
                break;
            }
        }
    }
}
