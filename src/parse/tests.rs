//! Unit tests of [`super::parse`] on small hand-written mails.

use super::*;

const LIMIT: usize = 1 << 20;

fn ok(raw: &str) -> ParsedMail {
    parse(raw.as_bytes(), LIMIT).expect("parses")
}

const NO_ID: &str = "From: Ann Example <ann@example.com>\nTo: support@desk.example\n\
    Subject: Invoice 42 is wrong\nDate: Tue, 4 Mar 2025 09:15:00 +0000\n\
    Content-Type: text/plain; charset=utf-8\n\nThe total is off by 10 EUR.\n";

#[test]
fn parse_generated_id_is_stable_across_deliveries_and_line_endings() {
    let a = format!(
        "Return-Path: <ann@example.com>\nDelivered-To: support@desk.example\n\
         Received: from mx1.example.com by imap1; Tue, 4 Mar 2025 09:15:02 +0000\n{NO_ID}"
    );
    let b = format!(
        "Return-Path: <ann@example.com>\nDelivered-To: billing@desk.example\n\
         X-Original-To: billing@desk.example\n\
         Received: from mx2.example.com by imap2;\n\tTue, 4 Mar 2025 09:15:07 +0000\n\
         Received: from relay.example.com by mx2.example.com; Tue, 4 Mar 2025 09:15:05 +0000\n\
         Authentication-Results: mx2.example.com; spf=pass\n{NO_ID}"
    )
    .replace('\n', "\r\n");
    let (pa, pb) = (ok(&a), ok(&b));
    assert!(pa.message_id_generated && pb.message_id_generated);
    assert_eq!(pa.message_id, pb.message_id);
    assert!(pa.message_id.ends_with("@generated.intake"));
    // A different mail gets a different id.
    let other = ok(&a.replace("off by 10", "off by 20"));
    assert_ne!(other.message_id, pa.message_id);
}

#[test]
fn parse_keeps_a_real_message_id() {
    let m = ok(&format!("Message-ID:  <Abc.123@Example.COM> \n{NO_ID}"));
    assert_eq!(m.message_id, "Abc.123@Example.COM");
    assert!(!m.message_id_generated);
}

#[test]
fn parse_sender_falls_back_in_order() {
    let base = "To: support@desk.example\nSubject: hi\n\nbody\n";
    let m = ok(&format!(
        "From: undisclosed\nSender: Bob <bob@example.org>\n{base}"
    ));
    assert_eq!(m.sender_source, SenderSource::Sender);
    assert_eq!(m.sender.as_ref().unwrap().address, "bob@example.org");
    let m = ok(&format!(
        "From: <>\nReply-To: a@x.example, b@y.example\n{base}"
    ));
    assert_eq!(m.sender_source, SenderSource::ReplyTo);
    assert_eq!(m.sender.unwrap().address, "a@x.example");
    let m = ok(&format!("Return-Path: <Carl@Example.net>\n{base}"));
    assert_eq!(m.sender_source, SenderSource::ReturnPath);
    assert_eq!(m.sender.unwrap().address, "Carl@Example.net");
    let err = parse(
        format!("Return-Path: <nobody>\nFrom: nobody\n{base}").as_bytes(),
        LIMIT,
    );
    assert!(matches!(err, Err(ParseError::NoSender)), "{err:?}");
    // Mail-system messages without any address still parse, with no sender.
    for system in [
        "Return-Path: <>\nFrom: nobody\n",
        "From: Mail Delivery Subsystem <MAILER-DAEMON>\n",
        "From: <>\n",
    ] {
        let m = ok(&format!("{system}{base}"));
        assert!(m.sender.is_none(), "{system}");
        assert_eq!(m.sender_source, SenderSource::ReturnPath);
    }
    let m = ok(&format!(
        "From: broken@, =?utf-8?q?J=C3=BCrgen?= <JUERGEN@Example.de>\n{base}"
    ));
    assert_eq!(m.sender_source, SenderSource::From);
    let s = m.sender.unwrap();
    assert_eq!(s.address, "JUERGEN@Example.de");
    assert_eq!(s.name.as_deref(), Some("Jürgen"));
}

#[test]
fn parse_limits_and_empty_input() {
    let raw = NO_ID.as_bytes();
    assert!(matches!(
        parse(raw, 10),
        Err(ParseError::TooLarge { size, limit: 10 }) if size == raw.len()
    ));
    assert!(matches!(parse(b"", LIMIT), Err(ParseError::Empty)));
    assert!(matches!(parse(b" \r\n\r\n", LIMIT), Err(ParseError::Empty)));
    assert!(matches!(
        parse(b"just some words\n", LIMIT),
        Err(ParseError::Unparseable(_) | ParseError::NoSender)
    ));
}

#[test]
fn parse_raw_8bit_headers_use_the_declared_body_charset() {
    let mut raw =
        b"From: \xf7\xc1\xd3\xd1 <vasya@example.ru>\nSubject: \xf0\xd2\xc9\xd7\xc5\xd4\n".to_vec();
    raw.extend_from_slice(
        b"Content-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\xd7\xc5\xd4!\n",
    );
    let m = parse(&raw, LIMIT).unwrap();
    assert_eq!(m.subject, "Привет");
    assert_eq!(m.sender.unwrap().name.as_deref(), Some("Вася"));
    assert_eq!(m.text.trim(), "Привет!");
}

