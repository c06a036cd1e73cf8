//! Idempotency records of gateway webhooks: `(source, Idempotency-Key)` →
//! body hash and the first answer, kept at least 24 hours.
//!
//! A request first *claims* its key with a pending row (status 0) inserted
//! with `ON CONFLICT DO NOTHING`, so of any number of concurrent identical
//! requests exactly one runs the ingestion; the others wait for its answer.
//! The contact's Message-ID is derived from the key, so even a claim taken
//! over after a crash can never store the contact twice.
//!
//! A claim names its holder and lasts a few seconds, renewed while the
//! holder's request is alive (`webhook_claims`): the claim of a daemon that
//! died is taken over by a retry in any daemon once it lapses. A claim whose
//! request failed is released; when the release (or the recording of an
//! answer) fails too, as it does on a full disk or a lost connection, the
//! key is remembered as *orphaned* by this process, and the next request
//! with that key takes the claim over at once.

use super::webhook_claims::{Claims, MAX_HOLD};
use super::{get_i64, get_opt_i64, get_opt_str, get_str, now_ms, Store, StoreError};
use std::collections::HashSet;

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key: ingest, then record the answer with [`Store::webhook_record`].
    Owned,
    /// Answered before: replay this status and body.
    Done { status: u16, response: String },
    /// The key was used with another body.
    Mismatch,
    /// Another request with this key is being processed.
    InFlight,
}

/// The answer of an owned claim, waiting to be recorded.
#[derive(Debug, Clone)]
pub struct Answered {
    pub source: String,
    pub key: String,
    pub status: u16,
    pub response: String,
}

/// Records younger than this are never purged.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;

impl Store {
    /// Claim `(source, key)` for a body with hash `sha`.
    pub async fn webhook_claim(
        &self,
        source: &str,
        key: &str,
        sha: &str,
    ) -> Result<Claim, StoreError> {
        let now = now_ms();
        let me = self.claims.holder();
        {
            let _g = self.write_guard().await;
            let inserted = sqlx::query(
                "INSERT INTO webhook_requests (source, idem_key, body_sha256, status, response, created_at, holder, claimed_until) \
                 VALUES ($1, $2, $3, 0, '', $4, $5, $6) ON CONFLICT (source, idem_key) DO NOTHING RETURNING status",
            )
            .bind(source)
            .bind(key)
            .bind(sha)
            .bind(now)
            .bind(me)
            .bind(Claims::until(now))
            .fetch_optional(&self.pool)
            .await;
            if self.observe(inserted.map_err(StoreError::from))?.is_some() {
                self.claims.hold([(source, key)], now);
                return Ok(Claim::Owned);
            }
        }
        let r = sqlx::query(
            "SELECT body_sha256, status, response, created_at, holder, claimed_until FROM webhook_requests \
             WHERE source = $1 AND idem_key = $2",
        )
        .bind(source)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = r else {
            // Released by a failed owner between our insert and select.
            return Ok(Claim::InFlight);
        };
        if get_str(&r, "body_sha256") != sha {
            return Ok(Claim::Mismatch);
        }
        let status = get_i64(&r, "status");
        if status != 0 {
            return Ok(Claim::Done {
                status: status as u16,
                response: get_str(&r, "response"),
            });
        }
        // A live request of this process works on it.
        if self.claims.is_held(source, key) {
            return Ok(Claim::InFlight);
        }
        let orphan = self.claims.is_orphan(source, key);
        let until = get_opt_i64(&r, "claimed_until")
            .unwrap_or_else(|| get_i64(&r, "created_at") + MAX_HOLD.as_millis() as i64);
        if !orphan && until >= now {
            return Ok(Claim::InFlight);
        }
        // Take it over once it lapsed (nobody renewed it), or at once when
        // it is an orphan of ours (and still ours).
        let n = {
            let _g = self.write_guard().await;
            let n = sqlx::query(
                "UPDATE webhook_requests SET holder = $1, claimed_until = $2, created_at = $3 \
                 WHERE source = $4 AND idem_key = $5 AND status = 0 \
                 AND (COALESCE(claimed_until, created_at + $6) < $3 OR holder = $7)",
            )
            .bind(me)
            .bind(Claims::until(now))
            .bind(now)
            .bind(source)
            .bind(key)
            .bind(MAX_HOLD.as_millis() as i64)
            .bind(orphan.then_some(me))
            .execute(&self.pool)
            .await;
            self.observe(n.map_err(StoreError::from))?.rows_affected()
        };
        if n != 1 {
            return Ok(Claim::InFlight);
        }
        self.claims.hold([(source, key)], now);
        if orphan {
            tracing::info!(source, "taking over the claim of a request that failed");
        } else {
            let holder = get_opt_str(&r, "holder").unwrap_or_default();
            tracing::warn!(
                source,
                holder,
                "taking over an idempotency claim its holder stopped renewing"
            );
        }
        Ok(Claim::Owned)
    }

