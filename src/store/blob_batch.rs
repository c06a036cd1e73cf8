//! A batch's blobs: which it writes (each once, a message's own raw mail
//! apart), where the store put them as the batch's transaction records
//! them, and the numbers the rows that name them keep.

use super::blobs::Location;
use super::{get_i64, get_str, Fault, StoreError};
use crate::model::{AttachmentIn, Blob, ForwardIn, Prepared, QuarantineIn, ReviewIn};
use std::collections::HashSet;

/// The hash that names the raw bytes of a quarantine or review entry.
pub(super) fn raw_hash(raw: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(raw))
}

/// The (hash, bytes) pairs a batch writes, each once, and which of them
/// are a message's own raw mail and nothing else in the batch: those are
/// located by number alone ([`BY_NUMBER`]), the rest by hash.
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
            // A retry of a transaction whose commit went through unseen
            // finds its own rows: their numbers are the ones to name.
            "INSERT INTO blob_locations (sha256, pack, pos, size, used_at) VALUES {} \
             ON CONFLICT (sha256) DO UPDATE SET used_at = excluded.used_at RETURNING id, sha256",
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
