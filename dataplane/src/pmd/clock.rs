//! A PMD's clock: nanoseconds since the PMD started, read once a pass.
//!
//! # Why a trait
//! Everything time-driven in a PMD (megaflow "used" times, idle expiry in
//! sweeps, subtable re-ranking, the background slice) reads this clock and
//! nothing else, so a test steps a [`ManualClock`] instead of sleeping.
//! The cycle counts of `pmd-stats-show` read the TSC directly: they measure
//! cost, they decide nothing.

use crate::sys::time::cycles;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The time source of a PMD (see the module documentation).
pub trait PmdClock: Send {
    /// Nanoseconds since the PMD started; never goes backwards.
    fn now_ns(&mut self) -> u64;
    /// Nanoseconds in `cycles` TSC cycles (for the busy and idle times).
    fn ns_of(&self, cycles: u64) -> u64;
    /// Measures the clock's rate again (at each sweep).
    fn recalibrate(&mut self) {}
    /// Nanoseconds from the meters' shared zero (`crate::meter::epoch`) to
    /// this clock's: meters shared by PMDs see one time.
    fn epoch_offset_ns(&self) -> u64 {
        0
    }
}

/// Nanoseconds since the PMD started, from the TSC: one RDTSC where a
/// `clock_gettime` cost three calls a pass (2.4% of a busy PMD's time in a
/// profile of VXLAN decap). The TSC's rate is measured against the
/// monotonic clock at start and again at every sweep, over the whole time
/// since start; readings never go backwards.
pub struct TscClock {
    started: Instant,
    started_cycles: u64,
    ns_per_cycle: f64,
    last: u64,
}

impl TscClock {
    /// How long the first measurement of the TSC's rate takes.
    const CALIBRATION: Duration = Duration::from_millis(2);

    pub fn new() -> TscClock {
        // The meters' zero comes first, so this clock's offset from it is
        // never negative.
        crate::meter::epoch();
        let (started, started_cycles) = (Instant::now(), cycles());
        while started.elapsed() < Self::CALIBRATION {
            std::hint::spin_loop();
        }
        let mut c = TscClock {
            started,
            started_cycles,
            ns_per_cycle: 1.0,
            last: 0,
        };
        c.recalibrate();
        c
    }
}

impl Default for TscClock {
    fn default() -> Self {
        TscClock::new()
    }
}

impl PmdClock for TscClock {
    fn now_ns(&mut self) -> u64 {
        let t = self.ns_of(cycles().wrapping_sub(self.started_cycles));
        self.last = self.last.max(t);
        self.last
    }

    fn ns_of(&self, cycles: u64) -> u64 {
        (cycles as f64 * self.ns_per_cycle) as u64
    }

    fn epoch_offset_ns(&self) -> u64 {
        self.started.saturating_duration_since(crate::meter::epoch()).as_nanos() as u64
    }

    fn recalibrate(&mut self) {
        let ns = self.started.elapsed().as_nanos() as f64;
        let c = cycles().wrapping_sub(self.started_cycles);
        if c > 0 {
            self.ns_per_cycle = ns / c as f64;
        }
    }
}

/// A clock that moves only when told to, or by a fixed step at each
/// reading (tests): clones share the time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
    per_read: u64,
}

impl ManualClock {
    /// A clock reading `start` (0 means "never" to a megaflow: start later).
    pub fn starting_at(start: Duration) -> ManualClock {
        ManualClock::ticking(start, Duration::ZERO)
    }

    /// A clock reading `start` that moves `per_read` further each time it
    /// is read: work that is bounded by time (the background slice) ends
    /// after a known number of readings.
    pub fn ticking(start: Duration, per_read: Duration) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicU64::new(start.as_nanos() as u64)),
            per_read: per_read.as_nanos() as u64,
        }
    }

    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_nanos() as u64, Ordering::Relaxed);
    }
}

impl PmdClock for ManualClock {
    fn now_ns(&mut self) -> u64 {
        self.now.fetch_add(self.per_read, Ordering::Relaxed)
    }

    /// A cycle is a nanosecond here: cycle counts stay plausible.
    fn ns_of(&self, cycles: u64) -> u64 {
        cycles
    }
}
