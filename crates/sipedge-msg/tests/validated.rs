//! `Message::validated` keeps what `Message::validate` parsed: on every message of the
//! conformance corpus and the fuzz seeds, and on random mutations of them, it succeeds or
//! fails exactly as `validate` does, its fields are what the accessors return, and a response
//! written from its parsed top Via and To tag is byte for byte the one `write_response`
//! writes when it parses them itself.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use sipedge_msg::{write_response, Message, ResponseSpec};

/// Every `.sip` file of the RFC 4475 / RFC 5118 vectors, the fuzz regressions and the fuzz
/// seeds.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    for dir in [
        "tests/vectors/rfc4475",
        "tests/vectors/rfc5118",
        "tests/vectors/regress",
        "fuzz/seeds",
    ] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sip"))
            .collect();
        files.sort();
        for f in files {
            out.push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }
    assert!(out.len() > 60, "corpus not found ({} files)", out.len());
    out
}

/// The property, for one datagram. Returns whether it validated.
fn check(bytes: &[u8]) -> Result<bool, String> {
    let Ok(m) = Message::parse(bytes) else {
        return Ok(false);
    };
    let v = match (m.validate(), m.validated()) {
        (Ok(()), Ok(v)) => v,
        (Err(a), Err(b)) if a == b => return Ok(false),
        (a, b) => return Err(format!("validate {a:?} but validated {:?}", b.map(|_| ()))),
    };
    let eq = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("{what} differs"))
        }
    };
    eq("request_uri", v.request_uri == m.request_uri().ok())?;
    eq("top_via", Ok(v.top_via) == m.top_via())?;
    eq("from", Ok(v.from) == m.from())?;
    eq("to", Ok(v.to) == m.to())?;
    eq("to tag", v.to_has_tag() == m.to().unwrap().tag().is_some())?;
    eq("call_id", Ok(v.call_id) == m.call_id())?;
    eq("cseq", Ok(v.cseq) == m.cseq())?;
    eq("max_forwards", Ok(v.max_forwards) == m.max_forwards())?;
    eq("expires", Ok(v.expires) == m.expires())?;
    eq(
        "vias",
        v.vias(&m).collect::<Vec<_>>() == m.vias().collect::<Vec<_>>(),
    )?;
    let contacts: Vec<_> = m.contacts().collect();
    eq("contacts", v.contacts(&m).collect::<Vec<_>>() == contacts)?;
    eq(
        "first_contact",
        v.first_contact == contacts.first().map(|c| c.unwrap()),
    )?;
    eq("contact_count", v.contact_count as usize == contacts.len())?;
    // The response: every combination of what the writer edits.
    let (mut plain, mut parsed) = (Vec::new(), Vec::new());
    for to_tag in [None, Some(&b"t0"[..])] {
        for received in [None, Some(&b"192.0.2.1"[..])] {
            for rport in [None, Some(4000)] {
                let spec = ResponseSpec {
                    status: 200,
                    reason: b"OK",
                    to_tag,
                    received,
                    rport,
                    ..Default::default()
                };
                write_response(&mut plain, &m, &spec).finish(b"");
                let with = ResponseSpec {
                    top_via: Some(&v.top_via),
                    to_has_tag: Some(v.to_has_tag()),
                    ..spec
                };
                write_response(&mut parsed, &m, &with).finish(b"");
                if plain != parsed {
                    return Err(format!(
                        "response differs:\n{}\nvs\n{}",
                        String::from_utf8_lossy(&plain),
                        String::from_utf8_lossy(&parsed)
                    ));
                }
            }
        }
    }
    Ok(true)
}

#[test]
fn validated_matches_the_accessors_on_the_corpus() {
    let mut valid = 0;
    for (name, bytes) in corpus() {
        match check(&bytes) {
            Ok(ok) => valid += usize::from(ok),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    // The corpus has both kinds; a check that never reaches the fields proves nothing.
    assert!(valid > 20, "only {valid} messages validated");
}

/// A parsed top Via that is not the request's own is not trusted: the writer parses its own.
#[test]
fn a_foreign_top_via_is_ignored() {
    let req = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bK1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
    let other = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK2\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
    let m = Message::parse(req).unwrap();
    let o = Message::parse(other).unwrap();
    let foreign = o.validated().unwrap().top_via;
    let spec = ResponseSpec {
        status: 200,
        reason: b"OK",
        received: Some(b"192.0.2.1"),
        rport: Some(4000),
        top_via: Some(&foreign),
        ..Default::default()
    };
    let mut out = Vec::new();
    write_response(&mut out, &m, &spec).finish(b"");
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains(
            "Via: SIP/2.0/UDP 10.0.0.1;rport=4000;branch=z9hG4bK1;received=192.0.2.1\r\n"
        ),
        "{text}"
    );
}

/// Random edits (byte replaced, deleted, duplicated; a `,` or `;` inserted) of the corpus.
#[test]
fn validated_matches_the_accessors_on_mutations() {
    let corpus = corpus();
    let n = corpus.len();
    let strategy = (
        0..n,
        proptest::collection::vec((any::<usize>(), 0u8..5, any::<u8>()), 1..4),
    );
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 2048,
            failure_persistence: None,
            ..Config::default()
        },
        // Seeded: the same cases every run.
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let valid = std::cell::Cell::new(0usize);
    runner
        .run(&strategy, |(i, edits)| {
            let mut b = corpus[i].1.clone();
            for (at, op, byte) in edits {
                if b.is_empty() {
                    break;
                }
                let at = at % b.len();
                match op {
                    0 => b[at] = byte,
                    1 => {
                        b.remove(at);
                    }
                    2 => b.insert(at, b[at]),
                    3 => b.insert(at, b','),
                    _ => b.insert(at, b';'),
                }
            }
            match check(&b) {
                Ok(ok) => {
                    valid.set(valid.get() + usize::from(ok));
                    Ok(())
                }
                Err(e) => Err(TestCaseError::fail(e)),
            }
        })
        .unwrap();
    let valid = valid.get();
    assert!(valid > 100, "only {valid} mutations validated");
}
