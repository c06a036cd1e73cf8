//! Legacy charsets: repairs what mail-parser would otherwise turn into U+FFFD,
//! namely raw 8-bit header lines (no RFC 2047) and text parts whose charset label is
//! missing, unknown or says UTF-8 while the bytes are not.
//!
//! Raw 8-bit header bytes outside encoded words, and the payload of an encoded
//! word whose label names a 7-bit charset while it holds 8-bit bytes, are
//! decoded by `detect.rs`: the charsets the mail declares are hints, chardetng
//! judges the bytes. Raw ISO-2022-JP header lines (ESC sequences) are decoded
//! as ISO-2022-JP. For text parts, the fallback charset is the first
//! non-UTF-8, ASCII-compatible charset the mail declares in any part, else
//! windows-1252.

use super::detect::{self, Hints};
use base64::{engine::general_purpose::STANDARD, Engine};
use mail_parser::{
    decoders::{
        base64::base64_decode, charsets::map::charset_decoder,
        quoted_printable::quoted_printable_decode,
    },
    Encoding, Message, MessagePart, MimeHeaders, PartType,
};

const DEFAULT_CHARSET: &str = "windows-1252";

fn is_unicode_or_ascii(label: &str) -> bool {
    label.contains("utf") || label.contains("ascii") || label.contains("ucs") || label.is_empty()
}

/// A charset that can explain raw 8-bit bytes: known, ASCII-compatible, not 7-bit.
fn usable_fallback(label: &str) -> bool {
    !is_unicode_or_ascii(label)
        && !label.contains("2022")
        && !label.contains("hz-gb")
        && charset_decoder(label.as_bytes()).is_some()
}

/// The charset used for undeclared 8-bit text (see the module doc).
pub(super) fn guess_charset(msg: &Message<'_>) -> String {
    msg.parts
        .iter()
        .filter_map(|p| p.content_type().and_then(|ct| ct.attribute("charset")))
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .find(|label| usable_fallback(label))
        .unwrap_or_else(|| DEFAULT_CHARSET.to_string())
}

fn decode(bytes: &[u8], label: &str) -> String {
    match charset_decoder(label.as_bytes()) {
        Some(decoder) => decoder(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn has_iso2022_escape(line: &[u8]) -> bool {
    line.windows(2)
        .any(|w| w[0] == 0x1b && matches!(w[1], b'$' | b'('))
}

/// What the mail's declared charsets tell about undeclared header bytes.
pub(super) fn hints(msg: &Message<'_>) -> Hints {
    Hints::from_labels(
        msg.parts
            .iter()
            .filter_map(|p| p.content_type().and_then(|ct| ct.attribute("charset"))),
    )
}

fn line_needs_fix(line: &[u8]) -> bool {
    std::str::from_utf8(line).is_err() || has_iso2022_escape(line) || has_mislabelled_word(line)
}

/// The payload bytes of the encoded word `word` (`=?cs?X?text?=`) when its
/// label names a 7-bit charset and the payload holds 8-bit bytes anyway.
fn mislabelled(word: &[u8]) -> Option<Vec<u8>> {
    let inner = word.strip_prefix(b"=?")?.strip_suffix(b"?=")?;
    let mut f = inner.splitn(3, |&b| b == b'?');
    let (label, enc, text) = (f.next()?, f.next()?, f.next()?);
    // RFC 2231 adds `*lang` to the label.
    let label = std::str::from_utf8(label).ok()?.split('*').next()?;
    if !detect::is_seven_bit(label) {
        return None;
    }
    let bytes = match enc {
        b"B" | b"b" => base64_decode(text)?,
        b"Q" | b"q" => {
            let spaced: Vec<u8> = text
                .iter()
                .map(|&b| if b == b'_' { b' ' } else { b })
                .collect();
            quoted_printable_decode(&spaced)?
        }
        _ => return None,
    };
    (!bytes.is_ascii()).then_some(bytes)
}

fn has_mislabelled_word(line: &[u8]) -> bool {
    // Only the labels are read until one names a 7-bit charset: most lines
    // have no encoded word, most encoded words a label that can hold 8 bits.
    static OPEN: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"=?"));
    let seven_bit_label = OPEN.find_iter(line).any(|start| {
        let label = &line[start + 2..line.len().min(start + 2 + 64)];
        let label = label.split(|&b| b == b'?').next().unwrap_or_default();
        std::str::from_utf8(label).is_ok_and(detect::is_seven_bit)
    });
    if !seven_bit_label {
        return false;
    }
    EncodedWords::new(line).any(|(start, end)| mislabelled(&line[start..end]).is_some())
}

/// First position of `pat` in `line` at or after `from`.
fn find(line: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    line.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| p + from)
}

