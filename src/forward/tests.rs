//! Forwards as real clients write them (text layouts copied from Gmail,
//! Outlook/Exchange, Apple Mail and Thunderbird in several languages).

use super::*;

/// 2026-12-01 10:00:00 UTC.
const T: i64 = 1_796_119_200_000;

fn parsed(subject: &str, body: &str) -> ParsedMail {
    let raw = format!(
        "From: Ann <ann@team.example>\nTo: support@desk.test\nSubject: {subject}\nMessage-ID: <f@team>\nContent-Type: text/plain; charset=utf-8\n\n{body}"
    );
    crate::parse::parse(raw.as_bytes(), 1 << 20).unwrap()
}

fn original(f: Option<Forward>) -> Original {
    match f {
        Some(Forward::Original(o)) => *o,
        other => panic!("no original: {other:?}"),
    }
}

#[test]
fn gmail_in_four_languages() {
    for (subject, marker, from, date, subj) in [
        (
            "Fwd: Printer on fire",
            "---------- Forwarded message ---------",
            "From",
            "Date",
            "Subject",
        ),
        (
            "WG: Printer on fire",
            "---------- Weitergeleitete Nachricht ---------",
            "Von",
            "Date",
            "Subject",
        ),
        (
            "TR: Printer on fire",
            "---------- Message transféré ---------",
            "De",
            "Date",
            "Subject",
        ),
        (
            "I: Printer on fire",
            "---------- Messaggio inoltrato ---------",
            "Da",
            "Date",
            "Subject",
        ),
    ] {
        let body = format!(
            "Can you take this one?\n\n{marker}\n{from}: Alice Example <alice@acme.example>\n{date}: Tue, Dec 1, 2026 at 10:00 AM\n{subj}: Printer on fire\nTo: <ann@team.example>\n\n\nHello,\nmy printer is on fire.\nAlice\n"
        );
        let o = original(find(&parsed(subject, &body), 1 << 20));
        assert_eq!(o.client, "gmail", "{subject}");
        assert_eq!(o.from.address, "alice@acme.example");
        assert_eq!(o.from.name.as_deref(), Some("Alice Example"));
        assert_eq!(o.subject, "Printer on fire");
        assert_eq!(o.date, Some(T));
        assert_eq!(o.text, "Hello,\nmy printer is on fire.\nAlice");
        assert_eq!(o.note, "Can you take this one?");
    }
}

#[test]
fn outlook_header_blocks_in_seven_languages() {
    for (subject, from, sent, to, subj, when) in [
        (
            "FW: Invoice",
            "From",
            "Sent",
            "To",
            "Subject",
            "Tuesday, December 1, 2026 10:00 AM",
        ),
        (
            "WG: Invoice",
            "Von",
            "Gesendet",
            "An",
            "Betreff",
            "Dienstag, 1. Dezember 2026 11:00 +0100",
        ),
        (
            "TR : Invoice",
            "De",
            "Envoyé",
            "À",
            "Objet",
            "mardi 1 décembre 2026 10:00",
        ),
        (
            "RV: Invoice",
            "De",
            "Enviado el",
            "Para",
            "Asunto",
            "martes, 1 de diciembre de 2026 10:00",
        ),
        (
            "I: Invoice",
            "Da",
            "Inviato",
            "A",
            "Oggetto",
            "martedì 1 dicembre 2026 10:00",
        ),
        (
            "ENC: Invoice",
            "De",
            "Enviado",
            "Para",
            "Assunto",
            "terça-feira, 1 de dezembro de 2026 10:00",
        ),
        (
            "Doorst: Invoice",
            "Van",
            "Verzonden",
            "Aan",
            "Onderwerp",
            "dinsdag 1 december 2026 10:00",
        ),
    ] {
        let body = format!(
            "Please handle.\n\nAnn\n\n________________________________\n{from}: Alice Example <alice@acme.example>\n{sent}: {when}\n{to}: Ann <ann@team.example>\n{subj}: Invoice 42 is wrong\n\nThe total is twice what we ordered.\n"
        );
        let o = original(find(&parsed(subject, &body), 1 << 20));
        assert_eq!(
            (
                o.client,
                o.from.address.as_str(),
                o.subject.as_str(),
                o.date
            ),
            (
                "outlook",
                "alice@acme.example",
                "Invoice 42 is wrong",
                Some(T)
            ),
            "{subject}"
        );
        assert_eq!(o.note, "Please handle.\n\nAnn");
        assert_eq!(o.text, "The total is twice what we ordered.");
    }
    // The old Outlook separator with `[mailto:]`.
    let body = "fyi\n\n-----Original Message-----\nFrom: Alice Example [mailto:alice@acme.example]\nSent: Tuesday, December 01, 2026 10:00 AM\nTo: Ann\nSubject: RE: Invoice\n\nStill wrong.\n";
    let o = original(find(&parsed("FW: RE: Invoice", body), 1 << 20));
    assert_eq!(
        (o.from.address.as_str(), o.subject.as_str(), o.text.as_str()),
        ("alice@acme.example", "Invoice", "Still wrong.")
    );
    // The same block in a reply (no forward prefix) is quoted history.
    assert!(find(&parsed("RE: Invoice", body), 1 << 20).is_none());
}

