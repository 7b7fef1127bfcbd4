//! The dynamic flow limit and the idle timeout that follows it.
//!
//! # Why
//! Megaflows cost memory in every datapath and time in every revalidation
//! round. Under a flood of new flows, installing each one would grow the
//! tables without bound and slow the owner until it can no longer keep
//! up. Open vSwitch bounds this with a flow limit that adapts to how long
//! its revalidation rounds take, and with an idle timeout that drops to
//! 100 ms when the limit is exceeded. odpx does the same, with an idle
//! timeout that shrinks *before* the limit is reached, so the tables make
//! room for new flows gradually instead of all at once.
//!
//! # The rules (after `ofproto-dpif-upcall.c`, `udpif_revalidator`)
//! * After each round of duration `d` (the owner asks every datapath for
//!   its idle megaflows and statistics, and processes the answers; a busy
//!   owner answers late): `d` > 2 s divides the limit by `d` in seconds;
//!   `d` > 1.3 s takes a quarter off; `d` < 1 s with more than 2,000
//!   megaflows adds 1,000 while the limit is below what a 1 s round could
//!   handle at that rate. The limit stays between 1,000 (or the configured
//!   limit, if smaller) and the configured limit.
//! * Installs beyond the limit are refused: the packet is still executed
//!   (and counted as a flow-limit hit); the next packet of the flow is an
//!   upcall again.
//! * The idle timeout for the next round, with `n` megaflows and limit `L`:
//!   the configured timeout while `n` ≤ L/2; from there it falls linearly
//!   to 100 ms at `n` = L; 100 ms above L; zero (every megaflow goes) above
//!   2L, as Open vSwitch's "kill them all".

use std::time::Duration;

/// The shortest idle timeout the limit imposes (Open vSwitch's 100 ms).
pub const MIN_IDLE: Duration = Duration::from_millis(100);

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct FlowLimiter {
    configured: usize,
    limit: usize,
    idle: Duration,
}

impl FlowLimiter {
    pub fn new(configured: usize, idle: Duration) -> FlowLimiter {
        FlowLimiter {
            configured,
            limit: configured,
            idle,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether a new megaflow may be installed next to `n` others.
    pub fn admits(&self, n: usize) -> bool {
        n < self.limit
    }

    /// Adjusts the limit after a round that took `took` with `n` megaflows.
    pub fn after_round(&mut self, took: Duration, n: usize) {
        let ms = took.as_millis().max(1) as usize;
        if ms > 2000 {
            self.limit /= ms / 1000;
        } else if ms > 1300 {
            self.limit = self.limit * 3 / 4;
        } else if ms < 1000 && n > 2000 && self.limit < n * 1000 / ms {
            self.limit += 1000;
        }
        self.limit = self.limit.clamp(self.configured.min(1000), self.configured);
    }

    /// The idle timeout for a round that starts with `n` megaflows.
    pub fn max_idle(&self, n: usize) -> Duration {
        let l = self.limit;
        if n > 2 * l {
            Duration::ZERO
        } else if n >= l {
            MIN_IDLE
        } else if n <= l / 2 {
            self.idle
        } else {
            // Linear from the configured timeout at L/2 to MIN_IDLE at L.
            let room = (l - n) as f64 / (l - l / 2) as f64;
            MIN_IDLE.max(self.idle.mul_f64(room))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_timeout_shrinks_as_the_count_nears_the_limit() {
        let f = FlowLimiter::new(10_000, Duration::from_secs(10));
        assert_eq!(f.max_idle(0), Duration::from_secs(10));
        assert_eq!(f.max_idle(5_000), Duration::from_secs(10));
        assert_eq!(f.max_idle(7_500), Duration::from_secs(5));
        assert_eq!(f.max_idle(9_999), MIN_IDLE);
        assert_eq!(f.max_idle(10_000), MIN_IDLE);
        assert_eq!(f.max_idle(20_001), Duration::ZERO);
        assert!(f.admits(9_999) && !f.admits(10_000));
    }

    #[test]
    fn slow_rounds_shrink_the_limit_and_fast_ones_grow_it_back() {
        let mut f = FlowLimiter::new(200_000, Duration::from_secs(10));
        f.after_round(Duration::from_millis(1500), 150_000);
        assert_eq!(f.limit(), 150_000);
        f.after_round(Duration::from_millis(4000), 150_000);
        assert_eq!(f.limit(), 37_500);
        f.after_round(Duration::from_secs(100), 150_000);
        assert_eq!(f.limit(), 1000, "never below 1,000");
        f.after_round(Duration::from_millis(100), 30_000);
        assert_eq!(f.limit(), 2000);
        // Small tables do not grow it, and it never passes the configuration.
        f.after_round(Duration::from_millis(100), 1500);
        assert_eq!(f.limit(), 2000);
        let mut g = FlowLimiter::new(5000, Duration::from_secs(10));
        for _ in 0..10 {
            g.after_round(Duration::from_millis(10), 4900);
        }
        assert_eq!(g.limit(), 5000);
    }
}
