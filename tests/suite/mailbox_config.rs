//! `intake check-config` on the keys of each mailbox kind: what a kind
//! needs and what it cannot do are reported with their lines.

use std::process::Command;

fn check(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("intake.toml");
    std::fs::write(&p, text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["check-config", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

const DESK: &str = "[desk]\ndomain = \"x.test\"\n";

#[test]
fn each_mailbox_kind_is_checked_for_what_it_needs() {
    let (code, out) = check(&format!(
        "{DESK}[[mailboxes]]\nname = \"pop\"\nprotocol = \"pop3\"\nhost = \"pop.example.net\"\nport = 995\n\
         username = \"u\"\npassword = \"p\"\nfolders = [\"A\"]\nafter_import = \"move\"\nmove_to = \"B\"\n\
         [[mailboxes]]\nname = \"j1\"\nprotocol = \"jmap\"\nusername = \"u\"\npassword = \"p\"\n\
         [[mailboxes]]\nname = \"j2\"\nprotocol = \"jmap\"\nurl = \"http://jmap.example.net/jmap/\"\nbearer_token = \"t\"\n\
         [[mailboxes]]\nname = \"i\"\nusername = \"u\"\npassword = \"p\"\n"
    ));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("mailboxes[0].folder: a POP3 mailbox has one maildrop"),
        "{out}"
    );
    assert!(
        out.contains("mailboxes[0].after_import: POP3 cannot move mail"),
        "{out}"
    );
    assert!(out.contains("mailboxes[1].url: missing"), "{out}");
    assert!(
        out.contains("mailboxes[2].url: plain http is allowed only for loopback hosts"),
        "{out}"
    );
    assert!(
        !out.contains("mailboxes[2].password"),
        "a bearer token needs no password: {out}"
    );
    assert!(out.contains("mailboxes[3].host: missing"), "{out}");
    assert!(out.contains("mailboxes[3].port: missing"), "{out}");
    let (code, out) = check(&format!(
        "{DESK}[[mailboxes]]\nname = \"g\"\nprotocol = \"graph\"\nclient_id = \"app\"\nclient_key_file = \"/k.pem\"\n\
         client_secret_env = \"INTAKE_TEST_NO_SUCH_VARIABLE\"\n\
         graph_url = \"http://graph.example.net/v1.0\"\n"
    ));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("mailboxes[0].tenant_id: missing"), "{out}");
    assert!(out.contains("mailboxes[0].mailbox: missing"), "{out}");
    assert!(
        out.contains("mailboxes[0].client_certificate_file: set both"),
        "{out}"
    );
    assert!(
        out.contains("mailboxes[0].client_key_file: cannot read"),
        "{out}"
    );
    assert!(out.contains("mailboxes[0].client_secret: environment variable INTAKE_TEST_NO_SUCH_VARIABLE is not set"), "{out}");
    assert!(
        out.contains("mailboxes[0].graph_url: plain http is allowed only for loopback hosts"),
        "{out}"
    );
    assert!(!out.contains("mailboxes[0].password"), "{out}");
    let (code, out) = check(&format!(
        "{DESK}[[mailboxes]]\nname = \"j\"\nprotocol = \"jmap\"\nurl = \"https://jmap.example.net/\"\n\
         username = \"u\"\npassword = \"p\"\nafter_import = \"delete\"\n\
         [[mailboxes]]\nname = \"p\"\nprotocol = \"pop3\"\nhost = \"pop.example.net\"\nport = 995\nusername = \"u\"\n\
         password = \"p\"\nafter_import = \"delete\"\n\
         [[mailboxes]]\nname = \"g\"\nprotocol = \"graph\"\ntenant_id = \"t\"\nclient_id = \"c\"\n\
         client_secret_env = \"HOME\"\nmailbox = \"support@example.com\"\nfolder = \"Inbox/Support\"\n"
    ));
    assert_eq!(code, Some(0), "{out}");
}
