//! The built `intake` binary: check-config, ingest as an MTA pipe, export,
//! merge, domains, quarantine, exit codes.

use crate::common;

use common::{fresh_url, mail, Db};
use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Cli {
    config: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _db_dir: Option<tempfile::TempDir>,
}

impl Cli {
    async fn new(db: Db, extra: &str) -> Cli {
        let (url, db_dir) = fresh_url(db).await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("intake.toml");
        std::fs::write(
            &config,
            format!("[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n{extra}"),
        )
        .unwrap();
        Cli {
            config,
            _dir: dir,
            _db_dir: db_dir,
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_intake"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or_default())
            .unwrap();
        c.wait_with_output().unwrap()
    }

    fn json(&self, args: &[&str], stdin: Option<&[u8]>) -> serde_json::Value {
        let o = self.run(args, stdin);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
    }
}

async fn pipe_ingest_and_admin(db: Db) {
    let cli = Cli::new(db, "[limits]\nmax_message_bytes = 3000\n").await;
    let m1 = mail("Ada <ada@acme.com>", "Help", "c1@acme.com", "", "x");
    let first = cli.json(&["ingest", "--mailbox", "support"], Some(m1.as_bytes()));
    assert_eq!(first["outcome"], "created");
    assert_eq!(
        cli.json(&["ingest"], Some(m1.as_bytes()))["outcome"],
        "duplicate"
    );
    let big = mail("ada@acme.com", "Big", "c2@acme.com", "", &"z".repeat(4000));
    let q = cli.json(&["ingest"], Some(big.as_bytes()));
    assert_eq!(q["outcome"], "quarantined");
    // From a file, too.
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        f.path(),
        mail("bob@gmail.com", "Hi", "c3@gmail.com", "", "x"),
    )
    .unwrap();
    let bob = cli.json(&["ingest", f.path().to_str().unwrap()], None);
    assert_eq!(bob["outcome"], "created");

    let qid = q["quarantine_id"].as_i64().unwrap().to_string();
    let list = cli.run(&["quarantine", "list"], None);
    assert!(String::from_utf8_lossy(&list.stdout).contains("over the 3000-byte limit"));
    let raw = cli.run(&["quarantine", "show", &qid, "--raw"], None);
    assert_eq!(raw.stdout, big.as_bytes());
    assert_eq!(
        cli.json(&["quarantine", "replay", &qid], None)["outcome"],
        "quarantined"
    );

    let merged = cli.json(
        &[
            "users",
            "merge",
            &bob["user_id"].to_string(),
            &first["user_id"].to_string(),
        ],
        None,
    );
    assert_eq!(merged["identities"].as_array().unwrap().len(), 2);
    assert_eq!(
        cli.json(&["users", "lookup", "BOB@gmail.com"], None)["id"],
        first["user_id"]
    );
    let org = cli.json(&["orgs", "create", "Partners", "partner.example"], None);
    let added = cli.json(
        &[
            "orgs",
            "add-domain",
            &org["organization_id"].to_string(),
            "partner.org",
        ],
        None,
    );
    assert_eq!(added["users_moved"], 0);

