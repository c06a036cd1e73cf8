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
    /// Our MTA's result passes (or, without `require_pass`, does not fail).
    Accepted,
    /// Must not act as its From address: why, in words.
    Review(String),
}

/// One unfolded header field: (name, value), in order from the top.
fn fields(raw: &[u8]) -> Vec<(String, String)> {
    let end = memchr::memmem::find(raw, b"\n\n")
        .or_else(|| memchr::memmem::find(raw, b"\r\n\r\n"))
        .unwrap_or(raw.len());
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

/// Judge a raw mail whose From domain is `from_domain`.
pub fn judge(raw: &[u8], from_domain: &str, t: &Trust) -> Verdict {
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
    let from_domain = from_domain.to_ascii_lowercase();
    match dmarc(results) {
        Some((r, d)) if r == "fail" => {
            return Verdict::Review(format!(
                "dmarc=fail for {} (Authentication-Results by {id})",
                d.unwrap_or(from_domain)
            ))
        }
        Some((r, d))
            if t.require_pass
                && (r != "pass" || d.as_deref().is_some_and(|d| d != from_domain)) =>
        {
            return Verdict::Review(format!(
                "dmarc={r}{} and [trust] require_pass (Authentication-Results by {id})",
                d.map(|d| format!(" for {d}")).unwrap_or_default()
            ))
        }
        None if t.require_pass => {
            return Verdict::Review(format!(
                "no DMARC result and [trust] require_pass (Authentication-Results by {id})"
            ))
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
    Verdict::Accepted
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
        assert_eq!(judge(&mail(pass), "acme.example", &t), Verdict::Accepted);
        let v = judge(&mail(fail), "acme.example", &t);
        assert!(
            matches!(&v, Verdict::Review(r) if r.contains("dmarc=fail for acme.example")),
            "{v:?}"
        );
        // A forged pass below our fail changes nothing; a forged pass from
        // another service id is ignored.
        let forged = format!("{fail}{pass}");
        assert!(matches!(
            judge(&mail(&forged), "acme.example", &t),
            Verdict::Review(_)
        ));
        let other = "Authentication-Results: evil.example; dmarc=pass header.from=acme.example\n";
        assert!(matches!(
            judge(&mail(&format!("{other}{fail}")), "acme.example", &t),
            Verdict::Review(_)
        ));
        // A fail written below ours (before it reached us) does not count.
        assert_eq!(
            judge(&mail(&format!("{pass}{fail}")), "acme.example", &t),
            Verdict::Accepted
        );
        assert_eq!(
            judge(&mail(fail), "acme.example", &Trust::default()),
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
            matches!(judge(&mail(none), "acme.example", &t), Verdict::Review(r) if r.contains("dmarc=none"))
        );
        assert!(
            matches!(judge(&mail(""), "acme.example", &t), Verdict::Review(r) if r.contains("no Authentication-Results"))
        );
        let other_domain =
            "Authentication-Results: mx.desk.test; dmarc=pass header.from=evil.example\n";
        assert!(matches!(
            judge(&mail(other_domain), "acme.example", &t),
            Verdict::Review(_)
        ));
        let pass = "Authentication-Results: MX.desk.test; dmarc=pass header.from=ACME.example\n";
        assert_eq!(judge(&mail(pass), "acme.example", &t), Verdict::Accepted);
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
            let v = judge(&mail(&format!("{h}{ar}")), "acme.example", &t);
            assert_eq!(matches!(v, Verdict::Review(_)), review, "{h}: {v:?}");
            // Below our result, a sender could have written it: ignored.
            assert_eq!(
                judge(&mail(&format!("{ar}{h}")), "acme.example", &t),
                Verdict::Accepted,
                "{h}"
            );
        }
    }
}
