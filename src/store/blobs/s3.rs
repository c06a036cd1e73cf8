//! Blobs in an S3-compatible object store (`object_store`'s client: SigV4,
//! path-style buckets, retries): `<prefix><sha256>` in one bucket. A `PUT`
//! returns once the object is stored, so the batch's blobs are durable
//! before its transaction commits; objects already there are not sent again.

use super::{is_sha256, BlobInfo, ByteStream};
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

    fn path(&self, sha256: &str) -> std::io::Result<Path> {
        if !is_sha256(sha256) {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("{sha256:?} is not a blob name"),
            ));
        }
        Ok(Path::from(format!("{}{sha256}", self.settings.prefix)))
    }

    pub(super) async fn put(&self, blobs: Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        futures::stream::iter(blobs)
            .map(|(sha, bytes)| async move {
                let path = self.path(&sha)?;
                match self.store.head(&path).await {
                    Ok(m) if m.size == bytes.len() as u64 => return Ok(()),
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(io(e)),
                }
                self.store
                    .put(&path, PutPayload::from(bytes))
                    .await
                    .map(|_| ())
                    .map_err(io)
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    pub(super) async fn stream(&self, sha256: &str) -> std::io::Result<Option<(u64, ByteStream)>> {
        match self.store.get(&self.path(sha256)?).await {
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io(e)),
            Ok(r) => {
                let size = r.meta.size;
                Ok(Some((size, r.into_stream().map_err(io).boxed())))
            }
        }
    }

    pub(super) async fn delete(&self, sha256: &str) -> std::io::Result<()> {
        match self.store.delete(&self.path(sha256)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    pub(super) async fn list(&self) -> std::io::Result<Vec<BlobInfo>> {
        let prefix = self.settings.prefix.trim_end_matches('/');
        let prefix = (!prefix.is_empty()).then(|| Path::from(prefix));
        let mut out = Vec::new();
        let mut s = self.store.list(prefix.as_ref());
        while let Some(m) = s.try_next().await.map_err(io)? {
            let name = m.location.filename().unwrap_or_default();
            let full = m.location.as_ref();
            if !is_sha256(name) || full != format!("{}{name}", self.settings.prefix) {
                continue;
            }
            out.push(BlobInfo {
                sha256: name.to_string(),
                size: m.size,
                modified: m.last_modified.into(),
            });
        }
        Ok(out)
    }
}
