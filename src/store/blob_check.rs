//! `intake blobs verify`: every row that names a blob, read where its
//! number says (by its hash where it has none), its size checked and its
//! hash recomputed; a row whose number names another blob is reported as
//! such.

use super::blob_batch::BY_NUMBER;
use super::blob_rows::{blob_err, HOLDERS};
use super::{get_i64, get_opt_i64, get_str, Store, StoreError};
use serde::Serialize;
use sqlx::Row;

const PAGE: i64 = 5000;

/// One row whose blob is missing or does not hash to its name, or whose
/// blob number does not name its blob.
#[derive(Debug, Clone, Serialize)]
pub struct BlobProblem {
    /// `comment` (its raw mail) or `attachment`.
    pub row: &'static str,
    pub id: i64,
    pub sha256: String,
    /// `missing`, `size` (stored size differs), `hash`, or `number` (the
    /// blob number the row keeps names no blob or another blob than its
    /// hash).
    pub problem: &'static str,
}

/// A row that names a blob, as `blobs verify` reads it.
struct HashedRow {
    id: i64,
    hash: String,
    /// The stored bytes' length, where the row keeps it.
    size: Option<i64>,
    /// The row's blob number names no blob, or another one.
    wrong_number: bool,
    /// Its blob's number, where the row keeps one.
    number: Option<i64>,
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

impl Store {
    /// Each row naming a blob, a page at a time.
    async fn hashed_rows(&self, table: usize, after: i64) -> Result<Vec<HashedRow>, StoreError> {
        let h = &HOLDERS[table];
        // A row that names its blob by number too: does the number name the
        // blob of its hash?
        let number = match h.number {
            Some(n) => format!(
                "t.{n} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blob_locations b \
                 WHERE b.id = t.{n} AND (b.sha256 = t.{} OR b.{BY_NUMBER}))",
                h.hash
            ),
            None => "1 = 0".into(),
        };
        let rows = sqlx::query(&format!(
            "SELECT id, {} AS h, {} AS n, {} AS num, CASE WHEN {number} THEN 1 ELSE 0 END AS wrong \
             FROM {} t WHERE id > $1 AND {} ORDER BY id LIMIT {PAGE}",
            h.hash,
            h.size.unwrap_or("NULL"),
            h.number.unwrap_or("NULL"),
            h.table,
            h.names
        ))
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| HashedRow {
                id: get_i64(r, "id"),
                hash: get_str(r, "h"),
                size: r.try_get("n").ok(),
                wrong_number: get_i64(r, "wrong") != 0,
                number: get_opt_i64(r, "num"),
            })
            .collect())
    }

    /// Read every blob a row names, check its size and recompute its hash.
    pub async fn blobs_verify(&self) -> Result<BlobCheck, StoreError> {
        use futures::TryStreamExt;
        use sha2::Digest;
        let mut out = BlobCheck::default();
        // A blob's verdict, once per blob however many rows name it.
        type Verdicts = std::collections::HashMap<(String, Option<i64>), Option<&'static str>>;
        let mut seen = Verdicts::new();
        for (table, holder) in HOLDERS.iter().enumerate() {
            let label = holder.label;
            let mut after = 0;
            loop {
                let page = self.hashed_rows(table, after).await?;
                let Some(last) = page.last() else { break };
                after = last.id;
                for HashedRow {
                    id,
                    hash: h,
                    size,
                    wrong_number,
                    number,
                } in page
                {
                    out.rows += 1;
                    if wrong_number {
                        out.problems.push(BlobProblem {
                            row: label,
                            id,
                            sha256: h.clone(),
                            problem: "number",
                        });
                        // That is its problem: a raw mail, located by
                        // number alone, has no other way to its blob.
                        continue;
                    }
                    // Once per blob, read where the row's number says (a
                    // row without one by its hash).
                    let key = (h.clone(), number);
                    let verdict = match seen.get(&key) {
                        Some(v) => *v,
                        None => {
                            let v = match self.open_numbered(&h, number).await? {
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
                            seen.insert(key, v);
                            v
                        }
                    };
                    if let Some(problem) = verdict {
                        out.problems.push(BlobProblem {
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
}
