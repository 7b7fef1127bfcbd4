//! Meters: OpenFlow's meter table (OpenFlow 1.3, 5.7), which rules reach
//! with the `meter:N` instruction.
//!
//! # What
//! A [`Meter`] measures the rate of the packets that reach it, in kilobits
//! or in packets per second, against its [`Band`]s. A packet that exceeds
//! one or more bands is handled by the exceeded band of the highest rate:
//! a `drop` band drops it, a `dscp_remark` band raises the drop precedence
//! in its DSCP by the band's `prec_level`. A packet that exceeds no band
//! goes on untouched.
//!
//! This module holds the configuration only: what a controller or
//! `ovs-ofctl add-meter` said, kept exactly as said (a band's
//! `burst_size` of 0 stays 0 in dumps; [`Band::effective_burst`] says what
//! is enforced then). The token buckets live where the packets are: the
//! PMDs share one per band (`odpx_dataplane::meter`), the kernel
//! datapath has its own (`OVS_METER`).
//!
//! The [`MeterTable`] lives in the [`super::RuleSet`], as the groups do:
//! a rule's `meter:N` names a meter that exists, checked before any change.
//! Its invariants, checked by [`MeterTable::check`]:
//! * a meter's number is 1..=[`MAX_METER_ID`];
//! * it has 1..=[`MAX_BANDS`] bands, each of a non-zero rate;
//!
//! A band's `burst_size` counts only with the meter's `burst` flag (it is
//! kept and echoed either way, as OpenFlow asks of a switch); without
//! one, a band's bucket holds a twentieth of a second of its rate
//! ([`Band::effective_burst`]).

use super::RuleAction;
use std::collections::BTreeMap;

/// The highest meter number a controller may use (`OFPM_MAX`).
pub const MAX_METER_ID: u32 = 0xffff_0000;
/// Every meter (`OFPM_ALL`), in deletes and statistics requests.
pub const ALL_METERS: u32 = 0xffff_ffff;
/// The meter number of port N's ingress policer is this plus N: above
/// `OFPM_MAX` and below OpenFlow's virtual meters, so no controller can
/// name, dump or delete one ([`policer`]).
pub const POLICER_BASE: u32 = 0xffff_0001;
/// An ingress policer's burst when none is given (Open vSwitch's default,
/// in kilobits).
pub const DEFAULT_POLICING_BURST: u32 = 8000;
/// Meters a switch holds at most (METER_MOD_FAILED/OUT_OF_METERS beyond).
pub const MAX_METERS: usize = 65536;
/// Bands a meter holds at most (METER_MOD_FAILED/OUT_OF_BANDS beyond).
pub const MAX_BANDS: usize = 8;

/// What a meter's rates count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeterUnit {
    /// Kilobits (1000 bits) per second of frame bytes; bursts in kilobits.
    Kbps,
    /// Packets per second; bursts in packets.
    Pktps,
}

/// What a band does to a packet that exceeds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BandKind {
    Drop,
    /// Adds `prec_level` to the drop precedence of the packet's DSCP.
    DscpRemark {
        prec_level: u8,
    },
}

impl BandKind {
    /// `ofp_meter_band_type`.
    pub fn wire_type(self) -> u16 {
        match self {
            BandKind::Drop => 1,
            BandKind::DscpRemark { .. } => 2,
        }
    }
}

/// One band: a rate and what exceeding it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Band {
    pub kind: BandKind,
    /// In the meter's unit; never 0.
    pub rate: u32,
    /// In the meter's unit (kilobits or packets); 0: not given.
    pub burst_size: u32,
}

