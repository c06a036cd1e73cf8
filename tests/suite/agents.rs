//! The desk's agents, on both databases: configured by address or domain,
//! or added through the admin API and CLI. An agent's reply by mail is an
//! agent comment (public on a public ticket unless it starts with the
//! private marker), never a stranger's; a trigger can answer the requester
//! with it (`author_role`); no organization ever comes from an agent's
//! domain. Bad input to the new surfaces is refused and changes nothing.

use crate::cli_ops::{intake, text};
use crate::common::Db;
use crate::http_common::{extra, Server, ADMIN};
use crate::support::desk::{comments_of, desk, notifications, ACK};
use intake::model::OutcomeKind;
use serde_json::Value;

const AGENTS: &str =
    "[agents]\naddresses = [\"Ann@Team.example\"]\ndomains = [\"helpers.example\"]\n";
const AGENT_REPLY: &str = r#"
[[triggers]]
name = "agent reply to the requester"
on = "comment_added"
conditions = { author_role = "agent" }
actions = [{ type = "notify_requester", template = "{{ comment.body }}" }]
"#;

fn mail(from: &str, mid: &str, reply_to: Option<&str>, body: &str) -> String {
    let refs = reply_to
        .map(|r| format!("In-Reply-To: <{r}>\nReferences: <{r}>\n"))
        .unwrap_or_default();
    format!("From: {from}\nTo: support@desk.test\nSubject: Printer\nMessage-ID: <{mid}>\n{refs}\n{body}\n")
}

async fn agent_replies_by_mail(db: Db) {
    let h = desk(db, 1, &format!("{AGENTS}{ACK}{AGENT_REPLY}")).await;
    let t = h
        .mail(&mail(
            "Alice <alice@acme.example>",
            "a1@acme",
            None,
            "my printer is on fire",
        ))
        .await;
    assert_eq!(t.outcome, OutcomeKind::Created);
    let ticket = t.ticket_id.unwrap();
    let cases = [
        (
            "Ann <ann@team.example>",
            "r1@team",
            "Please switch it off.",
            true,
        ),
        (
            "ann@team.example",
            "r2@team",
            "#note they never switch it off",
            false,
        ),
        (
            "Bob <bob@eu.helpers.example>",
            "r3@helpers",
            "I sent a technician.",
            true,
        ),
    ];
    for (from, mid, body, public) in cases {
        let o = h.mail(&mail(from, mid, Some("a1@acme"), body)).await;
        assert_eq!(
            (o.outcome, o.ticket_id, o.public),
            (OutcomeKind::Appended, Some(ticket), Some(public)),
            "{from}: {o:?}"
        );
        assert_eq!(o.flag, None, "an agent is never a stranger");
    }
    // A stranger's reply is still an internal note; the customer's is public.
    let s = h
        .mail(&mail(
            "carl@other.example",
            "s1@other",
            Some("a1@acme"),
            "me too",
        ))
        .await;
    assert_eq!(
        (s.public, s.flag.as_deref()),
        (
            Some(false),
            Some("sender is not a participant of this ticket")
        )
    );
    let c = h
        .mail(&mail(
            "alice@acme.example",
            "a2@acme",
            Some("r1@team"),
            "done, thanks",
        ))
        .await;
    assert_eq!(c.public, Some(true));

    let doc = h.store().export().await.unwrap();
    let roles: Vec<(String, bool)> = comments_of(&doc, ticket)
        .iter()
        .map(|c| {
            (
                c["role"].as_str().unwrap().to_string(),
                c["public"].as_bool().unwrap(),
            )
        })
        .collect();
    let r = |s: &str, p: bool| (s.to_string(), p);
    assert_eq!(
        roles,
        [
            r("end_user", true),
            r("agent", true),
            r("agent", false),
            r("agent", true),
            r("end_user", false),
            r("end_user", true)
        ]
    );
    // Acknowledgement of the ticket, then the two public agent replies to
    // Alice; nothing for the note, the stranger or Alice's own reply.
    let n = notifications(&doc);
    let to: Vec<&str> = n.iter().map(|x| x["to"].as_str().unwrap()).collect();
    assert_eq!(to, ["alice@acme.example"; 3], "{n:?}");
    let triggers: Vec<&str> = n.iter().map(|x| x["trigger"].as_str().unwrap()).collect();
    assert_eq!(
        triggers
            .iter()
            .filter(|t| **t == "agent reply to the requester")
            .count(),
        2
    );

    // An agent's own new mail: a ticket, but no organization for team.example
    // or helpers.example.
    let own = h
        .mail(&mail(
            "ann@team.example",
            "n1@team",
            None,
            "new laptop for Alice",
        ))
        .await;
    assert_eq!(own.outcome, OutcomeKind::Created);
    h.mail(&mail("zed@helpers.example", "n2@helpers", None, "hello"))
        .await;
    let orgs: Vec<String> = h
        .store()
        .organizations()
        .await
        .unwrap()
        .iter()
        .map(|o| o.name.clone())
        .collect();
    assert!(
        orgs.iter()
            .all(|o| !o.contains("team") && !o.contains("helpers")),
        "{orgs:?}"
    );
    assert!(orgs.iter().any(|o| o.contains("acme")), "{orgs:?}");
    let e = h
        .pipeline
        .create_organization("Helpers", &["helpers.example".into()])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("agent domain"), "{e}");
}

