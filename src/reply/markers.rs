//! What forwarding and replying mail clients write: the subject prefixes
//! and separator lines of a forward (English, German, French, Spanish,
//! Italian, Portuguese, Dutch), and the field names of the header block
//! that introduces a forwarded or quoted message (those seven languages and
//! Swedish, Polish, Japanese and Chinese).

/// Subject prefixes of a forward (compared case-insensitively, before a
/// colon): Fwd/Fw (en), WG (de), TR (fr), RV (es), I (it), ENC (pt),
/// Doorst (nl), and the spelled-out forms some clients use.
const FORWARD_PREFIXES: &[&str] = &[
    "fwd", "fw", "wg", "tr", "rv", "i", "inoltro", "enc", "doorst", "wtr",
];

/// Reply prefixes that may precede a forward prefix (`Re: Fwd: …`).
const REPLY_PREFIXES: &[&str] = &["re", "aw", "sv", "ref", "res", "antw"];

/// The subject without leading forward (and reply) prefixes, and whether it
/// had a forward prefix. Linear in the subject's length.
pub fn strip_prefixes(subject: &str) -> (String, bool) {
    let mut rest = subject.trim();
    let mut forwarded = false;
    // Only `word:` prefixes are stripped; a `[tag]` is subject text.
    while let Some((word, after)) = rest.split_once(':') {
        let w = word.trim().to_lowercase();
        if w.len() > 8 {
            break;
        }
        if FORWARD_PREFIXES.contains(&w.as_str()) {
            forwarded = true;
        } else if !REPLY_PREFIXES.contains(&w.as_str()) {
            break;
        }
        rest = after.trim_start();
    }
    (rest.to_string(), forwarded)
}

/// How a separator line introduces a forwarded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separator {
    /// Gmail, Thunderbird, Apple Mail: says "forwarded" in words.
    Forwarded(&'static str),
    /// Outlook's `-----Original Message-----`: also written on replies, so
    /// it counts only with a forward prefix in the subject.
    Original,
}

/// Gmail (`---------- Forwarded message ---------`), Thunderbird
/// (`-------- Forwarded Message --------`) and Apple Mail (`Begin
/// forwarded message:`), lower-cased, in seven languages.
const FORWARDED: &[(&str, &str)] = &[
    ("forwarded message", "gmail"),
    ("weitergeleitete nachricht", "gmail"),
    ("message transféré", "gmail"),
    ("mensaje reenviado", "gmail"),
    ("messaggio inoltrato", "gmail"),
    ("mensagem encaminhada", "gmail"),
    ("doorgestuurd bericht", "gmail"),
    ("begin forwarded message", "apple"),
    ("anfang der weitergeleiteten nachricht", "apple"),
    ("beginn der weitergeleiteten nachricht", "apple"),
    ("début du message réexpédié", "apple"),
    ("début du message transféré", "apple"),
    ("inicio del mensaje reenviado", "apple"),
    ("comienzo del mensaje reenviado", "apple"),
    ("inizio messaggio inoltrato", "apple"),
    ("início da mensagem reencaminhada", "apple"),
    ("início da mensagem encaminhada", "apple"),
    ("begin doorgestuurd bericht", "apple"),
    ("doorgestuurd bericht begint", "apple"),
];

/// Outlook's separator, in seven languages.
const ORIGINAL: &[&str] = &[
    "original message",
    "ursprüngliche nachricht",
    "message d'origine",
    "mensaje original",
    "messaggio originale",
    "mensagem original",
    "oorspronkelijk bericht",
];

/// Whether a line (as written, trimmed) is a forward separator.
pub fn separator(line: &str) -> Option<Separator> {
    let l = line.trim();
    if l.len() > 80 {
        return None;
    }
    let inner = l.trim_matches(|c: char| c == '-' || c == ' ' || c == '_' || c == ':');
    let lower = inner.to_lowercase();
    let dashed = l.starts_with("---");
    for (words, client) in FORWARDED {
        // Gmail and Thunderbird dash their line; Apple Mail ends it with a colon.
        if lower == *words && (dashed || l.ends_with(':')) {
            let client = match (*client, l.starts_with("---------- ")) {
                ("gmail", false) => "thunderbird",
                (c, _) => c,
            };
            return Some(Separator::Forwarded(client));
        }
    }
    (dashed && ORIGINAL.contains(&lower.as_str())).then_some(Separator::Original)
}

/// What a field of a forwarded header block says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    From,
    Date,
    /// A date a mail client names as when the quoted message was sent
    /// (`Sent:`, `Gesendet:`, …): a mail header, never a form's field.
    Sent,
    Subject,
    /// To, Cc and the like: part of the block, not needed.
    Other,
}

/// The field a header-block name stands for (Outlook, Gmail, Apple Mail
/// and Thunderbird spellings, in eleven languages), compared lower-cased.
pub fn field(name: &str) -> Option<Field> {
    let n = name.trim().trim_matches('*').trim().to_lowercase();
    Some(match n.as_str() {
        "from" | "von" | "de" | "da" | "van" | "från" | "od" | "差出人" | "发件人" | "寄件者"
        | "寄件人" | "fra" | "от" | "lähettäjä" => Field::From,
        // A mail client's "sent", as opposed to a generic "date".
        "sent"
        | "gesendet"
        | "envoyé"
        | "envoye"
        | "enviado"
        | "enviado el"
        | "enviada"
        | "enviada em"
        | "inviato"
        | "verzonden"
        | "skickat"
        | "wysłano"
        | "wysłane"
        | "送信日時"
        | "发送时间"
        | "寄件日期"
        | "sendt"
        | "отправлено"
        | "lähetetty" => Field::Sent,
        "date" | "datum" | "data" | "fecha" | "envoyé le" | "日付" | "日期" | "時間" | "dato"
        | "message du" | "дата" | "päivämäärä" => Field::Date,
        "subject" | "betreff" | "objet" | "asunto" | "oggetto" | "assunto" | "onderwerp"
        | "ämne" | "temat" | "件名" | "主题" | "主旨" | "emne" | "тема" | "aihe" => {
            Field::Subject
        }
        "to" | "cc" | "bcc" | "an" | "kopie" | "à" | "a" | "para" | "aan" | "reply-to"
        | "antwort an" | "répondre à" | "responder a" | "rispondi a" | "importance"
        | "wichtigkeit" | "priorité" | "till" | "kopia" | "do" | "dw" | "宛先" | "收件人"
        | "抄送" | "收件者" | "副本" | "til" | "kopi" | "copie à" | "кому" | "копия"
        | "vastaanottaja" => Field::Other,
        _ => return None,
    })
}
