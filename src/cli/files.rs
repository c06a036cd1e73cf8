//! `intake comments raw ID` and `intake attachments get ID`: the bytes a
//! comment came with, written to standard output (redirect to a file).

use crate::store::{BodyRef, Store, StoreError};
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

/// Copy a body to standard output as it is read.
async fn write_out(store: &Store, body: &BodyRef) -> Result<(), StoreError> {
    use futures::TryStreamExt;
    let (_, mut s) = store.open_body(body).await?;
    let mut out = std::io::stdout().lock();
    let failed =
        |e: std::io::Error| StoreError::invalid(format!("writing to standard output: {e}"));
    while let Some(chunk) = s
        .try_next()
        .await
        .map_err(|e| StoreError::Corrupt(format!("reading the body: {e}")))?
    {
        out.write_all(&chunk).map_err(failed)?;
    }
    out.flush().map_err(failed)
}

pub async fn comments(cmd: CommentsCmd, store: &Store) -> Result<(), StoreError> {
    let CommentsCmd::Raw { id } = cmd;
    let raw = store.comment_raw_ref(id).await?.ok_or_else(|| {
        StoreError::not_found(format!(
            "comment {id} has no raw mail: it did not come by mail (a gateway's contact or a note), or [retention] dropped it"
        ))
    })?;
    write_out(store, &raw).await
}

pub async fn attachments(cmd: AttachmentsCmd, store: &Store) -> Result<(), StoreError> {
    let AttachmentsCmd::Get { id, info } = cmd;
    let f = store.attachment_file(id).await?;
    if info {
        super::print_json(&f);
        return Ok(());
    }
    match (&f.body, &f.omitted, &f.url) {
        (Some(body), _, _) => write_out(store, body).await,
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
