//! The bytes a comment came with, over the admin API, on both databases:
//! `GET /v1/comments/{id}/raw` gives the mail as received,
//! `GET /v1/attachments/{id}` an attachment's body with its type and a
//! safe download name; a comment without a raw mail, an unknown id and an
//! attachment whose body was omitted each say why.

use crate::common::Db;
use crate::http_common::*;
use base64::Engine;
use reqwest::Method;

fn mail_with_pdf(name: &str, pdf: &[u8]) -> String {
    format!(
        "From: Ada <ada@acme.example>\nTo: support@desk.test\nSubject: Invoice\nMessage-ID: <files1@acme.example>\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n\nSee attached.\n\
--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*=UTF-8''{name}\nContent-Transfer-Encoding: base64\n\n{}\n--b--\n",
        base64::engine::general_purpose::STANDARD.encode(pdf)
    )
}

async fn get(s: &Server, path: &str) -> reqwest::Response {
    s.admin(Method::GET, path).send().await.unwrap()
}

/// The first comment of a stored mail's ticket and its first attachment.
async fn ids(s: &Server, ticket: Option<i64>) -> (i64, i64, i64) {
    let view = s.h.store().ticket_view(ticket.unwrap()).await.unwrap();
    let c = &view["comments"][0];
    (
        view["requester_id"].as_i64().unwrap(),
        c["id"].as_i64().unwrap(),
        c["attachments"][0]["id"].as_i64().unwrap(),
    )
}

async fn raw_mail_and_attachments_download(db: Db) {
    let s = Server::with(
        db,
        &format!("{}[limits]\nmax_attachment_bytes = 64\n", extra()),
    )
    .await;
    let raw = mail_with_pdf("..%2F..%2Ffattura%20%C3%A8.pdf", b"%PDF-1.4 tiny");
    let o = s.h.mail(&raw).await;
    let (ada, cid, aid) = ids(&s, o.ticket_id).await;

    let r = get(&s, &format!("/v1/comments/{cid}/raw")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "message/rfc822");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"comment-"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), raw.as_bytes());

    let r = get(&s, &format!("/v1/attachments/{aid}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let cd = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cd.starts_with(
            "attachment; filename=\"fattura _.pdf\"; filename*=UTF-8''fattura%20%C3%A8.pdf"
        ),
        "{cd}"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"%PDF-1.4 tiny");

    // Over max_attachment_bytes: recorded without its body.
    let big = vec![b'x'; 100];
    let o =
        s.h.mail(&mail_with_pdf("big.pdf", &big).replace("files1@", "files2@"))
            .await;
    let (_, cid, aid) = ids(&s, o.ticket_id).await;
    let r = get(&s, &format!("/v1/attachments/{aid}")).await;
    let p = assert_problem(r, 410, "omitted: too large").await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("/v1/comments/{cid}/raw")),
        "{p}"
    );

    // Unknown ids, a webhook contact's comment (no raw mail), no token.
    let r = get(&s, "/v1/attachments/999999").await;
    assert_problem(r, 404, "attachment 999999").await;
    let r = get(&s, "/v1/comments/abc/raw").await;
    assert_problem(r, 404, "ids are integers").await;
    let body =
        r#"{"contact": {"phone": "+14155550100"}, "subject": "Missed call", "message": "call me"}"#;
    let r = s.post("voice", body, None).await;
    assert_eq!(r.status(), 201);
    let call = s.h.export().await["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["channel"] == "voice")
        .map(|t| t["comments"][0]["id"].as_i64().unwrap())
        .unwrap();
    let r = get(&s, &format!("/v1/comments/{call}/raw")).await;
    assert_problem(r, 404, "has no raw mail").await;
    let r = s
        .client
        .get(s.url(&format!("/v1/comments/{cid}/raw")))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "bearer").await;

    // Erasure on request: the customer's raw mail is gone with them.
    let r = s
        .admin(Method::DELETE, &format!("/v1/users/{ada}"))
        .send()
        .await
        .unwrap();
    let (st, _, e) = parts(r).await;
    assert_eq!(st, 200, "{e}");
    assert_eq!(e["contact_points"], 1);
    let r = get(&s, &format!("/v1/comments/{cid}/raw")).await;
    assert_problem(r, 404, "has no raw mail").await;
    let r = s
        .admin(Method::DELETE, "/v1/users/999999")
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "user 999999").await;
}

both_backends!(raw_mail_and_attachments_download);
