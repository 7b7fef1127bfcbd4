//! Hybrid mode: the megaflow owner moves hot, stable megaflows from the
//! PMDs into the kernel datapath, and steers their packets there.
//!
//! # What
//! With `datapath = "hybrid"` each switched interface is an AF_XDP port of
//! the PMDs and a netdev vport of the kernel's datapath at once. Its XDP
//! program ([`odpx_dataplane::steer`]) passes the packets of offloaded
//! megaflows to the kernel and redirects the rest to AF_XDP. New and
//! changing flows are the PMDs' (an upcall costs a channel message, not a
//! netlink round trip); the flows that carry the traffic move into the
//! kernel, where a packet costs no copy to userspace and no PMD cycles.
//!
//! # The life of an offloaded megaflow
//! * **Chosen.** The owner's sweeps read each PMD megaflow's packet count;
//!   the policy ([`odpx_offload::policy::HotFlows`]) names those hot for
//!   long enough. The offload thread ([`run_offload`]) asks every
//!   [`Offload::interval`] for an offload round ([`Translator::offload_round`]).
//! * **Checked.** The kernel must run its actions (outputs to vports,
//!   sets, VLAN push/pop: [`odpx_offload::policy::kernel_runs`]) and the
//!   steering tables must express its match exactly
//!   ([`odpx_dataplane::steer::steer_match`]); otherwise it is refused,
//!   counted by reason, and not proposed again until it changes.
//! * **Moved.** One netlink batch installs the round's megaflows in the
//!   kernel (same match, same actions, a kernel UFID). Each one the kernel
//!   accepted gets its steering entry, then the PMD's copy is deleted and
//!   its statistics are carried over, so the megaflow's counts go on from
//!   where the PMD left them. A megaflow the kernel refused stays in the
//!   PMD, and the refusal is counted under the kernel's own reason.
//! * **Kept right.** An offloaded megaflow is an ordinary kernel-held
//!   record: revalidation gives it new actions in place (acknowledged by
//!   the kernel before a rule change returns) or deletes it. New actions
//!   the kernel cannot run bring it back.
//! * **Brought back.** Idle in the kernel past the idle timeout, deleted by
//!   revalidation, or offload turned off: its steering entry goes first,
//!   then the kernel flow. Its next packets reach the PMDs, which miss and
//!   install it again.
//!
//! # Invariants
//! * A steering entry exists only for a registered, kernel-held megaflow
//!   marked `offloaded`, and is added after the kernel acknowledged the
//!   flow and removed before the flow is deleted ([`Translator::forget`]
//!   is the one way records leave the registry). A packet steered to the
//!   kernel that finds no flow there (a race, or someone else's
//!   `ovs-dpctl del-flows`) is upcalled to this same owner: it gets the
//!   right decision either way.
//! * Every decision is made under the owner's lock, so an offload round
//!   never interleaves with a rule change: when a rule change returns,
//!   the PMDs, the kernel flows and the steering tables all agree with it.
//!
//! # Threads
//! The [`Offload`] state (steering tables, policy, counters) is part of the
//! owner and is only touched under its lock. The offload thread owns
//! nothing: it only takes the lock for a round every interval, so the work
//! of offloading (policy, netlink batch, map updates) never runs on a PMD.

use crate::registry::{Record, Usage};
use crate::translator::{add, lock, Translator};
use odpx_classifier::flow_op::{Actions, FlowOp, Holder, Ufid};
use odpx_classifier::odp::OdpAction;
use odpx_dataplane::steer::{steer_match, SteerEntry, SteerRefusal, SteeringTable};
use odpx_offload::policy::{kernel_actions, kernel_runs, HotFlows, KernelPorts, OffloadSettings};
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The steering tables as the owner uses them: the BPF maps, or a model
/// in tests of the owner.
pub trait Steering: Send {
    fn insert(&mut self, e: &SteerEntry) -> io::Result<Result<(), SteerRefusal>>;
    fn remove(&mut self, e: &SteerEntry) -> io::Result<bool>;
    /// Entries held.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Distinct masks in use.
    fn masks(&self) -> usize;
}

