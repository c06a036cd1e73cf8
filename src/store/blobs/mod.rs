//! The blob store: raw mails and attachment bodies, each kept once under
//! its SHA-256, outside the database. Rows hold the hash and the size.
//!
//! Two backends: a directory of pack files (the default, next to the SQLite
//! file; a batch's blobs are appended and flushed before the transaction
//! that names them commits, and that transaction records where each went,
//! so a committed row never points at a missing blob) and an S3-compatible
//! object store, one object per write (its name recorded in the same
//! transaction), for daemons on several hosts sharing one PostgreSQL. A
//! crash between the blob write and the commit leaves at most unreferenced
//! bytes, which
//! [`Store::blobs_gc`](super::Store::blobs_gc) removes after a grace period.

mod fs;
mod s3;

pub use fs::{is_pack_name, Location, PackFile};
pub use s3::{object_blob, Object, S3Settings};

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

    /// Whether blobs are packed in a directory rather than objects of a
    /// bucket (both have their locations as rows of the database).
    pub fn is_packed(&self) -> bool {
        matches!(self.kind, Kind::Fs(_))
    }

    /// Store `(sha256, bytes)` pairs durably: when this returns, a crash
    /// or power loss keeps them. Says where each went (its pack and
    /// position, or its object's name), for the caller to record with the
    /// rows that name them.
    pub async fn write(&self, blobs: Vec<(String, Vec<u8>)>) -> std::io::Result<Vec<Location>> {
        if blobs.is_empty() {
            return Ok(vec![]);
        }
        match &self.kind {
            Kind::Fs(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f.append(&blobs))
                    .await
                    .map_err(std::io::Error::other)?
            }
            Kind::S3(s) => s.put(blobs).await,
        }
    }

    /// A blob's size and bytes as a stream; `None` when it is missing.
    /// `at` is where it was put; an object store without one reads the
    /// object named by the hash alone (written before objects had their
    /// own names and not yet recorded).
    pub async fn stream(
        &self,
        sha256: &str,
        at: Option<&Location>,
    ) -> std::io::Result<Option<(u64, ByteStream)>> {
        match (&self.kind, at) {
            (Kind::Fs(f), Some(l)) => Ok(f.stream(l).await?.map(|s| (l.size, s))),
            (Kind::Fs(_), None) => Ok(None),
            (Kind::S3(s), Some(l)) => s.stream(&l.pack).await,
            (Kind::S3(s), None) => s.stream(sha256).await,
        }
    }

    /// Remove a blob's bytes: overwritten with zeros where a directory
    /// store packed them, the object deleted from an object store (the
    /// one named by the hash alone when `at` is `None`).
    pub async fn erase(&self, sha256: &str, at: Option<&Location>) -> std::io::Result<()> {
        match (&self.kind, at) {
            (Kind::Fs(f), Some(l)) => {
                let (f, l) = (f.clone(), l.clone());
                tokio::task::spawn_blocking(move || f.zero(&l))
                    .await
                    .map_err(std::io::Error::other)?
            }
            (Kind::Fs(_), None) => Ok(()),
            (Kind::S3(s), Some(l)) => s.delete(&l.pack).await,
            (Kind::S3(s), None) => s.delete(sha256).await,
        }
    }

    /// The pack files of a directory store (none for an object store).
    pub async fn packs(&self) -> std::io::Result<Vec<PackFile>> {
        match &self.kind {
            Kind::Fs(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f.packs())
                    .await
                    .map_err(std::io::Error::other)?
            }
            Kind::S3(_) => Ok(vec![]),
        }
    }

    /// Delete a pack no row locates anything in any more; false when it is
    /// the one this process appends to.
    pub fn remove_pack(&self, name: &str) -> std::io::Result<bool> {
        match &self.kind {
            Kind::Fs(f) => f.remove_pack(name),
            Kind::S3(_) => Ok(false),
        }
    }

    /// Whether a process (this one or another) is appending to pack `name`.
    pub fn is_current_pack(&self, name: &str) -> bool {
        matches!(&self.kind, Kind::Fs(f) if f.is_current(name))
    }

    /// The blob objects of an object store (none for a directory store).
    pub async fn objects(&self) -> std::io::Result<Vec<Object>> {
        match &self.kind {
            Kind::Fs(_) => Ok(vec![]),
            Kind::S3(s) => s.list().await,
        }
    }
}
