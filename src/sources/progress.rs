//! `intake run --once` on a terminal: one progress bar per mailbox folder
//! (imported so far, of that plus the backlog the server still holds, with
//! the rate and an ETA), read from the same folder registry `/readyz`
//! reports from. Nothing is drawn when standard error is not a terminal:
//! cron keeps the plain log lines.

use super::imap::Registry;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;
use tokio::sync::watch;

/// The bars' task; [`Bars::finish`] draws the last state and stops it.
pub struct Bars {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Start drawing `registry`'s folders, if standard error is a terminal.
pub fn show(registry: Registry) -> Option<Bars> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix:24} {bar:30} {pos}/{len} messages, {per_sec}, ETA {eta} {msg}",
        )
        .expect("valid template");
        let mut bars: BTreeMap<(String, String), ProgressBar> = BTreeMap::new();
        loop {
            for f in registry.snapshot() {
                let key = (f.mailbox.clone(), f.folder.clone());
                let bar = bars.entry(key).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(0));
                    b.set_style(style.clone());
                    b.set_prefix(format!("{}/{}", f.mailbox, f.folder));
                    b
                });
                bar.set_length(f.imported + f.lag);
                bar.set_position(f.imported);
                // The state as `/readyz` spells it (`idle`, `backing_off`, …).
                let state = serde_json::to_value(f.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                bar.set_message(match &f.last_error {
                    Some(e) => format!("{state}: {e}"),
                    None => state,
                });
            }
            if *stopped.borrow() {
                break;
            }
            tokio::select! {
                _ = stopped.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        for b in bars.values() {
            b.finish();
        }
    });
    Some(Bars { stop, task })
}

impl Bars {
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
