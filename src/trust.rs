//! Sender trust: may a mail act as its From address? A pure stage over the
//! raw header block, judged against the desk's own receiving MTAs
//! (`[trust] authserv_ids`).
//!
//! The rule (RFC 8601 §5): an `Authentication-Results` header counts only
//! when its authentication service id is one of ours, and of those only the
//! topmost, which our MTA prepended on receipt; anything below it was
//! written before the mail reached us and may be forged. Spam verdicts
//! (`X-Spam-Flag`, SpamAssassin's `X-Spam-Status`/`X-Spam-Score`, rspamd's
//! `X-Spamd-Result`/`X-Rspamd-Score`) count only above that same header:
//! a filter on our MTA that adds its verdict before (above) the MTA's own
//! authentication result. Without a trusted result, no spam header counts.
//!
//! Work is one pass over the header block: linear in its size.

/// `[trust]` as the pipeline uses it.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Lower-case authentication service ids of our own MTAs; empty: senders
    /// are not verified.
    pub authserv_ids: Vec<String>,
    /// Review anything whose trusted DMARC result is not `pass`.
    pub require_pass: bool,
    /// Spam score at or above which a message goes to review.
    pub spam_score_review: f64,
}

/// What the headers say about a mail's From address.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing configured to verify with: believed as before.
    Unverified,
    /// Nothing against it (without `require_pass`), but no passing DMARC
    /// result for the sender's domain either: an end user as before, never
    /// an agent.
    Accepted,
    /// Our MTA's DMARC result passes for exactly the sender's domain, and
    /// the sender is the From address: it may act as that address, agents
    /// included.
    Authenticated,
    /// Must not act as its From address: why, in words.
    Review(String),
}

/// Where the header block ends: at the first empty line, whether its line
/// ends are LF or CRLF (or mixed).
fn header_end(raw: &[u8]) -> usize {
    for i in memchr::memchr_iter(b'\n', raw) {
        match raw.get(i + 1..) {
            Some([b'\n', ..]) | Some([b'\r', b'\n', ..]) => return i,
            _ => {}
        }
    }
    raw.len()
}

/// One unfolded header field: (name, value), in order from the top.
fn fields(raw: &[u8]) -> Vec<(String, String)> {
    let end = header_end(raw);
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    out
}

/// The authentication service id of an `Authentication-Results` value
/// (its first token, without the optional version) and the rest.
fn authserv(value: &str) -> (String, &str) {
    let (id, rest) = value.split_once(';').unwrap_or((value, ""));
    let id = id.split_whitespace().next().unwrap_or("");
    (id.to_ascii_lowercase(), rest)
}

/// `dmarc=<result>` of a result list, with its `header.from` if given.
fn dmarc(results: &str) -> Option<(String, Option<String>)> {
    for r in results.split(';') {
        let mut words = r.split_whitespace();
        let Some(first) = words.next() else { continue };
        let Some((method, result)) = first.split_once('=') else {
            continue;
        };
        if !method.eq_ignore_ascii_case("dmarc") {
            continue;
        }
        let from = words
            .filter_map(|w| w.split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case("header.from"))
            .map(|(_, v)| v.trim_matches(['"', ';']).to_ascii_lowercase());
        return Some((result.to_ascii_lowercase(), from));
    }
    None
}

/// A spam verdict's score from one header, or `f64::INFINITY` for a plain
/// "yes" with no score.
fn spam_score(name: &str, value: &str) -> Option<f64> {
    let num = |s: &str| {
        s.trim()
            .trim_start_matches('+')
            .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .next()
            .and_then(|n| n.parse::<f64>().ok())
    };
    match name {
        "x-spam-flag" => value
            .trim()
            .eq_ignore_ascii_case("yes")
            .then_some(f64::INFINITY),
        "x-spam-score" | "x-rspamd-score" => num(value),
        "x-spam-status" => {
            let score = value
                .split([' ', ','])
                .find_map(|w| w.strip_prefix("score=").or_else(|| w.strip_prefix("hits=")))
                .and_then(num);
            match score {
                Some(s) => Some(s),
                None if value.trim_start().to_ascii_lowercase().starts_with("yes") => {
                    Some(f64::INFINITY)
                }
                None => None,
            }
        }
        // `default: True [7.50 / 15.00]; …`
        "x-spamd-result" => value
            .split_once('[')
            .and_then(|(_, r)| r.split('/').next())
            .and_then(num),
        _ => None,
    }
}

