//! Blobs in a directory: `<dir>/<first two hex digits>/<sha256>`.
//!
//! A batch's blobs are written straight to their names (a crash mid-write
//! leaves a short file that no committed row names; the next write of the
//! same blob sees its wrong size and writes it again), then made durable
//! with one `syncfs` of the directory's filesystem, which also flushes the
//! new directory entries: one flush a batch instead of one per file. A blob
//! already there of the right size is not written again, only touched, so
//! that the orphan sweep's grace period counts from its newest use.

use super::{is_sha256, BlobInfo, ByteStream};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub(super) struct FsBlobs {
    dir: PathBuf,
}

impl FsBlobs {
    pub(super) fn open(dir: PathBuf) -> std::io::Result<FsBlobs> {
        std::fs::create_dir_all(&dir).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot create the blob directory {}: {e}", dir.display()),
            )
        })?;
        Ok(FsBlobs { dir })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, sha256: &str) -> std::io::Result<PathBuf> {
        if !is_sha256(sha256) {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("{sha256:?} is not a blob name"),
            ));
        }
        Ok(self.dir.join(&sha256[..2]).join(sha256))
    }

    pub(super) fn put(&self, blobs: &[(String, Vec<u8>)]) -> std::io::Result<()> {
        for (sha, bytes) in blobs {
            let path = self.path(sha)?;
            if let Ok(f) = OpenOptions::new().write(true).open(&path) {
                if f.metadata()?.len() == bytes.len() as u64 {
                    f.set_modified(SystemTime::now())?;
                    continue;
                }
            }
            let mut f = match File::create(&path) {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    std::fs::create_dir_all(path.parent().expect("two levels"))?;
                    File::create(&path)?
                }
                r => r?,
            };
            f.write_all(bytes)?;
            if cfg!(not(target_os = "linux")) {
                f.sync_all()?;
            }
        }
        self.flush()
    }

    /// Flush the filesystem the blobs are on: the data and the directory
    /// entries of everything written.
    #[cfg(target_os = "linux")]
    fn flush(&self) -> std::io::Result<()> {
        let d = File::open(&self.dir)?;
        rustix::fs::syncfs(&d).map_err(std::io::Error::from)
    }

    #[cfg(not(target_os = "linux"))]
    fn flush(&self) -> std::io::Result<()> {
        // Without syncfs the files were synced as written: the shard
        // directories' entries remain.
        for e in std::fs::read_dir(&self.dir)? {
            File::open(e?.path())?.sync_all()?;
        }
        File::open(&self.dir)?.sync_all()
    }

    pub(super) async fn stream(&self, sha256: &str) -> std::io::Result<Option<(u64, ByteStream)>> {
        use futures::StreamExt;
        use tokio::io::AsyncReadExt;
        let path = self.path(sha256)?;
        let f = match tokio::fs::File::open(&path).await {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            r => r?,
        };
        let size = f.metadata().await?.len();
        let s = futures::stream::try_unfold(f, |mut f| async move {
            let mut buf = vec![0u8; 64 * 1024];
            let n = f.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            Ok(Some((bytes::Bytes::from(buf), f)))
        });
        Ok(Some((size, s.boxed())))
    }

    pub(super) fn delete(&self, sha256: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(sha256)?) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    pub(super) fn list(&self) -> std::io::Result<Vec<BlobInfo>> {
        let mut out = Vec::new();
        for shard in std::fs::read_dir(&self.dir)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for e in std::fs::read_dir(shard.path())? {
                let e = e?;
                let name = e.file_name();
                let Some(name) = name.to_str().filter(|n| is_sha256(n)) else {
                    continue;
                };
                let m = match e.metadata() {
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    r => r?,
                };
                out.push(BlobInfo {
                    sha256: name.to_string(),
                    size: m.len(),
                    modified: m.modified()?,
                });
            }
        }
        Ok(out)
    }
}
