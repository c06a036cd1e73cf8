//! The blob store: raw mails and attachment bodies, each kept once under
//! its SHA-256, outside the database. Rows hold the hash and the size.
//!
//! Two backends: a directory (the default, next to the SQLite file; files
//! are flushed to disk before the transaction that names them commits, so a
//! committed row never points at a missing blob) and an S3-compatible object
//! store, for daemons on several hosts sharing one PostgreSQL. A crash
//! between the blob write and the commit leaves at most an orphan, which
//! [`Store::blobs_gc`](super::Store::blobs_gc) removes after a grace period.

mod fs;
mod s3;

pub use s3::S3Settings;

use bytes::Bytes;
use futures::stream::BoxStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// Where blobs go (`[blobs]`).
#[derive(Debug, Clone)]
pub enum BlobSettings {
    /// A directory; `None`: next to the SQLite file (`blobs/`), or
    /// `$STATE_DIRECTORY/blobs/<database>` (else `/var/lib/intake/…`) on
    /// PostgreSQL.
    Filesystem {
        dir: Option<PathBuf>,
    },
    S3(S3Settings),
}

impl Default for BlobSettings {
    fn default() -> Self {
        BlobSettings::Filesystem { dir: None }
    }
}

/// One stored blob as a listing sees it.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub sha256: String,
    pub size: u64,
    /// When it was last written (or found already there by a write).
    pub modified: SystemTime,
}

/// A blob's bytes, read as they arrive.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

#[derive(Clone)]
enum Kind {
    Fs(Arc<fs::FsBlobs>),
    S3(Arc<s3::S3Blobs>),
}

/// Handle on the blob store; cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    kind: Kind,
}

/// Whether `s` is a blob name: 64 lower-case hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Blobs {
    /// Open the store `settings` names; `default_dir` is where a
    /// filesystem store without `dir` lives.
    pub fn open(settings: &BlobSettings, default_dir: PathBuf) -> std::io::Result<Blobs> {
        Ok(Blobs {
            kind: match settings {
                BlobSettings::Filesystem { dir } => Kind::Fs(Arc::new(fs::FsBlobs::open(
                    dir.clone().unwrap_or(default_dir),
                )?)),
                BlobSettings::S3(s) => Kind::S3(Arc::new(s3::S3Blobs::open(s)?)),
            },
        })
    }

    /// Where the blobs are, for logs and `intake blobs verify`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Fs(f) => format!("directory {}", f.dir().display()),
            Kind::S3(s) => s.describe(),
        }
    }

    /// The directory of a filesystem store.
    pub fn dir(&self) -> Option<PathBuf> {
        match &self.kind {
            Kind::Fs(f) => Some(f.dir().to_path_buf()),
            Kind::S3(_) => None,
        }
    }

    /// Store every `(sha256, bytes)` pair not stored yet, durably: when this
    /// returns, a crash or power loss keeps them.
    pub async fn put(&self, blobs: Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        match &self.kind {
            Kind::Fs(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f.put(&blobs))
                    .await
                    .map_err(std::io::Error::other)?
            }
            Kind::S3(s) => s.put(blobs).await,
        }
    }

    /// A blob's size and bytes as a stream; `None` when it is missing.
    pub async fn stream(&self, sha256: &str) -> std::io::Result<Option<(u64, ByteStream)>> {
        match &self.kind {
            Kind::Fs(f) => f.stream(sha256).await,
            Kind::S3(s) => s.stream(sha256).await,
        }
    }

    /// A blob's bytes whole; `None` when it is missing.
    pub async fn read(&self, sha256: &str) -> std::io::Result<Option<Vec<u8>>> {
        use futures::TryStreamExt;
        let Some((size, mut s)) = self.stream(sha256).await? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(size.min(64 << 20) as usize);
        while let Some(chunk) = s.try_next().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }

    /// Remove a blob (no error when it is already gone).
    pub async fn delete(&self, sha256: &str) -> std::io::Result<()> {
        match &self.kind {
            Kind::Fs(f) => {
                let f = f.clone();
                let h = sha256.to_string();
                tokio::task::spawn_blocking(move || f.delete(&h))
                    .await
                    .map_err(std::io::Error::other)?
            }
            Kind::S3(s) => s.delete(sha256).await,
        }
    }

    /// Every stored blob (files and objects whose names are not hashes are
    /// left alone and not listed).
    pub async fn list(&self) -> std::io::Result<Vec<BlobInfo>> {
        match &self.kind {
            Kind::Fs(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f.list())
                    .await
                    .map_err(std::io::Error::other)?
            }
            Kind::S3(s) => s.list().await,
        }
    }
}
