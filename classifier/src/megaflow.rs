//! The megaflow cache: wildcarded flows, tuple-space search.
//!
//! # What
//! A set of megaflows ([`Match`] + caller-defined actions `A` + stats). A
//! lookup returns the megaflow that accepts a packet key. Flows are grouped
//! in *subtables*, one per distinct mask; each subtable is a hash table keyed
//! by `key & mask`. Looking up a packet probes subtables in rank order and
//! stops at the first hit.
//!
//! # Why it is shaped like this
//! * One subtable per mask (tuple-space search, as OVS dpcls): insert and
//!   remove are O(1), lookup is O(subtables).
//! * Each subtable records which of the key's 25 words its mask uses and picks
//!   a hash function specialised for that word count when it is created
//!   (`masked_hash::<N>` through a plain `fn` pointer, const generic over N),
//!   so the per-packet loop has a fixed trip count and no `dyn`.
//! * Subtables are ranked by hits: [`MegaflowCache::rerank`] (called by the
//!   owner about once a second, or via [`MegaflowCache::maybe_rerank`]) sorts
//!   them by hits since the previous ranking, so the busiest masks are probed
//!   first. The average number of subtables probed per hit is counted.
//! * [`MegaflowCache::lookup_batch`] takes up to 32 keys and works subtable by
//!   subtable over the batch, keeping a bitmap of keys still unmatched (OVS's
//!   `dpcls_lookup`), so one subtable's data stays hot across the batch.
//!
//! # Invariants
//! * Every stored match is normalised (`key == key & mask`).
//! * A [`FlowRef`] is an index plus a generation. Removing a flow bumps its
//!   slot's generation, so old references (e.g. in the exact-match cache)
//!   resolve to `None` and never to a different flow.
//! * Megaflows in one cache should not overlap with different actions; the
//!   translator guarantees this by construction (a megaflow is only as wide
//!   as the rule lookups that made it). If they do, the higher-ranked
//!   subtable wins.
//! * Time is a caller-supplied `u64` (nanoseconds); the cache never reads a
//!   clock.
//!
//! # Threads
//! Owned by one PMD thread. New megaflows reach it from the translator by
//! message and are inserted between batches; nothing here is shared.

use crate::key::{mix_word, FlowKey, Match, WORDS};
use hashbrown::{HashMap, HashTable};

/// A reference to a megaflow: slot index and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowRef {
    pub index: u32,
    pub generation: u32,
}

/// Per-flow statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub packets: u64,
    pub bytes: u64,
    /// Last hit, caller's clock (ns); 0 = never.
    pub used: u64,
    /// TCP flags seen (OR of all hits).
    pub tcp_flags: u16,
}

/// One megaflow.
///
/// `repr(C)` keeps the declared order: what a hit touches (the slot's
/// generation, the stats it credits, the actions it runs) shares the
/// slot's first cache line; the 400-byte match, read only by lookups in
/// the subtable and by dumps, comes last.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Megaflow<A> {
    pub stats: FlowStats,
    pub actions: A,
    /// When it was installed (caller's clock).
    pub created: u64,
    subtable: u32,
    pub matched: Match,
}

#[repr(C)]
struct Slot<A> {
    generation: u32,
    flow: Option<Megaflow<A>>,
}

type HashFn = fn(&WordMask, &FlowKey) -> u64;

/// The words a mask uses: their indices and their masks.
#[derive(Clone, Copy)]
struct WordMask {
    word_idx: [u8; WORDS],
    word_mask: [u64; WORDS],
    n_words: usize,
}

struct Subtable {
    mask: FlowKey,
    wm: WordMask,
    hash: HashFn,
    /// Slot indices, each beside its key's hash ([`Entry`]).
    table: HashTable<Entry>,
    /// Hits since the last ranking.
    hits: u64,
}

/// A subtable entry: the flow's slot and its hash, folded to 32 bits.
/// Keeping the hash here lets the table grow without reading a single
/// slot: rehashing 100,000 flows from their slots' keys costs a cache
/// miss each, a stall of milliseconds in a PMD that is meanwhile not
/// reading its queues (measured under a flood of new flows).
#[derive(Clone, Copy)]
struct Entry {
    index: u32,
    hash: u32,
}

