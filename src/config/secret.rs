//! Secrets: a literal value, an environment variable, or a file.

use serde::Deserialize;

/// Where a secret comes from. Resolved only when needed, so a missing variable
/// is reported by `check-config` and at start, never logged.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Secret {
    pub value: Option<String>,
    pub env: Option<String>,
    pub file: Option<String>,
}

impl Secret {
    /// Build from the three optional keys `x`, `x_env`, `x_file`.
    pub fn from_parts(value: Option<String>, env: Option<String>, file: Option<String>) -> Self {
        Secret { value, env, file }
    }

    /// True when no source is configured.
    pub fn is_unset(&self) -> bool {
        self.value.is_none() && self.env.is_none() && self.file.is_none()
    }

    /// Read the secret. Trailing newlines of files are trimmed.
    pub fn resolve(&self) -> Result<String, String> {
        let n = [&self.value, &self.env, &self.file]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if n > 1 {
            return Err("set only one of the literal, `_env` and `_file` keys".into());
        }
        if let Some(v) = &self.value {
            return Ok(v.clone());
        }
        if let Some(var) = &self.env {
            return std::env::var(var)
                .map_err(|_| format!("environment variable {var} is not set"));
        }
        if let Some(path) = &self.file {
            return std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("cannot read secret file {path}: {e}"));
        }
        Err("no secret configured".into())
    }
}
