//! A forward written into the text: a separator line or an Outlook header
//! block, the block's fields (From, Date, Subject, …), the forwarded text
//! after it, and the agent's own text before it. One pass over the lines.

use crate::parse::Mailbox;
use crate::reply::markers::{field, separator, Field, Separator};

/// The parts of an inline forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub client: &'static str,
    pub from: Option<Mailbox>,
    pub date: Option<String>,
    pub subject: Option<String>,
    /// The text before the separator or block: the agent's.
    pub note: String,
    /// The forwarded message's text.
    pub text: String,
}

/// Most lines a header block may have.
const MAX_BLOCK_LINES: usize = 16;

/// `name: value` of a header-block line, if the name is a known field.
fn field_line(line: &str) -> Option<(Field, String)> {
    let line = line.trim_start_matches('>').trim();
    let (name, value) = line.split_once(':')?;
    if name.len() > 24 {
        return None;
    }
    let f = field(name)?;
    Some((f, value.trim().trim_start_matches('*').trim().to_string()))
}

/// The address and name of a From value: `Name <a@b>`, `"Name" <a@b>`,
/// `Name [mailto:a@b]`, `Name <mailto:a@b>`, or a bare `a@b`.
pub fn mailbox(value: &str) -> Option<Mailbox> {
    let v = value.trim();
    let (name, addr) = if let Some((name, rest)) = v.split_once("[mailto:") {
        (name, rest.split(']').next()?)
    } else if let Some((name, rest)) = v.rsplit_once('<') {
        (name, rest.split('>').next()?)
    } else {
        let token = v
            .split_whitespace()
            .find(|t| t.contains('@'))?
            .trim_matches(|c: char| "<>()[]\"',;".contains(c));
        (v.strip_suffix(token).unwrap_or(""), token)
    };
    let addr = addr.trim().trim_start_matches("mailto:").trim();
    let at = addr.find('@')?;
    if at == 0 || at + 1 == addr.len() || addr.contains(char::is_whitespace) {
        return None;
    }
    let name = name.trim().trim_matches(['"', '\'']).trim();
    Some(Mailbox {
        address: addr.to_string(),
        name: (!name.is_empty() && !name.contains('@')).then(|| name.to_string()),
    })
}

/// Find an inline forward in `text`. A separator that says "forwarded"
/// always counts; Outlook's `-----Original Message-----` and a bare
/// From/Sent/Subject block only when `forward_subject` (Outlook writes both
/// on replies too).
pub fn find(text: &str, forward_subject: bool) -> Option<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = None;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.starts_with('-') || t.ends_with(':') {
            match separator(t) {
                Some(Separator::Forwarded(client)) => {
                    start = Some((i, i + 1, client));
                    break;
                }
                Some(Separator::Original) if forward_subject => {
                    start = Some((i, i + 1, "outlook"));
                    break;
                }
                _ => {}
            }
        }
        if forward_subject && matches!(field_line(t), Some((Field::From, _))) {
            // Outlook's block without a separator: From, then Sent/Date and
            // Subject among the next lines.
            let next = lines[i + 1..].iter().take(6).filter_map(|l| field_line(l));
            let (mut date, mut subject) = (false, false);
            for (f, _) in next {
                date |= matches!(f, Field::Date | Field::Sent);
                subject |= f == Field::Subject;
            }
            if date && subject {
                start = Some((i, i, "outlook"));
                break;
            }
        }
    }
    let (sep, mut at, client) = start?;
    let mut note: Vec<&str> = lines[..sep].to_vec();
    // Outlook's rule above its block is the agent's text's end, not its text.
    while note
        .last()
        .is_some_and(|l| l.trim().is_empty() || l.trim().chars().all(|c| c == '_' || c == '-'))
    {
        note.pop();
    }
    while lines.get(at).is_some_and(|l| l.trim().is_empty()) && at < sep + 3 {
        at += 1;
    }
    let mut block = Block {
        client,
        from: None,
        date: None,
        subject: None,
        note: note.join("\n").trim().to_string(),
        text: String::new(),
    };
    let mut fields = 0;
    while let Some(line) = lines.get(at) {
        if line.trim().is_empty() || fields >= MAX_BLOCK_LINES {
            break;
        }
        match field_line(line) {
            Some((Field::From, v)) if block.from.is_none() => block.from = mailbox(&v),
            Some((Field::Date | Field::Sent, v)) if block.date.is_none() => block.date = Some(v),
            Some((Field::Subject, v)) if block.subject.is_none() => block.subject = Some(v),
            Some(_) => {}
            // A wrapped To/Cc line: part of the block when a field follows.
            None if fields > 0 && lines.get(at + 1).is_some_and(|l| field_line(l).is_some()) => {}
            None => break,
        }
        fields += 1;
        at += 1;
    }
    block.text = lines
        .get(at..)
        .unwrap_or_default()
        .join("\n")
        .trim()
        .to_string();
    Some(block)
}
