//! Erasure on request (GDPR Art. 17): one user's personal data removed in
//! one transaction, tickets and other people's comments kept. An
//! `erasures` row records that and when, without the data.
//!
//! Removed or replaced by [`ERASED`]: the user's name and contact points,
//! the subjects, bodies and raw mails of the comments they wrote and those
//! comments' attachments, the subjects of the tickets they requested, the
//! quarantine entries and held mail from their addresses (quarantine holds
//! only raw bytes, so those are searched), delivery reports naming them,
//! notifications to them or quoting their comments, their addresses as
//! copied participants, undeliverable marks and address conflicts, webhook
//! answers that quote them, and the event details that name them. On SQLite the store runs with
//! `secure_delete` and checkpoints its WAL afterwards, so freed pages keep
//! nothing; on PostgreSQL dead row versions remain until VACUUM.

use super::blob_rows::Named;
use super::{get_i64, get_opt_str, get_str, now_ms, Backend, Store, StoreError};
use serde::Serialize;
use sqlx::Row;

/// What replaces erased text.
pub const ERASED: &str = "[erased]";

/// What an erasure removed, by count (no personal data).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Erasure {
    pub user_id: i64,
    pub erased_at: i64,
    pub contact_points: i64,
    pub comments: i64,
    pub tickets: i64,
    pub attachments: i64,
    pub quarantine: i64,
    pub review: i64,
    pub bounces: i64,
    pub notifications: i64,
}

/// Whether `hay` holds any of `needles`, ASCII case ignored.
fn mentions(hay: &[u8], needles: &[String]) -> bool {
    needles.iter().any(|n| {
        let n = n.as_bytes();
        !n.is_empty() && hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    })
}

