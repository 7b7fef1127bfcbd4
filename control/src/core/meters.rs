//! The meter table as OpenFlow defines it: METER_MOD's adds, modifies and
//! deletes, and each meter's and band's counters.
//!
//! # What
//! [`Core::meter_ops`] applies a batch of [`MeterOp`]s in order, each
//! whole or not at all, and answers each at once; a later barrier says
//! when every datapath agrees (as for FLOW_MODs and GROUP_MODs). The
//! meters' configuration lives in the rule set
//! ([`odpx_classifier::rules::meter`]), so a rule never names a meter that
//! is not there; their token buckets live in the datapaths, which the
//! core tells of every change with [`Op::SetMeter`] and
//! [`Op::DeleteMeter`], in order with the flow operations.
//!
//! # What a change does
//! * A meter added or modified: the datapaths get its new configuration.
//!   No megaflow changes: a megaflow names the meter by number, and the
//!   datapath's meter of that number is the one in force.
//! * A meter deleted: so are the rules that send packets through it (as
//!   Open vSwitch does; reported with reason DELETE to the controllers
//!   that asked, OpenFlow 1.3 having no METER_DELETE reason), their
//!   megaflows are revalidated, and only then is the datapaths' meter
//!   deleted, so no megaflow outlives the rule that metered it.
//!
//! # Counters
//! The datapaths count (each meter's packets and bytes in, each band's
//! packets and bytes handled); every sweep brings their readings back
//! ([`super::Feedback::Meters`]), which replace the core's.
//!
//! # Invariants
//! * Every meter in the table has a [`MeterStats`] entry, and only they do.
//! * Every meter in the table has been sent to the datapaths
//!   ([`Op::SetMeter`]) before any operation that could name it.

use super::rules::{Removal, RemovedRule, Touched};
use super::{Core, Op};
use hashbrown::HashMap;
use odpx_classifier::rules::meter::{is_policer, meter_named, Meter, MeterError, ALL_METERS, POLICER_BASE};
use odpx_classifier::rules::ofctl::MeterCounts;
use odpx_classifier::rules::Selector;
use odpx_dataplane::meter::MeterReading;
use std::time::Instant;

/// One change to the meter table (a METER_MOD, or `odpx ctl`'s verbs).
#[derive(Clone, Debug)]
pub enum MeterOp {
    /// Adds a meter; one of the same number refuses it.
    Add(Meter),
    /// Replaces an existing meter's flags and bands.
    Modify(Meter),
    /// Deletes a meter ([`ALL_METERS`]: every meter) and the rules that
    /// send packets through it; a meter that does not exist is no error.
    Delete(u32),
}

/// A port's ingress policer and what it did (for `odpx ctl show`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policer {
    pub port: u32,
    pub rate_kbps: u32,
    pub burst_kb: u32,
    /// Packets that went through it.
    pub packets: u64,
    /// Of those, the ones it dropped.
    pub dropped: u64,
}

/// What a meter saw, for METER stats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterStats {
    pub added: Instant,
    /// The datapaths' counts at the last sweep.
    pub reading: MeterReading,
}

/// The counters of every meter (see "Counters").
#[derive(Default)]
pub struct MeterCounters {
    meters: HashMap<u32, MeterStats>,
}

impl MeterCounters {
    /// Counters for the meters of a rule set made at `now`.
    pub fn for_meters<'a>(meters: impl Iterator<Item = &'a Meter>, now: Instant) -> MeterCounters {
        MeterCounters {
            meters: meters.map(|m| (m.id, MeterStats::new(m, now))).collect(),
        }
    }

    /// Takes in the datapaths' readings (meters unknown here are ignored:
    /// deleted since).
    pub fn read(&mut self, readings: Vec<(u32, MeterReading)>) {
        for (id, r) in readings {
            if let Some(s) = self.meters.get_mut(&id) {
                s.reading = r;
            }
        }
    }

    pub fn get(&self, id: u32) -> Option<&MeterStats> {
        self.meters.get(&id)
    }
}

impl MeterStats {
    fn new(m: &Meter, now: Instant) -> MeterStats {
        MeterStats {
            added: now,
            reading: MeterReading {
                bands: vec![(0, 0); m.bands.len()],
                ..MeterReading::default()
            },
        }
    }
}

impl Core {
    /// Applies `ops` in order, each whole or not at all, and answers each
    /// (how many meters it added, changed or deleted).
    pub fn meter_ops(&mut self, ops: Vec<MeterOp>, now: Instant) -> Vec<Result<usize, MeterError>> {
        let mut changed = Touched::default();
        let mut removed = Vec::new();
        let mut doomed = Vec::new();
        let answers = ops
            .into_iter()
            .map(|op| self.meter_op(op, now, &mut changed, &mut removed, &mut doomed))
            .collect();
        self.rules_removed(removed);
        if !changed.is_empty() {
            self.rules_changed(changed);
        }
        // After the megaflows of the rules that went (see "What a change does").
        self.outbox.extend(doomed);
        answers
    }

