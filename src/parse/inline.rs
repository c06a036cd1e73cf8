//! Inline images: the `cid:` references of a mail's HTML, and the HTML with
//! each such image turned into `[image: name]` text so that the text
//! conversion shows where it stood. One pass over the `<img` tags.

use std::borrow::Cow;
use std::collections::HashMap;

/// Most references collected from one mail.
const MAX_REFS: usize = 1000;

/// Whether `html` holds `cid:` in any case.
fn mentions_cid(html: &str) -> bool {
    memchr::memchr_iter(b':', html.as_bytes())
        .any(|i| i >= 3 && html.as_bytes()[i - 3..i].eq_ignore_ascii_case(b"cid"))
}

/// A Content-ID as compared: without angle brackets, lower-cased.
pub(super) fn cid_key(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_ascii_lowercase()
}

/// Each `<img …>` tag of `html` with its byte range and `src` value.
fn images(html: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let bytes = html.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while let Some(off) = memchr::memchr(b'<', &bytes[pos..]) {
            let at = pos + off;
            pos = at + 1;
            let is_img = bytes
                .get(at + 1..at + 4)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"img"))
                && bytes.get(at + 4).is_some_and(|c| c.is_ascii_whitespace());
            if !is_img {
                continue;
            }
            let end = memchr::memchr(b'>', &bytes[at..]).map_or(bytes.len(), |e| at + e + 1);
            pos = end;
            if let Some(src) = src_of(&html[at..end]) {
                return Some((at, end, src));
            }
        }
        None
    })
}

/// The `src` attribute's value of one tag.
fn src_of(tag: &str) -> Option<&str> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(off) = lower[from..].find("src") {
        let at = from + off;
        from = at + 3;
        let before_ok = at > 0 && lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = lower[at + 3..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_at = tag.len() - rest.len() + 1;
        let value = tag[value_at..].trim_start();
        let (quote, body) = match value.chars().next() {
            Some(q @ ('"' | '\'')) => (Some(q), &value[1..]),
            _ => (None, value),
        };
        let end = match quote {
            Some(q) => body.find(q),
            None => body.find(|c: char| c.is_ascii_whitespace() || c == '>'),
        }
        .unwrap_or(body.len());
        return Some(&body[..end]);
    }
    None
}

/// The Content-IDs the HTML shows as images (`src="cid:…"`), as keys.
pub(super) fn cid_refs(html: &str) -> Vec<String> {
    // Most HTML shows no inline image: one SIMD search says so.
    if !mentions_cid(html) {
        return Vec::new();
    }
    images(html)
        .filter_map(|(_, _, src)| {
            let s = src.trim();
            s.get(..4)
                .filter(|p| p.eq_ignore_ascii_case("cid:"))
                .map(|_| cid_key(&s[4..]))
        })
        .take(MAX_REFS)
        .collect()
}

/// The HTML with each `cid:` image whose part is known replaced by the text
/// `[image: name]`; borrowed when there is none.
pub(super) fn images_as_text<'a>(html: &'a str, names: &HashMap<String, String>) -> Cow<'a, str> {
    if names.is_empty() {
        return Cow::Borrowed(html);
    }
    let mut out: Option<String> = None;
    let mut copied = 0;
    for (at, end, src) in images(html) {
        let s = src.trim();
        let Some(name) = s
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("cid:"))
            .and_then(|_| names.get(&cid_key(&s[4..])))
        else {
            continue;
        };
        let o = out.get_or_insert_with(|| String::with_capacity(html.len()));
        o.push_str(&html[copied..at]);
        o.push_str("[image: ");
        o.push_str(&name.replace(['<', '>', '&'], ""));
        o.push(']');
        copied = end;
    }
    match out {
        None => Cow::Borrowed(html),
        Some(mut o) => {
            o.push_str(&html[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_images_are_found_and_shown_by_name() {
        let html = r#"<p>Logo:</p><IMG width=10 SRC="cid:Logo.PNG@01D9">text<img src='https://x/y.png'><img alt="a" src=cid:chart@x>"#;
        assert_eq!(cid_refs(html), vec!["logo.png@01d9", "chart@x"]);
        let names = HashMap::from([("logo.png@01d9".to_string(), "logo.png".to_string())]);
        let out = images_as_text(html, &names);
        assert!(
            out.contains("<p>Logo:</p>[image: logo.png]text<img src='https://x/y.png'>"),
            "{out}"
        );
        assert!(out.contains("src=cid:chart@x"), "{out}");
        assert_eq!(cid_key(" <A@B> "), "a@b");
    }

    #[test]
    fn broken_tags_end_the_scan_safely() {
        assert!(cid_refs("<img src=\"cid:x").len() == 1);
        assert!(cid_refs("<img").is_empty());
        assert!(cid_refs(&"<img src= ".repeat(10_000)).is_empty());
    }
}