#[test]
fn parse_undeclared_8bit_body_falls_back_to_windows_1252() {
    let raw = b"From: a@example.fr\nSubject: x\n\nCaf\xe9 cr\xe8me \x80 5\n";
    let m = parse(raw, LIMIT).unwrap();
    assert_eq!(m.text.trim(), "Café crème € 5");
    let labelled_utf8 =
        b"From: a@example.fr\nContent-Type: text/plain; charset=utf-8\n\nna\xefve\n";
    assert_eq!(parse(labelled_utf8, LIMIT).unwrap().text.trim(), "naïve");
}

#[test]
fn parse_references_keep_the_root_and_the_last_ones() {
    let refs: Vec<String> = (0..80).map(|i| format!("<r{i}@x.example>")).collect();
    let m = ok(&format!(
        "From: a@x.example\nIn-Reply-To: <r79@x.example>\nReferences: {}\n\nb\n",
        refs.join("\n ")
    ));
    assert_eq!(m.references.len(), MAX_REFERENCES);
    assert_eq!(
        m.references.first().map(String::as_str),
        Some("r0@x.example")
    );
    assert_eq!(m.references[1], "r31@x.example");
    assert_eq!(
        m.references.last().map(String::as_str),
        Some("r79@x.example")
    );
    assert_eq!(m.in_reply_to, vec!["r79@x.example"]);
}

#[test]
fn parse_text_is_bounded() {
    let body = "é".repeat(MAX_TEXT_BYTES);
    let raw = format!("From: a@x.example\nContent-Type: text/plain; charset=utf-8\n\n{body}\n");
    let m = parse(raw.as_bytes(), 4 * LIMIT).unwrap();
    assert!(m.text.len() <= MAX_TEXT_BYTES);
    assert!(m.text.len() > MAX_TEXT_BYTES - 4);
}

