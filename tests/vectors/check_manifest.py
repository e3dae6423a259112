#!/usr/bin/env python3
"""Consistency check for the SIP conformance corpus in tests/vectors/.

    python3 tests/vectors/check_manifest.py [-v]

Checks, for manifest.toml and every file it names:

  * the manifest parses, every [[vector]] has the required keys with values of
    the right type, and no unknown keys;
  * every file named in the manifest exists, and every *.sip file under
    tests/vectors/ (including regress/) is named by exactly one vector;
  * the header section (start line up to the empty line) uses CRLF line ends
    only - no bare LF, no bare CR;
  * the simple fields literally occur in the file: method / status / reason on
    the start line, request_uri on the request line, call_id, cseq,
    cseq_method, URIs, tags, Via host/branch/received, contact_uri;
  * an independent, deliberately simple reader (header unfolding, compact
    names, comma splitting outside quotes and <>) agrees with the structured
    keys: via_count, top Via fields, contact_count, from/to URI and tag,
    Call-ID, CSeq, Content-Length, Max-Forwards, body length;
  * provenance: the RFC 4475 / RFC 5118 vectors are re-extracted from the
    Appendix A archives kept in sources/ and compared byte for byte (after the
    documented RFC 5118 wire transform).

Exit status 0 when everything holds, 1 otherwise.  Needs only the Python 3.11+
standard library (tomllib).
"""

import base64
import gzip
import io
import os
import re
import sys
import tarfile
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
VERBOSE = "-v" in sys.argv[1:]

REQUIRED = {"file": str, "section": str, "title": str, "outcome": str, "rfc_text": str}
OPTIONAL = {
    "reply": (int, str), "reply_role": str, "semantic": str, "liberal_ok": bool, "fault": str,
    "source": str, "transform": str, "rfc_content_length": int,
    "kind": str, "method": str, "status": int, "reason": str,
    "request_uri": str, "ruri_host": str, "ruri_port": int,
    "call_id": str, "cseq": int, "cseq_method": str,
    "from_uri": str, "from_tag": str, "to_uri": str, "to_tag": str,
    "via_count": int, "top_via_host": str, "top_via_port": int, "top_via_branch": str,
    "top_via_transport": str, "top_via_received": str,
    "contact_count": int, "contact_uri": str, "content_length": int, "max_forwards": int,
    "body_len": int, "notes": str, "crlf": bool,
}
COMPACT = {"v": "via", "m": "contact", "l": "content-length", "i": "call-id", "f": "from",
           "t": "to", "c": "content-type", "s": "subject", "k": "supported", "e": "content-encoding"}

problems = []


def problem(vec, msg):
    problems.append("%s: %s" % (vec, msg))


# ------------------------------------------------------------------ reader
def split_message(data):
    """(header_section_bytes, body_bytes_or_None). body is None when the
    header section is not closed by an empty line."""
    i = data.find(b"\r\n\r\n")
    if i < 0:
        return data, None
    return data[: i + 2], data[i + 4:]


def unfold(head):
    """Start line and list of (lower-case canonical name, raw value) with
    folded continuation lines joined by a single SP."""
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    start, rest = lines[0], lines[1:]
    logical = []
    for ln in rest:
        if ln[:1] in (" ", "\t") and logical:
            logical[-1] += " " + ln.strip(" \t")
        else:
            logical.append(ln)
    headers = []
    for ln in logical:
        name, sep, value = ln.partition(":")
        if not sep:
            headers.append(("", ln))
            continue
        n = name.strip(" \t").lower()
        headers.append((COMPACT.get(n, n), value.strip(" \t")))
    return start, headers


def split_list(value):
    """Split a header value on commas outside quoted strings and <...>."""
    out, cur, quoted, angle, i = [], [], False, 0, 0
    while i < len(value):
        ch = value[i]
        if quoted:
            cur.append(ch)
            if ch == "\\" and i + 1 < len(value):
                cur.append(value[i + 1])
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
            cur.append(ch)
        elif ch == "<":
            angle += 1
            cur.append(ch)
        elif ch == ">":
            angle -= 1
            cur.append(ch)
        elif ch == "," and angle == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur).strip())
    return out


def values(headers, name):
    return [v for n, v in headers if n == name]


def list_values(headers, name):
    out = []
    for v in values(headers, name):
        out.extend(split_list(v))
    return out


