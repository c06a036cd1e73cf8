//! Unit tests of the pure planner and of trigger parsing.

use super::triggers::*;

fn set(toml_triggers: &str) -> TriggerSet {
    let cfg = crate::config::Config::from_toml_with(toml_triggers, &super::validate)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let (s, problems) = TriggerSet::build(&cfg, Some(toml_triggers));
    assert!(problems.is_empty(), "{problems:?}");
    s
}

fn ctx(kind: EventKind, org: Option<&str>, new: bool, class: &str) -> EventContext {
    EventContext {
        kind: Some(kind),
        channel: "email".into(),
        requester_is_new: new,
        class: class.into(),
        author_role: "end_user".into(),
        forwarded_by_agent: false,
        ticket: TicketVars {
            id: 7,
            tag: "[#7]".into(),
            subject: "Printer".into(),
            status: "new".into(),
            url: None,
        },
        requester: RequesterVars {
            name: "Ada".into(),
            email: Some("ada@acme.com".into()),
        },
        organization: org.map(|n| OrgVars { name: n.into() }),
        comment: CommentVars {
            body: "help".into(),
            full_body: "help\n\n> earlier".into(),
        },
    }
}

const ROUTING: &str = r#"
[[triggers]]
name = "route acme"
on = "ticket_created"
conditions = { organization = ["ACME"], channel = ["email"] }
actions = [{ type = "set", assignee = "alice", group = "acme" , tag = "vip" }, { type = "notify", to = "alice@desk.test", template = "{{ organization.name }}: {{ ticket.subject }}" }]

[[triggers]]
name = "welcome"
on = "ticket_created"
conditions = { organization = "none", requester_is_new = true }
actions = [{ type = "notify_requester", subject = "Welcome {{ requester.name }}", template = "{{ ticket.tag }} {{ comment.body }}", html_template = "<p>{{ requester.name }}</p>" }]
"#;

#[test]
fn conditions_select_triggers() {
    let s = set(ROUTING);
    let p = plan(
        &s,
        &ctx(EventKind::TicketCreated, Some("Acme"), true, "normal"),
    );
    assert_eq!(
        p.changes,
        TicketChanges {
            assignee: Some("alice".into()),
            group: Some("acme".into()),
            tags: vec!["vip".into()]
        }
    );
    assert_eq!(p.notifications.len(), 1);
    assert_eq!(p.notifications[0].to.as_deref(), Some("alice@desk.test"));
    assert_eq!(p.notifications[0].text, "Acme: Printer");
    assert_eq!(
        p.notifications[0].subject, "Printer",
        "the default subject is the ticket's"
    );

    let p = plan(&s, &ctx(EventKind::TicketCreated, None, true, "normal"));
    assert!(p.changes.is_empty());
    let n = &p.notifications[0];
    assert_eq!(
        (n.subject.as_str(), n.text.as_str(), n.html.as_deref()),
        ("Welcome Ada", "[#7] help", Some("<p>Ada</p>"))
    );
    assert!(
        plan(&s, &ctx(EventKind::TicketCreated, None, false, "normal"))
            .notifications
            .is_empty(),
        "requester_is_new"
    );
    assert!(
        plan(&s, &ctx(EventKind::CommentAdded, None, true, "normal"))
            .notifications
            .is_empty(),
        "on"
    );
    let auto = plan(
        &s,
        &ctx(EventKind::TicketCreated, Some("Acme"), true, "auto_reply"),
    );
    assert!(
        auto.notifications.is_empty() && auto.changes.is_empty(),
        "class defaults to normal only"
    );
}

#[test]
fn bad_triggers_are_reported() {
    let text = "[[triggers]]\nname = \"x\"\non = \"ticket_created\"\nconditions = { status = [\"weird\"], class = [\"spam\"] }\n\
actions = [{ type = \"notify\", template = \"x\" }, { type = \"set\" }, { type = \"notify_requester\", template = \"{{ x | nosuchfilter }}\" }, { type = \"jump\" }]\n";
    let err = crate::config::Config::from_toml_with(text, &super::validate).unwrap_err();
    let all: Vec<String> = err.iter().map(ToString::to_string).collect();
    for needle in [
        "status",
        "class",
        "notify needs to",
        "set needs",
        "nosuchfilter",
        "unknown type",
    ] {
        assert!(all.iter().any(|m| m.contains(needle)), "{needle}: {all:?}");
    }
    assert!(err.iter().all(|p| p.line.is_some()), "{all:?}");
}

#[test]
fn disabled_triggers_are_checked_but_not_run() {
    let s = set("[[triggers]]\nname = \"off\"\non = \"ticket_created\"\nenabled = false\nactions = [{ type = \"notify_requester\", template = \"x\" }]\n");
    assert!(s.triggers.is_empty());
    assert!(crate::config::Config::from_toml_with("[[triggers]]\nname = \"off\"\non = \"ticket_created\"\nenabled = false\nactions = [{ type = \"notify_requester\", template = \"{% if %}\" }]\n", &super::validate).is_err());
}

#[test]
fn trigger_names_are_unique() {
    // The outbox names a template by trigger name and action index.
    let t = "[[triggers]]\nname = \"ack\"\non = \"ticket_created\"\nactions = [{ type = \"notify_requester\", template = \"x\" }]\n";
    let err =
        crate::config::Config::from_toml_with(&format!("{t}{t}"), &super::validate).unwrap_err();
    let all: Vec<String> = err.iter().map(ToString::to_string).collect();
    assert!(
        all.iter()
            .any(|m| m.contains("another trigger has this name")),
        "{all:?}"
    );
}

#[test]
fn our_message_ids_name_their_ticket() {
    let mid = super::new_message_id(4711, "desk.test");
    assert_eq!(super::ticket_of_message_id(&mid), Some(4711));
    // The format before time-ordered IDs: 32 hex digits.
    let old = format!("{:032x}.12@desk.test", 7u128);
    assert_eq!(super::ticket_of_message_id(&old), Some(12));
    for other in [
        "m1@acme.com",
        "CAF=abc.12@mail.gmail.com",
        "0123456789abcdef.12@x",
        "0123456789abcdef0123456789abcdefg.12@x",
        "0123456789abcdef0123456789abcdef.@x",
        "0123456789abcdef0123456789abcdef.1x@x",
        "0123456789abcdef0123456789abcdef.12",
        "0123456789abcdef0123456789abcdef.99999999999999999999@x",
    ] {
        assert_eq!(super::ticket_of_message_id(other), None, "{other}");
    }
}
