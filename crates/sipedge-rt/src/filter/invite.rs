//! The socket filter's INVITE class (issue 17 item 6): whether an `INVITE` is new (its To
//! header has no tag, RFC 3261 §12.1/§12.2: a request inside a dialog carries the remote
//! tag in To) — only those may be shed in the kernel; a re-INVITE never is.
//!
//! The test is a byte-at-a-time state machine over the first [`WINDOW`] bytes of the
//! payload, copied to the stack with one `bpf_skb_load_bytes`, in a bounded loop (the
//! verifier walks it, kernel ≥ 5.3):
//!
//! ```text
//! SCAN  --LF-->  LINE  --t/T--> T --o/O--> TO --SP/HT*--> ':'  -->  VALUE
//!                      --CR LF / LF-->  end of headers, no To: keep
//! VALUE --"tag" (any case)-->  keep (in-dialog, or at least not provably new)
//! VALUE --LF--> EOL --SP/HT--> VALUE (folded line, RFC 3261 §7.3.1)
//!               EOL --other--> new: the To header ended without a tag
//! end of window before a decision: keep
//! ```
//!
//! It fails open toward in-dialog: every doubt (no To within the window, a `tag` anywhere
//! in its value, even inside the URI or a display name) keeps the datagram for user space,
//! which parses it properly. Only a To header seen whole, without `tag` in it, is new.
//! `\n` alone ends a line (a LF-only sender is read as leniently as CRLF).

use super::{insn, R0, R1, R10, R2, R3, R4, R6, R7, R8};

/// The payload bytes the scan reads at most (the stack holds 512 bytes, the rest of the
/// program uses the top 64).
pub(super) const WINDOW: i32 = 448;
/// The window's place on the stack (`r10 + BUF`).
const BUF: i32 = -512;
const R9: u8 = 9;
const BPF_FUNC_SKB_LOAD_BYTES: i32 = 26;

/// The state machine's states (module doc).
const SCAN: i32 = 0;
const LINE: i32 = 1;
const T: i32 = 2;
const TO: i32 = 3;
const WS: i32 = 4;
const VALUE: i32 = 5;
const VT: i32 = 6;
const LINE_CR: i32 = 7;
const VTA: i32 = 8;
const EOL: i32 = 9;

/// What a byte matches: itself, or itself with bit 5 set (an ASCII letter of either case).
#[derive(Clone, Copy)]
enum Test {
    Raw(u8),
    Folded(u8),
}

/// Where a match leads.
#[derive(Clone, Copy)]
enum Then {
    To(i32),
    Stay,
    Keep,
    New,
}

/// One state's block: the state, its arms (a byte test and where it leads), and where any
/// other byte leads.
type State = (i32, Vec<(Test, Then)>, Then);

/// The jumps out of the scan, for the caller to patch: to its `keep` and to its shed path.
pub(super) struct Exits {
    pub keep: Vec<usize>,
    pub new: Vec<usize>,
}