/// Judge a raw mail whose sender has the domain `from_domain` when the
/// sender is the From header's address, `None` when it was taken from
/// another header (Sender, Reply-To, Return-Path), which DMARC does not
/// cover.
pub fn judge(raw: &[u8], from_domain: Option<&str>, t: &Trust) -> Verdict {
    if t.authserv_ids.is_empty() {
        return Verdict::Unverified;
    }
    let fields = fields(raw);
    let ours = fields.iter().position(|(n, v)| {
        n == "authentication-results" && t.authserv_ids.contains(&authserv(v).0)
    });
    let Some(at) = ours else {
        return if t.require_pass {
            Verdict::Review("no Authentication-Results from our own MTA".into())
        } else {
            Verdict::Accepted
        };
    };
    let (id, results) = authserv(&fields[at].1);
    let sender = from_domain.and_then(crate::identity::normalise_domain);
    let by = format!("(Authentication-Results by {id})");
    let mut authenticated = false;
    match dmarc(results) {
        Some((r, d)) if r == "fail" => {
            let d = d.or(sender).unwrap_or_default();
            return Verdict::Review(format!("dmarc=fail for {d} {by}"));
        }
        Some((r, d)) if r == "pass" => {
            let d = d.as_deref().and_then(crate::identity::normalise_domain);
            match (&sender, d) {
                (Some(s), Some(d)) if *s != d => {
                    // Our MTA judged another From than the one we read (two
                    // From fields, an address hidden in a display name, …).
                    return Verdict::Review(format!(
                        "dmarc=pass is for {d}, not for the sender's domain {s} {by}"
                    ));
                }
                (Some(_), _) => authenticated = true,
                (None, _) if t.require_pass => {
                    return Verdict::Review(format!(
                        "the sender is not the From address, which DMARC covers, and [trust] require_pass {by}"
                    ))
                }
                (None, _) => {}
            }
        }
        Some((r, d)) if t.require_pass => {
            return Verdict::Review(format!(
                "dmarc={r}{} and [trust] require_pass {by}",
                d.map(|d| format!(" for {d}")).unwrap_or_default()
            ))
        }
        None if t.require_pass => {
            return Verdict::Review(format!("no DMARC result and [trust] require_pass {by}"))
        }
        _ => {}
    }
    for (name, value) in &fields[..at] {
        if let Some(score) = spam_score(name, value) {
            if score >= t.spam_score_review {
                let shown = if score.is_finite() {
                    format!("score {score}")
                } else {
                    "flagged".into()
                };
                return Verdict::Review(format!(
                    "spam: {name} {shown}, at or above {}",
                    t.spam_score_review
                ));
            }
        }
    }
    if authenticated {
        Verdict::Authenticated
    } else {
        Verdict::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust() -> Trust {
        Trust {
            authserv_ids: vec!["mx.desk.test".into()],
            require_pass: false,
            spam_score_review: 5.0,
        }
    }

    fn mail(headers: &str) -> Vec<u8> {
        format!("{headers}From: alice@acme.example\nSubject: hi\n\nbody\n").into_bytes()
    }

    #[test]
    fn only_the_topmost_result_of_our_own_mta_counts() {
        let t = trust();
        let pass =
            "Authentication-Results: mx.desk.test; spf=pass; dmarc=pass header.from=acme.example\n";
        let fail = "Authentication-Results: mx.desk.test 1;\n dmarc=fail (p=reject) header.from=acme.example\n";
        assert_eq!(
            judge(&mail(pass), Some("acme.example"), &t),
            Verdict::Authenticated
        );
        let v = judge(&mail(fail), Some("acme.example"), &t);
        assert!(
            matches!(&v, Verdict::Review(r) if r.contains("dmarc=fail for acme.example")),
            "{v:?}"
        );
        // A forged pass below our fail changes nothing; a forged pass from
        // another service id is ignored.
        let forged = format!("{fail}{pass}");
        assert!(matches!(
            judge(&mail(&forged), Some("acme.example"), &t),
            Verdict::Review(_)
        ));
        let other = "Authentication-Results: evil.example; dmarc=pass header.from=acme.example\n";
        assert!(matches!(
            judge(&mail(&format!("{other}{fail}")), Some("acme.example"), &t),
            Verdict::Review(_)
        ));
        // A fail written below ours (before it reached us) does not count.
        assert_eq!(
            judge(&mail(&format!("{pass}{fail}")), Some("acme.example"), &t),
            Verdict::Authenticated
        );
        assert_eq!(
            judge(&mail(fail), Some("acme.example"), &Trust::default()),
            Verdict::Unverified
        );
    }

    #[test]
    fn require_pass_reviews_anything_short_of_pass() {
        let t = Trust {
            require_pass: true,
            ..trust()
        };
        let none = "Authentication-Results: mx.desk.test; dmarc=none header.from=acme.example\n";
        assert!(
            matches!(judge(&mail(none), Some("acme.example"), &t), Verdict::Review(r) if r.contains("dmarc=none"))
        );
        assert!(
            matches!(judge(&mail(""), Some("acme.example"), &t), Verdict::Review(r) if r.contains("no Authentication-Results"))
        );
        let other_domain =
            "Authentication-Results: mx.desk.test; dmarc=pass header.from=evil.example\n";
        assert!(matches!(
            judge(&mail(other_domain), Some("acme.example"), &t),
            Verdict::Review(_)
        ));
        let pass = "Authentication-Results: MX.desk.test; dmarc=pass header.from=ACME.example\n";
        assert_eq!(
            judge(&mail(pass), Some("acme.example"), &t),
            Verdict::Authenticated
        );
    }

    #[test]
    fn spam_verdicts_above_our_result_count() {
        let t = trust();
        let ar = "Authentication-Results: mx.desk.test; dmarc=pass header.from=acme.example\n";
        for (h, review) in [
            ("X-Spam-Flag: YES\n", true),
            ("X-Spam-Flag: NO\n", false),
            (
                "X-Spam-Status: Yes, score=7.3 required=5.0 tests=BAYES_99\n",
                true,
            ),
            ("X-Spam-Status: No, score=1.2 required=5.0\n", false),
            ("X-Spam-Score: 5.0\n", true),
            (
                "X-Spamd-Result: default: False [6.40 / 15.00];\n\tBAYES_SPAM(5.10)[99.9%]\n",
                true,
            ),
            ("X-Spamd-Result: default: False [0.40 / 15.00]\n", false),
            ("X-Rspamd-Score: 12.5\n", true),
            ("X-Rspamd-Score: -1.0\n", false),
        ] {
            let v = judge(&mail(&format!("{h}{ar}")), Some("acme.example"), &t);
            assert_eq!(matches!(v, Verdict::Review(_)), review, "{h}: {v:?}");
            // Below our result, a sender could have written it: ignored.
            assert_eq!(
                judge(&mail(&format!("{ar}{h}")), Some("acme.example"), &t),
                Verdict::Authenticated,
                "{h}"
            );
        }
    }

    #[test]
    fn only_a_pass_for_the_from_address_itself_authenticates() {
        let t = trust();
        let pass = "Authentication-Results: mx.desk.test; dmarc=pass header.from=acme.example\n";
        let none = "Authentication-Results: mx.desk.test; dmarc=none header.from=acme.example\n";
        // No DMARC policy: believed as an end user, not authenticated.
        assert_eq!(
            judge(&mail(none), Some("acme.example"), &t),
            Verdict::Accepted
        );
        // A pass for another domain than the From we read is a mismatch
        // worth a look, with or without require_pass.
        let v = judge(&mail(pass), Some("evil.example"), &t);
        assert!(
            matches!(&v, Verdict::Review(r) if r.contains("not for the sender's domain evil.example")),
            "{v:?}"
        );
        // The sender came from Sender/Reply-To: DMARC says nothing of it.
        assert_eq!(judge(&mail(pass), None, &t), Verdict::Accepted);
        let strict = Trust {
            require_pass: true,
            ..trust()
        };
        assert!(matches!(
            judge(&mail(pass), None, &strict),
            Verdict::Review(_)
        ));
        // IDNA spellings of one domain are one domain.
        let idn =
            "Authentication-Results: mx.desk.test; dmarc=pass header.from=xn--bcher-kva.example\n";
        assert_eq!(
            judge(&mail(idn), Some("Bücher.example"), &t),
            Verdict::Authenticated
        );
    }

    #[test]
    fn the_header_block_ends_at_the_first_empty_line_in_any_line_ending() {
        let t = trust();
        // CRLF headers and a body holding LF LF and a forged result: the
        // body's text is no header.
        let raw = b"From: alice@acme.example\r\nSubject: hi\r\n\r\nquoted:\n\nAuthentication-Results: mx.desk.test; dmarc=pass\n";
        assert_eq!(judge(raw, Some("acme.example"), &t), Verdict::Accepted);
        let raw = b"Authentication-Results: mx.desk.test; dmarc=fail\r\nFrom: a@acme.example\r\n\r\nx\n\ny";
        assert!(matches!(
            judge(raw, Some("acme.example"), &t),
            Verdict::Review(_)
        ));
        assert_eq!(header_end(b"A: b\n\r\nbody"), 4);
        assert_eq!(header_end(b"A: b"), 4);
    }
}
