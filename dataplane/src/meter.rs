//! Meters in the PMDs: one set of token buckets per meter, shared by every
//! PMD, so a meter's rate holds for the sum of what all of them carry.
//!
//! # What
//! A [`MeterCell`] is one meter as the PMDs run it: its bands' rates and
//! bursts in nanoseconds, a bucket per band, and its counters. The owner's
//! backend makes a cell for each meter (`odpx_classifier::rules::meter`
//! has the configuration) and hands the same `Arc` to every PMD in a
//! message; a PMD keeps the cells it was given in a [`Meters`] map, by
//! number, and runs the ODP `meter(N)` action through it
//! ([`MeterCell::run`]).
//!
//! # The buckets: GCRA on one atomic per band
//! A band's bucket is its theoretical arrival time (TAT): the moment, in
//! nanoseconds since [`epoch`], at which the bucket would be full again.
//! A packet of cost `c` (one packet, or its bits, in the time the band's
//! rate takes to earn them) conforms when `max(TAT, now) + c - now` is at
//! most the burst's time; then TAT becomes `max(TAT, now) + c` by one
//! compare-and-swap, retried if another PMD moved it first. That is a token
//! bucket of the band's burst size (full at the start, as Open vSwitch's;
//! a twentieth of a second of rate when none is given),
//! kept in one word: no lock, no refill pass, no per-PMD share of the rate
//! that would let a flow split over PMDs get more than the rate.
//!
//! A packet that exceeds bands is handled by the exceeded band of the
//! highest rate ([`Meter::band_to_apply`]): dropped, or its DSCP's drop
//! precedence raised. As in Open vSwitch, a band's bucket pays for every
//! packet that conforms to it, whatever another band does to the packet.
//!
//! # Time
//! [`MeterCell::run`] takes the time as an argument: the PMD's clock read
//! once a pass, moved to the shared [`epoch`] (its `epoch_offset_ns`), so
//! a test steps a manual clock and PMDs started at different moments agree.
//!
//! # Ownership
//! The cells' configuration never changes; a modified meter is a new cell
//! (with the old one's totals carried over by the backend). The atomics
//! are written by every PMD that runs the meter and read by the backend
//! for statistics: relaxed, as counters are.

use odpx_classifier::rules::meter::{BandKind, Meter, MeterUnit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The zero of meter time, shared by every PMD of the process.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

const NS_PER_SEC: u64 = 1_000_000_000;

/// What a meter does with one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
    /// Raise the packet's DSCP drop precedence by this many levels.
    Remark(u8),
}

/// One band's bucket and counters.
#[derive(Debug)]
struct BandCell {
    kind: BandKind,
    /// Nanoseconds one unit (a packet, or a bit) costs at the band's rate,
    /// times [`COST_SCALE`] (kept exact for low rates).
    unit_cost: u64,
    /// The burst, in nanoseconds of the band's rate.
    burst_ns: u64,
    /// See the module documentation, "The buckets".
    tat: AtomicU64,
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// Fixed-point scale of [`BandCell::unit_cost`].
const COST_SCALE: u64 = 1 << 16;

impl BandCell {
    /// Whether a packet of `units` conforms at `now`, paying for it if so.
    fn take(&self, units: u64, now: u64) -> bool {
        let cost = units.saturating_mul(self.unit_cost) / COST_SCALE;
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now).saturating_add(cost);
            if next - now > self.burst_ns {
                return false;
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }
}

/// A meter's totals, kept across modifications of the meter.
#[derive(Debug, Default)]
pub struct MeterTotals {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
}

/// One meter as the PMDs run it (see the module documentation).
#[derive(Debug)]
pub struct MeterCell {
    bands: Box<[BandCell]>,
    /// The configuration: the unit, and the rates that decide which
    /// exceeded band applies.
    meter: Meter,
    totals: Arc<MeterTotals>,
}

/// A meter's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeterReading {
    pub packets: u64,
    pub bytes: u64,
    /// Each band's packets and bytes.
    pub bands: Vec<(u64, u64)>,
}

