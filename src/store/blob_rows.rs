//! The rows' side of the blob store: a batch's blobs written before its
//! transaction, erased users' blobs deleted after theirs, the orphan sweep,
//! the check of every row's blob, and the move of an older database's
//! `comments.raw` and `attachments.data` bytes into the store.

use super::blobs::{BlobInfo, Blobs};
use super::{get_i64, get_str, Backend, Fault, Store, StoreError};
use crate::model::{AttachmentIn, Blob, ForwardIn, Prepared};
use serde::Serialize;
use sqlx::Row;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Where a filesystem blob store without `dir` lives: beside the SQLite
/// file as `<file>-blobs` (like its `-wal`), under the system's temporary
/// directory for an in-memory database, and for PostgreSQL in
/// `$STATE_DIRECTORY/blobs/<database>` (systemd's `StateDirectory=`), else
/// `/var/lib/intake/blobs/<database>`.
pub(super) fn default_dir(backend: Backend, url: &str) -> PathBuf {
    match backend {
        Backend::Sqlite => match super::sqlite_path(url) {
            Some(f) => {
                let mut name = f.file_name().unwrap_or_default().to_os_string();
                name.push("-blobs");
                f.with_file_name(name)
            }
            None => std::env::temp_dir().join(format!("intake-blobs-{}", std::process::id())),
        },
        Backend::Postgres => {
            let state = std::env::var("STATE_DIRECTORY")
                .ok()
                .and_then(|s| s.split(':').next().map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("/var/lib/intake"));
            let db = url
                .split('?')
                .next()
                .and_then(|u| u.rsplit('/').next())
                .filter(|d| !d.is_empty() && !d.contains('@') && !d.contains(':'))
                .unwrap_or("postgres");
            state.join("blobs").join(db)
        }
    }
}

/// A blob store failure as a passing fault: the work is retried, never
/// quarantined.
pub(super) fn blob_err(e: std::io::Error) -> StoreError {
    let fault = if e.kind() == std::io::ErrorKind::StorageFull {
        Fault::DiskFull
    } else {
        Fault::Io
    };
    StoreError::Blob(e.to_string(), fault)
}

/// The blobs the comments matching `which` (a condition on `comments`,
/// e.g. `author_id IN (1, 2)`) and their attachments name, read inside
/// `tx` before those rows lose them; deleted after its commit with
/// [`Store::delete_unreferenced`].
pub(super) async fn blobs_of_comments(
    tx: &mut sqlx::AnyConnection,
    which: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query(&format!(
        "SELECT raw_sha256 AS h FROM comments WHERE {which} AND raw_sha256 IS NOT NULL \
         UNION SELECT sha256 AS h FROM attachments WHERE sha256 IS NOT NULL \
         AND comment_id IN (SELECT id FROM comments WHERE {which})"
    ))
    .fetch_all(tx)
    .await?
    .iter()
    .map(|r| get_str(r, "h"))
    .collect())
}

/// What `intake blobs gc` found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlobSweep {
    pub stored: usize,
    /// Older than the grace period and named by no row.
    pub orphans: usize,
    pub orphan_bytes: u64,
    /// Removed (0 on a dry run).
    pub removed: usize,
}

/// One row whose blob is missing or does not hash to its name.
#[derive(Debug, Clone, Serialize)]
pub struct BlobProblem {
    /// `comment` (its raw mail) or `attachment`.
    pub row: &'static str,
    pub id: i64,
    pub sha256: String,
    /// `missing`, `size` (stored size differs) or `hash`.
    pub problem: &'static str,
}

/// What `intake blobs verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlobCheck {
    /// Rows that name a blob.
    pub rows: u64,
    /// Distinct blobs read and hashed.
    pub blobs: u64,
    pub bytes: u64,
    pub problems: Vec<BlobProblem>,
}

/// What one step of `intake migrate` moved out of the database.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlobMove {
    pub comments: u64,
    pub attachments: u64,
    pub bytes: u64,
}

