//! The status page's HTML: minijinja templates (the engine notifications
//! already use; autoescaped as `.html`) filled from a [`Report`], and the
//! last hour's throughput as an inline SVG bar chart.

use crate::status::{ago, folder_stuck, state_words, Report, Throughput};
use minijinja::{context, Environment};
use serde::Serialize;
use std::sync::OnceLock;

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut e = Environment::new();
        for (name, src) in [
            ("layout.html", include_str!("layout.html")),
            ("login.html", include_str!("login.html")),
            ("page.html", include_str!("page.html")),
        ] {
            e.add_template(name, src).expect("status templates compile");
        }
        e
    })
}

fn render(name: &str, ctx: minijinja::Value) -> String {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| {
            format!("<!doctype html><title>intake status</title><p>template error: {e}</p>")
        })
}

/// The login form, with an error after a refused attempt.
pub fn login(error: Option<&str>) -> String {
    render("login.html", context! { error })
}

#[derive(Serialize)]
struct MailboxRow {
    kind: String,
    mailbox: String,
    folder: String,
    state: &'static str,
    stuck: bool,
    last_success: String,
    lag: u64,
    imported: u64,
    acks_owed: u64,
    last_error: String,
}

#[derive(Serialize)]
struct WebhookRow {
    source: String,
    accepted: u64,
    refused: Vec<(String, u64)>,
}

#[derive(Serialize)]
struct ReviewRow {
    id: i64,
    ago: String,
    sender: String,
    subject: String,
    reason: String,
}

#[derive(Serialize)]
struct QuarantineRow {
    id: i64,
    ago: String,
    source: String,
    mailbox: Option<String>,
    size: i64,
    reason: String,
}

/// A flash message and whether it reports a failure.
pub struct Flash {
    pub text: String,
    pub error: bool,
}

