//! A private Dovecot per test (after the shared dovecot-fixture.sh recipe):
//! its own config, base_dir, state, log,
//! passwd-file users and Maildirs under a temp dir, listening on a free
//! 127.0.0.1 port, run in the foreground (`dovecot -F`) and killed on Drop.
//! As root, Dovecot's internal processes run as `dovecot`/`dovenull` and the
//! mail belongs to `nobody` (Dovecot refuses root-owned mail).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    /// Plain IMAP (STARTTLS offered).
    pub port: u16,
    /// Implicit TLS.
    pub tls_port: u16,
    /// POP3 (STLS offered) and POP3S, when started with POP3 (else 0).
    pub pop3_port: u16,
    pub pop3s_port: u16,
    child: Option<Child>,
    owner: (u32, u32),
    seq: std::cell::Cell<u64>,
}

use super::ports::free_port;

fn id(args: &[&str]) -> u32 {
    let o = Command::new("id").args(args).output().expect("id");
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

fn is_root() -> bool {
    id(&["-u"]) == 0
}

impl Dovecot {
    /// The test CA's PEM file, for `ca_file`.
    pub fn ca_file(&self) -> String {
        self.dir.path().join("tls/ca.pem").display().to_string()
    }

    /// Start with `users` as (name, password).
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        Self::start_with(users, None, "", false)
    }

    /// Serving POP3 too (`pop3_port`, `pop3s_port`), with extra lines
    /// appended to `dovecot.conf`.
    pub fn start_pop3(users: &[(&str, &str)], conf: &str) -> Dovecot {
        Self::start_with(users, None, conf, true)
    }

    /// Also accept AUTHENTICATE XOAUTH2, checking the bearer token with the
    /// RFC 7662 introspection endpoint at `introspection_url` (Dovecot's
    /// oauth2 passdb; passwords keep working through the passwd-file).
    pub fn start_oauth2(users: &[(&str, &str)], introspection_url: &str) -> Dovecot {
        Self::start_with(users, Some(introspection_url), "", true)
    }

    /// Start with extra lines appended to `dovecot.conf` (e.g. an
    /// `imap_capability` without UIDPLUS).
    pub fn start_conf(users: &[(&str, &str)], conf: &str) -> Dovecot {
        Self::start_with(users, None, conf, false)
    }

    fn start_with(users: &[(&str, &str)], oauth2: Option<&str>, more: &str, pop3: bool) -> Dovecot {
        assert!(
            Command::new("dovecot").arg("--version").output().is_ok(),
            "dovecot is not installed: run scripts/setup-test-deps.sh"
        );
        let dir = tempfile::Builder::new()
            .prefix("dc")
            .tempdir_in("/tmp")
            .unwrap();
        let root = is_root();
        let owner = if root {
            (id(&["-u", "nobody"]), id(&["-g", "nobody"]))
        } else {
            (id(&["-u"]), id(&["-g"]))
        };
        let d = dir.path().to_path_buf();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let mut passwd = String::new();
        for (u, p) in users {
            passwd.push_str(&format!(
                "{u}:{{PLAIN}}{p}:{}:{}::{}/mail/{u}\n",
                owner.0,
                owner.1,
                d.display()
            ));
        }
        std::fs::write(d.join("users"), passwd).unwrap();
        let port = free_port();
        let tls_port = free_port();
        let (pop3_port, pop3s_port) = if pop3 {
            (free_port(), free_port())
        } else {
            (0, 0)
        };
        let (protocols, pop3_conf) = if pop3 {
            (
                "imap pop3",
                format!("pop3_uidl_format = %08Xu%08Xv\nservice pop3-login {{\n{}  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {pop3_port}\n  }}\n  inet_listener pop3s {{\n    address = 127.0.0.1\n    port = {pop3s_port}\n    ssl = yes\n  }}\n}}\n", if is_root() { "" } else { "  chroot =\n" }),
            )
        } else {
            ("imap", String::new())
        };
        super::certs::make_certs(&d);
        let (iu, ig, lu, extra) = if root {
            (
                "dovecot".to_string(),
                "dovecot".to_string(),
                "dovenull".to_string(),
                String::new(),
            )
        } else {
            let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_string();
            let grp = String::from_utf8(Command::new("id").arg("-gn").output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_string();
            (
                me.clone(),
                grp,
                me,
                "service anvil {\n  chroot =\n}\nservice imap-urlauth-login {\n  chroot =\n}\n"
                    .to_string(),
            )
        };
        let chroot = if root { "" } else { "  chroot =\n" };
        let (mechs, oauth_passdb) = match oauth2 {
            Some(url) => {
                std::fs::write(
                    d.join("oauth2.conf.ext"),
                    format!("introspection_mode = post\nintrospection_url = {url}\nforce_introspection = yes\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n"),
                )
                .unwrap();
                (
                    "plain login xoauth2 oauthbearer",
                    format!("auth_failure_delay = 0\nservice anvil {{\n  unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n}}\npassdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}/oauth2.conf.ext\n}}\n", d.display()),
                )
            }
            None => ("plain login", String::new()),
        };
        let conf = format!(
            "instance_name = fixture-{port}\nbase_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             default_internal_user = {iu}\ndefault_internal_group = {ig}\ndefault_login_user = {lu}\n\
             protocols = {protocols}\nlisten = 127.0.0.1\nssl = yes\nssl_cert = <{d}/tls/cert.pem\nssl_key = <{d}/tls/key.pem\ndisable_plaintext_auth = no\nauth_mechanisms = {mechs}\n\
             login_trusted_networks = 127.0.0.0/8\n\
             first_valid_uid = 1\nmail_location = maildir:~/Maildir\nmail_fsync = never\nmail_max_userip_connections = 1000\n\
             mailbox_idle_check_interval = 1 secs\nimap_idle_notify_interval = 2 mins\n\
             {oauth_passdb}passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = username_format=%u {d}/users\n}}\n\
             service imap-login {{\n{chroot}  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n    ssl = yes\n  }}\n}}\n\
             {extra}service doveadm {{\n  inet_listener {{\n    port = 0\n  }}\n}}\n\
             namespace inbox {{\n  inbox = yes\n  separator = /\n}}\n{pop3_conf}{more}\n",
            d = d.display()
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let dc = Dovecot {
            dir,
            port,
            tls_port,
            pop3_port,
            pop3s_port,
            child: None,
            owner,
            seq: std::cell::Cell::new(0),
        };
        for (u, _) in users {
            dc.clear(u);
        }
        let mut dc = dc;
        dc.launch();
        dc
    }

    fn launch(&mut self) {
        let conf = self.dir.path().join("dovecot.conf");
        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dovecot");
        self.child = Some(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            // A master that could not start (a port taken, say) exits: a
            // greeting on its port would then come from someone else.
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(self.dir.path().join("dovecot.log"))
                    .unwrap_or_default();
                panic!("dovecot exited ({st}) on port {}; log:\n{log}", self.port);
            }
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("* OK") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default();
        panic!(
            "dovecot gave no greeting on port {}; log:\n{log}",
            self.port
        );
    }

    /// Stop the server cleanly (SIGTERM: every connection is closed), as
    /// `systemctl stop dovecot` would; SIGKILL after 5 s.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // A stopped master can leave its imap processes running and serving
        // their connections; a server that went away takes them along.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &format!("dovecot-fixture-{}/", self.port)])
            .status();
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && t.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    /// Start again on the same port with the same mail.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn maildir(&self, user: &str, folder: &str) -> PathBuf {
        let base = self.dir.path().join("mail").join(user).join("Maildir");
        if folder == "INBOX" {
            base
        } else {
            base.join(format!(".{}", folder.replace('/', ".")))
        }
    }

    fn chown_tree(&self, p: &std::path::Path) {
        let _ = std::os::unix::fs::chown(p, Some(self.owner.0), Some(self.owner.1));
        if p.is_dir() {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                self.chown_tree(&e.path());
            }
        }
    }

    /// Empty a user's whole mail store (every folder, indexes, UID list).
    pub fn clear(&self, user: &str) {
        let home = self.dir.path().join("mail").join(user);
        let _ = std::fs::remove_dir_all(&home);
        self.ensure_folder(user, "INBOX");
    }

    /// Create a folder's Maildir directories.
    pub fn ensure_folder(&self, user: &str, folder: &str) {
        let md = self.maildir(user, folder);
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(md.join(sub)).unwrap();
        }
        self.chown_tree(&self.dir.path().join("mail").join(user));
    }

    /// Deliver messages straight into Maildir/new (UIDs follow the order given).
    pub fn deliver(&self, user: &str, folder: &str, mails: &[Vec<u8>]) {
        self.ensure_folder(user, folder);
        let md = self.maildir(user, folder);
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for m in mails {
            let n = self.seq.get() + 1;
            self.seq.set(n);
            let name = format!(
                "{}.M{}P{}Q{n}.test,S={}",
                base + n / 1_000_000,
                n % 1_000_000,
                std::process::id(),
                m.len()
            );
            let tmp = md.join("tmp").join(&name);
            std::fs::write(&tmp, m).unwrap();
            let _ = std::os::unix::fs::chown(&tmp, Some(self.owner.0), Some(self.owner.1));
            std::fs::rename(&tmp, md.join("new").join(&name)).unwrap();
        }
    }

    /// Messages currently in a folder (new + cur).
    pub fn count(&self, user: &str, folder: &str) -> usize {
        let md = self.maildir(user, folder);
        ["new", "cur"]
            .iter()
            .map(|s| {
                std::fs::read_dir(md.join(s))
                    .map(|d| d.count())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Maildir file names in `cur` carrying flag letter `flag` (e.g. 'S').
    pub fn flagged(&self, user: &str, folder: &str, flag: char) -> usize {
        let md = self.maildir(user, folder);
        std::fs::read_dir(md.join("cur"))
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().to_string();
                        n.rsplit_once(":2,")
                            .map(|(_, f)| f.contains(flag))
                            .unwrap_or(false)
                    })
                    .count()
            })
            .unwrap_or(0)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
