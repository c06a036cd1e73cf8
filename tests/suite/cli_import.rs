//! `intake import` of an mbox file and a Maildir through the built binary,
//! on both databases: exactly once, delivery order, wrong archives named.

use crate::common;

use crate::cli_ops::{intake, text};
use common::{fresh_url, mail, Db};
use std::process::Output;

fn mbox_of(mails: &[String]) -> String {
    mails
        .iter()
        .map(|m| {
            format!(
                "From sender Thu Jan  1 00:00:00 2026\n{}\n",
                m.replace("\nFrom ", "\n>From ")
            )
        })
        .collect()
}

fn summary(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(&o.clone()));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

async fn import_mbox_and_maildir_exactly_once(db: Db) {
    let (url, _db_dir) = fresh_url(db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    std::fs::write(
        &cfg,
        format!("[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n[limits]\nbatch_size = 2\n"),
    )
    .unwrap();
    let reply = "In-Reply-To: <a1@acme.example>\nReferences: <a1@acme.example>\n";
    let mails = [
        mail(
            "Ada <ada@acme.example>",
            "Printer",
            "a1@acme.example",
            "",
            "From the start:\nit burns",
        ),
        mail(
            "Ada <ada@acme.example>",
            "Re: Printer",
            "a2@acme.example",
            reply,
            "still",
        ),
        mail(
            "Bob <bob@beta.example>",
            "Login",
            "",
            "",
            "no message id here",
        ),
        "this is not a mail at all\n".to_string(),
        mail(
            "Cy <cy@gamma.example>",
            "Invoice",
            "c1@gamma.example",
            "",
            "x",
        ),
    ];
    let mbox = dir.path().join("old.mbox");
    std::fs::write(&mbox, mbox_of(&mails)).unwrap();
    let first = summary(&intake(
        &cfg,
        &[
            "import",
            "--mbox",
            mbox.to_str().unwrap(),
            "--mailbox",
            "archive",
        ],
        &[],
    ));
    assert!(first.starts_with("imported 5 messages in "), "{first}");
    assert!(
        first.ends_with("3 new tickets, 1 replies, 0 already stored, 1 quarantined"),
        "{first}"
    );
    let again = summary(&intake(
        &cfg,
        &["import", "--mbox", mbox.to_str().unwrap()],
        &[],
    ));
    assert!(
        again.ends_with("0 new tickets, 0 replies, 4 already stored, 1 quarantined"),
        "{again}"
    );
    // The quoted `>From` line came back as written.
    let export: serde_json::Value =
        serde_json::from_slice(&intake(&cfg, &["export"], &[]).stdout).unwrap();
    let tickets = export["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 3, "{export}");
    assert!(export.to_string().contains("From the start:"), "{export}");
    let quarantined = intake(&cfg, &["quarantine", "list"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&quarantined.stdout).lines().count(),
        1
    );

    // A Maildir: the reply's file sorts first in the directory but was
    // delivered later; it is imported in delivery order and threads.
    let md = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    let r = "In-Reply-To: <d1@delta.example>\n";
    std::fs::write(
        md.join("cur/1700000100.b.host:2,S"),
        mail("dee@delta.example", "Re: VPN", "d2@delta.example", r, "y"),
    )
    .unwrap();
    std::fs::write(
        md.join("new/1700000000.a.host"),
        mail("dee@delta.example", "VPN", "d1@delta.example", "", "x"),
    )
    .unwrap();
    std::fs::write(md.join("cur/1600000000.c.host:2,S"), &mails[0]).unwrap();
    let first = summary(&intake(
        &cfg,
        &["import", "--maildir", md.to_str().unwrap()],
        &[],
    ));
    assert!(
        first.ends_with("1 new tickets, 1 replies, 1 already stored, 0 quarantined"),
        "{first}"
    );
    let again = summary(&intake(
        &cfg,
        &["import", "--maildir", md.to_str().unwrap()],
        &[],
    ));
    assert!(
        again.ends_with("0 new tickets, 0 replies, 3 already stored, 0 quarantined"),
        "{again}"
    );

    // Wrong archives: named, status 1, nothing stored.
    for (args, msg) in [
        (
            vec!["import", "--maildir", mbox.to_str().unwrap()],
            "not a Maildir",
        ),
        (
            vec!["import", "--mbox", md.to_str().unwrap()],
            "not an mbox file",
        ),
        (
            vec!["import", "--mbox", cfg.to_str().unwrap()],
            "no `From ` separator line found",
        ),
    ] {
        let o = intake(&cfg, &args, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(msg), "{msg}: {}", text(&o));
    }
    let o = intake(&cfg, &["import"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

both_backends!(import_mbox_and_maildir_exactly_once);

/// On a terminal (a pty from util-linux's `script`): `import` and
/// `run --once` draw progress bars; their last state names the counts.
#[test]
fn progress_is_drawn_on_a_terminal() {
    let dc = crate::support::dovecot::Dovecot::start(&[("support", "supportpw")]);
    let mails: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            mail(
                &format!("c{i}@acme.example"),
                "Hi",
                &format!("p{i}@acme.example"),
                "",
                "x",
            )
            .into_bytes()
        })
        .collect();
    dc.deliver("support", "INBOX", &mails);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"sqlite://{}/p.db\"\n[desk]\ndomain = \"desk.test\"\n{}",
            dir.path().display(),
            crate::support::mailbox_toml(
                "support",
                dc.port,
                "support",
                "supportpw",
                "after_import = \"keep\""
            )
        ),
    )
    .unwrap();
    let mbox = dir.path().join("a.mbox");
    let all: Vec<String> = (0..300)
        .map(|i| {
            mail(
                &format!("c{i}@acme.example"),
                "Hi",
                &format!("q{i}@acme.example"),
                "",
                "x",
            )
        })
        .collect();
    std::fs::write(&mbox, mbox_of(&all)).unwrap();
    let on_a_terminal = |args: &str| {
        let cmd = format!(
            "{} --config {} {args}",
            env!("CARGO_BIN_EXE_intake"),
            cfg.display()
        );
        let o = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).replace('\r', "\n")
    };
    let out = on_a_terminal("run --once");
    assert!(
        out.contains("support/INBOX") && out.contains("300/300 messages"),
        "{out}"
    );
    let out = on_a_terminal(&format!("import --mbox {}", mbox.display()));
    assert!(out.contains("imported 300 messages in "), "{out}");
    // Not on a terminal: no bar, no escape sequences.
    let o = intake(&cfg, &["run", "--once"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("support/INBOX"),
        "{}",
        text(&o)
    );
}