#[test]
fn apple_mail_and_thunderbird() {
    let apple = "See below.\n\nBegin forwarded message:\n\nFrom: Alice Example <alice@acme.example>\nSubject: Login broken\nDate: 1 December 2026 at 10:00:00 GMT\nTo: ann@team.example\n\nI cannot log in since Monday.\n";
    let o = original(find(&parsed("Fwd: Login broken", apple), 1 << 20));
    assert_eq!((o.client, o.date), ("apple", Some(T)));
    assert_eq!(o.text, "I cannot log in since Monday.");
    let de = "Anfang der weitergeleiteten Nachricht:\n\nVon: Alice <alice@acme.example>\nBetreff: Login\nDatum: 1. Dezember 2026 um 11:00:00 MEZ\nAn: ann@team.example\n\nGeht nicht.\n";
    let o = original(find(&parsed("WG: Login", de), 1 << 20));
    assert_eq!(
        (o.client, o.from.address.as_str()),
        ("apple", "alice@acme.example")
    );
    assert_eq!(o.note, "");
    let tb = "\n\n\n-------- Forwarded Message --------\nSubject: \tLogin broken\nDate: \tTue, 1 Dec 2026 10:00:00 +0000\nFrom: \tAlice Example <alice@acme.example>\nTo: \tann@team.example\n\n\n\nI cannot log in.\n";
    let o = original(find(&parsed("Fwd: Login broken", tb), 1 << 20));
    assert_eq!(
        (o.client, o.date, o.text.as_str()),
        ("thunderbird", Some(T), "I cannot log in.")
    );
    let nl = "-------- Doorgestuurd bericht --------\nOnderwerp: \tInloggen\nDatum: \t01.12.2026 10:00\nVan: \tAlice <alice@acme.example>\n\nHet werkt niet.\n";
    let o = original(find(&parsed("Doorst: Inloggen", nl), 1 << 20));
    assert_eq!(
        (o.client, o.subject.as_str(), o.date),
        ("thunderbird", "Inloggen", Some(T))
    );
}

