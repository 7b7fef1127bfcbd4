//! Userspace mode's backend: the PMD threads, each reached through its
//! message channel.
//!
//! # Order
//! A PMD applies its messages in the order they were sent. Flow
//! operations for one PMD are gathered into messages of at most
//! [`OPS_PER_MESSAGE`] (a PMD applies a message whole between two reads
//! of its queues, and a revalidation can touch every megaflow), and sent
//! before any later message to the same PMD, so nothing overtakes what
//! was decided before it.

use super::Backend;
use crate::core::{Feedback, Op, Packet};
use hashbrown::HashMap;
use odpx_classifier::flow_op::{FlowOp, Holder};
use odpx_classifier::rules::meter::Meter;
use odpx_dataplane::meter::MeterCell;
use odpx_dataplane::pmd::{PmdDoor, PmdMsg};
use std::sync::Arc;

/// Flow operations per message to a PMD, at most.
pub const OPS_PER_MESSAGE: usize = 128;

/// The PMD threads (see the module documentation).
pub struct Userspace {
    pmds: Vec<PmdDoor>,
    /// Flow operations not sent yet, by PMD.
    pending: Vec<Vec<FlowOp>>,
    /// The meters the PMDs share, by number: slot and cell.
    meters: HashMap<u32, (u32, Arc<MeterCell>)>,
}

impl Userspace {
    pub fn new<D: Into<PmdDoor>>(pmds: Vec<D>) -> Userspace {
        let pmds: Vec<PmdDoor> = pmds.into_iter().map(Into::into).collect();
        let pending = vec![Vec::new(); pmds.len()];
        Userspace {
            pmds,
            pending,
            meters: HashMap::new(),
        }
    }

    /// Carries out `op` if it is one for the PMDs; gives it back if not.
    /// What the core must hear goes to `feedback`.
    pub(super) fn take(&mut self, op: Op, feedback: &mut Vec<Feedback>) -> Option<Op> {
        match op {
            Op::Flow {
                holder: Holder::Pmd(i),
                op,
            } => {
                if let Some(p) = self.pending.get_mut(i as usize) {
                    p.push(op);
                    if p.len() >= OPS_PER_MESSAGE {
                        self.flush_pmd(i as usize);
                    }
                }
            }
            Op::Upcalled {
                install,
                actions,
                packet: Packet::Pmd { pmd, in_port, bytes },
            } => {
                self.flush_pmd(pmd);
                let msg = match install {
                    Some((ufid, matched)) => PmdMsg::Install {
                        ufid,
                        matched,
                        actions,
                        packet: Some((in_port, bytes)),
                    },
                    None => PmdMsg::Execute {
                        in_port,
                        actions,
                        packet: bytes,
                    },
                };
                self.send(pmd, msg);
            }
            Op::Barrier { token } => self.send_to_every_pmd(|| PmdMsg::Barrier(token)),
            Op::Sweep { token, max_idle } => {
                self.flush();
                for i in 0..self.pmds.len() {
                    self.send(i, PmdMsg::Sweep { token, max_idle });
                }
                if !self.meters.is_empty() {
                    feedback.push(Feedback::Meters(
                        self.meters.iter().map(|(id, (_, c))| (*id, c.reading())).collect(),
                    ));
                }
            }
            Op::SetMeter { slot, meter } => self.set_meter(slot, meter),
            Op::DeleteMeter { slot, id } => {
                self.meters.remove(&id);
                self.send_to_every_pmd(|| PmdMsg::Meter { slot, cell: None });
            }
            other => return Some(other),
        }
        None
    }

    /// Meter `m.id` is `m` from now on, in slot `slot` of every PMD.
    fn set_meter(&mut self, slot: u32, m: Meter) {
        let totals = self
            .meters
            .get(&m.id)
            .map(|(_, c)| c.totals().clone())
            .unwrap_or_default();
        let cell = Arc::new(MeterCell::new(&m, totals));
        self.meters.insert(m.id, (slot, cell.clone()));
        self.send_to_every_pmd(|| PmdMsg::Meter {
            slot,
            cell: Some(cell.clone()),
        });
    }

    /// Sends what `msg` makes to every PMD, after the flow operations
    /// gathered so far.
    fn send_to_every_pmd(&mut self, msg: impl Fn() -> PmdMsg) {
        self.flush();
        for i in 0..self.pmds.len() {
            self.send(i, msg());
        }
    }

    /// Sends every gathered flow operation.
    pub(super) fn flush(&mut self) {
        for i in 0..self.pending.len() {
            self.flush_pmd(i);
        }
    }

    fn flush_pmd(&mut self, i: usize) {
        let Some(p) = self.pending.get_mut(i) else { return };
        if p.is_empty() {
            return;
        }
        let ops = std::mem::take(p);
        self.send(i, PmdMsg::Ops(ops));
    }

    fn send(&self, i: usize, msg: PmdMsg) {
        // A PMD that has stopped takes nothing more: the switch is stopping.
        if let Some(p) = self.pmds.get(i) {
            let _ = p.send(msg);
        }
    }
}

impl Backend for Userspace {
    fn execute(&mut self, ops: Vec<Op>, feedback: &mut Vec<Feedback>) {
        for op in ops {
            match self.take(op, feedback) {
                None => {}
                Some(Op::Mark(m)) => {
                    self.flush();
                    feedback.push(Feedback::Reached(m));
                }
                Some(other) => tracing::warn!("userspace datapath: an operation for another datapath: {other:?}"),
            }
        }
        self.flush();
    }
}
