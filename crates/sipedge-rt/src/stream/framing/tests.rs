use super::*;
use proptest::prelude::*;

const REG: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n";
const MSG_BODY: &[u8] = b"MESSAGE sip:a@example.com SIP/2.0\r\nl:  5 \r\n\r\nhello";

#[derive(Debug, PartialEq, Eq)]
enum Item {
    Msg(Vec<u8>),
    Ping,
}

fn feed(f: &mut Framer, chunks: &[&[u8]]) -> (Vec<Item>, Result<(), FrameError>) {
    let mut got = Vec::new();
    for c in chunks {
        let r = f.push(c, &mut |fr| {
            got.push(match fr {
                Frame::Message(m) => Item::Msg(m.to_vec()),
                Frame::Ping => Item::Ping,
            })
        });
        if r.is_err() {
            return (got, r);
        }
    }
    (got, Ok(()))
}

#[test]
fn two_messages_in_one_read_are_both_delivered() {
    let mut f = Framer::new(4096);
    let both = [REG, MSG_BODY].concat();
    let (got, r) = feed(&mut f, &[&both]);
    r.unwrap();
    assert_eq!(
        got,
        vec![Item::Msg(REG.to_vec()), Item::Msg(MSG_BODY.to_vec())]
    );
    assert_eq!(f.buffered(), 0);
}

#[test]
fn a_message_split_over_three_reads_is_delivered_once_whole() {
    let mut f = Framer::new(4096);
    let (got, r) = feed(
        &mut f,
        &[&MSG_BODY[..10], &MSG_BODY[10..40], &MSG_BODY[40..]],
    );
    r.unwrap();
    assert_eq!(got, vec![Item::Msg(MSG_BODY.to_vec())]);
}

#[test]
fn double_crlf_is_a_ping_and_a_lone_crlf_is_ignored() {
    let mut f = Framer::new(4096);
    let input = [b"\r\n\r\n".as_slice(), b"\r\n", REG].concat();
    let (got, r) = feed(&mut f, &[&input]);
    r.unwrap();
    assert_eq!(got, vec![Item::Ping, Item::Msg(REG.to_vec())]);
    // A ping split in two is still one ping.
    let (got, r) = feed(&mut f, &[b"\r\n", b"\r\n"]);
    r.unwrap();
    assert_eq!(got, vec![Item::Ping]);
}

#[test]
fn missing_content_length_is_a_protocol_error() {
    let mut f = Framer::new(4096);
    let (got, r) = feed(&mut f, &[b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\n"]);
    assert!(got.is_empty());
    assert_eq!(r, Err(FrameError::NoContentLength));
}

#[test]
fn bad_or_conflicting_content_length_is_refused() {
    for bad in [
        b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 1x\r\n\r\n".as_slice(),
        b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nContent-Length:\r\n\r\n",
    ] {
        let (_, r) = feed(&mut Framer::new(4096), &[bad]);
        assert_eq!(r, Err(FrameError::BadContentLength), "{bad:?}");
    }
    let huge = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
    assert_eq!(
        feed(&mut Framer::new(4096), &[huge]).1,
        Err(FrameError::TooLarge)
    );
}

#[test]
fn a_body_over_the_limit_closes() {
    let mut f = Framer::new(200);
    let (_, r) = feed(
        &mut f,
        &[b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 500\r\n\r\n"],
    );
    assert_eq!(r, Err(FrameError::TooLarge));
}

#[test]
fn headers_without_end_beyond_the_limit_close_and_hold_no_more() {
    let mut f = Framer::new(100);
    let mut r = Ok(());
    for _ in 0..50 {
        r = f.push(b"X-Slow: aaaaaaaa\r\n", &mut |_| {});
        if r.is_err() {
            break;
        }
        assert!(f.buffered() < 100);
    }
    assert_eq!(r, Err(FrameError::TooLarge));
}

proptest! {
    /// Any split of a valid stream yields the same messages; random bytes never panic and
    /// never make the framer hold more than the limit plus one read.
    #[test]
    fn splits_do_not_matter(cuts in proptest::collection::vec(0usize..300, 0..8)) {
        let stream = [REG, b"\r\n\r\n".as_slice(), MSG_BODY, b"\r\n", REG].concat();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for c in cuts {
            chunks.push(&stream[at..c]);
            at = c;
        }
        chunks.push(&stream[at..]);
        let (got, r) = feed(&mut Framer::new(4096), &chunks);
        prop_assert!(r.is_ok());
        prop_assert_eq!(got, vec![
            Item::Msg(REG.to_vec()), Item::Ping, Item::Msg(MSG_BODY.to_vec()), Item::Msg(REG.to_vec())
        ]);
    }

    #[test]
    fn random_bytes_never_panic(chunks in proptest::collection::vec(
        proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b':'), Just(b'l'), Just(b'1'), any::<u8>()], 0..80), 0..20)) {
        let mut f = Framer::new(256);
        for c in &chunks {
            if f.push(c, &mut |fr| { if let Frame::Message(m) = fr { assert!(m.len() <= 256) } }).is_err() {
                break;
            }
            prop_assert!(f.buffered() < 256);
        }
    }
}
