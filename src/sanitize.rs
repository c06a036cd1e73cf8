//! Text cleaners shared by every input path: a name or a link from a mail or
//! from a gateway's JSON in, a value safe to store and show out.
//!
//! Mail attachment names and webhook attachment names go through the same
//! [`clean_filename`], so a `../` or a CR/LF is removed the same way whatever
//! brought it.

/// Longest attachment file name kept, in bytes.
pub const MAX_FILENAME_BYTES: usize = 255;

/// Longest attachment link accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// The base name of a file name: no directory parts, no control characters,
/// bounded. Empty when nothing usable is left (the caller names it).
pub fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let base: String = base.chars().filter(|c| !c.is_control()).collect();
    let base = base.trim();
    if base == "." || base == ".." {
        return String::new();
    }
    truncate_str(base, MAX_FILENAME_BYTES).to_string()
}

/// The first control character of `s` (Unicode `Cc`: C0, DEL, C1), except
/// tab, line feed and carriage return when `multiline`.
pub fn control_char(s: &str, multiline: bool) -> Option<char> {
    s.chars()
        .find(|&c| c.is_control() && !(multiline && matches!(c, '\t' | '\n' | '\r')))
}

/// An attachment link: `http://` or `https://` (any case), a host, no
/// control characters or spaces, at most [`MAX_URL_BYTES`]. The link is kept
/// as sent when it passes; there is nothing to clean in a link without
/// changing where it points, so anything else is refused with the reason.
pub fn http_url(url: &str) -> Result<&str, String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!(
            "must be at most {MAX_URL_BYTES} bytes, got {}",
            url.len()
        ));
    }
    if let Some(c) = url.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "must not contain control characters or spaces (found U+{:04X})",
            c as u32
        ));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(format!("must be an http(s) URL, got {url:?}"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("must name a host, got {url:?}"));
    }
    Ok(url)
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_directories_and_controls() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_filename("a\u{0}b\r\n.txt"), "ab.txt");
        assert_eq!(clean_filename(".."), "");
        assert_eq!(clean_filename("x/.."), "");
        assert_eq!(clean_filename(&"x".repeat(300)).len(), MAX_FILENAME_BYTES);
        assert_eq!(clean_filename(&"é".repeat(200)).len(), 254);
    }

    #[test]
    fn control_characters_are_found() {
        assert_eq!(control_char("plain text", false), None);
        assert_eq!(control_char("a\u{0}b", false), Some('\0'));
        assert_eq!(control_char("two\nlines", false), Some('\n'));
        assert_eq!(control_char("two\r\nlines\tok", true), None);
        assert_eq!(control_char("bell\u{7}", true), Some('\u{7}'));
        assert_eq!(control_char("c1\u{85}", true), Some('\u{85}'));
        assert_eq!(control_char("vt\u{b}ff\u{c}", true), Some('\u{b}'));
    }

    #[test]
    fn links_are_http_with_a_host_and_bounded() {
        assert!(http_url("https://gw.example/rec/8812").is_ok());
        assert!(http_url("HTTP://gw.example").is_ok());
        assert!(http_url("http://user@gw.example:8080/x?y#z").is_ok());
        assert!(http_url("ftp://gw.example/x").is_err());
        assert!(http_url("javascript:alert(1)").is_err());
        assert!(http_url("https://").is_err());
        assert!(http_url("https:///etc/passwd").is_err());
        assert!(http_url("https://gw.example/\r\nX-Evil: 1").is_err());
        assert!(http_url("https://gw.example/a\u{0}b").is_err());
        assert!(http_url("https://gw.example/a b").is_err());
        assert!(http_url(&format!("https://gw.example/{}", "a".repeat(MAX_URL_BYTES))).is_err());
    }
}