#[test]
fn attached_messages() {
    let inner = "From: Alice Example <alice@acme.example>\nTo: ann@team.example\nSubject: Re: Printer\nDate: Tue, 1 Dec 2026 10:00:00 +0000\nMessage-ID: <orig@acme.example>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=in\n\n--in\nContent-Type: text/plain\n\nIt is on fire.\n--in\nContent-Type: application/pdf; name=photo.pdf\nContent-Disposition: attachment; filename=photo.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--in--\n";
    let raw = format!("From: ann@team.example\nTo: support@desk.test\nSubject: Fwd: Printer\nMessage-ID: <f@team>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=out\n\n--out\nContent-Type: text/plain\n\nA customer's mail.\n--out\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename=orig.eml\n\n{inner}\n--out\nContent-Type: text/plain; name=notes.txt\nContent-Disposition: attachment; filename=notes.txt\n\nmine\n--out--\n");
    let mail = crate::parse::parse(raw.as_bytes(), 1 << 20).unwrap();
    let o = original(find(&mail, 1 << 20));
    assert_eq!(o.client, "attached");
    assert_eq!(o.from.address, "alice@acme.example");
    assert_eq!(o.subject, "Printer");
    assert_eq!(o.date, Some(T));
    assert_eq!(o.message_id.as_deref(), Some("orig@acme.example"));
    assert_eq!(o.text.trim(), "It is on fire.");
    assert_eq!(o.attachments.len(), 1);
    assert_eq!(o.attachments[0].filename, "photo.pdf");
    assert_eq!(o.note, "A customer's mail.");
    assert_eq!(o.note_attachments.len(), 1);
    assert_eq!(o.note_attachments[0].filename, "notes.txt");
    assert!(o.raw.unwrap().starts_with(b"From: Alice"));
}

#[test]
fn unsure_is_never_a_guess() {
    // An Exchange-internal From without an address.
    let body = "---------- Forwarded message ---------\nFrom: Alice Example\nDate: Tue, Dec 1, 2026 at 10:00 AM\nSubject: x\n\ntext\n";
    assert!(matches!(
        find(&parsed("Fwd: x", body), 1 << 20),
        Some(Forward::Unsure(NO_ADDRESS))
    ));
    // A forward prefix and nothing forwarded.
    assert!(matches!(
        find(&parsed("Fwd: x", "see attached (forgot it)"), 1 << 20),
        Some(Forward::Unsure(NO_BLOCK))
    ));
    // Plain mail, and a reply quoting its history: nothing.
    assert!(find(&parsed("Printer", "it broke\nFrom: me\n"), 1 << 20).is_none());
    assert!(find(
        &parsed("Re: Printer", "ok\n\nOn Tue, Alice wrote:\n> From: x@y.z\n"),
        1 << 20
    )
    .is_none());
}

#[test]
fn subject_prefixes() {
    for (s, out, fwd) in [
        ("Fwd: Printer", "Printer", true),
        ("FW: RE: Printer", "Printer", true),
        ("Re: Fwd: Printer", "Printer", true),
        ("TR : Imprimante", "Imprimante", true),
        ("Doorst: Printer", "Printer", true),
        ("RE: Printer", "Printer", false),
        ("Printer: broken", "Printer: broken", false),
        ("Meeting at 10:00", "Meeting at 10:00", false),
    ] {
        assert_eq!(strip_prefixes(s), (out.to_string(), fwd), "{s}");
    }
}

#[test]
fn html_only_forwards_read_through_the_text_conversion() {
    let raw = "From: ann@team.example\nTo: support@desk.test\nSubject: FW: Invoice\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>Please handle.</p><div style=\"border:none;border-top:solid #E1E1E1 1.0pt\"><p><b>From:</b> Alice Example &lt;<a href=\"mailto:alice@acme.example\">alice@acme.example</a>&gt;<br><b>Sent:</b> Tuesday, December 1, 2026 10:00 AM<br><b>To:</b> Ann &lt;ann@team.example&gt;<br><b>Subject:</b> Invoice 42</p></div><p>The total is wrong.</p></body></html>\n";
    let mail = crate::parse::parse(raw.as_bytes(), 1 << 20).unwrap();
    let o = original(find(&mail, 1 << 20));
    assert_eq!(
        (
            o.client,
            o.from.address.as_str(),
            o.subject.as_str(),
            o.date
        ),
        ("outlook", "alice@acme.example", "Invoice 42", Some(T)),
        "{:?}",
        mail.text
    );
    assert!(o.text.contains("The total is wrong."), "{:?}", o.text);
    assert_eq!(o.note, "Please handle.");
}
