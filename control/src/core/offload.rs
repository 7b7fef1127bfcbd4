//! Hybrid mode's part of the owner: hot, stable megaflows move from the
//! PMDs into the kernel datapath, their packets steered there by XDP.
//!
//! # The life of an offloaded megaflow
//! * **Chosen.** The owner's sweeps read each PMD megaflow's packet count;
//!   the policy ([`odpx_offload::policy::HotFlows`]) names those hot for
//!   long enough. A round runs at the end of every sweep, on its counts.
//! * **Checked.** The kernel must run its actions (outputs to vports,
//!   sets, VLAN push/pop, VXLAN encapsulation as `set(tunnel)`:
//!   [`odpx_offload::policy::kernel_runs`]) and the steering tables must
//!   express its match exactly ([`odpx_dataplane::steer::steer_match`]);
//!   otherwise it is refused, counted by reason, and not proposed again
//!   until it changes.
//! * **Moved**, in three steps of the operation stream: one batch of kernel
//!   installs (a kernel-held record for each, its statistics carried over
//!   from the PMD's), then [`Mark::Installed`]: each the kernel accepted
//!   is marked offloaded and its steering entry added, then
//!   [`Mark::Steered`]: the PMD's copy of each one steered is deleted. A
//!   megaflow the kernel or the steering tables refused stays in the PMD.
//! * **Kept right.** An offloaded megaflow is an ordinary kernel-held
//!   record: revalidation gives it new actions in place or deletes it; new
//!   actions the kernel cannot run bring it back.
//! * **Brought back.** Idle past the idle timeout, deleted by
//!   revalidation, or offload turned off: its steering entry goes first,
//!   then the kernel flow ([`Core::forget`] is the one way out of the
//!   registry). Its next packets reach the PMDs, which miss and install it
//!   again.
//!
//! # Invariants
//! * A steering entry is asked for only for a registered, kernel-held
//!   megaflow marked `offloaded`, after the kernel acknowledged the flow,
//!   and removed before the flow is deleted. A packet steered to the
//!   kernel that finds no flow there (a race, or someone's `ovs-dpctl
//!   del-flows`) is upcalled to this same owner: it gets the right
//!   decision either way.

use super::counters::{OffloadCounters, Reasons};
use super::effects::{Move, Op};
use super::registry::{Record, Usage};
use super::{add, Core};
use odpx_classifier::flow_op::{Actions, FlowOp, Holder, Ufid};
use odpx_classifier::odp::OdpAction;
use odpx_dataplane::steer::steer_match;
use odpx_offload::policy::{kernel_actions, kernel_runs, HotFlows, KernelPorts, OffloadSettings};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The ports that are kernel vports, and those of them that are VXLAN
/// vports (the kernel's form of odpx's VXLAN ports).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelPortSet {
    pub vports: Vec<u32>,
    pub tunnel_vports: Vec<u32>,
}

impl KernelPorts for KernelPortSet {
    fn is_vport(&self, port: u32) -> bool {
        self.vports.contains(&port)
    }

    fn is_tunnel_vport(&self, port: u32) -> bool {
        self.tunnel_vports.contains(&port)
    }
}

/// Hybrid mode's offload state (see the module documentation).
pub struct Offload {
    hot: HotFlows<Ufid>,
    enabled: bool,
    ports: KernelPortSet,
    pub(super) counters: Arc<OffloadCounters>,
    /// Proposed megaflows not moved, by reason.
    pub(super) refusals: Arc<Reasons>,
}

impl Offload {
    pub fn new(settings: OffloadSettings, enabled: bool, ports: KernelPortSet) -> Offload {
        let o = Offload {
            hot: HotFlows::new(settings),
            enabled,
            ports,
            counters: Arc::new(OffloadCounters::default()),
            refusals: Arc::new(Reasons::default()),
        };
        o.publish(0);
        o
    }

    pub fn settings(&self) -> OffloadSettings {
        self.hot.settings
    }

    pub(super) fn publish(&self, offloaded: usize) {
        self.counters.enabled.store(u64::from(self.enabled), Ordering::Relaxed);
        self.counters.offloaded.store(offloaded as u64, Ordering::Relaxed);
    }

    /// Counts a refusal; a reason seen for the first time is logged once
    /// (the counts are in `ctl show`).
    fn refused(&mut self, ufid: &Ufid, reason: String) {
        self.hot.refuse(ufid);
        if self.refusals.count(reason.clone()) {
            tracing::info!("offload refused: {reason} (further refusals for it are counted in ctl show)");
        }
    }
}

