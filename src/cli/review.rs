//! `intake review`: the mail held because it may not act as its From
//! address (see `[trust]`), listed, shown, released or rejected.

use super::{out, print_json};
use crate::pipeline::Pipeline;
use crate::store::StoreError;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ReviewCmd {
    /// List review entries, newest first (decided ones until purged).
    List,
    /// Show one entry; `--raw` prints the original bytes.
    Show {
        id: i64,
        #[arg(long)]
        raw: bool,
    },
    /// Run the held mail through the pipeline as its From address.
    Release { id: i64 },
    /// Delete the held mail; a re-delivery of it is dropped.
    Reject { id: i64 },
}

/// Who decided, as the entry records it.
const BY: &str = "cli";

pub async fn run(cmd: ReviewCmd, p: &Pipeline) -> Result<(), StoreError> {
    let store = &p.store;
    match cmd {
        ReviewCmd::List => {
            for e in store.review_list().await? {
                print_json(&e);
            }
        }
        ReviewCmd::Show { id, raw } => {
            let (e, bytes) = store.review_get(id).await?;
            if raw {
                let bytes = bytes.ok_or_else(|| {
                    StoreError::conflict(format!(
                        "review entry {id} was rejected: its bytes are deleted"
                    ))
                })?;
                use std::io::Write;
                let _ = std::io::stdout().write_all(&bytes);
            } else {
                print_json(&e)
            }
        }
        ReviewCmd::Release { id } => print_json(&p.release(id, BY).await?),
        ReviewCmd::Reject { id } => {
            let e = store.review_reject(id, BY).await?;
            out(&format!(
                "review entry {id} rejected: a re-delivery of {} is dropped",
                e.message_id
            ));
        }
    }
    Ok(())
}