/// The RFC 2047 encoded words `=?charset?X?text?=` of one line, found in time
/// linear in the line: a line of `=?` without any `?=` would otherwise be searched
/// to its end once per `=?`.
/// Iterates over each word's (start, end exclusive).
struct EncodedWords<'a> {
    line: &'a [u8],
    /// Where the search for the next word goes on.
    pos: usize,
    /// The last search for `?=`: where it started and what it found. Searches
    /// start further right each time, so an answer at or after the new start
    /// (or no answer at all) holds again.
    last_close: Option<(usize, Option<usize>)>,
}

impl<'a> EncodedWords<'a> {
    fn new(line: &'a [u8]) -> Self {
        EncodedWords {
            line,
            pos: 0,
            last_close: None,
        }
    }

    fn close_from(&mut self, from: usize) -> Option<usize> {
        if let Some((start, found)) = self.last_close {
            match found {
                None if from >= start => return None,
                Some(p) if from >= start && p >= from => return Some(p),
                _ => {}
            }
        }
        let found = find(self.line, from, b"?=");
        self.last_close = Some((from, found));
        found
    }

    /// End (exclusive) of the encoded word starting at `start`, if there is one.
    fn end(&mut self, start: usize) -> Option<usize> {
        let charset_end = find(self.line, start + 2, b"?")?;
        let encoding_end = find(self.line, charset_end + 1, b"?")?;
        let end = self.close_from(encoding_end + 1)?;
        Some(end + 2)
    }
}

impl Iterator for EncodedWords<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        while self.pos + 1 < self.line.len() {
            let i = self.pos;
            if self.line[i] == b'=' && self.line[i + 1] == b'?' {
                if let Some(end) = self.end(i) {
                    self.pos = end;
                    return Some((i, end));
                }
            }
            self.pos += 1;
        }
        None
    }
}

/// Undeclared bytes between encoded words as UTF-8 (`detect.rs` decides).
fn plain(bytes: &[u8], hints: &Hints) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.to_vec(),
        Err(_) => detect::decode_header_bytes(bytes, hints).into_bytes(),
    }
}

fn fix_line(line: &[u8], hints: &Hints, out: &mut Vec<u8>) {
    if has_iso2022_escape(line) && line.is_ascii() && !has_mislabelled_word(line) {
        out.extend_from_slice(decode(line, "iso-2022-jp").as_bytes());
        return;
    }
    if std::str::from_utf8(line).is_ok() && !has_mislabelled_word(line) {
        out.extend_from_slice(line);
        return;
    }
    // Raw bytes inside an encoded word belong to the word's own charset, which
    // mail-parser applies later: only the text between encoded words is transcoded.
    let mut plain_start = 0;
    for (i, end) in EncodedWords::new(line) {
        out.extend_from_slice(&plain(&line[plain_start..i], hints));
        match mislabelled(&line[i..end]) {
            // Re-labelled as what the bytes are, for mail-parser.
            Some(bytes) => {
                let text = detect::decode_header_bytes(&bytes, hints);
                out.extend_from_slice(b"=?UTF-8?B?");
                out.extend_from_slice(STANDARD.encode(text).as_bytes());
                out.extend_from_slice(b"?=");
            }
            None => out.extend_from_slice(&line[i..end]),
        }
        plain_start = end;
    }
    out.extend_from_slice(&plain(&line[plain_start..], hints));
}

/// A copy of `raw` with the header lines of every MIME part of the top-level
/// message transcoded to UTF-8, or `None` when they all are UTF-8 already.
pub(super) fn transcode_header_lines(
    msg: &Message<'_>,
    raw: &[u8],
    hints: &Hints,
) -> Option<Vec<u8>> {
    let mut ranges: Vec<(usize, usize)> = msg
        .parts
        .iter()
        .map(|p| (p.offset_header as usize, p.offset_body as usize))
        .filter(|&(start, end)| start < end && end <= raw.len())
        .collect();
    ranges.sort_unstable();
    let needs_fix = ranges.iter().any(|&(start, end)| {
        raw[start..end]
            .split_inclusive(|&b| b == b'\n')
            .any(line_needs_fix)
    });
    if !needs_fix {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 8);
    let mut pos = 0;
    for (start, end) in ranges {
        if start < pos {
            continue; // overlapping ranges: already copied
        }
        out.extend_from_slice(&raw[pos..start]);
        for line in raw[start..end].split_inclusive(|&b| b == b'\n') {
            fix_line(line, hints, &mut out);
        }
        pos = end;
    }
    out.extend_from_slice(&raw[pos..]);
    Some(out)
}

