//! Hearing about new mail: the server's untagged `EXISTS` / `RECENT`
//! notices, whether they come during a command (async-imap puts them on the
//! session's unsolicited-responses channel, which holds 100 and drops the
//! rest, so it is emptied before each listing) or during IDLE; and an IDLE
//! that is ended after a fixed time to prove the connection alive, however
//! often the server's keepalive lines arrive.

use super::connect::{bounded, Conn, ImapSession};
use super::worker::{idle_check, stopped, FolderCtx};
use super::ImapError;
use crate::sources::session_error::LinkError;
use async_imap::extensions::idle::Handle;
use async_imap::imap_proto::{MailboxDatum, Response, Status};
use async_imap::types::UnsolicitedResponse as U;
use futures::StreamExt;
use tokio::sync::watch;

/// Whether any of these responses announces new mail.
fn announces_mail(items: impl Iterator<Item = U>) -> bool {
    items.fold(false, |seen, u| {
        seen | matches!(u, U::Exists(_)) | matches!(u, U::Recent(n) if n > 0)
    })
}

/// Empty the session's unsolicited-responses channel; `true` when the
/// server announced new mail since the last look.
pub fn take_notices(s: &ImapSession) -> bool {
    let rx = &s.unsolicited_responses;
    announces_mail(std::iter::from_fn(|| rx.try_recv().ok()))
}

/// Why an IDLE ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server announced new mail.
    NewMail,
    /// The liveness period is over: DONE proved the connection alive.
    Reissue,
    /// Shutdown, or the folder's lease was lost.
    Stop,
}

/// IDLE until new mail, shutdown, a lost lease or [`idle_check`] of the
/// mailbox timeout has passed since IDLE began (keepalives do not extend
/// it); then DONE. A notice that came in while IDLE was being started ends
/// it at once.
pub async fn idle(
    s: ImapSession,
    ctx: &FolderCtx,
    shutdown: &mut watch::Receiver<bool>,
    lost: &mut watch::Receiver<bool>,
    on_idle: impl FnOnce(),
) -> Result<(ImapSession, Wake), ImapError> {
    let rx = s.unsolicited_responses.clone();
    let mut h = s.idle();
    bounded(ctx.timeout(), "IDLE", h.init()).await?;
    let until = tokio::time::Instant::now() + idle_check(ctx.timeout());
    let wake = if announces_mail(std::iter::from_fn(|| rx.try_recv().ok())) {
        Wake::NewMail
    } else {
        on_idle();
        tokio::select! {
            r = listen(&mut h) => r?,
            _ = tokio::time::sleep_until(until) => Wake::Reissue,
            _ = stopped(shutdown) => Wake::Stop,
            _ = stopped(lost) => Wake::Stop,
        }
    };
    let s = bounded(ctx.timeout(), "DONE", h.done()).await?;
    Ok((s, wake))
}

/// Read IDLE responses until one announces new mail (keepalives, flag
/// changes and expunges are read and ignored).
async fn listen(h: &mut Handle<Conn>) -> Result<Wake, ImapError> {
    loop {
        let Some(resp) = h.next().await else {
            return Err(
                LinkError::Connect("the server closed the connection during IDLE".into()).into(),
            );
        };
        let resp = resp?;
        match resp.parsed() {
            Response::MailboxData(MailboxDatum::Exists(_)) => return Ok(Wake::NewMail),
            Response::MailboxData(MailboxDatum::Recent(n)) if *n > 0 => return Ok(Wake::NewMail),
            Response::Data {
                status: Status::Bye,
                outcome,
            } => {
                return Err(LinkError::Connect(format!(
                    "the server ended the session during IDLE: {}",
                    outcome.information.as_deref().unwrap_or("BYE")
                ))
                .into())
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{announces_mail, U};

    #[test]
    fn exists_and_recent_announce_mail() {
        assert!(!announces_mail([U::Expunge(3), U::Recent(0)].into_iter()));
        assert!(announces_mail([U::Expunge(3), U::Exists(9)].into_iter()));
        assert!(announces_mail([U::Recent(1)].into_iter()));
        assert!(!announces_mail(std::iter::empty()));
    }
}
