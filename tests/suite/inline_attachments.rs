//! Inline images and the attachment size cap, on both databases. An image
//! the HTML shows by `cid:` is an inline attachment with its Content-ID,
//! also when Apple Mail or Outlook call it an attachment, and the comment's
//! text shows `[image: name]` where it stood; a file attached beside it is
//! not inline. An attachment over `[limits] max_attachment_bytes` is
//! recorded with its name, type and size, "omitted: too large", without its
//! body, while the raw message keeps everything.

use crate::common::{Db, Harness};
use crate::support::desk::comments_of;
use base64::Engine;
use sqlx::Row;

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Apple Mail's layout: the logo says `Content-Disposition: attachment`
/// (no inline), the HTML shows it by `cid:`; a PDF comes after.
fn apple_mail(pdf: &[u8]) -> String {
    format!(
        "From: Ada <ada@acme.example>\nTo: support@desk.test\nSubject: Broken logo\nMessage-ID: <inline1@acme.example>\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=mixed\n\n--mixed\nContent-Type: multipart/related; type=\"text/html\"; boundary=rel\n\n\
--rel\nContent-Type: text/html; charset=utf-8\n\n<html><body><div>Our logo looks wrong:</div><div><img src=\"cid:7E1A3B2C-logo@acme.example\" alt=\"logo\"></div><div>See the invoice too.</div></body></html>\n\
--rel\nContent-Type: image/png; name=logo.png\nContent-Disposition: attachment; filename=logo.png\nContent-ID: <7E1A3B2C-logo@acme.example>\nContent-Transfer-Encoding: base64\n\n{}\n--rel--\n\
--mixed\nContent-Type: application/pdf; name=invoice.pdf\nContent-Disposition: attachment; filename=invoice.pdf\nContent-Transfer-Encoding: base64\n\n{}\n--mixed--\n",
        b64(b"\x89PNG\r\n\x1a\nlogo-bytes"),
        b64(pdf)
    )
}

async fn inline_images_are_marked_and_shown_in_the_text(db: Db) {
    let h = Harness::new(db).await;
    let o = h.mail(&apple_mail(b"%PDF-1.4 small")).await;
    let doc = h.export().await;
    let c = &comments_of(&doc, o.ticket_id.unwrap())[0];
    let body = c["body"].as_str().unwrap();
    assert!(
        body.contains("Our logo looks wrong:\n[image: logo.png]\nSee the invoice too."),
        "{body}"
    );
    let atts = c["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2, "{atts:?}");
    let logo = atts.iter().find(|a| a["filename"] == "logo.png").unwrap();
    assert_eq!(logo["inline"], true);
    assert_eq!(logo["content_id"], "7e1a3b2c-logo@acme.example");
    assert_eq!(logo["omitted"], serde_json::Value::Null);
    let pdf = atts
        .iter()
        .find(|a| a["filename"] == "invoice.pdf")
        .unwrap();
    assert_eq!(pdf["inline"], false);
    assert_eq!(pdf["content_id"], serde_json::Value::Null);
}

async fn an_attachment_over_the_cap_is_recorded_without_its_body(db: Db) {
    let h = Harness::with(db, "[limits]\nmax_attachment_bytes = 1000\n").await;
    let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let o = h.mail(&apple_mail(&big)).await;
    let doc = h.export().await;
    let c = &comments_of(&doc, o.ticket_id.unwrap())[0];
    let atts = c["attachments"].as_array().unwrap();
    let pdf = atts
        .iter()
        .find(|a| a["filename"] == "invoice.pdf")
        .unwrap();
    assert_eq!(pdf["size"], 5000);
    assert_eq!(pdf["omitted"], "too large");
    let logo = atts.iter().find(|a| a["filename"] == "logo.png").unwrap();
    assert_eq!(logo["omitted"], serde_json::Value::Null);
    // No body in the row; the raw message still carries it.
    let rows = sqlx::query("SELECT filename, sha256 FROM attachments ORDER BY id")
        .fetch_all(h.store().pool())
        .await
        .unwrap();
    for r in &rows {
        let name: String = r.try_get("filename").unwrap();
        let blob: Option<String> = r.try_get("sha256").unwrap();
        assert_eq!(blob.is_none(), name == "invoice.pdf", "{name}");
    }
    let id: i64 = sqlx::query("SELECT id FROM comments")
        .fetch_one(h.store().pool())
        .await
        .unwrap()
        .try_get("id")
        .unwrap();
    let raw = h.store().comment_raw(id).await.unwrap().unwrap();
    let raw = String::from_utf8(raw).unwrap();
    assert!(
        raw.contains(&b64(&big)[..76]),
        "the raw mail keeps the attachment"
    );
}

both_backends!(
    inline_images_are_marked_and_shown_in_the_text,
    an_attachment_over_the_cap_is_recorded_without_its_body
);
