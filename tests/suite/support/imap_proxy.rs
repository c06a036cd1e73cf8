//! A TCP proxy to an IMAP server that watches the client's command lines:
//! it records them (with the time they passed) and, for a command matching
//! a rule, can answer NO itself, cut the connection, or SIGKILL a process
//! (the daemon) and drop the command — a crash the moment the command was
//! about to leave. Server responses pass unchanged, whole responses at a
//! time (their first lines recorded too), so a NO written by the proxy
//! never lands inside one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

/// What to do with a command that matches a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Answer `<tag> NO` without forwarding it.
    Refuse,
    /// Close both sides of the connection without forwarding it.
    Cut,
    /// SIGKILL this pid, then close the connection without forwarding it.
    Kill(u32),
}

struct Rule {
    needle: String,
    act: Act,
    left: usize,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    lines: Mutex<Vec<(Instant, String)>>,
    responses: Mutex<Vec<(Instant, String)>>,
    hits: AtomicUsize,
}

pub struct CommandProxy {
    pub port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl CommandProxy {
    pub async fn start(upstream: u16) -> CommandProxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                if let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await {
                    tokio::spawn(serve(c, up, sh.clone()));
                }
            }
        });
        CommandProxy { port, shared, task }
    }

    /// Apply `act` to the next `times` commands containing `needle`
    /// (e.g. `" UID MOVE "`).
    pub fn on(&self, needle: &str, act: Act, times: usize) {
        self.shared.rules.lock().unwrap().push(Rule {
            needle: needle.to_string(),
            act,
            left: times,
        });
    }

    /// Forget every rule: forward everything.
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// How many commands a rule acted on.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// The client's command lines containing `needle`, with when they came.
    pub fn commands(&self, needle: &str) -> Vec<(Instant, String)> {
        let g = self.shared.lines.lock().unwrap();
        g.iter().filter(|l| l.1.contains(needle)).cloned().collect()
    }

    /// The first lines of the server's responses containing `needle`.
    pub fn responses(&self, needle: &str) -> Vec<(Instant, String)> {
        let g = self.shared.responses.lock().unwrap();
        g.iter().filter(|l| l.1.contains(needle)).cloned().collect()
    }
}

impl Drop for CommandProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(c: TcpStream, up: TcpStream, sh: Arc<Shared>) {
    let (mut cr, cw) = c.into_split();
    let (mut ur, mut uw) = up.into_split();
    let cw = Arc::new(tokio::sync::Mutex::new(cw));
    let down = {
        let (cw, sh) = (cw.clone(), sh.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut tmp = vec![0u8; 65536];
            loop {
                while let Some(end) = super::faults::unit_end(&buf) {
                    let unit: Vec<u8> = buf.drain(..end).collect();
                    let first = unit.split(|b| *b == b'\r').next().unwrap_or_default();
                    let first = String::from_utf8_lossy(first).to_string();
                    sh.responses.lock().unwrap().push((Instant::now(), first));
                    if cw.lock().await.write_all(&unit).await.is_err() {
                        return;
                    }
                }
                match ur.read(&mut tmp).await {
                    Ok(0) | Err(_) => {
                        let _ = cw.lock().await.shutdown().await;
                        return;
                    }
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                }
            }
        })
    };
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 65536];
    'conn: loop {
        while let Some(nl) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..nl + 2).collect();
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            sh.lines
                .lock()
                .unwrap()
                .push((Instant::now(), text.clone()));
            match matching(&sh, &text) {
                None => {
                    if uw.write_all(&line).await.is_err() {
                        break 'conn;
                    }
                }
                Some(Act::Refuse) => {
                    let tag = text.split(' ').next().unwrap_or("*");
                    let no = format!("{tag} NO [SERVERBUG] refused (test proxy)\r\n");
                    if write_client(&cw, no.as_bytes()).await.is_err() {
                        break 'conn;
                    }
                }
                Some(Act::Cut) => break 'conn,
                Some(Act::Kill(pid)) => {
                    let _ = std::process::Command::new("kill")
                        .arg("-KILL")
                        .arg(pid.to_string())
                        .status();
                    break 'conn;
                }
            }
        }
        match cr.read(&mut tmp).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    down.abort();
    let _ = uw.shutdown().await;
    let _ = cw.lock().await.shutdown().await;
}

async fn write_client(
    cw: &tokio::sync::Mutex<OwnedWriteHalf>,
    bytes: &[u8],
) -> std::io::Result<()> {
    cw.lock().await.write_all(bytes).await
}

/// The action of the first live rule matching `line`, counted.
fn matching(sh: &Shared, line: &str) -> Option<Act> {
    let mut rules = sh.rules.lock().unwrap();
    let r = rules
        .iter_mut()
        .find(|r| r.left > 0 && line.contains(&r.needle))?;
    r.left -= 1;
    sh.hits.fetch_add(1, Ordering::SeqCst);
    Some(r.act)
}
