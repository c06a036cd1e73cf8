//! Configuration: one TOML file in, a validated [`Config`] out.
//!
//! Unknown keys are errors. Secrets come from a literal key, a `*_env` key naming
//! an environment variable, or a `*_file` key naming a file. [`check`] reports
//! every problem it can find with the line and key it concerns.

mod address;
mod blobs;
mod mailbox;
mod mailbox_kinds;
mod retention;
mod secret;
mod sections;
mod validate;

pub use address::Address;
pub use blobs::{BlobBackend, BlobsConfig};
pub use mailbox::{AfterImport, MailboxConfig, Protocol};
pub use retention::RetentionConfig;
pub use secret::Secret;
pub use sections::*;

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Default location of the configuration file.
pub const DEFAULT_PATH: &str = "config/intake.toml";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub desk: DeskConfig,
    #[serde(default)]
    pub organizations: OrganizationsConfig,
    #[serde(default)]
    pub identities: IdentitiesConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub mailboxes: Vec<MailboxConfig>,
    #[serde(default)]
    pub webhook_sources: Vec<WebhookSourceConfig>,
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub notifications: NotificationsConfig,
    #[serde(default)]
    pub triggers: Vec<TriggerConfig>,
    #[serde(default)]
    pub trust: TrustConfig,
    #[serde(default)]
    pub agents: AgentsConfig,
    #[serde(default)]
    pub blobs: BlobsConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `mailboxes[1].port`.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Validation a layer above adds to the configuration's own (the
/// notifier's triggers), so that this module imports none of it.
pub type Validator = dyn Fn(&Config, &str) -> Vec<Problem>;

/// Whether loading reads the secrets' environment variables and files. The
/// daemon and `check-config` do; commands that use none of them (export,
/// users, tickets, migrate, import, …) check only that each is configured,
/// so that they run from a shell where the daemon's secrets are not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrets {
    Read,
    Skip,
}

