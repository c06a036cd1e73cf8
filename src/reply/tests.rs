use super::{of_html, of_text};

/// The visible text of a plain reply, or the whole text when nothing goes.
fn vis(text: &str) -> String {
    of_text(text).text.unwrap_or_else(|| text.to_string())
}

#[test]
fn a_reply_without_history_is_left_alone() {
    let v = of_text("Hello,\n\nthe printer is broken again.\n\nThanks, Ann");
    assert_eq!(v.text, None);
    assert!(!v.block);
}

/// Top-posted replies with their attribution line, one per language.
#[test]
fn attribution_lines_in_eleven_languages_go_with_their_quote() {
    let cases = [
        "On Tue, Mar 5, 2024 at 10:00 AM John Doe <john@example.com> wrote:",
        "Am Di., 5. März 2024 um 10:00 Uhr schrieb John Doe <john@example.com>:",
        "Le mar. 5 mars 2024 à 10:00, John Doe <john@example.com> a écrit :",
        "El mar, 5 mar 2024 a las 10:00, John Doe (<john@example.com>) escribió:",
        "Il giorno mar 5 mar 2024 alle ore 10:00 John Doe <john@example.com> ha scritto:",
        "Em ter., 5 de mar. de 2024 às 10:00, John Doe <john@example.com> escreveu:",
        "Op di 5 mrt 2024 om 10:00 schreef John Doe <john@example.com>:",
        "Den tis 5 mars 2024 kl 10:00 skrev John Doe <john@example.com>:",
        "wt., 5 mar 2024 o 10:00 John Doe <john@example.com> napisał(a):",
        "2024年3月5日(火) 10:00 John Doe <john@example.com>:",
        "John Doe <john@example.com> 于2024年3月5日周二 10:00写道：",
        "John Doe <john@example.com> 於 2024年3月5日 週二 上午10:00寫道：",
    ];
    for attribution in cases {
        let mail = format!("Fixed, thanks!\n\n{attribution}\n\n> The printer is broken.\n> Ann\n");
        assert_eq!(vis(&mail), "Fixed, thanks!", "{attribution}");
    }
}

#[test]
fn a_wrapped_gmail_attribution_goes_whole() {
    let mail = "Yes, Friday works.\n\nOn Tue, Mar 5, 2024 at 10:00 AM John Doe <\njohn@example.com> wrote:\n\n> Can we meet?\n";
    assert_eq!(vis(mail), "Yes, Friday works.");
    let mail = "Ja.\n\nAm Di., 5. März 2024 um 10:00 Uhr schrieb John Doe\n<john@example.com>:\n> Passt Freitag?\n";
    assert_eq!(vis(mail), "Ja.");
}

#[test]
fn answers_written_into_the_quote_are_kept() {
    let mail = "On Mon, Mar 4, 2024, Ann <ann@example.com> wrote:\n> Which model?\nThe LX-200.\n\n> Since when?\nSince Monday.\n";
    assert_eq!(vis(mail), "The LX-200.\n\nSince Monday.");
}

#[test]
fn outlook_original_message_and_header_blocks_end_the_text() {
    let mail = "Done.\n\n-----Original Message-----\nFrom: Ann <ann@example.com>\nSent: Monday, March 4, 2024 9:00 AM\nTo: Support\nSubject: Printer\n\nIt is broken.";
    let v = of_text(mail);
    assert_eq!(v.text.as_deref(), Some("Done."));
    assert!(v.block);
    for block in [
        "From: Ann <ann@example.com>\nSent: Monday, March 4, 2024 9:00 AM\nTo: Support\nSubject: Printer",
        "Von: Ann <ann@example.com>\nGesendet: Montag, 4. März 2024 09:00\nAn: Support\nBetreff: Drucker",
        "De : Ann <ann@example.com>\nEnvoyé : lundi 4 mars 2024 09:00\nÀ : Support\nObjet : Imprimante",
        "De: Ann <ann@example.com>\nEnviado el: lunes, 4 de marzo de 2024 9:00\nPara: Soporte\nAsunto: Impresora",
        "Da: Ann <ann@example.com>\nInviato: lunedì 4 marzo 2024 09:00\nA: Supporto\nOggetto: Stampante",
        "De: Ann <ann@example.com>\nEnviada em: segunda-feira, 4 de março de 2024 09:00\nPara: Suporte\nAssunto: Impressora",
        "Van: Ann <ann@example.com>\nVerzonden: maandag 4 maart 2024 09:00\nAan: Support\nOnderwerp: Printer",
        "Från: Ann <ann@example.com>\nSkickat: den 4 mars 2024 09:00\nTill: Support\nÄmne: Skrivare",
        "Od: Ann <ann@example.com>\nWysłano: poniedziałek, 4 marca 2024 09:00\nDo: Wsparcie\nTemat: Drukarka",
        "差出人: Ann <ann@example.com>\n送信日時: 2024年3月4日 9:00\n宛先: Support\n件名: プリンター",
        "发件人: Ann <ann@example.com>\n发送时间: 2024年3月4日 9:00\n收件人: Support\n主题: 打印机",
    ] {
        let mail = format!("Done.\n\n________________________________\n{block}\n\nIt is broken.");
        let v = of_text(&mail);
        assert_eq!(v.text.as_deref(), Some("Done."), "{block}");
        assert!(v.block, "{block}");
    }
}

