//! `intake import --mbox FILE | --maildir DIR`: an archive through the same
//! pipeline and batching as the daemon, with a progress bar on a terminal
//! (count, rate, ETA) or a plain line every few seconds otherwise, and a
//! summary line at the end.

use crate::model::{Inbound, OutcomeKind, RawMail};
use crate::pipeline::Pipeline;
use crate::sources::archive::{Archive, Unit};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// What an import did, counted by outcome.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub read: u64,
    pub created: u64,
    pub appended: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub review: u64,
    pub kept: u64,
}

impl Summary {
    fn add(&mut self, k: &OutcomeKind) {
        match k {
            OutcomeKind::Created => self.created += 1,
            OutcomeKind::Appended => self.appended += 1,
            OutcomeKind::Duplicate => self.duplicates += 1,
            OutcomeKind::Quarantined => self.quarantined += 1,
            OutcomeKind::Review => self.review += 1,
            OutcomeKind::Kept => self.kept += 1,
        }
    }

    /// The summary line: what ops read first.
    pub fn line(&self, secs: f64) -> String {
        format!(
            "imported {} messages in {secs:.1} s ({:.0}/s): {} new tickets, {} replies, {} already stored, {} quarantined{}",
            self.read,
            self.read as f64 / secs.max(1e-3),
            self.created,
            self.appended,
            self.duplicates,
            self.quarantined,
            if self.review > 0 {
                format!(", {} held for review", self.review)
            } else {
                String::new()
            } + &if self.kept > 0 {
                format!(", {} delivery reports kept under bounces", self.kept)
            } else {
                String::new()
            }
        )
    }
}

/// Progress shown while importing: a bar on a terminal, log lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    unit: Unit,
    total: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(unit: Unit, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let template = match unit {
                Unit::Bytes => {
                    "{bar:30} {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} ETA {eta}"
                }
                Unit::Messages => "{bar:30} {pos}/{len} messages, {per_sec}, ETA {eta} {msg}",
            };
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(ProgressStyle::with_template(template).expect("valid template"));
            b
        });
        Progress {
            bar,
            unit,
            total,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, position: u64, s: &Summary) {
        if let Some(b) = &self.bar {
            b.set_position(position);
            if self.unit == Unit::Bytes {
                b.set_message(format!("{} messages", s.read));
            }
            return;
        }
        if self.last_line.elapsed() < Duration::from_secs(5) {
            return;
        }
        self.last_line = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        let done = match self.unit {
            Unit::Bytes => format!("{} of {} bytes", position, self.total),
            Unit::Messages => format!("{position} of {} messages", self.total),
        };
        eprintln!(
            "intake import: {done}, {} messages so far ({:.0}/s)",
            s.read,
            s.read as f64 / secs.max(1e-3)
        );
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Import every message of `archive`, `batch` at a time. Ok: the summary;
/// Err: why the import stopped (what was committed before stays).
pub async fn run(
    p: &Pipeline,
    archive: &Archive,
    mailbox: Option<String>,
) -> Result<(Summary, f64), String> {
    let mut reader = archive.open()?;
    let mut progress = Progress::new(reader.unit, reader.total);
    let batch = p.settings.batch_size.max(1);
    let mut summary = Summary::default();
    let mut items = Vec::with_capacity(batch);
    loop {
        let next = reader.next();
        let end = next.is_none();
        if let Some(m) = next {
            items.push(Inbound::Mail(RawMail {
                raw: m?,
                mailbox: mailbox.clone(),
                source: "import".into(),
            }));
        }
        if items.len() >= batch || (end && !items.is_empty()) {
            let n = items.len() as u64;
            let outcomes = p
                .ingest(std::mem::take(&mut items), None)
                .await
                .map_err(|e| format!("after {} messages: {e}", summary.read))?;
            summary.read += n;
            for o in &outcomes {
                summary.add(&o.outcome);
            }
            progress.update(reader.position(), &summary);
        }
        if end {
            break;
        }
    }
    progress.finish();
    if summary.read == 0 && reader.total > 0 && reader.unit == Unit::Bytes {
        return Err("no `From ` separator line found: not an mbox file".into());
    }
    Ok((summary, progress.started.elapsed().as_secs_f64()))
}
