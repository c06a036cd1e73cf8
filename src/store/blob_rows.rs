//! The rows' side of the blob store: its default directory, a batch's
//! blobs written before its transaction (which ones, and how its
//! transaction records them, are in `blob_batch`), reading a blob by hash
//! or by number, and the kinds of rows that name blobs. Removal is in
//! `blob_removal`; the sweep and the move of an older database's bytes in
//! `blob_upkeep`; the check in `blob_check`.

use super::blob_batch::{batch_blobs, BatchBlobs};
use super::blobs::{BlobInfo, Blobs, Location};
use super::{get_i64, get_str, Backend, Fault, Store, StoreError};
use crate::model::Prepared;
use std::collections::HashSet;
use std::path::PathBuf;

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

/// The blobs rows named before they lost them, for removal once that
/// commits: by hash, and a message's raw mail by its location's number.
#[derive(Debug, Default)]
pub struct Named {
    pub hashes: Vec<String>,
    /// Location numbers; those located by hash are found by `hashes`.
    pub raws: Vec<i64>,
}

impl From<Vec<String>> for Named {
    fn from(hashes: Vec<String>) -> Self {
        Named {
            hashes,
            raws: Vec::new(),
        }
    }
}

/// The blobs the comments matching `which` (a condition on `comments`,
/// e.g. `author_id IN (1, 2)`) and their attachments name, read inside
/// `tx` before those rows lose them; deleted after its commit with
/// [`Store::delete_unreferenced`].
pub(super) async fn blobs_of_comments(
    tx: &mut sqlx::AnyConnection,
    which: &str,
) -> Result<Named, StoreError> {
    let hashes = sqlx::query(&format!(
        "SELECT raw_sha256 AS h FROM comments WHERE {which} AND raw_sha256 IS NOT NULL \
         UNION SELECT sha256 AS h FROM attachments WHERE sha256 IS NOT NULL \
         AND comment_id IN (SELECT id FROM comments WHERE {which})"
    ))
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| get_str(r, "h"))
    .collect();
    let raws = sqlx::query(&format!(
        "SELECT raw_blob FROM comments WHERE {which} AND raw_blob IS NOT NULL"
    ))
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| get_i64(r, "raw_blob"))
    .collect();
    Ok(Named { hashes, raws })
}

/// A kind of row that names a blob by hash.
pub(super) struct Holder {
    /// How `blobs verify` names the row.
    pub label: &'static str,
    pub table: &'static str,
    /// The column holding the blob's hash.
    pub hash: &'static str,
    /// The column holding the blob's number (`blob_locations.id`), where
    /// the rows are many: found by it, their index is written at its end.
    /// Rows without one are found by the hash.
    pub number: Option<&'static str>,
    /// The column of the bytes rows made before the blob store still hold.
    pub bytes: &'static str,
    /// The column of the stored bytes' length, where it is theirs (a
    /// quarantine entry's `size` is the size of the mail it was cut from).
    pub size: Option<&'static str>,
    /// When the row names its blob (besides having the hash): a decided
    /// review entry keeps its hash to drop re-deliveries, not its mail.
    pub names: &'static str,
}

/// Every kind of row that names blobs: comments' raw mail, attachment
/// bodies, and the raw mail of quarantine, review and kept-bounce entries.
pub(super) const HOLDERS: [Holder; 5] = [
    Holder {
        label: "comment",
        table: "comments",
        hash: "raw_sha256",
        number: Some("raw_blob"),
        bytes: "raw",
        size: Some("raw_size"),
        names: "raw_sha256 IS NOT NULL",
    },
    Holder {
        label: "attachment",
        table: "attachments",
        hash: "sha256",
        number: Some("blob"),
        bytes: "data",
        size: Some("size"),
        names: "sha256 IS NOT NULL",
    },
    Holder {
        label: "quarantine",
        table: "quarantine",
        hash: "sha256",
        number: None,
        bytes: "raw",
        size: None,
        names: "raw IS NULL",
    },
    Holder {
        label: "review",
        table: "review",
        hash: "sha256",
        number: None,
        bytes: "raw",
        size: Some("size"),
        names: "raw IS NULL AND status IN ('pending', 'releasing')",
    },
    Holder {
        label: "bounce",
        table: "bounces",
        hash: "raw_sha256",
        number: None,
        bytes: "raw",
        size: None,
        names: "raw_sha256 IS NOT NULL",
    },
];

/// Where `intake migrate` stands in each of [`HOLDERS`]: the last id looked at.
pub type BlobCursor = [i64; HOLDERS.len()];

impl Store {
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Write a batch's raw mails and attachment bodies, durably, before the
    /// transaction that names them; returns where they went and which
    /// the store already held, for
    /// [`WriteTx::record_blobs`](super::WriteTx::record_blobs).
    pub async fn put_blobs(&self, items: &[Prepared]) -> Result<BatchBlobs, StoreError> {
        let (pairs, raw) = batch_blobs(items);
        self.put_split(pairs, raw).await
    }