#[test]
fn parse_class_headers_are_collected() {
    let m = ok(
        "From: a@x.example\nReturn-Path: <>\nAuto-Submitted: auto-replied\n\
        X-Loop: one\nX-Loop: two\nX-Intake-Loop: desk.example\nPrecedence: bulk\n\
        List-Id: <list.x.example>\nContent-Type: multipart/report; report-type=Delivery-Status;\n\
        \tboundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nfailed\n--b\n\
        Content-Type: message/delivery-status\n\nStatus: 5.1.1\n--b--\n",
    );
    let h = &m.headers;
    assert_eq!(h.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(h.return_path.as_deref(), Some("<>"));
    assert_eq!(h.x_loop, vec!["one", "two"]);
    assert_eq!(h.intake_loop, vec!["desk.example"]);
    assert_eq!(h.precedence.as_deref(), Some("bulk"));
    assert_eq!(h.list_id.as_deref(), Some("<list.x.example>"));
    assert_eq!(h.content_type, "multipart/report");
    assert_eq!(h.report_type.as_deref(), Some("delivery-status"));
    assert!(h.has_delivery_status_part);
    assert_eq!(m.text.trim(), "failed");
}

#[test]
fn parse_survives_garbage() {
    for raw in [
        &b"\x00\x01\x02\xff"[..],
        b"From:",
        b"From: a@b\nContent-Type: multipart/mixed; boundary=x\n\n--x\n--x\n--x--",
        b"From: a@b\nContent-Type: message/rfc822\n\nFrom: c@d\nContent-Type: message/rfc822\n\n",
        b"From: a@b\nContent-Transfer-Encoding: base64\n\n!!!!not base64$$$\n",
    ] {
        let _ = parse(raw, LIMIT);
    }
}

#[test]
fn parse_deep_nesting_and_huge_html_do_not_hang_or_overflow() {
    // "MIME of death": thousands of nested multiparts and attached messages.
    let mut raw = String::from("From: a@x.example\nSubject: nested\n");
    for i in 0..5000 {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\n\ndeep inside\n");
    let m = parse(raw.as_bytes(), LIMIT).expect("parses");
    assert_eq!(m.subject, "nested");
    let mut nested = String::from("From: a@x.example\nSubject: rfc822\n");
    for _ in 0..2000 {
        nested.push_str("Content-Type: message/rfc822\n\nFrom: b@x.example\n");
    }
    nested.push_str("\nbottom\n");
    assert!(parse(nested.as_bytes(), LIMIT).is_ok());
    // A 10k-link HTML body converts to text in bounded time.
    let links: String = (0..10_000)
        .map(|i| format!("<a href=\"https://x.example/{i}\">link {i}</a><br>"))
        .collect();
    let html = format!(
        "From: a@x.example\nContent-Type: text/html\n\n<html><body>{links}</body></html>\n"
    );
    let started = std::time::Instant::now();
    let m = parse(html.as_bytes(), LIMIT).expect("parses");
    assert!(m.text.contains("link 9999"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn parse_recovers_the_sender_of_a_broken_from() {
    let base = "To: support@desk.example\nSubject: hi\n\nbody\n";
    let sender = |head: &str| {
        let m = ok(&format!("{head}{base}"));
        (m.sender.map(|s| s.address), m.sender_source)
    };
    use SenderSource::*;
    for (head, address, source) in [
        // A quoted local part is a well-formed From, kept as written.
        (
            "From: \"John Doe\"@example.com\n",
            "\"John Doe\"@example.com",
            From,
        ),
        (
            "From: Joe <\"John Doe\"@example.com>\n",
            "\"John Doe\"@example.com",
            From,
        ),
        // Broken: the address a careful reader sees, recorded as recovered.
        (
            "From: Test test@example.com\n",
            "test@example.com",
            FromText,
        ),
        (
            "From: Joe <joe @ example.com>\n",
            "joe@example.com",
            FromText,
        ),
        // Nothing certain in From: Reply-To before Sender, then Return-Path.
        (
            "From: <john doe@example.com>\nSender: s@example.org\nReply-To: r@example.org\n",
            "r@example.org",
            ReplyTo,
        ),
        (
            "From: postmaster@xxx.com@xxx.com\nReturn-Path: <rp@example.net>\n",
            "rp@example.net",
            ReturnPath,
        ),
    ] {
        assert_eq!(sender(head), (Some(address.to_string()), source), "{head}");
    }
    // Two `@` are never an address, wherever they are.
    let err = parse(
        format!("From: alice@xxx.com@xxx.com\n{base}").as_bytes(),
        LIMIT,
    );
    assert!(matches!(err, Err(ParseError::NoSender)), "{err:?}");
}

#[test]
fn parse_detects_the_charset_of_raw_header_bytes() {
    // A raw GB2312 subject in a mail that declares nothing.
    let mut raw = b"From: a@b.example\nSubject: ".to_vec();
    raw.extend_from_slice(&[
        0xd7, 0xaa, 0xb7, 0xa2, 0xa3, 0xba, 0xb9, 0xd8, 0xd3, 0xda, 0xbb, 0xe1, 0xd2, 0xe9, 0xb5,
        0xc4, 0xcd, 0xa8, 0xd6, 0xaa,
    ]);
    raw.extend_from_slice(b"\n\nbody\n");
    assert_eq!(parse(&raw, LIMIT).unwrap().subject, "转发：关于会议的通知");
    // A raw Shift_JIS subject in a mail whose body is ISO-2022-JP.
    let mut raw = b"From: a@b.example\nSubject: ".to_vec();
    raw.extend_from_slice(&[0x83, 0x63, 0x81, 0x5b, 0x83, 0x8b]);
    raw.extend_from_slice(
        b"\nContent-Type: text/plain; charset=ISO-2022-JP\n\n\x1b$B%D!<%k\x1b(B\n",
    );
    let m = parse(&raw, LIMIT).unwrap();
    assert_eq!(m.subject, "ツール");
    assert!(m.text.contains("ツール"), "{:?}", m.text);
    // An encoded word labelled ISO-2022-JP carrying Shift_JIS bytes.
    let m = ok("From: a@b.example\nSubject: =?ISO-2022-JP?B?g2OBW4OL?=\n\nbody\n");
    assert_eq!(m.subject, "ツール");
}

/// Golden cases: a raw 8-bit subject in each of these charsets (bytes made
/// by encoding_rs), in a mail that declares nothing (the detector alone) and
/// in one whose text part declares that charset.
#[test]
fn parse_reads_raw_subjects_in_legacy_charsets() {
    let cases = [
        ("gbk", "关于发票的问题，请尽快回复"),
        ("big5", "關於發票的問題，請盡快回覆"),
        ("shift_jis", "請求書についてのお問い合わせ"),
        ("euc-jp", "請求書についてのお問い合わせ"),
        ("euc-kr", "청구서 관련 문의드립니다"),
        ("koi8-r", "Вопрос по счёту за декабрь"),
        ("windows-1251", "Вопрос по счёту за декабрь"),
        ("windows-1250", "Pytanie dotyczące faktury za grudzień"),
        ("windows-1252", "Question à propos de la facture reçue"),
        ("windows-1253", "Ερώτηση σχετικά με το τιμολόγιο"),
    ];
    for (charset, text) in cases {
        let encoding = encoding_rs::Encoding::for_label(charset.as_bytes()).unwrap();
        let (bytes, _, unmappable) = encoding.encode(text);
        assert!(!unmappable, "{charset}");
        for declared in [None, Some(charset)] {
            let mut raw = b"From: a@b.example\nSubject: ".to_vec();
            raw.extend_from_slice(&bytes);
            raw.extend_from_slice(b"\nMIME-Version: 1.0\n");
            if let Some(c) = declared {
                raw.extend_from_slice(
                    format!("Content-Type: text/plain; charset={c}\n").as_bytes(),
                );
            }
            raw.extend_from_slice(b"\nbody\n");
            let m = parse(&raw, LIMIT).unwrap();
            assert_eq!(m.subject, text, "{charset}, declared {declared:?}");
        }
    }
}
