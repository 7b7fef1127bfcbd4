//! Time and what the datapaths report: sweeps for idle expiry and
//! statistics, barriers, MAC aging.
//!
//! # Sweeps
//! Every [`SWEEP_INTERVAL`](super::SWEEP_INTERVAL) the owner asks each
//! datapath for the megaflows idle longer than the current idle timeout
//! (the PMDs delete and report them; the kernel is dumped and the owner
//! picks them) and the statistics of the others, which keep its records
//! and the MAC table fresh. The round's duration drives the dynamic flow
//! limit ([`super::limits`]). A megaflow installed again after a sweep was
//! sent is not expired by it: its install came after the holder's expiry.
//!
//! # Deleted megaflows' last packets
//! A megaflow the owner deletes (a rule change, a MAC move) may have
//! carried packets since its statistics were last read. The owner keeps
//! its lookups and groups in a [`Tombstone`] until the holder says what
//! it carried in all: a PMD with its next sweep's report (the deletes
//! before the sweep came before it in the PMD's queue), the kernel in its
//! echo of the deletion. Tombstones a sweep's reports did not claim go
//! when that sweep is done.
//!
//! # Barriers
//! A change is answered once every PMD answered a barrier sent after the
//! operations the change caused (the kernel's were acknowledged as they
//! were carried out, in order, before the barrier). When no operation
//! has reached the PMDs since they answered the last barrier, and none is
//! outstanding, they hold what the owner decided already: the change is
//! answered at once. (A rule change that touches no megaflow, the usual
//! case for a controller's FLOW_MODs, so costs no PMD round trip.)

use super::effects::{Op, Ticket};
use super::registry::Usage;
use super::translate::MacEvent;
use super::{add, Core, SWEEP_INTERVAL};
use odpx_classifier::flow_op::{FlowOp, Holder, Ufid};
use odpx_classifier::rules::Rule;
use odpx_dataplane::pmd::{FlowUse, PmdReport};
use odpx_offload::client::FlowId;
use odpx_offload::kernel::DumpReport;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A change waiting for the PMDs' barrier reports.
pub(super) struct Barrier {
    token: u64,
    left: usize,
    /// Operations that reached the PMDs before it ([`Core::pmd_ops`]).
    after_ops: u64,
    ticket: Ticket,
    answer: Result<usize, String>,
}

/// A sweep in progress.
pub(super) struct Sweep {
    token: u64,
    started: Instant,
    /// Records installed from this install number on came after the sweep
    /// was sent.
    first_later_install: u64,
    left: usize,
}

/// What the owner keeps of a megaflow it had a PMD delete, until the
/// PMD's next sweep reports its final statistics (the hits since the
/// last report), so that its rules and groups are credited with them.
pub(super) struct Tombstone {
    lookups: Box<[odpx_classifier::xlate::Lookup]>,
    groups: Box<[odpx_classifier::xlate::group::GroupUse]>,
    /// What was credited already.
    usage: Usage,
    /// The first sweep token that the delete came before.
    resolved_by: u64,
}

impl Core {
    /// Keeps what crediting the final statistics of `r`, deleted from its
    /// PMD, needs (see [`Tombstone`]).
    pub(super) fn bury(&mut self, ufid: Ufid, r: &super::registry::Record) {
        self.tombstones.insert(
            ufid,
            Tombstone {
                lookups: r.lookups.clone(),
                groups: r.groups.clone(),
                usage: r.usage,
                resolved_by: self.next_token,
            },
        );
    }

    /// Credits what deleted megaflows carried after their last report.
    fn unbury(&mut self, deleted: &[FlowUse], now: Instant) {
        for u in deleted {
            let used = u.idle.map(|d| now.checked_sub(d).unwrap_or(now));
            self.credit_final(&u.ufid, u.stats.packets, u.stats.bytes, used);
        }
    }