impl MeterCell {
    /// A cell for `m`, counting into `totals` (a new meter's are new; a
    /// modified one's are the old cell's).
    pub fn new(m: &Meter, totals: Arc<MeterTotals>) -> MeterCell {
        let bands = m
            .bands
            .iter()
            .map(|b| {
                let rate = u64::from(b.rate.max(1));
                // A kbps band's unit is a bit: 1000 bits a second per unit
                // of rate. Rounded up: a cost is never less than its time.
                let per_sec = match m.unit {
                    MeterUnit::Kbps => rate * 1000,
                    MeterUnit::Pktps => rate,
                };
                let per_unit_sec = (NS_PER_SEC * COST_SCALE).div_ceil(per_sec);
                BandCell {
                    kind: b.kind,
                    unit_cost: per_unit_sec,
                    burst_ns: u64::from(b.effective_burst(m.unit, m.burst)).saturating_mul(NS_PER_SEC) / rate,
                    tat: AtomicU64::new(0),
                    packets: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                }
            })
            .collect();
        MeterCell {
            bands,
            meter: m.clone(),
            totals,
        }
    }

    /// The totals, to carry over to the cell of a modified meter.
    pub fn totals(&self) -> &Arc<MeterTotals> {
        &self.totals
    }

    /// Meters a packet of `len` bytes at `now` (nanoseconds since
    /// [`epoch`]).
    pub fn run(&self, len: usize, now: u64) -> Verdict {
        let r = Ordering::Relaxed;
        self.totals.packets.fetch_add(1, r);
        self.totals.bytes.fetch_add(len as u64, r);
        let units = match self.meter.unit {
            MeterUnit::Kbps => len as u64 * 8,
            MeterUnit::Pktps => 1,
        };
        let mut exceeded = 0u32;
        for (i, b) in self.bands.iter().enumerate() {
            if !b.take(units, now) {
                exceeded |= 1 << i;
            }
        }
        let Some(i) = self.meter.band_to_apply(exceeded) else {
            return Verdict::Pass;
        };
        let b = &self.bands[i];
        b.packets.fetch_add(1, r);
        b.bytes.fetch_add(len as u64, r);
        match b.kind {
            BandKind::Drop => Verdict::Drop,
            BandKind::DscpRemark { prec_level } => Verdict::Remark(prec_level),
        }
    }

    /// The counters now.
    pub fn reading(&self) -> MeterReading {
        let r = Ordering::Relaxed;
        MeterReading {
            packets: self.totals.packets.load(r),
            bytes: self.totals.bytes.load(r),
            bands: self
                .bands
                .iter()
                .map(|b| (b.packets.load(r), b.bytes.load(r)))
                .collect(),
        }
    }
}

/// The meters a PMD was given, by slot (the number `meter` actions use).
/// Slots are dense (the smallest free one is taken), so a vector indexed
/// by slot: no hashing per packet.
#[derive(Debug, Default)]
pub struct Meters {
    cells: Vec<Option<Arc<MeterCell>>>,
}

impl Meters {
    /// Sets the meter of `slot` (`None`: deletes it).
    pub fn set(&mut self, slot: u32, cell: Option<Arc<MeterCell>>) {
        let i = slot as usize;
        if self.cells.len() <= i {
            self.cells.resize(i + 1, None);
        }
        self.cells[i] = cell;
        while self.cells.last().is_some_and(Option::is_none) {
            self.cells.pop();
        }
    }

