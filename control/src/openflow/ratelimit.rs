//! A token bucket for packet-ins, as Open vSwitch's
//! `controller_rate_limit` and `controller_burst_limit`: `rate` packets a
//! second on average, `burst` more after a quiet spell. Time comes in as
//! `now`, so tests step it.

use std::time::Instant;

/// The bucket (see the module documentation).
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: u32, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token if one is there at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, 10, t0);
        let burst = (0..50).filter(|_| b.take(t0)).count();
        assert_eq!(burst, 10);
        // One second later: 100 more (capped at the burst of 10 each time
        // it is drained, so drain every 100 ms).
        let mut passed = 0;
        for step in 1..=10 {
            let now = t0 + Duration::from_millis(100 * step);
            passed += (0..50).filter(|_| b.take(now)).count();
        }
        assert!((95..=100).contains(&passed), "{passed}");
    }
}