    /// The kernel's word on a flow it deleted: what it carried in all.
    pub(super) fn final_stats(&mut self, ufid: &Ufid, packets: u64, bytes: u64) {
        self.credit_final(ufid, packets, bytes, None);
    }

    fn credit_final(&mut self, ufid: &Ufid, packets: u64, bytes: u64, used: Option<Instant>) {
        let Some(t) = self.tombstones.remove(ufid) else {
            return;
        };
        let (dp, db) = (
            packets.saturating_sub(t.usage.packets),
            bytes.saturating_sub(t.usage.bytes),
        );
        self.rule_counters.credit(&t.lookups, dp, db, used);
        self.group_counters.credit(&t.groups, dp, db);
    }

    /// Answers `ticket` with `answer` once every datapath has applied what
    /// was decided so far.
    pub(super) fn barrier(&mut self, ticket: Ticket, answer: Result<usize, String>) {
        let after_ops = self.pmd_ops + self.outbox.iter().filter(|o| o.reaches_pmds()).count() as u64;
        let in_sync = after_ops == self.pmd_synced && self.barriers.is_empty();
        if self.holders.pmds == 0 || in_sync {
            self.outbox.push(Op::Reply { ticket, result: answer });
            return;
        }
        let token = self.token();
        self.outbox.push(Op::Barrier { token });
        self.barriers.push(Barrier {
            token,
            left: self.holders.pmds,
            after_ops,
            ticket,
            answer,
        });
    }

    /// Takes in a PMD's report.
    pub fn pmd_report(&mut self, r: PmdReport, now: Instant) {
        match r {
            PmdReport::Barrier { token, .. } => {
                if let Some(i) = self.barriers.iter().position(|b| b.token == token) {
                    self.barriers[i].left -= 1;
                    if self.barriers[i].left == 0 {
                        let b = self.barriers.swap_remove(i);
                        self.pmd_synced = self.pmd_synced.max(b.after_ops);
                        self.outbox.push(Op::Reply {
                            ticket: b.ticket,
                            result: b.answer,
                        });
                    }
                }
            }
            PmdReport::NotInstalled { pmd, ufid } => {
                // It may have been installed again since: make sure no copy
                // stays that the owner does not know of.
                if self.forget(&ufid).is_some() {
                    self.outbox.push(Op::Flow {
                        holder: Holder::Pmd(pmd as u32),
                        op: FlowOp::Delete { ufid },
                    });
                }
            }
            PmdReport::Swept {
                token,
                expired,
                active,
                deleted,
                ..
            } => {
                self.unbury(&deleted, now);
                let Some(sweep) = self.sweep.as_mut().filter(|s| s.token == token) else {
                    return;
                };
                let first_later = sweep.first_later_install;
                sweep.left -= 1;
                let done = sweep.left == 0;
                for u in &expired {
                    self.credit_usage(&u.ufid, u.stats.packets, u.stats.bytes, None);
                    if self.registry.get(&u.ufid).is_some_and(|r| r.install_seq < first_later) {
                        self.forget(&u.ufid);
                        add(&self.counters.expired, 1);
                    }
                }
                self.used(&active, now);
                if done {
                    self.sweep_done(now);
                }
            }
        }
        self.publish_gauges();
    }

    /// Takes in the statistics of megaflows used since the last sweep, and
    /// keeps the MAC addresses they learned from aging out.
    fn used(&mut self, active: &[FlowUse], now: Instant) {
        let mut events = Vec::new();
        let mut taught = Vec::new();
        for u in active {
            let usage = Usage {
                packets: u.stats.packets,
                bytes: u.stats.bytes,
                used: u.idle.map(|d| now.checked_sub(d).unwrap_or(now)),
            };
            events.extend(self.note_usage(&u.ufid, usage, now, &mut taught));
            self.offload_observe(&u.ufid, u.stats.packets, now);
        }
        if !events.is_empty() {
            self.mac_events(&events);
        }
        self.learn(taught, now);
    }

