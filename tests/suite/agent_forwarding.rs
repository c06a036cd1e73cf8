//! Agent forwarding, on both databases: an agent's mail that forwards a
//! customer's message opens a ticket on the customer's behalf (requester
//! resolved or created by contact point, organization from their domain),
//! the forwarded message its first public comment with its own date and
//! subject, the agent's text an internal note; `ticket_created` tells
//! triggers it came by agent forwarding. Client formats as Gmail, Outlook,
//! Apple Mail and Thunderbird write them, in text and HTML, in several
//! languages, and attached whole. When the original sender is not certain
//! the ticket opens as before, flagged. End to end through Dovecot and a
//! real SMTP server: the customer is acknowledged.

use crate::common::{Db, Harness};
use crate::support::desk::{comments_of, desk};
use crate::support::smtp::SmtpSink;
use crate::support::Env;
use intake::model::OutcomeKind;
use serde_json::Value;

const AGENTS: &str = "[agents]\naddresses = [\"ann@team.example\"]\n";
/// 2026-12-01 10:00:00 UTC, the forwarded messages' date.
const T: i64 = 1_796_119_200_000;
const ACK_FORWARDED: &str = r#"
[[triggers]]
name = "acknowledge a forwarded request"
on = "ticket_created"
conditions = { forwarded_by_agent = true }
actions = [{ type = "notify_requester", subject = "We are on it: {{ ticket.subject }}", template = "Hello {{ requester.name }}, our colleague passed on your request {{ ticket.tag }}." }]

[[triggers]]
name = "acknowledge new request"
on = "ticket_created"
conditions = { forwarded_by_agent = false }
actions = [{ type = "notify_requester", template = "Your request {{ ticket.tag }} is in." }]
"#;

fn text_mail(from: &str, subject: &str, mid: &str, body: &str) -> String {
    format!("From: {from}\nTo: support@desk.test\nSubject: {subject}\nDate: Wed, 2 Dec 2026 09:00:00 +0000\nMessage-ID: <{mid}>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}")
}

fn html_mail(from: &str, subject: &str, mid: &str, html: &str) -> String {
    format!("From: {from}\nTo: support@desk.test\nSubject: {subject}\nMessage-ID: <{mid}>\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<html><body>{html}</body></html>\n")
}

/// A forward as an attachment, the original carrying a PDF.
fn attached(mid: &str, inner_mid: &str) -> String {
    let inner = format!("From: Carla Rossi <carla@rossi.example>\nTo: ann@team.example\nSubject: Fattura sbagliata\nDate: Tue, 1 Dec 2026 11:00:00 +0100\nMessage-ID: <{inner_mid}>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=in\n\n--in\nContent-Type: text/plain; charset=utf-8\n\nLa fattura 42 è sbagliata.\n--in\nContent-Type: application/pdf; name=fattura.pdf\nContent-Disposition: attachment; filename=fattura.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQKJcfsj6IK\n--in--\n");
    format!("From: Ann <ann@team.example>\nTo: support@desk.test\nSubject: I: Fattura sbagliata\nMessage-ID: <{mid}>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=out\n\n--out\nContent-Type: text/plain; charset=utf-8\n\nCarla needs a corrected invoice.\n--out\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename=\"Fattura sbagliata.eml\"\n\n{inner}\n--out--\n")
}

