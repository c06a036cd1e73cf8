//! Strict JSON: request bytes in, a [`Value`] out, refusing an object that
//! names a key twice.
//!
//! serde_json keeps the last of duplicate keys, so `"public": true,
//! "public": false` would silently mean whatever the last one says, while a
//! gateway's own validator may have read the first. The document is built in
//! one pass by a visitor that checks each object's keys as it inserts them:
//! time stays linear in the input, and nesting stays bounded by serde_json's
//! recursion limit (128 levels).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Parse `body` as one JSON document; a duplicate key is an error naming it,
/// with the line and column serde_json reports.
pub fn parse_strict(body: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let v = StrictSeed.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Builds a [`Value`], refusing duplicate object keys.
struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictSeed.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(e) = seq.next_element_seed(StrictSeed)? {
            v.push(e);
        }
        Ok(Value::Array(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if m.contains_key(&k) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {k:?} in an object"
                )));
            }
            let v = map.next_value_seed(StrictSeed)?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_value_as_serde_json_without_duplicates() {
        let text =
            r#"{"a": [1, -2, 3.5, "x\u0000y", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        let want: Value = serde_json::from_str(text).unwrap();
        assert_eq!(parse_strict(text.as_bytes()).unwrap(), want);
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let e = parse_strict(br#"{"public": true, "public": false}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key \"public\""), "{e}");
        assert!(parse_strict(br#"{"a": [{"x": 1, "x": 1}]}"#).is_err());
        // The same key in two objects is fine; escapes are compared decoded.
        assert!(parse_strict(br#"{"a": {"x": 1}, "b": {"x": 2}}"#).is_ok());
        assert!(parse_strict(br#"{"x": 1, "\u0078": 2}"#).is_err());
    }

    #[test]
    fn nesting_is_bounded_and_trailing_data_refused() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_strict(deep.as_bytes()).is_err());
        assert!(parse_strict(b"{} {}").is_err());
        assert_eq!(parse_strict(b" {} ").unwrap(), json!({}));
    }
}
