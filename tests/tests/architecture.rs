//! The design's layering, checked on the sources.
//!
//! * Crates: `classifier` imports no odpx crate; `dataplane` and `offload`
//!   only `classifier`; `control` those three; `tools` and `benches` any.
//!   (Cargo refuses cycles between crates; this pins the order.)
//! * Modules: no import circles. A reference from module `a::x` to module
//!   `b::y` (through `use crate::...`, `crate::...::` or `super::`) is an
//!   edge between the siblings where their paths part (`a` -> `b` at the
//!   crate's root); the edges between siblings must form no cycle, in any
//!   folder of any crate. A module using its parent's items, or its own
//!   children, is no edge.
//! * Files: none over 1,000 lines, no function over 150; `unsafe` only in
//!   `dataplane/src/sys`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 7] = [
    "classifier",
    "dataplane",
    "offload",
    "control",
    "tools",
    "benches",
    "tests",
];

fn repo() -> PathBuf {
    odpx_tests::repo()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file under `src` (`a/mod.rs` and `a.rs` are `a`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without comments (doc links are not imports).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim_start().starts_with("//"))
}

/// Every module path referenced from `module`'s code, resolved against
/// the crate's modules (the longest existing prefix).
fn references(module: &[String], text: &str, modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for line in code_lines(text) {
        for (prefix, base) in [
            ("crate::", Vec::new()),
            ("super::", module[..module.len().saturating_sub(1)].to_vec()),
        ] {
            let mut rest = line;
            while let Some(at) = rest.find(prefix) {
                let before = rest[..at].chars().last();
                rest = &rest[at + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let mut path = base.clone();
                let mut tail = rest;
                loop {
                    let name: String = tail.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if name.is_empty() {
                        break;
                    }
                    path.push(name.clone());
                    tail = &tail[name.len()..];
                    match tail.strip_prefix("::") {
                        Some(t) => tail = t,
                        None => break,
                    }
                }
                // `use crate::{a, b::c}`: each item of the group.
                let mut groups = vec![path.clone()];
                if let Some(g) = tail.strip_prefix('{') {
                    let inner = g.split('}').next().unwrap_or("");
                    for item in inner.split(',') {
                        let mut p = path.clone();
                        p.extend(
                            item.trim()
                                .split("::")
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty()),
                        );
                        groups.push(p);
                    }
                }
                for p in groups {
                    if let Some(m) = (1..=p.len())
                        .rev()
                        .map(|n| p[..n].to_vec())
                        .find(|m| modules.contains(m))
                    {
                        out.insert(m);
                    }
                }
            }
        }
    }
    out
}

/// The crate's module graph as edges between siblings (see the module
/// documentation), each with an example reference.
fn sibling_edges(krate: &str) -> BTreeMap<(Vec<String>, Vec<String>), String> {
    let src = repo().join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges = BTreeMap::new();
    for f in &files {
        let from = module_of(&src, f);
        let text = std::fs::read_to_string(f).unwrap();
        for to in references(&from, &text, &modules) {
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // a parent and its child
            }
            let a = from[..=common].to_vec();
            let b = to[..=common].to_vec();
            edges
                .entry((a, b))
                .or_insert_with(|| format!("{} -> {}", from.join("::"), to.join("::")));
        }
    }
    edges
}

