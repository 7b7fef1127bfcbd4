//! The exact-match (microflow) cache: the first tier of the fast path.
//!
//! # What
//! A fixed-size, two-way set of `(full key, megaflow reference)` entries.
//! A hit costs one whole-key hash (computed by the caller, usually once per
//! packet), at most two hash compares and one whole-key compare.
//!
//! # Why it exists
//! A megaflow lookup probes one hash table per subtable; with many masks
//! that is many probes. The EMC turns the common case (a few heavy flows)
//! into one probe, as OVS's EMC does.
//!
//! # Invariants
//! * Capacity is fixed at creation (a power of two); lookup and insert never
//!   allocate.
//! * An entry only *points at* a megaflow ([`FlowRef`], index + generation).
//!   The megaflow cache bumps the generation when it removes a flow, so a
//!   stale entry is detected by the caller's `MegaflowCache::get` and
//!   treated as a miss; the EMC never needs to be flushed for correctness.
//! * Keys are datapath keys: their pipeline state (`metadata`, `regs`) is
//!   zero, so an entry keeps and compares only the [`DP_WORDS`] before it.
//! * Insertion is probabilistic (`insert_inv_prob`, 1 in N, like OVS's
//!   `emc-insert-inv-prob`, default 100), so a flood of one-packet flows
//!   does not thrash it. N = 1 always inserts; N = 0 disables inserts.
//!
//! # Threads
//! Owned by exactly one PMD thread; no sharing, no atomics.

use crate::key::{FlowKey, DP_WORDS};
use crate::megaflow::{FlowRef, BATCH};

/// The small half of an entry, probed first. Keys live in a separate array
/// so a probe that fails on the hash never touches the 200-byte key: the
/// tag array (12 bytes an entry, 96 KiB for 8192) stays in L2.
/// A stored key is the datapath part of a [`FlowKey`] (see the invariants).
#[derive(Clone, Copy)]
struct Tag {
    hash: u32,
    flow: FlowRef,
}

const EMPTY: FlowRef = FlowRef {
    index: u32::MAX,
    generation: 0,
};

/// Counters kept by the cache itself.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EmcStats {
    pub lookups: u64,
    pub hits: u64,
    pub inserts: u64,
}

/// The datapath words of a key.
type DpWords = [u64; DP_WORDS];

/// The datapath words of `key`.
#[inline(always)]
fn dp_words(key: &FlowKey) -> &DpWords {
    debug_assert!(
        key.metadata == 0 && key.regs == [0; 16],
        "pipeline state in a datapath key"
    );
    key.words()[..DP_WORDS].try_into().expect("DP_WORDS <= WORDS")
}

pub struct ExactMatchCache {
    tags: Box<[Tag]>,
    keys: Box<[DpWords]>,
    mask: u32,
    insert_inv_prob: u32,
    rng: u32,
    pub stats: EmcStats,
}

impl ExactMatchCache {
    /// `entries` is rounded up to a power of two (minimum 2).
    pub fn new(entries: usize, insert_inv_prob: u32) -> Self {
        let n = entries.max(2).next_power_of_two();
        ExactMatchCache {
            tags: vec![Tag { hash: 0, flow: EMPTY }; n].into_boxed_slice(),
            keys: vec![[0u64; DP_WORDS]; n].into_boxed_slice(),
            mask: (n - 1) as u32,
            insert_inv_prob,
            rng: 0x2545_f491,
            stats: EmcStats::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.tags.len()
    }

    #[inline(always)]
    fn slots(&self, hash: u32) -> (usize, usize) {
        ((hash & self.mask) as usize, (hash.rotate_left(16) & self.mask) as usize)
    }

    /// Looks up `key` (whose [`FlowKey::hash`] is `hash`).
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, hash: u32) -> Option<FlowRef> {
        self.stats.lookups += 1;
        let (a, b) = self.slots(hash);
        for i in [a, b] {
            let t = self.tags[i];
            if t.hash == hash && t.flow.index != u32::MAX && self.keys[i] == *dp_words(key) {
                self.stats.hits += 1;
                return Some(t.flow);
            }
        }
        None
    }

    /// Looks up a batch: `hashes[i]` is `keys[i].hash()`; a hit goes to
    /// `out[i]`, a miss leaves `out[i]` as it was. Returns the bitmap of
    /// hits.
    ///
    /// Three passes over the batch instead of one lookup after another:
    /// the first reads every packet's two tags, the second picks each
    /// packet's candidate slot and reads its key's four cache lines, the
    /// third compares. Live, these lines come back from L2 or L3 for every
    /// batch (the kernel's transmit work between batches evicts them);
    /// plain loads with nothing waiting on them let the core have the whole
    /// batch's misses in flight at once, where one lookup at a time would
    /// wait for each in turn.
    pub fn lookup_batch(&mut self, keys: &[FlowKey], hashes: &[u32], out: &mut [Option<FlowRef>]) -> u32 {
        let n = keys.len().min(hashes.len()).min(out.len()).min(BATCH);
        self.stats.lookups += n as u64;
        let mut touched = 0u64;
        for &hash in &hashes[..n] {
            let (a, b) = self.slots(hash);
            touched ^= (self.tags[a].hash ^ self.tags[b].hash) as u64;
        }
        let mut candidate = [usize::MAX; BATCH];
        for (i, &hash) in hashes[..n].iter().enumerate() {
            let (a, b) = self.slots(hash);
            for c in [a, b] {
                let t = self.tags[c];
                if t.hash == hash && t.flow.index != u32::MAX {
                    candidate[i] = c;
                    let w = &self.keys[c];
                    touched ^= w[0] ^ w[8] ^ w[16] ^ w[DP_WORDS - 1];
                    break;
                }
            }
        }
        std::hint::black_box(touched);
        let mut hits = 0u32;
        for i in 0..n {
            let c = candidate[i];
            if c != usize::MAX && self.keys[c] == *dp_words(&keys[i]) {
                out[i] = Some(self.tags[c].flow);
                hits |= 1 << i;
            }
        }
        self.stats.hits += hits.count_ones() as u64;
        hits
    }