impl Steering for SteeringTable {
    fn insert(&mut self, e: &SteerEntry) -> io::Result<Result<(), SteerRefusal>> {
        SteeringTable::insert(self, e)
    }

    fn remove(&mut self, e: &SteerEntry) -> io::Result<bool> {
        SteeringTable::remove(self, e)
    }

    fn len(&self) -> usize {
        SteeringTable::len(self)
    }

    fn masks(&self) -> usize {
        SteeringTable::masks(self)
    }
}

/// Offload counters (relaxed atomics; gauges stored, the rest added).
#[derive(Default, Debug)]
pub struct OffloadCounters {
    pub enabled: AtomicBool,
    /// Gauges: megaflows offloaded now, steering masks in use.
    pub offloaded: AtomicU64,
    pub masks: AtomicU64,
    /// Megaflows the policy proposed.
    pub attempts: AtomicU64,
    /// Megaflows moved into the kernel, and brought back.
    pub moved: AtomicU64,
    pub brought_back: AtomicU64,
    /// Proposed megaflows that were not moved, by reason (the kernel's
    /// own refusals are counted with the translator's).
    pub refusals: Mutex<BTreeMap<String, u64>>,
}

impl OffloadCounters {
    /// Counts a refusal; a reason seen for the first time is logged once
    /// (the counts are in `ctl show`).
    fn refused(&self, reason: String) {
        if let Ok(mut m) = self.refusals.lock() {
            if !m.contains_key(&reason) {
                tracing::info!("offload refused: {reason} (further refusals for it are counted in ctl show)");
            }
            *m.entry(reason).or_default() += 1;
        }
    }
}

/// Hybrid mode's part of the owner (see the module documentation).
pub struct Offload {
    pub steering: Box<dyn Steering>,
    pub hot: HotFlows<Ufid>,
    pub enabled: bool,
    /// The ports that are kernel vports, and those of them that are VXLAN
    /// vports (the kernel's form of odpx's VXLAN ports).
    pub vports: Vec<u32>,
    pub tunnel_vports: Vec<u32>,
    pub counters: Arc<OffloadCounters>,
}

impl KernelPorts for Offload {
    fn is_vport(&self, port: u32) -> bool {
        self.vports.contains(&port)
    }

    fn is_tunnel_vport(&self, port: u32) -> bool {
        self.tunnel_vports.contains(&port)
    }
}

impl Offload {
    /// `vports` includes the `tunnel_vports`.
    pub fn new(
        steering: Box<dyn Steering>,
        settings: OffloadSettings,
        enabled: bool,
        vports: Vec<u32>,
        tunnel_vports: Vec<u32>,
    ) -> Offload {
        let counters = Arc::new(OffloadCounters::default());
        counters.enabled.store(enabled, Ordering::Relaxed);
        Offload {
            steering,
            hot: HotFlows::new(settings),
            enabled,
            vports,
            tunnel_vports,
            counters,
        }
    }

    /// How often the offload thread asks for a round.
    pub fn interval(&self) -> Duration {
        self.hot.settings.interval
    }
}

impl Translator {
    /// Removes a record, and with it its steering entry if it has one:
    /// the one way records leave the registry (see the invariants).
    pub(crate) fn forget(&mut self, ufid: &Ufid) -> Option<Record> {
        let rec = self.registry.remove(ufid)?;
        if let Some(o) = self.datapaths.offload.as_deref_mut() {
            o.hot.forget(ufid);
            if rec.offloaded {
                if let Ok(e) = steer_match(&rec.matched) {
                    if let Err(err) = o.steering.remove(&e) {
                        eprintln!("odpx: steering: removing an entry: {err}");
                    }
                }
                add(&o.counters.brought_back, 1);
            }
        }
        Some(rec)
    }

    /// Can the kernel run these actions (hybrid mode; always in others)?
    pub(crate) fn kernel_runs(&self, actions: &[OdpAction]) -> bool {
        match self.datapaths.offload.as_deref() {
            Some(o) => kernel_runs(actions, o).is_ok(),
            None => true,
        }
    }