/// (format, raw mail, customer address, subject, forwarded text, agent's note).
fn forwards() -> Vec<(
    &'static str,
    String,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
)> {
    vec![
        ("gmail text, English", text_mail("Ann <ann@team.example>", "Fwd: Printer on fire", "g1@team",
            "Can you take this one?\n\n---------- Forwarded message ---------\nFrom: Alice Example <alice@acme.example>\nDate: Tue, Dec 1, 2026 at 10:00 AM\nSubject: Printer on fire\nTo: Ann <ann@team.example>\n\n\nMy printer is on fire.\n"),
            "alice@acme.example", "Printer on fire", "My printer is on fire.", "Can you take this one?"),
        ("gmail HTML, German", html_mail("Ann <ann@team.example>", "WG: Drucker", "g2@team",
            "<div dir=\"ltr\">Bitte übernehmen.<br><br><div class=\"gmail_quote\"><div class=\"gmail_attr\">---------- Weitergeleitete Nachricht ---------<br>Von: <strong class=\"gmail_sendername\">Bernd Braun</strong> <span>&lt;bernd@braun.example&gt;</span><br>Date: Di., 1. Dez. 2026 um 11:00 Uhr +0100<br>Subject: Drucker<br>To: &lt;ann@team.example&gt;<br></div><br><br><div dir=\"ltr\">Der Drucker brennt.</div></div></div>"),
            "bernd@braun.example", "Drucker", "Der Drucker brennt.", "Bitte übernehmen."),
        ("outlook text, French", text_mail("Ann <ann@team.example>", "TR: Facture", "o1@team",
            "Peux-tu regarder ?\n\nAnn\n\n________________________________\nDe : Claire Dupont <claire@dupont.example>\nEnvoyé : mardi 1 décembre 2026 11:00 +0100\nÀ : Ann <ann@team.example>\nObjet : Facture 42\n\nLa facture est fausse.\n"),
            "claire@dupont.example", "Facture 42", "La facture est fausse.", "Peux-tu regarder ?\n\nAnn"),
        ("outlook HTML, Spanish", html_mail("Ann <ann@team.example>", "RV: Pedido", "o2@team",
            "<p>Por favor.</p><div style=\"border:none;border-top:solid #E1E1E1 1.0pt\"><p><b>De:</b> Diego Díaz &lt;<a href=\"mailto:diego@diaz.example\">diego@diaz.example</a>&gt;<br><b>Enviado el:</b> martes, 1 de diciembre de 2026 10:00<br><b>Para:</b> Ann<br><b>Asunto:</b> Pedido 7</p></div><p>No llegó el pedido.</p>"),
            "diego@diaz.example", "Pedido 7", "No llegó el pedido.", "Por favor."),
        ("apple mail, English", text_mail("ann@team.example", "Fwd: Login", "a1@team",
            "See below.\n\nBegin forwarded message:\n\nFrom: Erik Eriksen <erik@eriksen.example>\nSubject: Login\nDate: 1 December 2026 at 10:00:00 GMT\nTo: ann@team.example\n\nI cannot log in.\n"),
            "erik@eriksen.example", "Login", "I cannot log in.", "See below."),
        ("thunderbird, Dutch", text_mail("ann@team.example", "Doorst: Inloggen", "t1@team",
            "Graag oppakken.\n\n-------- Doorgestuurd bericht --------\nOnderwerp: \tInloggen\nDatum: \tdinsdag 1 december 2026 10:00\nVan: \tFemke de Vries <femke@vries.example>\nAan: \tann@team.example\n\n\n\nHet werkt niet.\n"),
            "femke@vries.example", "Inloggen", "Het werkt niet.", "Graag oppakken."),
        ("attached message, Italian", attached("r1@team", "orig@rossi.example"),
            "carla@rossi.example", "Fattura sbagliata", "La fattura 42 è sbagliata.", "Carla needs a corrected invoice."),
    ]
}

fn user_email(doc: &Value, id: i64) -> String {
    let u = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .unwrap();
    u["identities"][0]["value"].as_str().unwrap().to_string()
}

