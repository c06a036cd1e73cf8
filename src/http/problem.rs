//! `application/problem+json` (RFC 9457) errors with a precise `detail`.

use crate::model::DomainError;
use crate::sanitize::control_char;
use crate::store::{Fault, StoreError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error answer: status, human-readable detail, optional `Retry-After`.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    pub retry_after: Option<u64>,
    /// Extra response headers (e.g. `WWW-Authenticate`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            status,
            detail: detail.into(),
            retry_after: None,
            headers: vec![],
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    pub fn with_header(mut self, name: header::HeaderName, value: &'static str) -> Self {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// The JSON document of this problem.
    pub fn body(&self) -> Value {
        json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        })
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.body().to_string()).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        for (k, v) in self.headers {
            h.insert(k, v);
        }
        r
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Domain(DomainError::NotFound(_)) => StatusCode::NOT_FOUND,
            StoreError::Domain(DomainError::Conflict(_)) => StatusCode::CONFLICT,
            StoreError::Domain(DomainError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            StoreError::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
            // A full disk, an I/O error, a lost connection: retry later.
            e if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed in the store");
        }
        let mut p = Problem::new(status, e.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // A lock or a lost connection clears at once; a full disk or an
            // I/O error takes longer.
            p.retry_after = Some(match e.fault() {
                Some(Fault::Contention | Fault::Connection) | None => 1,
                Some(_) => 5,
            });
        }
        p
    }
}

/// Is the request's content type `application/json` (parameters allowed)?
/// Several `Content-Type` headers must all say so.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), Problem> {
    let mut n = 0;
    for v in headers.get_all(header::CONTENT_TYPE) {
        n += 1;
        let ct = v.to_str().unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Type {ct:?}: send application/json"),
            ));
        }
    }
    if n == 0 {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "missing Content-Type: send application/json",
        ));
    }
    Ok(())
}

/// Parse a JSON object; syntax errors and duplicate keys are 400, a
/// non-object is 422.
pub fn parse_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Problem> {
    let v = super::json::parse_strict(body)
        .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    match v {
        Value::Object(m) => Ok(m),
        other => Err(Problem::unprocessable(format!(
            "the body must be a JSON object, got {}",
            kind(&other)
        ))),
    }
}

/// JSON type name for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Typed access to the fields of a JSON object, with errors naming the field.
pub struct Fields<'a> {
    map: &'a serde_json::Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    /// `prefix` is prepended to field names in errors (`"contact."`).
    pub fn new(
        map: &'a serde_json::Map<String, Value>,
        prefix: &'a str,
        allowed: &[&str],
    ) -> Result<Self, Problem> {
        if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(Problem::unprocessable(format!(
                "unknown field {prefix}{k}: expected one of {}",
                allowed.join(", ")
            )));
        }
        Ok(Fields { map, prefix })
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn wrong(&self, name: &str, want: &str, v: &Value) -> Problem {
        Problem::unprocessable(format!(
            "{}{name} must be {want}, got {}",
            self.prefix,
            kind(v)
        ))
    }

    /// A string as sent, control characters included: only for values that
    /// are cleaned afterwards (file names).
    pub fn opt_raw(&self, name: &str) -> Result<Option<&'a str>, Problem> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(self.wrong(name, "a string", v)),
        }
    }

    /// A text that may span lines: tab, LF and CR are kept, any other
    /// control character (NUL included) is refused naming the field.
    pub fn opt_str(&self, name: &str) -> Result<Option<&'a str>, Problem> {
        self.checked(name, true)
    }

    /// A required [`Self::opt_str`].
    pub fn str(&self, name: &str) -> Result<&'a str, Problem> {
        self.opt_str(name)?.ok_or_else(|| self.missing(name))
    }

    /// A one-line text: every control character is refused.
    pub fn opt_line(&self, name: &str) -> Result<Option<&'a str>, Problem> {
        self.checked(name, false)
    }

    /// A required [`Self::opt_line`].
    pub fn line(&self, name: &str) -> Result<&'a str, Problem> {
        self.opt_line(name)?.ok_or_else(|| self.missing(name))
    }

    fn checked(&self, name: &str, multiline: bool) -> Result<Option<&'a str>, Problem> {
        let s = self.opt_raw(name)?;
        if let Some(c) = s.and_then(|s| control_char(s, multiline)) {
            let allowed = if multiline {
                " (tab and line breaks are allowed)"
            } else {
                ""
            };
            return Err(Problem::unprocessable(format!(
                "{}{name} must not contain control characters{allowed}: found U+{:04X}",
                self.prefix, c as u32
            )));
        }
        Ok(s)
    }

    fn missing(&self, name: &str) -> Problem {
        Problem::unprocessable(format!("missing field {}{name}", self.prefix))
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, Problem> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(name, "a boolean", v)),
        }
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, Problem> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong(name, "an integer", v)),
        }
    }

    pub fn opt_object(
        &self,
        name: &str,
    ) -> Result<Option<&'a serde_json::Map<String, Value>>, Problem> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(self.wrong(name, "an object", v)),
        }
    }

    pub fn opt_array(&self, name: &str) -> Result<Option<&'a Vec<Value>>, Problem> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(self.wrong(name, "an array", v)),
        }
    }
}
