//! Unit tests of [`super::classify`] on small hand-written mails.

use super::*;
use crate::parse::parse;

fn own() -> OwnAddresses {
    OwnAddresses::new(
        [
            "Support@Desk.Example".to_string(),
            "billing@desk.example".to_string(),
        ],
        "Desk.Example",
    )
}

fn class_of(headers: &str) -> MailClass {
    let raw = format!("{headers}\nMessage-ID: <t@x.example>\n\nbody\n");
    let mail = parse(raw.as_bytes(), 1 << 20).expect("parses");
    classify(&mail, &own())
}

#[test]
fn classify_names_round_trip() {
    for c in MailClass::ALL {
        assert_eq!(MailClass::parse(c.as_str()), Some(c));
        assert_eq!(c.is_automatic(), c != MailClass::Normal);
    }
    assert_eq!(MailClass::parse("nope"), None);
    assert_eq!(
        serde_json::to_string(&MailClass::AutoReply).unwrap(),
        "\"auto_reply\""
    );
}

#[test]
fn classify_own_addresses_are_case_insensitive() {
    let o = own();
    assert!(o.contains("SUPPORT@desk.example"));
    assert!(!o.contains("someone@desk.example"));
    assert_eq!(o.desk_domain(), "desk.example");
}

#[test]
fn classify_normal_mail() {
    assert_eq!(
        class_of("From: ann@example.com\nSubject: Help"),
        MailClass::Normal
    );
    // Subjects alone never make a mail automatic.
    assert_eq!(
        class_of("From: ann@example.com\nSubject: Out of office question"),
        MailClass::Normal
    );
    assert_eq!(
        class_of("From: ann@example.com\nSubject: Undeliverable parcel"),
        MailClass::Normal
    );
    // Neither do the weak Microsoft headers.
    assert_eq!(
        class_of("From: ann@example.com\nSubject: Help\nX-Auto-Response-Suppress: All"),
        MailClass::Normal
    );
    assert_eq!(
        class_of("From: ann@example.com\nSubject: x\nAuto-Submitted: no"),
        MailClass::Normal
    );
}

#[test]
fn classify_loops() {
    assert_eq!(
        class_of("From: SUPPORT@desk.example\nSubject: x"),
        MailClass::Loop
    );
    assert_eq!(
        class_of("From: ann@example.com\nX-Intake-Loop: desk.example\nSubject: x"),
        MailClass::Loop
    );
    assert_eq!(
        class_of("From: ann@example.com\nX-Loop: <billing@desk.example>\nSubject: x"),
        MailClass::Loop
    );
    // Loop wins over everything.
    assert_eq!(
        class_of(
            "From: support@desk.example\nAuto-Submitted: auto-replied\nX-Failed-Recipients: a@b"
        ),
        MailClass::Loop
    );
    assert_eq!(
        class_of("From: ann@example.com\nX-Intake-Loop: other.example\nSubject: x"),
        MailClass::Normal
    );
}

#[test]
fn classify_bounces() {
    assert_eq!(
        class_of("From: MAILER-DAEMON@mx.example.com\nSubject: x"),
        MailClass::Bounce
    );
    assert_eq!(
        class_of("From: postmaster@example.com\nSubject: x"),
        MailClass::Bounce
    );
    assert_eq!(
        class_of("From: a@example.com\nX-Failed-Recipients: b@example.org\nSubject: x"),
        MailClass::Bounce
    );
    assert_eq!(
        class_of("From: a@example.com\nReturn-Path: <>\nSubject: Undeliverable: Your request"),
        MailClass::Bounce
    );
    assert_eq!(
        class_of("From: Mail Delivery System <noreply@example.com>\nSubject: Mail delivery failed"),
        MailClass::Bounce
    );
    // Bounce beats auto-reply (Exim marks its bounces Auto-Submitted: auto-replied).
    assert_eq!(
        class_of("From: a@example.com\nAuto-Submitted: auto-replied\nSubject: Mail delivery failed: returning message to sender"),
        MailClass::Bounce
    );
}

