//! Issue 14 item 1: the shape of `sipedge-core` stays — `Core` is a thin dispatcher and the
//! subsystems do not reach into it, and the module graph gains no cycle. Reads `src/` with
//! `std::fs` (a module depends on another when a non-comment line names `crate::other`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`src/nat/ping.rs` → `nat`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("component");
    let s = first.as_os_str().to_string_lossy();
    s.trim_end_matches(".rs").to_string()
}

/// The code lines of a file (`//` comments and doc comments left out).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim_start().starts_with("//"))
}

/// Module → modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &all {
        let m = module_of(&src, f);
        let text = std::fs::read_to_string(f).expect("read");
        let deps = g.entry(m.clone()).or_default();
        for line in code_lines(&text) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                    .collect();
                // `$crate::counters!` (a macro path), not a module edge.
                if !name.is_empty() && name != m && name != "counters" {
                    deps.insert(name);
                }
            }
        }
    }
    g
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct St<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        idx: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut St<'a>, v: &'a str) {
        let n = s.idx.len();
        s.idx.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        let g = s.g;
        for w in g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.idx.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("low");
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.idx[w];
                let lv = s.low.get_mut(v).expect("low");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.idx[v] {
            let mut comp = BTreeSet::new();
            loop {
                let w = s.stack.pop().expect("stack");
                s.on.remove(w);
                comp.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let mut s = St {
        g,
        idx: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.idx.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The subsystems: each is its own type, lent the sink (`io::Io`) by the dispatcher.
const SUBSYSTEMS: &[&str] = &["registrar", "auth", "nat", "proxy", "admin", "dialog"];

/// The shared leaves: they name no subsystem (and not `core`).
const LEAVES: &[&str] = &[
    "output", "refusal", "time", "secret", "aor", "date", "shard", "location", "record", "txn",
    "lookup", "auth_db", "config", "stats", "protect", "limits",
];

#[test]
fn no_subsystem_reaches_into_core() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut bad = Vec::new();
    for f in &all {
        let m = module_of(&src, f);
        if m == "core" || m == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read");
        for (n, line) in code_lines(&text).enumerate() {
            if line.contains("crate::core") || line.starts_with("impl Core ") {
                bad.push(format!("{}:{}: {line}", f.display(), n + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "only core.rs and core/ may name Core: {bad:#?}"
    );
}

#[test]
fn leaves_name_no_subsystem() {
    let g = graph();
    for leaf in LEAVES {
        let deps = &g[*leaf];
        let named: Vec<&String> = deps
            .iter()
            .filter(|d| SUBSYSTEMS.contains(&d.as_str()) && d.as_str() != *leaf)
            .collect();
        assert!(named.is_empty(), "leaf `{leaf}` names {named:?}");
    }
}

/// Modules allowed in a cycle: none (issue 14 item 1 removed the last one — the
/// config and counter structs of `auth`, `nat` and `proxy` moved into `config` / `stats`,
/// and the authentication tables into the leaf `auth_db`). Never grown.
const KNOWN_CYCLE: &[&str] = &[];

#[test]
fn module_graph_has_no_new_cycle() {
    let g = graph();
    let allowed: BTreeSet<String> = KNOWN_CYCLE.iter().map(|s| s.to_string()).collect();
    for comp in cycles(&g) {
        assert!(
            comp.is_subset(&allowed),
            "a module cycle outside the known one: {comp:?}\ngraph: {g:#?}"
        );
    }
    // Nothing depends back on the dispatcher or the registrar.
    for (m, deps) in &g {
        if m != "core" && m != "lib" {
            assert!(!deps.contains("core"), "`{m}` names core");
            assert!(!deps.contains("registrar"), "`{m}` names registrar");
        }
    }
}

/// The checker itself: a two-module cycle is found.
#[test]
fn the_checker_finds_a_cycle() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    let c = cycles(&g);
    assert_eq!(c, vec![BTreeSet::from(["a".to_string(), "b".to_string()])]);
}

/// Issue 14: no production file over 800 lines and no function over 120, in `sipedge-core`
/// and `sipedge-msg` (`#[cfg(test)]` modules left out; a function runs from its `fn` line
/// to the `}` at its indentation).
#[test]
fn production_files_and_functions_stay_small() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    files(&here.join("src"), &mut all);
    files(&here.join("../sipedge-msg/src"), &mut all);
    let mut bad = Vec::new();
    for f in &all {
        let text = std::fs::read_to_string(f).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        let end = (0..lines.len())
            .find(|&i| {
                lines[i].trim() == "#[cfg(test)]"
                    && lines
                        .get(i + 1)
                        .is_some_and(|l| l.trim_start().starts_with("mod "))
            })
            .unwrap_or(lines.len());
        if end > 800 {
            bad.push(format!("{}: {end} lines", f.display()));
        }
        for i in 0..end {
            let l = lines[i];
            let t = l.trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "const fn ",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            if !is_fn {
                continue;
            }
            let Some(open) = (i..end).find(|&j| {
                let r = lines[j].trim_end();
                r.ends_with('{') || r.ends_with(';')
            }) else {
                continue;
            };
            if lines[open].trim_end().ends_with(';') {
                continue;
            }
            let close = format!("{}}}", &l[..l.len() - t.len()]);
            if let Some(k) = (open + 1..end).find(|&k| lines[k] == close) {
                if k - i + 1 > 120 {
                    bad.push(format!("{}:{}: {} lines", f.display(), i + 1, k - i + 1));
                }
            }
        }
    }
    assert!(bad.is_empty(), "over the size limits: {bad:#?}");
}
