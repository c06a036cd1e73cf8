//! Guard: raw bytes in, the [`Shape`] facts parsing needs or the reason they are
//! refused out, in one linear pass before mail-parser sees them. It refuses the
//! shapes on which mail-parser 0.11 does superlinear work or runs out of stack,
//! found by bench/hostile.sh:
//!
//! * **Q-encoded words that never close.** After a failed RFC 2047 word
//!   mail-parser resumes one byte after its `=`, and a Q word's text runs to the
//!   next `?=` or the end of the (folded) field, so a field of `=?ab?q?xx`
//!   repeated is scanned once per word: quadratic (100 KB took 3 s, 300 KB 30 s).
//!   The guard adds up how far each Q word's scan can reach, per line and its
//!   continuation lines, and refuses a mail whose total exceeds
//!   [`MAX_WORD_SCAN_BYTES`] (a closed word costs its own length, so real mail
//!   stays far below it).
//! * **Content-Type / Content-Disposition fields with many parameters.** RFC
//!   2231 continuations (`name*0`, `name*1`, ...) are merged by a linear search
//!   over the parameters and by copying the value so far once per piece:
//!   quadratic (380 KB of parameters took 2 s). The guard bounds the sum over
//!   these fields of parameters × bytes by [`MAX_PARAMETER_WORK`].
//! * **Messages nested in messages.** Each inline `message/rfc822` level
//!   (explicit, or the default inside `multipart/digest`) costs mail-parser
//!   stack and about a kilobyte of memory: 40,000 levels (1.8 MB) overflowed a
//!   2 MB thread stack, which aborts the whole process. More than
//!   [`MAX_MESSAGE_PARTS`] Content-Type fields naming one are refused.
//! * **Encoded `message/rfc822` parts.** mail-parser decodes a base64 or
//!   quoted-printable message part and parses it recursively, copying the whole
//!   decoded part once per message nested inside it: 1,000 levels hidden in
//!   60 KB took 135 ms, 60,000 levels (3.6 MB) exhausted memory. Such parts
//!   (RFC 2046 allows only 7bit, 8bit and binary for them) are not refused:
//!   [`Shape::encoded_messages`] locates their type so that parse hands them to
//!   mail-parser as opaque attachments (`x-inner/...`, reported as `message/...`).
//!
//! Body lines are scanned like header lines (the pass does not know the MIME
//! structure); a body would have to hold the same shapes to be refused.

/// Most bytes that mail-parser's RFC 2047 Q-word scans may cover in one mail.
pub const MAX_WORD_SCAN_BYTES: u64 = 16 * 1024 * 1024;
/// Most parameters × bytes over the Content-Type / Content-Disposition fields.
pub const MAX_PARAMETER_WORK: u64 = 64 * 1024 * 1024;
/// Most Content-Type fields naming `message/rfc822`, `message/global` or `multipart/digest`.
pub const MAX_MESSAGE_PARTS: usize = 10_000;

/// What the guard learnt about a mail it let through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Shape {
    /// Offsets of the `message` token of each `message/...` Content-Type in a
    /// header block that also declares a base64 or quoted-printable encoding.
    pub encoded_messages: Vec<usize>,
}

/// The same-length stand-in for `message` in an encoded message part's type.
pub(super) const OPAQUE_MESSAGE: &[u8; 7] = b"x-inner";

/// Mails up to this size cannot reach any limit, whatever their bytes: Q words
/// start at least 7 bytes apart (`=?cs?q?`) and each scans at most the mail,
/// so their scans cover under N²/7 bytes (9.6 M < [`MAX_WORD_SCAN_BYTES`]);
/// parameters × bytes stay at most N (N + 1) = 67,100,672, within
/// [`MAX_PARAMETER_WORK`] (64 Mi); and [`MAX_MESSAGE_PARTS`] needs 290 KB.
pub(super) const SMALL_MAIL: usize = 8 * 1024 - 1;

