//! Blobs in an S3-compatible object store (`object_store`'s client: SigV4,
//! path-style buckets, retries), in one bucket. Every write is a new object,
//! `<prefix><sha256>.<16 hex digits>`, whose name the batch's transaction
//! records (`blob_locations`, as a directory store records a pack
//! position): a removal deletes the object its row named, never one a
//! batch wrote since, so an erasure or a sweep cannot delete the bytes a
//! batch in flight is about to name. Objects of versions before that are
//! named `<prefix><sha256>` and read by that name until the sweep records
//! them. A `PUT` returns once the object is stored, so the batch's blobs
//! are durable before its transaction commits.

use super::{is_sha256, ByteStream, Location};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use std::io::ErrorKind;

/// `[blobs] backend = "s3"`.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    pub bucket: String,
    /// The server's base URL (`https://s3.eu-west-1.amazonaws.com`, or a
    /// MinIO, Ceph or Garage endpoint).
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Put before every object name (`intake/`).
    pub prefix: String,
}

pub(super) struct S3Blobs {
    store: AmazonS3,
    settings: S3Settings,
}

/// How many objects are sent at once.
const PARALLEL: usize = 16;

/// One object of the bucket under the prefix that is a blob.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its name under the prefix (`<sha256>` or `<sha256>.<16 hex>`).
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

impl Object {
    /// Where it is, as a location row says it.
    pub fn location(&self) -> Location {
        Location {
            sha256: self.sha256.clone(),
            pack: self.name.clone(),
            pos: 0,
            size: self.size,
        }
    }
}

/// The blob `name` holds, if `name` is a blob object's name: `<sha256>`
/// (written before objects had their own names) or `<sha256>.<16 hex>`.
pub fn object_blob(name: &str) -> Option<&str> {
    let (sha, tag) = match name.split_once('.') {
        Some((sha, tag)) => (sha, Some(tag)),
        None => (name, None),
    };
    let tag_ok = tag.is_none_or(|t| {
        t.len() == 16
            && t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    (is_sha256(sha) && tag_ok).then_some(sha)
}

fn io(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { .. } => std::io::Error::new(ErrorKind::NotFound, e),
        e => std::io::Error::other(e),
    }
}

impl S3Blobs {
    pub(super) fn open(s: &S3Settings) -> std::io::Result<S3Blobs> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key);
        if let Some(e) = &s.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        Ok(S3Blobs {
            store: b
                .build()
                .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?,
            settings: s.clone(),
        })
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "S3 bucket {} at {} (prefix {:?})",
            self.settings.bucket,
            self.settings.endpoint.as_deref().unwrap_or("AWS"),
            self.settings.prefix
        )
    }

    fn path(&self, name: &str) -> std::io::Result<Path> {
        if object_blob(name).is_none() {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("{name:?} is not a blob object's name"),
            ));
        }
        Ok(Path::from(format!("{}{name}", self.settings.prefix)))
    }

    /// Store each blob as a new object; returns their names as locations.
    pub(super) async fn put(
        &self,
        blobs: Vec<(String, Vec<u8>)>,
    ) -> std::io::Result<Vec<Location>> {
        futures::stream::iter(blobs)
            .map(|(sha256, bytes)| async move {
                let name = format!("{sha256}.{:016x}", rand::random::<u64>());
                let size = bytes.len() as u64;
                self.store
                    .put(&self.path(&name)?, PutPayload::from(bytes))
                    .await
                    .map_err(io)?;
                Ok(Location {
                    sha256,
                    pack: name,
                    pos: 0,
                    size,
                })
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await
    }

    /// Object `name`'s size and bytes; `None` when it is missing.
    pub(super) async fn stream(&self, name: &str) -> std::io::Result<Option<(u64, ByteStream)>> {
        match self.store.get(&self.path(name)?).await {
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io(e)),
            Ok(r) => {
                let size = r.meta.size;
                Ok(Some((size, r.into_stream().map_err(io).boxed())))
            }
        }
    }

    pub(super) async fn delete(&self, name: &str) -> std::io::Result<()> {
        match self.store.delete(&self.path(name)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// Every blob object under the prefix.
    pub(super) async fn list(&self) -> std::io::Result<Vec<Object>> {
        let prefix = self.settings.prefix.trim_end_matches('/');
        let prefix = (!prefix.is_empty()).then(|| Path::from(prefix));
        let mut out = Vec::new();
        let mut s = self.store.list(prefix.as_ref());
        while let Some(m) = s.try_next().await.map_err(io)? {
            let name = m.location.filename().unwrap_or_default();
            let Some(sha) = object_blob(name) else {
                continue;
            };
            if m.location.as_ref() != format!("{}{name}", self.settings.prefix) {
                continue;
            }
            out.push(Object {
                name: name.to_string(),
                sha256: sha.to_string(),
                size: m.size,
                modified: m.last_modified.into(),
            });
        }
        Ok(out)
    }
}
