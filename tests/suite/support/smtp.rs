//! A real SMTP server for tests: `tests/fixtures/smtp_sink.py` (aiosmtpd)
//! started on a free loopback port as a child process, killed on drop; the
//! messages it accepted are read back from its capture folder.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the sink misbehaves.
#[derive(Debug, Clone, Default)]
pub struct SinkOpts {
    /// Listen on this port (default: a free one).
    pub port: Option<u16>,
    /// RCPT TO matching this regex gets 550.
    pub reject_rcpt: Option<String>,
    /// The first N DATA commands get 451.
    pub tempfail_first: u32,
    /// Pause before answering each DATA.
    pub delay_ms: u64,
}

/// A running sink.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// One captured message.
#[derive(Debug, Clone)]
pub struct Captured {
    pub raw: String,
    pub rcpt_tos: Vec<String>,
}

impl Captured {
    /// First value of header `name` (unfolded), from the header block only.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or("");
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            match lines.last_mut() {
                Some(last) if line.starts_with([' ', '\t']) => {
                    last.push(' ');
                    last.push_str(line.trim());
                }
                _ => lines.push(line.to_string()),
            }
        }
        lines.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// The Message-ID without angle brackets.
    pub fn message_id(&self) -> String {
        self.header("Message-ID")
            .unwrap_or_default()
            .trim_matches(['<', '>'])
            .to_string()
    }
}

pub use super::ports::free_port;

impl SmtpSink {
    pub fn start() -> SmtpSink {
        Self::with(SinkOpts::default())
    }

    pub fn with(o: SinkOpts) -> SmtpSink {
        let tmp = tempfile::tempdir().unwrap();
        let port = o.port.unwrap_or_else(free_port);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script)
            .arg("--dir")
            .arg(tmp.path())
            .arg("--port")
            .arg(port.to_string())
            .arg("--timeout")
            .arg("300");
        if let Some(r) = &o.reject_rcpt {
            cmd.arg("--reject-rcpt").arg(r);
        }
        if o.tempfail_first > 0 {
            cmd.arg("--tempfail-first")
                .arg(o.tempfail_first.to_string());
        }
        if o.delay_ms > 0 {
            cmd.arg("--delay-ms").arg(o.delay_ms.to_string());
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start smtp_sink.py (needs /usr/bin/python3 with python3-aiosmtpd: scripts/setup-test-deps.sh)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("READY"),
            "smtp sink did not start: {line:?}"
        );
        SmtpSink {
            child,
            port,
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
        }
    }

    /// Messages accepted so far, in arrival order.
    pub fn messages(&self) -> Vec<Captured> {
        let mut n = 1;
        let mut out = Vec::new();
        loop {
            let eml = self.dir.join(format!("{n}.eml"));
            let Ok(raw) = std::fs::read(&eml) else {
                return out;
            };
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(self.dir.join(format!("{n}.json"))).unwrap())
                    .unwrap();
            let rcpt_tos = meta["rcpt_tos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            out.push(Captured {
                raw: String::from_utf8_lossy(&raw)
                    .replace("\r\n", "\n")
                    .replace('\n', "\r\n"),
                rcpt_tos,
            });
            n += 1;
        }
    }

    /// Wait until at least `n` messages arrived (panics after `secs`).
    pub fn wait_for(&self, n: usize, secs: u64) -> Vec<Captured> {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < end,
                "expected {n} messages, got {}",
                m.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
