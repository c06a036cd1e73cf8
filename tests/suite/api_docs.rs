//! The signing examples of docs/api.md (shell with openssl, Python), run
//! exactly as documented against the real server on both databases.

use crate::common;
use crate::http_common;

use common::Db;
use http_common::*;

/// A code block of docs/api.md between `<!-- name -->` markers, pointed at `base`.
fn doc_block(name: &str, base: &str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let block = doc
        .split(&format!("<!-- {name} -->"))
        .nth(1)
        .unwrap_or_else(|| panic!("docs/api.md has no {name} block"));
    let code = block.split("```").nth(1).unwrap();
    let code = code.split_once('\n').unwrap().1;
    code.replace("http://127.0.0.1:8080", base)
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd)
        .args(args)
        .env("INTAKE_SECRET", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The shell (openssl) and Python signing examples of docs/api.md, run as documented.
async fn documented_signing_examples_are_accepted(db: Db) {
    let s = Server::start(db).await;
    let sh = format!("set -euo pipefail\n{}", doc_block("sign.sh", &s.base));
    let out = run("bash", &["-c", &sh]);
    assert!(out.contains("\"created\":true"), "{out}");
    let out = run("python3", &["-c", &doc_block("sign.py", &s.base)]);
    assert!(out.contains("\"created\":false"), "{out}");
    assert_eq!(s.counts().await, (1, 1));
    let doc = s.h.export().await;
    assert_eq!(doc["tickets"][0]["comments"].as_array().unwrap().len(), 2);
}

both_backends!(documented_signing_examples_are_accepted);
