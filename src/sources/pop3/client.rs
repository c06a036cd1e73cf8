//! The POP3 wire: TCP, implicit TLS or STLS (RFC 2595), CAPA (RFC 2449),
//! then AUTH XOAUTH2 with a token, AUTH PLAIN (RFC 5034) where offered, or
//! USER/PASS; UIDL, LIST, RETR and TOP (pipelined when the server offers
//! PIPELINING), DELE and QUIT. Every read waits at most the mailbox's
//! timeout, every line is bounded, and a message is kept up to a limit
//! (the rest is read and dropped, so the session stays in step).

use super::Pop3Error;
use crate::config::{MailboxConfig, Tls};
use crate::sources::imap::connect::{oauth2_token, oauth_valid, wrap_tls, Conn};
use crate::sources::session_error::LinkError;
use base64::Engine;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest status or listing line read whole; message lines may be
/// longer (they are read in pieces of this size).
const LINE: u64 = 64 * 1024;
/// The most lines a listing (UIDL, LIST, CAPA) may have.
const MAX_LISTING: usize = 5_000_000;

/// What the server offers (CAPA).
#[derive(Debug, Clone, Default)]
pub struct Caps {
    pub pipelining: bool,
    pub top: bool,
    pub stls: bool,
    pub sasl: Vec<String>,
}

/// A message read from a multi-line answer.
#[derive(Debug)]
pub struct Fetched {
    /// Its bytes, dot-unstuffed, up to the limit asked for.
    pub bytes: Vec<u8>,
    /// More came than the limit; it was read and dropped.
    pub truncated: bool,
}

/// A logged-in POP3 session.
pub struct Pop3 {
    r: BufReader<Conn>,
    dur: Duration,
    pub caps: Caps,
}

impl Pop3 {
    /// Connect, secure, read the greeting and the capabilities, log in.
    pub async fn open(m: &MailboxConfig) -> Result<Pop3, Pop3Error> {
        let dur = Duration::from_secs(m.timeout.max(1));
        let addr = format!("{}:{}", m.host, m.port);
        let tcp = tokio::time::timeout(dur, TcpStream::connect(&addr))
            .await
            .map_err(|_| LinkError::Timeout(format!("connect to {addr}")))?
            .map_err(|e| LinkError::Connect(format!("{addr}: {e}")))?;
        tcp.set_nodelay(true).ok();
        let conn = match m.tls {
            Tls::Tls => tokio::time::timeout(dur, wrap_tls(m, tcp))
                .await
                .map_err(|_| LinkError::Timeout("TLS handshake".into()))??,
            _ => Conn::Plain(tcp),
        };
        let mut s = Pop3 {
            r: BufReader::new(conn),
            dur,
            caps: Caps::default(),
        };
        let greeting = s.status("greeting").await?;
        if let Err(e) = greeting {
            return Err(LinkError::Connect(format!("{addr} refused: {e}")).into());
        }
        s.caps = s.capa().await?;
        if m.tls == Tls::Starttls {
            if !s.caps.stls {
                return Err(LinkError::Connect(format!(
                    "{addr} does not offer STLS (tls = \"starttls\")"
                ))
                .into());
            }
            s.ok("STLS", "STLS").await?;
            let Conn::Plain(tcp) = s.r.into_inner() else {
                unreachable!("STLS starts from a plain connection")
            };
            let conn = tokio::time::timeout(dur, wrap_tls(m, tcp))
                .await
                .map_err(|_| LinkError::Timeout("TLS handshake".into()))??;
            s = Pop3 {
                r: BufReader::new(conn),
                dur,
                caps: Caps::default(),
            };
            s.caps = s.capa().await?;
        }
        s.login(m).await?;
        Ok(s)
    }