impl Core {
    /// Removes a record, and with it its steering entry if it has one:
    /// the one way records leave the registry (see the invariants).
    pub(super) fn forget(&mut self, ufid: &Ufid) -> Option<Record> {
        let rec = self.registry.remove(ufid)?;
        if let Some(o) = self.offload.as_mut() {
            o.hot.forget(ufid);
            if rec.offloaded {
                if let Ok(entry) = steer_match(&rec.matched) {
                    self.outbox.push(Op::Steer {
                        on: false,
                        kernel: *ufid,
                        pmd: None,
                        entry,
                    });
                }
                add(&o.counters.brought_back, 1);
            }
        }
        Some(rec)
    }

    /// Can the kernel run these actions (always, without the offload)?
    pub(super) fn kernel_runs(&self, actions: &[OdpAction]) -> bool {
        match &self.offload {
            Some(o) => kernel_runs(actions, &o.ports).is_ok(),
            None => true,
        }
    }

    /// Whether the kernel's `actual` actions are the kernel's form of
    /// `fresh` (an adopted flow that needs no new actions).
    pub(super) fn kernel_form_equals(&self, fresh: &Actions, actual: &[OdpAction]) -> bool {
        match &self.offload {
            Some(o) => kernel_actions(fresh, &o.ports).is_ok_and(|k| k[..] == actual[..]),
            None => fresh[..] == actual[..],
        }
    }

    /// A megaflow changed: a refusal no longer holds.
    pub(super) fn offload_changed(&mut self, ufid: &Ufid) {
        if let Some(o) = self.offload.as_mut() {
            o.hot.forget(ufid);
        }
    }

    /// Takes in a PMD megaflow's packet count from a sweep.
    pub(super) fn offload_observe(&mut self, ufid: &Ufid, packets: u64, now: Instant) {
        let pmd_held = self.registry.get(ufid).is_some_and(|r| !r.holder.is_kernel());
        if let Some(o) = self.offload.as_mut().filter(|o| o.enabled && pmd_held) {
            o.hot.observe(*ufid, packets, now);
        }
    }

    fn refuse_offload(&mut self, ufid: &Ufid, reason: String) {
        if let Some(o) = self.offload.as_mut() {
            o.refused(ufid, reason);
        }
    }

    /// One offload round at time `now`: proposes the due megaflows' moves
    /// (see the module documentation). Returns how many were proposed.
    pub fn offload_round(&mut self, now: Instant) -> usize {
        let Some(o) = self.offload.as_mut().filter(|o| o.enabled) else {
            return 0;
        };
        let room = o.hot.settings.max_flows.saturating_sub(self.registry.offloaded());
        let due = o.hot.due(now, room);
        let mut moves = Vec::new();
        for pmd_ufid in due {
            if let Some(m) = self.propose(pmd_ufid, now) {
                moves.push(m);
            }
        }
        let n = moves.len();
        if n > 0 {
            self.outbox.push(Op::Mark(super::Mark::Installed(moves)));
        }
        n
    }

    /// Checks one due megaflow and, if it can move, registers its kernel
    /// copy and asks the kernel to install it.
    fn propose(&mut self, pmd_ufid: Ufid, now: Instant) -> Option<Move> {
        let Some(rec) = self.registry.get(&pmd_ufid).filter(|r| !r.holder.is_kernel()) else {
            self.offload_changed(&pmd_ufid);
            return None;
        };
        let o = self.offload.as_ref()?;
        add(&o.counters.proposed, 1);
        if let Err(why) = kernel_runs(&rec.actions, &o.ports) {
            self.refuse_offload(&pmd_ufid, format!("the kernel does not run it: {why}"));
            return None;
        }
        let entry = match steer_match(&rec.matched) {
            Ok(e) => e,
            Err(why) => {
                self.refuse_offload(&pmd_ufid, format!("steering cannot pick its packets: {why}"));
                return None;
            }
        };
        let kernel_ufid = Ufid::of(&rec.matched, Holder::Kernel);
        match self.registry.get(&kernel_ufid) {
            // The kernel holds it already (its packets missed there).
            Some(k) if k.matched == rec.matched => {}
            Some(_) => {
                add(&self.counters.ufid_collisions, 1);
                self.refuse_offload(&pmd_ufid, "its kernel UFID belongs to another match".into());
                return None;
            }
            None => {
                let mut k = rec.clone();
                k.holder = Holder::Kernel;
                k.carried = Usage {
                    packets: rec.carried.packets + rec.usage.packets,
                    bytes: rec.carried.bytes + rec.usage.bytes,
                    used: rec.usage.used,
                };
                k.usage = Usage::default();
                k.installed = now;
                k.install_seq = self.install_seq;
                self.install_seq += 1;
                self.outbox.push(Op::Flow {
                    holder: Holder::Kernel,
                    op: FlowOp::Install {
                        ufid: kernel_ufid,
                        matched: Box::new(k.matched),
                        actions: k.actions.clone(),
                    },
                });
                self.registry.insert(kernel_ufid, k);
            }
        }
        Some(Move {
            kernel: kernel_ufid,
            pmd: Some(pmd_ufid),
            entry,
        })
    }

