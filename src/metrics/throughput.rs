//! Messages the daemon handled per minute over the last hour, by outcome:
//! a ring of sixty one-minute buckets in memory, fed by
//! [`super::record_outcomes`] (one short lock per batch).
//!
//! In memory rather than a query: counting the last hour in the database
//! would need an index on every comment's time, paid on the ingest path for
//! a page read now and then. The ring is this daemon's own work since it
//! started, which is what a throughput chart of one daemon shows.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Minutes kept.
pub const MINUTES: usize = 60;
const MINUTE_MS: i64 = 60_000;

/// One minute's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minute {
    /// Unix ms the minute starts.
    pub start: i64,
    pub stored: u64,
    pub duplicate: u64,
    pub quarantined: u64,
}

impl Minute {
    pub fn total(&self) -> u64 {
        self.stored + self.duplicate + self.quarantined
    }
}

/// The last hour, oldest minute first, the current minute last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub minutes: Vec<Minute>,
}

impl Throughput {
    pub fn sum(&self) -> Minute {
        let mut s = Minute::default();
        for m in &self.minutes {
            s.stored += m.stored;
            s.duplicate += m.duplicate;
            s.quarantined += m.quarantined;
        }
        s
    }
}

const EMPTY: Minute = Minute {
    start: 0,
    stored: 0,
    duplicate: 0,
    quarantined: 0,
};

/// The ring: bucket `i` holds the minute whose number ≡ i (mod 60).
struct Ring {
    buckets: [Minute; MINUTES],
}

impl Default for Ring {
    fn default() -> Self {
        Ring {
            buckets: [EMPTY; MINUTES],
        }
    }
}

impl Ring {
    fn bucket(&mut self, now: i64) -> &mut Minute {
        let start = now.div_euclid(MINUTE_MS) * MINUTE_MS;
        let b = &mut self.buckets[(start / MINUTE_MS).rem_euclid(MINUTES as i64) as usize];
        if b.start != start {
            *b = Minute {
                start,
                ..Minute::default()
            };
        }
        b
    }

    fn snapshot(&self, now: i64) -> Throughput {
        let current = now.div_euclid(MINUTE_MS) * MINUTE_MS;
        let minutes = (0..MINUTES as i64)
            .rev()
            .map(|back| {
                let start = current - back * MINUTE_MS;
                let b = self.buckets[(start / MINUTE_MS).rem_euclid(MINUTES as i64) as usize];
                if b.start == start {
                    b
                } else {
                    Minute {
                        start,
                        ..Minute::default()
                    }
                }
            })
            .collect();
        Throughput { minutes }
    }
}

static RING: Mutex<Ring> = Mutex::new(Ring {
    buckets: [EMPTY; MINUTES],
});

/// Count a batch's outcomes at `now` (unix ms).
pub fn record(now: i64, stored: u64, duplicate: u64, quarantined: u64) {
    if stored + duplicate + quarantined == 0 {
        return;
    }
    let mut r = RING.lock().expect("throughput ring");
    let b = r.bucket(now);
    b.stored += stored;
    b.duplicate += duplicate;
    b.quarantined += quarantined;
}

/// The last hour at `now`.
pub fn snapshot(now: i64) -> Throughput {
    RING.lock().expect("throughput ring").snapshot(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_roll_over_and_old_ones_read_as_zero() {
        let mut r = Ring::default();
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE_MS;
        r.bucket(t0 + 5).stored += 3;
        r.bucket(t0 + 59_999).quarantined += 1;
        r.bucket(t0 + MINUTE_MS).duplicate += 2;
        let s = r.snapshot(t0 + MINUTE_MS + 1);
        assert_eq!(s.minutes.len(), MINUTES);
        let last = s.minutes[MINUTES - 1];
        assert_eq!((last.start, last.duplicate), (t0 + MINUTE_MS, 2));
        let prev = s.minutes[MINUTES - 2];
        assert_eq!((prev.stored, prev.quarantined), (3, 1));
        assert_eq!(s.sum().total(), 6);
        // An hour later the same buckets hold other minutes: read as zero,
        // then reset when written.
        let later = t0 + 61 * MINUTE_MS;
        assert_eq!(r.snapshot(later).sum().total(), 0);
        r.bucket(later).stored += 1;
        assert_eq!(
            r.snapshot(later).sum(),
            Minute {
                start: 0,
                stored: 1,
                duplicate: 0,
                quarantined: 0
            }
        );
        assert!(r
            .snapshot(later)
            .minutes
            .windows(2)
            .all(|w| w[1].start - w[0].start == MINUTE_MS));
    }
}