both_backends!(agent_replies_by_mail);

async fn agents_added_at_run_time(db: Db) {
    let s = Server::with(db, &extra()).await;
    let h = &s.h;
    let t = h
        .mail(&mail("alice@acme.example", "a1@acme", None, "help"))
        .await;
    h.mail(&mail("dan@acme.example", "d0@acme", None, "another"))
        .await;
    let auth = format!("Bearer {ADMIN}");
    let c = &s.client;
    assert_eq!(
        c.get(s.url("/v1/agents")).send().await.unwrap().status(),
        401
    );
    for (body, code, detail) in [
        (r#"{"address": "not an address"}"#, 422, "address:"),
        (r#"{"addr": "dan@acme.example"}"#, 422, "addr"),
    ] {
        let r = c
            .post(s.url("/v1/agents"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), code, "{body}");
        let b: Value = r.json().await.unwrap();
        assert!(b["detail"].as_str().unwrap().contains(detail), "{b}");
    }
    let r = c
        .delete(s.url("/v1/agents/alice@acme.example"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .post(s.url("/v1/agents"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(r#"{"address": "Dan@ACME.example"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let list: Value = c
        .get(s.url("/v1/agents"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["added"][0]["emails"][0], "dan@acme.example", "{list}");
    // Dan left Acme; his reply to Alice's ticket is an agent's, public.
    let dan = h
        .store()
        .user_by_contact(
            &intake::identity::ContactPoint::parse_any("dan@acme.example", "US").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dan.organization_id, None);
    let o = h
        .mail(&mail(
            "dan@acme.example",
            "d1@acme",
            Some("a1@acme"),
            "on it",
        ))
        .await;
    assert_eq!(
        (o.ticket_id, o.public, o.flag.as_deref()),
        (t.ticket_id, Some(true), None)
    );
    // Removed: a stranger on Alice's ticket again.
    let r = c
        .delete(s.url("/v1/agents/dan@acme.example"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let o = h
        .mail(&mail(
            "dan@acme.example",
            "d2@acme",
            Some("a1@acme"),
            "again",
        ))
        .await;
    assert_eq!(
        (o.public, o.flag.as_deref()),
        (
            Some(false),
            Some("sender is not a participant of this ticket")
        )
    );

    // The CLI on the same database.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"{}\"\n[desk]\ndomain = \"desk.test\"\n{AGENTS}",
            h.db.url
        ),
    )
    .unwrap();
    let o = intake(&cfg, &["agents", "add", "eve@acme.example"], &[]);
    assert!(
        o.status.success() && text(&o).contains("eve@acme.example is an agent"),
        "{}",
        text(&o)
    );
    let o = intake(&cfg, &["agents", "list"], &[]);
    assert!(
        text(&o).contains("configured address Ann@Team.example")
            && text(&o).contains("eve@acme.example"),
        "{}",
        text(&o)
    );
    let o = intake(&cfg, &["agents", "add", "eve at acme"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = intake(&cfg, &["agents", "remove", "alice@acme.example"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is not an agent"), "{}", text(&o));
    let o = intake(&cfg, &["agents", "remove", "eve@acme.example"], &[]);
    assert!(o.status.success(), "{}", text(&o));
}

both_backends!(agents_added_at_run_time);

#[test]
fn agent_settings_are_checked_with_their_lines() {
    let text = "[database]\nurl = \"sqlite://x.db\"\n[desk]\ndomain = \"desk.test\"\n\
                [agents]\naddresses = [\"ann\"]\ndomains = [\"a b\"]\n";
    let p: Vec<String> = intake::app::config_from_toml(text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        p.iter()
            .any(|x| x.starts_with("line 6: agents.addresses: \"ann\"")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x.starts_with("line 7: agents.domains: \"a b\" is not a domain name")),
        "{p:?}"
    );
}

#[test]
fn author_role_conditions_name_a_role() {
    let text = "[database]\nurl = \"sqlite://x.db\"\n[desk]\ndomain = \"desk.test\"\n\
                [[triggers]]\nname = \"x\"\non = \"comment_added\"\nconditions = { author_role = \"boss\" }\n\
                actions = [{ type = \"notify_requester\", template = \"t\" }]\n";
    let p: Vec<String> = intake::app::config_from_toml(text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        p.iter()
            .any(|x| x.contains("author_role: must be \"agent\" or \"end_user\"")),
        "{p:?}"
    );
}