/// The table's hash of a folded hash: spread back over 64 bits, since the
/// table takes its probe position from the low bits and its tag from the
/// top ones.
#[inline(always)]
fn table_hash(folded: u32) -> u64 {
    (folded as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[inline(always)]
fn fold(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

#[inline(always)]
fn masked_hash<const N: usize>(st: &WordMask, key: &FlowKey) -> u64 {
    let w = key.words();
    let mut h = 0x5bd1_e995_u64;
    for i in 0..N {
        h = mix_word(h, w[st.word_idx[i] as usize] & st.word_mask[i]);
    }
    h
}

fn masked_hash_any(st: &WordMask, key: &FlowKey) -> u64 {
    let w = key.words();
    let mut h = 0x5bd1_e995_u64;
    for i in 0..st.n_words {
        h = mix_word(h, w[st.word_idx[i] as usize] & st.word_mask[i]);
    }
    h
}

/// The hash function for a subtable using `n` words.
fn pick_hash(n: usize) -> HashFn {
    match n {
        0 => masked_hash::<0>,
        1 => masked_hash::<1>,
        2 => masked_hash::<2>,
        3 => masked_hash::<3>,
        4 => masked_hash::<4>,
        5 => masked_hash::<5>,
        6 => masked_hash::<6>,
        7 => masked_hash::<7>,
        8 => masked_hash::<8>,
        9 => masked_hash::<9>,
        10 => masked_hash::<10>,
        11 => masked_hash::<11>,
        12 => masked_hash::<12>,
        _ => masked_hash_any,
    }
}

impl Subtable {
    fn new(mask: FlowKey) -> Self {
        let mut word_idx = [0u8; WORDS];
        let mut word_mask = [0u64; WORDS];
        let mut n = 0;
        for (i, &w) in mask.words().iter().enumerate() {
            if w != 0 {
                word_idx[n] = i as u8;
                word_mask[n] = w;
                n += 1;
            }
        }
        Subtable {
            mask,
            wm: WordMask {
                word_idx,
                word_mask,
                n_words: n,
            },
            hash: pick_hash(n),
            table: HashTable::new(),
            hits: 0,
        }
    }

    /// The folded hash of `key` under this subtable's mask.
    #[inline(always)]
    fn hash_of(&self, key: &FlowKey) -> u32 {
        fold((self.hash)(&self.wm, key))
    }

    /// The slot of the flow that `key` (of folded hash `h`) matches here.
    #[inline(always)]
    fn find<A>(&self, slots: &[Slot<A>], h: u32, key: &FlowKey) -> Option<u32> {
        self.table
            .find(table_hash(h), |e| {
                e.hash == h
                    && slots[e.index as usize]
                        .flow
                        .as_ref()
                        .is_some_and(|f| self.same(&f.matched.key, key))
            })
            .map(|e| e.index)
    }

    /// Does the stored (normalised) `stored` key equal `key & mask` on this
    /// subtable's words?
    #[inline(always)]
    fn same(&self, stored: &FlowKey, key: &FlowKey) -> bool {
        let (s, k) = (stored.words(), key.words());
        let mut diff = 0;
        for i in 0..self.wm.n_words {
            let w = self.wm.word_idx[i] as usize;
            diff |= (k[w] & self.wm.word_mask[i]) ^ s[w];
        }
        diff == 0
    }
}

/// Cache-wide counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MegaflowStats {
    pub lookups: u64,
    pub hits: u64,
    /// Subtables probed by lookups that hit (for "subtables per hit").
    pub subtables_probed_on_hit: u64,
    pub inserts: u64,
    pub removes: u64,
}

/// Why an insert was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    #[error("megaflow limit of {0} flows reached")]
    Full(usize),
}

/// Maximum keys in one batch.
pub const BATCH: usize = 32;

pub struct MegaflowCache<A> {
    slots: Vec<Slot<A>>,
    free: Vec<u32>,
    subtables: Vec<Option<Subtable>>,
    /// Subtable ids in probe order.
    order: Vec<u32>,
    by_mask: HashMap<FlowKey, u32>,
    n_flows: usize,
    limit: usize,
    last_rank: u64,
    rank_interval: u64,
    pub stats: MegaflowStats,
}

impl<A> MegaflowCache<A> {
    /// A cache holding at most `limit` flows.
    pub fn new(limit: usize) -> Self {
        MegaflowCache {
            slots: Vec::new(),
            free: Vec::new(),
            subtables: Vec::new(),
            order: Vec::new(),
            by_mask: HashMap::new(),
            n_flows: 0,
            limit,
            last_rank: 0,
            rank_interval: 1_000_000_000,
            stats: MegaflowStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.n_flows
    }

    pub fn is_empty(&self) -> bool {
        self.n_flows == 0
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Number of subtables (distinct masks).
    pub fn subtable_count(&self) -> usize {
        self.order.len()
    }

    /// Subtable masks in probe order, with hits since the last ranking.
    pub fn subtables(&self) -> impl Iterator<Item = (&FlowKey, u64, usize)> + '_ {
        self.order
            .iter()
            .filter_map(|&id| self.subtables[id as usize].as_ref())
            .map(|s| (&s.mask, s.hits, s.table.len()))
    }

    /// Installs a megaflow. An existing flow with the identical match gets
    /// the new actions (its stats are kept) and its reference is returned.
    pub fn insert(&mut self, matched: Match, actions: A, now: u64) -> Result<FlowRef, InsertError> {
        let matched = Match::new(matched.key, matched.mask);
        let st_id = match self.by_mask.get(&matched.mask) {
            Some(&id) => id,
            None => {
                let st = Subtable::new(matched.mask);
                let id = match self.subtables.iter().position(Option::is_none) {
                    Some(free) => {
                        self.subtables[free] = Some(st);
                        free as u32
                    }
                    None => {
                        self.subtables.push(Some(st));
                        (self.subtables.len() - 1) as u32
                    }
                };
                self.by_mask.insert(matched.mask, id);
                self.order.push(id);
                id
            }
        };
        let st = self.subtables[st_id as usize]
            .as_mut()
            .expect("subtable of a live mask");
        let h = st.hash_of(&matched.key);
        let slots = &self.slots;
        if let Some(&Entry { index: idx, .. }) = st.table.find(table_hash(h), |e| {
            e.hash == h
                && slots[e.index as usize]
                    .flow
                    .as_ref()
                    .is_some_and(|f| f.matched.key == matched.key)
        }) {
            let slot = &mut self.slots[idx as usize];
            if let Some(f) = slot.flow.as_mut() {
                f.actions = actions;
            }
            return Ok(FlowRef {
                index: idx,
                generation: slot.generation,
            });
        }
        if self.n_flows >= self.limit {
            if st.table.is_empty() {
                self.drop_subtable(st_id);
            }
            return Err(InsertError::Full(self.limit));
        }
        let flow = Megaflow {
            matched,
            actions,
            stats: FlowStats::default(),
            created: now,
            subtable: st_id,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize].flow = Some(flow);
                i
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    flow: Some(flow),
                });
                (self.slots.len() - 1) as u32
            }
        };
        st.table
            .insert_unique(table_hash(h), Entry { index: idx, hash: h }, |e| table_hash(e.hash));
        self.n_flows += 1;
        self.stats.inserts += 1;
        Ok(FlowRef {
            index: idx,
            generation: self.slots[idx as usize].generation,
        })
    }

    fn drop_subtable(&mut self, id: u32) {
        if let Some(st) = self.subtables[id as usize].take() {
            self.by_mask.remove(&st.mask);
            self.order.retain(|&o| o != id);
        }
    }

    /// Removes a flow; returns it if the reference was live.
    pub fn remove(&mut self, r: FlowRef) -> Option<Megaflow<A>> {
        let slot = self.slots.get_mut(r.index as usize)?;
        if slot.generation != r.generation || slot.flow.is_none() {
            return None;
        }
        let flow = slot.flow.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(r.index);
        self.n_flows -= 1;
        self.stats.removes += 1;
        let st_id = flow.subtable;
        if let Some(st) = self.subtables[st_id as usize].as_mut() {
            let h = st.hash_of(&flow.matched.key);
            if let Ok(entry) = st.table.find_entry(table_hash(h), |e| e.index == r.index) {
                entry.remove();
            }
            if st.table.is_empty() {
                self.drop_subtable(st_id);
            }
        }
        Some(flow)
    }

    /// The flow behind a reference, if still live.
    #[inline(always)]
    pub fn get(&self, r: FlowRef) -> Option<&Megaflow<A>> {
        let slot = self.slots.get(r.index as usize)?;
        if slot.generation != r.generation {
            return None;
        }
        slot.flow.as_ref()
    }

    /// Replaces the actions of a live flow in place (its match, its stats
    /// and references to it stay); false if the reference is stale.
    pub fn set_actions(&mut self, r: FlowRef, actions: A) -> bool {
        match self.slots.get_mut(r.index as usize) {
            Some(slot) if slot.generation == r.generation => match slot.flow.as_mut() {
                Some(f) => {
                    f.actions = actions;
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// Reads the first cache line of a flow's slot (its generation, next
    /// to the stats and actions a hit uses) and returns a value of it, for
    /// callers that load a batch's slots before using any.
    #[inline(always)]
    pub fn touch(&self, r: FlowRef) -> u64 {
        self.slots.get(r.index as usize).map_or(0, |s| s.generation as u64)
    }

    /// Credits a hit to a flow's statistics and returns the flow, if the
    /// reference is still live (one generation check for both).
    #[inline(always)]
    pub fn hit(&mut self, r: FlowRef, packets: u64, bytes: u64, tcp_flags: u16, now: u64) -> Option<&Megaflow<A>> {
        let slot = self.slots.get_mut(r.index as usize)?;
        if slot.generation != r.generation {
            return None;
        }
        let f = slot.flow.as_mut()?;
        f.stats.packets += packets;
        f.stats.bytes += bytes;
        f.stats.tcp_flags |= tcp_flags;
        f.stats.used = now;
        Some(f)
    }

    /// Looks up one key.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey) -> Option<FlowRef> {
        self.stats.lookups += 1;
        for (probed, &id) in self.order.iter().enumerate() {
            let Some(st) = self.subtables[id as usize].as_mut() else {
                continue;
            };
            let h = st.hash_of(key);
            if let Some(idx) = st.find(&self.slots, h, key) {
                st.hits += 1;
                self.stats.hits += 1;
                self.stats.subtables_probed_on_hit += probed as u64 + 1;
                return Some(FlowRef {
                    index: idx,
                    generation: self.slots[idx as usize].generation,
                });
            }
        }
        None
    }

    /// Looks up `keys` (at most [`BATCH`]); writes `out[i]` for each hit and
    /// returns the bitmap of hits. Keys not hit are left for the caller's
    /// upcall path; `out` entries for misses are set to `None`.
    pub fn lookup_batch(&mut self, keys: &[FlowKey], out: &mut [Option<FlowRef>]) -> u32 {
        let n = keys.len().min(BATCH).min(out.len());
        let mut remaining: u32 = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
        for o in out.iter_mut().take(n) {
            *o = None;
        }
        self.stats.lookups += n as u64;
        let mut hashes = [0u32; BATCH];
        for (probed, &id) in self.order.iter().enumerate() {
            if remaining == 0 {
                break;
            }
            let Some(st) = self.subtables[id as usize].as_mut() else {
                continue;
            };
            // Hash every remaining key first, then probe: keeps the table's
            // cache lines and the hash code apart.
            let mut bits = remaining;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                hashes[i] = st.hash_of(&keys[i]);
            }
            let slots = &self.slots;
            let st_ref: &Subtable = st;
            let mut bits = remaining;
            let mut hits_here = 0;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(idx) = st_ref.find(slots, hashes[i], &keys[i]) {
                    out[i] = Some(FlowRef {
                        index: idx,
                        generation: slots[idx as usize].generation,
                    });
                    remaining &= !(1 << i);
                    hits_here += 1;
                }
            }
            st.hits += hits_here;
            self.stats.hits += hits_here;
            self.stats.subtables_probed_on_hit += hits_here * (probed as u64 + 1);
        }
        let all = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
        all & !remaining
    }

    /// Sorts subtables by hits since the last ranking, busiest first, and
    /// restarts the counts.
    pub fn rerank(&mut self) {
        let subtables = &self.subtables;
        self.order
            .sort_by_key(|&id| std::cmp::Reverse(subtables[id as usize].as_ref().map_or(0, |s| s.hits)));
        for st in self.subtables.iter_mut().flatten() {
            st.hits = 0;
        }
    }

    /// Reranks if the interval (default 1 s) has passed since the last time.
    pub fn maybe_rerank(&mut self, now: u64) {
        if now.saturating_sub(self.last_rank) >= self.rank_interval {
            self.rerank();
            self.last_rank = now;
        }
    }

    pub fn set_rank_interval(&mut self, ns: u64) {
        self.rank_interval = ns;
    }

    /// How many slots there are, live or free: every flow's
    /// `FlowRef::index` is below it. With [`MegaflowCache::at`], a walk over
    /// the flows that can stop anywhere and resume later.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The live flow in slot `index`, with its reference.
    pub fn at(&self, index: usize) -> Option<(FlowRef, &Megaflow<A>)> {
        let s = self.slots.get(index)?;
        let f = s.flow.as_ref()?;
        Some((
            FlowRef {
                index: index as u32,
                generation: s.generation,
            },
            f,
        ))
    }

    /// Every live flow with its reference.
    pub fn iter(&self) -> impl Iterator<Item = (FlowRef, &Megaflow<A>)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.flow.as_ref().map(|f| {
                (
                    FlowRef {
                        index: i as u32,
                        generation: s.generation,
                    },
                    f,
                )
            })
        })
    }

    /// Removes every flow for which `keep` returns false; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&Megaflow<A>) -> bool) -> usize {
        let doomed: Vec<FlowRef> = self.iter().filter(|(_, f)| !keep(f)).map(|(r, _)| r).collect();
        for r in &doomed {
            self.remove(*r);
        }
        doomed.len()
    }

    /// Removes everything.
    pub fn clear(&mut self) -> usize {
        self.retain(|_| false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(src: u32, plen: u32, port: Option<u16>) -> Match {
        let mut k = FlowKey::ZERO;
        let mut mask = FlowKey::ZERO;
        k.ipv4_src = src;
        mask.ipv4_src = crate::text::prefix_mask_u32(plen);
        if let Some(p) = port {
            k.tp_dst = p;
            mask.tp_dst = 0xffff;
        }
        Match::new(k, mask)
    }

    fn pkt(src: u32, port: u16) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.ipv4_src = src;
        k.tp_dst = port;
        k
    }

    #[test]
    fn insert_lookup_remove() {
        let mut c: MegaflowCache<&str> = MegaflowCache::new(100);
        let a = c.insert(m(0x0a00_0000, 8, None), "a", 0).unwrap();
        let b = c.insert(m(0xc0a8_0000, 16, Some(80)), "b", 0).unwrap();
        assert_eq!(c.subtable_count(), 2);
        assert_eq!(c.lookup(&pkt(0x0a01_0203, 1)), Some(a));
        assert_eq!(c.lookup(&pkt(0xc0a8_0101, 80)), Some(b));
        assert_eq!(c.lookup(&pkt(0xc0a8_0101, 81)), None);
        assert_eq!(c.remove(a).unwrap().actions, "a");
        assert!(c.get(a).is_none(), "generation must invalidate");
        assert_eq!(c.lookup(&pkt(0x0a01_0203, 1)), None);
        assert_eq!(c.subtable_count(), 1);
        let again = c.insert(m(0x0a00_0000, 8, None), "a2", 0).unwrap();
        assert_eq!(again.index, a.index);
        assert_ne!(again.generation, a.generation);
    }

    #[test]
    fn batch_matches_single_lookups_and_rerank_orders_by_hits() {
        let mut c: MegaflowCache<u32> = MegaflowCache::new(1000);
        for i in 0..50u32 {
            c.insert(m(i << 24, 8 + (i % 4) * 4, Some(i as u16)), i, 0).unwrap();
        }
        let keys: Vec<FlowKey> = (0..32u32)
            .map(|i| pkt((i * 2) << 24 | 0x00ab_cdef, (i * 2) as u16))
            .collect();
        let mut out = [None; BATCH];
        let hits = c.lookup_batch(&keys, &mut out);
        for (i, k) in keys.iter().enumerate() {
            let single = c.lookup(k);
            assert_eq!(single, out[i]);
            assert_eq!(hits & (1 << i) != 0, single.is_some());
        }
        c.rerank();
        let hits: Vec<u64> = c.subtables().map(|(_, h, _)| h).collect();
        assert!(hits.iter().all(|&h| h == 0));
    }

    #[test]
    fn limit_is_enforced() {
        let mut c: MegaflowCache<()> = MegaflowCache::new(2);
        c.insert(m(1 << 24, 8, None), (), 0).unwrap();
        c.insert(m(2 << 24, 8, None), (), 0).unwrap();
        assert_eq!(c.insert(m(3 << 24, 16, None), (), 0), Err(InsertError::Full(2)));
        assert_eq!(c.subtable_count(), 1, "a refused insert leaves no empty subtable");
    }
}
