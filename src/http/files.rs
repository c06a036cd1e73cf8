//! Bytes in the admin API: `GET /v1/comments/{id}/raw` (the mail a comment
//! was stored from) and `GET /v1/attachments/{id}` (an attachment's body),
//! each with its type and a Content-Disposition filename that is safe to
//! write anywhere (ASCII, no path, no quotes; the exact name as RFC 8187
//! `filename*`). Bodies are always downloads (`attachment`, `nosniff`):
//! a customer's HTML never runs in the admin's browser.

use super::admin::{id, Admin, Answer};
use super::openapi::ProblemDoc;
use super::problem::Problem;
use super::AppState;
use crate::store::BodyRef;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(comment_raw))
        .routes(routes!(attachment))
}

/// `name` reduced to what every file system and header parser accepts.
pub fn ascii_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let safe: String = base
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '-' | '_' | ' ' | '(' | ')' => c,
            _ => '_',
        })
        .collect();
    let safe = safe.trim_matches(['.', ' ']).to_string();
    if safe.is_empty() {
        "download".into()
    } else {
        safe.chars().take(150).collect()
    }
}

/// RFC 8187 `ext-value` of `name`: UTF-8, percent-encoded.
fn ext_value(name: &str) -> String {
    let mut out = String::from("UTF-8''");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `type/subtype` safe to send as Content-Type, else octet-stream.
fn content_type(t: &str) -> HeaderValue {
    let ok = t.split_once('/').is_some_and(|(a, b)| {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c))
        };
        token(a) && token(b)
    });
    HeaderValue::from_str(if ok { t } else { "application/octet-stream" })
        .unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

/// A streamed download of `body` (its length known in advance).
async fn download(
    store: &crate::store::Store,
    body: &BodyRef,
    ctype: HeaderValue,
    name: &str,
) -> Result<Response, Problem> {
    let (size, stream) = store.open_body(body).await?;
    let mut r = headers(
        axum::body::Body::from_stream(stream).into_response(),
        ctype,
        name,
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok(r)
}

fn headers(mut r: Response, ctype: HeaderValue, name: &str) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*={}",
        ascii_filename(name),
        ext_value(name.rsplit(['/', '\\']).next().unwrap_or(name))
    );
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, ctype);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[utoipa::path(get, path = "/v1/comments/{id}/raw", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the comment")),
    responses(
        (status = 200, description = "the raw mail the comment was stored from", content_type = "message/rfc822"),
        (status = 404, description = "no such comment, or it has no raw mail (a gateway's contact, a note, or one [retention] dropped)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "admin API disabled or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn comment_raw(_: Admin, State(st): State<AppState>, Path(c): Path<String>) -> Answer {
    let c = id("comment", &c)?;
    let raw = st.pipeline.store.comment_raw_ref(c).await?.ok_or_else(|| {
        Problem::not_found(format!(
            "comment {c} has no raw mail: it did not come by mail (a gateway's contact or a note), or [retention] dropped it"
        ))
    })?;
    download(
        &st.pipeline.store,
        &raw,
        HeaderValue::from_static("message/rfc822"),
        &format!("comment-{c}.eml"),
    )
    .await
}

#[utoipa::path(get, path = "/v1/attachments/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the attachment (`attachments[].id` in the ticket view and the export)")),
    responses(
        (status = 200, description = "the attachment's body, with its type", content_type = "application/octet-stream"),
        (status = 404, description = "no such attachment, or it is a gateway's link (`detail` names it)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "its body was not stored (over max_attachment_bytes): the raw mail keeps it", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "admin API disabled or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn attachment(_: Admin, State(st): State<AppState>, Path(a): Path<String>) -> Answer {
    let a = id("attachment", &a)?;
    let f = st.pipeline.store.attachment_file(a).await?;
    let Some(body) = &f.body else {
        if let Some(why) = &f.omitted {
            return Err(Problem::new(
                StatusCode::GONE,
                format!(
                    "attachment {a} was not stored (omitted: {why}); the raw mail keeps it: GET /v1/comments/{}/raw",
                    f.comment_id
                ),
            ));
        }
        return Err(Problem::not_found(match &f.url {
            Some(u) => format!("attachment {a} is a link, not stored here: {u}"),
            None => format!("attachment {a} has no stored body"),
        }));
    };
    download(
        &st.pipeline.store,
        body,
        content_type(&f.content_type),
        &f.filename,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_safe_and_exact() {
        assert_eq!(ascii_filename("../../etc/passwd"), "passwd");
        assert_eq!(
            ascii_filename("C:\\x\\Fattura \"42\".pdf"),
            "Fattura _42_.pdf"
        );
        assert_eq!(ascii_filename("рисунок.png"), "_______.png");
        assert_eq!(ascii_filename(".."), "download");
        assert_eq!(ext_value("é 1.pdf"), "UTF-8''%C3%A9%201.pdf");
        assert_eq!(content_type("text/html"), "text/html");
        assert_eq!(
            content_type("text/html\r\nX: y"),
            "application/octet-stream"
        );
    }
}
