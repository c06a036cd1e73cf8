//! Sender trust and the review queue, on both databases: only the topmost
//! Authentication-Results of our own MTA counts; mail that fails DMARC (or
//! that our filter scores as spam) never acts as its From address and waits
//! in review, exactly once; release makes it a ticket and fires its triggers
//! once; reject drops it and its re-deliveries; retention purges; the CLI
//! and admin API refuse bad ids and wrong states and change nothing.

use crate::cli_ops::{intake, text};
use crate::common::{Db, Harness};
use crate::http_common::{Server, ADMIN};
use crate::support::desk::{desk, ACK};
use intake::model::OutcomeKind;
use serde_json::Value;

const TRUST: &str = "[trust]\nauthserv_ids = [\"mx.desk.test\"]\n";
const PASS: &str = "Authentication-Results: mx.desk.test; spf=pass smtp.mailfrom=acme.example; dmarc=pass header.from=acme.example\n";
const FAIL: &str = "Authentication-Results: mx.desk.test;\n  spf=fail smtp.mailfrom=acme.example; dmarc=fail (p=reject) header.from=acme.example\n";

fn mail(headers: &str, from: &str, mid: &str, subject: &str, extra: &str) -> String {
    format!(
        "Received: from mx by mx.desk.test\n{headers}From: {from}\nTo: support@desk.test\nSubject: {subject}\nMessage-ID: <{mid}>\n{extra}\nplease send the refund to my new bank account\n"
    )
}

async fn export(h: &Harness) -> Value {
    h.store().export().await.unwrap()
}

fn count(v: &Value, list: &str) -> usize {
    v[list].as_array().map_or(0, Vec::len)
}

