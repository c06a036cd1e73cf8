//! What an operator types: commands that run without the daemon's secrets,
//! address settings written as `Name <addr>`, and `check-config --connect`
//! against a real Dovecot, a real SMTP server and the database.

use crate::common;
use crate::support::desk::{smtp_toml, ACK};
use crate::support::dovecot::Dovecot;
use crate::support::smtp::SmtpSink;

use common::{fresh_url, mail, Db};
use intake::model::OutcomeKind;
use intake::notify::drain_once;
use std::path::Path;
use std::process::{Command, Output};

pub(crate) fn intake(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_intake"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("INTAKE_OPS_TOKEN")
        .env_remove("INTAKE_OPS_PW")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A configuration whose every secret comes from a variable.
fn secrets_toml(url: &str) -> String {
    format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"Help Desk <support@desk.test>\"]\n\
         [http]\nadmin_token_env = \"INTAKE_OPS_TOKEN\"\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = 25\ntls = \"none\"\nfrom = \"Support <support@desk.test>\"\nusername = \"u\"\npassword_env = \"INTAKE_OPS_PW\"\n\
         [[webhook_sources]]\nname = \"voice\"\nsecret_env = \"INTAKE_OPS_PW\"\n\
         [[mailboxes]]\nname = \"support\"\nhost = \"127.0.0.1\"\nport = 143\ntls = \"none\"\nusername = \"u\"\npassword_env = \"INTAKE_OPS_PW\"\naddress = \"Support <support@desk.test>\"\n"
    )
}

async fn commands_read_only_the_secrets_they_use(db: Db) {
    let (url, _db_dir) = fresh_url(db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    std::fs::write(&cfg, secrets_toml(&url)).unwrap();
    let mbox = dir.path().join("in.mbox");
    std::fs::write(
        &mbox,
        format!(
            "From x Thu Jan  1 00:00:00 2026\n{}",
            mail("ada@acme.example", "Hi", "s1@acme.example", "", "x")
        ),
    )
    .unwrap();
    for args in [
        &["migrate"][..],
        &["export"],
        &["quarantine", "list"],
        &["users", "lookup", "nobody@acme.example"],
        &["import", "--mbox", mbox.to_str().unwrap()],
        &["tickets", "status", "1", "open"],
    ] {
        let o = intake(&cfg, args, &[]);
        let t = text(&o);
        // `users lookup` of an unknown contact is a reported failure, not a
        // configuration one.
        assert!(!t.contains("INTAKE_OPS"), "{args:?} wanted a secret: {t}");
        if args[0] != "users" {
            assert!(o.status.success(), "{args:?}: {t}");
        }
    }
    // The daemon and check-config still insist, with the precise message.
    let o = intake(&cfg, &["check-config"], &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    for key in [
        "http.admin_token: environment variable INTAKE_OPS_TOKEN is not set",
        "smtp.password: environment variable INTAKE_OPS_PW is not set",
        "mailboxes[0].password: environment variable INTAKE_OPS_PW is not set",
        "webhook_sources[0].secret: environment variable INTAKE_OPS_PW is not set",
    ] {
        assert!(t.contains(key), "{key}: {t}");
    }
    let o = intake(&cfg, &["run", "--once"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("INTAKE_OPS_TOKEN is not set"),
        "{}",
        text(&o)
    );
    let env = [("INTAKE_OPS_TOKEN", "t"), ("INTAKE_OPS_PW", "p")];
    let o = intake(&cfg, &["check-config"], &env);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "ok",
        "{}",
        text(&o)
    );
}

both_backends!(commands_read_only_the_secrets_they_use);

/// `Name <addr>` everywhere an address is configured; a wrong one is named.
#[test]
fn address_settings_take_a_display_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    let base = secrets_toml("sqlite://x.db");
    for (from, ok) in [
        ("Support <support@desk.test>", true),
        ("\\\"Acme, Support\\\" <support@desk.test>", true),
        ("support@desk.test", true),
        ("Support <support@>", false),
        ("Support support@desk.test", false),
        ("Acme, Support <support@desk.test>", false),
    ] {
        let text_cfg = base.replace(
            "from = \"Support <support@desk.test>\"",
            &format!("from = \"{from}\""),
        );
        std::fs::write(&cfg, text_cfg).unwrap();
        let o = intake(
            &cfg,
            &["check-config"],
            &[("INTAKE_OPS_TOKEN", "t"), ("INTAKE_OPS_PW", "p")],
        );
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        if ok {
            assert_eq!(out.trim(), "ok", "{from}: {}", text(&o));
        } else {
            assert!(
                out.contains("smtp.from: ")
                    && out.contains("is not an email address (write `addr` or `Name <addr>`)"),
                "{from}: {}",
                text(&o)
            );
            assert_eq!(out.lines().count(), 1, "{out}");
        }
    }
}

/// The display name reaches the From header of what is sent; our own
/// address with a name is still ours (no customer user holds it).
async fn a_named_sender_address_is_used_and_recognised(db: Db) {
    let sink = SmtpSink::start();
    let toml = smtp_toml(sink.port, ACK)
        .replace(
            "from = \"support@desk.test\"",
            "from = \"Acme Support <support@desk.test>\"",
        )
        .replace(
            "address = \"help@desk.test\"",
            "address = \"Help Desk <help@desk.test>\"",
        );
    let h = common::Harness::with(db, &toml).await;
    let o = h
        .mail(&mail(
            "Ada <ada@acme.example>",
            "Printer",
            "n1@acme.example",
            "",
            "x",
        ))
        .await;
    assert!(o.ticket_id.is_some());
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 1);
    let ack = &sink.wait_for(1, 5)[0];
    assert_eq!(
        ack.header("From").as_deref(),
        Some("\"Acme Support\" <support@desk.test>")
    );
    assert_eq!(
        ack.header("Reply-To").as_deref(),
        Some("\"Help Desk\" <help@desk.test>")
    );
    // (lettre quotes every display name.) Mail from our own named addresses is a loop, not a customer.
    for (i, own) in ["Help Desk <help@desk.test>", "Someone <SUPPORT@desk.test.>"]
        .iter()
        .enumerate()
    {
        let o = h
            .mail(&mail(
                own,
                "Hi",
                &format!("own{i}@elsewhere.example"),
                "",
                "x",
            ))
            .await;
        assert_eq!(o.outcome, OutcomeKind::Quarantined, "{own}: {o:?}");
        assert!(
            o.reason.as_deref().unwrap_or_default().starts_with("loop:"),
            "{own}: {o:?}"
        );
    }
    let doc = h.export().await;
    let users = doc["users"].as_array().unwrap();
    assert!(
        users.iter().all(|u| !u.to_string().contains("@desk.test")),
        "{users:?}"
    );
}