    /// The kernel answered a round's installs: each it kept is marked
    /// offloaded and steered to.
    pub(super) fn offload_installed(&mut self, moves: Vec<Move>) {
        let mut steered = Vec::new();
        for m in moves {
            if !self.registry.contains(&m.kernel) {
                if let Some(p) = m.pmd {
                    self.refuse_offload(&p, "the kernel refused the flow".into());
                }
                continue;
            }
            self.steer(m);
            steered.push(m);
        }
        if !steered.is_empty() {
            self.outbox.push(Op::Mark(super::Mark::Steered(steered)));
        }
    }

    /// Marks a kernel-held megaflow offloaded and asks for its entry.
    fn steer(&mut self, m: Move) {
        self.registry.set_offloaded(&m.kernel, true);
        self.outbox.push(Op::Steer {
            on: true,
            kernel: m.kernel,
            pmd: m.pmd,
            entry: m.entry,
        });
    }

    /// A steering entry could not be added: the kernel copy goes (its
    /// entry's removal first, a no-op), the PMD's stays.
    pub(super) fn steer_refused(&mut self, kernel: Ufid, pmd: Option<Ufid>, reason: String) {
        if let Some(p) = pmd {
            self.refuse_offload(&p, reason);
        }
        // Never steered to: no entry to remove, nothing brought back.
        self.registry.set_offloaded(&kernel, false);
        if self.forget(&kernel).is_some() {
            self.outbox.push(Op::Flow {
                holder: Holder::Kernel,
                op: FlowOp::Delete { ufid: kernel },
            });
        }
    }

    /// The round's steering entries are in: the PMD copies of the moved
    /// megaflows go (their packets now reach the kernel).
    pub(super) fn offload_steered(&mut self, moves: Vec<Move>) {
        let mut moved = 0;
        for m in moves {
            if !self.registry.get(&m.kernel).is_some_and(|r| r.offloaded) {
                continue;
            }
            moved += 1;
            let Some(p) = m.pmd else { continue };
            if let Some(r) = self.forget(&p) {
                self.outbox.push(Op::Flow {
                    holder: r.holder,
                    op: FlowOp::Delete { ufid: p },
                });
            }
        }
        if let Some(o) = &self.offload {
            add(&o.counters.moved, moved);
        }
    }

    /// Turns offloading on or off. Off brings every kernel-held megaflow
    /// back (steering entries first, then the kernel flows): nothing of
    /// the offload is left behind. Returns how many megaflows came back.
    pub(super) fn set_offload(&mut self, on: bool) -> Result<usize, String> {
        let o = self
            .offload
            .as_mut()
            .ok_or("offload is hybrid mode's (datapath = \"hybrid\")")?;
        o.enabled = on;
        let mut back = 0;
        if !on {
            for u in self.kernel_ufids() {
                if self.forget(&u).is_some() {
                    self.outbox.push(Op::Flow {
                        holder: Holder::Kernel,
                        op: FlowOp::Delete { ufid: u },
                    });
                    back += 1;
                }
            }
        }
        self.publish_gauges();
        Ok(back)
    }

    /// Hybrid mode, at adoption: the kernel flows a previous run left are
    /// steered to again if they qualify, and deleted if not (with offload
    /// off, all of them). Without the offload, they stay the kernel's.
    pub(super) fn steer_adopted(&mut self, adopted: Vec<Ufid>) {
        let Some(enabled) = self.offload.as_ref().map(|o| o.enabled) else {
            return;
        };
        for u in adopted {
            let Some(rec) = self.registry.get(&u) else { continue };
            let entry = steer_match(&rec.matched)
                .ok()
                .filter(|_| enabled && self.kernel_runs(&rec.actions));
            match entry {
                Some(entry) => self.steer(Move {
                    kernel: u,
                    pmd: None,
                    entry,
                }),
                None => {
                    self.forget(&u);
                    self.outbox.push(Op::Flow {
                        holder: Holder::Kernel,
                        op: FlowOp::Delete { ufid: u },
                    });
                }
            }
        }
    }

    /// The kernel-held megaflows.
    fn kernel_ufids(&self) -> Vec<Ufid> {
        self.registry
            .iter()
            .filter(|(_, r)| r.holder.is_kernel())
            .map(|(u, _)| *u)
            .collect()
    }

    /// Each kernel-held megaflow's offload mark and the statistics it
    /// carried over from a PMD, for `dump-megaflows`.
    pub fn kernel_marks(&self) -> Vec<(Ufid, bool, Usage)> {
        self.registry
            .iter()
            .filter(|(_, r)| r.holder.is_kernel())
            .map(|(u, r)| (*u, r.offloaded, r.carried))
            .collect()
    }
}
