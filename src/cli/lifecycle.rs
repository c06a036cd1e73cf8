//! The data's lifecycle: `intake blobs gc|verify`, the blob half of
//! `intake migrate` (moving an older database's raw mails and attachment
//! bodies into the blob store) and `intake retention run`.

use crate::store::{BlobCursor, BlobMove, Store, StoreError};
use clap::Subcommand;
use std::io::IsTerminal;

#[derive(Subcommand, Debug)]
pub enum BlobsCmd {
    /// Remove blobs that no row names and that are older than the grace
    /// period (`[blobs] orphan_grace_hours`, default 24); prints what it found.
    Gc {
        /// Count only; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Override the grace period (hours, at least 1).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        grace_hours: Option<u64>,
    },
    /// Read every blob a row names, check its size and hash; lists the rows
    /// whose blob is missing or damaged and exits 1 when there is one.
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum RetentionCmd {
    /// Apply `[retention]` now, in small batches; prints what went by kind.
    Run {
        /// Say what would go; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn retention(
    cmd: RetentionCmd,
    store: &Store,
    cfg: &crate::config::Config,
) -> Result<(), StoreError> {
    let RetentionCmd::Run { dry_run } = cmd;
    if !cfg.retention.is_set() {
        return Err(StoreError::invalid(
            "[retention] sets nothing: every kind of data is kept",
        ));
    }
    let p = store
        .retention_run(&cfg.retention.policy(), crate::store::now_ms(), dry_run)
        .await?;
    super::print_json(&p);
    Ok(())
}

pub async fn blobs(
    cmd: BlobsCmd,
    store: &Store,
    cfg: &crate::config::Config,
) -> Result<(), StoreError> {
    match cmd {
        BlobsCmd::Gc {
            dry_run,
            grace_hours,
        } => {
            let grace = grace_hours
                .map(|h| std::time::Duration::from_secs(h * 3600))
                .unwrap_or_else(|| cfg.blobs.orphan_grace());
            let s = store.blobs_gc(grace, dry_run).await?;
            super::print_json(&s);
            Ok(())
        }
        BlobsCmd::Verify => {
            let c = store.blobs_verify().await?;
            super::print_json(&c);
            if c.problems.is_empty() {
                return Ok(());
            }
            Err(StoreError::Corrupt(format!(
                "{} row(s) name a missing or damaged blob in the {}",
                c.problems.len(),
                store.blobs().describe()
            )))
        }
    }
}

/// `intake migrate` after the schema migrations: the bytes still in rows
/// move into the blob store.
pub async fn migrate(store: &Store) -> Result<(), StoreError> {
    let moved = move_into_store(store).await?;
    if moved.rows() == 0 {
        super::out("migrations applied");
        return Ok(());
    }
    super::out(&format!(
        "migrations applied; moved {} raw mails, {} attachment bodies and {} held mails (quarantine, review, bounces; {} bytes in all) into the {}",
        moved.comments,
        moved.attachments,
        moved.held,
        moved.bytes,
        store.blobs().describe()
    ));
    Ok(())
}

/// Move every row's bytes still in the database into the blob store, in
/// batches (each committed: an interrupted move resumes where it stopped),
/// with a progress bar on a terminal.
pub async fn move_into_store(store: &Store) -> Result<BlobMove, StoreError> {
    let backlog = store.blobs_backlog().await?;
    let mut total = BlobMove::default();
    if backlog == 0 {
        return Ok(total);
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(backlog);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "moving bytes into the blob store {bar:40} {pos}/{len} rows ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut cursor = BlobCursor::default();
    loop {
        let step = store.blobs_move_step(&mut cursor, 200).await?;
        let n = step.rows();
        if n == 0 {
            break;
        }
        total.comments += step.comments;
        total.attachments += step.attachments;
        total.held += step.held;
        total.bytes += step.bytes;
        if let Some(b) = &bar {
            b.inc(n);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(total)
}