both_backends!(a_named_sender_address_is_used_and_recognised);

/// `check-config --connect` logs in where the configuration points and says
/// which work, with the server's own words for those that do not.
#[test]
fn check_config_connect_says_which_work() {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    let db = dir.path().join("i.db");
    let write = |pw: &str, smtp_port: u16, folder: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[database]\nurl = \"sqlite://{}\"\n[desk]\ndomain = \"desk.test\"\n\
                 [smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\nfrom = \"Support <support@desk.test>\"\ntimeout = 3\n{}",
                db.display(),
                crate::support::mailbox_toml("support", dc.port, "support", pw, &format!("folders = [\"{folder}\"]"))
            ),
        )
        .unwrap();
    };
    write("supportpw", sink.port, "INBOX");
    let o = intake(&cfg, &["check-config", "--connect"], &[]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        out.contains("database sqlite://") && out.contains(": ok: connected"),
        "{out}"
    );
    assert!(
        out.contains("mailbox support (imap 127.0.0.1:")
            && out.contains("ok: logged in; INBOX: 0 messages"),
        "{out}"
    );
    assert!(
        out.contains(&format!("smtp 127.0.0.1:{}: ok: connected", sink.port)),
        "{out}"
    );

    // A wrong password, a missing folder, a closed SMTP port.
    write("wrong", sink.port, "INBOX");
    let o = intake(&cfg, &["check-config", "--connect"], &[]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        out.contains("FAILED: authentication: login as support refused:"),
        "{out}"
    );
    assert!(
        out.contains("AUTHENTICATIONFAILED") || out.contains("Authentication failed"),
        "{out}"
    );
    write("supportpw", crate::support::smtp::free_port(), "Nowhere");
    let o = intake(&cfg, &["check-config", "--connect"], &[]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        out.contains("FAILED: logged in, but folder Nowhere:"),
        "{out}"
    );
    assert!(
        out.contains("smtp 127.0.0.1:") && out.lines().last().unwrap().contains("FAILED:"),
        "{out}"
    );
}
