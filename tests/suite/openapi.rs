//! The OpenAPI 3.1 document: served at `/v1/openapi.json` as committed in
//! `docs/openapi.json` (regenerate with `INTAKE_WRITE_OPENAPI=1 cargo test
//! openapi`), valid by a standard validator (the `openapi-spec-validator`
//! package, which scripts/setup-test-deps.sh installs), and naming exactly
//! the routes the server answers.

use crate::common::Db;
use crate::http_common::Server;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn committed() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

/// `python3 -m openapi_spec_validator FILE`: (passed, output).
fn validate(file: &Path) -> (bool, String) {
    let o = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(file)
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !text.contains("No module named"),
        "openapi-spec-validator is not installed: run scripts/setup-test-deps.sh ({text})"
    );
    (o.status.success(), text)
}

#[tokio::test]
async fn served_committed_and_valid() {
    let s = Server::start(Db::Sqlite).await;
    let r = s
        .client
        .get(s.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served: Value = r.json().await.unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("INTAKE_WRITE_OPENAPI").is_some() {
        std::fs::write(committed(), &pretty).unwrap();
    }
    let on_disk = std::fs::read_to_string(committed()).unwrap();
    assert!(
        on_disk == pretty,
        "docs/openapi.json is not what the server serves: regenerate it with INTAKE_WRITE_OPENAPI=1 cargo test openapi"
    );
    let (ok, out) = validate(&committed());
    assert!(ok, "{out}");

    // The validator does fail: a document whose operation has no responses.
    let mut broken = served.clone();
    broken["paths"]["/healthz"]["get"]
        .as_object_mut()
        .unwrap()
        .remove("responses");
    broken["info"].as_object_mut().unwrap().remove("title");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.json");
    std::fs::write(&f, serde_json::to_string(&broken).unwrap()).unwrap();
    let (ok, out) = validate(&f);
    assert!(!ok, "a broken document passed: {out}");
}

/// Every operation in the document reaches a handler (no router 404 or
/// 405), and the router has no route outside the document: every route in
/// `src/http` is registered through `utoipa_axum::routes!`, from which the
/// document is built.
#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_served() {
    let s = Server::start(Db::Sqlite).await;
    let doc: Value = s
        .client
        .get(s.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, _) in item.as_object().unwrap() {
            let url = s.url(&path.replace("{source}", "voice").replace("{id}", "1"));
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = s.client.request(m, url).send().await.unwrap();
            let code = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert_ne!(code, 405, "{method} {path}: the router has no such method");
            assert!(
                !(code == 404 && body.is_empty()),
                "{method} {path}: the router has no such route"
            );
            operations += 1;
        }
    }
    assert!(operations >= 20, "{operations} operations");
    // An unknown path is the router's bare 404, as the check above expects.
    let r = s.client.get(s.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().is_empty());

    let mut files = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for bypass in [".route(", ".nest(", ".route_service(", ".fallback("] {
            assert!(
                !text.contains(bypass),
                "{}: `{bypass}` adds a route the OpenAPI document does not know; register it with utoipa_axum::routes!",
                f.display()
            );
        }
    }
}
