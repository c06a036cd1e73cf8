//! `intake check-config --connect`: beyond the file, try what it points at —
//! the database, every mailbox (log in, open each folder read-only) and the
//! SMTP server — and say which work, with the server's own words for those
//! that do not.

use crate::config::{Config, Protocol};
use crate::sources::imap::{connect, utf7};
use crate::store::Store;
use std::time::Duration;

/// One thing tried: what it is, and what came of it.
pub struct Check {
    pub what: String,
    pub result: Result<String, String>,
}

/// `check-config --connect` after the file passed: one line per check,
/// exit 1 when one failed.
pub fn report(cfg: &Config) -> std::process::ExitCode {
    use std::process::ExitCode;
    super::out("configuration ok");
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("intake: cannot start runtime: {e}");
            return ExitCode::from(super::EX_TEMPFAIL);
        }
    };
    let checks = rt.block_on(check_all(cfg));
    let mut failed = 0;
    for c in &checks {
        match &c.result {
            Ok(m) => super::out(&format!("{}: ok: {m}", c.what)),
            Err(e) => {
                failed += 1;
                super::out(&format!("{}: FAILED: {e}", c.what));
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Try every connection the configuration describes, one after another.
pub async fn check_all(cfg: &Config) -> Vec<Check> {
    let mut out = vec![Check {
        what: format!("database {}", redact(&cfg.database.url)),
        result: database(&cfg.database.url, &cfg.blobs).await,
    }];
    for m in &cfg.mailboxes {
        let result = match m.protocol {
            Protocol::Imap => imap(m).await,
            Protocol::Pop3 => pop3(m).await,
            Protocol::Jmap => jmap(m).await,
            Protocol::Graph => graph(m).await,
        };
        out.push(Check {
            what: format!("mailbox {} ({})", m.name, endpoint(m)),
            result,
        });
    }
    if let Some(s) = &cfg.smtp {
        out.push(Check {
            what: format!("smtp {}:{}", s.host, s.port),
            result: smtp(s).await,
        });
    }
    out
}

/// Where a mailbox is, in its kind's terms.
fn endpoint(m: &crate::config::MailboxConfig) -> String {
    match m.protocol {
        Protocol::Imap | Protocol::Pop3 => {
            format!(
                "{} {}:{} as {}",
                m.protocol.as_str(),
                m.host,
                m.port,
                m.username
            )
        }
        Protocol::Jmap => format!("jmap {}", m.url.as_deref().unwrap_or_default()),
        Protocol::Graph => format!("graph {}", m.mailbox.as_deref().unwrap_or_default()),
    }
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            match cred.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn database(url: &str, blobs: &crate::config::BlobsConfig) -> Result<String, String> {
    let fut = async {
        // With the configured blob store (its directory is created, or its
        // bucket's client built), as the daemon opens it.
        let blobs = blobs.settings().map_err(|e| format!("[blobs]: {e}"))?;
        let s = Store::connect_with(url, 1, &blobs)
            .await
            .map_err(|e| e.to_string())?;
        let ok = s.ping().await;
        s.close().await;
        if ok {
            Ok("connected".to_string())
        } else {
            Err("connected, but a query failed".to_string())
        }
    };
    tokio::time::timeout(Duration::from_secs(15), fut)
        .await
        .unwrap_or_else(|_| Err("no answer within 15 s".into()))
}

/// Log in, count the maildrop by UIDL (refused where the server lacks it), QUIT.
async fn pop3(m: &crate::config::MailboxConfig) -> Result<String, String> {
    use crate::sources::pop3::client::Pop3;
    let mut s = Pop3::open(m).await.map_err(|e| e.to_string())?;
    let n = s.uidl().await.map_err(|e| e.to_string())?.len();
    s.quit().await.map_err(|e| e.to_string())?;
    Ok(format!("logged in; {n} messages in the maildrop"))
}

/// Get a token and find the folder.
async fn graph(m: &crate::config::MailboxConfig) -> Result<String, String> {
    use crate::sources::graph::{client::Graph, sync::folder_id};
    let mut g = Graph::open(m).await.map_err(|e| e.to_string())?;
    let folder = m.folder.as_deref().unwrap_or("inbox");
    folder_id(&mut g, folder).await.map_err(|e| e.to_string())?;
    Ok(format!("token granted; folder {folder} found"))
}

/// Find the session and the mailbox.
async fn jmap(m: &crate::config::MailboxConfig) -> Result<String, String> {
    use crate::sources::jmap::{session::Jmap, sync::mailbox_id};
    let j = Jmap::open(m).await.map_err(|e| e.to_string())?;
    let folder = m.folder.as_deref().unwrap_or("inbox");
    mailbox_id(&j, folder).await.map_err(|e| e.to_string())?;
    Ok(format!(
        "session found; account {}, mailbox {folder}",
        j.account
    ))
}

async fn imap(m: &crate::config::MailboxConfig) -> Result<String, String> {
    let dur = Duration::from_secs(m.timeout.max(1));
    let mut s = connect::open(m).await.map_err(|e| e.to_string())?;
    let mut seen = Vec::new();
    let mut failed = Vec::new();
    for folder in m.folder_list() {
        match tokio::time::timeout(dur, s.examine(utf7::encode(&folder))).await {
            Ok(Ok(mb)) => seen.push(format!("{folder}: {} messages", mb.exists)),
            Ok(Err(e)) => failed.push(format!("folder {folder}: {e}")),
            Err(_) => failed.push(format!(
                "folder {folder}: no answer within {} s",
                dur.as_secs()
            )),
        }
    }
    let _ = tokio::time::timeout(dur.min(Duration::from_secs(3)), s.logout()).await;
    if failed.is_empty() {
        Ok(format!("logged in; {}", seen.join(", ")))
    } else {
        Err(format!("logged in, but {}", failed.join("; ")))
    }
}

async fn smtp(s: &crate::config::SmtpConfig) -> Result<String, String> {
    let t = crate::notify::smtp::build_transport(s)?;
    match t.test_connection().await {
        Ok(true) => Ok(if s.username.is_some() {
            "connected and logged in".into()
        } else {
            "connected".into()
        }),
        Ok(false) => Err("the server did not answer NOOP".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_left_out_of_database_urls() {
        assert_eq!(
            super::redact("postgres://intake:s3cret@db.example:5432/intake"),
            "postgres://intake:***@db.example:5432/intake"
        );
        assert_eq!(
            super::redact("sqlite:///var/lib/intake/intake.db"),
            "sqlite:///var/lib/intake/intake.db"
        );
        assert_eq!(
            super::redact("postgres://intake@db/x"),
            "postgres://intake@db/x"
        );
    }
}
