//! Removing blobs no row names: after an erasure or a retention batch (the
//! blobs the removed rows named), after a rejected review entry, and in the
//! sweep (blobs unused for the grace period).
//!
//! A batch writes its blobs before its transaction, and one it finds
//! already stored it only marks used, inside that transaction
//! ([`super::WriteTx::record_blobs`]); one it did not find it writes anew
//! (a pack position or an object of its own), and records that location
//! with an upsert that waits for a removal holding the row. A removal takes
//! the blobs' locations in a write transaction (on PostgreSQL their rows
//! locked), checks there that no row names them, and deletes the
//! locations before zeroing the bytes or deleting the object. So a batch
//! either committed first (its rows name the blob: kept), or finds the
//! location gone when it marks it used, and writes the blob again.
//!
//! An object store's objects from before objects had their own names
//! (`<prefix><sha256>`) have no location: no batch relies on one (a batch
//! that finds no location writes its own object), so they are deleted once
//! no row names them.

use super::blob_rows::{Named, HOLDERS};
use super::blobs::Location;
use super::{get_i64, get_str, Backend, Store, StoreError};
use std::collections::HashSet;
use std::time::SystemTime;

/// Which of `wanted` some row names (500 at a time).
pub(super) async fn referenced(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    wanted: &HashSet<String>,
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    let all: Vec<&String> = wanted.iter().collect();
    for chunk in all.chunks(500) {
        // A row with a number is found through its blob's location; one
        // without (made before numbers, or naming an unlocated blob) by
        // its hash, in the index that holds only such rows.
        let mut parts = Vec::new();
        for h in &HOLDERS {
            let marks = super::markers(backend, parts.len() * chunk.len(), chunk.len());
            let (hash, table, names) = (h.hash, h.table, h.names);
            parts.push(match h.number {
                None => format!("SELECT {hash} AS h FROM {table} WHERE {hash} IN ({marks}) AND {names}"),
                Some(n) => format!(
                    "SELECT {hash} AS h FROM {table} WHERE {hash} IN ({marks}) AND {names} AND {n} IS NULL"
                ),
            });
            if let Some(n) = h.number {
                let marks = super::markers(backend, parts.len() * chunk.len(), chunk.len());
                parts.push(format!(
                    "SELECT b.sha256 AS h FROM blob_locations b JOIN {table} r ON r.{n} = b.id \
                     WHERE b.sha256 IN ({marks}) AND r.{hash} IS NOT NULL"
                ));
            }
        }
        let sql = parts.join(" UNION ");
        let mut q = sqlx::query(&sql);
        for _ in &parts {
            for h in chunk {
                q = q.bind(h.as_str());
            }
        }
        for r in q.fetch_all(&mut *conn).await? {
            found.insert(get_str(&r, "h"));
        }
    }
    Ok(found)
}

