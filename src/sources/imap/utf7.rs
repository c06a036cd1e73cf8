//! Modified UTF-7 (RFC 3501 §5.1.3), the wire form of IMAP folder names:
//! `Réclamations` is `R&AOk-clamations`. async-imap sends names as given,
//! so every folder name from the configuration goes through [`encode`].

use base64::alphabet::IMAP_MUTF7;
use base64::engine::{general_purpose::NO_PAD, GeneralPurpose};
use base64::Engine;

const MUTF7: GeneralPurpose = GeneralPurpose::new(&IMAP_MUTF7, NO_PAD);

/// Encode a folder name: printable ASCII stays (with `&` as `&-`), every run
/// of other characters becomes `&` + modified base64 of its UTF-16BE + `-`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&MUTF7.encode(bytes));
        out.push('-');
        run.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn rfc3501_examples_and_accents() {
        assert_eq!(encode("INBOX"), "INBOX");
        assert_eq!(encode("Réclamations"), "R&AOk-clamations");
        assert_eq!(encode("Anfragen-Ü"), "Anfragen-&ANw-");
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(encode("😀"), "&2D3eAA-");
    }
}
