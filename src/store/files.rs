//! The bytes a comment came with: its raw mail and its attachments'
//! bodies, read one at a time for the admin API and the CLI.

use super::{get_i64, get_opt_str, get_str, Store, StoreError};
use serde::Serialize;
use sqlx::Row;

/// One attachment with its body, when it has one.
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
    #[serde(skip)]
    pub data: Option<Vec<u8>>,
}

impl Store {
    /// The raw mail comment `id` was stored from; `None` for a comment that
    /// came without one (a gateway's contact, an agent's note).
    pub async fn comment_raw(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let r = sqlx::query("SELECT raw FROM comments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("comment {id}")))?;
        Ok(r.try_get::<Option<Vec<u8>>, _>("raw")?)
    }

    /// Attachment `id` with its body.
    pub async fn attachment_file(&self, id: i64) -> Result<AttachmentFile, StoreError> {
        let r = sqlx::query(
            "SELECT id, comment_id, filename, content_type, size, url, omitted, data FROM attachments WHERE id = $1",
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
            data: r.try_get::<Option<Vec<u8>>, _>("data")?,
        })
    }
}