/// The (hash, bytes) pairs a batch writes, each once.
fn batch_blobs(items: &[Prepared]) -> Vec<(String, Vec<u8>)> {
    fn add(b: &Blob, seen: &mut HashSet<String>, out: &mut Vec<(String, Vec<u8>)>) {
        if seen.insert(b.sha256.clone()) {
            out.push((b.sha256.clone(), b.bytes.clone()));
        }
    }
    let atts = |list: &[AttachmentIn], seen: &mut HashSet<String>, out: &mut Vec<_>| {
        for b in list.iter().filter_map(|a| a.data.as_ref()) {
            add(b, seen, out);
        }
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in items {
        let Prepared::Message(m) = item else { continue };
        if let Some(b) = &m.raw {
            add(b, &mut seen, &mut out);
        }
        atts(&m.attachments, &mut seen, &mut out);
        if let Some(ForwardIn::Original(f)) = &m.forward {
            if let Some(b) = &f.raw {
                add(b, &mut seen, &mut out);
            }
            atts(&f.attachments, &mut seen, &mut out);
            atts(&f.note_attachments, &mut seen, &mut out);
        }
    }
    out
}

/// The two kinds of rows that name blobs: (label, table, hash column,
/// old bytes column).
const HOLDERS: [(&str, &str, &str, &str); 2] = [
    ("comment", "comments", "raw_sha256", "raw"),
    ("attachment", "attachments", "sha256", "data"),
];

const PAGE: i64 = 5000;

impl Store {
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Write a batch's raw mails and attachment bodies, durably, before the
    /// transaction that names them.
    pub async fn put_blobs(&self, items: &[Prepared]) -> Result<(), StoreError> {
        self.blobs.put(batch_blobs(items)).await.map_err(blob_err)
    }

    /// Each row naming a blob, `(label, id, sha256)`, a page at a time from
    /// after `after` (table index, id).
    async fn hashed_rows(
        &self,
        table: usize,
        after: i64,
    ) -> Result<Vec<(i64, String, Option<i64>)>, StoreError> {
        let (_, t, col, _) = HOLDERS[table];
        let size = if table == 0 { "raw_size" } else { "size" };
        let rows = sqlx::query(&format!(
            "SELECT id, {col} AS h, {size} AS n FROM {t} WHERE id > $1 AND {col} IS NOT NULL ORDER BY id LIMIT {PAGE}"
        ))
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (get_i64(r, "id"), get_str(r, "h"), r.try_get("n").ok()))
            .collect())
    }

    /// Which of `wanted` some row names (by the hash indexes, 500 at a time).
    async fn referenced(&self, wanted: &HashSet<String>) -> Result<HashSet<String>, StoreError> {
        let mut found = HashSet::new();
        let all: Vec<&String> = wanted.iter().collect();
        for chunk in all.chunks(500) {
            let marks = super::placeholders(0, chunk.len());
            let sql = format!(
                "SELECT raw_sha256 AS h FROM comments WHERE raw_sha256 IN ({marks}) \
                 UNION SELECT sha256 AS h FROM attachments WHERE sha256 IN ({marks})"
            );
            let mut q = sqlx::query(&sql);
            for h in chunk {
                q = q.bind(h.as_str());
            }
            for r in q.fetch_all(&self.pool).await? {
                found.insert(get_str(&r, "h"));
            }
        }
        Ok(found)
    }

    /// Delete the blobs of `hashes` that no row names any more.
    pub(super) async fn delete_unreferenced(&self, hashes: &[String]) -> Result<(), StoreError> {
        if hashes.is_empty() {
            return Ok(());
        }
        let wanted: HashSet<String> = hashes.iter().cloned().collect();
        let keep = self.referenced(&wanted).await?;
        for h in wanted.difference(&keep) {
            self.blobs.delete(h).await.map_err(blob_err)?;
        }
        Ok(())
    }

    /// Remove blobs that no row names and that were last written more than
    /// `grace` ago (a batch writes its blobs before it commits: a younger
    /// orphan may be a batch in flight). `dry_run` only counts.
    pub async fn blobs_gc(&self, grace: Duration, dry_run: bool) -> Result<BlobSweep, StoreError> {
        let listed = self.blobs.list().await.map_err(blob_err)?;
        let cutoff = SystemTime::now() - grace;
        let old: Vec<BlobInfo> = listed
            .iter()
            .filter(|b| b.modified < cutoff)
            .cloned()
            .collect();
        let wanted: HashSet<String> = old.iter().map(|b| b.sha256.clone()).collect();
        let keep = self.referenced(&wanted).await?;
        let mut out = BlobSweep {
            stored: listed.len(),
            ..BlobSweep::default()
        };
        let fresh: HashSet<String> = if dry_run {
            HashSet::new()
        } else {
            // Written again while the rows were read: in use.
            let cutoff = SystemTime::now() - grace;
            let now = self.blobs.list().await.map_err(blob_err)?;
            now.into_iter()
                .filter(|b| b.modified >= cutoff)
                .map(|b| b.sha256)
                .collect()
        };
        for b in old.iter().filter(|b| !keep.contains(&b.sha256)) {
            out.orphans += 1;
            out.orphan_bytes += b.size;
            if !dry_run && !fresh.contains(&b.sha256) {
                self.blobs.delete(&b.sha256).await.map_err(blob_err)?;
                out.removed += 1;
            }
        }
        metrics::counter!("intake_blobs_removed_total").increment(out.removed as u64);
        Ok(out)
    }

    /// Read every blob a row names, check its size and recompute its hash.
    pub async fn blobs_verify(&self) -> Result<BlobCheck, StoreError> {
        use futures::TryStreamExt;
        use sha2::Digest;
        let mut out = BlobCheck::default();
        // A blob's verdict, once per blob however many rows name it.
        let mut seen: std::collections::HashMap<String, Option<&'static str>> =
            std::collections::HashMap::new();
        for (table, (label, ..)) in HOLDERS.iter().enumerate() {
            let mut after = 0;
            loop {
                let page = self.hashed_rows(table, after).await?;
                let Some(last) = page.last() else { break };
                after = last.0;
                for (id, h, size) in page {
                    out.rows += 1;
                    let verdict = match seen.get(&h) {
                        Some(v) => *v,
                        None => {
                            let v = match self.blobs.stream(&h).await.map_err(blob_err)? {
                                None => Some("missing"),
                                Some((n, _)) if size.is_some_and(|s| s as u64 != n) => Some("size"),
                                Some((n, mut s)) => {
                                    let mut d = sha2::Sha256::new();
                                    while let Some(c) = s.try_next().await.map_err(blob_err)? {
                                        d.update(&c);
                                    }
                                    out.blobs += 1;
                                    out.bytes += n;
                                    (hex::encode(d.finalize()) != h).then_some("hash")
                                }
                            };
                            seen.insert(h.clone(), v);
                            v
                        }
                    };
                    if let Some(problem) = verdict {
                        out.problems.push(super::blob_rows::BlobProblem {
                            row: label,
                            id,
                            sha256: h,
                            problem,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Rows whose bytes are still in the database (made before the blob
    /// store): what `intake migrate` has left to move.
    pub async fn blobs_backlog(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for (_, t, _, bytes) in HOLDERS {
            let r = sqlx::query(&format!(
                "SELECT COUNT(*) FROM {t} WHERE {bytes} IS NOT NULL"
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
        cursor: &mut [i64; 2],
        limit: i64,
    ) -> Result<BlobMove, StoreError> {
        let mut out = BlobMove::default();
        for (table, (_, t, col, bytes)) in HOLDERS.iter().enumerate() {
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
            self.blobs.put(pairs).await.map_err(blob_err)?;
            let _guard = self.write_guard().await;
            let mut tx = self.begin_write().await?;
            let set_size = if table == 0 { ", raw_size = $3" } else { "" };
            for (id, b) in &moved {
                let sql =
                    format!("UPDATE {t} SET {col} = $1, {bytes} = NULL{set_size} WHERE id = $2");
                let mut q = sqlx::query(&sql).bind(&b.sha256).bind(id);
                if table == 0 {
                    q = q.bind(b.len() as i64);
                }
                q.execute(&mut *tx).await?;
                out.bytes += b.len() as u64;
            }
            tx.commit().await?;
            if table == 0 {
                out.comments += moved.len() as u64;
            } else {
                out.attachments += moved.len() as u64;
            }
        }
        Ok(out)
    }
}