impl Band {
    /// The burst enforced, in the meter's `unit`: as given when the meter
    /// has the `burst` flag (`with_flag`) and a size; else a twentieth of a
    /// second of the rate, and at least one 1500-byte frame (kbps) or one
    /// packet (pktps). So a meter without a burst holds its rate within 5%
    /// over any second, where Open vSwitch's bucket holds a whole second of
    /// rate (twice the rate in the first second of a flood). Larger frames
    /// through a slow meter need an explicit burst.
    pub fn effective_burst(&self, unit: MeterUnit, with_flag: bool) -> u32 {
        if with_flag && self.burst_size != 0 {
            return self.burst_size;
        }
        let floor = match unit {
            MeterUnit::Kbps => MIN_KBPS_BURST,
            MeterUnit::Pktps => 1,
        };
        (self.rate / 20).max(floor)
    }
}

/// The smallest default burst of a kbps band: one 1500-byte frame, in
/// kilobits.
pub const MIN_KBPS_BURST: u32 = 12;

/// `ofp_meter_flags`.
pub mod meter_flags {
    pub const KBPS: u16 = 1 << 0;
    pub const PKTPS: u16 = 1 << 1;
    pub const BURST: u16 = 1 << 2;
    pub const STATS: u16 = 1 << 3;
}

/// A meter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Meter {
    pub id: u32,
    pub unit: MeterUnit,
    /// The `burst` flag: the bands' burst sizes are given.
    pub burst: bool,
    /// The `stats` flag (kept and echoed; odpx counts either way).
    pub stats: bool,
    pub bands: Vec<Band>,
}

impl Meter {
    /// The meter's `ofp_meter_flags`.
    pub fn flags(&self) -> u16 {
        let unit = match self.unit {
            MeterUnit::Kbps => meter_flags::KBPS,
            MeterUnit::Pktps => meter_flags::PKTPS,
        };
        unit | if self.burst { meter_flags::BURST } else { 0 } | if self.stats { meter_flags::STATS } else { 0 }
    }

    /// The band a packet that exceeded the bands in `exceeded` (a bit per
    /// band, by position) is handled by: the one of the highest rate
    /// (the first of them on a tie).
    pub fn band_to_apply(&self, exceeded: u32) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, b) in self.bands.iter().enumerate() {
            if exceeded & (1 << i) != 0 && best.is_none_or(|j| b.rate > self.bands[j].rate) {
                best = Some(i);
            }
        }
        best
    }
}

/// Port `port`'s ingress policer (`ingress_policing_rate` and `_burst`,
/// as Open vSwitch's interfaces have them): a hidden meter of one drop
/// band, `rate_kbps` with a burst of `burst_kb` (0: 8000 kb), that every
/// packet the port receives goes through first, whichever datapath
/// carries it (the translator puts it first in the megaflow's actions).
pub fn policer(port: u32, rate_kbps: u32, burst_kb: u32) -> Meter {
    Meter {
        id: POLICER_BASE + port,
        unit: MeterUnit::Kbps,
        burst: true,
        stats: true,
        bands: vec![Band {
            kind: BandKind::Drop,
            rate: rate_kbps,
            burst_size: if burst_kb == 0 {
                DEFAULT_POLICING_BURST
            } else {
                burst_kb
            },
        }],
    }
}

/// Whether meter `id` is a port's ingress policer, not an OpenFlow meter.
pub fn is_policer(id: u32) -> bool {
    id > MAX_METER_ID && id < 0xffff_fffd
}

/// Why a meter change was refused (OpenFlow's METER_MOD_FAILED codes say
/// which; see the control layer's conversion).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeterError {
    #[error("meter {0} already exists")]
    Exists(u32),
    #[error("meter {0} does not exist")]
    Unknown(u32),
    #[error("meter {0} is not a number a meter may have (1 to {MAX_METER_ID})")]
    BadId(u32),
    #[error("meter {0}: a meter needs at least one band")]
    NoBands(u32),
    #[error("meter {0}: {1} bands, at most {MAX_BANDS}")]
    TooManyBands(u32, usize),
    #[error("meter {0}: a band's rate may not be 0")]
    BadRate(u32),
    #[error("the switch holds {MAX_METERS} meters, its most")]
    Full,
}

