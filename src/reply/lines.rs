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
    /// The visible text, when anything was removed.
    pub text: Option<String>,
    /// A separator or header block was found: the mail may forward one.
    pub block: bool,
}

/// The field of a `Name: value` line, for names of at most 24 characters.
fn line_field(t: &str) -> Option<Field> {
    let t = t.trim_start_matches('*');
    let (at, _) = t
        .char_indices()
        .take(25)
        .find(|&(_, c)| c == ':' || c == '：')?;
    field(&t[..at])
}

/// Whether a header block (From, then a date and a subject or recipient
/// among the next lines) starts at line `i`.
fn header_block_at(lines: &[&str], i: usize) -> bool {
    if line_field(lines[i].trim()) != Some(Field::From) {
        return false;
    }
    let (mut date, mut other) = (false, false);
    for l in lines[i + 1..].iter().take(BLOCK_LOOKAHEAD) {
        match line_field(l.trim()) {
            Some(Field::Date) => date = true,
            Some(Field::Subject | Field::Other) => other = true,
            _ => {}
        }
    }
    date && other
}

/// The first line of an attribution ending at line `i`: a wrapped one
/// joined back from a line that opens it (up to two lines up), else line
/// `i` alone. `kept_to` says whether line `j` is kept and not blank.
fn attribution_at(lines: &[&str], i: usize, kept_to: impl Fn(usize) -> bool) -> Option<usize> {
    for k in [2usize, 1] {
        let Some(first) = i.checked_sub(k) else {
            continue;
        };
        if (first..i).all(&kept_to) && opens_attribution(lines[first]) {
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
    let (mut changed, mut block, mut signature) = (false, false, false);
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if signature {
            // Below a signature nothing is visible, but a forward may follow.
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
        if first == b'>' {
            changed = true;
            i += 1;
            continue;
        }
        if first == b'-' || first == b'_' {
            if t == "--" {
                (changed, signature) = (true, true);
                i += 1;
                continue;
            }
            let rule = t.len() >= 10 && t.bytes().all(|c| c == b'_');
            if separator(t).is_some()
                || (rule
                    && lines
                        .get(i + 1)
                        .is_some_and(|_| header_block_at(&lines, i + 1)))
            {
                (changed, block) = (true, true);
                break;
            }
        }
        if t.ends_with(':') || t.ends_with('：') {
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
                let dated = lines[start..=i]
                    .iter()
                    .any(|l| l.contains('@') || l.bytes().any(|c| c.is_ascii_digit()));
                if quoted_next || dated {
                    while kept.last().is_some_and(|&k| k >= start) {
                        kept.pop();
                    }
                    changed = true;
                    if quoted_next {
                        i += 1;
                        continue;
                    }
                    break;
                }
            }
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
    let body: Vec<&str> = kept[start.unwrap_or(kept.len())..]
        .iter()
        .map(|&k| lines[k].trim_end())
        .collect();
    let text = body.join("\n");
    Visible {
        // Nothing left (a quote or a forward without a word of its own):
        // the whole text is what the writer sent.
        text: (!text.trim().is_empty()).then_some(text),
        block,
    }
}