impl Store {
    /// Which of `wanted` some row names now.
    pub(super) async fn referenced(
        &self,
        wanted: &HashSet<String>,
    ) -> Result<HashSet<String>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        referenced(&mut conn, self.backend, wanted).await
    }

    /// Remove the blobs of `hashes` no row names, last used before
    /// `used_before` (unix ms): their bytes (zeros in their pack, or their
    /// object) and their locations. Returns how many went.
    pub(super) async fn remove_blobs(
        &self,
        hashes: &[String],
        used_before: i64,
    ) -> Result<u64, StoreError> {
        let wanted: HashSet<String> = hashes.iter().cloned().collect();
        if wanted.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        if !self.blobs.is_packed() {
            n += self.remove_unlocated_objects(&wanted).await?;
        }
        let mut gone = Vec::new();
        let all: Vec<&String> = wanted.iter().collect();
        for chunk in all.chunks(500) {
            gone.extend(self.drop_locations(chunk, used_before).await?);
        }
        for at in &gone {
            self.blobs
                .erase(&at.sha256, Some(at))
                .await
                .map_err(super::blob_rows::blob_err)?;
        }
        Ok(n + gone.len() as u64)
    }

    /// Delete the objects of an object store no location names, unchanged
    /// since `cutoff`: written by a batch that never committed, or that
    /// lost a race to locate the same blob, or named by the hash alone
    /// (from before objects had their own names) once no row needs them.
    pub(super) async fn sweep_objects(
        &self,
        cutoff: SystemTime,
        dry_run: bool,
        out: &mut super::BlobSweep,
    ) -> Result<(), StoreError> {
        let objects = self
            .blobs
            .objects()
            .await
            .map_err(super::blob_rows::blob_err)?;
        let located: HashSet<String> = sqlx::query("SELECT pack FROM blob_locations")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| get_str(r, "pack"))
            .collect();
        let idle: Vec<_> = objects
            .iter()
            .filter(|o| o.modified < cutoff && !located.contains(&o.name))
            .collect();
        // An object named by the hash alone is what rows from before read
        // while their blob has no location.
        let bare: HashSet<String> = idle
            .iter()
            .filter(|o| o.name == o.sha256)
            .map(|o| o.sha256.clone())
            .collect();
        let mut needed = self.referenced(&bare).await?;
        // Located elsewhere: rows read that copy.
        for h in self.located(&needed).await? {
            needed.remove(&h);
        }
        for o in idle {
            if o.name == o.sha256 && needed.contains(&o.sha256) {
                continue;
            }
            out.orphans += 1;
            out.orphan_bytes += o.size;
            if !dry_run {
                self.blobs
                    .erase(&o.sha256, Some(&o.location()))
                    .await
                    .map_err(super::blob_rows::blob_err)?;
                out.removed += 1;
            }
        }
        Ok(())
    }

    /// Which of `hashes` have a location (500 at a time).
    pub(super) async fn located(
        &self,
        hashes: &HashSet<String>,
    ) -> Result<HashSet<String>, StoreError> {
        let all: Vec<&String> = hashes.iter().collect();
        let mut found = HashSet::new();
        for chunk in all.chunks(500) {
            let sql = format!(
                "SELECT sha256 FROM blob_locations WHERE sha256 IN ({})",
                super::markers(self.backend, 0, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for h in chunk {
                q = q.bind(h.as_str());
            }
            for r in q.fetch_all(&self.pool).await? {
                found.insert(get_str(&r, "sha256"));
            }
        }
        Ok(found)
    }

    /// Delete the objects named by the hash alone (from before objects had
    /// their own names) of those of `wanted` that have no location and that
    /// no row names. Returns how many went.
    async fn remove_unlocated_objects(&self, wanted: &HashSet<String>) -> Result<u64, StoreError> {
        let located = self.located(wanted).await?;
        let unlocated: HashSet<String> = wanted.difference(&located).cloned().collect();
        let keep = self.referenced(&unlocated).await?;
        let mut n = 0;
        for h in unlocated.difference(&keep) {
            self.blobs
                .erase(h, None)
                .await
                .map_err(super::blob_rows::blob_err)?;
            n += 1;
        }
        Ok(n)
    }

    /// Delete the locations of those of `chunk` unused since `used_before`
    /// that no row names, in one write transaction; returns them.
    async fn drop_locations(
        &self,
        chunk: &[&String],
        used_before: i64,
    ) -> Result<Vec<Location>, StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let sql = format!(
            "SELECT sha256 FROM blob_locations WHERE used_at < {} AND sha256 IN ({}){lock}",
            super::markers(self.backend, 0, 1),
            super::markers(self.backend, 1, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(used_before);
        for h in chunk {
            q = q.bind(h.as_str());
        }
        let idle: HashSet<String> = q
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| get_str(r, "sha256"))
            .collect();
        let keep = referenced(&mut tx, self.backend, &idle).await?;
        let doomed: Vec<&String> = idle.difference(&keep).collect();
        let mut out = Vec::with_capacity(doomed.len());
        for part in doomed.chunks(500) {
            let sql = format!(
                "DELETE FROM blob_locations WHERE sha256 IN ({}) RETURNING sha256, pack, pos, size",
                super::markers(self.backend, 0, part.len())
            );
            let mut q = sqlx::query(&sql);
            for h in part {
                q = q.bind(h.as_str());
            }
            for r in q.fetch_all(&mut *tx).await? {
                out.push(Location {
                    sha256: get_str(&r, "sha256"),
                    pack: get_str(&r, "pack"),
                    pos: get_i64(&r, "pos") as u64,
                    size: get_i64(&r, "size") as u64,
                });
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Delete the blobs of `hashes` that no row names (after the commit of
    /// a batch that wrote blobs for rows it did not make: the attachments
    /// of a delivery report kept for ops, which keeps its raw mail only).
    pub async fn drop_unnamed_blobs(&self, hashes: &[String]) -> Result<(), StoreError> {
        self.delete_unreferenced(&Named::from(hashes.to_vec()))
            .await
    }

    /// Delete the blobs of `named` that no row names any more (after the
    /// commit that removed the rows naming them).
    pub(super) async fn delete_unreferenced(&self, named: &Named) -> Result<(), StoreError> {
        // A batch that marks one used from now on keeps it.
        self.remove_blobs(&named.hashes, super::now_ms() + 1)
            .await?;
        self.remove_raw_locations(&named.raws).await?;
        Ok(())
    }

    /// Remove the raw mails located by number alone (of `numbers`, those
    /// not found by hash) that no comment names: their locations, then
    /// their bytes. No batch looks for one, so none can mark it used
    /// meanwhile. Returns how many went.
    pub async fn remove_raw_locations(&self, numbers: &[i64]) -> Result<u64, StoreError> {
        let mut gone = Vec::new();
        for chunk in numbers.chunks(500) {
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            let _guard = self.write_guard().await;
            let mut tx = self.begin_write().await?;
            let rows = sqlx::query(&format!(
                "DELETE FROM blob_locations WHERE sha256 LIKE '@%' AND id IN ({}) AND NOT EXISTS \
                 (SELECT 1 FROM comments c WHERE c.raw_blob = blob_locations.id) \
                 RETURNING sha256, pack, pos, size",
                list.join(", ")
            ))
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            gone.extend(rows.iter().map(|r| Location {
                sha256: get_str(r, "sha256"),
                pack: get_str(r, "pack"),
                pos: get_i64(r, "pos") as u64,
                size: get_i64(r, "size") as u64,
            }));
        }
        for at in &gone {
            self.blobs
                .erase(&at.sha256, Some(at))
                .await
                .map_err(super::blob_rows::blob_err)?;
        }
        Ok(gone.len() as u64)
    }

    /// The raw mails located by number alone that no comment names (a
    /// process stopped between a commit and the removal of a second
    /// delivery's copy, or of an erased mail's). Such a location is written
    /// in the transaction that names it, so one no comment names is never
    /// a batch in flight: no grace period applies.
    pub(super) async fn unnamed_raws(&self) -> Result<Vec<(i64, u64)>, StoreError> {
        Ok(sqlx::query(
            "SELECT id, size FROM blob_locations b WHERE sha256 LIKE '@%' AND NOT EXISTS \
             (SELECT 1 FROM comments c WHERE c.raw_blob = b.id)",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| (get_i64(r, "id"), get_i64(r, "size") as u64))
        .collect())
    }
}
