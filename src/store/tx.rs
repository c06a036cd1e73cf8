//! The write transaction a caller above the store owns (the pipeline's
//! commit step): the store's writes are its methods, so that one
//! transaction covers a batch's messages, its events, the outbox rows the
//! notifier planned from them and the source's checkpoint, while the store
//! knows nothing of the notifier or the pipeline.

use super::ingest::StoredBatch;
use super::requesters::Policy;
use super::{Backend, Store, StoreError};
use crate::model::{
    Checkpoint, EventFacts, EventKind, Needs, OutboxPlan, Prepared, PublishedTickets,
};
use sqlx::any::Any;
use sqlx::Transaction;

/// An open write transaction; dropped without [`WriteTx::commit`], it rolls back.
pub struct WriteTx {
    pub(super) tx: Transaction<'static, Any>,
    /// SQLite has one writer: held until the transaction ends.
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The numbers of the blobs [`WriteTx::record_blobs`] recorded, for the
    /// rows that name them.
    numbers: super::BlobNumbers,
}

impl Store {
    /// Begin a write transaction (on SQLite, after taking the process's
    /// write lock).
    pub async fn begin(&self) -> Result<WriteTx, StoreError> {
        let guard = match self.backend {
            Backend::Sqlite => Some(self.write_lock.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        let tx = self.begin_write().await?;
        Ok(WriteTx {
            tx,
            _guard: guard,
            numbers: Default::default(),
        })
    }
}

/// Locate raw mail `sha256`, recorded by number alone in this transaction,
/// by its hash too: a row that names it by hash alone (a kept delivery
/// report) is about to be written.
pub(super) async fn key_raw(
    tx: &mut sqlx::AnyConnection,
    numbers: &super::BlobNumbers,
    sha256: &str,
    now: i64,
) -> Result<(), StoreError> {
    let Some(n) = numbers.get(sha256) else {
        return Ok(());
    };
    // Another location found by this hash is marked used, as a batch marks
    // a blob it holds (on PostgreSQL its row locked): a removal either
    // came first (the row is gone: this copy takes its place) or waits for
    // this transaction and then finds the row naming it. This copy is then
    // unnamed, and goes after the commit.
    let held = sqlx::query("UPDATE blob_locations SET used_at = $1 WHERE sha256 = $2 RETURNING id")
        .bind(now)
        .bind(sha256)
        .fetch_optional(&mut *tx)
        .await?;
    if held.is_some() {
        return Ok(());
    }
    let rekey = sqlx::query("UPDATE blob_locations SET sha256 = $1 WHERE id = $2")
        .bind(sha256)
        .bind(n)
        .execute(&mut *tx)
        .await;
    match rekey {
        Ok(_) => Ok(()),
        // Another batch located the same bytes by hash meanwhile
        // (PostgreSQL; SQLite has one writer): retried, it finds that one.
        Err(sqlx::Error::Database(d))
            if matches!(
                d.code().as_deref(),
                Some("23505") | Some("2067") | Some("1555")
            ) =>
        {
            Err(StoreError::Blob(
                "another batch located this raw mail by its hash meanwhile".into(),
                super::Fault::Contention,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Statements run on the transaction's connection (`&mut *tx`), as on a
/// sqlx transaction.
impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Record where [`Store::put_blobs`] put the batch's blobs (a pack
    /// position or an object), with the rows that name them, and mark those it
    /// found held used ([`StoreError::is_blob_gone`] if one went since).
    pub async fn record_blobs(&mut self, blobs: &super::BatchBlobs) -> Result<(), StoreError> {
        let numbers = super::blob_batch::record(&mut self.tx, blobs, super::now_ms()).await?;
        self.numbers.extend(numbers);
        Ok(())
    }

    /// The raw mails this transaction located by number that no comment
    /// names (a second delivery of a stored mail, a delivery report kept
    /// for ops): for [`Store::remove_raw_locations`] once it commits.
    pub async fn unnamed_raws(
        &mut self,
        raw: &std::collections::HashSet<String>,
    ) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<String> = raw
            .iter()
            .filter_map(|h| self.numbers.get(h))
            .map(i64::to_string)
            .collect();
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let rows = sqlx::query(&format!(
                "SELECT id FROM blob_locations b WHERE sha256 LIKE '@%' AND id IN ({}) AND NOT EXISTS \
                 (SELECT 1 FROM comments c WHERE c.raw_blob = b.id)",
                chunk.join(", ")
            ))
            .fetch_all(&mut *self.tx)
            .await?;
            out.extend(rows.iter().map(|r| super::get_i64(r, "id")));
        }
        Ok(out)
    }

    /// Store a batch of prepared messages: users, organizations, tickets,
    /// comments and their events. Returns the outcomes, the events some
    /// trigger wants (`wants`) with the facts memory could tell, and the
    /// Message-IDs of ours the batch's bounces returned.
    pub async fn store_batch(
        &mut self,
        policy: &Policy<'_>,
        wants: &(dyn Fn(EventKind) -> bool + Sync),
        items: &[Prepared],
    ) -> Result<StoredBatch, StoreError> {
        super::ingest::store_batch(&mut self.tx, policy, wants, items, &self.numbers).await
    }

    /// Mark the recipients of these notifications of ours undeliverable
    /// until `until` (a bounce returned them).
    pub async fn mark_bounced(&mut self, bounced: &[String], until: i64) -> Result<(), StoreError> {
        super::bounce::mark_bounced(&mut self.tx, bounced, until).await
    }

    /// Mark undeliverable until `until` the permanently failed recipients
    /// of delivery reports that we sent a notification to since `since`.
    pub async fn mark_failed_recipients(
        &mut self,
        addresses: &[String],
        since: i64,
        until: i64,
    ) -> Result<(), StoreError> {
        super::bounce::mark_failed_recipients(&mut self.tx, addresses, since, until).await
    }

    /// Fill in the facts `needs` asks for that memory could not tell
    /// (events gone from the database are dropped); sorted by event id.
    pub async fn complete_facts(
        &mut self,
        events: Vec<EventFacts>,
        needs: &(dyn Fn(EventKind) -> Needs + Sync),
    ) -> Result<Vec<EventFacts>, StoreError> {
        super::event_facts::complete(&mut self.tx, needs, events).await
    }

    /// The facts of recorded events, from the database.
    pub async fn event_facts(&mut self, ids: &[i64]) -> Result<Vec<EventFacts>, StoreError> {
        super::event_facts::load(&mut self.tx, ids).await
    }

    /// What planning the `ticket_published` events among `events` needs.
    pub async fn published_tickets(
        &mut self,
        events: &[EventFacts],
    ) -> Result<PublishedTickets, StoreError> {
        super::outbox_write::published_tickets(&mut self.tx, events).await
    }

    /// Write what the notifier planned: ticket changes, then outbox rows.
    pub async fn write_plan(&mut self, plan: &OutboxPlan, now: i64) -> Result<(), StoreError> {
        super::outbox_write::apply_changes(&mut self.tx, &plan.changes, now).await?;
        super::outbox_insert::insert(&mut self.tx, &plan.rows, now).await
    }

    /// Save a source's checkpoint (with the acknowledgement it owes).
    pub async fn save_checkpoint(&mut self, c: &Checkpoint) -> Result<(), StoreError> {
        super::checkpoints::save_tx(&mut self.tx, c).await
    }

    /// Make a ticket public or private (see [`Store::set_ticket_public`]);
    /// returns the `ticket_published` event when publishing.
    pub async fn set_ticket_public(
        &mut self,
        id: i64,
        public: bool,
    ) -> Result<Option<i64>, StoreError> {
        super::admin::set_ticket_public_tx(&mut self.tx, id, public).await
    }
}
