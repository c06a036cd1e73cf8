//! Readable replies, on both databases: a customer's reply keeps its whole
//! text (`body`, and the raw mail) and gains its visible text
//! (`visible_body`): quoted history, forwarded header blocks and signature
//! removed, answers written into the quote kept. The export and the ticket
//! view show both; notifications quoting the comment (`{{ comment.body }}`)
//! quote only what the customer wrote, `{{ comment.full_body }}` the rest.

use crate::common::{mail, Db};
use crate::support::desk::{comments_of, desk, reply_to, ACK};
use crate::support::smtp::SmtpSink;
use intake::notify::drain_once;

const FULL: &str = r#"
[[triggers]]
name = "tell the team everything"
on = "ticket_created"
actions = [{ type = "notify", to = "team@desk.test", template = "FULL {{ comment.full_body }}" }]
"#;

/// A new request written as a Gmail reply to a colleague's mail, with a
/// signature: the acknowledgement quotes only the new words.
async fn a_request_with_history_is_acknowledged_with_its_own_words(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(db, sink.port, &format!("{ACK}{FULL}")).await;
    let body = "Our printer is on fire again, please send someone.\n\n-- \nAda Lovelace\nACME Ltd\n\nOn Mon, Nov 30, 2026 at 9:00 AM Bob Builder <bob@acme.com>\nwrote:\n\n> Ada, can you ask the help desk about the printer?\n> It smells of smoke.\n";
    let o = h
        .mail(&mail(
            "Ada Lovelace <ada@acme.com>",
            "Printer",
            "r1@acme.com",
            "",
            body,
        ))
        .await;
    let t = o.ticket_id.unwrap();
    let doc = h.export().await;
    let c = &comments_of(&doc, t)[0];
    assert_eq!(c["body"].as_str().unwrap().trim_end(), body.trim_end());
    assert_eq!(
        c["visible_body"],
        "Our printer is on fire again, please send someone."
    );
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 2);
    let got = sink.wait_for(2, 5);
    let ack = got.iter().find(|m| m.rcpt_tos == ["ada@acme.com"]).unwrap();
    assert!(
        ack.raw.contains("> Our printer is on fire again"),
        "{}",
        ack.raw
    );
    assert!(
        !ack.raw.contains("smoke") && !ack.raw.contains("ACME Ltd"),
        "{}",
        ack.raw
    );
    let team = got
        .iter()
        .find(|m| m.rcpt_tos == ["team@desk.test"])
        .unwrap();
    assert!(team.raw.contains("smells of smoke"), "{}", team.raw);
    // The ticket view shows both texts too.
    let view = h.store().ticket_view(t).await.unwrap();
    let vc = &view["comments"][0];
    assert_eq!(vc["visible_body"], c["visible_body"]);
    assert_eq!(vc["body"], c["body"]);

    // The customer answers the acknowledgement from Outlook on the web
    // (HTML only): the comment shows the answer, not our quoted mail.
    let outlook = "<html><body><div>Thanks, someone is here now.</div><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\"><b>From:</b> support@desk.test<br><b>Sent:</b> Monday<br><b>Subject:</b> Printer</div><div>Hello Ada Lovelace, your request is in.</div></body></html>";
    let raw = reply_to(ack, "Ada Lovelace <ada@acme.com>", "r2@acme.com", "").replace(
        "Content-Type: text/plain; charset=utf-8",
        "Content-Type: text/html; charset=utf-8",
    ) + outlook;
    let r = h.mail(&raw).await;
    assert_eq!(r.ticket_id, Some(t));
    let doc = h.export().await;
    let c = &comments_of(&doc, t)[1];
    assert!(
        c["body"].as_str().unwrap().contains("your request is in"),
        "{c}"
    );
    assert_eq!(c["visible_body"], "Thanks, someone is here now.");
}

/// A mail without history: its visible text is its text; answers written
/// between quoted lines stay, the questions go.
async fn plain_mail_and_inline_answers(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(db, sink.port, ACK).await;
    let o = h
        .mail(&mail(
            "Ann <ann@acme.com>",
            "Toner",
            "p1@acme.com",
            "",
            "We need toner.\nThanks",
        ))
        .await;
    let doc = h.export().await;
    let c = &comments_of(&doc, o.ticket_id.unwrap())[0];
    assert_eq!(c["visible_body"], c["body"]);
    let inline = "Am Mo., 30. Nov. 2026 um 09:00 Uhr schrieb Support <support@desk.test>:\n> Welches Modell?\nDas LX-200.\n> Seit wann?\nSeit Montag.\n\nVon meinem iPhone gesendet\n";
    let o = h
        .mail(&mail(
            "Bea <bea@acme.com>",
            "Drucker",
            "p2@acme.com",
            "",
            inline,
        ))
        .await;
    let doc = h.export().await;
    let c = &comments_of(&doc, o.ticket_id.unwrap())[0];
    assert_eq!(c["visible_body"], "Das LX-200.\nSeit Montag.");
    assert!(c["body"].as_str().unwrap().contains("Welches Modell?"));
}

both_backends!(
    a_request_with_history_is_acknowledged_with_its_own_words,
    plain_mail_and_inline_answers
);
