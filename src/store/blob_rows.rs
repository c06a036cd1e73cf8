//! The rows' side of the blob store: its default directory, a batch's
//! blobs written before its transaction and where they went recorded in
//! it, reading a blob by hash, and the kinds of rows that name blobs.
//! Removal is in `blob_removal`; the sweep, the check and the move of an
//! older database's bytes are in `blob_upkeep`.

use super::blobs::{BlobInfo, Blobs, Location};
use super::{get_i64, get_str, Backend, Fault, Store, StoreError};
use crate::model::{AttachmentIn, Blob, ForwardIn, Prepared, QuarantineIn, ReviewIn};
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

/// The hash that names the raw bytes of a quarantine or review entry.
pub(super) fn raw_hash(raw: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(raw))
}

/// The (hash, bytes) pairs a batch writes, each once, and which of them
/// are a message's own raw mail and nothing else in the batch: those are
/// located by number alone (migration 0026), the rest by hash.
pub(super) fn batch_blobs(items: &[Prepared]) -> (Vec<(String, Vec<u8>)>, HashSet<String>) {
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
    let mut raws = HashSet::new();
    for item in items {
        let m = match item {
            Prepared::Message(m) => m,
            Prepared::Quarantine(QuarantineIn { raw, .. })
            | Prepared::Review(ReviewIn { raw, .. }) => {
                let h = raw_hash(raw);
                if seen.insert(h.clone()) {
                    out.push((h, raw.clone()));
                }
                continue;
            }
        };
        if let Some(b) = &m.raw {
            add(b, &mut seen, &mut out);
            raws.insert(b.sha256.clone());
        }
    }
    // What else the batch names by hash: a hash also found there is keyed.
    let mut keyed = HashSet::new();
    for item in items {
        match item {
            Prepared::Message(m) => {
                atts(&m.attachments, &mut seen, &mut out);
                let mut names: Vec<&Blob> = m
                    .attachments
                    .iter()
                    .filter_map(|a| a.data.as_ref())
                    .collect();
                if let Some(ForwardIn::Original(f)) = &m.forward {
                    if let Some(b) = &f.raw {
                        add(b, &mut seen, &mut out);
                        names.push(b);
                    }
                    atts(&f.attachments, &mut seen, &mut out);
                    atts(&f.note_attachments, &mut seen, &mut out);
                    names.extend(
                        f.attachments
                            .iter()
                            .chain(&f.note_attachments)
                            .filter_map(|a| a.data.as_ref()),
                    );
                }
                keyed.extend(names.into_iter().map(|b| b.sha256.clone()));
            }
            Prepared::Quarantine(QuarantineIn { raw, .. })
            | Prepared::Review(ReviewIn { raw, .. }) => {
                keyed.insert(raw_hash(raw));
            }
        }
    }
    raws.retain(|h| !keyed.contains(h));
    (out, raws)
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

/// A batch's blobs as written before its transaction: where the new ones
/// went, and the hashes of those the store already held.
#[derive(Debug, Default)]
pub struct BatchBlobs {
    pub new: Vec<Location>,
    pub held: Vec<String>,
    /// Those of `new` that are a message's raw mail only: located by
    /// number, outside the hash index.
    pub raw: HashSet<String>,
}

/// Which locations are a message's raw mail, located by number alone: their
/// key (`blob_locations.sha256`) is [`number_key`], not their hash, so the
/// unique index on it is written at its end rather than at a random place
/// for every message (docs/BENCHMARKS.md, "SQLite at scale: what the
/// blob-hash index costs"). The comment that names one keeps the hash.
pub(super) const BY_NUMBER: &str = "sha256 LIKE '@%'";

/// The key of a raw mail located by number alone: `@<pack>:<position>`,
/// growing with time as pack names do (an object store's object name is
/// random, and unique all the same).
pub(super) fn number_key(pack: &str, pos: u64) -> String {
    format!("@{pack}:{pos:012}")
}

/// A blob a batch found held was removed (by the sweep or an erasure)
/// before the batch's transaction marked it used: the batch writes its
/// blobs again and retries.
pub(super) const BLOB_GONE: &str = "a blob this batch found stored was removed meanwhile";

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

/// Record where the store put a batch's blobs, in its transaction,
/// and mark those it already held used now. One of those gone (a sweep or
/// an erasure removed it after the batch looked) fails the transaction
/// with [`BLOB_GONE`], a contention the commit step retries after writing
/// the batch's blobs again: so a committed row never names a removed blob,
/// and a removal either comes first or finds the blob used after it began.
/// Returns each blob's number (the rows that name it keep it with its hash).
pub(super) async fn record(
    tx: &mut sqlx::AnyConnection,
    blobs: &BatchBlobs,
    now: i64,
) -> Result<BlobNumbers, StoreError> {
    let mut numbers = BlobNumbers::new();
    // Each blob once (an upsert cannot touch a row twice in one statement),
    // in the order of the hash, as the held ones below: batches sharing
    // blobs (one attachment in many mails) take their rows in one order
    // and wait for one another instead of deadlocking. (A blob one batch
    // records as new while another already holds it is taken in the
    // other's second statement: should that ever close a cycle,
    // PostgreSQL breaks it and the batch is retried as contention.)
    let (raw, mut locs): (Vec<&Location>, Vec<&Location>) = blobs
        .new
        .iter()
        .partition(|l| blobs.raw.contains(&l.sha256));
    locs.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    locs.dedup_by(|a, b| a.sha256 == b.sha256);
    let mut held: Vec<&String> = blobs.held.iter().collect();
    held.sort_unstable();
    let backend = if tx.backend_name().eq_ignore_ascii_case("sqlite") {
        super::Backend::Sqlite
    } else {
        super::Backend::Postgres
    };
    // A message's raw mail: a row of its own, found by its number (its
    // hash is in no index: no other batch looks for it).
    for chunk in raw.chunks(200) {
        let hash_of: std::collections::HashMap<String, &str> = chunk
            .iter()
            .map(|l| (number_key(&l.pack, l.pos), l.sha256.as_str()))
            .collect();
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| format!("({})", super::markers(backend, r * 5, 5)))
            .collect();
        let sql = format!(
            "INSERT INTO blob_locations (sha256, pack, pos, size, used_at) VALUES {} \
             RETURNING id, sha256",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for l in chunk {
            q = q
                .bind(number_key(&l.pack, l.pos))
                .bind(&l.pack)
                .bind(l.pos as i64)
                .bind(l.size as i64)
                .bind(now);
        }
        for r in q.fetch_all(&mut *tx).await? {
            let key = get_str(&r, "sha256");
            if let Some(h) = hash_of.get(&key) {
                numbers.insert(h.to_string(), get_i64(&r, "id"));
            }
        }
    }
    for chunk in locs.chunks(200) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| format!("({})", super::markers(backend, r * 5, 5)))
            .collect();
        let sql = format!(
            // Another batch located it meanwhile: that copy is used (the
            // upsert waits for a removal that holds the row, and then
            // inserts this batch's own).
            "INSERT INTO blob_locations (sha256, pack, pos, size, used_at) VALUES {} \
             ON CONFLICT (sha256) DO UPDATE SET used_at = excluded.used_at RETURNING id, sha256",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for l in chunk {
            q = q
                .bind(&l.sha256)
                .bind(&l.pack)
                .bind(l.pos as i64)
                .bind(l.size as i64)
                .bind(now);
        }
        for r in q.fetch_all(&mut *tx).await? {
            numbers.insert(get_str(&r, "sha256"), get_i64(&r, "id"));
        }
    }
    for chunk in held.chunks(500) {
        let sql = format!(
            "UPDATE blob_locations SET used_at = {} WHERE sha256 IN ({}) RETURNING id, sha256",
            super::markers(backend, 0, 1),
            super::markers(backend, 1, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(now);
        for h in chunk {
            q = q.bind(h.as_str());
        }
        let rows = q.fetch_all(&mut *tx).await?;
        if rows.len() < chunk.len() {
            return Err(StoreError::Blob(BLOB_GONE.into(), Fault::Contention));
        }
        for r in rows {
            numbers.insert(get_str(&r, "sha256"), get_i64(&r, "id"));
        }
    }
    Ok(numbers)
}

/// Blob hash → its number (`blob_locations.id`), for the rows a batch writes.
pub type BlobNumbers = std::collections::HashMap<String, i64>;
