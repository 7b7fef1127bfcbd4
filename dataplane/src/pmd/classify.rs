//! Batch classification: a batch's keys, their megaflows through the
//! cache tiers, the misses as upcalls, the hits' actions.
//!
//! # One lookup path
//! Every packet goes through [`Pmd::classify`]: the exact-match cache
//! first when it pays ([`crate::emc_policy`]), then one batched megaflow
//! lookup for whatever has no flow yet (every packet, when the EMC is
//! bypassed), then an upcall for what is left. A batch of one (a packet
//! recirculated after decapsulation) takes the same path as a batch of 32.
//!
//! # Keys first
//! All keys of a batch are extracted before any lookup: the EMC probes of
//! the whole batch then run back to back, and their cache misses overlap
//! instead of waiting behind each packet's parsing. Likewise every EMC
//! hit's megaflow slot is read before any is checked.

use super::{Pmd, MAX_RECIRC_DEPTH};
use crate::exec::Program;
use crate::port::BATCH;
use crate::sys::time::cycles;
use crate::upcalls::Upcall;
use odpx_classifier::counters::add_single_writer as add;
use odpx_classifier::extract::extract_into;
use odpx_classifier::megaflow::FlowRef;
use std::sync::atomic::Ordering;

/// One bit per packet of a batch.
type BatchMask = u32;

const _: () = assert!(BATCH <= BatchMask::BITS as usize);

fn first_n(n: usize) -> BatchMask {
    if n >= BatchMask::BITS as usize {
        BatchMask::MAX
    } else {
        (1 << n) - 1
    }
}

impl Pmd {
    /// Classifies and runs the `n` packets of batch `k`; returns how many
    /// were decapsulated into the other batch for another pass.
    pub(super) fn process_batch(&mut self, k: usize, n: usize, now: u64) -> usize {
        let c_start = cycles();
        let with_emc = self.emc_policy.next_batch();
        self.extract_keys(k, n, with_emc);
        let mut flows: [Option<FlowRef>; BATCH] = [None; BATCH];
        let missed = self.classify(n, with_emc, &mut flows);
        let mut left = missed;
        while left != 0 {
            let i = left.trailing_zeros() as usize;
            left &= left - 1;
            self.upcall(k, i);
        }
        let c_actions = cycles();
        let classify = c_actions.wrapping_sub(c_start);
        add(&self.counters.classify_cycles, classify);
        // A batch with upcalls measures the slow path's door, not the cache.
        if missed == 0 && self.emc_policy.record(with_emc, n as u64, classify) {
            self.publish_emc_mode();
        }
        let [b0, b1] = &mut self.batches;
        let (cur, next) = if k == 0 { (b0, b1) } else { (b1, b0) };
        let mut popped = 0;
        for (i, f) in flows.iter().enumerate().take(n) {
            let Some(r) = *f else { continue };
            let tcp_flags = self.keys[i].tcp_flags;
            // Borrow the actions in place (disjoint fields): no reference
            // count traffic per packet.
            let Some(flow) = self.mf.hit(r, 1, cur.lens[i] as u64, tcp_flags, now) else {
                continue;
            };
            if self.out.run(&flow.actions, cur, i, next, popped) {
                popped += 1;
            }
        }
        let c_tx = cycles();
        add(&self.counters.action_cycles, c_tx.wrapping_sub(c_actions));
        self.out.flush();
        add(&self.counters.tx_cycles, cycles().wrapping_sub(c_tx));
        popped
    }

    /// The flow keys of batch `k`'s `n` packets (tunnel metadata and
    /// recirculation ids applied to recirculated ones), and their hashes
    /// when the EMC is probed.
    fn extract_keys(&mut self, k: usize, n: usize, with_emc: bool) {
        let batch = &self.batches[k];
        for i in 0..n {
            let key = &mut self.keys[i];
            extract_into(batch.data(i), batch.in_ports[i], key);
            if let Some(t) = &batch.tunnels[i] {
                t.apply(key);
            }
            key.recirc_id = batch.recirc_ids[i];
            if with_emc {
                self.hashes[i] = key.hash();
            }
        }
    }

