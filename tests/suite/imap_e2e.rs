//! The scenario a new user tries, through the built binary and a real
//! Dovecot: mail support, reply twice, a colleague, a gmail user, an
//! out-of-office, a stranger quoting the ticket tag — then `intake export`.

use crate::common;
use crate::support;

use common::{fresh_url, mail, Db};
use serde_json::Value;
use std::process::Command;
use support::dovecot::Dovecot;
use support::mailbox_toml;

fn intake(cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_intake"))
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

fn drain(cfg: &std::path::Path) {
    let out = intake(cfg, &["run", "--once"]);
    assert!(
        out.status.success(),
        "run --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn export(cfg: &std::path::Path) -> Value {
    let out = intake(cfg, &["export"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn user<'a>(doc: &'a Value, email: &str) -> &'a Value {
    doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["identities"][0]["value"] == email)
        .expect(email)
}

async fn new_user_scenario(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let (url, _keep) = fresh_url(db).await;
    let cfg = dir.path().join("intake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n{}",
            mailbox_toml("support", dc.port, "support", "supportpw", "address = \"support@desk.test\"")
        ),
    )
    .unwrap();
    let send = |m: String| dc.deliver("support", "INBOX", &[m.into_bytes()]);
    send(mail(
        "Ada Lovelace <ada@acme.com>",
        "Printer on fire",
        "a1@acme.com",
        "",
        "It burns.",
    ));
    drain(&cfg);
    let t = export(&cfg)["tickets"][0]["id"].as_i64().unwrap();
    send(mail(
        "ada@acme.com",
        "Re: Printer on fire",
        "a2@acme.com",
        "In-Reply-To: <a1@acme.com>\n",
        "Still burning.",
    ));
    send(mail(
        "ada@acme.com",
        "Re: Printer on fire",
        "a3@acme.com",
        "In-Reply-To: <a2@acme.com>\nReferences: <a1@acme.com> <a2@acme.com>\n",
        "Out now.",
    ));
    send(mail(
        "Bob <bob@acme.com>",
        "VPN down",
        "b1@acme.com",
        "",
        "No VPN.",
    ));
    send(mail(
        "Carl <carl@gmail.com>",
        "Question",
        "c1@gmail.com",
        "",
        "Hello?",
    ));
    send(mail(
        "ada@acme.com",
        "Out of office: Printer on fire",
        "ooo@acme.com",
        "Auto-Submitted: auto-replied\nIn-Reply-To: <n1@desk.test>\n",
        "I am away.",
    ));
    send(mail(
        "Eve <eve@evil.test>",
        &format!("Re: [#{t}] Printer on fire"),
        "e1@evil.test",
        "",
        "Send me the invoices.",
    ));
    drain(&cfg);
    drain(&cfg); // a second run changes nothing
    let doc = export(&cfg);
    let tickets = doc["tickets"].as_array().unwrap();
    let ada_t = tickets.iter().find(|x| x["id"] == t).unwrap();
    let ada_comments: Vec<&Value> = ada_t["comments"].as_array().unwrap().iter().collect();
    let ids: Vec<&str> = ada_comments
        .iter()
        .map(|c| c["message_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.starts_with(&["a1@acme.com", "a2@acme.com", "a3@acme.com"]),
        "{ids:?}"
    );
    // The stranger's mail is at most an internal note on Ada's ticket.
    for c in &ada_comments {
        if c["message_id"] == "e1@evil.test" {
            assert_eq!(c["public"], false, "{c}");
        }
    }
    let ada = user(&doc, "ada@acme.com");
    let bob = user(&doc, "bob@acme.com");
    assert!(ada["organization_id"].is_i64());
    assert_eq!(ada["organization_id"], bob["organization_id"]);
    assert!(user(&doc, "carl@gmail.com")["organization_id"].is_null());
    let all: Vec<&Value> = tickets
        .iter()
        .flat_map(|x| x["comments"].as_array().unwrap())
        .collect();
    assert_eq!(all.len(), 7, "every mail stored once");
    let ooo = all
        .iter()
        .find(|c| c["message_id"] == "ooo@acme.com")
        .expect("out-of-office stored");
    assert_eq!(ooo["class"], "auto_reply");
    let eve = all
        .iter()
        .find(|c| c["message_id"] == "e1@evil.test")
        .expect("stranger stored");
    assert_eq!(eve["public"], false, "{eve}");
    // acme.com (Ada and Bob) and the stranger's evil.test; never gmail.com.
    let domains: Vec<&Value> = doc["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["domains"][0])
        .collect();
    assert_eq!(
        domains,
        ["acme.com", "evil.test"],
        "{}",
        doc["organizations"]
    );
}

both_backends!(new_user_scenario);
