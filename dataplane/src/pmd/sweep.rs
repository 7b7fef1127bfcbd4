//! The owner's periodic round in a PMD: delete the megaflows idle for the
//! owner's (dynamic) idle timeout, and report them with every megaflow
//! used since the previous round.
//!
//! # In slices
//! A sweep is a walk over the cache's slots that stops when the PMD's
//! background slice is spent and resumes at the same slot
//! ([`Pmd::sweep_step`]): walking and expiring a hundred thousand
//! megaflows in one go stopped reception for tens of milliseconds. It
//! reports once, when the walk reaches the end.

use super::messages::{FlowUse, PmdReport};
use super::output::idle_of;
use super::Pmd;
use odpx_classifier::counters::add_single_writer as add;
use std::time::Duration;

/// Slots a sweep step visits (between two readings of the clock).
const SWEEP_STEP: usize = 256;

/// A sweep in progress: where its walk over the cache's slots stands and
/// what it found so far.
pub(super) struct SweepWalk {
    token: u64,
    timeout_ns: u64,
    /// Megaflows used after this were used since the previous sweep.
    since: u64,
    next_slot: usize,
    expired: Vec<FlowUse>,
    active: Vec<FlowUse>,
    /// What the owner deleted before the sweep began.
    deleted: Vec<FlowUse>,
}

impl Pmd {
    /// Starts the owner's round (see the module documentation); a sweep
    /// asked for while one is under way ends that one where it stands
    /// (what it expired is reported) and starts again.
    pub(super) fn start_sweep(&mut self, token: u64, max_idle: Duration) {
        if self.sweeping.is_some() {
            self.finish_sweep();
        }
        let now = self.now();
        self.sweeping = Some(SweepWalk {
            token,
            timeout_ns: max_idle.as_nanos() as u64,
            since: self.last_sweep,
            next_slot: 0,
            expired: Vec::new(),
            active: Vec::new(),
            deleted: std::mem::take(&mut self.deleted),
        });
        self.last_sweep = now;
    }

    /// Visits the next [`SWEEP_STEP`] slots of the sweep under way;
    /// reports the sweep when the walk reaches the end. Megaflows
    /// installed or deleted meanwhile are simply found or not: a new one
    /// is not idle yet, and a deleted one was reported by its deleter.
    pub(super) fn sweep_step(&mut self) {
        let now = self.now();
        let Some(walk) = self.sweeping.as_mut() else {
            return;
        };
        let end = (walk.next_slot + SWEEP_STEP).min(self.mf.slot_count());
        for i in walk.next_slot..end {
            let Some((r, f)) = self.mf.at(i) else {
                continue;
            };
            let last = if f.stats.used == 0 { f.created } else { f.stats.used };
            let u = FlowUse {
                ufid: self.ufid_at[i],
                stats: f.stats,
                idle: idle_of(f.stats.used, now),
            };
            if now.saturating_sub(last) >= walk.timeout_ns {
                self.mf.remove(r);
                if self.by_ufid.get(&u.ufid) == Some(&r) {
                    self.by_ufid.remove(&u.ufid);
                }
                walk.expired.push(u);
            } else if f.stats.used > walk.since {
                walk.active.push(u);
            }
        }
        walk.next_slot = end;
        if end >= self.mf.slot_count() {
            self.finish_sweep();
        }
    }

    /// Reports the sweep under way with what its walk found.
    fn finish_sweep(&mut self) {
        let Some(walk) = self.sweeping.take() else {
            return;
        };
        add(&self.counters.expired, walk.expired.len() as u64);
        self.publish_megaflows();
        let _ = self.slow.reports.send(PmdReport::Swept {
            pmd: self.cfg.id,
            token: walk.token,
            expired: walk.expired,
            active: walk.active,
            deleted: walk.deleted,
        });
    }
}
