//! The visible text of a plain-text reply: one pass over its lines that
//! drops quoted lines (`>`), the attribution line above them, everything
//! from a separator (`-----Original Message-----`, a forward's), an
//! Outlook-style header block or a `-- ` signature delimiter on, and "Sent
//! from my …" lines. Unquoted lines between quoted ones (answers written
//! into the quote) are kept.

use super::markers::{field, separator, Field};
use super::words::{is_attribution, is_sent_from, opens_attribution};

/// Lines after a From line that may hold the rest of a header block.
const BLOCK_LOOKAHEAD: usize = 6;

/// What one pass found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Visible {
    /// The visible text, when anything was removed (empty when everything
    /// was).
    pub text: Option<String>,
    /// A separator or header block was found: the mail may forward one.
    pub block: bool,
}

/// The field of a `Name: value` line, for names of at most 24 characters.
fn line_field(t: &str) -> Option<Field> {
    // Most lines have no colon near their start (a field name is at most
    // 24 characters, 8 of them CJK): a memchr over the head says so.
    let head = &t.as_bytes()[..t.len().min(40)];
    if !head.contains(&b':') && !head.contains(&0xEF) {
        return None;
    }
    let t = t.trim_start_matches('*');
    let (at, _) = t
        .char_indices()
        .take(25)
        .find(|&(_, c)| c == ':' || c == '：')?;
    field(&t[..at])
}

/// Whether a header block starts at line `i`: a From (or Date) field,
/// then at least two more fields among the next lines, with a date and a
/// subject among them, or a client's "Sent:", or a From naming an address
/// and one of the two (Outlook, Gmail and Apple Mail blocks in the
/// languages of [`field`]).
/// "From: Berlin / To: Munich / Date: 12 May" is a booking, not a block.
fn header_block_at(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    let first = line_field(line);
    if !matches!(first, Some(Field::From | Field::Date | Field::Sent)) {
        return false;
    }
    let addressed = first == Some(Field::From) && line.contains('@');
    let (mut fields, mut date, mut subject, mut sent) = (
        0,
        matches!(first, Some(Field::Date | Field::Sent)),
        false,
        false,
    );
    for l in lines[i + 1..].iter().take(BLOCK_LOOKAHEAD) {
        match line_field(l.trim()) {
            Some(f) => {
                fields += 1;
                date |= matches!(f, Field::Date | Field::Sent);
                subject |= f == Field::Subject;
                sent |= f == Field::Sent;
            }
            None if fields == 0 && l.trim().is_empty() => return false,
            None => {}
        }
    }
    fields >= 2 && ((date && subject) || sent || (addressed && (date || subject)))
}

/// Dashed titles that introduce an earlier message (`-----Reply
/// Message-----`, `-------- Oprindelig besked --------`), lower-cased.
const TITLES: &[&str] = &[
    "original message",
    "reply message",
    "forwarded message",
    "message d'origine",
    "ursprüngliche nachricht",
    "antwort nachricht",
    "oprindelig besked",
    "oprindelig meddelelse",
    "opprinnelig melding",
    "ursprungligt meddelande",
    "oorspronkelijk bericht",
    "mensaje original",
    "messaggio originale",
    "mensagem original",
    "wiadomość oryginalna",
    "исходное сообщение",
    "alkuperäinen viesti",
];

/// Whether `t` (trimmed, starting with dashes) is a dashed title that
/// introduces an earlier message: a known title, an attribution
/// (`---- John Smith wrote ----`), or any title right above a header block.
fn dashed_title(lines: &[&str], i: usize, t: &str) -> bool {
    let inner = t.trim_matches(|c: char| c == '-' || c.is_whitespace());
    if !t.starts_with("---") || inner.is_empty() || inner.len() > 120 {
        return false;
    }
    let lower = inner.to_lowercase();
    TITLES.contains(&lower.as_str())
        || is_attribution(&format!("{inner}:"))
        || (i + 1 < lines.len() && header_block_at(lines, i + 1))
}

/// The first line of an attribution ending at line `i`: a wrapped one
/// joined back (up to two lines up) from a line that opens it or whose
/// continuation starts with `<` or `>`, else line `i` alone. `kept_to`
/// says whether line `j` is kept and not blank.
fn attribution_at(lines: &[&str], i: usize, kept_to: impl Fn(usize) -> bool) -> Option<usize> {
    // The common case first: the whole attribution on one line.
    if opens_attribution(lines[i]) && is_attribution(lines[i]) {
        return Some(i);
    }
    for k in [2usize, 1] {
        let Some(first) = i.checked_sub(k) else {
            continue;
        };
        let wrapped = lines[first + 1..=i]
            .iter()
            .any(|l| l.trim_start().starts_with(['<', '>']))
            || lines[first].trim_end().ends_with('<');
        if (first..i).all(&kept_to) && (opens_attribution(lines[first]) || wrapped) {
            let joined = lines[first..=i]
                .iter()
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join(" ");
            if is_attribution(&joined) {
                return Some(first);
            }
        }
    }
    is_attribution(lines[i]).then_some(i)
}