/// The mail's [`Shape`], or `Err(reason)` when it holds one of the shapes in the
/// module doc. A small mail that names no `message/` type (most mail: one
/// SIMD pass over its `/` bytes) has nothing to refuse or locate.
pub(super) fn check(raw: &[u8]) -> Result<Shape, String> {
    if raw.len() <= SMALL_MAIL && !names_message_type(raw) {
        return Ok(Shape::default());
    }
    check_all(raw)
}

/// Whether `message/` occurs anywhere, in any case.
fn names_message_type(raw: &[u8]) -> bool {
    memchr::memchr_iter(b'/', raw).any(|i| i >= 7 && raw[i - 7..i].eq_ignore_ascii_case(b"message"))
}

/// [`check`] without the shortcut: the whole pass.
fn check_all(raw: &[u8]) -> Result<Shape, String> {
    let mut scan: u64 = 0;
    let mut parameter_work: u64 = 0;
    let mut message_parts = 0usize;
    let mut shape = Shape::default();
    // The current header block: where its `message/...` type is, and whether it
    // declares a decoding transfer encoding.
    let mut block_message: Option<usize> = None;
    let mut block_encoded = false;
    let mut offset = 0;
    // Where encoded words may start, found in one SIMD pass: a field without
    // one costs no Q-word scan.
    let mut words = memchr::memmem::find_iter(raw, b"=?");
    let mut next_word = words.next();
    for field in fields(raw) {
        let at = offset;
        offset += field.len();
        while next_word.is_some_and(|w| w < at) {
            next_word = words.next();
        }
        let has_word = next_word.is_some_and(|w| w < offset);
        // Only `Content-…` fields matter below, besides encoded words.
        if !matches!(field.first(), Some(b'c' | b'C' | b'\r' | b'\n')) {
            if has_word {
                scan += q_word_scan(field);
                if scan > MAX_WORD_SCAN_BYTES {
                    return Err(format!(
                        "unterminated RFC 2047 Q-encoded words: parsing them would scan over {MAX_WORD_SCAN_BYTES} bytes"
                    ));
                }
            }
            if !field.trim_ascii().is_empty() {
                continue;
            }
        }
        if field.trim_ascii().is_empty() {
            if let (Some(pos), true) = (block_message, block_encoded) {
                shape.encoded_messages.push(pos);
            }
            (block_message, block_encoded) = (None, false);
            continue;
        }
        if starts_with_ignore_case(field, b"content-transfer-encoding:") {
            let value = field[b"content-transfer-encoding:".len()..].trim_ascii_start();
            block_encoded |= starts_with_ignore_case(value, b"base64")
                || starts_with_ignore_case(value, b"quoted-printable");
        }
        let Some(kind) = parameter_field(field) else {
            scan += if has_word { q_word_scan(field) } else { 0 };
            if scan > MAX_WORD_SCAN_BYTES {
                return Err(format!(
                    "unterminated RFC 2047 Q-encoded words: parsing them would scan over {MAX_WORD_SCAN_BYTES} bytes"
                ));
            }
            continue;
        };
        let params = field.iter().filter(|&&b| b == b';').count() as u64 + 1;
        parameter_work += params * field.len() as u64;
        if parameter_work > MAX_PARAMETER_WORK {
            return Err(format!(
                "{kind} fields with {params} parameters in {} bytes: merging them would take quadratic time (limit {MAX_PARAMETER_WORK} parameters x bytes per mail)",
                field.len()
            ));
        }
        if kind == "Content-Type" {
            if let Some(pos) = nested_message_type(field) {
                message_parts += 1;
                if message_parts > MAX_MESSAGE_PARTS {
                    return Err(format!(
                        "more than {MAX_MESSAGE_PARTS} message/rfc822, message/global or multipart/digest parts: nested messages would exhaust the parser's stack"
                    ));
                }
                if field[pos..].starts_with(b"m") || field[pos..].starts_with(b"M") {
                    block_message = Some(at + pos);
                }
            }
        }
        scan += if has_word { q_word_scan(field) } else { 0 };
        if scan > MAX_WORD_SCAN_BYTES {
            return Err(format!(
                "unterminated RFC 2047 Q-encoded words: parsing them would scan over {MAX_WORD_SCAN_BYTES} bytes"
            ));
        }
    }
    Ok(shape)
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Each line with its continuation lines (those starting with a space or tab).
fn fields(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = raw;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        loop {
            match memchr::memchr(b'\n', &rest[end..]) {
                Some(p) => {
                    end += p + 1;
                    if !matches!(rest.get(end), Some(b' ' | b'\t')) {
                        break;
                    }
                }
                None => {
                    end = rest.len();
                    break;
                }
            }
        }
        let (field, tail) = rest.split_at(end);
        rest = tail;
        Some(field)
    })
}