    /// Meters a packet through the meter of `slot`; one this PMD does not
    /// have lets it pass (as Open vSwitch's datapaths: the owner never
    /// sends a megaflow naming a meter before the meter).
    pub fn run(&self, slot: u32, len: usize, now: u64) -> Verdict {
        match self.cells.get(slot as usize) {
            Some(Some(c)) => c.run(len, now),
            _ => Verdict::Pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::rules::ofctl::parse_meter;

    fn cell(text: &str) -> MeterCell {
        MeterCell::new(&parse_meter(text).unwrap(), Arc::default())
    }

    /// Packets of `len` bytes sent through `c` at `per_sec` a second for
    /// `secs` seconds (from 1 s on): how many passed.
    fn passed(c: &MeterCell, len: usize, per_sec: u64, secs: u64) -> u64 {
        let gap = NS_PER_SEC / per_sec;
        (0..per_sec * secs)
            .filter(|i| c.run(len, NS_PER_SEC + i * gap) == Verdict::Pass)
            .count() as u64
    }

    #[test]
    fn a_pktps_band_passes_its_rate_after_a_full_bucket() {
        // 1000 pps offered for 10 s to a 100 pps meter without a burst:
        // the bucket's 5 (a twentieth of a second) plus 100 a second.
        let c = cell("meter=1,pktps,band=type=drop,rate=100");
        let n = passed(&c, 64, 1000, 10);
        assert!((1000..=1006).contains(&n), "{n}");
        let r = c.reading();
        assert_eq!(r.packets, 10_000);
        assert_eq!(r.bands, vec![(10_000 - n, (10_000 - n) * 64)]);
    }

    #[test]
    fn a_kbps_band_counts_bits_and_honours_its_burst() {
        // 1000-byte packets at 1000 pps (8 Mbit/s) into 800 kbit/s with a
        // 80 kbit burst: 10 packets of bucket, then 100 a second.
        let c = cell("meter=1,kbps,burst,band=type=drop,rate=800,burst_size=80");
        let n = passed(&c, 1000, 1000, 5);
        assert!((505..=512).contains(&n), "{n}");
    }

    #[test]
    fn the_highest_exceeded_band_decides() {
        // 5000 and 12000 pktps bands: at 8000 pps only the lower one is
        // exceeded (remark); at 15000 both are (drop, the higher one's).
        let c = cell("meter=1,pktps,bands=type=dscp_remark,rate=5000,prec_level=1,type=drop,rate=12000");
        let gap = NS_PER_SEC / 8000;
        let t0 = 10 * NS_PER_SEC;
        let v: Vec<Verdict> = (0..40_000).map(|i| c.run(64, t0 + i * gap)).collect();
        assert!(!v.contains(&Verdict::Drop));
        assert!(v[30_000..].contains(&Verdict::Remark(1)));
        let c = cell("meter=1,pktps,bands=type=dscp_remark,rate=5000,prec_level=1,type=drop,rate=12000");
        let gap = NS_PER_SEC / 15000;
        let v: Vec<Verdict> = (0..120_000).map(|i| c.run(64, t0 + i * gap)).collect();
        let drops = v.iter().filter(|x| **x == Verdict::Drop).count();
        // 8 s at 15000 pps against a 12000 pps band with a burst of 600:
        // 120000 offered, 600 + 8 * 12000 pass.
        assert!((23_300..=23_500).contains(&drops), "{drops}");
    }

    proptest::proptest! {
        /// Whatever the rate, burst, packet sizes and arrival times, what a
        /// band lets through never exceeds rate x time + burst (plus a
        /// nanosecond a packet of rounding in the costs). Rates and bursts
        /// are drawn low enough that the offered load (about 10,000 packets
        /// a second) exceeds them.
        #[test]
        fn a_meter_never_passes_more_than_rate_times_time_plus_burst(
            kbps in proptest::bool::ANY,
            rate in 1u32..50_000,
            burst in proptest::option::of(1u32..200),
            packets in proptest::collection::vec((0u64..200_000, 60usize..9000), 1..1000),
        ) {
            let text = format!(
                "meter=1,{},{}band=type=drop,rate={rate}{}",
                if kbps { "kbps" } else { "pktps" },
                if burst.is_some() { "burst," } else { "" },
                burst.map_or(String::new(), |b| format!(",burst_size={b}")),
            );
            let m = parse_meter(&text).unwrap();
            let c = MeterCell::new(&m, Arc::default());
            let (mut now, start) = (NS_PER_SEC, NS_PER_SEC);
            let (mut units, mut n) = (0u128, 0u128);
            for (gap, len) in packets {
                now += gap;
                if c.run(len, now) == Verdict::Pass {
                    units += if kbps { len as u128 * 8 } else { 1 };
                    n += 1;
                }
            }
            // Units a second, and the burst in units.
            let per_sec = u128::from(rate) * if kbps { 1000 } else { 1 };
            let burst_units = u128::from(m.bands[0].effective_burst(m.unit, m.burst)) * if kbps { 1000 } else { 1 };
            let bound = per_sec * u128::from(now - start) + burst_units * u128::from(NS_PER_SEC) + per_sec * n;
            proptest::prop_assert!(units * u128::from(NS_PER_SEC) <= bound, "{units} units through {text} in {} ns", now - start);
        }
    }

    #[test]
    fn pmds_sharing_a_meter_share_its_rate() {
        // Two threads offering 1000 pps each to a 500 pps meter (a burst
        // of 25) for 4 s of meter time: together they get 500 a second,
        // not 1000.
        let c = Arc::new(cell("meter=1,pktps,band=type=drop,rate=500"));
        let gap = NS_PER_SEC / 1000;
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    (0..4000u64)
                        .filter(|i| c.run(64, NS_PER_SEC + i * gap) == Verdict::Pass)
                        .count() as u64
                })
            })
            .collect();
        let n: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!((1990..=2030).contains(&n), "{n}");
    }
}