/// The strongly connected components of `edges` with more than one
/// module: each is a set of modules that import each other, directly or
/// round a circle (Tarjan's algorithm).
fn circles(edges: &BTreeMap<(Vec<String>, Vec<String>), String>) -> Vec<Vec<Vec<String>>> {
    struct Walk<'a> {
        next: BTreeMap<&'a Vec<String>, Vec<&'a Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, n: &'a Vec<String>) {
        let i = w.index.len();
        w.index.insert(n, i);
        w.low.insert(n, i);
        w.stack.push(n);
        for m in w.next.get(n).cloned().unwrap_or_default() {
            if !w.index.contains_key(m) {
                visit(w, m);
                let l = w.low[n].min(w.low[m]);
                w.low.insert(n, l);
            } else if w.stack.contains(&m) {
                let l = w.low[n].min(w.index[m]);
                w.low.insert(n, l);
            }
        }
        if w.low[n] == w.index[n] {
            let mut comp = Vec::new();
            while let Some(m) = w.stack.pop() {
                comp.push(m.clone());
                if m == n {
                    break;
                }
            }
            if comp.len() > 1 {
                w.out.push(comp);
            }
        }
    }
    let mut w = Walk {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for (a, b) in edges.keys() {
        w.next.entry(a).or_default().push(b);
    }
    let nodes: Vec<&Vec<String>> = w.next.keys().copied().collect();
    for n in nodes {
        if !w.index.contains_key(n) {
            visit(&mut w, n);
        }
    }
    w.out
}

#[test]
fn no_module_imports_another_that_imports_it_back() {
    let mut cycles = Vec::new();
    for krate in CRATES {
        let edges = sibling_edges(krate);
        for c in circles(&edges) {
            let why: Vec<&str> = edges
                .iter()
                .filter(|((a, b), _)| c.contains(a) && c.contains(b))
                .map(|(_, e)| e.as_str())
                .collect();
            let names: Vec<String> = c.iter().map(|m| m.join("::")).collect();
            cycles.push(format!("{krate}: {} ({})", names.join(", "), why.join("; ")));
        }
    }
    assert!(cycles.is_empty(), "import circles:\n{}", cycles.join("\n"));
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let allowed: [(&str, &[&str]); 4] = [
        ("classifier", &[]),
        ("dataplane", &["odpx-classifier"]),
        ("offload", &["odpx-classifier"]),
        ("control", &["odpx-classifier", "odpx-dataplane", "odpx-offload"]),
    ];
    for (krate, ok) in allowed {
        let manifest = std::fs::read_to_string(repo().join(krate).join("Cargo.toml")).unwrap();
        let deps: Vec<&str> = manifest
            .lines()
            .filter_map(|l| l.split(['.', ' ', '=']).next())
            .filter(|name| name.starts_with("odpx-") && *name != "odpx-tests")
            .collect();
        for d in deps {
            assert!(ok.contains(&d), "{krate} depends on {d}; it may use only {ok:?}");
        }
    }
}

/// Each function of a file with its length: from its `fn` line to the
/// closing brace at the same indentation (rustfmt's layout).
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let code = l.trim_start();
        let indent = &l[..l.len() - code.len()];
        let sig = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "const fn ",
            "pub const fn ",
        ]
        .iter()
        .find_map(|p| code.strip_prefix(p));
        let Some(sig) = sig else { continue };
        if l.trim_end().ends_with(';') {
            continue;
        }
        let name: String = sig.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let close = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|x| *x == close) {
            out.push((name, end + 1));
        }
    }
    out
}

#[test]
fn no_file_is_over_a_thousand_lines_and_unsafe_stays_in_sys() {
    let mut long = Vec::new();
    let mut unsafe_outside = Vec::new();
    for krate in CRATES {
        let dir = repo().join(krate);
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let n = text.lines().count();
            if n > 1000 {
                long.push(format!("{} ({n} lines)", f.display()));
            }
            for (name, n) in function_lengths(&text) {
                if n > 150 {
                    long.push(format!("{}: fn {name} ({n} lines)", f.display()));
                }
            }
            let in_sys = f.starts_with(repo().join("dataplane/src/sys"));
            if !in_sys && code_lines(&text).any(|l| l.contains("unsafe {") || l.contains("unsafe fn")) {
                unsafe_outside.push(f.display().to_string());
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over 1,000 lines or functions over 150: {long:?}"
    );
    assert!(
        unsafe_outside.is_empty(),
        "unsafe outside dataplane/src/sys: {unsafe_outside:?}"
    );
}
