//! Archives of mail to import in bulk (`intake import`): an mbox file or a
//! Maildir folder, read one message at a time so that memory stays bounded
//! by the pipeline's batch, whatever the archive's size. There is no
//! checkpoint: the pipeline recognises a message it already holds (by
//! Message-ID, or by the hash of a mail that has none), so importing the
//! same archive twice stores nothing new.
//!
//! mbox is read by mail-parser's reader (`From ` separators, mboxrd
//! `>From` unquoting). Maildir is listed here rather than by mail-parser's
//! iterator, which yields `cur/` then `new/` in directory order: unique
//! names start with the delivery time, so sorting them imports the mail
//! in the order it arrived, which threading relies on.

use mail_parser::mailbox::mbox::MessageIterator;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where the mail comes from.
#[derive(Debug, Clone)]
pub enum Archive {
    Mbox(PathBuf),
    Maildir(PathBuf),
}

/// How far an import has come, in the archive's own unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of an mbox file.
    Bytes,
    /// Messages of a Maildir.
    Messages,
}

/// An open archive: its messages in order, with the progress made.
pub struct Reader {
    inner: Inner,
    /// Total in [`Reader::unit`]: the mbox file's size or the message count.
    pub total: u64,
    pub unit: Unit,
}

enum Inner {
    Mbox {
        messages: MessageIterator<BufReader<Counting<File>>>,
        read: Arc<AtomicU64>,
    },
    Maildir {
        files: std::vec::IntoIter<PathBuf>,
        done: u64,
    },
}

/// A reader that counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Archive {
    /// Open the archive; an error names the path and what is wrong with it.
    pub fn open(&self) -> Result<Reader, String> {
        match self {
            Archive::Mbox(p) => {
                let f = File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
                let meta = f.metadata().map_err(|e| format!("{}: {e}", p.display()))?;
                if !meta.is_file() {
                    return Err(format!("{}: not an mbox file", p.display()));
                }
                let read = Arc::new(AtomicU64::new(0));
                let counting = Counting {
                    inner: f,
                    read: read.clone(),
                };
                Ok(Reader {
                    inner: Inner::Mbox {
                        messages: MessageIterator::new(BufReader::with_capacity(1 << 16, counting)),
                        read,
                    },
                    total: meta.len(),
                    unit: Unit::Bytes,
                })
            }
            Archive::Maildir(p) => {
                let files = maildir_files(p)?;
                Ok(Reader {
                    total: files.len() as u64,
                    inner: Inner::Maildir {
                        files: files.into_iter(),
                        done: 0,
                    },
                    unit: Unit::Messages,
                })
            }
        }
    }
}

/// The files of `cur/` and `new/`, oldest delivery first.
fn maildir_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let d = dir.join(sub);
        let entries = std::fs::read_dir(&d)
            .map_err(|e| format!("{}: not a Maildir ({}: {e})", dir.display(), d.display()))?;
        for e in entries {
            let e = e.map_err(|e| format!("{}: {e}", d.display()))?;
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
                out.push(e.path());
            }
        }
    }
    // Unique names are `seconds.unique.host[:2,flags]`: numeric order of the
    // leading seconds first, then the name.
    out.sort_by_cached_key(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let secs: u64 = name
            .split('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX);
        (secs, name)
    });
    Ok(out)
}

impl Reader {
    /// Progress so far, in [`Reader::unit`].
    pub fn position(&self) -> u64 {
        match &self.inner {
            Inner::Mbox { read, .. } => read.load(Ordering::Relaxed),
            Inner::Maildir { done, .. } => *done,
        }
    }
}

impl Iterator for Reader {
    /// One message's bytes; an error names the message that could not be read.
    type Item = Result<Vec<u8>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Mbox { messages, .. } => messages.next().map(|m| {
                m.map(|m| m.unwrap_contents())
                    .map_err(|e| format!("mbox: {e}"))
            }),
            Inner::Maildir { files, done } => {
                let p = files.next()?;
                *done += 1;
                Some(std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_messages_come_in_order_with_from_lines_unquoted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.mbox");
        std::fs::write(
            &p,
            "From a@x Thu Jan  1 00:00:00 2026\nSubject: one\n\n>From here\n\nFrom b@x Thu Jan  1 00:00:01 2026\nSubject: two\n\nbody\n",
        )
        .unwrap();
        let mut r = Archive::Mbox(p).open().unwrap();
        assert_eq!(r.unit, Unit::Bytes);
        let first = String::from_utf8(r.next().unwrap().unwrap()).unwrap();
        assert!(
            first.starts_with("Subject: one") && first.contains("\nFrom here"),
            "{first:?}"
        );
        let second = String::from_utf8(r.next().unwrap().unwrap()).unwrap();
        assert!(second.starts_with("Subject: two"), "{second:?}");
        assert!(r.next().is_none());
        assert_eq!(r.position(), r.total);
    }

    #[test]
    fn maildir_is_read_oldest_first_across_cur_and_new() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("new/300.a.host"), "Subject: c\n\n").unwrap();
        std::fs::write(dir.path().join("cur/20.b.host:2,S"), "Subject: a\n\n").unwrap();
        std::fs::write(dir.path().join("cur/100.c.host:2,"), "Subject: b\n\n").unwrap();
        std::fs::write(dir.path().join("tmp/1.d.host"), "Subject: never\n\n").unwrap();
        let r = Archive::Maildir(dir.path().into()).open().unwrap();
        assert_eq!(r.total, 3);
        let got: Vec<String> = r.map(|m| String::from_utf8(m.unwrap()).unwrap()).collect();
        assert_eq!(got, ["Subject: a\n\n", "Subject: b\n\n", "Subject: c\n\n"]);
    }

    #[test]
    fn a_missing_or_wrong_archive_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = Archive::Maildir(dir.path().into()).open().err().unwrap();
        assert!(e.contains("not a Maildir"), "{e}");
        let e = Archive::Mbox(dir.path().join("none")).open().err().unwrap();
        assert!(e.contains("none"), "{e}");
        let e = Archive::Mbox(dir.path().into()).open().err().unwrap();
        assert!(e.contains("not an mbox file"), "{e}");
    }
}
