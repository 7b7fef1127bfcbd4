//! What the daemon says in its log, and how often.
//!
//! Logs go through `tracing` (the daemon prints them on stderr, filtered
//! by `ODPX_LOG`, default `info`). The rule: one line per state change
//! (a port down or back, the flow limit reached or left, a new reason to
//! refuse an offload), and events that can happen per packet (upcalls
//! lost to full queues) summed and said at most every [`LOSS_EVERY`], so
//! a flood cannot flood the log too. Counters (`ctl show`, `--json`, the
//! metrics endpoint) hold the exact numbers; the log says when things
//! changed.

use crate::switch::Switch;
use std::time::{Duration, Instant};

/// How often lost upcalls are reported at most.
pub const LOSS_EVERY: Duration = Duration::from_secs(10);

/// At most one report per `every`; what came in between is summed into
/// the next one.
#[derive(Debug)]
pub struct RateLimit {
    every: Duration,
    last: Option<Instant>,
    pending: u64,
}

impl RateLimit {
    pub fn new(every: Duration) -> RateLimit {
        RateLimit {
            every,
            last: None,
            pending: 0,
        }
    }

    /// Notes `n` events at `now`; returns the sum to report if a report
    /// is due (the first one at once, then at most one per `every`).
    pub fn note(&mut self, n: u64, now: Instant) -> Option<u64> {
        self.pending += n;
        if self.pending == 0 || self.last.is_some_and(|l| now.duration_since(l) < self.every) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

/// Watches the PMDs' lost-upcall counters for the daemon's log.
pub struct LossWatch {
    seen: u64,
    limit: RateLimit,
}

impl Default for LossWatch {
    fn default() -> Self {
        LossWatch {
            seen: 0,
            limit: RateLimit::new(LOSS_EVERY),
        }
    }
}

impl LossWatch {
    /// A line to log if upcalls were lost since the last report and one
    /// is due.
    pub fn check(&mut self, sw: &Switch, now: Instant) -> Option<String> {
        let lost: u64 = sw.pmds().iter().map(|h| h.counters.snapshot().upcalls_lost).sum();
        let new = lost.saturating_sub(self.seen);
        self.seen = lost;
        self.limit.note(new, now).map(|n| {
            format!("{n} upcall(s) lost: a port's upcall queue was full (a flood of new flows?); {lost} in all")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_report_is_at_once_then_one_per_interval_with_the_sum() {
        let t0 = Instant::now();
        let s = |ms: u64| t0 + Duration::from_millis(ms);
        let mut r = RateLimit::new(Duration::from_secs(10));
        assert_eq!(r.note(0, s(0)), None, "nothing to say");
        assert_eq!(r.note(3, s(1)), Some(3));
        assert_eq!(r.note(5, s(2000)), None);
        assert_eq!(r.note(7, s(9000)), None);
        assert_eq!(r.note(0, s(11_001)), Some(12), "the sum of what was held back");
        assert_eq!(r.note(0, s(30_000)), None);
        assert_eq!(r.note(1, s(30_001)), Some(1));
    }
}
