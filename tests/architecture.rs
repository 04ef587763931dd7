//! The rule for the house's layering: this file is the rule, not a picture of it.
//!
//! Every top-level module under `src/` sits in one layer of [`LAYERS`] and may
//! import (`crate::x`, `entra_daemon::x`, or `super::` climbing to the root)
//! only modules of a strictly lower layer, or itself. [`OUTSIDE`] stands apart
//! from the layers; the crate roots `lib.rs` and `main.rs` are not checked.
//! The files in [`PURE`] use no I/O crate.
//!
//! To extend it: add a new module to the layer it belongs in, or add a file to
//! `PURE`. Never loosen it: do not move a module up to let an import through,
//! and do not drop a file from `PURE` because it grew I/O; move the code.
// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, bottom (0) to top. Imports run downwards only.
const LAYERS: &[&[&str]] = &[
    &["support", "metrics"],
    &["domain"],
    &["mapping"],
    &["plan"],
    &["pacing"],
    &["graph", "store"],
    &["engine"],
    &["connections", "resync", "status"],
    &["http"],
    &["configuration"],
    &["daemon"],
    &["cli", "tools"],
];
/// Outside the layers: imports nothing of the daemon, and only [`EMULATOR_USER`] imports it.
const OUTSIDE: &str = "emulator";
const EMULATOR_USER: &str = "tools";
/// Files that stay pure: a path ending in `/` is a folder, anything else one
/// file. A listed path that does not exist fails, so the list cannot rot.
const PURE: &[&str] = &[
    "src/domain/",
    "src/mapping.rs",
    "src/mapping_tests.rs",
    "src/mapping/",
    "src/plan.rs",
    "src/plan/lifecycle.rs",
    "src/plan/membership.rs",
    "src/pacing/core.rs",
    "src/pacing/core_tests.rs",
    "src/pacing/limits.rs",
    "src/pacing/settings.rs",
    "src/graph/licences.rs",
    "src/graph/request.rs",
    "src/graph/response.rs",
    "src/graph/settings.rs",
    "src/graph/wire.rs",
    "src/resync/plan.rs",
    "src/resync/plan_tests.rs",
    "src/resync/report.rs",
];
const IO_CRATES: &[&str] = &["tokio", "rusqlite", "reqwest", "axum", "hyper"];

/// A token and its line.
type Tok = (usize, String);
/// An import: line, the top-level module reached, and whether it was spelled `entra_daemon::`.
type Import = (usize, String, bool);

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Drops comments and the insides of string and char literals, keeping every
/// newline so that line numbers still hold.
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let (mut out, mut i) = (String::with_capacity(src.len()), 0);
    while i < c.len() {
        let at: String = c[i..c.len().min(i + 2)].iter().collect();
        let prefix_ok = |k: usize| k == 0 || !is_ident(c[k - 1]);
        let raw = c[i] == 'r' && (prefix_ok(i) || (c[i - 1] == 'b' && prefix_ok(i - 1)));
        let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
        i = if at == "//" {
            out.push('\n');
            skip_to(&c, i, &['\n'], false, &mut out)
        } else if at == "/*" {
            skip_to(&c, i + 2, &['*', '/'], false, &mut out)
        } else if c[i] == '"' {
            skip_to(&c, i + 1, &['"'], true, &mut out)
        } else if raw && c.get(i + 1 + hashes) == Some(&'"') {
            let end: Vec<char> = "\"".chars().chain("#".repeat(hashes).chars()).collect();
            skip_to(&c, i + 2 + hashes, &end, false, &mut out)
        } else if at == "'\\" || (c[i] == '\'' && c.get(i + 2) == Some(&'\'')) {
            skip_to(&c, i + 1, &['\''], true, &mut out) // a char literal, not a lifetime
        } else {
            out.push(c[i]);
            i + 1
        };
    }
    out
}