    /// In one transaction: record the answers of earlier owned claims
    /// (`completes`), then claim the keys of `claims`. Returns which claims
    /// own their key; a key repeated in `claims` is owned by its first
    /// request only.
    pub async fn webhook_record(
        &self,
        completes: &[Answered],
        claims: &[(&str, &str, &str)],
    ) -> Result<Vec<bool>, StoreError> {
        if completes.is_empty() && claims.is_empty() {
            return Ok(vec![]);
        }
        let mut seen = HashSet::new();
        let mut uniq: Vec<&(&str, &str, &str)> = claims
            .iter()
            .filter(|(s, k, _)| seen.insert((*s, *k)))
            .collect();
        // One lock order for every batch, so concurrent batches cannot deadlock.
        uniq.sort_unstable_by_key(|(s, k, _)| (*s, *k));
        let now = now_ms();
        let r = self.record_tx(completes, &uniq, now).await;
        let mut inserted = match self.observe(r) {
            Ok(i) => i,
            Err(e) => {
                // Whether any of it committed is unknown: no request of this
                // process works on these keys any more (except those a live
                // request of another batch holds).
                let done = completes
                    .iter()
                    .map(|a| (a.source.as_str(), a.key.as_str()));
                let tried = uniq
                    .iter()
                    .map(|(s, k, _)| (*s, *k))
                    .filter(|(s, k)| !self.claims.is_held(s, k));
                let tried: Vec<_> = tried.collect();
                self.claims.orphan(done.chain(tried));
                return Err(e);
            }
        };
        self.claims.let_go(
            completes
                .iter()
                .map(|a| (a.source.as_str(), a.key.as_str())),
        );
        let owned: Vec<bool> = claims
            .iter()
            .map(|(s, k, _)| inserted.remove(&(s.to_string(), k.to_string())))
            .collect();
        self.claims.hold(
            claims
                .iter()
                .zip(&owned)
                .filter(|(_, o)| **o)
                .map(|((s, k, _), _)| (*s, *k)),
            now,
        );
        Ok(owned)
    }

    /// The transaction of [`Store::webhook_record`]: the keys it now owns.
    async fn record_tx(
        &self,
        completes: &[Answered],
        uniq: &[&(&str, &str, &str)],
        now: i64,
    ) -> Result<HashSet<(String, String)>, StoreError> {
        let mut inserted: HashSet<(String, String)> = HashSet::new();
        let mut tx = self.begin().await?;
        for a in completes {
            sqlx::query("UPDATE webhook_requests SET status = $1, response = $2 WHERE source = $3 AND idem_key = $4")
                .bind(a.status as i64)
                .bind(&a.response)
                .bind(&a.source)
                .bind(&a.key)
                .execute(&mut *tx)
                .await?;
        }
        for chunk in uniq.chunks(200) {
            let sql = format!(
                "INSERT INTO webhook_requests (source, idem_key, body_sha256, status, response, created_at, holder, claimed_until) \
                 VALUES {} ON CONFLICT (source, idem_key) DO NOTHING RETURNING source, idem_key",
                super::value_rows(chunk.len(), 8)
            );
            let mut q = sqlx::query(&sql);
            for (source, key, sha) in chunk {
                q = q
                    .bind(*source)
                    .bind(*key)
                    .bind(*sha)
                    .bind(0i64)
                    .bind("")
                    .bind(now)
                    .bind(self.claims.holder())
                    .bind(Claims::until(now));
            }
            for r in q.fetch_all(&mut *tx).await? {
                inserted.insert((get_str(&r, "source"), get_str(&r, "idem_key")));
            }
        }
        // Keys this process gave up on (a failed request whose release
        // failed too) are taken over by their retry at once.
        for (source, key, sha) in uniq {
            let k = (source.to_string(), key.to_string());
            if inserted.contains(&k) || !self.claims.is_orphan(source, key) {
                continue;
            }
            let n = sqlx::query(
                "UPDATE webhook_requests SET created_at = $1, claimed_until = $2 \
                 WHERE holder = $3 AND source = $4 AND idem_key = $5 AND body_sha256 = $6 AND status = 0",
            )
            .bind(now)
            .bind(Claims::until(now))
            .bind(self.claims.holder())
            .bind(*source)
            .bind(*key)
            .bind(*sha)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                inserted.insert(k);
            }
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Drop an owned claim whose request failed, so nothing stays stored.
    pub async fn webhook_release(&self, source: &str, key: &str) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        // Only our own claim: another daemon may have taken it over.
        let r = sqlx::query(
            "DELETE FROM webhook_requests WHERE source = $1 AND idem_key = $2 AND status = 0 AND holder = $3",
        )
        .bind(source)
        .bind(key)
        .bind(self.claims.holder())
        .execute(&self.pool)
        .await;
        match self.observe(r.map_err(StoreError::from)) {
            Ok(_) => {
                self.claims.let_go([(source, key)]);
                Ok(())
            }
            Err(e) => {
                self.claims.orphan([(source, key)]);
                Err(e)
            }
        }
    }

    /// Delete answered records older than [`KEEP_MS`]. Returns how many.
    pub async fn webhook_purge(&self) -> Result<u64, StoreError> {
        let _g = self.write_guard().await;
        Ok(
            sqlx::query("DELETE FROM webhook_requests WHERE created_at < $1 AND status <> 0")
                .bind(now_ms() - KEEP_MS)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// For a stored contact comment: its author and whether it opened its
    /// ticket. Rebuilds the answer of a request whose record was lost.
    pub async fn comment_origin(&self, comment_id: i64) -> Result<(i64, bool), StoreError> {
        let r = sqlx::query(
            "SELECT c.author_id, (SELECT MIN(e.id) FROM ticket_events e WHERE e.ticket_id = c.ticket_id \
             AND e.kind = 'ticket_created' AND e.comment_id = c.id) AS created_event FROM comments c WHERE c.id = $1",
        )
        .bind(comment_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("comment {comment_id}")))?;
        Ok((
            get_i64(&r, "author_id"),
            get_opt_i64(&r, "created_event").is_some(),
        ))
    }
}
