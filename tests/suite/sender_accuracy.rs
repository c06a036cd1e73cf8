//! Who sent it, on public mail nobody here wrote: the mail-parser corpus
//! (Outlook/Eudora-era, third-party and malformed mail) and notmuch's list
//! archive. The expected sender is the From address as Python's standard
//! library reads it (`bench/sender_truth.py`, an independent parser, output
//! committed as `tests/corpora/sender_truth.tsv`), or none where it finds
//! none. The broken From shapes this set lacks are unit tests of
//! `src/parse/tests.rs` and `src/identity/addr_spec.rs`.
//! `cargo test --test suite sender_accuracy -- --nocapture` prints the score.

use intake::identity::EmailAddress;

fn norm(a: &str) -> String {
    EmailAddress::parse(a).map_or_else(|_| a.to_lowercase(), |e| e.to_string())
}

fn table(path: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            let file = f.next().unwrap().to_string();
            (file, f.next().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
fn the_sender_is_right_for_99_percent_of_public_mail() {
    let rows = table("tests/corpora/sender_truth.tsv");
    assert!(rows.len() >= 360, "{} rows", rows.len());
    let mut wrong = Vec::new();
    for (file, expected) in &rows {
        let raw = std::fs::read(file).unwrap();
        let got = intake::parse::parse(&raw, 64 << 20)
            .ok()
            .and_then(|m| m.sender)
            .map(|s| norm(&s.address))
            .unwrap_or_default();
        let expected = if expected.is_empty() {
            String::new()
        } else {
            norm(expected)
        };
        if got != expected {
            wrong.push(format!("{file}: expected {expected:?}, got {got:?}"));
        }
    }
    let right = rows.len() - wrong.len();
    println!(
        "sender right for {right} of {} mails ({:.1}%)",
        rows.len(),
        100.0 * right as f64 / rows.len() as f64
    );
    for w in &wrong {
        println!("  {w}");
    }
    assert!(right * 100 >= rows.len() * 99, "{wrong:#?}");
}

/// Broken From headers as customers' mailers write them, through the
/// pipeline on both databases: the sender a careful reader sees is the
/// requester, the ticket records that it was recovered, a quoted local part
/// is one user in every spelling, and two `@` are never an address.
async fn broken_from_headers_end_as_the_right_requester(db: crate::common::Db) {
    use intake::model::OutcomeKind;
    let h = crate::common::Harness::new(db).await;
    let raw = |from: &str, mid: &str, extra: &str| {
        format!("From: {from}\nTo: support@desk.test\nSubject: Help\nMessage-ID: <{mid}>\n{extra}\nbody\n")
    };
    let o = h.mail(&raw("Test test@example.com", "m1@x", "")).await;
    assert_eq!(o.outcome, OutcomeKind::Created, "{o:?}");
    let view = h.store().ticket_view(o.ticket_id.unwrap()).await.unwrap();
    let user = h
        .store()
        .user(view["requester_id"].as_i64().unwrap())
        .await
        .unwrap();
    let user = serde_json::to_value(&user).unwrap();
    assert!(user.to_string().contains("test@example.com"), "{user}");
    let recovered: Vec<&serde_json::Value> = view["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "sender_recovered")
        .collect();
    assert_eq!(recovered.len(), 1, "{view}");
    let detail = recovered[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("test@example.com") && detail.contains("Test test@example.com"),
        "{detail}"
    );
    // A quoted local part: one user however it is spelled.
    let a = h.mail(&raw("\"john.doe\"@example.com", "m2@x", "")).await;
    let b = h
        .mail(&raw("John <John.Doe@Example.com>", "m3@x", ""))
        .await;
    assert_eq!(a.user_id, b.user_id);
    let c = h.mail(&raw("\"John Doe\"@example.com", "m4@x", "")).await;
    assert_eq!(c.outcome, OutcomeKind::Created, "{c:?}");
    let user = serde_json::to_value(h.store().user(c.user_id.unwrap()).await.unwrap()).unwrap();
    assert!(
        user.to_string().contains("\\\"john doe\\\"@example.com"),
        "{user}"
    );
    // Two `@`: never a user; Reply-To is the sender then, else quarantine.
    let d = h
        .mail(&raw(
            "alice@xxx.com@xxx.com",
            "m5@x",
            "Reply-To: alice@xxx.com\n",
        ))
        .await;
    let user = serde_json::to_value(h.store().user(d.user_id.unwrap()).await.unwrap()).unwrap();
    assert!(user.to_string().contains("\"alice@xxx.com\""), "{user}");
    let e = h.mail(&raw("alice@xxx.com@xxx.com", "m6@x", "")).await;
    assert_eq!(e.outcome, OutcomeKind::Quarantined, "{e:?}");
    let doc = h.export().await;
    assert!(
        !doc.to_string().contains("alice@xxx.com@xxx.com\""),
        "no such user"
    );
}

crate::both_backends!(broken_from_headers_end_as_the_right_requester);