    async fn login(&mut self, m: &MailboxConfig) -> Result<(), Pop3Error> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let refused = |e: String| {
            Pop3Error::from(LinkError::Auth(format!(
                "login as {} refused: {e}",
                m.username
            )))
        };
        let token = oauth2_token(m)
            .await
            .inspect_err(|_| oauth_valid(m, false))?;
        if let Some(token) = token {
            let ir = b64(&format!(
                "user={}\x01auth=Bearer {token}\x01\x01",
                m.username
            ));
            self.send(&format!("AUTH XOAUTH2 {ir}")).await?;
            let mut answer = self.line("AUTH").await?;
            if answer.starts_with('+') && !answer.starts_with("+OK") {
                // The server's error challenge: answered empty, it says -ERR.
                self.send("").await?;
                answer = self.line("AUTH").await?;
            }
            let ok = answer.starts_with("+OK");
            oauth_valid(m, ok);
            return if ok {
                Ok(())
            } else {
                Err(refused(strip_err(&answer)))
            };
        }
        let pw = m.password.resolve().map_err(LinkError::Auth)?;
        let res = if self.caps.sasl.iter().any(|s| s == "PLAIN") {
            let ir = b64(&format!("\0{}\0{pw}", m.username));
            self.send(&format!("AUTH PLAIN {ir}")).await?;
            self.status("AUTH").await?
        } else {
            match self.ok(&format!("USER {}", m.username), "USER").await {
                Ok(_) => {
                    self.send(&format!("PASS {pw}")).await?;
                    self.status("PASS").await?
                }
                Err(Pop3Error::Refused(e)) => Err(e),
                Err(e) => return Err(e),
            }
        };
        res.map(|_| ()).map_err(refused)
    }

    async fn send(&mut self, line: &str) -> Result<(), Pop3Error> {
        let w = self.r.get_mut();
        let fut = async {
            w.write_all(format!("{line}\r\n").as_bytes()).await?;
            w.flush().await
        };
        tokio::time::timeout(self.dur, fut)
            .await
            .map_err(|_| LinkError::Timeout("sending a command".into()))??;
        Ok(())
    }

    /// One line, without its CRLF, at most [`LINE`] bytes.
    async fn line(&mut self, what: &str) -> Result<String, Pop3Error> {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(
            self.dur,
            (&mut self.r).take(LINE).read_until(b'\n', &mut buf),
        )
        .await
        .map_err(|_| {
            LinkError::Timeout(format!("{what}: no answer within {}s", self.dur.as_secs()))
        })??;
        if n == 0 {
            return Err(
                LinkError::Connect(format!("{what}: the server closed the connection")).into(),
            );
        }
        if !buf.ends_with(b"\n") {
            return Err(Pop3Error::Protocol(format!(
                "{what}: a line longer than {LINE} bytes"
            )));
        }
        let s = String::from_utf8_lossy(&buf);
        Ok(s.trim_end_matches(['\r', '\n']).to_string())
    }

    /// A status line: `Ok(text after +OK)` or `Err(text after -ERR)`.
    async fn status(&mut self, what: &str) -> Result<Result<String, String>, Pop3Error> {
        let l = self.line(what).await?;
        if let Some(rest) = l.strip_prefix("+OK") {
            Ok(Ok(rest.trim().to_string()))
        } else if l.starts_with("-ERR") {
            Ok(Err(strip_err(&l)))
        } else {
            Err(Pop3Error::Protocol(format!(
                "{what}: unexpected answer {l:?}"
            )))
        }
    }

    /// Send a command; its -ERR is an error naming it.
    async fn ok(&mut self, cmd: &str, what: &str) -> Result<String, Pop3Error> {
        self.send(cmd).await?;
        self.status(what)
            .await?
            .map_err(|e| Pop3Error::Refused(format!("{what} refused: {e}")))
    }

    /// The lines of a multi-line answer (listings), dot-unstuffed.
    async fn listing(&mut self, what: &str) -> Result<Vec<String>, Pop3Error> {
        let mut out = Vec::new();
        loop {
            let l = self.line(what).await?;
            if l == "." {
                return Ok(out);
            }
            if out.len() >= MAX_LISTING {
                return Err(Pop3Error::Protocol(format!(
                    "{what}: more than {MAX_LISTING} lines"
                )));
            }
            out.push(l.strip_prefix('.').map(str::to_string).unwrap_or(l));
        }
    }

    /// A message's multi-line answer, kept up to `limit` bytes, whole
    /// within ten timeouts (at least a minute) however the server trickles.
    async fn message(&mut self, limit: usize) -> Result<Fetched, Pop3Error> {
        let whole = (self.dur * 10).max(Duration::from_secs(60));
        tokio::time::timeout(whole, self.message_lines(limit))
            .await
            .map_err(|_| {
                LinkError::Timeout(format!("a message took longer than {}s", whole.as_secs()))
            })?
    }

    async fn message_lines(&mut self, limit: usize) -> Result<Fetched, Pop3Error> {
        let mut out = Vec::new();
        let mut truncated = false;
        let mut line = Vec::with_capacity(1024);
        let mut at_start = true;
        loop {
            line.clear();
            let n = tokio::time::timeout(
                self.dur,
                (&mut self.r).take(LINE).read_until(b'\n', &mut line),
            )
            .await
            .map_err(|_| {
                LinkError::Timeout(format!("RETR stalled for {}s", self.dur.as_secs()))
            })??;
            if n == 0 {
                return Err(LinkError::Connect(
                    "the server closed the connection inside a message".into(),
                )
                .into());
            }
            let mut piece = &line[..];
            if at_start {
                if piece == b".\r\n" || piece == b".\n" {
                    return Ok(Fetched {
                        bytes: out,
                        truncated,
                    });
                }
                if piece.starts_with(b".") {
                    piece = &piece[1..];
                }
            }
            at_start = line.ends_with(b"\n");
            if !truncated && out.len() + piece.len() <= limit {
                out.extend_from_slice(piece);
            } else {
                truncated = true;
            }
        }
    }

    /// CAPA; a server without it offers nothing beyond RFC 1939.
    async fn capa(&mut self) -> Result<Caps, Pop3Error> {
        self.send("CAPA").await?;
        if self.status("CAPA").await?.is_err() {
            return Ok(Caps::default());
        }
        let mut caps = Caps::default();
        for l in self.listing("CAPA").await? {
            let mut words = l.split_whitespace();
            match words.next().map(str::to_ascii_uppercase).as_deref() {
                Some("PIPELINING") => caps.pipelining = true,
                Some("TOP") => caps.top = true,
                Some("STLS") => caps.stls = true,
                Some("SASL") => caps.sasl = words.map(str::to_ascii_uppercase).collect(),
                _ => {}
            }
        }
        Ok(caps)
    }

    /// `UIDL`: (message number, unique id) in maildrop order. A server
    /// without UIDL cannot be imported exactly once and is refused.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        self.send("UIDL").await?;
        if let Err(e) = self.status("UIDL").await? {
            return Err(Pop3Error::Protocol(format!(
                "the server does not support UIDL ({e}): without unique ids a POP3 maildrop cannot be imported exactly once"
            )));
        }
        let mut out = Vec::new();
        let (mut nums, mut ids) = (
            std::collections::HashSet::new(),
            std::collections::HashSet::new(),
        );
        for l in self.listing("UIDL").await? {
            let mut w = l.split_whitespace();
            match (w.next().and_then(|n| n.parse().ok()), w.next()) {
                (Some(n), Some(id)) if id.len() <= 70 => {
                    if !nums.insert(n) || !ids.insert(id.to_string()) {
                        return Err(Pop3Error::Protocol(format!(
                            "UIDL lists message {n} or unique id {id:?} twice"
                        )));
                    }
                    out.push((n, id.to_string()))
                }
                _ => return Err(Pop3Error::Protocol(format!("UIDL: unreadable line {l:?}"))),
            }
        }
        Ok(out)
    }

    /// `LIST`: message number → size in octets.
    pub async fn list(&mut self) -> Result<HashMap<u32, u64>, Pop3Error> {
        self.ok("LIST", "LIST").await?;
        let mut out = HashMap::new();
        for l in self.listing("LIST").await? {
            let mut w = l.split_whitespace();
            if let (Some(Ok(n)), Some(Ok(size))) =
                (w.next().map(str::parse), w.next().map(str::parse))
            {
                out.insert(n, size);
            }
        }
        Ok(out)
    }

    /// `RETR` (or `TOP n 0` with `headers`) for each number, pipelined
    /// when the server allows: each answer, or the server's refusal.
    pub async fn fetch_many(
        &mut self,
        nums: &[u32],
        headers: bool,
        limit: usize,
    ) -> Result<Vec<Result<Fetched, String>>, Pop3Error> {
        let cmd = |n: u32| match headers {
            true => format!("TOP {n} 0"),
            false => format!("RETR {n}"),
        };
        let mut out = Vec::with_capacity(nums.len());
        let group = if self.caps.pipelining { 50 } else { 1 };
        for part in nums.chunks(group) {
            let cmds: Vec<String> = part.iter().map(|n| cmd(*n)).collect();
            self.send(&cmds.join("\r\n")).await?;
            for _ in part {
                match self.status("RETR").await? {
                    Ok(_) => out.push(Ok(self.message(limit).await?)),
                    Err(e) => out.push(Err(e)),
                }
            }
        }
        Ok(out)
    }

    /// `DELE` each number (carried out by the server at QUIT).
    pub async fn dele_many(&mut self, nums: &[u32]) -> Result<(), Pop3Error> {
        let group = if self.caps.pipelining { 100 } else { 1 };
        for part in nums.chunks(group) {
            let cmds: Vec<String> = part.iter().map(|n| format!("DELE {n}")).collect();
            self.send(&cmds.join("\r\n")).await?;
            for n in part {
                if let Err(e) = self.status("DELE").await? {
                    return Err(Pop3Error::Refused(format!("DELE {n} refused: {e}")));
                }
            }
        }
        Ok(())
    }

    /// `QUIT`: the server removes what was marked DELE only on its +OK.
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.ok("QUIT", "QUIT").await.map(|_| ())
    }
}

/// The text of an `-ERR` line.
fn strip_err(l: &str) -> String {
    l.strip_prefix("-ERR").unwrap_or(l).trim().to_string()
}
