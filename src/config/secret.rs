//! Secrets: a literal value, an environment variable, or a file.
//!
//! One type for every secret key of the configuration. A secret `password`
//! is written `password = "..."`, `password_env = "VAR"` or
//! `password_file = "/path"` (the spellings ops know from other daemons), or
//! as one inline table, `password = { env = "VAR" }`. Before the text is
//! deserialised, [`fold_keys`] rewrites the `_env` and `_file` spellings of
//! the keys listed in [`SECRET_KEYS`] into the inline-table form on the same
//! line, so the structs hold one [`Secret`] field per secret and every
//! error keeps its line.

use super::{line_of, Problem};
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;

/// The secret keys of each table (`[[mailboxes]]` and `[[webhook_sources]]`
/// are arrays of tables). A new secret key is one entry here and one
/// `Secret` field.
pub const SECRET_KEYS: &[(&str, &[&str])] = &[
    ("http", &["admin_token"]),
    ("smtp", &["password"]),
    ("mailboxes", &["password", "bearer_token", "client_secret"]),
    ("webhook_sources", &["secret", "previous_secret"]),
    ("blobs", &["access_key_id", "secret_access_key"]),
];

/// Where a secret comes from. Resolved only when needed, so a missing variable
/// is reported by `check-config` and at start, never logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secret {
    pub value: Option<String>,
    pub env: Option<String>,
    pub file: Option<String>,
}

impl Secret {
    /// True when no source is configured.
    pub fn is_unset(&self) -> bool {
        self.value.is_none() && self.env.is_none() && self.file.is_none()
    }

    /// Read the secret. Trailing newlines of files are trimmed.
    pub fn resolve(&self) -> Result<String, String> {
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

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string, or a table with one of `value`, `env`, `file`")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret {
            value: Some(v.to_string()),
            ..Secret::default()
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
        let mut s = Secret::default();
        while let Some(k) = map.next_key::<String>()? {
            let slot = match k.as_str() {
                "value" => &mut s.value,
                "env" => &mut s.env,
                "file" => &mut s.file,
                _ => {
                    return Err(A::Error::custom(format!(
                        "unknown key `{k}` in a secret: expected one of `value`, `env`, `file`"
                    )))
                }
            };
            *slot = Some(map.next_value()?);
        }
        let set = [&s.value, &s.env, &s.file];
        match set.iter().filter(|v| v.is_some()).count() {
            1 => Ok(s),
            0 => Err(A::Error::custom(
                "an empty secret: set one of `value`, `env`, `file`",
            )),
            _ => Err(A::Error::custom(
                "set only one of `value`, `env` and `file` in a secret",
            )),
        }
    }
}

/// Rewrite `x_env = V` and `x_file = V` of every secret key `x` into
/// `x = { env = V }` / `x = { file = V }`, keeping every line where it was.
/// Two spellings of one secret in one table are reported (and all but the
/// first blanked, so they are not also reported as duplicate keys). Text
/// that does not parse is returned as it is: deserialising it reports why.
pub fn fold_keys(text: &str) -> (String, Vec<Problem>) {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return (text.to_string(), Vec::new());
    };
    // (start, end, replacement), applied from the end.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut problems = Vec::new();
    for (table, stems) in SECRET_KEYS {
        let Some(item) = doc.as_table().get(table) else {
            continue;
        };
        let array = item.as_array_of_tables();
        let tables: Vec<&dyn toml_edit::TableLike> = match array {
            Some(a) => a.iter().map(|t| t as &dyn toml_edit::TableLike).collect(),
            None => item.as_table_like().into_iter().collect(),
        };
        for (n, t) in tables.into_iter().enumerate() {
            let idx = match array {
                Some(_) => format!("{table}[{n}]"),
                None => table.to_string(),
            };
            for stem in *stems {
                let mut seen: Option<String> = None;
                for (suffix, field) in [("", ""), ("_env", "env"), ("_file", "file")] {
                    let key = format!("{stem}{suffix}");
                    let Some((k, v)) = t.get_key_value(&key) else {
                        continue;
                    };
                    let (Some(ks), Some(vs)) = (k.span(), v.span()) else {
                        continue;
                    };
                    if let Some(first) = &seen {
                        problems.push(Problem {
                            line: Some(line_of(text, ks.start)),
                            key: format!("{idx}.{key}"),
                            message: format!("{first} is set too: set only one of `{stem}`, `{stem}_env` and `{stem}_file`"),
                        });
                        edits.push((ks.start, vs.end, " ".repeat(vs.end - ks.start)));
                        continue;
                    }
                    seen = Some(key.clone());
                    if !suffix.is_empty() {
                        let val = &text[vs.start..vs.end];
                        edits.push((ks.start, vs.end, format!("{stem} = {{ {field} = {val} }}")));
                    }
                }
            }
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (s, e, r) in edits {
        out.replace_range(s..e, &r);
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_file_spellings_fold_into_one_secret_on_the_same_line() {
        let text = "[http]\nadmin_token_env = \"TOK\"\n\n[[mailboxes]]\nname = \"a\"\npassword_file = \"/run/pw\"\n";
        let (out, problems) = fold_keys(text);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(out.lines().count(), text.lines().count());
        assert_eq!(out.lines().nth(1), Some("admin_token = { env = \"TOK\" }"));
        assert_eq!(
            out.lines().nth(5),
            Some("password = { file = \"/run/pw\" }")
        );
    }

    #[test]
    fn two_spellings_of_one_secret_are_one_problem_with_its_line() {
        let text = "[[webhook_sources]]\nname = \"v\"\nsecret = \"a\"\nsecret_env = \"B\"\n";
        let (out, problems) = fold_keys(text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, Some(4));
        assert_eq!(problems[0].key, "webhook_sources[0].secret_env");
        assert!(!out.contains("secret_env"));
    }

    #[test]
    fn other_tables_and_keys_are_left_alone() {
        let text = "[logging]\npassword_env = \"X\"\n[smtp]\nusername_env = \"U\"\n";
        assert_eq!(fold_keys(text).0, text);
    }

    #[test]
    fn a_secret_table_takes_one_source() {
        let s: Secret = toml::from_str::<toml::Table>("s = { env = \"V\" }")
            .unwrap()
            .remove("s")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(s.env.as_deref(), Some("V"));
        let e = toml::from_str::<toml::Table>("s = { env = \"V\", file = \"f\" }")
            .unwrap()
            .remove("s")
            .unwrap()
            .try_into::<Secret>()
            .unwrap_err();
        assert!(e.to_string().contains("only one"), "{e}");
    }
}
