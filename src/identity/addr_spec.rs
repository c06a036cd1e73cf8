//! RFC 5322 `addr-spec` (`local@domain`): which strings are one address,
//! and where a careful reader finds the address in a broken From header.
//!
//! The local part is either unquoted (no `@`, quotes, white space, control
//! characters, angle brackets, commas, semicolons or parentheses; UTF-8
//! allowed, RFC 6532) or one quoted string (`"John Doe"`, backslash escapes
//! allowed, no control characters). So `postmaster@xxx.com@xxx.com` is no
//! address, and `"John Doe"@example.com` is one. The domain has no `@`, white
//! space or control characters; [`super::normalise_domain`] judges the rest.

/// `(local, domain)` of an addr-spec, `None` when `s` is not exactly one.
pub fn split(s: &str) -> Option<(&str, &str)> {
    let (local, domain) = if s.starts_with('"') {
        let end = quoted_end(s)?;
        let domain = s[end..].strip_prefix('@')?;
        let local = &s[..end];
        if local[1..local.len() - 1].chars().any(char::is_control) {
            return None;
        }
        (local, domain)
    } else {
        let (local, domain) = s.split_once('@')?;
        if has_bad(local, b'"') {
            return None;
        }
        (local, domain)
    };
    let domain_ok =
        !domain.is_empty() && domain != "." && !has_bad(domain, b'"') && !domain.contains('@');
    (!local.is_empty() && local != "\"\"" && domain_ok).then_some((local, domain))
}

/// Whether `s` holds a character no unquoted addr-spec part may, or
/// `also`. ASCII text (nearly every address) is judged byte by byte.
fn has_bad(s: &str, also: u8) -> bool {
    if s.is_ascii() {
        return s.bytes().any(|b| {
            b <= b' '
                || b == 0x7f
                || b == also
                || matches!(
                    b,
                    b'<' | b'>' | b',' | b';' | b'(' | b')' | b'[' | b']' | b'\\'
                )
        });
    }
    s.chars().any(|c| bad_unquoted(c) || c == also as char)
}

fn bad_unquoted(c: char) -> bool {
    matches!(c, '<' | '>' | ',' | ';' | '(' | ')' | '[' | ']' | '\\')
        || c.is_whitespace()
        || c.is_control()
}

/// The byte index just past the closing quote of the quoted string `s`
/// starts with.
fn quoted_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The address a careful reader finds in a From value that no parser made
/// sense of: first inside angle brackets (white space around the `@` and at
/// the ends dropped: `< john @ example.com >`), then a word of the rest that
/// is an addr-spec (`Test test@example.com`, `"John Doe"@example.com`). A
/// bracketed value with white space inside its local part is never cut down
/// to a guess. Linear in the length of `text`.
pub fn find_in_text(text: &str) -> Option<String> {
    let mut outside = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        outside.push_str(&rest[..open]);
        outside.push(' ');
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            rest = after;
            break;
        };
        let inner: String = squeeze_at(after[..close].trim());
        if split(&inner).is_some() {
            return Some(inner);
        }
        rest = &after[close + 1..];
    }
    outside.push_str(rest);
    let found = words(&outside)
        .map(|w| w.trim_end_matches(['.', ':']))
        .find(|w| split(w).is_some())
        .map(str::to_string);
    found
}

/// `a @ b` → `a@b`: white space next to the `@` dropped.
fn squeeze_at(s: &str) -> String {
    match s.split_once('@') {
        Some((l, d)) => format!("{}@{}", l.trim_end(), d.trim_start()),
        None => s.to_string(),
    }
}

/// Words separated by white space and punctuation that cannot be part of an
/// address; a quoted string stays one word with what follows it.
fn words(s: &str) -> impl Iterator<Item = &str> {
    let mut i = 0;
    std::iter::from_fn(move || {
        let sep = |c: char| c.is_whitespace() || ",;()<>'[]".contains(c);
        let b = s.as_bytes();
        while i < s.len() && s[i..].chars().next().is_some_and(sep) {
            i += s[i..].chars().next().map_or(1, char::len_utf8);
        }
        if i >= s.len() {
            return None;
        }
        let start = i;
        if b[i] == b'"' {
            // Up to the closing quote (or the end), then on to the separator.
            i = start + quoted_end(&s[start..]).unwrap_or(s.len() - start);
        }
        while i < s.len() {
            let c = s[i..].chars().next()?;
            if sep(c) {
                break;
            }
            i += c.len_utf8();
        }
        Some(&s[start..i])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_specs() {
        assert_eq!(split("a@b.example"), Some(("a", "b.example")));
        assert_eq!(
            split("\"John Doe\"@example.com"),
            Some(("\"John Doe\"", "example.com"))
        );
        assert_eq!(
            split("\"a\\\"@b\"@example.com"),
            Some(("\"a\\\"@b\"", "example.com"))
        );
        for bad in [
            "postmaster@xxx.com@xxx.com",
            "Postmaster\\@xxx.com@xxx.com",
            "john doe@example.com",
            "@example.com",
            "joe@",
            "joe",
            "\"\"@example.com",
            "\"open@example.com",
            "a\"b@example.com",
            "<joe@example.com>",
            "joe@exa mple.com",
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }

    #[test]
    fn addresses_found_in_broken_from_values() {
        let f = |s: &str| find_in_text(s);
        assert_eq!(
            f("Test test@example.com").as_deref(),
            Some("test@example.com")
        );
        assert_eq!(
            f("Joe <john @ example.com>").as_deref(),
            Some("john@example.com")
        );
        assert_eq!(f("< joe@example.com >").as_deref(), Some("joe@example.com"));
        assert_eq!(
            f("\"John Doe\"@example.com").as_deref(),
            Some("\"John Doe\"@example.com")
        );
        assert_eq!(
            f("(Joe) joe@example.com.").as_deref(),
            Some("joe@example.com")
        );
        // Never a guess cut out of a broken bracketed address.
        assert_eq!(f("<john doe@example.com>"), None);
        assert_eq!(f("postmaster@xxx.com@xxx.com"), None);
        assert_eq!(f("john.doe at example.com"), None);
        assert_eq!(
            f("<unclosed joe@example.com").as_deref(),
            Some("joe@example.com")
        );
        assert_eq!(f(""), None);
        // Linear: a long run of brackets and quotes ends.
        let long = "<\"".repeat(50_000);
        assert_eq!(f(&long), None);
    }
}