    fn meter_op(
        &mut self,
        op: MeterOp,
        now: Instant,
        changed: &mut Touched,
        removed: &mut Vec<RemovedRule>,
        doomed: &mut Vec<Op>,
    ) -> Result<usize, MeterError> {
        match op {
            MeterOp::Add(m) => {
                self.rules.meters().check(&m, false)?;
                self.meter_counters.meters.insert(m.id, MeterStats::new(&m, now));
                self.put_meter(m);
                Ok(1)
            }
            MeterOp::Modify(m) => {
                self.rules.meters().check(&m, true)?;
                // The meter's totals stay; its bands are new ones.
                if let Some(s) = self.meter_counters.meters.get_mut(&m.id) {
                    s.reading.bands = vec![(0, 0); m.bands.len()];
                }
                self.put_meter(m);
                Ok(1)
            }
            MeterOp::Delete(ALL_METERS) => {
                let ids: Vec<u32> = self.rules.meters().openflow().map(|m| m.id).collect();
                for &id in &ids {
                    self.delete_meter(id, changed, removed, doomed);
                }
                Ok(ids.len())
            }
            MeterOp::Delete(id) => {
                if is_policer(id) || !self.rules.meters().contains(id) {
                    return Ok(0);
                }
                self.delete_meter(id, changed, removed, doomed);
                Ok(1)
            }
        }
    }

    /// Puts `m` in the table and tells the datapaths, in its slot.
    fn put_meter(&mut self, m: Meter) {
        self.rules.meters_mut().put(m.clone());
        let slot = self.rules.meters().slot(m.id).unwrap_or(m.id);
        self.outbox.push(Op::SetMeter { slot, meter: m });
    }

    /// Deletes meter `id` and the rules that send packets through it.
    fn delete_meter(&mut self, id: u32, changed: &mut Touched, removed: &mut Vec<RemovedRule>, doomed: &mut Vec<Op>) {
        let sel = Selector {
            meter: Some(id),
            ..Selector::all(None)
        };
        self.delete_rules(&sel, Removal::Delete, changed, removed);
        let slot = self.rules.meters().slot(id).unwrap_or(id);
        self.rules.meters_mut().remove(id);
        self.meter_counters.meters.remove(&id);
        doomed.push(Op::DeleteMeter { slot, id });
    }

    /// Tells the datapaths of every meter of the rule set (at start).
    pub(super) fn send_meters(&mut self) {
        let t = self.rules.meters();
        let ops: Vec<Op> = t
            .iter()
            .map(|m| Op::SetMeter {
                slot: t.slot(m.id).unwrap_or(m.id),
                meter: m.clone(),
            })
            .collect();
        self.outbox.extend(ops);
    }

    /// Every meter with its counters, by number (`id`: only that one;
    /// [`ALL_METERS`]: all).
    pub fn meters(&self, id: u32) -> Vec<(Meter, MeterStats, MeterCounts)> {
        self.rules
            .meters()
            .openflow()
            .filter(|m| id == ALL_METERS || m.id == id)
            .filter_map(|m| {
                let s = self.meter_counters.get(m.id)?;
                let counts = MeterCounts {
                    flows: self.meter_references(m.id),
                    packets: s.reading.packets,
                    bytes: s.reading.bytes,
                    bands: s.reading.bands.clone(),
                };
                Some((m.clone(), s.clone(), counts))
            })
            .collect()
    }

    /// Every port's ingress policer, as of the last sweep.
    pub fn policers(&self) -> Vec<Policer> {
        self.rules
            .meters()
            .iter()
            .filter(|m| is_policer(m.id))
            .map(|m| {
                let reading = self.meter_counters.get(m.id).map(|s| &s.reading);
                Policer {
                    port: m.id - POLICER_BASE,
                    rate_kbps: m.bands[0].rate,
                    burst_kb: m.bands[0].burst_size,
                    packets: reading.map_or(0, |r| r.packets),
                    dropped: reading.and_then(|r| r.bands.first()).map_or(0, |b| b.0),
                }
            })
            .collect()
    }

    /// How many rules send packets through meter `id` (METER stats'
    /// flow_count).
    fn meter_references(&self, id: u32) -> usize {
        self.rules
            .iter()
            .filter(|r| meter_named(&r.actions) == Some(id))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::rules::ofctl::parse_meter;

    #[test]
    fn readings_replace_the_counts_of_known_meters_only() {
        let t0 = Instant::now();
        let m = parse_meter("meter=5,pktps,band=type=drop,rate=10").unwrap();
        let mut c = MeterCounters::for_meters([&m].into_iter(), t0);
        assert_eq!(c.get(5).unwrap().reading.bands, vec![(0, 0)]);
        let r = MeterReading {
            packets: 10,
            bytes: 640,
            bands: vec![(4, 256)],
        };
        c.read(vec![(5, r.clone()), (6, r.clone())]);
        assert_eq!(c.get(5).unwrap().reading, r);
        assert!(c.get(6).is_none());
    }
}