    /// Records a megaflow's statistics; if it was used since the last
    /// reading, adds what its `learn` actions teach to `taught` (see
    /// [`super::learn`]) and, if it learned a source, refreshes that MAC
    /// entry (a MAC event if the entry had gone).
    fn note_usage(&mut self, ufid: &Ufid, usage: Usage, now: Instant, taught: &mut Vec<Rule>) -> Option<MacEvent> {
        self.credit_usage(ufid, usage.packets, usage.bytes, usage.used);
        let before = self.registry.get(ufid)?.usage.packets;
        let r = self.registry.set_usage(ufid, usage)?;
        if usage.packets <= before {
            return None;
        }
        taught.extend(r.learned.iter().cloned());
        let s = r.learns?;
        (self.macs.refresh(s.vlan, s.mac, s.port, now) == super::mac::Learned::New).then_some(MacEvent {
            mac: s.mac,
            port: Some(s.port),
            moved: false,
        })
    }

    /// Credits the rules a megaflow went through with what it carried
    /// since its statistics were last read (`packets` and `bytes` are its
    /// totals now).
    fn credit_usage(&mut self, ufid: &Ufid, packets: u64, bytes: u64, used: Option<Instant>) {
        let Some(r) = self.registry.get(ufid) else { return };
        let (dp, db) = (
            packets.saturating_sub(r.usage.packets),
            bytes.saturating_sub(r.usage.bytes),
        );
        let used = used.filter(|u| r.usage.used.is_none_or(|before| *u > before));
        self.rule_counters.credit(&r.lookups, dp, db, used);
        self.group_counters.credit(&r.groups, dp, db);
    }

    fn sweep_done(&mut self, now: Instant) {
        if let Some(s) = self.sweep.take() {
            // Every PMD has reported what was deleted before this sweep.
            self.tombstones.retain(|_, t| t.resolved_by > s.token);
            let took = now.duration_since(s.started);
            self.limiter.after_round(took, self.registry.len());
            if self.at_flow_limit && self.limiter.admits(self.registry.len()) {
                self.at_flow_limit = false;
                tracing::info!("below the flow limit again ({} megaflows)", self.registry.len());
            }
            add(&self.counters.sweeps, 1);
            self.counters
                .last_sweep_ms
                .store(took.as_millis() as u64, Ordering::Relaxed);
        }
        // The offload moves what the sweep's counts show hot.
        self.offload_round(now);
        // The counters are fresh: rules idle (or old) enough go.
        self.expire_rules(now);
        for ticket in std::mem::take(&mut self.refresh_now) {
            self.outbox.push(Op::Reply { ticket, result: Ok(0) });
        }
        if !self.refresh_next.is_empty() {
            self.refresh_now = std::mem::take(&mut self.refresh_next);
            self.last_sweep = now;
            self.start_sweep(now);
        }
    }

    /// [`super::Change::Refresh`]: a sweep now, or right after the one in
    /// progress (whose reports may predate the request).
    pub(super) fn refresh(&mut self, ticket: Ticket, now: Instant) {
        if self.sweep.is_some() {
            self.refresh_next.push(ticket);
            return;
        }
        self.refresh_now.push(ticket);
        self.last_sweep = now;
        self.start_sweep(now);
    }

    /// Periodic work at time `now`: parked packets, MAC aging, the next
    /// sweep when it is due (hybrid mode's offload round follows each).
    pub fn tick(&mut self, now: Instant) {
        self.release_parked(now);
        let gone = self.macs.age(now);
        if !gone.is_empty() {
            add(&self.counters.mac_aged, gone.len() as u64);
            let events: Vec<MacEvent> = gone
                .into_iter()
                .map(|mac| MacEvent {
                    mac,
                    port: None,
                    moved: false,
                })
                .collect();
            self.mac_events(&events);
        }
        if self.sweep.is_none() && now.duration_since(self.last_sweep) >= SWEEP_INTERVAL {
            self.last_sweep = now;
            self.start_sweep(now);
        }
        self.publish_gauges();
    }