def params_of(s):
    """';a=b;c' -> {'a': 'b', 'c': None} (names lower-cased, LWS stripped)."""
    out = {}
    for p in s.split(";"):
        p = p.strip()
        if not p:
            continue
        k, sep, v = p.partition("=")
        out[k.strip().lower()] = v.strip() if sep else None
    return out


def name_addr(value):
    """(uri, header-params dict) for a name-addr or addr-spec value."""
    i = 0
    quoted = False
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            j = value.index(">", i)
            return value[i + 1: j].strip(), params_of(value[j + 1:])
        i += 1
    uri, _, rest = value.partition(";")
    return uri.strip(), params_of(";" + rest)


def via_value(v):
    """(transport, host, port, params) of one Via value."""
    m = re.match(r"^\s*([^/\s]+)\s*/\s*([^/\s]+)\s*/\s*([^\s]+)\s+(.*)$", v, re.S)
    if not m:
        return None
    transport, rest = m.group(3), m.group(4).strip()
    if rest.startswith("["):
        j = rest.index("]")
        host, rest = rest[: j + 1], rest[j + 1:]
    else:
        mm = re.match(r"^([^\s:;]+)(.*)$", rest, re.S)
        host, rest = mm.group(1), mm.group(2)
    rest = rest.strip()
    port = None
    if rest.startswith(":"):
        mm = re.match(r"^:\s*(\d+)(.*)$", rest, re.S)
        port, rest = int(mm.group(1)), mm.group(2)
    return transport, host, port, params_of(rest)


