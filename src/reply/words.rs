//! What mail clients write above quoted history and below a reply: the
//! attribution line ("On … wrote:") in eleven languages, and the "Sent from
//! my …" lines of phones and mail apps.

/// The verbs of an attribution line, lower-cased: Gmail, Apple Mail,
/// Thunderbird and Outlook in English, German, French, Spanish, Italian,
/// Portuguese, Dutch, Swedish, Polish, Japanese and Chinese (simplified and
/// traditional), and a few more languages clients ship.
const VERBS: &[&str] = &[
    "wrote",
    "schrieb",
    "a écrit",
    "escribió",
    "escribio",
    "ha scritto",
    "scrisse",
    "escreveu",
    "schreef",
    "geschreven",
    "skrev",
    "napisał",
    "napisała",
    "napisal",
    "写道",
    "寫道",
    "書きました",
    "kirjoitti",
    "написал",
    "đã viết",
    "yazdı",
    "írta",
];

/// Longest attribution line looked at, in bytes (Gmail's with a long name
/// and address is under 200).
pub const MAX_ATTRIBUTION_BYTES: usize = 400;

/// Whether `s` (one line, or a wrapped line joined with a space) is an
/// attribution line: it ends with a colon and names a verb of writing; or
/// it names a date and an address in angle brackets before its colon, as
/// Gmail writes in Japanese, Chinese, Russian and older versions
/// (`2024年3月5日(火) 10:00 Name <address>:`, `2017-11-24 16:32 GMT+01:00
/// Name <address>:`); or it opens like one ("On …") and ends with the verb
/// without a colon.
pub fn is_attribution(s: &str) -> bool {
    let t = s.trim();
    if t.len() > MAX_ATTRIBUTION_BYTES {
        return false;
    }
    let Some(body) = t.strip_suffix(':').or_else(|| t.strip_suffix('：')) else {
        let lower = t.to_lowercase();
        return opens_attribution(t)
            && t.bytes().any(|c| c.is_ascii_digit())
            && VERBS
                .iter()
                .any(|v| lower.ends_with(v) && has_word(&lower, v));
    };
    let body = body.trim_end();
    let dated = body.bytes().any(|c| c.is_ascii_digit());
    if body.ends_with('>') && dated && (body.contains('@') || body.contains('年')) {
        return true;
    }
    let tail = last_words(body, 6).to_lowercase();
    VERBS.iter().any(|v| has_word(&tail, v))
        || (tail.ends_with(" sent") && opens_attribution(body) && dated)
}

/// The last `n` white-space separated words of `s`.
fn last_words(s: &str, n: usize) -> &str {
    let words: Vec<&str> = s.split_whitespace().collect();
    match words.len().checked_sub(n) {
        Some(first) if first > 0 => {
            let off = words[first].as_ptr() as usize - s.as_ptr() as usize;
            &s[off..]
        }
        _ => s,
    }
}

/// Whether `verb` occurs in `s` as a word of its own (CJK verbs, written
/// without spaces, anywhere).
fn has_word(s: &str, verb: &str) -> bool {
    if !verb.is_ascii() && verb.chars().next().is_some_and(|c| c as u32 >= 0x3000) {
        return s.contains(verb);
    }
    s.match_indices(verb).any(|(i, _)| {
        let before = s[..i].chars().next_back();
        let after = s[i + verb.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Openers of an attribution line ("On", "Am", "Le", …): a wrapped
/// attribution is joined back from the line that starts with one.
const OPENERS: &[&str] = &[
    "on ", "am ", "le ", "el ", "il ", "em ", "op ", "den ", "dnia ", "w dniu ",
];

/// Whether a line may start an attribution that wraps onto the next line.
pub fn opens_attribution(line: &str) -> bool {
    let t = line.trim_start();
    let head = t.get(..t.len().min(8)).unwrap_or(t).to_lowercase();
    OPENERS.iter().any(|o| head.starts_with(o))
        || t.contains('年')
        || t.starts_with(|c: char| c.is_ascii_digit())
}

/// Lower-cased starts of the lines phones and mail apps add below a reply
/// (compared ASCII-case-insensitively).
const SENT_FROM: &[&str] = &[
    "sent from ",
    "sent with ",
    "get outlook for ",
    "von meinem ",
    "gesendet von ",
    "gesendet mit ",
    "envoyé de mon ",
    "envoyé depuis mon ",
    "envoyé de l'application",
    "envoyé à partir de ",
    "enviado desde mi ",
    "enviado do meu ",
    "enviado a partir do meu ",
    "inviato da ",
    "verzonden vanaf mijn ",
    "verstuurd vanaf mijn ",
    "verzonden met ",
    "skickat från min ",
    "skickat från ",
    "wysłane z mojego ",
    "wysłano z mojego ",
    "iphoneから送信",
    "ipadから送信",
    "androidから送信",
    "发自我的",
    "從我的",
    "發自我的",
];

/// Words that name a device or an app in a "Sent from …" line (or, in
/// Japanese and Chinese, are written into the prefix).
const DEVICES: &[&str] = &[
    "my ",
    "mein",
    "mon ",
    "mi ",
    "meu ",
    "mijn",
    "min ",
    "mojego",
    "iphone",
    "ipad",
    "android",
    "outlook",
    "mail",
    "samsung",
    "galaxy",
    "blackberry",
    "yahoo",
    "aol",
    "gmail",
    "typeapp",
    "sparrow",
    "windows",
    "huawei",
    "xiaomi",
    "pixel",
    "mobile",
    "phone",
    "tablet",
    "から送信",
    "发自我的",
    "從我的",
    "發自我的",
];

/// Longest "Sent from my …" line, in bytes.
const MAX_SENT_FROM_BYTES: usize = 80;

/// Whether `t` (a trimmed line) is a "Sent from my …" line: short, and
/// not a sentence that goes on ("Sent from my desk, which …").
pub fn is_sent_from(t: &str) -> bool {
    if t.len() > MAX_SENT_FROM_BYTES || t.len() < 6 || t.contains(", ") {
        return false;
    }
    // ASCII letters compared without case, other bytes exactly: no copy;
    // the first byte rules out most prefixes (and most lines).
    let b = t.as_bytes();
    let f = b[0].to_ascii_lowercase();
    let starts = SENT_FROM.iter().any(|s| {
        let s = s.as_bytes();
        s[0] == f && b.len() >= s.len() && b[..s.len()].eq_ignore_ascii_case(s)
    });
    // "Sent with tracking number 123" is a sentence: a device or an app
    // must be named.
    starts && {
        let lower = t.to_lowercase();
        DEVICES.iter().any(|d| lower.contains(d))
    }
}