    /// Finds each of the `n` keys' megaflow (see "One lookup path"); returns
    /// the packets that have none, to be upcalled.
    fn classify(&mut self, n: usize, with_emc: bool, flows: &mut [Option<FlowRef>; BATCH]) -> BatchMask {
        let mut pending = first_n(n);
        if with_emc {
            self.emc
                .lookup_batch(&self.keys[..n], &self.hashes[..n], &mut flows[..n]);
            // Read every hit's megaflow slot before checking any (see
            // `ExactMatchCache::lookup_batch` for why loads come first).
            let mut touched = 0u64;
            for r in flows[..n].iter().flatten() {
                touched ^= self.mf.touch(*r);
            }
            std::hint::black_box(touched);
            for (i, flow) in flows.iter_mut().enumerate().take(n) {
                match *flow {
                    Some(r) if self.mf.get(r).is_some() => pending &= !(1 << i),
                    _ => *flow = None,
                }
            }
            add(&self.counters.emc_hits, u64::from((first_n(n) & !pending).count_ones()));
        } else {
            add(&self.counters.emc_bypassed, n as u64);
        }
        if pending == 0 {
            return 0;
        }
        // One megaflow lookup for every packet still without a flow: the
        // keys in place when that is all of them, gathered otherwise.
        let mut at = [0usize; BATCH];
        let mut found = [None; BATCH];
        let all = pending == first_n(n);
        let m = if all {
            for (j, a) in at.iter_mut().enumerate().take(n) {
                *a = j;
            }
            n
        } else {
            let mut m = 0;
            let mut left = pending;
            while left != 0 {
                let i = left.trailing_zeros() as usize;
                left &= left - 1;
                at[m] = i;
                self.miss_keys[m] = self.keys[i];
                m += 1;
            }
            m
        };
        let keys = if all { &self.keys[..n] } else { &self.miss_keys[..m] };
        let probed_before = self.mf.stats.subtables_probed_on_hit;
        let hits = self.mf.lookup_batch(keys, &mut found[..m]);
        add(
            &self.counters.subtables_probed,
            self.mf.stats.subtables_probed_on_hit - probed_before,
        );
        add(&self.counters.megaflow_hits, u64::from(hits.count_ones()));
        for j in 0..m {
            let Some(r) = found[j] else { continue };
            let i = at[j];
            flows[i] = Some(r);
            pending &= !(1 << i);
            if with_emc {
                self.emc.insert(&self.keys[i], self.hashes[i], r);
            }
        }
        pending
    }

    /// Hands packet `i` of batch `k` to the slow path (or counts it lost
    /// when its port's queue is full).
    fn upcall(&mut self, k: usize, i: usize) {
        add(&self.counters.upcalls, 1);
        let batch = &self.batches[k];
        let u = Upcall {
            pmd: self.cfg.id,
            in_port: batch.in_ports[i],
            key: self.keys[i],
            packet: batch.data(i).to_vec(),
        };
        if !self.slow.upcalls.send(u) {
            add(&self.counters.upcalls_lost, 1);
        }
    }

    /// Says the EMC's new mode (probed or bypassed) and the costs that
    /// made it change.
    fn publish_emc_mode(&self) {
        let c = &self.counters;
        c.emc_on.store(u64::from(self.emc_policy.emc_on()), Ordering::Relaxed);
        add(&c.emc_switches, 1);
        if let Some((with, without)) = self.emc_policy.last_cost {
            c.emc_cost_with.store(with as u64, Ordering::Relaxed);
            c.emc_cost_without.store(without as u64, Ordering::Relaxed);
        }
    }

    /// Runs the packets left in batch `k` by decapsulation or `recirc`
    /// (`n` of them) through the batch code again, pass after pass.
    pub(super) fn recirculate(&mut self, mut k: usize, mut n: usize, now: u64) {
        for _ in 1..MAX_RECIRC_DEPTH {
            if n == 0 {
                return;
            }
            add(&self.counters.recirculations, n as u64);
            n = self.process_batch(k, n, now);
            k = 1 - k;
        }
        add(&self.counters.drops_recirc_depth, n as u64);
    }

    /// Runs a program on one packet that came from the slow path (between
    /// batches, so both batches are free), recirculating it if it was
    /// decapsulated or recirculated.
    pub(super) fn run_packet(&mut self, program: &Program, in_port: u32, packet: &[u8]) {
        let now = self.now();
        self.batches[0].fill(0, in_port, packet);
        let [b0, b1] = &mut self.batches;
        let popped = usize::from(self.out.run(program, b0, 0, b1, 0));
        self.out.flush();
        self.recirculate(1, popped, now);
    }
}
