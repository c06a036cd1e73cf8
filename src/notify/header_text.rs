//! The one sanitiser for header values built from data (a customer's
//! subject, a Message-ID they sent, configured addresses and names): text in,
//! one clean line out. Every header `smtp.rs` builds goes through here.
//!
//! Removed: C0 controls (NUL, vertical tab, form feed, ...), DEL, C1 controls,
//! bidirectional controls (a right-to-left override can make a subject read
//! as something else) and the byte order mark. Line breaks of every kind
//! (CR, LF, NEL, U+2028, U+2029) and tabs become spaces; runs of white space
//! become one space; the result is trimmed and cut to a bounded length on a
//! character boundary.

/// The longest subject we send, in characters (RFC 5322 advises lines of at
/// most 78 characters; lettre folds and encodes longer ones).
pub const MAX_SUBJECT_CHARS: usize = 250;

/// The longest Message-ID, display name or other header value, in characters.
pub const MAX_VALUE_CHARS: usize = 500;

/// True for characters that never reach a header: controls other than the
/// white space ones, bidi controls and the byte order mark.
fn dropped(c: char) -> bool {
    (c.is_control() && !is_break(c))
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Line breaks and tabs: they become a space.
fn is_break(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// `raw` as one clean line of at most `max` characters (see the module doc).
pub fn clean(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max * 4));
    let mut chars = 0;
    let mut space = false;
    for c in raw.chars().filter(|c| !dropped(*c)) {
        if is_break(c) || c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if chars + usize::from(space) + 1 > max {
            break;
        }
        if space {
            out.push(' ');
            chars += 1;
            space = false;
        }
        out.push(c);
        chars += 1;
    }
    out
}

/// A subject line.
pub fn subject(raw: &str) -> String {
    clean(raw, MAX_SUBJECT_CHARS)
}

/// A Message-ID without angle brackets (for In-Reply-To and References):
/// None when nothing usable is left.
pub fn message_id(raw: &str) -> Option<String> {
    let id: String = clean(raw, MAX_VALUE_CHARS)
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '<' | '>' | '"' | '\\'))
        .collect();
    (!id.is_empty()).then_some(id)
}

/// Any other header value (addresses, names, our own X- headers).
pub fn value(raw: &str) -> String {
    clean(raw, MAX_VALUE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_breaks_never_survive() {
        let s = subject("\u{0}Printer\u{0b}broken\u{0c}again\r\n\tnow\u{2028}please\u{2029}\u{85}ok\u{7f}\u{9b}");
        assert_eq!(s, "Printer broken again now please ok");
        assert_eq!(
            subject("a\u{202E}txt.exe\u{202C} \u{2066}b\u{2069}\u{FEFF}"),
            "atxt.exe b"
        );
        assert_eq!(subject("  \r\n "), "");
        assert_eq!(subject("Grüße, 日本語 ✓"), "Grüße, 日本語 ✓");
    }

    #[test]
    fn length_is_bounded_on_a_character_boundary() {
        let s = subject(&"é".repeat(10_000));
        assert_eq!(s.chars().count(), MAX_SUBJECT_CHARS);
        let s = subject(&"ab ".repeat(10_000));
        assert!(
            s.chars().count() <= MAX_SUBJECT_CHARS && !s.ends_with(' '),
            "{s:?}"
        );
    }

    #[test]
    fn message_ids_keep_only_the_id() {
        assert_eq!(
            message_id("<a.b@x.example>\r\nBcc: evil@x").as_deref(),
            Some("a.b@x.exampleBcc:evil@x")
        );
        assert_eq!(message_id("\u{0b}<>").as_deref(), None);
    }
}
