//! Quote containers in a reply's HTML, removed before it becomes text:
//! Gmail's quote and attribution (`blockquote.gmail_quote`, `gmail_attr`;
//! answers between them inside `div.gmail_quote` stay), Apple Mail's and Thunderbird's `<blockquote
//! type="cite">` (and Thunderbird's `moz-cite-prefix` attribution),
//! Yahoo's and Proton's quote divs, and Outlook's reply header (`divRplyFwdMsg`,
//! `appendonsend`, the bordered header of Outlook for Windows and Mac),
//! after which everything is the quoted message; signature containers
//! (`gmail_signature`, `moz-signature`) too. One pass over the tags.

use std::borrow::Cow;

use crate::sanitize::truncate_str;

/// What a container asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Quoted history: removed, leaving a quote mark (`>`) in its place so
    /// that the text pass knows an attribution above it introduced a quote.
    Quote,
    /// Attribution or signature: removed.
    Drop,
    /// Gmail's attribution or forward header (`gmail_attr`): removed, and
    /// counted as history (the mail may forward one).
    Attribution,
    /// A bordered div: Outlook's reply header when its text starts with a
    /// From field, then cut like [`Action::Cut`].
    BorderedHeader,
    /// Outlook's reply header: it and everything after it are history.
    Cut,
}

/// The elements that may be containers.
const CONTAINERS: [&str; 4] = ["div", "blockquote", "pre", "hr"];

/// Longest attribute text looked at, in bytes.
const MAX_ATTRS: usize = 1024;

/// What the opening tag `name` with (lower-cased) attributes `attrs` is.
fn action(name: &str, attrs: &str) -> Option<Action> {
    let has = |s: &str| attrs.contains(s);
    match name {
        "blockquote" if has("type=\"cite\"") || has("type=cite") || has("gmail_quote") => {
            Some(Action::Quote)
        }
        // Gmail's `div.gmail_quote` holds its attribution (`gmail_attr`)
        // and quote (`blockquote.gmail_quote`), and answers written
        // between quoted parts: only the first two go.
        "div" if has("yahoo_quoted") || has("protonmail_quote") => Some(Action::Quote),
        "div" if has("gmail_attr") => Some(Action::Attribution),
        "div" if has("moz-cite-prefix") || has("gmail_signature") || has("moz-signature") => {
            Some(Action::Drop)
        }
        "pre" if has("moz-signature") => Some(Action::Drop),
        "div"
            if has("divrplyfwdmsg")
                || has("appendonsend")
                || has("mail-editor-reference-message-container")
                || has("outlookmessageheader") =>
        {
            Some(Action::Cut)
        }
        // Outlook for Windows and Mac: a bordered div whose text starts
        // with a From field (the style alone is also a form's layout).
        "div" if has("border:none") && has("border-top:solid") => Some(Action::BorderedHeader),
        "hr" if has("stopspelling") => Some(Action::Cut),
        _ => None,
    }
}

/// One tag: where it ends (after `>`), its name as written, whether it
/// closes, and its attribute text.
struct Tag<'a> {
    end: usize,
    name: &'a str,
    closing: bool,
    attrs: &'a str,
}

/// The tag starting at `at` (a `<`); comments and declarations come back
/// with an empty name. Quoted attribute values may hold `>`.
fn tag(html: &str, at: usize) -> Tag<'_> {
    let b = html.as_bytes();
    if html[at..].starts_with("<!--") {
        let end = html[at + 4..]
            .find("-->")
            .map_or(html.len(), |e| at + 4 + e + 3);
        return Tag {
            end,
            name: "",
            closing: false,
            attrs: "",
        };
    }
    let mut i = at + 1;
    let closing = b.get(i) == Some(&b'/');
    if closing {
        i += 1;
    }
    let name_start = i;
    while i < b.len() && b[i].is_ascii_alphanumeric() {
        i += 1;
    }
    let name = &html[name_start..i];
    let attrs_start = i;
    let mut quote = None;
    while i < b.len() {
        match (b[i], quote) {
            (b'"' | b'\'', None) => quote = Some(b[i]),
            (c, Some(q)) if c == q => quote = None,
            (b'>', None) => break,
            _ => {}
        }
        i += 1;
    }
    Tag {
        end: (i + 1).min(b.len()),
        name,
        closing,
        attrs: &html[attrs_start..i.min(b.len())],
    }
}