/// Appends the scan; r6 holds the skb. Clobbers r0–r5, r7–r9; ends by jumping to one of
/// [`Exits`].
pub(super) fn emit_to_tag_scan(p: &mut Vec<u64>) -> Exits {
    use Test::{Folded, Raw};
    use Then::{Keep, New, Stay, To};
    let mut x = Exits {
        keep: Vec::new(),
        new: Vec::new(),
    };
    // r8 = the window: min(payload length, WINDOW), at least 1.
    p.push(insn(0x61, R8, R6, 0, 0)); // r8 = skb->len (UDP header + payload)
    x.keep.push(p.len());
    p.push(insn(0xb5, R8, 0, 0, 8)); // if r8 <= 8 goto keep (no payload)
    p.push(insn(0x17, R8, 0, 0, 8)); // r8 -= 8
    let clamp = p.len();
    p.push(insn(0x25, R8, 0, 0, WINDOW)); // if r8 > WINDOW goto clamp
    let load = p.len();
    p.extend([
        insn(0xbf, R1, R6, 0, 0),  // r1 = skb
        insn(0xb7, R2, 0, 0, 8),   // r2 = 8 (past the UDP header)
        insn(0xbf, R3, R10, 0, 0), // r3 = r10
        insn(0x07, R3, 0, 0, BUF), // r3 += BUF
        insn(0xbf, R4, R8, 0, 0),  // r4 = r8
        insn(0x85, 0, 0, 0, BPF_FUNC_SKB_LOAD_BYTES),
    ]);
    x.keep.push(p.len());
    p.push(insn(0x55, R0, 0, 0, 0)); // if r0 != 0 goto keep
    p.push(insn(0xb7, R7, 0, 0, 0)); // r7 = i = 0
    p.push(insn(0xb7, R9, 0, 0, SCAN)); // r9 = state
    let top = p.len();
    x.keep.push(p.len());
    p.push(insn(0x3d, R7, R8, 0, 0)); // if i >= r8 goto keep (window done, undecided)
    p.extend([
        insn(0xbf, R1, R10, 0, 0),         // r1 = r10
        insn(0x0f, R1, R7, 0, 0),          // r1 += i
        insn(0x71, R0, R1, BUF as i16, 0), // r0 = buf[i]
        insn(0x07, R7, 0, 0, 1),           // i += 1
    ]);
    // SCAN, the hot state, first: only a LF matters.
    let not_scan = p.len();
    p.push(insn(0x55, R9, 0, 0, SCAN)); // if state != SCAN goto dispatch
    let back = |p: &mut Vec<u64>| {
        let at = p.len();
        p.push(insn(0x05, 0, 0, (top as i64 - at as i64 - 1) as i16, 0)); // goto top
    };
    p.push(insn(0x15, R0, 0, 1, i32::from(b'\n'))); // if r0 == LF skip the next
    back(p);
    p.push(insn(0xb7, R9, 0, 0, LINE));
    back(p);
    let here = p.len();
    super::patch(p, not_scan, here);
    p.push(insn(0xbf, R1, R0, 0, 0)); // r1 = r0
    p.push(insn(0x47, R1, 0, 0, 0x20)); // r1 |= 0x20 (letters folded to lower case)
    let ws = |to| [(Raw(b' '), To(to)), (Raw(b'\t'), To(to))];
    let table: [State; 9] = [
        (
            VALUE,
            vec![(Folded(b't'), To(VT)), (Raw(b'\n'), To(EOL))],
            Stay,
        ),
        (
            LINE,
            vec![
                (Folded(b't'), To(T)),
                (Raw(b'\r'), To(LINE_CR)),
                (Raw(b'\n'), Keep),
            ],
            To(SCAN),
        ),
        (
            T,
            [
                vec![(Folded(b'o'), To(TO)), (Raw(b':'), To(VALUE))],
                ws(WS).to_vec(),
                vec![(Raw(b'\n'), To(LINE))],
            ]
            .concat(),
            To(SCAN),
        ),
        (
            TO,
            [
                vec![(Raw(b':'), To(VALUE))],
                ws(WS).to_vec(),
                vec![(Raw(b'\n'), To(LINE))],
            ]
            .concat(),
            To(SCAN),
        ),
        (
            WS,
            [
                vec![(Raw(b':'), To(VALUE))],
                ws(WS).to_vec(),
                vec![(Raw(b'\n'), To(LINE))],
            ]
            .concat(),
            To(SCAN),
        ),
        (
            VT,
            vec![
                (Folded(b'a'), To(VTA)),
                (Folded(b't'), To(VT)),
                (Raw(b'\n'), To(EOL)),
            ],
            To(VALUE),
        ),
        (
            VTA,
            vec![
                (Folded(b'g'), Keep),
                (Folded(b't'), To(VT)),
                (Raw(b'\n'), To(EOL)),
            ],
            To(VALUE),
        ),
        (EOL, ws(VALUE).to_vec(), New),
        (LINE_CR, vec![(Raw(b'\n'), Keep)], To(SCAN)),
    ];
    // One block per state: `if state != S goto next; (if byte == b then act)*; default`.
    let act = |p: &mut Vec<u64>, x: &mut Exits, then: Then| match then {
        To(s) => {
            p.push(insn(0xb7, R9, 0, 0, s));
            back(p);
        }
        Stay => back(p),
        Keep => {
            x.keep.push(p.len());
            p.push(insn(0x05, 0, 0, 0, 0));
        }
        New => {
            x.new.push(p.len());
            p.push(insn(0x05, 0, 0, 0, 0));
        }
    };
    for (state, arms, default) in table {
        let other = p.len();
        p.push(insn(0x55, R9, 0, 0, state)); // if state != S goto the next block
        for (test, then) in arms {
            let (reg, b) = match test {
                Raw(b) => (R0, b),
                Folded(b) => (R1, b),
            };
            let len = match then {
                To(_) => 2,
                Stay | Keep | New => 1,
            };
            p.push(insn(0x55, reg, 0, len, i32::from(b))); // if byte != b skip the action
            act(p, &mut x, then);
        }
        act(p, &mut x, default);
        let here = p.len();
        super::patch(p, other, here);
    }
    // No state left (cannot happen): keep.
    x.keep.push(p.len());
    p.push(insn(0x05, 0, 0, 0, 0));
    let here = p.len();
    super::patch(p, clamp, here);
    p.push(insn(0xb7, R8, 0, 0, WINDOW)); // clamp: r8 = WINDOW
    let at = p.len();
    p.push(insn(0x05, 0, 0, (load as i64 - at as i64 - 1) as i16, 0)); // goto load
    x
}