    /// Write blobs all located by hash.
    pub(super) async fn put_pairs(
        &self,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> Result<BatchBlobs, StoreError> {
        self.put_split(pairs, HashSet::new()).await
    }

    async fn put_split(
        &self,
        mut pairs: Vec<(String, Vec<u8>)>,
        raw: HashSet<String>,
    ) -> Result<BatchBlobs, StoreError> {
        let mut out = BatchBlobs::default();
        let mut once = HashSet::new();
        pairs.retain(|(h, _)| once.insert(h.clone()));
        if pairs.is_empty() {
            return Ok(out);
        }
        // Held ones are not written again: the transaction marks them used,
        // and finds out if a sweep or an erasure took one since. A raw mail
        // is not looked for: it is its message's own.
        once.retain(|h| !raw.contains(h));
        let held = self.located(&once).await?;
        pairs.retain(|(h, _)| !held.contains(h));
        out.held = held.into_iter().collect();
        out.new = self.blobs.write(pairs).await.map_err(blob_err)?;
        out.raw = raw;
        Ok(out)
    }

    /// Where blob `sha256` was put (its pack and position, or its object).
    pub(super) async fn location(&self, sha256: &str) -> Result<Option<Location>, StoreError> {
        let r = sqlx::query("SELECT pack, pos, size FROM blob_locations WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| Location {
            sha256: sha256.to_string(),
            pack: get_str(&r, "pack"),
            pos: get_i64(&r, "pos") as u64,
            size: get_i64(&r, "size") as u64,
        }))
    }

    /// Blob `sha256`'s size and bytes; `None` when the store lacks it.
    pub async fn open_blob(
        &self,
        sha256: &str,
    ) -> Result<Option<(u64, super::blobs::ByteStream)>, StoreError> {
        let at = match self.location(sha256).await? {
            Some(l) => Some(l),
            // An object store's object from before objects had their own
            // names, not yet recorded by the sweep: named by the hash.
            None if !self.blobs.is_packed() => None,
            None => return Ok(None),
        };
        self.blobs
            .stream(sha256, at.as_ref())
            .await
            .map_err(blob_err)
    }

    /// The blob a row names by number (and hash): a message's raw mail is
    /// found by its number alone; a row without one by its hash.
    pub async fn open_numbered(
        &self,
        sha256: &str,
        number: Option<i64>,
    ) -> Result<Option<(u64, super::blobs::ByteStream)>, StoreError> {
        let Some(n) = number else {
            return self.open_blob(sha256).await;
        };
        let r = sqlx::query("SELECT pack, pos, size FROM blob_locations WHERE id = $1")
            .bind(n)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = r else { return Ok(None) };
        let at = Location {
            sha256: sha256.to_string(),
            pack: get_str(&r, "pack"),
            pos: get_i64(&r, "pos") as u64,
            size: get_i64(&r, "size") as u64,
        };
        self.blobs.stream(sha256, Some(&at)).await.map_err(blob_err)
    }

    /// Blob `sha256`'s bytes whole; `None` when the store lacks it.
    pub async fn read_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        use futures::TryStreamExt;
        let Some((_, s)) = self.open_blob(sha256).await? else {
            return Ok(None);
        };
        let chunks: Vec<bytes::Bytes> = s.try_collect().await.map_err(blob_err)?;
        Ok(Some(chunks.concat()))
    }

    /// The raw mail of a quarantine, review or bounce entry, by its hash:
    /// the store lacking it is corruption, said with the entry's name.
    pub(super) async fn held_bytes(
        &self,
        what: &str,
        id: i64,
        sha256: &str,
    ) -> Result<Vec<u8>, StoreError> {
        self.read_blob(sha256).await?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{what} {id}: its raw mail (blob {sha256}) is missing from the blob store"
            ))
        })
    }

    /// Every located blob (an object store's objects from before objects
    /// had their own names are listed once the sweep recorded them).
    pub async fn blob_list(&self) -> Result<Vec<BlobInfo>, StoreError> {
        self.listed("1 = 1").await
    }

    /// How many blob locations there are.
    pub(super) async fn blob_count(&self) -> Result<usize, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM blob_locations")
            .fetch_one(&self.pool)
            .await?;
        Ok(get_i64(&r, "n") as usize)
    }

    /// The located blobs matching `cond` (on `blob_locations`).
    pub(super) async fn listed(&self, cond: &str) -> Result<Vec<BlobInfo>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT sha256, size, used_at FROM blob_locations WHERE {cond} ORDER BY sha256"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| BlobInfo {
                sha256: get_str(r, "sha256"),
                size: get_i64(r, "size") as u64,
                modified: std::time::UNIX_EPOCH
                    + std::time::Duration::from_millis(get_i64(r, "used_at").max(0) as u64),
            })
            .collect())
    }
}