    /// The kernel's form of a megaflow's actions (hybrid mode: userspace
    /// VXLAN pushes become `set(tunnel(...))` and an output to the kernel
    /// VXLAN vport); as they are where the kernel cannot run them, so that
    /// it refuses them with its own reason.
    pub(crate) fn kernel_form(&self, actions: &Actions) -> Actions {
        match self.datapaths.offload.as_deref() {
            Some(o) => kernel_actions(actions, o).map_or_else(|_| actions.clone(), Into::into),
            None => actions.clone(),
        }
    }

    /// A megaflow changed: a refusal no longer holds.
    pub(crate) fn offload_forget(&mut self, ufid: &Ufid) {
        if let Some(o) = self.datapaths.offload.as_deref_mut() {
            o.hot.forget(ufid);
        }
    }

    /// Takes in a PMD megaflow's packet count from a sweep.
    pub(crate) fn offload_observe(&mut self, ufid: &Ufid, packets: u64, now: Instant) {
        let Some(o) = self.datapaths.offload.as_deref_mut() else {
            return;
        };
        if o.enabled && self.registry.get(ufid).is_some_and(|r| r.holder != Holder::Kernel) {
            o.hot.observe(*ufid, packets, now);
        }
    }

    fn refuse_offload(&mut self, ufid: &Ufid, reason: String) {
        if let Some(o) = self.datapaths.offload.as_deref_mut() {
            o.hot.refuse(ufid);
            o.counters.refused(reason);
        }
    }

    pub(crate) fn publish_offload_gauges(&self) {
        if let Some(o) = self.datapaths.offload.as_deref() {
            o.counters.offloaded.store(o.steering.len() as u64, Ordering::Relaxed);
            o.counters.masks.store(o.steering.masks() as u64, Ordering::Relaxed);
            o.counters.enabled.store(o.enabled, Ordering::Relaxed);
        }
    }