#[test]
fn classify_auto_replies() {
    assert_eq!(
        class_of("From: a@example.com\nAuto-Submitted: auto-generated\nSubject: x"),
        MailClass::AutoReply
    );
    assert_eq!(
        class_of("From: a@example.com\nX-Autoreply: yes\nSubject: x"),
        MailClass::AutoReply
    );
    assert_eq!(
        class_of("From: a@example.com\nPrecedence: junk\nSubject: x"),
        MailClass::AutoReply
    );
    assert_eq!(
        class_of(
            "From: a@example.com\nX-Auto-Response-Suppress: All\nSubject: Automatic reply: Help"
        ),
        MailClass::AutoReply
    );
    assert_eq!(
        class_of("From: a@example.com\nReturn-Path: <>\nSubject: Abwesenheitsnotiz: Hilfe"),
        MailClass::AutoReply
    );
    assert_eq!(
        class_of("From: a@icloud.example\nX-Apple-Action: VACATION\nSubject: Auto reply: x"),
        MailClass::AutoReply
    );
}

#[test]
fn classify_lists() {
    assert_eq!(
        class_of("From: a@example.com\nList-Id: <dev.lists.example>"),
        MailClass::List
    );
    assert_eq!(
        class_of("From: a@example.com\nPrecedence: list"),
        MailClass::List
    );
    // The documented decision: a bulk newsletter with list headers is List.
    assert_eq!(
        class_of(
            "From: news@shop.example\nPrecedence: bulk\nList-Unsubscribe: <mailto:u@shop.example>"
        ),
        MailClass::List
    );
    // An explicit auto-reply signal still wins over list headers.
    assert_eq!(
        class_of("From: a@example.com\nList-Id: <l.example>\nAuto-Submitted: auto-replied"),
        MailClass::AutoReply
    );
}

fn class_with_body(headers: &str, body: &str) -> MailClass {
    let raw = format!("{headers}\nMessage-ID: <t@x.example>\n\n{body}\n");
    classify(&parse(raw.as_bytes(), 1 << 20).expect("parses"), &own())
}

#[test]
fn classify_gateway_bounces_without_dsn_structure() {
    let b = MailClass::Bounce;
    // A mail-system word in the sender or return path, with a bounce subject.
    for headers in [
        "From: E500_SMTP_Mail_Service@example.org\nSubject: Returned Mail - Error During Delivery",
        "From: Symantec_AntiVirus_for_SMTP_Gateways@csri.org\n\
         Subject: =?utf-8?B?RGVsaXZlcnkgZmFpbHVyZSBub3RpZmljYXRpb24=?=",
        "From: <\"System Administrator\"@example.com>\nSubject: Delivery Failure",
        "Return-Path: <prvs=126700a846=ndr@some.domain>\nFrom: ndr@some.domain\n\
         Subject: Mail delivery failed: returning message to sender",
        "From: <admin@example.com>\nSubject: Non-Delivery: Your message awaits approval",
        // MDaemon's "no such user", sent with Precedence: bulk.
        "From: MDaemon@webmail.example.py\nPrecedence: bulk\n\
         Subject: Warning: userx@example.py - User unknown!",
        // Dovecot's Sieve reject, written as a disposition notification.
        "From: Mail Delivery Subsystem <admin@domain.example>\n\
         Auto-Submitted: auto-replied (rejected)\nPrecedence: bulk\n\
         Subject: Automatically rejected mail",
    ] {
        assert_eq!(class_of(headers), b, "{headers}");
    }
    // A delivery-report phrase followed by the failed address.
    assert_eq!(
        class_with_body(
            "From: Dsicspiibs.spi-internet@socgen.com\nSubject: RE: Your message : non remis",
            "Your message could not be delivered to\nuserx@example.com\n"
        ),
        b
    );
}

#[test]
fn classify_people_who_mention_a_failed_delivery_stay_ordinary() {
    let n = MailClass::Normal;
    assert_eq!(
        class_with_body(
            "From: alice@gmail.example\nSubject: Delivery failed for my order 1234",
            "My parcel could not be delivered to my home address yesterday."
        ),
        n
    );
    // Forwarding a bounce to ask about it.
    assert_eq!(
        class_with_body(
            "From: bob@smtp-hosting.example\nSubject: Fwd: Mail delivery failed",
            "Why did this bounce? It could not be delivered to carol@example.com"
        ),
        n
    );
}