/// Why a configuration could not be loaded: every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl Config {
    /// Read, parse and validate the file at `path`, adding the problems
    /// `more` finds in the parsed configuration and its text (the triggers'
    /// own validation: `app::load_config` supplies it).
    pub fn load_with(
        path: &Path,
        more: &Validator,
        secrets: Secrets,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            problems: vec![Problem {
                line: None,
                key: path.display().to_string(),
                message: format!("cannot read configuration file: {e}"),
            }],
        })?;
        Self::from_toml_checked(&text, more, secrets).map_err(|problems| ConfigError {
            path: path.to_owned(),
            problems,
        })
    }

    /// Parse and validate TOML text. Reports every problem: after a key-level
    /// error the offending line is blanked and parsing resumes, so one run
    /// lists every unknown key and wrong type with its line.
    pub fn from_toml(text: &str) -> Result<Config, Vec<Problem>> {
        Self::from_toml_with(text, &|_, _| Vec::new())
    }

    /// [`Config::from_toml`], adding the problems `more` finds.
    pub fn from_toml_with(text: &str, more: &Validator) -> Result<Config, Vec<Problem>> {
        Self::from_toml_checked(text, more, Secrets::Read)
    }

    /// [`Config::from_toml_with`], reading the secrets or not.
    pub fn from_toml_checked(
        text: &str,
        more: &Validator,
        secrets: Secrets,
    ) -> Result<Config, Vec<Problem>> {
        // Lines stay where they are: offsets into `work` give `text`'s lines.
        let (mut work, mut problems) = secret::fold_keys(text);
        for _ in 0..100 {
            match toml::from_str::<Config>(&work) {
                Ok(cfg) => {
                    if !problems.is_empty() {
                        return Err(problems);
                    }
                    // The folded text, so that `x_env = ` is found as `x`.
                    let mut problems = validate::validate(&cfg, &work, secrets);
                    problems.extend(more(&cfg, &work));
                    return if problems.is_empty() {
                        Ok(cfg)
                    } else {
                        Err(problems)
                    };
                }
                Err(e) => {
                    let start = e.span().map(|s| s.start);
                    let missing = e.message().starts_with("missing field");
                    // A missing field after an earlier problem is usually that
                    // problem's line being blanked: don't report it twice.
                    if !missing || problems.is_empty() {
                        problems.push(Problem {
                            line: start.map(|s| line_of(&work, s)),
                            key: key_at(&work, start),
                            message: e.message().to_string(),
                        });
                    }
                    let Some(off) = start.filter(|_| !missing) else {
                        break;
                    };
                    let ls = work[..off.min(work.len())]
                        .rfind('\n')
                        .map(|i| i + 1)
                        .unwrap_or(0);
                    let le = work[ls..].find('\n').map(|i| ls + i).unwrap_or(work.len());
                    let line = &work[ls..le];
                    // Only plain `key = value` lines can be blanked safely.
                    if line.trim_start().starts_with('[') || !line.contains('=') {
                        break;
                    }
                    work.replace_range(ls..le, &" ".repeat(le - ls));
                }
            }
        }
        Err(problems)
    }

    /// Our own addresses, normalised: the desk's, every mailbox's and the
    /// notification sender's (`[smtp] from`).
    pub fn own_addresses(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .desk
            .addresses
            .iter()
            .chain(self.mailboxes.iter().filter_map(|m| m.address.as_ref()))
            .chain(self.smtp.as_ref().map(|s| &s.from))
            .filter_map(|a| crate::identity::EmailAddress::parse(a.email()).ok())
            .map(|a| a.as_str().to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Our own addresses and domains, for loop detection, recipient checks
    /// and organization creation.
    pub fn own(&self) -> crate::identity::OwnAddresses {
        crate::identity::OwnAddresses::new(self.own_addresses(), &self.desk.domain)
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The key written on the line holding `offset`, with its table, for messages.
fn key_at(text: &str, offset: Option<usize>) -> String {
    let Some(off) = offset else {
        return "(file)".into();
    };
    let before = &text[..off.min(text.len())];
    let table = before
        .lines()
        .rev()
        .find_map(|l| {
            let t = l.trim();
            t.starts_with('[')
                .then(|| t.trim_matches(['[', ']']).to_string())
        })
        .unwrap_or_default();
    let line = text[before.rfind('\n').map(|i| i + 1).unwrap_or(0)..]
        .lines()
        .next()
        .unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim();
    match (table.is_empty(), key.is_empty() || key.starts_with('[')) {
        (true, _) => key.to_string(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// Find the line of `key = ` inside the `n`-th occurrence of table `table`
/// (`[[table]]` arrays count occurrences; plain tables use n = 0).
pub(crate) fn locate(text: &str, table: &str, n: usize, key: &str) -> Option<usize> {
    let mut seen: Option<usize> = None;
    let mut current_matches = table.is_empty();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('[') {
            let name = l.trim_matches(['[', ']']).trim();
            current_matches = name == table && {
                seen = Some(seen.map_or(0, |s| s + 1));
                seen == Some(n)
            };
            continue;
        }
        if current_matches {
            if let Some((k, _)) = l.split_once('=') {
                if k.trim() == key {
                    return Some(i + 1);
                }
            }
        }
    }
    // Fall back to the table header line.
    let mut count = 0;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.trim_matches(['[', ']']).trim() == table && l.starts_with('[') {
            if count == n {
                return Some(i + 1);
            }
            count += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_valid_default() {
        let c = Config::from_toml("").unwrap();
        assert!(c.organizations.auto_create);
        assert_eq!(c.database.url, "sqlite://intake.db");
    }

    #[test]
    fn unknown_key_reports_line_and_key() {
        let err = Config::from_toml("[desk]\ndomain = \"x.test\"\ncolour = 1\n").unwrap_err();
        assert_eq!(err[0].line, Some(3));
        assert!(err[0].message.contains("colour"), "{:?}", err);
    }

    #[test]
    fn every_unknown_key_and_bad_type_is_reported() {
        let err = Config::from_toml(
            "[desk]\ncolour = 1\ndomain = \"x.test\"\n[limits]\nbatch_size = \"many\"\nsize = 3\n",
        )
        .unwrap_err();
        let lines: Vec<_> = err.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(2), Some(5), Some(6)], "{err:?}");
        assert_eq!(err[1].key, "limits.batch_size");
    }

    #[test]
    fn http_limits_are_checked_with_their_lines() {
        let err = Config::from_toml(
            "[http]\nmax_connections = 0\nheader_read_timeout = 0\nbody_read_timeout = 30\nkeepalive_timeout = 7200\n",
        )
        .unwrap_err();
        let got: Vec<_> = err.iter().map(|p| (p.line, p.key.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Some(2), "http.max_connections"),
                (Some(3), "http.header_read_timeout"),
                (Some(5), "http.keepalive_timeout"),
            ],
            "{err:?}"
        );
        let err = Config::from_toml("[limits]\nmax_attachment_bytes = 0\n").unwrap_err();
        assert_eq!(err[0].key, "limits.max_attachment_bytes", "{err:?}");
        assert_eq!(err[0].line, Some(2), "{err:?}");
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.limits.max_attachment_bytes, None);
        assert_eq!(c.http.max_connections, 512);
        assert_eq!(c.http.header_read_timeout, 10);
    }

    #[test]
    fn validation_reports_every_problem() {
        let err = Config::from_toml(
            "[identities]\ndefault_phone_region = \"XX\"\n[database]\nurl = \"mysql://x\"\n",
        )
        .unwrap_err();
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(err.iter().any(|p| p.line == Some(2)));
        assert!(err.iter().any(|p| p.line == Some(4)));
    }
}