    /// One offload round at time `now` (see the module documentation).
    /// Returns how many megaflows moved into the kernel.
    pub fn offload_round(&mut self, now: Instant) -> usize {
        let Some(o) = self.datapaths.offload.as_deref_mut() else {
            return 0;
        };
        if !o.enabled {
            return 0;
        }
        let room = o.hot.settings.max_flows.saturating_sub(o.steering.len());
        let due = o.hot.due(now, room);
        // (PMD UFID, kernel UFID, steering entry) of each megaflow to move.
        let mut moves: Vec<(Ufid, Ufid, SteerEntry)> = Vec::new();
        let mut installs = Vec::new();
        for pmd_ufid in due {
            let Some(rec) = self.registry.get(&pmd_ufid).filter(|r| r.holder != Holder::Kernel) else {
                self.offload_forget(&pmd_ufid);
                continue;
            };
            let o = self.datapaths.offload.as_deref().expect("hybrid");
            add(&o.counters.attempts, 1);
            if let Err(why) = kernel_runs(&rec.actions, o) {
                self.refuse_offload(&pmd_ufid, format!("the kernel does not run it: {why}"));
                continue;
            }
            let entry = match steer_match(&rec.matched) {
                Ok(e) => e,
                Err(why) => {
                    self.refuse_offload(&pmd_ufid, format!("steering cannot pick its packets: {why}"));
                    continue;
                }
            };
            let kernel_ufid = Ufid::of(&rec.matched, Holder::Kernel);
            match self.registry.get(&kernel_ufid) {
                // The kernel holds it already (its packets missed there).
                Some(k) if k.matched == rec.matched => {}
                Some(_) => {
                    add(&self.counters.ufid_collisions, 1);
                    self.refuse_offload(&pmd_ufid, "its kernel UFID belongs to another match".into());
                    continue;
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
                    installs.push(FlowOp::Install {
                        ufid: kernel_ufid,
                        matched: Box::new(k.matched),
                        actions: k.actions.clone(),
                    });
                    self.registry.insert(kernel_ufid, k);
                }
            }
            moves.push((pmd_ufid, kernel_ufid, entry));
        }
        // One batch of puts; refusals are forgotten and counted by the
        // kernel's reason.
        self.kernel_apply(installs, Vec::new());
        let mut ops = Vec::new();
        let mut moved = 0;
        for (pmd_ufid, kernel_ufid, entry) in moves {
            if !self.registry.contains(&kernel_ufid) {
                self.refuse_offload(&pmd_ufid, "the kernel refused the flow".into());
                continue;
            }
            let o = self.datapaths.offload.as_deref_mut().expect("hybrid");
            let steered = match o.steering.insert(&entry) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(refusal)) => Err(refusal.to_string()),
                Err(e) => Err(format!("steering: {e}")),
            };
            if let Err(why) = steered {
                self.refuse_offload(&pmd_ufid, why);
                if let Some(r) = self.forget(&kernel_ufid) {
                    ops.push((r.holder, FlowOp::Delete { ufid: kernel_ufid }));
                }
                continue;
            }
            self.registry.mark_offloaded(&kernel_ufid);
            // The PMD's copy goes: its packets now reach the kernel.
            if let Some(r) = self.forget(&pmd_ufid) {
                ops.push((r.holder, FlowOp::Delete { ufid: pmd_ufid }));
            }
            moved += 1;
        }
        if let Some(o) = self.datapaths.offload.as_deref() {
            add(&o.counters.moved, moved as u64);
        }
        self.apply(ops);
        self.publish_offload_gauges();
        moved
    }

    /// Turns offloading on or off. Off brings every kernel-held megaflow
    /// back (steering entries first, then the kernel flows): nothing of
    /// the offload is left behind. Returns how many megaflows came back.
    pub fn set_offload(&mut self, on: bool) -> usize {
        let Some(o) = self.datapaths.offload.as_deref_mut() else {
            return 0;
        };
        o.enabled = on;
        let mut back = 0;
        if !on {
            let mut ops = Vec::new();
            for u in self.kernel_ufids() {
                if self.forget(&u).is_some() {
                    ops.push((Holder::Kernel, FlowOp::Delete { ufid: u }));
                    back += 1;
                }
            }
            self.apply(ops);
        }
        self.publish_offload_gauges();
        self.publish_gauges();
        back
    }

    /// Hybrid mode, after adoption: the kernel flows a previous run left
    /// are offloaded again if they qualify, and deleted if not (with
    /// offload off, all of them).
    pub fn steer_adopted(&mut self) {
        let Some(o) = self.datapaths.offload.as_deref() else {
            return;
        };
        let enabled = o.enabled;
        let mut ops = Vec::new();
        for u in self.kernel_ufids() {
            let Some(rec) = self.registry.get(&u) else { continue };
            let entry = steer_match(&rec.matched)
                .ok()
                .filter(|_| enabled && self.kernel_runs(&rec.actions));
            let o = self.datapaths.offload.as_deref_mut().expect("hybrid");
            let steered = entry.is_some_and(|e| matches!(o.steering.insert(&e), Ok(Ok(()))));
            if steered {
                self.registry.mark_offloaded(&u);
            } else if self.forget(&u).is_some() {
                ops.push((Holder::Kernel, FlowOp::Delete { ufid: u }));
            }
        }
        self.apply(ops);
        self.publish_offload_gauges();
        self.publish_gauges();
    }

    /// Hybrid mode's offload counters.
    pub fn offload_counters(&self) -> Option<Arc<OffloadCounters>> {
        self.datapaths.offload.as_ref().map(|o| o.counters.clone())
    }

    /// The kernel-held megaflows.
    fn kernel_ufids(&self) -> Vec<Ufid> {
        self.registry
            .iter()
            .filter(|(_, r)| r.holder == Holder::Kernel)
            .map(|(u, _)| *u)
            .collect()
    }

    /// Each kernel-held megaflow's mark and the statistics it carried over
    /// from the PMD, for `dump-megaflows`.
    pub fn kernel_marks(&self) -> Vec<(Ufid, bool, Usage)> {
        self.registry
            .iter()
            .filter(|(_, r)| r.holder == Holder::Kernel)
            .map(|(u, r)| (*u, r.offloaded, r.carried))
            .collect()
    }
}

/// The offload thread: an offload round every `interval` until `stop` or
/// the owner is gone.
pub fn run_offload(owner: Weak<Mutex<Translator>>, stop: Arc<AtomicBool>, interval: Duration) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(interval);
        let Some(owner) = owner.upgrade() else { return };
        lock(&owner).offload_round(Instant::now());
    }
}
