//! Keeping the blob store in order: the sweep of what no row names (and,
//! in a directory store, the rewrite of mostly dead packs), and the move of
//! an older database's `comments.raw` and `attachments.data` bytes into
//! the store. The check of every row's blob is in `blob_check`.

use super::blob_batch::{number_key, record, BY_NUMBER};
use super::blob_rows::{blob_err, BlobCursor, HOLDERS};
use super::blobs::Location;
use super::{get_i64, get_str, Store, StoreError};
use crate::model::Blob;
use serde::Serialize;
use sqlx::Row;
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// What `intake blobs gc` found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlobSweep {
    pub dry_run: bool,
    /// Blobs located before the sweep.
    pub stored: usize,
    /// Older than the grace period and named by no row.
    pub orphans: usize,
    pub orphan_bytes: u64,
    /// Orphans removed (0 on a dry run).
    pub removed: usize,
    /// Directory store: packs deleted (nothing left in them) and packs
    /// rewritten (mostly dead), and the file bytes that freed.
    pub packs_removed: usize,
    pub packs_rewritten: usize,
    pub pack_bytes_freed: u64,
}

/// What one step of `intake migrate` moved out of the database.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlobMove {
    pub comments: u64,
    pub attachments: u64,
    /// Quarantine, review and kept-bounce entries' raw mail.
    pub held: u64,
    pub bytes: u64,
}

impl BlobMove {
    pub fn rows(&self) -> u64 {
        self.comments + self.attachments + self.held
    }
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Remove blobs no row names that were last used more than `grace` ago
    /// (a batch writes its blobs before it commits: a younger orphan may be
    /// a batch in flight); in a directory store, then delete packs nothing
    /// is located in and rewrite packs mostly dead. `dry_run` only counts.
    pub async fn blobs_gc(&self, grace: Duration, dry_run: bool) -> Result<BlobSweep, StoreError> {
        let cutoff = SystemTime::now() - grace;
        // Those found by hash; a message's raw mail, located by number
        // alone, is kept while a comment names its number.
        let listed = self.listed(&format!("NOT ({BY_NUMBER})")).await?;
        let old: Vec<_> = listed.iter().filter(|b| b.modified < cutoff).collect();
        let wanted: HashSet<String> = old.iter().map(|b| b.sha256.clone()).collect();
        let keep = self.referenced(&wanted).await?;
        let raws = self.unnamed_raws().await?;
        let mut out = BlobSweep {
            dry_run,
            stored: self.blob_count().await?,
            ..BlobSweep::default()
        };
        for (_, size) in &raws {
            out.orphans += 1;
            out.orphan_bytes += size;
        }
        let mut orphans = Vec::new();
        for b in old.iter().filter(|b| !keep.contains(&b.sha256)) {
            out.orphans += 1;
            out.orphan_bytes += b.size;
            orphans.push(b.sha256.clone());
        }
        if !dry_run {
            // Not those a batch used again since the listing.
            out.removed = self.remove_blobs(&orphans, ms(cutoff)).await? as usize;
            let numbers: Vec<i64> = raws.iter().map(|r| r.0).collect();
            out.removed += self.remove_raw_locations(&numbers).await? as usize;
        }
        if self.blobs.is_packed() {
            self.sweep_packs(cutoff, dry_run, &mut out).await?;
        } else {
            self.sweep_objects(cutoff, dry_run, &mut out).await?;
        }
        metrics::counter!("intake_blobs_removed_total").increment(out.removed as u64);
        Ok(out)
    }

