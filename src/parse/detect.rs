//! Which charset raw header bytes are in, when the mail does not say: the
//! bytes of an 8-bit header line outside encoded words, and the payload of
//! an encoded word whose label names a 7-bit charset (`=?ISO-2022-JP?B?…?=`
//! carrying 8-bit Shift_JIS bytes, which ISO-2022-JP cannot contain).
//!
//! chardetng (the detector Firefox uses, on encoding_rs) guesses from the
//! bytes; what the mail declares elsewhere is a hint, not the answer:
//! 1. a legacy charset the mail declares (the body's, see `legacy.rs`) wins
//!    when it decodes the bytes without error, unless it is a single-byte
//!    charset and the detector sees a multi-byte one that also decodes them
//!    (a GB2312 subject in a mail whose body says ISO-8859-1);
//! 2. a 7-bit CJK charset declared in the mail (ISO-2022-JP, -KR, -CN, HZ)
//!    names the language: its 8-bit relatives (Shift_JIS and EUC-JP, EUC-KR,
//!    GBK) are tried, the detector's pick among them first;
//! 3. the detector's guess, when it decodes the bytes without error;
//! 4. else the declared charset, or windows-1252, with replacement characters.

use encoding_rs::{Encoding, EUC_JP, EUC_KR, GBK, SHIFT_JIS, WINDOWS_1252};

/// What the mail says about its charsets, for header bytes that say nothing.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// The first legacy ASCII-compatible charset the mail declares.
    pub declared: Option<&'static Encoding>,
    /// 8-bit relatives of a 7-bit CJK charset the mail declares.
    pub family: Vec<&'static Encoding>,
}

impl Hints {
    /// From the charset labels the mail's parts declare, in order.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Hints {
        let mut h = Hints::default();
        for label in labels {
            let l = label.trim().trim_matches('"').to_ascii_lowercase();
            let family: &[&'static Encoding] = if l.contains("2022-jp") {
                &[SHIFT_JIS, EUC_JP]
            } else if l.contains("2022-kr") {
                &[EUC_KR]
            } else if l.contains("2022-cn") || l.contains("hz-gb") {
                &[GBK]
            } else {
                &[]
            };
            for e in family {
                if !h.family.contains(e) {
                    h.family.push(e);
                }
            }
            if h.declared.is_none() {
                h.declared = Encoding::for_label(l.as_bytes())
                    .filter(|e| e.is_ascii_compatible() && *e != encoding_rs::UTF_8);
            }
        }
        h
    }
}

fn clean(e: &'static Encoding, bytes: &[u8]) -> Option<String> {
    let (text, had_errors) = e.decode_without_bom_handling(bytes);
    (!had_errors).then(|| text.into_owned())
}

/// Raw header bytes (not UTF-8) as text, by the rule in the module doc.
pub fn decode_header_bytes(bytes: &[u8], hints: &Hints) -> String {
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(bytes, true);
    let guess = detector.guess(None, false);
    if let Some(d) = hints.declared {
        let overruled = d.is_single_byte() && !guess.is_single_byte();
        if let Some(t) = (!overruled).then(|| clean(d, bytes)).flatten() {
            return t;
        }
    }
    let family = hints.family.iter().copied();
    let ordered = std::iter::once(guess)
        .filter(|g| hints.family.contains(g))
        .chain(family);
    if let Some(t) = ordered.chain([guess]).find_map(|e| clean(e, bytes)) {
        return t;
    }
    let fallback = hints.declared.unwrap_or(WINDOWS_1252);
    fallback.decode_without_bom_handling(bytes).0.into_owned()
}

/// True for a charset label that cannot carry 8-bit bytes.
pub fn is_seven_bit(label: &str) -> bool {
    let l = label
        .split('*')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    l.contains("2022") || l.contains("ascii") || l.contains("hz-gb") || l == "utf-7"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn undeclared_header_bytes_are_detected() {
        let none = Hints::default();
        let gb = hex("d7aab7a2a3bab9d8d3dabbe1d2e9b5c4cda8d6aa");
        assert_eq!(decode_header_bytes(&gb, &none), "转发：关于会议的通知");
        // The body says ISO-8859-1: a multi-byte reading still wins.
        let latin = Hints::from_labels(["iso-8859-1"]);
        assert_eq!(decode_header_bytes(&gb, &latin), "转发：关于会议的通知");
        assert_eq!(
            decode_header_bytes(&hex("4772fcdf6520617573204bf66c6e"), &latin),
            "Grüße aus Köln"
        );
        let koi = Hints::from_labels(["koi8-r"]);
        assert_eq!(
            decode_header_bytes(&hex("f3dea3d420dac120c4c5cbc1c2d2d8"), &koi),
            "Счёт за декабрь"
        );
        assert_eq!(
            decode_header_bytes(&hex("d1f7b8f220e7e020e4e5eae0e1f0fc"), &none),
            "Счёт за декабрь"
        );
    }

    #[test]
    fn a_seven_bit_japanese_body_names_shift_jis_for_a_short_subject() {
        let jp = Hints::from_labels(["iso-2022-jp"]);
        assert_eq!(jp.declared, None);
        assert_eq!(decode_header_bytes(&hex("8363815b838b"), &jp), "ツール");
        let kr = Hints::from_labels(["ISO-2022-KR"]);
        assert_eq!(
            decode_header_bytes(&hex("c8b8c0c720c0cfc1a4"), &kr),
            "회의 일정"
        );
        assert!(is_seven_bit("ISO-2022-JP") && is_seven_bit("us-ascii"));
        assert!(!is_seven_bit("shift_jis"));
    }
}