/// `Content-Type` or `Content-Disposition` when `field` is one of these.
fn parameter_field(field: &[u8]) -> Option<&'static str> {
    if starts_with_ignore_case(field, b"content-type:") {
        Some("Content-Type")
    } else if starts_with_ignore_case(field, b"content-disposition:") {
        Some("Content-Disposition")
    } else {
        None
    }
}

/// Where the value of a Content-Type field starts when it names a nested mail
/// (as mail-parser sees them: `message/rfc822`, `message/global`, and the parts
/// of a digest).
fn nested_message_type(field: &[u8]) -> Option<usize> {
    let name = "content-type:".len();
    let value = field[name..].trim_ascii_start();
    let pos = field.len() - value.len();
    let named = starts_with_ignore_case(value, b"message/rfc822")
        || starts_with_ignore_case(value, b"message/global")
        || starts_with_ignore_case(value, b"multipart/digest");
    named.then_some(pos)
}

/// First position of `pat` in `field` at or after `from`.
fn find(field: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    // Short patterns on short lines: a memchr for the first byte, then a
    // comparison, is cheaper than building a substring searcher per call.
    let hay = field.get(from..)?;
    let mut i = 0;
    while let Some(p) = memchr::memchr(pat[0], &hay[i..]) {
        let at = i + p;
        if hay[at..].starts_with(pat) {
            return Some(at + from);
        }
        i = at + 1;
    }
    None
}