#[test]
fn signatures_and_sent_from_lines_go() {
    assert_eq!(
        vis("See you then.\n\n-- \nAnn Smith\nACME Ltd, +1 555 0100\n"),
        "See you then."
    );
    for line in [
        "Sent from my iPhone",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
        "Enviado desde mi iPhone",
        "Inviato da iPhone",
        "Enviado do meu iPhone",
        "Verzonden vanaf mijn iPhone",
        "Skickat från min iPhone",
        "Wysłane z mojego iPhone",
        "iPhoneから送信",
        "发自我的iPhone",
        "Get Outlook for Android",
    ] {
        assert_eq!(
            vis(&format!("OK, thanks.\n\n{line}")),
            "OK, thanks.",
            "{line}"
        );
    }
}

#[test]
fn prose_that_mentions_writing_stays() {
    let mail = "Here is what I wrote:\nthe printer needs toner.\n\nBest";
    assert_eq!(of_text(mail).text, None);
    let mail = "Use these settings:\nFrom: your address\nTo: ours\n";
    assert_eq!(of_text(mail).text, None);
}

#[test]
fn a_bare_quote_keeps_its_whole_text() {
    let mail = "On Mon, Mar 4, 2024, Ann <ann@example.com> wrote:\n> Hello?\n";
    assert_eq!(of_text(mail).text, None);
}

#[test]
fn a_forward_separator_is_a_block() {
    let mail = "FYI\n\n---------- Forwarded message ---------\nFrom: Ann <ann@example.com>\nDate: Mon, Mar 4, 2024\nSubject: Hi\n\nHello";
    let v = of_text(mail);
    assert_eq!(v.text.as_deref(), Some("FYI"));
    assert!(v.block);
    let v = of_text("Look:\n\nBegin forwarded message:\n\nFrom: Ann <ann@example.com>\n");
    assert_eq!(v.text.as_deref(), Some("Look:"));
}

fn html_vis(html: &str) -> String {
    let text = mail_parser::decoders::html::html_to_text(html);
    of_html(html, &text).text.unwrap_or(text)
}

#[test]
fn html_quote_containers_of_each_client_go() {
    let gmail = r#"<div dir="ltr">Fixed now.</div><br><div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">On Mon, Mar 4, 2024 at 9:00 AM Ann &lt;<a href="mailto:ann@example.com">ann@example.com</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px"><div dir="ltr">Broken printer</div></blockquote></div>"#;
    assert_eq!(html_vis(gmail).trim(), "Fixed now.");
    let apple = r#"<html><body><div>Fixed now.</div><div><br><blockquote type="cite"><div>On 4 Mar 2024, at 09:00, Ann &lt;ann@example.com&gt; wrote:</div><br><div>Broken printer</div></blockquote></div></body></html>"#;
    assert_eq!(html_vis(apple).trim(), "Fixed now.");
    let apple_outside = r#"<div>Fixed now.</div><div><br><div>On 4 Mar 2024, at 09:00, Ann &lt;ann@example.com&gt; wrote:</div><br><blockquote type="cite"><div>Broken printer</div></blockquote></div>"#;
    assert_eq!(html_vis(apple_outside).trim(), "Fixed now.");
    let thunderbird = r#"<p>Fixed now.</p><div class="moz-cite-prefix">On 04.03.24 09:00, Ann wrote:<br></div><blockquote type="cite" cite="mid:1@example.com">Broken printer</blockquote><pre class="moz-signature" cols="72">-- 
Bob, ACME support</pre>"#;
    assert_eq!(html_vis(thunderbird).trim(), "Fixed now.");
    let outlook_web = r#"<div>Fixed now.</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Ann &lt;ann@example.com&gt;<br><b>Sent:</b> Monday, March 4, 2024 9:00 AM<br><b>Subject:</b> Printer</div><div>Broken printer</div>"#;
    assert_eq!(html_vis(outlook_web).trim(), "Fixed now.");
    let outlook_desktop = r#"<div class="WordSection1"><p class="MsoNormal">Fixed now.</p><div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal"><b>From:</b> Ann<br><b>Sent:</b> Monday<br><b>Subject:</b> Printer</p></div></div><p class="MsoNormal">Broken printer</p></div>"#;
    assert_eq!(html_vis(outlook_desktop).trim(), "Fixed now.");
}