/// Skips from `i` past the next `end`, keeping the newlines on the way.
fn skip_to(c: &[char], mut i: usize, end: &[char], escapes: bool, out: &mut String) -> usize {
    while i < c.len() && !c[i..].starts_with(end) {
        let step = if escapes && c[i] == '\\' { 2 } else { 1 };
        out.extend(c[i..c.len().min(i + step)].iter().filter(|&&ch| ch == '\n'));
        i += step;
    }
    (i + end.len()).min(c.len())
}

fn tokenize(text: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let c: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < c.len() {
            let start = i;
            i += match c[i] {
                ch if is_ident(ch) => c[i..].iter().take_while(|&&ch| is_ident(ch)).count(),
                ':' if c.get(i + 1) == Some(&':') => 2,
                _ => 1,
            };
            if !c[start].is_whitespace() {
                toks.push((n + 1, c[start..i].iter().collect()));
            }
        }
    }
    toks
}

fn text(toks: &[Tok], i: usize) -> &str {
    toks.get(i).map_or("", |t| t.1.as_str())
}

/// The index past the token at `i`, or past the whole `{ .. }` group it opens.
fn past_item(toks: &[Tok], i: usize) -> usize {
    let mut depth = 0;
    let mut close = (i..toks.len()).skip_while(|&k| {
        depth += match text(toks, k) {
            "{" => 1,
            "}" => -1,
            _ => 0,
        };
        depth > 0
    });
    close.next().map_or(toks.len(), |k| k + 1)
}

/// The index just past the path whose next segment is at `i`.
fn past_path(toks: &[Tok], mut i: usize) -> usize {
    loop {
        i = past_item(toks, i);
        if text(toks, i) != "::" {
            return i;
        }
        i += 1;
    }
}

/// The imports of the path that starts at `i` in module `here`, and its end.
fn path_at(toks: &[Tok], i: usize, here: &[String]) -> (Vec<Import>, usize) {
    let by_name = text(toks, i) == "entra_daemon";
    let mut j = i + 2;
    let base = match text(toks, i) {
        "self" => here,
        "super" => {
            let mut up = 1;
            while text(toks, j) == "super" && text(toks, j + 1) == "::" {
                (up, j) = (up + 1, j + 2);
            }
            &here[..here.len().saturating_sub(up)]
        }
        _ => &[],
    };
    let mut found = Vec::new();
    if let Some(module) = base.first() {
        found.push((toks[i].0, module.clone(), by_name));
    } else if text(toks, j) == "{" {
        let (end, mut k) = (past_item(toks, j), j + 1);
        while k < end {
            if text(toks, k).starts_with(is_ident) && text(toks, k) != "self" {
                found.push((toks[k].0, toks[k].1.clone(), by_name));
            }
            while k < end && text(toks, k) != "," {
                k = past_path(toks, k); // `a::b as c`: on to the next item
            }
            k += 1;
        }
    } else if text(toks, j).starts_with(is_ident) {
        found.push((toks[j].0, toks[j].1.clone(), by_name));
    }
    (found, past_path(toks, j))
}

