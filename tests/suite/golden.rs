//! Golden corpus: every `tests/golden/NAME.eml` is parsed and classified twice,
//! with LF and with CRLF line endings, and compared with `NAME.json`. A mismatch
//! writes `NAME.failed.json` (what we got) next to it for diffing.
//!
//! `NAME.json` keys: `message_id`, `message_id_generated`, `sender`
//! (`{address, name}` or null), `sender_source`, `subject`, `in_reply_to`,
//! `references`, `text_contains` (substrings of the text body), `attachments`
//! (`{filename, content_type, size}`; a null `size` is not checked, for raw parts
//! whose size follows the line endings), `class`, and optionally
//! `returned_message_ids`, `date`, `to`, `cc`; or only `error` (`no_sender`, ...)
//! for a mail that must not parse.
//!
//! Also here: a generated 10 MB+ mail against the size limit, and property tests
//! feeding arbitrary bytes and mutated golden mails through parse and classify.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use intake::classify::{classify, OwnAddresses};
use intake::parse::{parse, ParseError, ParsedMail};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

const LIMIT: usize = 25 * 1024 * 1024;
const REQUIRED_KEYS: &[&str] = &[
    "message_id",
    "message_id_generated",
    "sender",
    "sender_source",
    "subject",
    "in_reply_to",
    "references",
    "text_contains",
    "attachments",
    "class",
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn own() -> OwnAddresses {
    OwnAddresses::new(["support@desk.example".to_string()], "desk.example")
}

fn golden_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

fn to_lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        if !(b == b'\r' && raw.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for &b in &to_lf(raw) {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn error_name(e: &ParseError) -> &'static str {
    match e {
        ParseError::TooLarge { .. } => "too_large",
        ParseError::Empty => "empty",
        ParseError::Unparseable(_) => "unparseable",
        ParseError::NoSender => "no_sender",
        ParseError::TooComplex(_) => "too_complex",
        ParseError::Panic(_) => "panic",
    }
}

/// What we got, in the shape of the expected JSON (plus `text` for diffing).
fn render(result: &Result<ParsedMail, ParseError>, expected: &Map<String, Value>) -> Value {
    let mail = match result {
        Ok(mail) => mail,
        Err(e) => return json!({ "error": error_name(e), "detail": e.to_string() }),
    };
    let wanted: Vec<&str> = expected
        .get("text_contains")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let unchecked_size = |i: usize| {
        expected
            .get("attachments")
            .and_then(|a| a.get(i))
            .is_some_and(|a| a.get("size") == Some(&Value::Null))
    };
    let addresses = |list: &[intake::parse::Mailbox]| -> Vec<String> {
        list.iter().map(|m| m.address.clone()).collect()
    };
    json!({
        "message_id": mail.message_id,
        "message_id_generated": mail.message_id_generated,
        "sender": mail.sender.as_ref().map(|s| json!({ "address": s.address, "name": s.name })),
        "sender_source": mail.sender_source,
        "subject": mail.subject,
        "in_reply_to": mail.in_reply_to,
        "references": mail.references,
        "date": mail.date,
        "to": addresses(&mail.to),
        "cc": addresses(&mail.cc),
        "text_contains": wanted.iter().filter(|w| mail.text.contains(**w)).collect::<Vec<_>>(),
        "attachments": mail.attachments.iter().enumerate().map(|(i, a)| json!({
            "filename": a.filename,
            "content_type": a.content_type,
            "size": if unchecked_size(i) { Value::Null } else { json!(a.data.len()) },
        })).collect::<Vec<_>>(),
        "class": classify(mail, &own()).as_str(),
        "returned_message_ids": mail.returned_message_ids,
        "text": mail.text,
    })
}

/// Compares one variant; returns the mismatching keys with both values.
fn compare(expected: &Map<String, Value>, actual: &Value) -> Vec<String> {
    expected
        .iter()
        .filter(|(key, want)| actual.get(key.as_str()) != Some(*want))
        .map(|(key, want)| {
            format!(
                "{key}: expected {want}, got {}",
                actual.get(key.as_str()).unwrap_or(&Value::Null)
            )
        })
        .collect()
}

#[test]
fn golden_corpus_lf_and_crlf() {
    let files = golden_files();
    let mut ran = 0;
    let mut failures = Vec::new();
    for eml in &files {
        let name = eml.file_stem().unwrap().to_string_lossy().into_owned();
        let json_path = eml.with_extension("json");
        let expected: Value = serde_json::from_slice(
            &std::fs::read(&json_path).unwrap_or_else(|e| panic!("{name}.json: {e}")),
        )
        .unwrap_or_else(|e| panic!("{name}.json: {e}"));
        let expected = expected.as_object().expect("an object").clone();
        if !expected.contains_key("error") {
            for key in REQUIRED_KEYS {
                assert!(expected.contains_key(*key), "{name}.json lacks {key}");
            }
        }
        let raw = std::fs::read(eml).unwrap();
        let failed_path = golden_dir().join(format!("{name}.failed.json"));
        let mut failed = false;
        for (variant, bytes) in [("lf", to_lf(&raw)), ("crlf", to_crlf(&raw))] {
            ran += 1;
            let actual = render(&parse(&bytes, LIMIT), &expected);
            let diffs = compare(&expected, &actual);
            if !diffs.is_empty() {
                failed = true;
                failures.push(format!("{name} ({variant}):\n  {}", diffs.join("\n  ")));
                let mut dump = actual.clone();
                dump["variant"] = json!(variant);
                std::fs::write(&failed_path, serde_json::to_string_pretty(&dump).unwrap()).unwrap();
            }
        }
        if !failed && failed_path.exists() {
            std::fs::remove_file(&failed_path).unwrap();
        }
    }
    assert!(
        ran > 0,
        "no golden cases found in {}",
        golden_dir().display()
    );
    assert!(
        failures.is_empty(),
        "{} golden mismatches (see tests/golden/*.failed.json):\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("golden: {} files, {ran} cases", files.len());
}

/// Deterministic pseudo-random bytes (so the attachment does not compress away).
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u8
        })
        .collect()
}

