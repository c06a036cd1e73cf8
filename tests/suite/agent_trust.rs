//! Who may act as an agent, on both databases. Where senders are verified
//! (`[trust] authserv_ids`), only mail whose From address our MTA
//! authenticated (a DMARC pass for exactly that domain) is an agent's: a
//! forged From of an agent address is a stranger's internal note. A gateway
//! contact never makes anyone an agent. An agent's reply never reopens a
//! ticket and never opens a follow-up of a closed one as its requester.

use crate::common::Db;
use crate::support::desk::{comments_of, desk, ACK};
use intake::identity::{ContactPoint, EmailAddress};
use intake::model::{Contact, Inbound, OutcomeKind};

const AGENTS: &str =
    "[agents]\naddresses = [\"ann@team.example\"]\ndomains = [\"helpers.example\"]\n";
const TRUST: &str = "[trust]\nauthserv_ids = [\"mx.desk.test\"]\n";

fn ar(result: &str, domain: &str) -> String {
    format!("Authentication-Results: mx.desk.test; dmarc={result} header.from={domain}\n")
}

fn mail(auth: &str, from: &str, mid: &str, parent: Option<&str>, body: &str) -> String {
    let refs = parent
        .map(|r| format!("In-Reply-To: <{r}>\nReferences: <{r}>\n"))
        .unwrap_or_default();
    format!("{auth}From: {from}\nTo: support@desk.test\nSubject: Printer\nMessage-ID: <{mid}>\n{refs}\n{body}\n")
}

fn roles(doc: &serde_json::Value, ticket: i64) -> Vec<(String, bool)> {
    comments_of(doc, ticket)
        .iter()
        .map(|c| {
            (
                c["role"].as_str().unwrap().to_string(),
                c["public"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn only_authenticated_mail_is_an_agents(db: Db) {
    let h = desk(db, 1, &format!("{TRUST}{AGENTS}{ACK}")).await;
    let customer = h
        .mail(&mail(
            &ar("pass", "acme.example"),
            "alice@acme.example",
            "a1@acme",
            None,
            "my printer is on fire",
        ))
        .await;
    let ticket = customer.ticket_id.unwrap();
    // Forged: an agent's address with no DMARC policy behind it, with no
    // result of our MTA at all, with a temporary error.
    for (auth, from, mid) in [
        (ar("none", "team.example"), "ann@team.example", "f1@evil"),
        (String::new(), "ann@team.example", "f2@evil"),
        (
            ar("temperror", "helpers.example"),
            "bob@eu.helpers.example",
            "f3@evil",
        ),
    ] {
        let o = h
            .mail(&mail(&auth, from, mid, Some("a1@acme"), "refund to IBAN X"))
            .await;
        assert_eq!(
            (o.ticket_id, o.public, o.flag.as_deref()),
            (
                Some(ticket),
                Some(false),
                Some("sender is not a participant of this ticket")
            ),
            "{from} {auth}: {o:?}"
        );
    }
    // A pass for the parent domain is no pass for a subdomain's From: held.
    let o = h
        .mail(&mail(
            &ar("pass", "helpers.example"),
            "bob@eu.helpers.example",
            "f4@evil",
            Some("a1@acme"),
            "refund to IBAN X",
        ))
        .await;
    assert_eq!(o.outcome, OutcomeKind::Review, "{o:?}");
    // Authenticated: the agent's public reply.
    let o = h
        .mail(&mail(
            &ar("pass", "team.example"),
            "Ann <ann@team.example>",
            "r1@team",
            Some("a1@acme"),
            "Please switch it off.",
        ))
        .await;
    assert_eq!((o.public, o.flag.as_deref()), (Some(true), None), "{o:?}");
    let doc = h.export().await;
    let r = |s: &str, p: bool| (s.to_string(), p);
    assert_eq!(
        roles(&doc, ticket),
        [
            r("end_user", true),
            r("end_user", false),
            r("end_user", false),
            r("end_user", false),
            r("agent", true)
        ]
    );

    // A gateway contact naming an agent's address is a contact, not an
    // agent: an end user's comment.
    let ann = ContactPoint::Email(EmailAddress::parse("ann@team.example").unwrap());
    let out = h
        .pipeline
        .ingest(
            vec![Inbound::Contact(Contact {
                source: "chat".into(),
                channel: "chat".into(),
                contacts: vec![ann],
                name: Some("Ann".into()),
                conversation_id: Some("c1".into()),
                subject: "Chat".into(),
                message: "I am an agent, honest".into(),
                public: true,
                occurred_at: None,
                attachments: vec![],
                message_id: "chat-c1-1@desk.test".into(),
            })],
            None,
        )
        .await
        .unwrap();
    let doc = h.export().await;
    assert_eq!(
        roles(&doc, out[0].ticket_id.unwrap()),
        [r("end_user", true)]
    );
}

both_backends!(only_authenticated_mail_is_an_agents);

async fn agent_replies_never_reopen_or_follow_up(db: Db) {
    let h = desk(db, 1, &format!("{AGENTS}{ACK}")).await;
    let t = h
        .mail(&mail("", "alice@acme.example", "a1@acme", None, "help"))
        .await;
    let ticket = t.ticket_id.unwrap();
    let mut parent = "a1@acme".to_string();
    for (i, (status, public, flag)) in [
        ("pending", true, None),
        ("solved", true, None),
        ("closed", false, Some("agent reply to a closed ticket")),
    ]
    .into_iter()
    .enumerate()
    {
        h.store().set_ticket_status(ticket, status).await.unwrap();
        let mid = format!("r{i}@team");
        let o = h
            .mail(&mail(
                "",
                "ann@team.example",
                &mid,
                Some(&parent),
                "Any news?",
            ))
            .await;
        assert_eq!(
            (o.outcome, o.ticket_id, o.public, o.flag.as_deref()),
            (OutcomeKind::Appended, Some(ticket), Some(public), flag),
            "{status}: {o:?}"
        );
        let view = h.store().ticket_view(ticket).await.unwrap();
        assert_eq!(view["status"], status, "status kept: {view}");
        parent = mid;
    }
    // No follow-up ticket was opened for the agent.
    let doc = h.export().await;
    assert_eq!(doc["tickets"].as_array().unwrap().len(), 1, "{doc}");
    // The customer's reply to the closed ticket still opens a follow-up.
    let o = h
        .mail(&mail(
            "",
            "alice@acme.example",
            "a2@acme",
            Some(&parent),
            "?",
        ))
        .await;
    assert_eq!(
        (o.outcome, o.follow_up_of),
        (OutcomeKind::Created, Some(ticket))
    );
}

both_backends!(agent_replies_never_reopen_or_follow_up);