/// Every `crate::`, `super::`, `self::` and `entra_daemon::` path in a file of
/// module path `modpath` (inline `mod x { .. }` included), as the top-level
/// modules it reaches.
fn imports(toks: &[Tok], modpath: &[String]) -> Vec<Import> {
    let (mut here, mut inline) = (modpath.to_vec(), Vec::new());
    let (mut depth, mut i, mut out) = (0, 0, Vec::new());
    while i < toks.len() {
        let t = text(toks, i);
        if t == "{" {
            depth += 1;
            if i >= 2 && text(toks, i - 2) == "mod" {
                here.push(toks[i - 1].1.clone());
                inline.push(depth);
            }
        } else if t == "}" {
            if inline.last() == Some(&depth) {
                inline.pop();
                here.pop();
            }
            depth -= 1;
        }
        let root = matches!(t, "crate" | "super" | "self" | "entra_daemon");
        if root && text(toks, i + 1) == "::" && (i == 0 || text(toks, i - 1) != "::") {
            let (found, end) = path_at(toks, i, &here);
            out.extend(found);
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Uses of an I/O crate as a path root: `tokio::`, `use tokio`, `extern crate tokio`.
fn io_uses(toks: &[Tok]) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for (k, (line, name)) in toks.iter().enumerate() {
        let back = |n: usize| k.checked_sub(n).map_or("", |p| text(toks, p));
        let inner = back(1) == "::" && back(2).starts_with(is_ident) && back(2) != "use";
        let root = matches!(back(1), "use" | "crate") || (text(toks, k + 1) == "::" && !inner);
        if root && IO_CRATES.contains(&name.as_str()) {
            out.push((*line, name.as_str()));
        }
    }
    out
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `a/b.rs` is `[a, b]`, `a/mod.rs` is `[a]`, the roots are `[]`, and an
/// `a/x_tests.rs` beside `a/x.rs` is `[a, x, tests]` (a `#[path]` test module).
fn modpath(rel: &Path) -> Vec<String> {
    let stem = rel.with_extension("");
    let mut path: Vec<String> = stem.iter().map(|c| c.to_string_lossy().into()).collect();
    let last = path.pop().unwrap_or_default();
    let sibling = |x: &str| src_dir().join(rel.with_file_name(format!("{x}.rs")));
    match last.strip_suffix("_tests") {
        Some(x) if sibling(x).is_file() => path.extend([x.to_owned(), "tests".to_owned()]),
        _ if last == "mod" || (path.is_empty() && (last == "lib" || last == "main")) => {}
        _ => path.push(last),
    }
    path
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every file under `src/`: its name (`src/..`), its module path and tokens.
fn sources() -> Vec<(String, Vec<String>, Vec<Tok>)> {
    let mut paths = Vec::new();
    walk(&src_dir(), &mut paths);
    paths.sort();
    let load = |path: &PathBuf| {
        let rel = path.strip_prefix(src_dir()).unwrap();
        let toks = tokenize(&strip(&fs::read_to_string(path).unwrap()));
        (format!("src/{}", rel.display()), modpath(rel), toks)
    };
    paths.iter().map(load).collect()
}

/// Every import outside the crate roots: file, importing module, import.
fn all_imports() -> Vec<(String, String, Import)> {
    let mut out = Vec::new();
    for (file, modpath, toks) in sources() {
        if let Some(me) = modpath.first() {
            let found = imports(&toks, &modpath).into_iter();
            out.extend(found.map(|import| (file.clone(), me.clone(), import)));
        }
    }
    out
}

/// The top-level modules (the crate roots left out), each by its file or folder.
fn top_modules() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (file, modpath, _) in sources() {
        let Some(top) = modpath.first() else { continue };
        let dir = format!("src/{top}/");
        found.insert((top.clone(), if file.starts_with(&dir) { dir } else { file }));
    }
    found
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn fail_if(mut bad: Vec<String>, rule: &str) {
    bad.dedup();
    if !bad.is_empty() {
        let count = bad.len();
        panic!("\n{}\n\n{count} violation(s). {rule}\n", bad.join("\n"));
    }
}

#[test]
fn no_module_imports_from_its_own_or_a_higher_layer() {
    let modules: BTreeSet<String> = top_modules().into_iter().map(|(m, _)| m).collect();
    let mut bad = Vec::new();
    for (file, me, (line, it, _)) in all_imports() {
        let Some(mine) = layer(&me) else { continue }; // unplaced, or the emulator: see below
        if it == me || it == OUTSIDE || !modules.contains(&it) {
            continue; // itself, the emulator rule, or an item of the crate root
        }
        let theirs = match layer(&it) {
            Some(l) if l < mine => continue,
            Some(l) => format!("layer {l}"),
            None => "in no layer".to_owned(),
        };
        bad.push(format!(
            "{file}:{line}: module `{me}` (layer {mine}) imports `{it}` ({theirs})"
        ));
    }
    fail_if(bad, "A module may import only modules of a strictly lower layer, or itself: see LAYERS at the top of tests/architecture.rs. Move the code down or invert the dependency; never loosen the table.");
}

#[test]
fn every_module_is_placed_in_a_layer() {
    let mut bad = Vec::new();
    for (module, file) in top_modules() {
        if module != OUTSIDE && layer(&module).is_none() {
            bad.push(format!("{file}: module `{module}` is in no layer"));
        }
    }
    fail_if(bad, "Every module under src/ is placed deliberately: add it to its layer in LAYERS at the top of tests/architecture.rs.");
}

#[test]
fn the_emulator_imports_nothing_of_the_daemon_and_only_tools_imports_it() {
    let mut bad = Vec::new();
    for (file, me, (line, it, by_name)) in all_imports() {
        if me == OUTSIDE && (by_name || it != OUTSIDE) {
            let how = if by_name { "entra_daemon" } else { "crate" };
            bad.push(format!("{file}:{line}: the emulator imports `{how}::{it}`"));
        } else if me != OUTSIDE && me != EMULATOR_USER && it == OUTSIDE {
            bad.push(format!("{file}:{line}: module `{me}` imports `{OUTSIDE}`"));
        }
    }
    fail_if(bad, "The emulator stands alone: it imports nothing of the daemon, and only `tools` imports it (OUTSIDE in tests/architecture.rs).");
}

#[test]
fn pure_files_use_no_io_crate() {
    let files = sources();
    let covers = |pattern: &str, file: &str| match pattern.strip_suffix('/') {
        Some(dir) => file.starts_with(dir) && file[dir.len()..].starts_with('/'),
        None => file == pattern,
    };
    let mut bad = Vec::new();
    for pattern in PURE {
        let pure: Vec<_> = files
            .iter()
            .filter(|(file, ..)| covers(pattern, file))
            .collect();
        if pure.is_empty() {
            bad.push(format!("{pattern}: listed in PURE but does not exist"));
        }
        for (file, _, toks) in pure {
            let uses = io_uses(toks).into_iter();
            bad.extend(
                uses.map(|(line, krate)| format!("{file}:{line}: pure file uses `{krate}`")),
            );
        }
    }
    fail_if(bad, "Pure files use no I/O crate (tokio, rusqlite, reqwest, axum, hyper), and every path in PURE at the top of tests/architecture.rs exists.");
}

#[test]
fn the_parser_sees_grouped_inline_and_super_paths_but_not_comments_or_strings() {
    let snippet = r##"
use crate::{domain::X, store::{a, b}, self as me};
// use crate::http::Gone;
/* crate::daemon::Gone */ fn f() -> u8 {
    let s = "crate::x \" crate::y \
        "; let r = r#"crate::z"#; let q = '"';
    crate::plan::make(s, r, q, 'a', '\'', entra_daemon::cli::run())
}
use super::super::super::metrics::Counter;
use super::{lookup, remove};
mod tests { use super::*; use tokio::time; }
"##;
    let here = ["engine", "converge", "lookup"].map(String::from);
    let toks = tokenize(&strip(snippet));
    let found = imports(&toks, &here).into_iter();
    let found: Vec<_> = found
        .map(|(line, module, by_name)| format!("{line}:{module}:{by_name}"))
        .collect();
    let want = "2:domain:false 2:store:false 7:plan:false 7:cli:true 9:metrics:false 10:engine:false 11:engine:false";
    assert_eq!(found.join(" "), want);
    assert_eq!(io_uses(&toks), [(11, "tokio")]);
    assert_eq!(modpath(Path::new("mapping_tests.rs")), ["mapping", "tests"]);
    assert_eq!(modpath(Path::new("engine/mod.rs")), ["engine"]);
}