    fn start_sweep(&mut self, now: Instant) {
        let max_idle = self.limiter.max_idle(self.registry.len());
        let token = self.token();
        let left = self.holders.pmds + usize::from(self.holders.kernel);
        self.sweep = Some(Sweep {
            token,
            started: now,
            first_later_install: self.install_seq,
            left,
        });
        if left == 0 {
            self.sweep_done(now);
        } else {
            self.outbox.push(Op::Sweep { token, max_idle });
        }
    }

    /// Takes in a terse dump of the kernel's flows: refreshes the records
    /// and the MAC table from their statistics, and deletes the idle ones,
    /// the ones the owner never installed, and forgets those the kernel no
    /// longer has.
    pub fn kernel_dump(&mut self, r: DumpReport, now: Instant) {
        let Some(sweep) = self.sweep.as_mut().filter(|s| s.token == r.token) else {
            return;
        };
        sweep.left = sweep.left.saturating_sub(1);
        let done = sweep.left == 0;
        let first_later = sweep.first_later_install;
        match r.flows {
            Ok(flows) => self.kernel_flows_seen(flows, r.now_ms, first_later, now),
            Err(e) => tracing::warn!("kernel flow dump: {e}"),
        }
        if done {
            self.sweep_done(now);
        }
        self.publish_gauges();
    }

    fn kernel_flows_seen(
        &mut self,
        flows: Vec<odpx_offload::kernel::FlowUsage>,
        now_ms: u64,
        first_later: u64,
        now: Instant,
    ) {
        let max_idle = self.limiter.max_idle(self.registry.len());
        let mut strays: Vec<FlowId> = Vec::new();
        let mut seen = HashSet::new();
        let mut events: Vec<MacEvent> = Vec::new();
        let mut taught = Vec::new();
        for f in flows {
            let ufid = match f.ufid {
                Some(u) if self.registry.get(&u).is_some_and(|rec| rec.holder.is_kernel()) => u,
                Some(u) => {
                    strays.push(FlowId::Ufid(u.as_bytes().to_vec()));
                    continue;
                }
                None => {
                    if let Some(k) = f.key_raw {
                        strays.push(FlowId::Key(k));
                    }
                    continue;
                }
            };
            seen.insert(ufid);
            let idle = (f.used_ms != 0).then(|| Duration::from_millis(now_ms.saturating_sub(f.used_ms)));
            let usage = Usage {
                packets: f.packets,
                bytes: f.bytes,
                used: idle.map(|d| now.checked_sub(d).unwrap_or(now)),
            };
            events.extend(self.note_usage(&ufid, usage, now, &mut taught));
            let Some(rec) = self.registry.get(&ufid) else { continue };
            let idle_for = now.saturating_duration_since(rec.last_activity());
            if idle_for >= max_idle && rec.install_seq < first_later {
                self.forget(&ufid);
                add(&self.counters.expired, 1);
                self.outbox.push(Op::Flow {
                    holder: Holder::Kernel,
                    op: FlowOp::Delete { ufid },
                });
            }
        }
        add(&self.counters.kernel_strays, strays.len() as u64);
        if !strays.is_empty() {
            self.outbox.push(Op::KernelDelete(strays));
        }
        // Registered, installed before the dump, and not in it: the kernel
        // lost it (someone deleted it, or the datapath was flushed).
        let vanished: Vec<Ufid> = self
            .registry
            .iter()
            .filter(|(u, rec)| rec.holder.is_kernel() && rec.install_seq < first_later && !seen.contains(*u))
            .map(|(u, _)| *u)
            .collect();
        for u in vanished {
            self.forget(&u);
            add(&self.counters.kernel_vanished, 1);
        }
        if !events.is_empty() {
            self.mac_events(&events);
        }
        self.learn(taught, now);
    }
}