async fn every_client_format_opens_the_customers_ticket(db: Db) {
    let h = desk(db, 1, &format!("{AGENTS}{ACK_FORWARDED}")).await;
    for (format, raw, customer, subject, text, note) in forwards() {
        let o = h.mail(&raw).await;
        assert_eq!(o.outcome, OutcomeKind::Created, "{format}: {o:?}");
        let ticket = o.ticket_id.unwrap();
        let doc = h.export().await;
        let t = doc["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == ticket)
            .unwrap()
            .clone();
        assert_eq!(t["subject"], subject, "{format}");
        assert_eq!(
            user_email(&doc, t["requester_id"].as_i64().unwrap()),
            customer,
            "{format}"
        );
        let c = comments_of(&doc, ticket);
        assert_eq!(c.len(), 2, "{format}: {c:?}");
        assert_eq!(
            (
                c[0]["role"].as_str(),
                c[0]["public"].as_bool(),
                c[0]["forwarded_by"].as_str()
            ),
            (Some("end_user"), Some(true), Some("ann@team.example")),
            "{format}"
        );
        assert!(
            c[0]["body"].as_str().unwrap().contains(text),
            "{format}: {}",
            c[0]["body"]
        );
        assert_eq!(c[0]["created_at"], T, "{format}: its own date");
        assert_eq!(
            (c[1]["role"].as_str(), c[1]["public"].as_bool()),
            (Some("agent"), Some(false)),
            "{format}"
        );
        assert_eq!(c[1]["body"].as_str().unwrap().trim(), note, "{format}");
        assert!(
            t["events"]
                .to_string()
                .contains("opened on the customer's behalf by ann@team.example"),
            "{format}"
        );
        if format.starts_with("attached") {
            let names: Vec<&str> = c[0]["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["filename"].as_str().unwrap())
                .collect();
            assert_eq!(
                names,
                ["fattura.pdf"],
                "the original's attachment on the customer's comment"
            );
            assert_eq!(c[0]["message_id"], "orig@rossi.example");
        }
        // A re-delivery of the agent's mail stores nothing more.
        let again = h.mail(&raw).await;
        assert_eq!(again.outcome, OutcomeKind::Duplicate, "{format}");
    }
    let doc = h.export().await;
    assert_eq!(doc["tickets"].as_array().unwrap().len(), 7);
    let orgs: Vec<String> = doc["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["domains"].to_string())
        .collect();
    assert!(orgs.iter().any(|o| o.contains("acme.example")), "{orgs:?}");
    assert!(
        orgs.iter().all(|o| !o.contains("team.example")),
        "no organization for the desk: {orgs:?}"
    );
    // One acknowledgement per ticket, each to the customer, by the
    // forwarded-request trigger.
    let n = doc["notifications"].as_array().unwrap();
    assert_eq!(n.len(), 7, "{n:?}");
    assert!(
        n.iter()
            .all(|x| x["trigger"] == "acknowledge a forwarded request"),
        "{n:?}"
    );
    assert!(n.iter().all(|x| x["to"] != "ann@team.example"), "{n:?}");
}

both_backends!(every_client_format_opens_the_customers_ticket);

async fn unsure_strangers_and_known_originals(db: Db) {
    let h: Harness = desk(
        db,
        1,
        &format!("{AGENTS}[trust]\nauthserv_ids = [\"mx.desk.test\"]\n{ACK_FORWARDED}"),
    )
    .await;
    let pass = "Authentication-Results: mx.desk.test; dmarc=pass header.from=team.example\n";
    // No address in the forwarded From line: the agent's ticket, flagged.
    let o = h.mail(&format!("{pass}{}", text_mail("ann@team.example", "Fwd: Call", "u1@team",
        "---------- Forwarded message ---------\nFrom: Alice Example\nDate: Tue, Dec 1, 2026 at 10:00 AM\nSubject: Call\n\ncall me\n"))).await;
    assert_eq!(o.outcome, OutcomeKind::Created);
    assert_eq!(
        o.flag.as_deref(),
        Some("forwarded message: its From line names no address")
    );
    let doc = h.export().await;
    assert_eq!(
        user_email(&doc, doc["tickets"][0]["requester_id"].as_i64().unwrap()),
        "ann@team.example"
    );
    // A forward of one agent's mail by another is not a customer's.
    let o = h
        .mail(
            &format!("{pass}{}", text_mail("ann@team.example", "Fwd: x", "u2@team",
        "---------- Forwarded message ---------\nFrom: <support@desk.test>\nSubject: x\n\nours\n")),
        )
        .await;
    assert_eq!(
        o.flag.as_deref(),
        Some("forwarded message: its sender is one of the desk's own addresses or agents")
    );
    // Not authenticated as the agent (no DMARC pass): an ordinary mail of
    // ann@team.example, not a forward on anyone's behalf.
    let gmail = forwards().remove(0).1.replace("g1@team", "u3@team");
    let o = h.mail(&gmail).await;
    let doc = h.export().await;
    let t = doc["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| Some(t["id"].as_i64().unwrap()) == o.ticket_id)
        .unwrap()
        .clone();
    assert_eq!(
        user_email(&doc, t["requester_id"].as_i64().unwrap()),
        "ann@team.example"
    );
    assert_eq!(t["comments"].as_array().unwrap().len(), 1);
    // A customer forwarding a colleague's mail is just the customer's mail.
    let o = h
        .mail(
            &gmail
                .replace("Ann <ann@team.example>", "Zoe <zoe@acme.example>")
                .replace("u3@team", "u4@acme"),
        )
        .await;
    let doc = h.export().await;
    let t = doc["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| Some(t["id"].as_i64().unwrap()) == o.ticket_id)
        .unwrap()
        .clone();
    assert_eq!(
        user_email(&doc, t["requester_id"].as_i64().unwrap()),
        "zoe@acme.example"
    );
    // The original is already stored (the customer wrote to us too): the
    // agent's forward adds only the agent's note to that ticket.
    let first = h
        .mail(&text_mail(
            "Carla Rossi <carla@rossi.example>",
            "Fattura sbagliata",
            "orig2@rossi.example",
            "La fattura 42 è sbagliata.\n",
        ))
        .await;
    let o = h
        .mail(&format!(
            "{pass}{}",
            attached("r2@team", "orig2@rossi.example")
        ))
        .await;
    assert_eq!(
        (o.outcome, o.ticket_id, o.public),
        (OutcomeKind::Appended, first.ticket_id, Some(false)),
        "{o:?}"
    );
    let doc = h.export().await;
    let c = comments_of(&doc, first.ticket_id.unwrap());
    assert_eq!(c.len(), 2);
    assert_eq!(
        (c[1]["role"].as_str(), c[1]["public"].as_bool()),
        (Some("agent"), Some(false))
    );
}

both_backends!(unsure_strangers_and_known_originals);

async fn forwarded_end_to_end_through_dovecot_and_smtp(db: Db) {
    let sink = SmtpSink::start();
    let top = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"support@desk.test\"\ntimeout = 5\n[trust]\nauthserv_ids = [\"mx.desk.test\"]\n{AGENTS}{ACK_FORWARDED}",
        sink.port
    );
    let env = Env::new(db, "address = \"support@desk.test\"", &top).await;
    let pass = "Authentication-Results: mx.desk.test; dmarc=pass header.from=team.example\n";
    let raw = format!("{pass}{}", forwards().remove(0).1);
    env.dc.deliver("support", "INBOX", &[raw.into_bytes()]);
    assert!(env.drain().await);
    assert_eq!(env.comments().await, 2);
    assert_eq!(
        intake::notify::drain_once(&env.db.store, &env.cfg)
            .await
            .unwrap(),
        1
    );
    let got = sink.wait_for(1, 10);
    assert_eq!(got[0].rcpt_tos, vec!["alice@acme.example"]);
    let subject = got[0].header("Subject").unwrap();
    assert!(
        subject.contains("We are on it: Printer on fire"),
        "{subject}"
    );
}

both_backends!(forwarded_end_to_end_through_dovecot_and_smtp);
