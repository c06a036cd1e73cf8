//! A private Cyrus IMAP 3.6 serving JMAP per test (tests/fixtures/
//! cyrus-jmap-fixture.sh: Debian's packages unpacked by
//! scripts/setup-test-deps.sh), on free loopback ports, stopped on Drop.
//! Mail is delivered over LMTP, as an MTA would; the mailbox is inspected
//! over JMAP.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;

pub struct Cyrus {
    pub dir: tempfile::TempDir,
    pub imap: u16,
    pub http: u16,
    pub lmtp: u16,
}

use super::ports::free_port;

fn fixture() -> String {
    format!(
        "{}/tests/fixtures/cyrus-jmap-fixture.sh",
        env!("CARGO_MANIFEST_DIR")
    )
}

impl Cyrus {
    /// Start with `users` as (name, password); each has INBOX and Imported.
    /// A port another process took between its choice and Cyrus binding
    /// it fails the fixture's start: tried again on other ports.
    pub fn start(users: &[(&str, &str)]) -> Cyrus {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(users) {
                Ok(c) => return c,
                Err(e) => last = e,
            }
        }
        panic!("Cyrus did not start: {last}");
    }

    fn try_start(users: &[(&str, &str)]) -> Result<Cyrus, String> {
        let dir = tempfile::Builder::new()
            .prefix("cy")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let (imap, http, lmtp) = (free_port(), free_port(), free_port());
        let list: Vec<String> = users.iter().map(|(u, p)| format!("{u}:{p}")).collect();
        let out = Command::new("bash")
            .arg(fixture())
            .arg("start")
            .arg(dir.path())
            .args([imap.to_string(), http.to_string(), lmtp.to_string()])
            .env("FIXTURE_USERS", list.join(" "))
            .output()
            .expect("run the Cyrus fixture");
        if !out.status.success() {
            return Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Cyrus {
            dir,
            imap,
            http,
            lmtp,
        })
    }

    /// The session URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/jmap/", self.http)
    }

    /// Deliver mails to `user`'s INBOX over LMTP.
    pub fn deliver(&self, user: &str, mails: &[Vec<u8>]) {
        let s = TcpStream::connect(("127.0.0.1", self.lmtp)).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let expect = |r: &mut BufReader<TcpStream>, code: &str| loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "LMTP: wanted {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        };
        expect(&mut r, "220");
        w.write_all(b"LHLO test\r\n").unwrap();
        expect(&mut r, "250");
        for m in mails {
            w.write_all(b"MAIL FROM:<sender@cust.test>\r\n").unwrap();
            expect(&mut r, "250");
            w.write_all(format!("RCPT TO:<{user}>\r\n").as_bytes())
                .unwrap();
            expect(&mut r, "250");
            w.write_all(b"DATA\r\n").unwrap();
            expect(&mut r, "354");
            let text = String::from_utf8_lossy(m).replace("\r\n", "\n");
            let mut data = String::new();
            for line in text.split_terminator('\n') {
                if line.starts_with('.') {
                    data.push('.');
                }
                data.push_str(line);
                data.push_str("\r\n");
            }
            data.push_str(".\r\n");
            w.write_all(data.as_bytes()).unwrap();
            expect(&mut r, "250");
        }
        w.write_all(b"QUIT\r\n").unwrap();
    }

    /// One JMAP method call as `user`.
    pub async fn call(&self, user: &str, pass: &str, method: &str, args: Value) -> Value {
        let body = json!({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
            "methodCalls": [[method, args, "t"]]});
        let v: Value = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/jmap/", self.http))
            .basic_auth(user, Some(pass))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["methodResponses"][0][1].clone()
    }

    /// Emails in `user`'s mailbox with role or name `mailbox`, and how
    /// many of them carry `$seen`.
    pub async fn count(&self, user: &str, pass: &str, mailbox: &str) -> (usize, usize) {
        let boxes = self
            .call(
                user,
                pass,
                "Mailbox/get",
                json!({"accountId": user, "ids": null}),
            )
            .await;
        let id = boxes["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == mailbox || m["name"] == mailbox)
            .map(|m| m["id"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no mailbox {mailbox}: {boxes}"));
        let q = self
            .call(
                user,
                pass,
                "Email/query",
                json!({"accountId": user, "filter": {"inMailbox": id}, "limit": 10000}),
            )
            .await;
        let ids = q["ids"].as_array().cloned().unwrap_or_default();
        let got = self
            .call(
                user,
                pass,
                "Email/get",
                json!({"accountId": user, "ids": ids, "properties": ["keywords"]}),
            )
            .await;
        let list = got["list"].as_array().cloned().unwrap_or_default();
        let seen = list
            .iter()
            .filter(|e| e["keywords"]["$seen"] == true)
            .count();
        (list.len(), seen)
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(fixture())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}
