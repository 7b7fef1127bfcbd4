//! Whether a PMD's exact-match cache pays for itself, measured as it runs.
//!
//! # Why
//! The EMC saves a megaflow lookup on a hit and costs a key hash and a
//! probe of four cache lines on every packet. With few flows nearly every
//! packet hits and it wins. With many (10k flows against 8k entries, half
//! of them the outer headers of tunnel traffic whose UDP source ports
//! differ per inner flow) most probes miss, and the cache only adds its
//! cost: in memory, VXLAN encapsulation of 10k flows ran at 8.2 Mpps with
//! the EMC and 10.6 without. Open vSwitch leaves this to its operators
//! (`emc-insert-inv-prob`, or turning the EMC off by hand); a hit-rate
//! threshold would guess the break-even, which depends on how many
//! subtables the megaflow lookup probes and on how hot the caches are.
//!
//! # How
//! The PMD measures both ways on the same traffic. It runs most batches in
//! the current mode and one batch in [`SAMPLE_EVERY`] in the other, and
//! adds up the classify stage's TSC cycles and packets of each. Once an
//! epoch has [`EPOCH_SAMPLES`] packets in the other mode, it closes; when
//! the other mode was cheaper per packet by [`SWITCH_MARGIN`] in
//! [`EPOCHS_TO_SWITCH`] epochs in a row, it becomes the current one. The
//! margin and the run keep noise on a shared machine from flapping it.
//! The sampling costs up to 1/[`SAMPLE_EVERY`] of the difference between
//! the modes; when the other mode lost by far ([`FAR_BEHIND`]), it is
//! sampled [`FAR_SAMPLE_FACTOR`] times more rarely. Batches with a miss
//! (an upcall) are left out of the tally: their cost is the slow path's,
//! not the cache's; so are batches that took far longer per packet than
//! their mode did in the last epoch (the thread was preempted, or an
//! interrupt came in).
//!
//! While bypassed the EMC is neither probed nor filled, except by the
//! sampled batches, which run the full EMC path (probe, then insert at the
//! configured probability): the cache stays warm enough that measuring it
//! is fair, and a change in the traffic (the 10k flows become 10) shows up
//! in the samples and turns it back on.
//!
//! # Ownership
//! One per PMD, owned by it; read by `pmd-stats-show` through the PMD's
//! counters (packets classified without the EMC).

/// One batch in this many runs in the mode that is not current.
pub const SAMPLE_EVERY: u32 = 8;
/// Packets of the sampled mode that close an epoch.
pub const EPOCH_SAMPLES: u64 = 4096;
/// The sampled mode must cost less than this share of the current one to
/// take over...
pub const SWITCH_MARGIN: f64 = 0.92;
/// ...in this many epochs in a row.
pub const EPOCHS_TO_SWITCH: u32 = 2;
/// When the sampled mode cost more than this many times the current one,
/// it is sampled [`FAR_SAMPLE_FACTOR`] times more rarely.
pub const FAR_BEHIND: f64 = 1.3;
pub const FAR_SAMPLE_FACTOR: u32 = 4;
/// A batch that cost more than this many times its mode's per-packet cost
/// of the last epoch is an outlier (preemption), not a measurement.
pub const OUTLIER: f64 = 4.0;

/// Cycles and packets of one mode in the current epoch.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    cycles: u64,
    packets: u64,
}

impl Tally {
    fn per_packet(&self) -> f64 {
        self.cycles as f64 / self.packets.max(1) as f64
    }
}

/// The PMD's choice to probe its EMC or not, and the measurements it rests
/// on.
#[derive(Clone, Debug)]
pub struct EmcPolicy {
    /// The current mode: probe the EMC.
    on: bool,
    /// Whether the policy may turn the EMC off at all (an EMC of zero
    /// entries is off for good).
    adaptive: bool,
    batch: u32,
    /// One batch in this many runs in the other mode (now).
    sample_every: u32,
    /// Tallies of the epoch: [with the EMC, without].
    tally: [Tally; 2],
    /// Epochs in a row in which the other mode won.
    other_won: u32,
    /// Mode changes so far.
    pub switches: u64,
    /// Cycles per classified packet, with and without the EMC, of the last
    /// closed epoch (for `pmd-stats-show`).
    pub last_cost: Option<(f64, f64)>,
}

impl EmcPolicy {
    /// A policy that starts with the EMC on; `adaptive` false keeps it so.
    pub fn new(adaptive: bool) -> EmcPolicy {
        EmcPolicy {
            on: true,
            adaptive,
            batch: 0,
            sample_every: SAMPLE_EVERY,
            tally: [Tally::default(); 2],
            other_won: 0,
            switches: 0,
            last_cost: None,
        }
    }

    /// Whether the current mode probes the EMC.
    pub fn emc_on(&self) -> bool {
        self.on
    }

