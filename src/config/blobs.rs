//! `[blobs]`: where raw mails and attachment bodies are kept.

use super::{Secret, Secrets};
use crate::store::blobs::{BlobSettings, S3Settings};
use serde::Deserialize;
use std::path::PathBuf;

/// `filesystem` (the default) or `s3`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    #[default]
    Filesystem,
    S3,
}

/// `[blobs]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobsConfig {
    pub backend: BlobBackend,
    /// Filesystem: the directory (default `<sqlite file>-blobs`, or
    /// `$STATE_DIRECTORY/blobs/<database>` on PostgreSQL).
    pub dir: Option<PathBuf>,
    /// S3: the bucket, the endpoint (default AWS), the region, the keys and
    /// a prefix put before every object name.
    pub bucket: Option<String>,
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub prefix: String,
    /// Blobs no row names are removed by the sweep once this old (a batch
    /// writes its blobs before its transaction commits).
    pub orphan_grace_hours: u64,
    /// How often the daemon sweeps (0: never; `intake blobs gc` still does).
    pub gc_interval_hours: u64,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        BlobsConfig {
            backend: BlobBackend::Filesystem,
            dir: None,
            bucket: None,
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: Secret::default(),
            secret_access_key: Secret::default(),
            prefix: String::new(),
            orphan_grace_hours: 24,
            gc_interval_hours: 6,
        }
    }
}

impl BlobsConfig {
    /// The store's settings, with the secrets read.
    pub fn settings(&self) -> Result<BlobSettings, String> {
        Ok(match self.backend {
            BlobBackend::Filesystem => BlobSettings::Filesystem {
                dir: self.dir.clone(),
            },
            BlobBackend::S3 => BlobSettings::S3(S3Settings {
                bucket: self.bucket.clone().unwrap_or_default(),
                endpoint: self.endpoint.clone(),
                region: self.region.clone(),
                access_key_id: self.access_key_id.resolve()?,
                secret_access_key: self.secret_access_key.resolve()?,
                prefix: self.prefix.clone(),
            }),
        })
    }

    pub fn orphan_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.orphan_grace_hours * 3600)
    }

    /// Problems as `(key, message)`.
    pub(super) fn problems(&self, secrets: Secrets) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        match self.backend {
            BlobBackend::Filesystem => {
                for (key, set) in [
                    ("bucket", self.bucket.is_some()),
                    ("endpoint", self.endpoint.is_some()),
                    ("access_key_id", !self.access_key_id.is_unset()),
                    ("secret_access_key", !self.secret_access_key.is_unset()),
                ] {
                    if set {
                        p.push((key, "only for backend = \"s3\"".to_string()));
                    }
                }
            }
            BlobBackend::S3 => {
                if self.dir.is_some() {
                    p.push(("dir", "only for backend = \"filesystem\"".into()));
                }
                if self.bucket.as_deref().is_none_or(str::is_empty) {
                    p.push(("bucket", "backend = \"s3\" needs a bucket".into()));
                }
                if let Some(e) = &self.endpoint {
                    if !(e.starts_with("https://") || e.starts_with("http://")) {
                        p.push(("endpoint", format!("{e:?} is not an http(s) URL")));
                    }
                }
                for (key, s) in [
                    ("access_key_id", &self.access_key_id),
                    ("secret_access_key", &self.secret_access_key),
                ] {
                    let r = if s.is_unset() {
                        Err("no secret: set the key, its _env or its _file variant".to_string())
                    } else if secrets == Secrets::Read {
                        s.resolve().map(|_| ())
                    } else {
                        Ok(())
                    };
                    if let Err(e) = r {
                        p.push((key, e));
                    }
                }
            }
        }
        if self.orphan_grace_hours == 0 {
            p.push((
                "orphan_grace_hours",
                "must be at least 1: a batch in flight has written its blobs but not yet committed"
                    .into(),
            ));
        }
        p
    }
}
