//! Opening an IMAP session: TCP, implicit TLS or STARTTLS (rustls with the
//! webpki roots), the greeting, then LOGIN or AUTHENTICATE XOAUTH2 — every
//! step bounded by the mailbox's timeout.

use super::ImapError;
use crate::config::{MailboxConfig, Tls};
use crate::sources::session_error::LinkError;
use async_imap::{Client, Session};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The transport under an IMAP session.
#[derive(Debug)]
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A logged-in session.
pub type ImapSession = Session<Conn>;

/// Run one step with the mailbox timeout; `what` names it in the error.
pub async fn bounded<T, E, F>(dur: Duration, what: &str, fut: F) -> Result<T, ImapError>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: Into<ImapError>,
{
    match tokio::time::timeout(dur, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => {
            Err(LinkError::Timeout(format!("{what} took longer than {}s", dur.as_secs())).into())
        }
    }
}

/// rustls with the public web roots, plus the mailbox's `ca_file` if any.
fn tls_connector(m: &MailboxConfig) -> Result<tokio_rustls::TlsConnector, ImapError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(f) = &m.ca_file {
        let certs = CertificateDer::pem_file_iter(f)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| LinkError::Connect(format!("ca_file {f}: {e}")))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(LinkError::Connect(format!("ca_file {f}: no usable certificate")).into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LinkError::Connect(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

pub(crate) async fn wrap_tls(m: &MailboxConfig, tcp: TcpStream) -> Result<Conn, ImapError> {
    let name = rustls::pki_types::ServerName::try_from(m.host.clone()).map_err(|e| {
        LinkError::Connect(format!("{:?} is not a valid TLS server name: {e}", m.host))
    })?;
    let tls = tls_connector(m)?.connect(name, tcp).await.map_err(|e| {
        LinkError::Connect(format!("TLS handshake with {}:{}: {e}", m.host, m.port))
    })?;
    Ok(Conn::Tls(Box::new(tls)))
}

/// STARTTLS on a fresh plain connection, before async-imap takes over.
async fn starttls(m: &MailboxConfig, tcp: TcpStream) -> Result<Conn, ImapError> {
    let mut r = BufReader::new(tcp);
    let mut line = String::new();
    r.read_line(&mut line).await?;
    if !line.starts_with("* OK") {
        return Err(LinkError::Connect(format!("unexpected greeting: {}", line.trim_end())).into());
    }
    r.get_mut().write_all(b"s0 STARTTLS\r\n").await?;
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Err(LinkError::Connect("connection closed during STARTTLS".into()).into());
        }
        if let Some(rest) = line.strip_prefix("s0 ") {
            if !rest.starts_with("OK") {
                return Err(
                    LinkError::Connect(format!("STARTTLS refused: {}", rest.trim_end())).into(),
                );
            }
            break;
        }
    }
    wrap_tls(m, r.into_inner()).await
}

/// XOAUTH2 SASL response.
struct XOAuth2 {
    user: String,
    token: String,
}

impl async_imap::Authenticator for &XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token)
    }
}

/// The XOAUTH2 access token from `oauth2_token_file` or `oauth2_token_command`.
pub async fn oauth2_token(m: &MailboxConfig) -> Result<Option<String>, ImapError> {
    if let Some(f) = &m.oauth2_token_file {
        let t = tokio::fs::read_to_string(f)
            .await
            .map_err(|e| LinkError::Auth(format!("cannot read oauth2_token_file {f}: {e}")))?;
        return Ok(Some(t.trim().to_string()));
    }
    if let Some(cmd) = &m.oauth2_token_command {
        let out = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| LinkError::Auth(format!("cannot run oauth2_token_command: {e}")))?;
        if !out.status.success() {
            return Err(LinkError::Auth(format!(
                "oauth2_token_command failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .into());
        }
        return Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ));
    }
    Ok(None)
}

/// Connect, read the greeting and log in.
pub async fn open(m: &MailboxConfig) -> Result<ImapSession, ImapError> {
    let dur = Duration::from_secs(m.timeout.max(1));
    let addr = format!("{}:{}", m.host, m.port);
    let tcp = bounded(dur, "connect", TcpStream::connect(&addr)).await?;
    tcp.set_nodelay(true).ok();
    let (conn, greeted) = match m.tls {
        Tls::None => (Conn::Plain(tcp), false),
        Tls::Starttls => (bounded(dur, "STARTTLS", starttls(m, tcp)).await?, true),
        Tls::Tls => (
            bounded(dur, "TLS handshake", wrap_tls(m, tcp)).await?,
            false,
        ),
    };
    let mut client = Client::new(conn);
    if !greeted {
        let g = bounded(dur, "greeting", client.read_response()).await?;
        if g.is_none() {
            return Err(LinkError::Connect(format!(
                "{addr} closed the connection before its greeting"
            ))
            .into());
        }
    }
    let token = oauth2_token(m)
        .await
        .inspect_err(|_| oauth_valid(m, false))?;
    let oauth = token.is_some();
    let res = match token {
        Some(token) => {
            let auth = XOAuth2 {
                user: m.username.clone(),
                token,
            };
            bounded(dur, "AUTHENTICATE", async {
                client
                    .authenticate("XOAUTH2", &auth)
                    .await
                    .map_err(|(e, _)| e)
            })
            .await
        }
        None => {
            let pw = m.password.resolve().map_err(LinkError::Auth)?;
            bounded(dur, "LOGIN", async {
                client.login(&m.username, pw).await.map_err(|(e, _)| e)
            })
            .await
        }
    };
    let res = res.map_err(|e| match e {
        ImapError::Imap(async_imap::error::Error::No(msg))
        | ImapError::Imap(async_imap::error::Error::Bad(msg)) => LinkError::Auth(format!(
            "login as {} refused: {}",
            m.username,
            server_text(&msg)
        ))
        .into(),
        other => other,
    });
    // A timeout or a dropped connection says nothing about the token.
    match &res {
        Ok(_) if oauth => oauth_valid(m, true),
        Err(ImapError::Link(LinkError::Auth(_))) if oauth => oauth_valid(m, false),
        _ => {}
    }
    res
}

/// `intake_oauth_token_valid`: 1 after an XOAUTH2 login succeeded, 0 when
/// the token could not be obtained or the server refused it.
pub(crate) fn oauth_valid(m: &MailboxConfig, valid: bool) {
    metrics::gauge!("intake_oauth_token_valid", "mailbox" => m.name.clone())
        .set(f64::from(u8::from(valid)));
}

/// The server's own words from async-imap's rendering of a NO or BAD
/// answer (`code: None, info: Some("[AUTHENTICATIONFAILED] …")`).
fn server_text(msg: &str) -> String {
    match msg.split_once("info: Some(\"") {
        Some((_, rest)) => rest
            .rsplit_once("\")")
            .map_or(rest, |(t, _)| t)
            .replace("\\\"", "\""),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_read_in_the_servers_words() {
        assert_eq!(
            super::server_text(
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(super::server_text("Bad password"), "Bad password");
    }
}