/// The whole page for a logged-in session.
pub fn page(r: &Report, csrf: &str, flash: Option<Flash>) -> String {
    let (mut mailboxes, mut webhooks) = (Vec::new(), Vec::new());
    let (mut ready, mut database, mut database_error, mut daemon_error) =
        (false, false, None, None);
    let mut throughput = Throughput::default();
    match &r.daemon {
        Ok(v) => {
            (ready, database, database_error) = (v.ready, v.database, v.database_error.clone());
            throughput = v.throughput.clone();
            mailboxes = v
                .mailboxes
                .iter()
                .map(|f| MailboxRow {
                    kind: f.kind.clone(),
                    mailbox: f.mailbox.clone(),
                    folder: f.folder.clone(),
                    state: state_words(f.state),
                    stuck: folder_stuck(f),
                    last_success: f
                        .last_success
                        .map(|t| format!("{} ago", ago(r.at - t)))
                        .unwrap_or_else(|| "never".into()),
                    lag: f.lag,
                    imported: f.imported,
                    acks_owed: f.acks_owed,
                    last_error: f.last_error.clone().unwrap_or_default(),
                })
                .collect();
            webhooks = v
                .webhooks
                .iter()
                .map(|w| WebhookRow {
                    source: w.source.clone(),
                    accepted: w.accepted(),
                    refused: w.refused(),
                })
                .collect();
        }
        Err(e) => daemon_error = Some(e.clone()),
    }
    let quarantine: Vec<QuarantineRow> = r
        .quarantine
        .iter()
        .map(|q| QuarantineRow {
            id: q.id,
            ago: ago(r.at - q.received_at),
            source: q.source.clone(),
            mailbox: q.mailbox.clone(),
            size: q.size,
            reason: q.reason.clone(),
        })
        .collect();
    let review: Vec<ReviewRow> = r
        .review
        .iter()
        .map(|e| ReviewRow {
            id: e.id,
            ago: ago(r.at - e.received_at),
            sender: e.sender.clone(),
            subject: e.subject.clone(),
            reason: e.reason.clone(),
        })
        .collect();
    let hour = throughput.sum();
    let generated = time::OffsetDateTime::from_unix_timestamp(r.at / 1000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default();
    render(
        "page.html",
        context! {
            generated,
            csrf,
            flash => flash.as_ref().map(|f| f.text.clone()),
            flash_error => flash.as_ref().is_some_and(|f| f.error),
            ready, database, database_error, daemon_error,
            hour => context! { stored => hour.stored, duplicate => hour.duplicate, quarantined => hour.quarantined },
            mailboxes, webhooks,
            outbox => r.outbox(),
            oldest_due => (r.queues.oldest_due_ms > 0).then(|| ago(r.queues.oldest_due_ms)),
            quarantine_total => r.queues.quarantine,
            quarantine,
            review_total => r.queues.review,
            review,
            chart => chart(&throughput),
        },
    )
}

/// Bars per minute, stacked stored (blue), duplicate (grey), quarantined
/// (red), with a text alternative for screen readers.
pub fn chart(t: &Throughput) -> String {
    const W: usize = 600;
    const H: usize = 120;
    let bar = W / t.minutes.len().max(1);
    let max = t
        .minutes
        .iter()
        .map(|m| m.total())
        .max()
        .unwrap_or(0)
        .max(1);
    let sum = t.sum();
    let mut svg = format!(
        "<svg id=\"throughput\" role=\"img\" viewBox=\"0 0 {W} {}\" width=\"{W}\" height=\"{}\" \
         aria-labelledby=\"throughput-title\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"throughput-title\">Messages per minute over the last hour: {} stored, {} duplicates, {} quarantined; busiest minute {}</title>\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#f6f6f6\"/>",
        H + 18,
        H + 18,
        sum.stored,
        sum.duplicate,
        sum.quarantined,
        max
    );
    for (i, m) in t.minutes.iter().enumerate() {
        let x = i * bar;
        // Each segment ends where the running total reaches, at least a
        // pixel tall while room is left.
        let (mut cum, mut top) = (0u64, H);
        for (n, colour) in [
            (m.stored, "#0b3d91"),
            (m.duplicate, "#777777"),
            (m.quarantined, "#8b0000"),
        ] {
            if n == 0 || top == 0 {
                continue;
            }
            cum += n;
            let y = H - ((cum as f64 / max as f64) * H as f64).round() as usize;
            let y = y.min(top - 1);
            svg.push_str(&format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"/>",
                bar.saturating_sub(1).max(1),
                top - y
            ));
            top = y;
        }
    }
    svg.push_str(&format!(
        "<text x=\"0\" y=\"{}\" font-size=\"12\" fill=\"#111\">60 min ago</text>\
         <text x=\"{W}\" y=\"{}\" font-size=\"12\" fill=\"#111\" text-anchor=\"end\">now · peak {max}/min</text></svg>",
        H + 15,
        H + 15
    ));
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Minute;

    #[test]
    fn the_chart_scales_to_the_busiest_minute_and_says_it_in_words() {
        let mut t = Throughput {
            minutes: vec![Minute::default(); 60],
        };
        t.minutes[59] = Minute {
            start: 0,
            stored: 8,
            duplicate: 1,
            quarantined: 1,
        };
        t.minutes[10].stored = 5;
        let svg = chart(&t);
        assert!(
            svg.contains("13 stored, 1 duplicates, 1 quarantined; busiest minute 10"),
            "{svg}"
        );
        // The busiest minute fills the height: 8 + 1 + 1 of 120 px.
        assert!(
            svg.contains("x=\"590\" y=\"24\" width=\"9\" height=\"96\""),
            "{svg}"
        );
        assert_eq!(svg.matches("<rect").count(), 1 + 3 + 1);
        // Stacked segments never leave the chart, however the counts round.
        let t = Throughput {
            minutes: vec![
                Minute {
                    start: 0,
                    stored: 1,
                    duplicate: 1,
                    quarantined: 997
                };
                60
            ],
        };
        let svg = chart(&t);
        assert!(
            !svg.contains("y=\"-") && !svg.contains("height=\"0\""),
            "{svg}"
        );
    }

    #[test]
    fn text_from_the_outside_is_escaped() {
        let html = login(Some("<script>alert(1)</script>"));
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "{html}"
        );
    }
}
