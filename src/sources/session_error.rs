//! What every mailbox kind's session errors share: the trait the polling
//! worker reads them through, and [`LinkError`], the ways of failing to
//! reach or enter a mail server (connect, authenticate, time out), which
//! IMAP, POP3, JMAP and Graph each wrap rather than repeat.

/// Why a session ended, for the status and the logs.
pub trait SessionError: std::fmt::Display + Send + 'static {
    /// The lease was lost (not a failure: another daemon works it now).
    fn lease_lost(&self) -> bool;
}

/// The server could not be reached, refused our credentials, or stopped
/// answering. The text says which server and what it said.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// TCP, TLS, a greeting or a capability we need.
    #[error("connect: {0}")]
    Connect(String),
    /// Credentials refused, or the secret or token could not be read.
    #[error("authentication: {0}")]
    Auth(String),
    /// No answer within the mailbox's `timeout`.
    #[error("timeout: {0}")]
    Timeout(String),
}

impl From<tokio::time::error::Elapsed> for LinkError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        LinkError::Timeout("operation timed out".into())
    }
}

/// An error with its causes, which some crates (reqwest, rustls) keep out
/// of their own message.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::imap::ImapError;
    use crate::sources::jmap::JmapError;
    use crate::sources::pop3::Pop3Error;

    #[test]
    fn every_kind_words_a_link_failure_alike() {
        let imap: ImapError = LinkError::Auth("login as a refused".into()).into();
        let pop3: Pop3Error = LinkError::Auth("login as a refused".into()).into();
        let jmap: JmapError = LinkError::Auth("login as a refused".into()).into();
        for text in [imap.to_string(), pop3.to_string(), jmap.to_string()] {
            assert_eq!(text, "authentication: login as a refused");
        }
        // IMAP's helpers keep their kind of failure when POP3 uses them.
        let via: Pop3Error = ImapError::from(LinkError::Timeout("TLS".into())).into();
        assert!(
            matches!(via, Pop3Error::Link(LinkError::Timeout(_))),
            "{via}"
        );
    }

    #[test]
    fn an_error_chain_names_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
