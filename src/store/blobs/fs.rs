//! Blobs in a directory, packed: each process appends the blobs of a batch
//! to its own pack file (`<dir>/packs/<ms>-<pid>-<n>.pack`, a new one past
//! 64 MB) and flushes it once (`fdatasync`) before the batch's transaction
//! commits. Which blob sits where (pack, position, size) is a row of the
//! database (`blob_locations`, written by the store in that transaction),
//! so that a batch costs one flush and no file creation per message (on
//! the disks measured here, creating a file costs 0.3-0.7 ms; appending
//! 3 KB, 4 µs).
//!
//! A crash between the append and the commit leaves bytes no row locates;
//! erasure overwrites a blob's bytes with zeros at once; the sweep
//! rewrites packs that are mostly dead into a new pack and deletes them.

use super::ByteStream;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A new pack is started past this size.
const PACK_MAX: u64 = 64 << 20;

/// Where one blob was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub sha256: String,
    pub pack: String,
    pub pos: u64,
    pub size: u64,
}

/// One pack file as the directory lists it.
#[derive(Debug, Clone)]
pub struct PackFile {
    pub name: String,
    pub len: u64,
    pub modified: std::time::SystemTime,
}

struct Open {
    name: String,
    file: File,
    len: u64,
}

/// Packs this process opened, their names' sequence: one for the process,
/// not per store, so that two stores a process opens on one directory (a
/// test's daemons, a command beside the daemon's own) never pick one name.
static PACK_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(super) struct FsBlobs {
    dir: PathBuf,
    current: Mutex<Option<Open>>,
}

/// Whether `name` is a pack file's name (no path, no traversal).
pub fn is_pack_name(name: &str) -> bool {
    name.ends_with(".pack")
        && name.len() < 80
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with('.')
}