#[cfg(test)]
mod tests {
    use super::super::tests::{filter_or_skip, sock};
    use super::super::SHED_ALL;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn invite(to: &str, before: usize) -> Vec<u8> {
        format!(
            "INVITE sip:bob@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{}\r\n\
             From: <sip:alice@example.com>;tag=from-tag-1\r\n\
             {to}\r\n\
             Call-ID: c1@192.0.2.1\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n",
            "x".repeat(before)
        )
        .into_bytes()
    }

    /// At share 100 % the filter sheds a new INVITE (its To header has no tag) and counts
    /// it, whatever the case or form of the header name; it never sheds an INVITE whose To
    /// carries a tag (a re-INVITE, RFC 3261 §12.2, in either form, folded or not), nor one
    /// whose To header is not within the window (fail open toward in-dialog).
    #[test]
    fn sheds_new_invites_never_re_invites() {
        let Some(f) = filter_or_skip() else { return };
        let rx = sock("127.0.44.240:0");
        f.attach(&rx, false).unwrap_or_else(|e| panic!("{e}"));
        let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let tx = sock("127.0.44.241:0");
        let fd = rx.as_raw_fd();
        f.set_shed(fd, SHED_ALL).unwrap_or_else(|e| panic!("{e}"));
        let shed: Vec<Vec<u8>> = vec![
            invite("To: <sip:bob@example.com>", 0),
            invite("to: <sip:bob@example.com>", 0),
            invite("TO : <sip:bob@example.com>;x=1", 0),
            invite("t: <sip:bob@example.com>", 0),
            invite("T:\"Bob\" <sip:bob@example.com>", 0),
            // The To header ends just inside the window.
            invite("To: <sip:bob@example.com>", 250),
        ];
        let pass: Vec<Vec<u8>> = vec![
            invite("To: <sip:bob@example.com>;tag=x", 0),
            invite("t: <sip:bob@example.com>;tag=x", 0),
            invite("TO: <sip:bob@example.com> ; TAG = 9a", 0),
            invite("To: <sip:bob@example.com>\r\n ;tag=folded", 0),
            // Not found within the window: kept.
            invite("To: <sip:bob@example.com>", 400),
            // No To header at all (user space answers 400): kept.
            invite("Subject: hi", 0),
            // Other headers that start with t.
            invite("Timestamp: 1\r\nt: <sip:b@c>;tag=1", 0),
            b"INVITE sip:a@b SIP/2.0\r\n".to_vec(),
            b"INVITEX sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n".to_vec(),
            b"ACK sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n".to_vec(),
            b"BYE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n".to_vec(),
            b"SIP/2.0 200 OK\r\nTo: <sip:a@b>\r\n\r\n".to_vec(),
        ];
        let mut buf = [0u8; 1500];
        let mut received = |rx: &UdpSocket| {
            let mut got = Vec::new();
            while let Ok((n, _)) = rx.recv_from(&mut buf) {
                got.push(buf[..n].to_vec());
            }
            got
        };
        for d in shed.iter().chain(&pass) {
            tx.send_to(d, to).unwrap_or_else(|e| panic!("{e}"));
        }
        let got = received(&rx);
        let show = |v: &[Vec<u8>]| {
            v.iter()
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(show(&got), show(&pass), "only the new INVITEs are shed");
        assert_eq!(f.socket_shed(fd).invite, shed.len() as u64);
        assert_eq!(f.socket_drops(fd), shed.len() as u64);
        // Share 0: nothing shed, not even a new INVITE.
        f.set_shed(fd, 0).unwrap_or_else(|e| panic!("{e}"));
        tx.send_to(&shed[0], to).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(received(&rx).len(), 1);
    }
}