/// The meter table (see the module documentation).
///
/// Each meter also has a datapath number, its *slot*: the smallest number
/// no other meter holds, kept while the meter lives (a modification keeps
/// it). Datapath actions name meters by slot (`meter(SLOT)`), because the
/// kernel datapath's meter table wants small, dense numbers (Open vSwitch
/// allocates them from an id pool the same way); an OpenFlow meter number
/// may be anything up to `OFPM_MAX`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeterTable {
    meters: BTreeMap<u32, Meter>,
    /// Meter number to slot.
    slots: BTreeMap<u32, u32>,
}

impl MeterTable {
    pub fn get(&self, id: u32) -> Option<&Meter> {
        self.meters.get(&id)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.meters.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.meters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meters.is_empty()
    }

    /// Every meter, by number (ingress policers last).
    pub fn iter(&self) -> impl Iterator<Item = &Meter> + '_ {
        self.meters.values()
    }

    /// The OpenFlow meters: every one but the ingress policers.
    pub fn openflow(&self) -> impl Iterator<Item = &Meter> + '_ {
        self.meters.range(..=MAX_METER_ID).map(|(_, m)| m)
    }

    /// Whether `m` may be added (`replacing`: modified in place) as the
    /// table stands: the invariants of the module documentation.
    pub fn check(&self, m: &Meter, replacing: bool) -> Result<(), MeterError> {
        if m.id == 0 || m.id > MAX_METER_ID {
            return Err(MeterError::BadId(m.id));
        }
        match (self.contains(m.id), replacing) {
            (true, false) => return Err(MeterError::Exists(m.id)),
            (false, true) => return Err(MeterError::Unknown(m.id)),
            (false, false) if self.openflow().count() >= MAX_METERS => return Err(MeterError::Full),
            _ => {}
        }
        check_bands(m)
    }

    /// Adds or replaces `m`, unchecked (see [`MeterTable::check`]).
    pub fn put(&mut self, m: Meter) -> Option<Meter> {
        if !self.slots.contains_key(&m.id) {
            let mut used: Vec<u32> = self.slots.values().copied().collect();
            used.sort_unstable();
            let free = used
                .iter()
                .enumerate()
                .find(|(i, s)| *i as u32 != **s)
                .map_or(used.len(), |(i, _)| i);
            self.slots.insert(m.id, free as u32);
        }
        self.meters.insert(m.id, m)
    }

    pub fn remove(&mut self, id: u32) -> Option<Meter> {
        self.slots.remove(&id);
        self.meters.remove(&id)
    }

    /// Meter `id`'s datapath number (see [`MeterTable`]).
    pub fn slot(&self, id: u32) -> Option<u32> {
        self.slots.get(&id).copied()
    }

    /// Whether any port has an ingress policer ([`policer`]).
    pub fn has_policers(&self) -> bool {
        self.meters
            .range(POLICER_BASE..)
            .next()
            .is_some_and(|(id, _)| is_policer(*id))
    }

    /// The slot of port `port`'s ingress policer, if it has one.
    pub fn policer_slot(&self, port: u32) -> Option<u32> {
        self.slot(POLICER_BASE.checked_add(port)?)
    }
}

/// The band invariants of a meter, whatever the table holds.
pub fn check_bands(m: &Meter) -> Result<(), MeterError> {
    if m.bands.is_empty() {
        return Err(MeterError::NoBands(m.id));
    }
    if m.bands.len() > MAX_BANDS {
        return Err(MeterError::TooManyBands(m.id, m.bands.len()));
    }
    for b in &m.bands {
        if b.rate == 0 {
            return Err(MeterError::BadRate(m.id));
        }
    }
    Ok(())
}

