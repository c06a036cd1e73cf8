//! Network faults and helper servers for the failure tests: a TCP proxy
//! that can be switched to a black hole, a server that accepts but never
//! greets, and an OAuth2 token-introspection endpoint for Dovecot.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy 127.0.0.1:port → 127.0.0.1:upstream. In black-hole mode it
/// keeps every connection open but forwards nothing in either direction; a
/// connection that saw the black hole stays a sink after healing (its byte
/// stream is broken), new connections are forwarded again.
pub struct Proxy {
    pub port: u16,
    blackhole: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let blackhole = Arc::new(AtomicBool::new(false));
        let bh = blackhole.clone();
        let task = tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                tokio::spawn(pipe(c, upstream, bh.clone()));
            }
        });
        Proxy {
            port,
            blackhole,
            task,
        }
    }

    pub fn set_blackhole(&self, on: bool) {
        self.blackhole.store(on, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(mut c: TcpStream, upstream: u16, bh: Arc<AtomicBool>) {
    let mut up = if bh.load(Ordering::SeqCst) {
        None
    } else {
        TcpStream::connect(("127.0.0.1", upstream)).await.ok()
    };
    let (mut b1, mut b2) = (vec![0u8; 16384], vec![0u8; 16384]);
    loop {
        let Some(u) = up.as_mut() else {
            // Sink: swallow whatever the client sends until it hangs up.
            match c.read(&mut b1).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        };
        tokio::select! {
            r = c.read(&mut b1) => {
                let n = match r { Ok(0) | Err(_) => return, Ok(n) => n };
                if bh.load(Ordering::SeqCst) { up = None; continue; }
                if u.write_all(&b1[..n]).await.is_err() { return; }
            }
            r = u.read(&mut b2) => {
                let n = match r { Ok(0) | Err(_) => return, Ok(n) => n };
                if bh.load(Ordering::SeqCst) { up = None; continue; }
                if c.write_all(&b2[..n]).await.is_err() { return; }
            }
        }
    }
}

/// A server that accepts TCP connections and never says a word.
pub async fn mute_server() -> (u16, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = l.accept().await {
            held.push(c);
        }
    });
    (port, task)
}

/// An RFC 7662 token-introspection endpoint (`POST /introspect`, form body
/// `token=...`): `{"active": true, "username": user}` for the good token,
/// `{"active": false}` otherwise. Counts the requests it answers.
pub struct Introspection {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Introspection {
    pub async fn start(good_token: &str, user: &str) -> Introspection {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let (good, user, n) = (good_token.to_string(), user.to_string(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                tokio::spawn(serve_http(c, good.clone(), user.clone(), n.clone()));
            }
        });
        Introspection {
            port,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/introspect", self.port)
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Introspection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keep-alive HTTP/1.1: answer requests until the peer closes.
async fn serve_http(mut c: TcpStream, good: String, user: String, n: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match c.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&tmp[..k]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match c.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&tmp[..k]),
            }
        }
        let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
        buf.drain(..end + 4 + len);
        n.fetch_add(1, Ordering::SeqCst);
        let token = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .unwrap_or("");
        let json = if token == good {
            format!("{{\"active\": true, \"username\": \"{user}\"}}")
        } else {
            "{\"active\": false}".to_string()
        };
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        if c.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// What [`FetchMangler`] does to a `BODY[]` FETCH response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mangle {
    /// Leave it out, as a server that "forgets" a message would.
    Drop,
    /// Replace it with a response no IMAP parser accepts.
    Garble,
}

/// A TCP proxy to an IMAP server that mangles the first `times` untagged
/// `FETCH (UID <uid> ... BODY[] {n}` responses for one UID (other
/// responses, including `BODY[HEADER]`, pass unchanged). Counts its hits.
pub struct FetchMangler {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FetchMangler {
    pub async fn start(upstream: u16, uid: u32, how: Mangle, times: usize) -> FetchMangler {
        Self::start_with(upstream, uid, how, times, None).await
    }