    /// The mode of the next batch: true to probe the EMC.
    pub fn next_batch(&mut self) -> bool {
        if !self.adaptive {
            return self.on;
        }
        self.batch = self.batch.wrapping_add(1);
        if self.batch.is_multiple_of(self.sample_every) {
            !self.on
        } else {
            self.on
        }
    }

    /// Records a batch classified `with_emc` or not: `packets` packets in
    /// `cycles` TSC cycles. Returns true when the mode changed.
    pub fn record(&mut self, with_emc: bool, packets: u64, cycles: u64) -> bool {
        if !self.adaptive || packets == 0 {
            return false;
        }
        if let Some((with, without)) = self.last_cost {
            let usual = if with_emc { with } else { without };
            if cycles as f64 > OUTLIER * usual * packets as f64 {
                return false;
            }
        }
        let t = &mut self.tally[usize::from(!with_emc)];
        t.cycles += cycles;
        t.packets += packets;
        let sampled = self.tally[usize::from(self.on)];
        if sampled.packets < EPOCH_SAMPLES {
            return false;
        }
        let (with, without) = (self.tally[0].per_packet(), self.tally[1].per_packet());
        self.last_cost = Some((with, without));
        self.tally = [Tally::default(); 2];
        let (current, other) = if self.on { (with, without) } else { (without, with) };
        self.sample_every = if other > current * FAR_BEHIND {
            SAMPLE_EVERY * FAR_SAMPLE_FACTOR
        } else {
            SAMPLE_EVERY
        };
        if other >= current * SWITCH_MARGIN {
            self.other_won = 0;
            return false;
        }
        self.other_won += 1;
        if self.other_won < EPOCHS_TO_SWITCH {
            return false;
        }
        self.other_won = 0;
        self.on = !self.on;
        self.switches += 1;
        // The new current mode was the sampled one: sample the old one at
        // the usual rate until an epoch says how far behind it is.
        self.sample_every = SAMPLE_EVERY;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds batches of 32 packets whose classify cost is `with` or
    /// `without` cycles per packet, as the policy picks; returns the mode
    /// at the end and how many batches ran in each.
    fn run(p: &mut EmcPolicy, batches: usize, with: u64, without: u64) -> (bool, [usize; 2]) {
        let mut ran = [0; 2];
        for _ in 0..batches {
            let emc = p.next_batch();
            ran[usize::from(!emc)] += 1;
            p.record(emc, 32, 32 * if emc { with } else { without });
        }
        (p.emc_on(), ran)
    }

    #[test]
    fn the_cheaper_mode_wins_and_the_other_is_sampled() {
        let mut p = EmcPolicy::new(true);
        // Many flows: the EMC costs more than it saves.
        let (on, _) = run(&mut p, 20_000, 150, 110);
        assert!(!on, "EMC bypassed when it costs more");
        assert_eq!(p.switches, 1);
        assert_eq!(p.last_cost, Some((150.0, 110.0)));
        let (_, ran) = run(&mut p, 20_000, 150, 110);
        let share = ran[0] as f64 / (ran[0] + ran[1]) as f64;
        assert!(share < 0.04, "EMC sampled rarely once far behind: {share}");
        assert_eq!(p.switches, 1);
        // The traffic changes: few flows, the EMC wins again.
        let (on, _) = run(&mut p, 20_000, 60, 110);
        assert!(on, "EMC back when it pays");
        assert_eq!(p.switches, 2);
    }

    #[test]
    fn a_small_difference_does_not_flap_it() {
        let mut p = EmcPolicy::new(true);
        let (on, _) = run(&mut p, 50_000, 100, 95);
        assert!(on, "5% is within the margin");
        assert_eq!(p.switches, 0);
        assert!(p.last_cost.is_some(), "epochs closed");
    }

    #[test]
    fn one_noisy_epoch_does_not_switch_and_outliers_are_ignored() {
        let mut p = EmcPolicy::new(true);
        run(&mut p, 10_000, 100, 120);
        assert_eq!(p.last_cost, Some((100.0, 120.0)));
        // One epoch in which the bypass looks cheaper, then back to normal.
        let mut closed = 0;
        while closed < 1 {
            let emc = p.next_batch();
            let before = p.last_cost;
            p.record(emc, 32, 32 * if emc { 100 } else { 50 });
            closed += usize::from(p.last_cost != before);
        }
        assert!(p.emc_on() && p.switches == 0, "one epoch is not enough");
        run(&mut p, 10_000, 100, 120);
        assert!(p.emc_on() && p.switches == 0);
        // A preempted batch (1000x its cost) changes no tally.
        let emc = p.next_batch();
        p.record(emc, 32, 32 * 100_000);
        run(&mut p, 10_000, 100, 120);
        assert_eq!(p.last_cost, Some((100.0, 120.0)));
    }

    #[test]
    fn not_adaptive_never_samples_nor_switches() {
        let mut p = EmcPolicy::new(false);
        let (on, ran) = run(&mut p, 10_000, 500, 10);
        assert!(on);
        assert_eq!(ran, [10_000, 0]);
        assert_eq!(p.last_cost, None);
    }
}