/// The text of a body part decoded again with `charset` when mail-parser had to
/// replace bytes with U+FFFD because the declared charset was missing, unknown or
/// wrong. `raw` is the buffer the part's offsets point into.
pub(super) fn redecode(part: &MessagePart<'_>, raw: &[u8], charset: &str) -> Option<String> {
    let text = match &part.body {
        PartType::Text(t) | PartType::Html(t) => t,
        _ => return None,
    };
    if !text.contains('\u{FFFD}') {
        return None;
    }
    let declared = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase());
    if declared.as_deref().is_some_and(usable_fallback) {
        return None; // a real legacy charset was declared and used
    }
    let encoded = raw.get(part.offset_body as usize..part.offset_end as usize)?;
    let bytes = match part.encoding {
        Encoding::Base64 => base64_decode(encoded)?,
        Encoding::QuotedPrintable => quoted_printable_decode(encoded)?,
        Encoding::None => encoded.to_vec(),
    };
    if std::str::from_utf8(&bytes).is_ok() {
        return None; // the U+FFFD was in the mail itself
    }
    Some(decode(&bytes, charset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_are_transcoded_only_when_needed() {
        let raw = b"Subject: caf\xe9\nFrom: a@b\n\nbody \xe9\n";
        let msg = mail_parser::MessageParser::default().parse(raw).unwrap();
        let fixed = transcode_header_lines(&msg, raw, &Hints::default()).unwrap();
        // Only the header line changes; the body keeps its raw byte.
        assert_eq!(fixed, b"Subject: caf\xc3\xa9\nFrom: a@b\n\nbody \xe9\n");
        let clean = b"Subject: caf\xc3\xa9\n\nbody\n";
        let msg = mail_parser::MessageParser::default().parse(clean).unwrap();
        assert!(transcode_header_lines(&msg, clean, &Hints::default()).is_none());
    }

    #[test]
    fn raw_bytes_inside_encoded_words_are_left_alone() {
        let mut out = Vec::new();
        fix_line(
            b"Subject: =?iso-8859-1?Q?Fr\xf6sche?= und M\xe4use\n",
            &Hints::from_labels(["windows-1252"]),
            &mut out,
        );
        assert_eq!(
            out,
            b"Subject: =?iso-8859-1?Q?Fr\xf6sche?= und M\xc3\xa4use\n"
        );
    }

    #[test]
    fn fallback_charset_skips_unicode_and_7bit_labels() {
        assert!(usable_fallback("koi8-r"));
        assert!(usable_fallback("iso-8859-1"));
        assert!(!usable_fallback("utf-8"));
        assert!(!usable_fallback("us-ascii"));
        assert!(!usable_fallback("iso-2022-jp"));
        assert!(!usable_fallback("x-unknown-charset"));
    }

    #[test]
    fn mislabelled_encoded_words_are_relabelled() {
        // "ツール" in Shift_JIS, labelled ISO-2022-JP (7-bit): base64 and Q.
        for word in [
            "=?ISO-2022-JP?B?g2OBW4OL?=",
            "=?iso-2022-jp?Q?=83c=81[=83=8B?=",
        ] {
            let line = format!("Subject: {word} x\n");
            assert!(has_mislabelled_word(line.as_bytes()), "{word}");
            let mut out = Vec::new();
            fix_line(line.as_bytes(), &Hints::default(), &mut out);
            let raw = [out.as_slice(), b"\nbody\n"].concat();
            let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
            assert_eq!(msg.subject(), Some("ツール x"), "{word}");
        }
        // A well-formed ISO-2022-JP word is left to mail-parser.
        assert!(!has_mislabelled_word(
            b"Subject: =?ISO-2022-JP?B?GyRCJUQhPCVrGyhC?=\n"
        ));
        assert!(!has_mislabelled_word(b"Subject: =?utf-8?B?w6k=?=\n"));
    }
}