    /// A proxy that answers every client command containing `command`
    /// (e.g. `" UID STORE "`) with a tagged NO itself, never forwarding it.
    pub async fn refusing(upstream: u16, command: &str) -> FetchMangler {
        Self::start_with(upstream, 0, Mangle::Drop, 0, Some(command.to_string())).await
    }

    async fn start_with(
        upstream: u16,
        uid: u32,
        how: Mangle,
        times: usize,
        refuse: Option<String>,
    ) -> FetchMangler {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let (cr, cw) = c.into_split();
                let cw = Arc::new(tokio::sync::Mutex::new(cw));
                let (mut ur, uw) = up.into_split();
                tokio::spawn(client_to_server(
                    cr,
                    uw,
                    cw.clone(),
                    refuse.clone(),
                    h.clone(),
                ));
                let h = h.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = vec![0u8; 65536];
                    loop {
                        while let Some(end) = unit_end(&buf) {
                            let unit: Vec<u8> = buf.drain(..end).collect();
                            let out = mangle(&unit, uid, how, times, &h);
                            if cw.lock().await.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                        match ur.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                });
            }
        });
        FetchMangler { port, hits, task }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for FetchMangler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forward the client's commands, refusing those containing `refuse`.
async fn client_to_server(
    mut cr: tokio::net::tcp::OwnedReadHalf,
    mut uw: tokio::net::tcp::OwnedWriteHalf,
    cw: Arc<tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>>,
    refuse: Option<String>,
    hits: Arc<AtomicUsize>,
) {
    let Some(refuse) = refuse else {
        let _ = tokio::io::copy(&mut cr, &mut uw).await;
        return;
    };
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 65536];
    loop {
        while let Some(end) = unit_end(&buf) {
            let unit: Vec<u8> = buf.drain(..end).collect();
            let line = String::from_utf8_lossy(&unit).to_string();
            if line.contains(&refuse) {
                hits.fetch_add(1, Ordering::SeqCst);
                let tag = line.split(' ').next().unwrap_or("*");
                let no = format!(
                    "{tag} NO [CANNOT] {} refused (test proxy)\r\n",
                    refuse.trim()
                );
                if cw.lock().await.write_all(no.as_bytes()).await.is_err() {
                    return;
                }
            } else if uw.write_all(&unit).await.is_err() {
                return;
            }
        }
        match cr.read(&mut tmp).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

/// The end of the first complete response in `buf` (lines joined by literals).
pub(crate) fn unit_end(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let nl = buf[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
        let line = &buf[pos..nl];
        let lit = line.strip_suffix(b"}").and_then(|l| {
            let open = l.iter().rposition(|b| *b == b'{')?;
            let digits = std::str::from_utf8(&l[open + 1..]).ok()?;
            digits.trim_end_matches('+').parse::<usize>().ok()
        });
        match lit {
            Some(n) => {
                pos = nl + 2 + n;
                if pos > buf.len() {
                    return None;
                }
            }
            None => return Some(nl + 2),
        }
    }
}

fn mangle(unit: &[u8], uid: u32, how: Mangle, times: usize, hits: &AtomicUsize) -> Vec<u8> {
    let first = unit
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| &unit[..p])
        .unwrap_or(unit);
    let first = String::from_utf8_lossy(first);
    let target = first.starts_with("* ")
        && first.contains(" FETCH (")
        && (first.contains(&format!("UID {uid} ")) || first.contains(&format!("UID {uid})")))
        && first.contains("BODY[] {");
    if !target || hits.load(Ordering::SeqCst) >= times {
        return unit.to_vec();
    }
    hits.fetch_add(1, Ordering::SeqCst);
    match how {
        Mangle::Drop => Vec::new(),
        Mangle::Garble => {
            let seq = first.split(' ').nth(1).unwrap_or("1");
            format!("* {seq} FETCH (UID {uid} BODY[] ### not IMAP ###)\r\n").into_bytes()
        }
    }
}