/// Where the element whose opening tag `name` ends at `from` ends: after
/// its matching closing tag, or at the end of the document.
fn element_end(html: &str, name: &str, from: usize) -> usize {
    let mut depth = 1usize;
    let mut pos = from;
    while let Some(off) = html[pos..].find('<') {
        let t = tag(html, pos + off);
        pos = t.end;
        if t.name.eq_ignore_ascii_case(name) {
            if t.closing {
                depth -= 1;
                if depth == 0 {
                    return pos;
                }
            } else if !t.attrs.trim_end().ends_with('/') {
                depth += 1;
            }
        }
    }
    html.len()
}

/// Elements that start a new line when shown (`br` and `</p>` already do
/// in the text conversion).
const BLOCKS: [&str; 14] = [
    "div",
    "blockquote",
    "li",
    "tr",
    "table",
    "ul",
    "ol",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
];

/// The container an opening tag is, if any.
fn container(t: &Tag<'_>) -> Option<(&'static str, Action)> {
    if t.closing || t.attrs.len() < 6 {
        return None;
    }
    let name = CONTAINERS.iter().find(|c| t.name.eq_ignore_ascii_case(c))?;
    let attrs = truncate_str(t.attrs, MAX_ATTRS);
    action(name, &attrs.to_ascii_lowercase()).map(|a| (*name, a))
}

/// Whether the HTML has a container at all (one pass, nothing copied).
fn has_container(html: &str) -> bool {
    let mut pos = 0;
    while let Some(off) = html[pos..].find('<') {
        let t = tag(html, pos + off);
        pos = t.end;
        if container(&t).is_some() {
            return true;
        }
    }
    false
}

/// The HTML with `<br>` before a block element's tag (opening or closing)
/// that follows text; borrowed when it needs none. Linear in its length.
pub fn lines(html: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let (mut copied, mut pos, mut text) = (0, 0, false);
    while let Some(off) = html[pos..].find('<') {
        let at = pos + off;
        text |= !html[pos..at].trim().is_empty();
        let t = tag(html, at);
        pos = t.end;
        if text && BLOCKS.iter().any(|b| t.name.eq_ignore_ascii_case(b)) {
            let o = out.get_or_insert_with(|| String::with_capacity(html.len() + html.len() / 8));
            o.push_str(&html[copied..at]);
            o.push_str("<br>");
            copied = at;
            text = false;
        }
    }
    match out {
        None => Cow::Borrowed(html),
        Some(mut o) => {
            o.push_str(&html[copied..]);
            Cow::Owned(o)
        }
    }
}

/// The HTML without its quote and signature containers (a quote leaves a
/// `>` line in its place), and whether a quote or Outlook header was among
/// them; `None` when it has no container. Linear in the HTML's length.
pub fn strip(html: &str) -> Option<(String, bool)> {
    if !has_container(html) {
        return None;
    }
    let mut out = String::with_capacity(html.len());
    let (mut copied, mut pos, mut quoted) = (0, 0, false);
    while let Some(off) = html[pos..].find('<') {
        let at = pos + off;
        let t = tag(html, at);
        pos = t.end;
        let Some((name, act)) = container(&t) else {
            continue;
        };
        if act == Action::BorderedHeader && !from_field_follows(&html[t.end..]) {
            continue;
        }
        out.push_str(&html[copied..at]);
        match act {
            Action::Cut | Action::BorderedHeader => {
                copied = html.len();
                quoted = true;
                break;
            }
            Action::Quote | Action::Drop | Action::Attribution => {
                pos = element_end(html, name, t.end);
                copied = pos;
                out.push_str("<br>");
                if act == Action::Quote {
                    out.push_str("&gt;<br>");
                }
                // An unclosed container took the rest of the mail with it:
                // whatever that was, it may hold a forward.
                quoted |= act != Action::Drop || pos == html.len();
            }
        }
    }
    out.push_str(&html[copied..]);
    Some((out, quoted))
}

/// Whether the text after a tag (tags skipped, the first 600 bytes looked
/// at) starts with a From field: `From:`, `Von:`, `De :`, `差出人:`, …
fn from_field_follows(rest: &str) -> bool {
    let rest = truncate_str(rest, 600);
    let mut text = String::new();
    let mut in_tag = false;
    for c in rest.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if in_tag => {}
            _ => text.push(c),
        }
    }
    let text = text.replace("&nbsp;", " ");
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '*');
    text.char_indices()
        .take(26)
        .find(|&(_, c)| c == ':' || c == '：')
        .is_some_and(|(at, _)| {
            super::markers::field(&text[..at]) == Some(super::markers::Field::From)
        })
}
