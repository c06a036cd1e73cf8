//! IMAP mailboxes: one worker per (mailbox, folder) that drains new mail by
//! UID into the pipeline, committing the folder's cursor (and the
//! acknowledgement it now owes) with the messages, acknowledges on the
//! server only after the commit, looks again until a pass finds nothing new,
//! then waits (IDLE or polling) for more — reconnecting with backoff and
//! never blocking the other folders.

pub mod ack;
pub mod connect;
pub mod fetch;
pub mod idle;
pub mod lease;
pub mod owed;
pub mod retry;
pub mod status;
pub mod utf7;
pub mod worker;

pub use status::{FolderStatus, Registry, State};
pub use worker::{drain_folder_once, run_folder, FolderCtx};

use crate::sources::session_error::LinkError;
use crate::store::StoreError;

/// Why a folder's session ended.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// Connect, authenticate, time out: as every kind fails.
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("imap: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("folder {0}")]
    Folder(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("lease lost: another daemon works this folder now")]
    LeaseLost,
    #[error("lease for this folder is held by another daemon")]
    LeaseBusy,
}

impl From<tokio::time::error::Elapsed> for ImapError {
    fn from(e: tokio::time::error::Elapsed) -> Self {
        LinkError::from(e).into()
    }
}

/// `1:3,5,7:9` for sorted UIDs.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The UIDs of a set written by [`uid_set`] (no `*`), sorted; `None` when
/// it is not such a set.
pub fn parse_uid_set(set: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in set.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
        if a > b || b - a > 10_000_000 {
            return None;
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_sets_parse_back() {
        for v in [&[1u32, 2, 3, 5, 7, 8, 9][..], &[4], &[]] {
            assert_eq!(super::parse_uid_set(&super::uid_set(v)).unwrap(), v);
        }
        assert_eq!(super::parse_uid_set("3:1"), None);
        assert_eq!(super::parse_uid_set("1:*"), None);
    }

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(super::uid_set(&[1, 2, 3, 5, 7, 8, 9]), "1:3,5,7:9");
        assert_eq!(super::uid_set(&[4]), "4");
        assert_eq!(super::uid_set(&[]), "");
    }
}