# ------------------------------------------------------------------ provenance
def archive(name):
    text = open(os.path.join(HERE, "sources", name)).read()
    data = gzip.decompress(base64.b64decode("".join(text.split())))
    tf = tarfile.open(fileobj=io.BytesIO(data))
    return {os.path.basename(m.name): tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def wire5118(raw):
    """The documented RFC 5118 transform: LF -> CRLF, close an unterminated
    header section, recount Content-Length from the CRLF body."""
    text = raw.decode("ascii")
    head, sep, body = text.partition("\n\n")
    transform = ["crlf"]
    if not sep:
        head, body = head.rstrip("\n"), ""
        transform.append("terminator")
    body = body.replace("\n", "\r\n")
    lines = []
    for ln in head.split("\n"):
        if ln.lower().startswith("content-length:") and int(ln.split(":", 1)[1]) != len(body.encode()):
            ln = "Content-Length: %d" % len(body.encode())
            transform.append("content-length")
        lines.append(ln)
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("ascii"), "+".join(transform)


ARCHIVES = {}


def member(source):
    m = re.match(r"^RFC (4475|5118) Appendix A archive member (\S+)$", source)
    if not m:
        return None
    rfc, name = m.groups()
    if rfc not in ARCHIVES:
        ARCHIVES[rfc] = archive("rfc%s-appendix-a.b64" % rfc)
    return rfc, ARCHIVES[rfc].get(name)


# ------------------------------------------------------------------ checks
def check_vector(vec):
    tag = vec.get("file", "<no file>")
    for k, t in REQUIRED.items():
        if not isinstance(vec.get(k), t):
            problem(tag, "missing or mistyped required key %r" % k)
    for k, v in vec.items():
        if k in REQUIRED:
            continue
        if k not in OPTIONAL:
            problem(tag, "unknown key %r" % k)
        elif not isinstance(v, OPTIONAL[k]) or (OPTIONAL[k] is int and isinstance(v, bool)):
            problem(tag, "key %r has the wrong type" % k)
    outcome = vec.get("outcome")
    if outcome not in ("valid", "invalid"):
        problem(tag, "outcome must be 'valid' or 'invalid'")
    reply = vec.get("reply")
    if not (reply in ("none", "drop") or (isinstance(reply, int) and 100 <= reply <= 699)):
        problem(tag, "reply must be a status code, 'drop' or 'none'")
    if outcome == "invalid" and "fault" not in vec:
        problem(tag, "invalid vector without fault")
    if outcome == "invalid" and reply == "none":
        problem(tag, "invalid vector with reply 'none'")
    if outcome == "valid" and reply != "none" and "semantic" not in vec:
        problem(tag, "valid vector with a reply but no semantic note")
    if "kind" in vec and vec["kind"] not in ("request", "response"):
        problem(tag, "kind must be 'request' or 'response'")

    path = os.path.join(HERE, tag)
    if not os.path.isfile(path):
        problem(tag, "file does not exist")
        return
    data = open(path, "rb").read()
    head, body = split_message(data)

    # CRLF discipline in the header section (regression inputs may opt out
    # with crlf = false: their bytes are whatever crashed the parser)
    for i, b in enumerate(head if vec.get("crlf", True) else b""):
        if b == 0x0A and (i == 0 or head[i - 1] != 0x0D):
            problem(tag, "bare LF in header section at offset %d" % i)
            break
        if b == 0x0D and (i + 1 >= len(head) or head[i + 1] != 0x0A):
            problem(tag, "bare CR in header section at offset %d" % i)
            break
    if vec.get("crlf", True) and not head.endswith(b"\r\n"):
        problem(tag, "header section does not end in CRLF")

    start, headers = unfold(head)
    start_b = start.encode("latin-1")

    def lit(key, where=data):
        if key in vec and vec[key].encode("utf-8") not in where:
            problem(tag, "%s %r does not occur literally" % (key, vec[key]))

    # start line
    if vec.get("kind") == "request":
        if "method" in vec and not start_b.startswith(vec["method"].encode() + b" "):
            problem(tag, "request line does not start with method %r" % vec["method"])
        lit("request_uri", start_b)
        if "request_uri" in vec:
            toks = start.split()
            if len(toks) != 3 or toks[1] != vec["request_uri"]:
                problem(tag, "request_uri is not the (SP-separated) second token of the request line")
        lit("ruri_host", start_b)
        if "ruri_port" in vec and (":%d" % vec["ruri_port"]).encode() not in start_b:
            problem(tag, "ruri_port not on the request line")
        if "status" in vec:
            problem(tag, "request with status")
    elif vec.get("kind") == "response":
        if not start.startswith("SIP/2.0 "):
            problem(tag, "response does not start with SIP/2.0")
        if "status" in vec and not start_b.startswith(b"SIP/2.0 %d " % vec["status"]):
            problem(tag, "status %r is not on the status line" % vec["status"])
        if "reason" in vec:
            reason = start_b.split(b" ", 2)[2] if start_b.count(b" ") >= 2 else b""
            if reason != vec["reason"].encode("utf-8"):
                problem(tag, "reason phrase differs: %r" % reason)
        if "method" in vec or "request_uri" in vec:
            problem(tag, "response with method/request_uri")

    for k in ("call_id", "cseq_method", "from_uri", "from_tag", "to_uri", "to_tag",
              "top_via_host", "top_via_branch", "top_via_transport", "top_via_received", "contact_uri"):
        lit(k)
    if "cseq" in vec and not re.search(rb"(?<!\d)0*%d(?!\d)" % vec["cseq"], data):
        problem(tag, "cseq %d does not occur" % vec["cseq"])

    # independent reader
    if "call_id" in vec:
        cids = values(headers, "call-id")
        if cids != [vec["call_id"]]:
            problem(tag, "Call-ID reader gives %r" % cids)
    if "cseq" in vec or "cseq_method" in vec:
        cs = values(headers, "cseq")
        if len(cs) != 1:
            problem(tag, "expected one CSeq, found %d" % len(cs))
        else:
            num, _, meth = cs[0].partition(" ")
            if "cseq" in vec and (not num.isdigit() or int(num) != vec["cseq"]):
                problem(tag, "CSeq number reader gives %r" % num)
            if "cseq_method" in vec and meth.strip() != vec["cseq_method"]:
                problem(tag, "CSeq method reader gives %r" % meth.strip())
    for side in ("from", "to"):
        if side + "_uri" in vec or side + "_tag" in vec:
            vs = values(headers, side)
            if len(vs) != 1:
                problem(tag, "expected one %s, found %d" % (side, len(vs)))
                continue
            uri, prm = name_addr(vs[0])
            if side + "_uri" in vec and uri != vec[side + "_uri"]:
                problem(tag, "%s URI reader gives %r" % (side, uri))
            if prm.get("tag") != vec.get(side + "_tag"):
                problem(tag, "%s tag reader gives %r" % (side, prm.get("tag")))
    vias = list_values(headers, "via")
    if "via_count" in vec and len(vias) != vec["via_count"]:
        problem(tag, "via_count reader gives %d" % len(vias))
    if any(k.startswith("top_via_") for k in vec):
        parsed = via_value(vias[0]) if vias else None
        if parsed is None:
            problem(tag, "top Via unreadable by the reference reader")
        else:
            transport, host, port, prm = parsed
            if transport != vec.get("top_via_transport"):
                problem(tag, "top Via transport reader gives %r" % transport)
            if host != vec.get("top_via_host"):
                problem(tag, "top Via host reader gives %r" % host)
            if port != vec.get("top_via_port"):
                problem(tag, "top Via port reader gives %r" % port)
            if "top_via_branch" in vec or "branch" in prm:
                if prm.get("branch") != vec.get("top_via_branch"):
                    problem(tag, "top Via branch reader gives %r" % prm.get("branch"))
            if prm.get("received") != vec.get("top_via_received"):
                problem(tag, "top Via received reader gives %r" % prm.get("received"))
    contacts = list_values(headers, "contact")
    if "contact_count" in vec and len(contacts) != vec["contact_count"]:
        problem(tag, "contact_count reader gives %d" % len(contacts))
    if "contact_uri" in vec and (not contacts or name_addr(contacts[0])[0] != vec["contact_uri"]):
        problem(tag, "contact_uri reader gives %r" % (name_addr(contacts[0])[0] if contacts else None))
    if "max_forwards" in vec:
        mf = values(headers, "max-forwards")
        if len(mf) != 1 or not mf[0].isdigit() or int(mf[0]) != vec["max_forwards"]:
            problem(tag, "Max-Forwards reader gives %r" % mf)
    cl = values(headers, "content-length")
    if "content_length" in vec:
        if len(cl) != 1 or not cl[0].isdigit() or int(cl[0]) != vec["content_length"]:
            problem(tag, "Content-Length reader gives %r" % cl)
    if "body_len" in vec:
        avail = len(body) if body is not None else 0
        if vec["body_len"] > avail:
            problem(tag, "body_len %d but only %d octets follow the header section" % (vec["body_len"], avail))
        if "content_length" in vec and vec["content_length"] != vec["body_len"]:
            problem(tag, "body_len differs from content_length")
        if "content_length" not in vec and not cl and vec["body_len"] != avail:
            problem(tag, "without Content-Length the UDP body is the rest of the datagram (%d)" % avail)
    if outcome == "valid" and "content_length" in vec and "body_len" not in vec:
        problem(tag, "valid vector with content_length but no body_len")

    # provenance
    src = vec.get("source", "")
    got = member(src) if src else None
    if src.startswith("RFC ") and got is None:
        problem(tag, "unrecognised source %r" % src)
    elif got is not None:
        rfc, raw = got
        if raw is None:
            problem(tag, "source member not in the archive")
        elif rfc == "4475":
            if vec.get("transform") != "none" or raw != data:
                problem(tag, "differs from the RFC 4475 archive member")
        else:
            want, transform = wire5118(raw)
            if transform != vec.get("transform") or want != data:
                problem(tag, "differs from the RFC 5118 archive member after transform %r" % transform)
            if "content-length" in transform:
                printed = int(re.search(rb"Content-Length: (\d+)", raw).group(1))
                if vec.get("rfc_content_length") != printed:
                    problem(tag, "rfc_content_length should be %d" % printed)
    if VERBOSE:
        print("checked %s" % tag)


def main():
    with open(os.path.join(HERE, "manifest.toml"), "rb") as f:
        manifest = tomllib.load(f)
    vectors = manifest.get("vector", [])
    seen = {}
    for vec in vectors:
        f = vec.get("file")
        if f in seen:
            problem(f, "named by more than one vector")
        seen[f] = vec
    on_disk = set()
    for root, _, files in os.walk(HERE):
        for name in files:
            if name.endswith(".sip"):
                on_disk.add(os.path.relpath(os.path.join(root, name), HERE).replace(os.sep, "/"))
    stray = sorted(on_disk - set(seen))
    for f in stray:
        problem(f, "on disk but not in manifest.toml")
    failed_files = set()
    for vec in vectors:
        n = len(problems)
        check_vector(vec)
        if len(problems) > n:
            failed_files.add(vec.get("file"))
    for p in problems:
        print("FAIL " + p)
    total = len(vectors)
    print("%d passed, %d failed" % (total - len(failed_files), len(failed_files) + len(stray)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