    /// Delete packs nothing is located in, and rewrite those whose located
    /// bytes are under half their size, once untouched for the grace period.
    async fn sweep_packs(
        &self,
        cutoff: SystemTime,
        dry_run: bool,
        out: &mut BlobSweep,
    ) -> Result<(), StoreError> {
        for p in self.blobs.packs().await.map_err(blob_err)? {
            if p.modified >= cutoff || self.blobs.is_current_pack(&p.name) {
                continue;
            }
            let live = sqlx::query(
                "SELECT id, sha256, pos, size FROM blob_locations WHERE pack = $1 ORDER BY pos",
            )
            .bind(&p.name)
            .fetch_all(&self.pool)
            .await?;
            let live_bytes: u64 = live.iter().map(|r| get_i64(r, "size") as u64).sum();
            if live_bytes * 2 >= p.len {
                continue;
            }
            out.pack_bytes_freed += p.len - live_bytes;
            if live.is_empty() {
                out.packs_removed += 1;
            } else {
                out.packs_rewritten += 1;
            }
            if dry_run {
                continue;
            }
            // Copy what is located here to a new pack, move the rows, then
            // delete the old pack.
            let mut pairs = Vec::with_capacity(live.len());
            let mut ids = Vec::with_capacity(live.len());
            for r in &live {
                let l = Location {
                    sha256: get_str(r, "sha256"),
                    pack: p.name.clone(),
                    pos: get_i64(r, "pos") as u64,
                    size: get_i64(r, "size") as u64,
                };
                let Some((_, s)) = self
                    .blobs
                    .stream(&l.sha256, Some(&l))
                    .await
                    .map_err(blob_err)?
                else {
                    return Err(StoreError::Corrupt(format!(
                        "blob {} is not where pack {} should hold it",
                        l.sha256, p.name
                    )));
                };
                use futures::TryStreamExt;
                let chunks: Vec<bytes::Bytes> = s.try_collect().await.map_err(blob_err)?;
                ids.push(get_i64(r, "id"));
                pairs.push((l.sha256, chunks.concat()));
            }
            // Written in the order given, one location for each (a hash
            // located twice, as a raw mail and by hash, is copied twice).
            let moved = self.blobs.write(pairs).await.map_err(blob_err)?;
            let _guard = self.write_guard().await;
            let mut tx = self.begin_write().await?;
            let mut unlocated = Vec::new();
            for (l, id) in moved.iter().zip(&ids) {
                // A raw mail located by number gets the key of its new place.
                let key = if l.sha256.starts_with('@') {
                    number_key(&l.pack, l.pos)
                } else {
                    l.sha256.clone()
                };
                let n = sqlx::query(
                    "UPDATE blob_locations SET pack = $1, pos = $2, size = $3, sha256 = $6 WHERE id = $4 AND pack = $5",
                )
                .bind(&l.pack)
                .bind(l.pos as i64)
                .bind(l.size as i64)
                .bind(id)
                .bind(&p.name)
                .bind(key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    unlocated.push(l);
                }
            }
            tx.commit().await?;
            // Removed (erased, swept) while being copied: the copy goes too.
            for l in unlocated {
                self.blobs
                    .erase(&l.sha256, Some(l))
                    .await
                    .map_err(blob_err)?;
            }
            self.blobs.remove_pack(&p.name).map_err(blob_err)?;
        }
        Ok(())
    }

    /// Rows whose bytes are still in the database (made before the blob
    /// store): what `intake migrate` has left to move.
    pub async fn blobs_backlog(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for h in &HOLDERS {
            let r = sqlx::query(&format!(
                "SELECT COUNT(*) FROM {} WHERE {} IS NOT NULL",
                h.table, h.bytes
            ))
            .fetch_one(&self.pool)
            .await?;
            n += r.try_get::<i64, _>(0)? as u64;
        }
        Ok(n)
    }

    /// Move up to `limit` rows' bytes into the blob store: the blobs are
    /// written first, then each row gets its hash and loses its bytes in one
    /// transaction. Returns what moved; nothing once all has.
    /// `cursor` holds the last id looked at in each table (start at 0: a
    /// resumed move reads the moved rows' ids once, not their bytes).
    pub async fn blobs_move_step(
        &self,
        cursor: &mut BlobCursor,
        limit: i64,
    ) -> Result<BlobMove, StoreError> {
        let mut out = BlobMove::default();
        for (table, h) in HOLDERS.iter().enumerate() {
            let (t, col, bytes) = (h.table, h.hash, h.bytes);
            let rows = sqlx::query(&format!(
                "SELECT id, {bytes} AS b FROM {t} WHERE id > $1 AND {bytes} IS NOT NULL ORDER BY id LIMIT {limit}"
            ))
            .bind(cursor[table])
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                continue;
            }
            let mut moved = Vec::with_capacity(rows.len());
            for r in &rows {
                let b = Blob::new(r.try_get::<Vec<u8>, _>("b")?);
                moved.push((get_i64(r, "id"), b));
            }
            cursor[table] = moved.last().map_or(cursor[table], |m| m.0);
            let pairs = moved
                .iter()
                .map(|(_, b)| (b.sha256.clone(), b.bytes.clone()))
                .collect();
            let locs = self.put_pairs(pairs).await?;
            let _guard = self.write_guard().await;
            let mut tx = self.begin_write().await?;
            record(&mut tx, &locs, super::now_ms()).await?;
            // Comments learn their raw mail's size; the other rows have theirs.
            let set_size = if table == 0 { ", raw_size = $3" } else { "" };
            // Rows that have a number learn it from the location just recorded.
            let set_number = h.number.map_or(String::new(), |n| {
                format!(", {n} = (SELECT id FROM blob_locations WHERE sha256 = $1)")
            });
            for (id, b) in &moved {
                let sql = format!(
                    "UPDATE {t} SET {col} = $1, {bytes} = NULL{set_size}{set_number} WHERE id = $2"
                );
                let mut q = sqlx::query(&sql).bind(&b.sha256).bind(id);
                if table == 0 {
                    q = q.bind(b.len() as i64);
                }
                q.execute(&mut *tx).await?;
                out.bytes += b.len() as u64;
            }
            tx.commit().await?;
            match table {
                0 => out.comments += moved.len() as u64,
                1 => out.attachments += moved.len() as u64,
                _ => out.held += moved.len() as u64,
            }
        }
        Ok(out)
    }
}