/// The meter a list of actions sends packets through, if any (a rule has
/// at most one `meter` instruction).
pub fn meter_named(actions: &[RuleAction]) -> Option<u32> {
    actions.iter().find_map(|a| match a {
        RuleAction::Meter(id) => Some(*id),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(id: u32, bands: &[(u32, u32)]) -> Meter {
        Meter {
            id,
            unit: MeterUnit::Kbps,
            burst: bands.iter().any(|b| b.1 != 0),
            stats: false,
            bands: bands
                .iter()
                .map(|&(rate, burst_size)| Band {
                    kind: BandKind::Drop,
                    rate,
                    burst_size,
                })
                .collect(),
        }
    }

    #[test]
    fn meters_are_checked_before_they_are_kept() {
        let mut t = MeterTable::default();
        let m = meter(1, &[(1000, 0)]);
        assert_eq!(t.check(&m, true), Err(MeterError::Unknown(1)));
        t.check(&m, false).unwrap();
        t.put(m.clone());
        assert_eq!(t.check(&m, false), Err(MeterError::Exists(1)));
        t.check(&m, true).unwrap();
        assert_eq!(t.check(&meter(0, &[(1, 0)]), false), Err(MeterError::BadId(0)));
        assert_eq!(
            t.check(&meter(MAX_METER_ID + 1, &[(1, 0)]), false),
            Err(MeterError::BadId(MAX_METER_ID + 1))
        );
        assert_eq!(t.check(&meter(2, &[]), false), Err(MeterError::NoBands(2)));
        assert_eq!(t.check(&meter(2, &[(0, 0)]), false), Err(MeterError::BadRate(2)));
        // Slots: the smallest free, kept by a modification, reused once free.
        assert_eq!(t.slot(1), Some(0));
        t.put(meter(7, &[(1, 0)]));
        t.put(meter(3, &[(1, 0)]));
        assert_eq!((t.slot(7), t.slot(3)), (Some(1), Some(2)));
        t.remove(7);
        t.put(meter(3, &[(2, 0)]));
        assert_eq!(t.slot(3), Some(2));
        t.put(meter(9, &[(1, 0)]));
        assert_eq!(t.slot(9), Some(1));
        let nine = meter(2, &[(1, 0); 9]);
        assert_eq!(t.check(&nine, false), Err(MeterError::TooManyBands(2, 9)));
    }

    #[test]
    fn ingress_policers_are_meters_no_controller_sees() {
        let mut t = MeterTable::default();
        t.put(meter(4, &[(10, 0)]));
        assert!(!t.has_policers());
        t.put(policer(2, 1000, 0));
        assert!(t.has_policers());
        assert_eq!(t.policer_slot(2), Some(1));
        assert_eq!(t.policer_slot(3), None);
        assert_eq!(t.openflow().map(|m| m.id).collect::<Vec<_>>(), vec![4]);
        assert!(is_policer(POLICER_BASE + 2) && !is_policer(4) && !is_policer(ALL_METERS));
        assert_eq!(
            t.get(POLICER_BASE + 2).unwrap().bands[0].burst_size,
            DEFAULT_POLICING_BURST
        );
    }

    #[test]
    fn the_exceeded_band_of_the_highest_rate_applies() {
        let m = meter(1, &[(5000, 0), (12000, 0), (8000, 0)]);
        assert_eq!(m.band_to_apply(0), None);
        assert_eq!(m.band_to_apply(0b001), Some(0));
        assert_eq!(m.band_to_apply(0b101), Some(2));
        assert_eq!(m.band_to_apply(0b111), Some(1));
        let kbps = MeterUnit::Kbps;
        assert_eq!(m.bands[0].effective_burst(kbps, false), 250);
        assert_eq!(meter(2, &[(100, 7)]).bands[0].effective_burst(kbps, true), 7);
        assert_eq!(
            meter(2, &[(100, 7)]).bands[0].effective_burst(kbps, false),
            MIN_KBPS_BURST
        );
        assert_eq!(
            meter(2, &[(100, 0)]).bands[0].effective_burst(MeterUnit::Pktps, false),
            5
        );
        assert_eq!(
            meter(2, &[(10, 0)]).bands[0].effective_burst(MeterUnit::Pktps, false),
            1
        );
        assert_eq!(meter(2, &[(100, 7)]).flags(), meter_flags::KBPS | meter_flags::BURST);
    }
}