impl Store {
    /// Erase user `id` (and the users merged into it).
    pub async fn erase_user(&self, id: i64) -> Result<Erasure, StoreError> {
        let (out, blobs) = self.observed(self.erase_in_tx(id)).await?;
        // Their raw mails and the attachment bodies nobody else's row names
        // (a crash before this leaves orphans that `blobs_gc` removes).
        self.delete_unreferenced(&blobs).await?;
        // And any raw mail copy a crash left unnamed (a second delivery's,
        // found by no hash): it may be theirs.
        let stray: Vec<i64> = self.unnamed_raws().await?.iter().map(|r| r.0).collect();
        self.remove_raw_locations(&stray).await?;
        if self.backend == Backend::Sqlite {
            // The WAL still holds the pages as they were: copy them back and
            // truncate it.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(out)
    }

    async fn erase_in_tx(&self, id: i64) -> Result<(Erasure, Named), StoreError> {
        let mut tx = self.begin().await?;
        let user = sqlx::query("SELECT id, name, is_agent, merged_into FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("user {id}")))?;
        if let Some(m) = user.try_get::<Option<i64>, _>("merged_into")? {
            return Err(StoreError::conflict(format!(
                "user {id} was merged into user {m}: erase user {m}"
            )));
        }
        if get_i64(&user, "is_agent") != 0 {
            return Err(StoreError::conflict(format!(
                "user {id} is an agent: make them an end user first (intake agents remove)"
            )));
        }
        // The user and everyone merged into them.
        let ids: Vec<i64> = sqlx::query("SELECT id FROM users WHERE id = $1 OR merged_into = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| get_i64(r, "id"))
            .collect();
        let list = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let addresses: Vec<String> = sqlx::query(&format!(
            "SELECT value FROM identities WHERE user_id IN ({list})"
        ))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| get_str(r, "value"))
        .collect();
        let mut e = Erasure {
            user_id: id,
            erased_at: now_ms(),
            ..Erasure::default()
        };
        // Their comments and tickets, read once: on SQLite neither author
        // nor requester is indexed (each would cost a page written per
        // message), so each is one scan.
        let comments = id_list(&mut tx, "comments", &format!("author_id IN ({list})")).await?;
        let tickets = id_list(&mut tx, "tickets", &format!("requester_id IN ({list})")).await?;
        // Their blobs, deleted once the rows are gone (see `erase_user`).
        let mut blobs =
            super::blob_rows::blobs_of_comments(&mut tx, &format!("id IN ({comments})")).await?;
        e.attachments = sqlx::query(&format!(
            "DELETE FROM attachments WHERE comment_id IN ({comments})"
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        e.notifications = sqlx::query(&format!(
            "DELETE FROM outbox WHERE comment_id IN ({comments}) OR ticket_id IN ({tickets})"
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        sqlx::query(&format!(
            "UPDATE ticket_events SET detail = '' WHERE comment_id IN ({comments})"
        ))
        .execute(&mut *tx)
        .await?;
        e.comments = sqlx::query(&format!(
            "UPDATE comments SET subject = $1, body = $1, visible_body = NULL, raw = NULL, \
             raw_sha256 = NULL, raw_blob = NULL, raw_size = NULL WHERE id IN ({comments})"
        ))
        .bind(ERASED)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        e.tickets = sqlx::query(&format!(
            "UPDATE tickets SET subject = $1 WHERE id IN ({tickets})"
        ))
        .bind(ERASED)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        e.contact_points = sqlx::query(&format!("DELETE FROM identities WHERE user_id IN ({list})"))
            .execute(&mut *tx)
            .await?
            .rows_affected() as i64;
        sqlx::query(&format!("UPDATE users SET name = $1 WHERE id IN ({list})"))
            .bind(ERASED)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "DELETE FROM normalisation_conflicts WHERE owner_id IN ({list}) OR holder_id IN ({list})"
        ))
        .execute(&mut *tx)
        .await?;
        for a in &addresses {
            for sql in [
                "DELETE FROM ticket_participants WHERE address = $1",
                "DELETE FROM undeliverable WHERE address = $1",
                "DELETE FROM outbox WHERE to_addr = $1",
                "DELETE FROM normalisation_conflicts WHERE old_value = $1 OR normal_value = $1",
            ] {
                let n = sqlx::query(sql)
                    .bind(a)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if sql.contains("outbox") {
                    e.notifications += n as i64;
                }
            }
            let held = sqlx::query("DELETE FROM review WHERE sender = $1 RETURNING sha256")
                .bind(a)
                .fetch_all(&mut *tx)
                .await?;
            e.review += held.len() as i64;
            blobs
                .hashes
                .extend(held.iter().map(|r| get_str(r, "sha256")));
            let like = format!("%{a}%");
            sqlx::query("UPDATE ticket_events SET detail = '' WHERE detail LIKE $1")
                .bind(&like)
                .execute(&mut *tx)
                .await?;
            // A webhook's recorded answer may quote a contact point back.
            sqlx::query("DELETE FROM webhook_requests WHERE response LIKE $1")
                .bind(&like)
                .execute(&mut *tx)
                .await?;
        }
        // Raw bytes only (in the row, or in the blob store by hash):
        // searched here, a page at a time.
        for (table, hash, count) in [
            ("quarantine", "sha256", &mut e.quarantine),
            ("bounces", "raw_sha256", &mut e.bounces),
        ] {
            let mut last = 0i64;
            loop {
                let rows = sqlx::query(&format!(
                    "SELECT id, raw, {hash} AS h FROM {table} WHERE id > $1 ORDER BY id LIMIT 200"
                ))
                .bind(last)
                .fetch_all(&mut *tx)
                .await?;
                let Some(r) = rows.last() else { break };
                last = get_i64(r, "id");
                for r in &rows {
                    let held = get_opt_str(r, "h");
                    let raw = match r.try_get::<Option<Vec<u8>>, _>("raw")? {
                        Some(b) => Some(b),
                        None => match &held {
                            Some(h) => self.read_blob(h).await?,
                            None => None,
                        },
                    };
                    if raw.is_some_and(|b| mentions(&b, &addresses)) {
                        sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
                            .bind(get_i64(r, "id"))
                            .execute(&mut *tx)
                            .await?;
                        blobs.hashes.extend(held);
                        *count += 1;
                    }
                }
            }
        }
        // Bounces name recipients outside the raw mail too.
        for a in &addresses {
            let gone =
                sqlx::query("DELETE FROM bounces WHERE recipients LIKE $1 RETURNING raw_sha256")
                    .bind(format!("%{a}%"))
                    .fetch_all(&mut *tx)
                    .await?;
            e.bounces += gone.len() as i64;
            blobs
                .hashes
                .extend(gone.iter().filter_map(|r| get_opt_str(r, "raw_sha256")));
        }
        sqlx::query(
            "INSERT INTO erasures (user_id, erased_at, comments, tickets, attachments) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(e.erased_at)
        .bind(e.comments)
        .bind(e.tickets)
        .bind(e.attachments)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((e, blobs))
    }
}

/// The ids of the rows of `table` matching `which`, as an SQL list (`NULL`
/// when there are none, which matches nothing).
async fn id_list(
    tx: &mut sqlx::AnyConnection,
    table: &str,
    which: &str,
) -> Result<String, StoreError> {
    let rows = sqlx::query(&format!("SELECT id FROM {table} WHERE {which}"))
        .fetch_all(tx)
        .await?;
    if rows.is_empty() {
        return Ok("NULL".into());
    }
    Ok(rows
        .iter()
        .map(|r| get_i64(r, "id").to_string())
        .collect::<Vec<_>>()
        .join(", "))
}
