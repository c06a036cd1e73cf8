//! `intake quarantine`: messages that could not be processed, kept raw
//! with the reason, listed, shown and replayed.

use super::print_json;
use crate::pipeline::Pipeline;
use crate::store::StoreError;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum QuarantineCmd {
    /// List quarantined messages.
    List,
    /// Show one entry; `--raw` prints the original bytes.
    Show {
        id: i64,
        #[arg(long)]
        raw: bool,
    },
    /// Run a quarantined message through the pipeline again.
    Replay { id: i64 },
}

pub async fn run(cmd: QuarantineCmd, p: &Pipeline) -> Result<(), StoreError> {
    match cmd {
        QuarantineCmd::List => {
            for q in p.store.quarantine_list().await? {
                print_json(&q);
            }
        }
        QuarantineCmd::Show { id, raw } => {
            let (e, bytes) = p.store.quarantine_get(id).await?;
            if raw {
                use std::io::Write;
                let _ = std::io::stdout().write_all(&bytes);
            } else {
                print_json(&e)
            }
        }
        QuarantineCmd::Replay { id } => print_json(&p.replay(id).await?),
    }
    Ok(())
}