#[test]
fn html_answers_between_quotes_are_kept() {
    let html = r#"<div>On Mon, Mar 4, 2024, Ann wrote:</div><blockquote type="cite">Which model?</blockquote><div>The LX-200.</div><blockquote type="cite">Since when?</blockquote><div>Since Monday.</div>"#;
    let v = html_vis(html);
    assert!(
        v.contains("The LX-200.") && v.contains("Since Monday."),
        "{v}"
    );
    assert!(!v.contains("Which model") && !v.contains("wrote"), "{v}");
}

#[test]
fn unclosed_and_nested_containers_stay_linear_and_safe() {
    let html = format!(
        "<div>Answer</div>{}",
        "<blockquote type=\"cite\"><div>x</div>".repeat(20_000)
    );
    assert_eq!(html_vis(&html).trim(), "Answer");
    let html = "<div>Answer</div><blockquote type=\"cite\"><!-- </blockquote> -->q</blockquote><p>after</p>";
    let v = html_vis(html);
    assert!(
        v.contains("Answer") && v.contains("after") && !v.contains('q'),
        "{v}"
    );
    let many = format!("{}end", "x wrote:\n".repeat(50_000));
    assert!(of_text(&many).text.is_none());
}

/// What customers write that only looks like history stays visible.
#[test]
fn sentences_that_look_like_history_stay() {
    for mail in [
        "Hi,\nI wrote down the error (code 0x80070005):\nThe installer stops.",
        "Wie in Ticket 4711 beschrieben:\nder Drucker druckt nicht.",
        "See log:\n--- error message ---\nERROR 42",
        "Please change my booking:\nFrom: Berlin\nTo: Munich\nDate: 12 May\nPassengers: 2",
        "Il pacco:\nDa: Roma\nA: Milano\nData: 12 maggio\nGrazie",
        "Sent with tracking number 123 but it never arrived.\nPlease check.",
        "Inviato da Marco ieri, non è arrivato.\nGrazie",
    ] {
        assert_eq!(of_text(mail).text, None, "{mail}");
    }
    let html = r#"<div>Order:</div><div style="border:none;border-top:solid #ccc 1px">Order details: 3 chairs</div><div>Thanks</div>"#;
    let v = html_vis(html);
    assert!(v.contains("3 chairs") && v.contains("Thanks"), "{v}");
}

/// A forward below an unquoted history or a signature is still seen.
#[test]
fn a_forward_after_an_early_end_is_still_a_block() {
    let mail = "ann@acme.example wrote:\n\n---------- Forwarded message ---------\nFrom: Ann <ann@acme.example>\nDate: Mon, 4 Mar 2024\nSubject: x\n\ntext";
    assert!(of_text(mail).block);
    let mail = "FYI\n-- \nBob\n\n-----Original Message-----\nFrom: Ann <ann@acme.example>\nSent: Monday\nSubject: x\n\ntext";
    let v = of_text(mail);
    assert!(v.block);
    assert_eq!(v.text.as_deref(), Some("FYI"));
}

/// Gmail: answers written between quoted parts stay, the quote and its
/// attribution go.
#[test]
fn gmail_inline_answers_stay() {
    let html = r#"<div>See inline.</div><div class="gmail_quote"><div class="gmail_attr">On Mon, Mar 4, 2024 at 9:00 AM Ann wrote:<br></div><blockquote class="gmail_quote">Which model?</blockquote><div>The LX-200.</div></div>"#;
    let v = html_vis(html);
    assert!(
        v.contains("See inline.") && v.contains("The LX-200."),
        "{v}"
    );
    assert!(!v.contains("Which model") && !v.contains("wrote"), "{v}");
}
