//! The bytes a comment came with: its raw mail and its attachments'
//! bodies, read one at a time for the admin API and the CLI, as streams
//! from the blob store (or, in a database `intake migrate` has not moved
//! yet, from the row).

use super::blob_rows::blob_err;
use super::blobs::ByteStream;
use super::{get_i64, get_opt_str, get_str, Store, StoreError};
use serde::Serialize;
use sqlx::Row;

/// Where a body is.
#[derive(Debug, Clone)]
pub enum BodyRef {
    /// In the blob store, by SHA-256.
    Blob(String),
    /// In the blob store, by SHA-256 and location number (a message's raw
    /// mail is located by number alone).
    Numbered(String, i64),
    /// Still in the row (a database from before the blob store).
    Row(Vec<u8>),
}

/// One attachment, and where its body is when it has one.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentFile {
    pub id: i64,
    pub comment_id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// A gateway's link instead of a body.
    pub url: Option<String>,
    /// Why the body was not stored (`too large`).
    pub omitted: Option<String>,
    /// Its blob's SHA-256.
    pub sha256: Option<String>,
    #[serde(skip)]
    pub body: Option<BodyRef>,
}

fn body_ref(r: &sqlx::any::AnyRow, hash: &str, bytes: &str) -> Result<Option<BodyRef>, StoreError> {
    if let Some(h) = r.try_get::<Option<String>, _>(hash)? {
        return Ok(Some(BodyRef::Blob(h)));
    }
    Ok(r.try_get::<Option<Vec<u8>>, _>(bytes)?.map(BodyRef::Row))
}

impl Store {
    /// Where the raw mail comment `id` was stored from is; `None` for a
    /// comment that came without one (a gateway's contact, an agent's note).
    pub async fn comment_raw_ref(&self, id: i64) -> Result<Option<BodyRef>, StoreError> {
        let r = sqlx::query("SELECT raw, raw_sha256, raw_blob FROM comments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("comment {id}")))?;
        Ok(match body_ref(&r, "raw_sha256", "raw")? {
            Some(BodyRef::Blob(h)) => match r.try_get::<Option<i64>, _>("raw_blob")? {
                Some(n) => Some(BodyRef::Numbered(h, n)),
                None => Some(BodyRef::Blob(h)),
            },
            other => other,
        })
    }

    /// The raw mail comment `id` was stored from, whole.
    pub async fn comment_raw(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        match self.comment_raw_ref(id).await? {
            None => Ok(None),
            Some(b) => {
                let (_, s) = self.open_body(&b).await?;
                use futures::TryStreamExt;
                let chunks: Vec<bytes::Bytes> = s.try_collect().await.map_err(blob_err)?;
                Ok(Some(chunks.concat()))
            }
        }
    }

    /// A body's size and bytes; a blob a row names but the store lacks is
    /// an error that names it (`intake blobs verify` lists them all).
    pub async fn open_body(&self, b: &BodyRef) -> Result<(u64, ByteStream), StoreError> {
        match b {
            BodyRef::Row(bytes) => {
                let one = bytes::Bytes::from(bytes.clone());
                Ok((
                    one.len() as u64,
                    Box::pin(futures::stream::once(async move { Ok(one) })),
                ))
            }
            BodyRef::Blob(h) | BodyRef::Numbered(h, _) => {
                let number = match b {
                    BodyRef::Numbered(_, n) => Some(*n),
                    _ => None,
                };
                self.open_numbered(h, number).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "blob {h} is missing from the {}",
                        self.blobs.describe()
                    ))
                })
            }
        }
    }

    /// Attachment `id`, and where its body is.
    pub async fn attachment_file(&self, id: i64) -> Result<AttachmentFile, StoreError> {
        let r = sqlx::query(
            "SELECT id, comment_id, filename, content_type, size, url, omitted, data, sha256 FROM attachments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("attachment {id}")))?;
        Ok(AttachmentFile {
            id: get_i64(&r, "id"),
            comment_id: get_i64(&r, "comment_id"),
            filename: get_str(&r, "filename"),
            content_type: get_str(&r, "content_type"),
            size: get_i64(&r, "size"),
            url: get_opt_str(&r, "url"),
            omitted: get_opt_str(&r, "omitted"),
            sha256: get_opt_str(&r, "sha256"),
            body: body_ref(&r, "sha256", "data")?,
        })
    }
}