    let doc = cli.json(&["export"], None);
    assert_eq!(doc["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(doc["quarantine"].as_array().unwrap().len(), 1);
    assert_eq!(doc["tickets"][0]["comments"][0]["class"], "normal");
    // An unknown id is a clear error, exit 1.
    let o = cli.run(&["users", "merge", "999", "1"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("user 999 not found"));
}

both_backends!(pipe_ingest_and_admin);

/// `intake comments raw` and `intake attachments get` write the bytes a
/// comment came with to standard output, or say why they cannot.
async fn comment_and_attachment_bytes(db: Db) {
    let cli = Cli::new(db, "").await;
    let raw = "From: Ada <ada@acme.com>\nTo: support@desk.test\nSubject: Log\nMessage-ID: <f1@acme.com>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee log\n--b\nContent-Type: text/plain; name=log.txt\nContent-Disposition: attachment; filename=log.txt\n\nERROR 42\n--b--\n";
    assert_eq!(
        cli.json(&["ingest"], Some(raw.as_bytes()))["outcome"],
        "created"
    );
    let doc = cli.json(&["export"], None);
    let c = &doc["tickets"][0]["comments"][0];
    let (cid, aid) = (c["id"].to_string(), c["attachments"][0]["id"].to_string());
    let o = cli.run(&["comments", "raw", &cid], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, raw.as_bytes());
    let o = cli.run(&["attachments", "get", &aid], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim_end(), "ERROR 42");
    let info = cli.json(&["attachments", "get", &aid, "--info"], None);
    assert_eq!(info["filename"], "log.txt");
    assert_eq!(info["content_type"], "text/plain");
    let o = cli.run(&["comments", "raw", "999"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("comment 999 not found"));
    // Erasure by contact point: her raw mail and attachment go with her.
    let e = cli.json(&["users", "erase", "ADA@acme.com"], None);
    assert_eq!(e["contact_points"], 1);
    assert_eq!(e["attachments"], 1);
    let o = cli.run(&["comments", "raw", &cid], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no raw mail"));
    let o = cli.run(&["users", "erase", "not a contact"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("neither a user id nor a contact point"));
}

both_backends!(comment_and_attachment_bytes);

#[test]
fn database_down_is_tempfail_for_the_mta() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("intake.toml");
    std::fs::write(
        &config,
        "[database]\nurl = \"postgres://postgres@127.0.0.1:1/nothing\"\n",
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["--config", config.to_str().unwrap(), "ingest"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(mail("a@b.com", "x", "x@b.com", "", "x").as_bytes())
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("database unavailable"));
}

#[test]
fn check_config_lists_every_problem_with_lines() {
    let ok = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/intake.toml"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[desk]\ndomain = \"x.test\"\ncolour = 1\n[identities]\ndefault_phone_region = \"ZZ\"\n[[mailboxes]]\nname = \"a\"\nhost = \"imap.example.com\"\nport = 993\nusername = \"u\"\ntls = \"none\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["check-config", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("line 3: desk.colour: unknown field `colour`"),
        "{out}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["check-config", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("cannot read configuration file"));
    // Once the unknown key is fixed, validation reports the rest, each with its line.
    std::fs::write(
        &bad,
        "[desk]\ndomain = \"x.test\"\n[identities]\ndefault_phone_region = \"ZZ\"\n[[mailboxes]]\nname = \"a\"\nhost = \"imap.example.com\"\nport = 993\nusername = \"u\"\ntls = \"none\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["check-config", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("line 4: identities.default_phone_region"),
        "{out}"
    );
    assert!(out.contains("line 10: mailboxes[0].tls"), "{out}");
    assert!(out.contains("mailboxes[0].password"), "{out}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let o = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["users", "merge", "one", "2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid value 'one'"));
}

/// `intake export | head`: a reader that goes away ends the command quietly
/// with the status a shell reports for SIGPIPE, never a panic (exit 101).
async fn closed_standard_output_ends_quietly(db: Db) {
    let cli = Cli::new(db, "").await;
    for i in 0..20 {
        let raw = mail(
            &format!("c{i}@cust.test"),
            "Hello",
            &format!("p{i}@cust.test"),
            "",
            "body",
        );
        cli.json(&["ingest", "--mailbox", "support"], Some(raw.as_bytes()));
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_intake"))
        .arg("--config")
        .arg(&cli.config)
        .arg("export")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before the command writes.
    drop(c.stdout.take());
    let o = c.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

both_backends!(closed_standard_output_ends_quietly);

/// Every secret takes the same three spellings (`x`, `x_env`, `x_file`) and
/// the inline table `x = { env = ... }`; problems name the secret and the
/// line it is set on.
#[test]
fn every_secret_spelling_is_read_and_checked_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "from-a-file\n").unwrap();
    let cfg = dir.path().join("c.toml");
    let check = |text: String, env: &[(&str, &str)]| {
        std::fs::write(&cfg, text).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_intake"))
            .args(["check-config", "--config", cfg.to_str().unwrap()])
            .env_remove("INTAKE_TEST_UNSET")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    let mailbox = |secret: &str| {
        format!(
            "[http]\nadmin_token_env = \"INTAKE_TEST_TOKEN\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = 25\ntls = \"none\"\nfrom = \"s@x.test\"\nusername = \"u\"\npassword = {{ file = \"{}\" }}\n\
             [[webhook_sources]]\nname = \"voice\"\nsecret_file = \"{}\"\nprevious_secret = \"old\"\n\
             [[mailboxes]]\nname = \"a\"\nhost = \"127.0.0.1\"\nport = 143\ntls = \"none\"\nusername = \"u\"\n{secret}\n",
            pw.display(),
            pw.display()
        )
    };
    let token = [("INTAKE_TEST_TOKEN", "t0ken")];
    for s in [
        "password = \"literal\"".to_string(),
        "password_env = \"INTAKE_TEST_TOKEN\"".to_string(),
        format!("password_file = \"{}\"", pw.display()),
        "password = { env = \"INTAKE_TEST_TOKEN\" }".to_string(),
    ] {
        let (code, out) = check(mailbox(&s), &token);
        assert_eq!((code, out.trim()), (Some(0), "ok"), "{s}");
    }
    // The admin token's variable unset: reported on its own line (2).
    let (code, out) = check(mailbox("password = \"x\""), &[]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("line 2: http.admin_token: environment variable INTAKE_TEST_TOKEN is not set"),
        "{out}"
    );
    // Two spellings of one secret: one problem, on the second one's line.
    let (code, out) = check(
        mailbox("password = \"x\"\npassword_env = \"INTAKE_TEST_TOKEN\""),
        &token,
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("line 21: mailboxes[0].password_env: password is set too"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    // A missing file, and a wrong key inside the table form.
    let (_, out) = check(mailbox("password_file = \"/nonexistent/pw\""), &token);
    assert!(
        out.contains("line 20: mailboxes[0].password: cannot read secret file /nonexistent/pw"),
        "{out}"
    );
    let (_, out) = check(mailbox("password = { command = \"cat pw\" }"), &token);
    assert!(out.contains("line 20: mailboxes.password"), "{out}");
    assert!(out.contains("unknown key `command` in a secret"), "{out}");
}
