//! When a standalone switch fails open, and when it stops.
//!
//! With `fail_mode = "standalone"` and controllers to dial, Open vSwitch
//! switches on its own (NORMAL) once no controller has been connected for
//! three probe intervals, and gives the controllers' rules back their say
//! as soon as one is connected again (`ofproto/fail-open.c`). Connected
//! means a controller's session negotiated OpenFlow 1.3; `ovs-ofctl` on a
//! passive socket does not count. At start, the time runs from the start.
//!
//! [`FailOpen`] decides, with the time given to it, and remembers what
//! was applied: the agent's dispatcher asks it on each tick and applies
//! what it says through the bridge ([`crate::core::fail_open`]), telling
//! it once done, so that a change that did not go through is tried again.
//! No I/O and no clock of its own.

use std::time::{Duration, Instant};

/// How many probe intervals without a controller make the switch fail open.
pub const PROBES: u32 = 3;

/// The fail-open decision (see the module documentation).
#[derive(Debug)]
pub struct FailOpen {
    trigger: Duration,
    /// The last time a controller was connected (or the start).
    last_connected: Instant,
    /// What the switch was last told.
    applied: bool,
}

impl FailOpen {
    /// A watch that starts at `now`, with the controllers' probe interval.
    pub fn new(probe_interval: Duration, now: Instant) -> FailOpen {
        FailOpen {
            trigger: probe_interval * PROBES,
            last_connected: now,
            applied: false,
        }
    }

    /// How long without a controller before failing open.
    pub fn trigger(&self) -> Duration {
        self.trigger
    }

    /// Whether a controller is `connected` at `now`; returns the state to
    /// apply (true: fail open, false: back to the rule tables) when it
    /// differs from the state applied.
    pub fn decide(&mut self, connected: bool, now: Instant) -> Option<bool> {
        if connected {
            self.last_connected = now;
        }
        let want = !connected && now.saturating_duration_since(self.last_connected) >= self.trigger;
        (want != self.applied).then_some(want)
    }

    /// The switch carried out `open`.
    pub fn applied(&mut self, open: bool) {
        self.applied = open;
    }

    pub fn is_open(&self) -> bool {
        self.applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: Duration = Duration::from_secs(5);

    #[test]
    fn fails_open_after_three_probe_intervals_without_a_controller() {
        let t0 = Instant::now();
        let mut f = FailOpen::new(PROBE, t0);
        assert_eq!(f.decide(false, t0 + Duration::from_secs(14)), None);
        assert_eq!(f.decide(false, t0 + Duration::from_secs(15)), Some(true));
        // Not applied yet (the switch was busy): asked again.
        assert_eq!(f.decide(false, t0 + Duration::from_secs(16)), Some(true));
        f.applied(true);
        assert_eq!(f.decide(false, t0 + Duration::from_secs(17)), None);
        assert!(f.is_open());
    }

    #[test]
    fn a_connected_controller_ends_it_at_once_and_restarts_the_wait() {
        let t0 = Instant::now();
        let mut f = FailOpen::new(PROBE, t0);
        assert_eq!(f.decide(false, t0 + Duration::from_secs(20)), Some(true));
        f.applied(true);
        assert_eq!(f.decide(true, t0 + Duration::from_secs(21)), Some(false));
        f.applied(false);
        // It drops again: three probe intervals from the last time it was seen.
        assert_eq!(f.decide(false, t0 + Duration::from_secs(35)), None);
        assert_eq!(f.decide(false, t0 + Duration::from_secs(36)), Some(true));
    }

    #[test]
    fn a_controller_that_stays_keeps_the_rules_in_force() {
        let t0 = Instant::now();
        let mut f = FailOpen::new(PROBE, t0);
        for s in 0..100 {
            assert_eq!(f.decide(true, t0 + Duration::from_secs(s)), None);
        }
    }
}
