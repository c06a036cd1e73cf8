//! `intake comments raw ID` and `intake attachments get ID`: the bytes a
//! comment came with, written to standard output (redirect to a file).

use crate::store::{Store, StoreError};
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum CommentsCmd {
    /// Write the raw mail comment ID was stored from to standard output.
    Raw { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum AttachmentsCmd {
    /// Write attachment ID's body (`attachments[].id` in the export) to
    /// standard output; `--info` prints its name, type and size instead.
    Get {
        id: i64,
        #[arg(long)]
        info: bool,
    },
}

fn write_out(bytes: &[u8]) -> Result<(), StoreError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .map_err(|e| StoreError::invalid(format!("writing to standard output: {e}")))
}

pub async fn comments(cmd: CommentsCmd, store: &Store) -> Result<(), StoreError> {
    let CommentsCmd::Raw { id } = cmd;
    let raw = store.comment_raw(id).await?.ok_or_else(|| {
        StoreError::not_found(format!(
            "comment {id} has no raw mail: it did not come by mail (a gateway's contact or a note)"
        ))
    })?;
    write_out(&raw)
}

pub async fn attachments(cmd: AttachmentsCmd, store: &Store) -> Result<(), StoreError> {
    let AttachmentsCmd::Get { id, info } = cmd;
    let f = store.attachment_file(id).await?;
    if info {
        super::print_json(&f);
        return Ok(());
    }
    match (&f.data, &f.omitted, &f.url) {
        (Some(data), _, _) => write_out(data),
        (None, Some(why), _) => Err(StoreError::not_found(format!(
            "attachment {id} was not stored (omitted: {why}); the raw mail keeps it: intake comments raw {}",
            f.comment_id
        ))),
        (None, None, Some(url)) => Err(StoreError::not_found(format!(
            "attachment {id} is a link, not stored here: {url}"
        ))),
        (None, None, None) => Err(StoreError::not_found(format!(
            "attachment {id} has no stored body"
        ))),
    }
}
