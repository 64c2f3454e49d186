//! The daemon's modules depend on each other in one direction only
//! (`server` → `connection` → `handlers` → `job` and `state` → `vault` →
//! `secure`), so each can be read without the ones above it. This test
//! reads every `crate::` and `super::` path in `src/` (tests excluded) and
//! fails, naming the cycle, when two modules come to depend on each other.
//!
//! A module's own ancestors are not counted: a parent is the namespace its
//! children share (`vault::VaultError`). A re-export (`pub use`) is not a
//! dependency of the module that makes it, but a path through one counts
//! as a dependency on the module the item comes from, so a re-export
//! cannot hide a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `vault/mod.rs` → `vault`, `job/http.rs` → `job::http`, `lib.rs` → ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The code that counts: no comments, no test module, no re-exports.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    let mut out = String::new();
    let mut in_reexport = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("pub use ") || t.starts_with("pub(crate) use ") {
            in_reexport = !t.ends_with(';');
            continue;
        }
        if in_reexport {
            in_reexport = !t.ends_with(';');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// Every path named after `crate::` or `super::` (braces expanded one
/// level: `super::{a, b::C}` names `a` and `b`), resolved to segments
/// from the crate root.
fn paths(module: &str, code: &str) -> Vec<Vec<String>> {
    let own: Vec<String> = if module.is_empty() {
        vec![]
    } else {
        module.split("::").map(str::to_owned).collect()
    };
    let mut found = Vec::new();
    for (prefix, base) in [
        ("crate::", vec![]),
        ("super::", own[..own.len().saturating_sub(1)].to_vec()),
    ] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let mut segs = base.clone();
            let mut s = rest;
            loop {
                let n = ident_len(s);
                if n == 0 {
                    break;
                }
                segs.push(s[..n].to_owned());
                s = &s[n..];
                if let Some(t) = s.strip_prefix("::") {
                    s = t;
                } else {
                    break;
                }
            }
            if let Some(group) = s.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let item = item.trim();
                    let n = ident_len(item);
                    if n > 0 && &item[..n] != "self" {
                        let mut p = segs.clone();
                        p.push(item[..n].to_owned());
                        found.push(p);
                    }
                }
            }
            found.push(segs);
        }
    }
    found
}

/// `(module, item) -> child` for every `pub use child::{item, ...}` (or
/// `pub use child::item`) a module makes.
fn reexports(modules: &BTreeMap<String, PathBuf>) -> BTreeMap<(String, String), String> {
    let mut map = BTreeMap::new();
    for (m, file) in modules {
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let mut rest = text;
        while let Some(i) = rest.find("pub use ") {
            rest = &rest[i + "pub use ".len()..];
            let stmt = &rest[..rest.find(';').unwrap_or(rest.len())];
            let (child, items) = match stmt.split_once("::") {
                Some(v) => v,
                None => continue,
            };
            let child = child.trim();
            let target = if m.is_empty() {
                child.to_owned()
            } else {
                format!("{m}::{child}")
            };
            if !modules.contains_key(&target) {
                continue;
            }
            let items = items.trim().trim_start_matches('{').trim_end_matches('}');
            for item in items.split(',') {
                let item = item.trim();
                let n = ident_len(item);
                // `a::B` re-exports `B`; `B as C` re-exports `C`.
                let name = item
                    .rsplit_once(" as ")
                    .map(|(_, alias)| alias.trim())
                    .or_else(|| item.rsplit("::").next())
                    .unwrap_or(&item[..n]);
                if !name.is_empty() {
                    map.insert((m.clone(), name.to_owned()), target.clone());
                }
            }
        }
    }
    map
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .into_iter()
        .map(|f| (module_of(&src, &f), f))
        .collect();
    let reexported = reexports(&modules);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        for full in paths(m, &code(&text)) {
            let mut p = full.clone();
            while !p.is_empty() && !modules.contains_key(&p.join("::")) {
                p.pop();
            }
            let mut target = p.join("::");
            // Through a re-export: the module the item really comes from.
            if let Some(item) = full.get(p.len()) {
                if let Some(origin) = reexported.get(&(target.clone(), item.clone())) {
                    target = origin.clone();
                }
            }
            let ancestor = m == &target || m.starts_with(&format!("{target}::"));
            if target.is_empty() || ancestor {
                continue;
            }
            edges.entry(m.clone()).or_default().insert(target);
        }
    }
    edges
}

/// A cycle through `start`, if any, as the list of modules on it.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == m) {
            let mut c = stack[i..].to_vec();
            c.push(m.to_owned());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_owned());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(c) = visit(m, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn modules_depend_on_each_other_in_one_direction() {
    let edges = graph();
    let count: usize = edges.values().map(BTreeSet::len).sum();
    // A parser that finds nothing would pass vacuously.
    assert!(
        edges
            .get("server")
            .is_some_and(|t| t.contains("connection")),
        "the scan found no server -> connection edge ({count} edges): it is broken"
    );
    if let Some(c) = cycle(&edges) {
        panic!(
            "module dependency cycle: {} (move the shared item down into a module both can use)",
            c.join(" -> ")
        );
    }
}

#[test]
fn the_check_sees_a_cycle() {
    let mut edges = graph();
    edges
        .entry("vault::crypto".into())
        .or_default()
        .insert("server".into());
    let c = cycle(&edges).expect("server -> … -> vault::crypto -> server is a cycle");
    assert_eq!(c.first(), c.last());
}
