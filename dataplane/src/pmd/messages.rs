//! What control and a PMD tell each other, and how a PMD carries out what
//! it is told: installs, changes and deletions of megaflows (the owner's
//! decisions, as data), packets to run, barriers, dumps.
//!
//! # Order
//! A PMD applies its messages in the order they were sent, a batch of
//! them between two passes over its queues (see "Established traffic
//! first" in [`crate::pmd`]); a [`PmdMsg::Barrier`] is answered once
//! everything sent before it is applied.

use super::output::idle_of;
use super::Pmd;
use crate::exec::Program;
use crate::meter::MeterCell;
use crossbeam_channel::Sender;
use odpx_classifier::counters::add_single_writer as add;
use odpx_classifier::flow_op::{Actions, FlowOp, Ufid};
use odpx_classifier::key::Match;
use odpx_classifier::megaflow::FlowStats;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// One installed megaflow, as reported by [`PmdMsg::Dump`].
#[derive(Clone, Debug)]
pub struct MegaflowEntry {
    pub ufid: Ufid,
    pub matched: Match,
    pub actions: Actions,
    pub stats: FlowStats,
    /// Time since the last hit (`None`: never hit).
    pub idle: Option<Duration>,
}

/// A megaflow's statistics as a PMD reports them to the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowUse {
    pub ufid: Ufid,
    pub stats: FlowStats,
    /// Time since the last hit (`None`: never hit).
    pub idle: Option<Duration>,
}

/// Messages from control to a PMD.
pub enum PmdMsg {
    /// Run the actions on `packet` (the upcalled packet, if any) and
    /// install the megaflow under `ufid` (an identical match already
    /// installed only gets the new actions).
    Install {
        ufid: Ufid,
        /// Boxed: a match is 400 bytes and the other messages are small.
        matched: Box<Match>,
        actions: Actions,
        packet: Option<(u32, Vec<u8>)>,
    },
    /// Install, modify or delete megaflows (UFIDs unknown here are
    /// ignored: the megaflow went already).
    Ops(Vec<FlowOp>),
    /// Run actions on a packet without installing anything.
    Execute {
        in_port: u32,
        actions: Actions,
        packet: Vec<u8>,
    },
    /// Delete the megaflows idle for at least `max_idle` and report, with
    /// [`PmdReport::Swept`], those and the ones used since the last sweep.
    Sweep {
        token: u64,
        max_idle: Duration,
    },
    /// Answer with [`PmdReport::Barrier`] (everything sent before is applied).
    Barrier(u64),
    /// Report every megaflow.
    Dump(Sender<Vec<MegaflowEntry>>),
    ClearStats,
    /// The meter in slot `slot` (what `meter(SLOT)` actions name) is now
    /// this cell, shared with the other PMDs (`None`: deleted). Sent
    /// before any megaflow that names it.
    Meter {
        slot: u32,
        cell: Option<Arc<MeterCell>>,
    },
}

/// What a PMD tells the megaflow owner.
#[derive(Debug)]
pub enum PmdReport {
    Swept {
        pmd: usize,
        token: u64,
        /// Deleted for being idle, with their final statistics.
        expired: Vec<FlowUse>,
        /// Hit since the previous sweep.
        active: Vec<FlowUse>,
        /// Deleted by the owner since the previous sweep after being hit,
        /// with their final statistics (the hits since the last report
        /// would be lost otherwise).
        deleted: Vec<FlowUse>,
    },
    Barrier {
        pmd: usize,
        token: u64,
    },
    /// The cache refused an install (its flow limit); the packet was run.
    NotInstalled {
        pmd: usize,
        ufid: Ufid,
    },
}

impl Pmd {
    pub(super) fn handle(&mut self, m: PmdMsg) {
        match m {
            PmdMsg::Install {
                ufid,
                matched,
                actions,
                packet,
            } => {
                let program = Program::new(actions);
                // The packet first, so the program moves into the cache
                // instead of being copied; nothing here can tell the order.
                if let Some((in_port, p)) = packet {
                    self.run_packet(&program, in_port, &p);
                }
                self.install(ufid, *matched, program);
            }
            PmdMsg::Ops(ops) => {
                for op in ops {
                    self.apply(op);
                }
                self.publish_megaflows();
            }
            PmdMsg::Execute {
                in_port,
                actions,
                packet,
            } => self.run_packet(&Program::new(actions), in_port, &packet),
            PmdMsg::Sweep { token, max_idle } => {
                self.clock.recalibrate();
                self.start_sweep(token, max_idle)
            }
            PmdMsg::Barrier(token) => {
                let _ = self.slow.reports.send(PmdReport::Barrier {
                    pmd: self.cfg.id,
                    token,
                });
            }
            PmdMsg::Dump(reply) => {
                let _ = reply.send(self.dump());
            }
            PmdMsg::ClearStats => self.counters.clear_counters(),
            PmdMsg::Meter { slot, cell } => self.out.meters.set(slot, cell),
        }
    }

    /// Carries out one of the owner's decisions (UFIDs unknown here are
    /// ignored: the megaflow went already).
    fn apply(&mut self, op: FlowOp) {
        match op {
            FlowOp::Install { ufid, matched, actions } => self.install(ufid, *matched, Program::new(actions)),
            FlowOp::Modify { ufid, actions, .. } => {
                if let Some(&r) = self.by_ufid.get(&ufid) {
                    self.mf.set_actions(r, Program::new(actions));
                }
            }
            FlowOp::Delete { ufid } => {
                if let Some(r) = self.by_ufid.remove(&ufid) {
                    if let Some(f) = self.mf.get(r).filter(|f| f.stats.packets > 0) {
                        let now = self.clock.now_ns();
                        self.deleted.push(FlowUse {
                            ufid,
                            stats: f.stats,
                            idle: idle_of(f.stats.used, now),
                        });
                    }
                    self.mf.remove(r);
                }
            }
        }
    }

    /// Every installed megaflow, with its statistics.
    fn dump(&mut self) -> Vec<MegaflowEntry> {
        let now = self.now();
        self.by_ufid
            .iter()
            .filter_map(|(u, r)| self.mf.get(*r).map(|f| (*u, f)))
            .map(|(ufid, f)| MegaflowEntry {
                ufid,
                matched: f.matched,
                actions: f.actions.actions().clone(),
                stats: f.stats,
                idle: idle_of(f.stats.used, now),
            })
            .collect()
    }

    /// Installs a megaflow under `ufid`; a refusal (the cache's flow limit)
    /// is counted and reported to the owner.
    fn install(&mut self, ufid: Ufid, matched: Match, program: Program) {
        let now = self.now();
        match self.mf.insert(matched, program, now) {
            Ok(r) => {
                self.by_ufid.insert(ufid, r);
                let i = r.index as usize;
                if self.ufid_at.len() <= i {
                    self.ufid_at.resize(i + 1, Ufid([0; 16]));
                }
                self.ufid_at[i] = ufid;
            }
            Err(_) => {
                add(&self.counters.flow_limit_hits, 1);
                let _ = self
                    .slow
                    .reports
                    .send(PmdReport::NotInstalled { pmd: self.cfg.id, ufid });
            }
        }
        self.publish_megaflows();
    }

    pub(super) fn publish_megaflows(&self) {
        self.counters.megaflows.store(self.mf.len() as u64, Ordering::Relaxed);
    }
}