impl FsBlobs {
    pub(super) fn open(dir: PathBuf) -> std::io::Result<FsBlobs> {
        let packs = dir.join("packs");
        let fresh = !packs.is_dir();
        std::fs::create_dir_all(&packs).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot create the blob directory {}: {e}", dir.display()),
            )
        })?;
        if fresh {
            // The new directories' entries, durably.
            // (A relative directory's parent is "": the working directory.)
            let parent = match dir.parent() {
                Some(p) if p.as_os_str().is_empty() => Path::new("."),
                Some(p) => p,
                None => dir.as_path(),
            };
            for d in [dir.as_path(), parent] {
                File::open(d)?.sync_all()?;
            }
        }
        Ok(FsBlobs {
            dir,
            current: Mutex::new(None),
        })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    fn pack_path(&self, pack: &str) -> std::io::Result<PathBuf> {
        if !is_pack_name(pack) {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("{pack:?} is not a pack name"),
            ));
        }
        Ok(self.dir.join("packs").join(pack))
    }

    fn new_pack(&self) -> std::io::Result<Open> {
        let n = PACK_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!("{ms}-{}-{n}.pack", std::process::id());
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(self.pack_path(&name)?)?;
        // Held while this process may append to it: the sweep of any
        // process leaves a locked pack alone (the lock ends with the
        // process, so a dead writer's pack is swept).
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::Error(e) => e,
            std::fs::TryLockError::WouldBlock => {
                std::io::Error::other(format!("pack {name} is locked by another process"))
            }
        })?;
        // The new directory entry must survive a crash too.
        File::open(self.dir.join("packs"))?.sync_all()?;
        Ok(Open { name, file, len: 0 })
    }

    /// Append `blobs`, flush, and say where each went. After a failed
    /// write the pack is given up (its recorded length may no longer be
    /// where the next append lands): the next batch starts a new one.
    pub(super) fn append(&self, blobs: &[(String, Vec<u8>)]) -> std::io::Result<Vec<Location>> {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.append_to(&mut cur, blobs);
        if r.is_err() {
            *cur = None;
        }
        r
    }

    fn append_to(
        &self,
        cur: &mut Option<Open>,
        blobs: &[(String, Vec<u8>)],
    ) -> std::io::Result<Vec<Location>> {
        let mut out = Vec::with_capacity(blobs.len());
        for (sha, bytes) in blobs {
            if cur.as_ref().is_none_or(|o| o.len >= PACK_MAX) {
                if let Some(old) = cur.take() {
                    old.file.sync_data()?;
                }
                *cur = Some(self.new_pack()?);
            }
            let o = cur.as_mut().expect("opened above");
            o.file.write_all(bytes)?;
            out.push(Location {
                sha256: sha.clone(),
                pack: o.name.clone(),
                pos: o.len,
                size: bytes.len() as u64,
            });
            o.len += bytes.len() as u64;
        }
        if let Some(o) = cur.as_ref() {
            o.file.sync_data()?;
        }
        Ok(out)
    }

    /// The bytes at `l`, as a stream.
    pub(super) async fn stream(&self, l: &Location) -> std::io::Result<Option<ByteStream>> {
        use futures::StreamExt;
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut f = match tokio::fs::File::open(self.pack_path(&l.pack)?).await {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            r => r?,
        };
        if f.metadata().await?.len() < l.pos + l.size {
            return Ok(None);
        }
        f.seek(SeekFrom::Start(l.pos)).await?;
        let s = futures::stream::try_unfold((f, l.size), |(mut f, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let mut buf = vec![0u8; left.min(64 * 1024) as usize];
            f.read_exact(&mut buf).await?;
            let n = buf.len() as u64;
            Ok(Some((bytes::Bytes::from(buf), (f, left - n))))
        });
        Ok(Some(s.boxed()))
    }

    /// Overwrite the bytes at `l` with zeros, durably.
    pub(super) fn zero(&self, l: &Location) -> std::io::Result<()> {
        let mut f = match OpenOptions::new()
            .write(true)
            .open(self.pack_path(&l.pack)?)
        {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            r => r?,
        };
        let end = f.metadata()?.len().min(l.pos + l.size);
        if end <= l.pos {
            return Ok(());
        }
        f.seek(SeekFrom::Start(l.pos))?;
        let zeros = vec![0u8; 64 * 1024];
        let mut left = end - l.pos;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        f.sync_data()
    }

    /// Every pack file.
    pub(super) fn packs(&self) -> std::io::Result<Vec<PackFile>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.join("packs"))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            if !is_pack_name(&name) {
                continue;
            }
            let m = match e.metadata() {
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                r => r?,
            };
            out.push(PackFile {
                name,
                len: m.len(),
                modified: m.modified()?,
            });
        }
        Ok(out)
    }

    /// Delete a pack no process appends to; false when one does.
    pub(super) fn remove_pack(&self, name: &str) -> std::io::Result<bool> {
        if self.is_current(name) {
            return Ok(false);
        }
        match std::fs::remove_file(self.pack_path(name)?) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
            r => r.map(|_| true),
        }
    }

    /// Whether some process (this one or another) may append to pack
    /// `name`: it holds the pack's lock.
    pub(super) fn is_current(&self, name: &str) -> bool {
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.as_ref().is_some_and(|o| o.name == name) {
            return true;
        }
        drop(cur);
        let Ok(f) = self.pack_path(name).and_then(File::open) else {
            return false;
        };
        matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two stores of one process on one directory (a test's daemons, a
    /// command beside the daemon) start packs at the same moment: each gets
    /// a name of its own, never the other's file.
    #[test]
    fn two_stores_of_one_process_never_share_a_pack_name() {
        let dir = tempfile::tempdir().unwrap();
        let a = FsBlobs::open(dir.path().to_path_buf()).unwrap();
        let b = FsBlobs::open(dir.path().to_path_buf()).unwrap();
        let mut names = std::collections::HashSet::new();
        for _ in 0..50 {
            let (pa, pb) = (a.new_pack().unwrap(), b.new_pack().unwrap());
            assert!(names.insert(pa.name), "a name came twice");
            assert!(names.insert(pb.name), "a name came twice");
        }
    }
}