    /// Offers `key -> flow` to the cache; inserted with probability
    /// 1/`insert_inv_prob`. An entry for the same key is always refreshed.
    #[inline]
    pub fn insert(&mut self, key: &FlowKey, hash: u32, flow: FlowRef) {
        let (a, b) = self.slots(hash);
        for i in [a, b] {
            if self.tags[i].hash == hash && self.tags[i].flow.index != u32::MAX && self.keys[i] == *dp_words(key) {
                self.tags[i].flow = flow;
                return;
            }
        }
        if !self.should_insert() {
            return;
        }
        // Prefer an empty slot, else the one with the smaller hash (an
        // arbitrary but stable choice, as OVS does).
        let victim = if self.tags[a].flow.index == u32::MAX {
            a
        } else if self.tags[b].flow.index == u32::MAX || self.tags[b].hash < self.tags[a].hash {
            b
        } else {
            a
        };
        self.tags[victim] = Tag { hash, flow };
        self.keys[victim] = *dp_words(key);
        self.stats.inserts += 1;
    }

    fn should_insert(&mut self) -> bool {
        match self.insert_inv_prob {
            0 => false,
            1 => true,
            n => {
                // xorshift32: cheap, and good enough for sampling.
                let mut x = self.rng;
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                self.rng = x;
                x.is_multiple_of(n)
            }
        }
    }

    /// Drops every entry (e.g. after a wholesale megaflow flush).
    pub fn clear(&mut self) {
        for t in self.tags.iter_mut() {
            t.flow = EMPTY;
        }
    }

    pub fn set_insert_inv_prob(&mut self, n: u32) {
        self.insert_inv_prob = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.ipv4_src = n;
        k
    }

    #[test]
    fn hit_after_insert_and_miss_for_other_keys() {
        let mut emc = ExactMatchCache::new(64, 1);
        let k = key(7);
        let r = FlowRef {
            index: 3,
            generation: 1,
        };
        assert_eq!(emc.lookup(&k, k.hash()), None);
        emc.insert(&k, k.hash(), r);
        assert_eq!(emc.lookup(&k, k.hash()), Some(r));
        let k2 = key(8);
        assert_eq!(emc.lookup(&k2, k2.hash()), None);
    }

    #[test]
    fn batch_lookups_find_what_single_lookups_find() {
        let mut emc = ExactMatchCache::new(256, 1);
        let keys: Vec<FlowKey> = (0..32).map(key).collect();
        let hashes: Vec<u32> = keys.iter().map(FlowKey::hash).collect();
        for (i, k) in keys.iter().enumerate().step_by(3) {
            emc.insert(
                k,
                hashes[i],
                FlowRef {
                    index: i as u32,
                    generation: 0,
                },
            );
        }
        let mut out = [None; 32];
        let hits = emc.lookup_batch(&keys, &hashes, &mut out);
        for (i, k) in keys.iter().enumerate() {
            let single = emc.lookup(k, hashes[i]);
            assert_eq!(out[i], single, "key {i}");
            assert_eq!(hits & (1 << i) != 0, single.is_some(), "key {i}");
        }
        assert_eq!(hits.count_ones(), 11);
        // A hash that matches a tag but a key that does not is a miss.
        let other = key(99);
        let mut out = [None; 1];
        assert_eq!(emc.lookup_batch(&[other], &[hashes[0]], &mut out), 0);
        assert_eq!(out[0], None);
    }

    #[test]
    fn disabled_inserts_and_sampling() {
        let mut emc = ExactMatchCache::new(1024, 0);
        let k = key(1);
        emc.insert(
            &k,
            k.hash(),
            FlowRef {
                index: 0,
                generation: 0,
            },
        );
        assert_eq!(emc.lookup(&k, k.hash()), None);
        let mut emc = ExactMatchCache::new(1 << 16, 100);
        for i in 0..10_000 {
            let k = key(i);
            emc.insert(
                &k,
                k.hash(),
                FlowRef {
                    index: i,
                    generation: 0,
                },
            );
        }
        // About 100 of 10,000 offers are taken.
        assert!((30..300).contains(&emc.stats.inserts), "{}", emc.stats.inserts);
    }

    #[test]
    fn collisions_evict_but_never_return_wrong_flows() {
        let mut emc = ExactMatchCache::new(2, 1);
        for i in 0..100u32 {
            let k = key(i);
            emc.insert(
                &k,
                k.hash(),
                FlowRef {
                    index: i,
                    generation: 0,
                },
            );
        }
        // Whatever a lookup finds is that key's flow; and the cache does
        // hold some (the last insert at least).
        let mut found = 0;
        for i in 0..100u32 {
            let k = key(i);
            let got = emc.lookup(&k, k.hash());
            assert!(got.is_none_or(|r| r.index == i), "key {i}: {got:?}");
            found += usize::from(got.is_some());
        }
        assert!(found >= 1, "nothing cached");
        let last = key(99);
        assert_eq!(emc.lookup(&last, last.hash()).map(|r| r.index), Some(99));
    }
}