async fn failing_dmarc_waits_in_review_until_released(db: Db) {
    let h = desk(db, 1, &format!("{TRUST}{ACK}")).await;
    // Alice's own mail, passing: a ticket, acknowledged.
    let first = h
        .mail(&mail(
            PASS,
            "Alice <alice@acme.example>",
            "a1@acme.example",
            "Printer",
            "",
        ))
        .await;
    assert_eq!(first.outcome, OutcomeKind::Created);
    let before = export(&h).await;
    assert_eq!(count(&before, "notifications"), 1);

    // A forged mail "from" a new address of Acme, failing DMARC: nothing
    // but a review entry; a forged pass below ours or from another service
    // id changes nothing.
    let forged = [
        mail(FAIL, "bob@acme.example", "f1@evil.example", "Refund", ""),
        mail(
            &format!("{FAIL}{PASS}"),
            "bob@acme.example",
            "f2@evil.example",
            "Refund",
            "",
        ),
        mail(
            &format!(
                "Authentication-Results: evil.example; dmarc=pass header.from=acme.example\n{FAIL}"
            ),
            "bob@acme.example",
            "f3@evil.example",
            "Refund",
            "",
        ),
    ];
    let out = h
        .mails(&forged.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert!(
        out.iter().all(|o| o.outcome == OutcomeKind::Review),
        "{out:?}"
    );
    assert!(out[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("dmarc=fail for acme.example"));
    // A reply to Alice's ticket that fails DMARC is never appended to it.
    let reply = h
        .mail(&mail(
            FAIL,
            "alice@acme.example",
            "r1@evil.example",
            "Re: Printer",
            "In-Reply-To: <a1@acme.example>\n",
        ))
        .await;
    assert_eq!(reply.outcome, OutcomeKind::Review);
    let after = export(&h).await;
    assert_eq!(
        after["users"], before["users"],
        "no user for a failing sender"
    );
    assert_eq!(after["organizations"], before["organizations"]);
    assert_eq!(after["tickets"], before["tickets"], "no ticket or comment");
    assert_eq!(count(&after, "notifications"), 1, "no acknowledgement");
    assert_eq!(count(&after, "review"), 4);
    assert!(h
        .store()
        .user_by_contact(
            &intake::identity::ContactPoint::parse_any("bob@acme.example", "US").unwrap()
        )
        .await
        .unwrap()
        .is_none());

    // Re-delivered (another Received line, the same Message-ID): still one
    // entry, one more delivery counted.
    let again = h
        .mail(
            &mail(
                FAIL,
                "bob@acme.example",
                "f1@evil.example",
                "Refund",
                "X-Redelivered: 1\n",
            )
            .replacen("Received: from mx", "Received: from mx2", 1),
        )
        .await;
    assert_eq!(
        (again.outcome, again.review_id),
        (OutcomeKind::Review, out[0].review_id)
    );
    let list = h.store().review_list().await.unwrap();
    assert_eq!(list.len(), 4);
    let e = list
        .iter()
        .find(|e| Some(e.id) == out[0].review_id)
        .unwrap();
    assert_eq!(
        (e.attempts, e.sender.as_str(), e.status.as_str()),
        (2, "bob@acme.example", "pending")
    );

    // Release: a ticket as Bob, acknowledged once; the entry records it and
    // the ticket has the event. A second release is refused.
    let id = out[0].review_id.unwrap();
    let r = h.pipeline.release(id, "test").await.unwrap();
    assert_eq!(r.outcome, OutcomeKind::Created);
    let ticket = h.store().ticket_view(r.ticket_id.unwrap()).await.unwrap();
    let t = serde_json::to_value(&ticket).unwrap();
    assert!(t.to_string().contains("released_from_review"), "{t}");
    assert_eq!(count(&export(&h).await, "notifications"), 2);
    let e = h.pipeline.release(id, "test").await.unwrap_err();
    assert!(e.to_string().contains("already released by test"), "{e}");
    let again = h.mail(&forged[0]).await;
    assert_eq!(again.outcome, OutcomeKind::Duplicate);
    assert_eq!(
        count(&export(&h).await, "notifications"),
        2,
        "triggers fired once"
    );

    // Reject: the bytes go, a re-delivery is dropped as a duplicate.
    let rid = out[1].review_id.unwrap();
    h.store().review_reject(rid, "test").await.unwrap();
    let (e, raw) = h.store().review_get(rid).await.unwrap();
    assert_eq!((e.status.as_str(), raw), ("rejected", None));
    let again = h.mail(&forged[1]).await;
    assert_eq!(again.outcome, OutcomeKind::Duplicate);
    let e = h.pipeline.release(rid, "test").await.unwrap_err();
    assert!(e.to_string().contains("already rejected"), "{e}");
    assert_eq!(h.store().review_list().await.unwrap().len(), 4);

    // Retention: before the cut, pending entries are rejected and released
    // ones forgotten; rejected ones are remembered.
    assert_eq!(
        h.store()
            .review_purge(intake::store::now_ms() - 60_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        h.store()
            .review_purge(intake::store::now_ms() + 1)
            .await
            .unwrap(),
        3
    );
    let left = h.store().review_list().await.unwrap();
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|e| e.status == "rejected"), "{left:?}");
    let again = h.mail(&forged[2]).await;
    assert_eq!(again.outcome, OutcomeKind::Duplicate);
}

both_backends!(failing_dmarc_waits_in_review_until_released);

async fn spam_verdicts_of_our_filter_and_require_pass(db: Db) {
    let h = Harness::with(
        db,
        &format!("{TRUST}require_pass = true\nspam_score_review = 6.0\n"),
    )
    .await;
    let sa = "X-Spam-Status: Yes, score=7.1 required=6.0 tests=BAYES_99\n";
    let rspamd = "X-Spamd-Result: default: False [6.50 / 15.00];\n\tBAYES_SPAM(5.10)[99.9%]\n";
    let low = "X-Rspamd-Score: 2.5\n";
    let cases = [
        (
            mail(&format!("{sa}{PASS}"), "c@acme.example", "s1@x", "Deal", ""),
            OutcomeKind::Review,
        ),
        (
            mail(
                &format!("{rspamd}{PASS}"),
                "c@acme.example",
                "s2@x",
                "Deal",
                "",
            ),
            OutcomeKind::Review,
        ),
        (
            mail(
                &format!("{low}{PASS}"),
                "c@acme.example",
                "s3@x",
                "Deal",
                "",
            ),
            OutcomeKind::Created,
        ),
        // A score written below our result, by the sender: ignored.
        (
            mail(&format!("{PASS}{sa}"), "d@acme.example", "s4@x", "Deal", ""),
            OutcomeKind::Created,
        ),
        // require_pass: no result of ours, or dmarc=none, is not a pass.
        (
            mail("", "e@acme.example", "s5@x", "Deal", ""),
            OutcomeKind::Review,
        ),
        (
            mail(
                "Authentication-Results: mx.desk.test; dmarc=none header.from=acme.example\n",
                "e@acme.example",
                "s6@x",
                "Deal",
                "",
            ),
            OutcomeKind::Review,
        ),
    ];
    for (m, want) in &cases {
        let o = h.mail(m).await;
        assert_eq!(o.outcome, *want, "{m}\n{o:?}");
    }
    let reasons: Vec<String> = h
        .store()
        .review_list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("x-spam-status score 7.1")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("x-spamd-result score 6.5")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no Authentication-Results from our own MTA")),
        "{reasons:?}"
    );
    // Without [trust], the same mail is believed as before.
    let plain = Harness::new(db).await;
    assert_eq!(plain.mail(&cases[0].0).await.outcome, OutcomeKind::Created);
}