/// The next line after `i` that is not blank.
fn next_text<'a>(lines: &[&'a str], i: usize) -> Option<&'a str> {
    lines[i + 1..]
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
}

/// The visible text of `text` (LF line ends). Linear in its length.
pub fn visible(text: &str) -> Visible {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut kept: Vec<usize> = Vec::with_capacity(lines.len());
    // `tail`: below a signature, a list footer or an unquoted history
    // nothing is visible, but a forward may still follow.
    let (mut changed, mut block, mut tail) = (false, false, false);
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if tail {
            if separator(t).is_some() || header_block_at(&lines, i) {
                block = true;
                break;
            }
            i += 1;
            continue;
        }
        let Some(&first) = t.as_bytes().first() else {
            kept.push(i);
            i += 1;
            continue;
        };
        // `>:` ends an attribution whose address wrapped; any other `>`
        // line is quoted.
        if first == b'>' && !t.starts_with(">:") {
            changed = true;
            i += 1;
            continue;
        }
        if first == b'-' || first == b'_' {
            if t == "--" {
                (changed, tail) = (true, true);
                i += 1;
                continue;
            }
            let rule = t.len() >= 2 && t.bytes().all(|c| c == b'_');
            if separator(t).is_some()
                || dashed_title(&lines, i, t)
                || (rule
                    && t.len() >= 10
                    && lines
                        .get(i + 1)
                        .is_some_and(|_| header_block_at(&lines, i + 1)))
            {
                (changed, block) = (true, true);
                break;
            }
            // A mailing list's footer below its rule.
            if rule && next_text(&lines, i).is_some_and(|n| n.contains("mailing list")) {
                (changed, tail) = (true, true);
                i += 1;
                continue;
            }
        }
        // "On … wrote" without its colon.
        let wrote = t.len() > 20
            && t.is_char_boundary(t.len() - 5)
            && t[t.len() - 5..].eq_ignore_ascii_case("wrote");
        if t.ends_with(':') || t.ends_with('：') || wrote {
            if separator(t).is_some() {
                (changed, block) = (true, true);
                break;
            }
            // Lines just above, kept and not blank (kept is in order).
            let kept_to = |j: usize| {
                kept.last() == Some(&(i - 1))
                    && kept.iter().rev().take(2).any(|&k| k == j)
                    && !lines[j].trim().is_empty()
            };
            if let Some(start) = attribution_at(&lines, i, kept_to) {
                let next = next_text(&lines, i);
                let quoted_next = next.is_none_or(|n| n.starts_with('>'));
                // Unquoted history follows an attribution that names a
                // date and opens like one, or names an address.
                let lines_of = &lines[start..=i];
                let dated = lines_of
                    .iter()
                    .any(|l| l.bytes().any(|c| c.is_ascii_digit()));
                let addressed = lines_of.iter().any(|l| l.contains('@'));
                let history = addressed || (dated && opens_attribution(lines[start]));
                if quoted_next || history {
                    while kept.last().is_some_and(|&k| k >= start) {
                        kept.pop();
                    }
                    changed = true;
                    tail = !quoted_next;
                    i += 1;
                    continue;
                }
            }
        }
        // Older Gmail: `2011/4/7 Name <address>` above the quote, no colon.
        if t.ends_with('>')
            && first.is_ascii_digit()
            && t.contains('@')
            && next_text(&lines, i).is_some_and(|n| n.starts_with('>'))
        {
            changed = true;
            i += 1;
            continue;
        }
        if header_block_at(&lines, i) {
            (changed, block) = (true, true);
            break;
        }
        if is_sent_from(t) {
            changed = true;
            i += 1;
            continue;
        }
        kept.push(i);
        i += 1;
    }
    if !changed {
        return Visible::default();
    }
    let rule = |l: &str| l.trim().bytes().all(|c| c == b'_' || c == b'-');
    while kept.last().is_some_and(|&k| rule(lines[k])) {
        kept.pop();
    }
    let start = kept.iter().position(|&k| !lines[k].trim().is_empty());
    let mut body: Vec<&str> = Vec::with_capacity(kept.len());
    let mut last = usize::MAX;
    for &k in &kept[start.unwrap_or(kept.len())..] {
        let l = lines[k].trim_end();
        // Where quoted lines went, the blank lines around them are one.
        let gap = last != usize::MAX && k != last + 1;
        if !(gap && l.is_empty() && body.last().is_some_and(|p| p.is_empty())) {
            body.push(l);
        }
        last = k;
    }
    let text = body.join("\n");
    Visible {
        text: Some(text),
        block,
    }
}
