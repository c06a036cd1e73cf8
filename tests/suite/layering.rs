//! The module graph, read from the source: no import cycles between the
//! crate's top-level modules, the store imports nothing above it, and SQL
//! (sqlx) is written only in `src/store/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src readable").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level module → the top-level modules it names through `crate::`.
fn graph() -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut texts = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let text = code(&std::fs::read_to_string(&f).unwrap());
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                g.entry(top.clone()).or_default().insert(name);
            }
        }
        texts.insert(rel, text);
    }
    (g, texts)
}

fn reaches(g: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(n) = todo.pop() {
        if n == to {
            return true;
        }
        if seen.insert(n.clone()) {
            todo.extend(g.get(&n).into_iter().flatten().cloned());
        }
    }
    false
}

#[test]
fn no_import_cycles_between_modules() {
    let (g, _) = graph();
    let mut cycles = Vec::new();
    for (a, deps) in &g {
        for b in deps {
            if reaches(&g, b, a) {
                cycles.push(format!("{a} -> {b} -> … -> {a}"));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_store_imports_nothing_above_it() {
    let (g, _) = graph();
    let below: BTreeSet<&str> = [
        "model", "identity", "classify", "thread", "parse", "reply", "sanitize",
    ]
    .into();
    let above: Vec<&String> = g["store"]
        .iter()
        .filter(|m| !below.contains(m.as_str()))
        .collect();
    assert!(above.is_empty(), "store imports {above:?}");
    // The pure stages and the data model import neither the store nor anything above.
    for m in [
        "model", "identity", "classify", "thread", "parse", "reply", "sanitize",
    ] {
        let bad: Vec<&String> = g
            .get(m)
            .into_iter()
            .flatten()
            .filter(|d| !below.contains(d.as_str()))
            .collect();
        assert!(bad.is_empty(), "{m} imports {bad:?}");
    }
    // Configuration validation does not import the notifier.
    assert!(!reaches(&g, "config", "notify"), "config reaches notify");
}

#[test]
fn sql_is_written_only_in_the_store() {
    let (_, texts) = graph();
    let outside: Vec<&String> = texts
        .iter()
        .filter(|(path, text)| !path.starts_with("store/") && text.contains("sqlx::"))
        .map(|(p, _)| p)
        .collect();
    assert!(outside.is_empty(), "SQL outside src/store/: {outside:?}");
}