both_backends!(spam_verdicts_of_our_filter_and_require_pass);

async fn api_and_cli_refuse_bad_ids_and_wrong_states(db: Db) {
    let s = Server::with(db, &format!("{}{TRUST}", crate::http_common::extra())).await;
    let held =
        s.h.mail(&mail(
            FAIL,
            "bob@acme.example",
            "h1@evil.example",
            "Refund",
            "",
        ))
        .await;
    let id = held.review_id.unwrap();
    let c = &s.client;
    let r = c.get(s.url("/v1/review")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let auth = format!("Bearer {ADMIN}");
    let list: Value = c
        .get(s.url("/v1/review"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["sender"], "bob@acme.example");
    for (path, code, detail) in [
        ("/v1/review/x/release", 404, "ids are integers"),
        ("/v1/review/999/release", 404, "review entry 999"),
        ("/v1/review/999/reject", 404, "review entry 999"),
    ] {
        let r = c
            .post(s.url(path))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), code, "{path}");
        let b: Value = r.json().await.unwrap();
        assert!(
            b["detail"].as_str().unwrap().contains(detail),
            "{path}: {b}"
        );
    }
    let r = c
        .post(s.url(&format!("/v1/review/{id}/reject")))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(s.url(&format!("/v1/review/{id}/release")))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("already rejected by admin API"),
        "{b}"
    );
    assert!(s.h.store().export().await.unwrap()["tickets"]
        .as_array()
        .unwrap()
        .is_empty());

    // The CLI on the same database.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"{}\"\n[desk]\ndomain = \"desk.test\"\n{TRUST}",
            s.h.db.url
        ),
    )
    .unwrap();
    let held =
        s.h.mail(&mail(
            FAIL,
            "carol@acme.example",
            "h2@evil.example",
            "Refund",
            "",
        ))
        .await;
    let id2 = held.review_id.unwrap().to_string();
    let o = intake(&cfg, &["review", "list"], &[]);
    assert!(
        o.status.success() && text(&o).contains("carol@acme.example"),
        "{}",
        text(&o)
    );
    let o = intake(&cfg, &["review", "release", "999"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("review entry 999"), "{}", text(&o));
    let o = intake(&cfg, &["review", "show", &id.to_string(), "--raw"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("was rejected"), "{}", text(&o));
    let o = intake(&cfg, &["review", "release", &id2], &[]);
    assert!(
        o.status.success() && text(&o).contains("\"outcome\":\"created\""),
        "{}",
        text(&o)
    );
    let o = intake(&cfg, &["status"], &[]);
    assert!(
        text(&o).contains("review: 0 awaiting a decision"),
        "{}",
        text(&o)
    );
}

both_backends!(api_and_cli_refuse_bad_ids_and_wrong_states);

#[test]
fn trust_settings_are_checked_with_their_lines() {
    let text = "[database]\nurl = \"sqlite://x.db\"\n[desk]\ndomain = \"desk.test\"\n\
                [trust]\nauthserv_ids = [\"mx desk\"]\nrequire_pass = true\nreview_retention_days = 0\n";
    let problems = intake::app::config_from_toml(text).unwrap_err();
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        shown.iter().any(|p| p.starts_with(
            "line 6: trust.authserv_ids: \"mx desk\" is not an authentication service id"
        )),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|p| p.starts_with("line 8: trust.review_retention_days: must be at least 1")),
        "{shown:?}"
    );
    let text = "[database]\nurl = \"sqlite://x.db\"\n[desk]\ndomain = \"desk.test\"\n[trust]\nrequire_pass = true\n";
    let problems = intake::app::config_from_toml(text).unwrap_err();
    assert!(
        problems[0]
            .to_string()
            .contains("trust.require_pass: needs trust.authserv_ids"),
        "{problems:?}"
    );

    // check-config says when senders are not verified (on standard error:
    // its output stays `ok`).
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    std::fs::write(&cfg, "[desk]\ndomain = \"desk.test\"\n").unwrap();
    let o = intake(&cfg, &["check-config"], &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok");
    assert!(String::from_utf8_lossy(&o.stderr).contains("senders are not verified"));
    std::fs::write(&cfg, format!("[desk]\ndomain = \"desk.test\"\n{TRUST}")).unwrap();
    let o = intake(&cfg, &["check-config"], &[]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("not verified"));
}