/// Bytes that mail-parser's Q-word scans starting in `field` may cover: from
/// each `=?charset?Q?` to the next `?=`, or to the field's end when there is
/// none. Linear: the `?=` searches start further right each time and reuse the
/// last answer while it lies ahead.
fn q_word_scan(field: &[u8]) -> u64 {
    let mut total = 0u64;
    let mut last_close: Option<(usize, Option<usize>)> = None;
    let mut i = 0;
    while let Some(p) = find(field, i, b"=?") {
        i = p + 1;
        // The charset ends at the next `?` (mail-parser also stops at a newline).
        let Some(q) = find(field, p + 2, b"?") else {
            break;
        };
        let is_q = q >= p + 4
            && matches!(field.get(q + 1), Some(b'q' | b'Q'))
            && field.get(q + 2) == Some(&b'?')
            && !field[p + 2..q].contains(&b'\n');
        if !is_q {
            continue;
        }
        let data = q + 3;
        let close = match last_close {
            Some((from, None)) if data >= from => None,
            Some((from, Some(c))) if data >= from && c >= data => Some(c),
            _ => {
                let c = find(field, data, b"?=");
                last_close = Some((data, c));
                c
            }
        };
        total += (close.map_or(field.len(), |c| c + 2) - p) as u64;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_join_continuation_lines() {
        let f: Vec<&[u8]> = fields(b"A: 1\n 2\nB: 3\n\nbody").collect();
        assert_eq!(f, vec![&b"A: 1\n 2\n"[..], b"B: 3\n", b"\n", b"body"]);
    }

    #[test]
    fn small_mails_cannot_reach_a_limit() {
        // The worst Q-word density: every word open, scanning to the end.
        let mut field = b"=?ab?q?".repeat(SMALL_MAIL / 7);
        field.resize(SMALL_MAIL, b'x');
        assert!(
            q_word_scan(&field) <= MAX_WORD_SCAN_BYTES,
            "{}",
            q_word_scan(&field)
        );
        // The worst parameter count: one field of `;`.
        let mut raw = b"Content-Type:".to_vec();
        raw.resize(SMALL_MAIL, b';');
        assert!(check_all(&raw).is_ok());
        let n = SMALL_MAIL as u64;
        assert!(n * (n + 1) <= MAX_PARAMETER_WORK);
    }

    #[test]
    fn the_shortcut_agrees_with_the_whole_pass() {
        for raw in [
            &b"Subject: =?utf-8?q?caf=C3=A9?=\nContent-Type: text/plain\n\nsee http://x.example/a/b\n"[..],
            b"Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: x\n",
            b"Content-Type: MeSsAgE/rfc822\nContent-Transfer-Encoding: base64\n\nAAAA\n",
            b"/message/",
            b"message/",
        ] {
            assert_eq!(check(raw), check_all(raw), "{}", String::from_utf8_lossy(raw));
        }
        let enc = b"Content-Type: MeSsAgE/rfc822\nContent-Transfer-Encoding: base64\n\nAAAA\n";
        assert_eq!(check(enc).unwrap().encoded_messages, vec![14]);
    }

    #[test]
    fn closed_words_cost_their_length() {
        let word = b"=?utf-8?q?caf=C3=A9?=";
        assert_eq!(q_word_scan(word), word.len() as u64);
        assert_eq!(q_word_scan(b"Subject: =?utf-8?b?Y2Fmw6k=?= price=?"), 0);
        // Not Q words: mail-parser gives up within the charset or encoding.
        assert_eq!(q_word_scan(&b"=?a".repeat(1000)), 0);
        assert_eq!(q_word_scan(&b"=?".repeat(1000)), 0);
    }

    #[test]
    fn open_q_words_add_up_to_the_field_end() {
        let field = b"=?ab?q?xx".repeat(100);
        // 100 words, each scanning to the end: n (n + 1) / 2 units of 9 bytes.
        assert_eq!(q_word_scan(&field), 9 * 100 * 101 / 2);
    }

    #[test]
    fn refusals_name_their_reason() {
        let mut raw = b"Subject: ".to_vec();
        raw.extend(b"=?ab?q?xx\n ".repeat(20_000));
        assert!(check(&raw).unwrap_err().contains("Q-encoded"));
        let mut raw = b"Content-Type: text/plain".to_vec();
        raw.extend(b";\n a*1=x".repeat(10_000));
        assert!(check(&raw)
            .unwrap_err()
            .starts_with("Content-Type fields with 10001 parameters"));
        let raw = b"Content-Type: message/rfc822\n\n".repeat(MAX_MESSAGE_PARTS + 1);
        assert!(check(&raw).unwrap_err().contains("nested messages"));
        let ok = b"Subject: =?utf-8?q?ok?=\nContent-Type: text/plain\n\nbody =?ab?q?x\n";
        assert_eq!(check(ok), Ok(Shape::default()));
    }

    #[test]
    fn encoded_message_parts_are_located() {
        let fwd =
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\ncontent-type:  Message/RFC822\n\n";
        let shape = check(fwd).unwrap();
        assert!(shape.encoded_messages.is_empty());
        let raw = b"Subject: x\n\n--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: BASE64\n\nAAAA\n--b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n";
        let shape = check(raw).unwrap();
        assert_eq!(shape.encoded_messages.len(), 1);
        let at = shape.encoded_messages[0];
        assert_eq!(&raw[at..at + 14], b"message/rfc822");
    }
}