fn base64_lines(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 38);
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push('\n'); // 76 characters per line
        }
        let n =
            chunk.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn ten_megabyte_attachment_against_the_size_limit() {
    let data = noise(10 * 1024 * 1024 + 12_345);
    let raw = format!(
        "From: Big Sender <big@example.com>\nTo: support@desk.example\n\
         Subject: Full disk image\nMessage-ID: <big.1@example.com>\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"big-boundary\"\n\n\
         --big-boundary\nContent-Type: text/plain; charset=utf-8\n\nImage attached.\n\n\
         --big-boundary\nContent-Type: application/octet-stream; name=\"disk.img\"\n\
         Content-Disposition: attachment; filename=\"disk.img\"\n\
         Content-Transfer-Encoding: base64\n\n{}\n--big-boundary--\n",
        base64_lines(&data)
    );
    assert!(raw.len() > 10 * 1024 * 1024);
    for bytes in [to_lf(raw.as_bytes()), to_crlf(raw.as_bytes())] {
        let mail = parse(&bytes, LIMIT).expect("a 14 MB mail is under 25 MiB");
        assert_eq!(mail.size, bytes.len());
        assert_eq!(mail.text.trim(), "Image attached.");
        assert_eq!(mail.attachments.len(), 1);
        assert_eq!(mail.attachments[0].filename, "disk.img");
        assert_eq!(mail.attachments[0].data.len(), data.len());
        assert!(mail.attachments[0].data == data, "attachment bytes differ");
        match parse(&bytes, 1024 * 1024) {
            Err(ParseError::TooLarge { size, limit }) => {
                assert_eq!((size, limit), (bytes.len(), 1024 * 1024));
            }
            other => panic!("expected TooLarge, got {:?}", other.map(|m| m.size)),
        }
    }
}

fn golden_bytes() -> &'static [Vec<u8>] {
    static CACHE: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CACHE.get_or_init(|| {
        golden_files()
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    })
}

/// parse + classify must return (no panic, and no panic caught inside parse).
fn survives(raw: &[u8]) {
    match parse(raw, LIMIT) {
        Err(ParseError::Panic(msg)) => panic!("mail-parser panicked: {msg}"),
        Err(_) => {}
        Ok(mail) => {
            let _ = classify(&mail, &own());
        }
    }
}

/// Mail-shaped noise: header lines, boundaries, encoded words, base64 and QP.
fn mailish() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "(From|To|Cc|Sender|Reply-To|Return-Path|Subject|Message-ID|In-Reply-To|References|Date|Content-Type|Content-Transfer-Encoding|Content-Disposition|Auto-Submitted|List-Id): [ -~]{0,60}",
        Just("Content-Type: multipart/mixed; boundary=\"b\"".to_string()),
        Just("Content-Type: multipart/report; report-type=delivery-status; boundary=b".to_string()),
        Just("Content-Type: message/rfc822".to_string()),
        Just("Content-Type: text/plain; charset=iso-2022-jp".to_string()),
        Just("Content-Transfer-Encoding: base64".to_string()),
        Just("Content-Transfer-Encoding: quoted-printable".to_string()),
        Just("--b".to_string()),
        Just("--b--".to_string()),
        Just(String::new()),
        "=\\?[a-z0-9-]{0,12}\\?[BQbq]\\?[A-Za-z0-9+/=_]{0,30}\\?=",
        "[A-Za-z0-9+/=]{0,76}",
        "[ -~]{0,80}",
        "[ \t][ -~]{0,40}",
    ];
    prop::collection::vec(line, 0..60).prop_map(|lines| lines.join("\n").into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..4096)) {
        survives(&raw);
    }

    #[test]
    fn mail_shaped_noise_never_panics(raw in mailish()) {
        survives(&raw);
    }

    #[test]
    fn mutated_golden_mails_never_panic(
        file in any::<Index>(),
        cut in any::<Index>(),
        flips in prop::collection::vec((any::<Index>(), any::<u8>()), 0..24),
        crlf in any::<bool>(),
    ) {
        let all = golden_bytes();
        prop_assume!(!all.is_empty());
        let original = &all[file.index(all.len())];
        let mut raw = if crlf { to_crlf(original) } else { to_lf(original) };
        raw.truncate(cut.index(raw.len() + 1));
        for (at, byte) in flips {
            if !raw.is_empty() {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
        }
        survives(&raw);
    }
}
