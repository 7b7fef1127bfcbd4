//! Micro-benchmarks of the classifier tiers (issue 2):
//! key extraction, exact-match hits, megaflow batch lookup by subtable
//! count, and rule-table lookup by table size.
//!
//! `cargo bench -p odpx-benches --bench classifier`

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use odpx_benches::{acl_routing_rules, flow_key, flows, frames, rng};
use odpx_classifier::emc::ExactMatchCache;
use odpx_classifier::extract::extract_into;
use odpx_classifier::key::{FlowKey, Match};
use odpx_classifier::megaflow::{FlowRef, MegaflowCache, BATCH};
use odpx_classifier::rules::RuleSet;
use rand::Rng;

fn extraction(c: &mut Criterion) {
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in [
        ("ipv4_tcp", frames::ipv4_tcp()),
        ("ipv6_udp", frames::ipv6_udp()),
        ("vlan_ipv4_udp", frames::vlan_ipv4_udp()),
        ("arp", frames::arp()),
    ] {
        let mut key = FlowKey::ZERO;
        g.bench_function(name, |b| {
            b.iter(|| {
                extract_into(black_box(&frame), 1, &mut key);
                black_box(&key);
            })
        });
    }
    g.finish();
}

fn exact_match(c: &mut Criterion) {
    let mut g = c.benchmark_group("emc");
    g.throughput(Throughput::Elements(1));
    let keys = flows(4096, 7);
    let mut emc = ExactMatchCache::new(8192, 1);
    for (i, k) in keys.iter().enumerate() {
        emc.insert(
            k,
            k.hash(),
            FlowRef {
                index: i as u32,
                generation: 0,
            },
        );
    }
    // Keep only keys that landed (two-way sets may have evicted some).
    let mut hits: Vec<FlowKey> = keys
        .iter()
        .copied()
        .filter(|k| emc.lookup(k, k.hash()).is_some())
        .collect();
    // A power-of-two count so the index is a mask, not a division.
    hits.truncate(hits.len().next_power_of_two() / 2);
    let hmask = hits.len() - 1;
    let mut i = 0;
    // Includes hashing the key, as the fast path does per packet.
    g.bench_function("hit_with_hash", |b| {
        b.iter(|| {
            let k = &hits[i & hmask];
            i += 1;
            black_box(emc.lookup(black_box(k), k.hash()))
        })
    });
    let mut h = 0;
    g.bench_function("hash_only", |b| {
        b.iter(|| {
            h += 1;
            black_box(black_box(&hits[h & hmask]).hash())
        })
    });
    // A hot working set (64 flows): the table's lines stay in L1/L2.
    let hot: Vec<FlowKey> = hits.iter().copied().take(64).collect();
    let mut j = 0;
    g.bench_function("hit_with_hash_hot64", |b| {
        b.iter(|| {
            let k = &hot[j & 63];
            j += 1;
            black_box(emc.lookup(black_box(k), k.hash()))
        })
    });
    g.finish();
}

/// A cache with `n` subtables (distinct masks), 100 flows in each.
fn megaflow_cache(n: usize) -> (MegaflowCache<u32>, Vec<Vec<FlowKey>>) {
    let mut cache = MegaflowCache::new(1 << 20);
    let mut r = rng(n as u64);
    let mut per_st = Vec::new();
    for s in 0..n {
        // 64 distinct masks, long enough that flows of different subtables
        // practically never overlap.
        let mut mask = FlowKey::ZERO;
        mask.in_port = !0;
        mask.eth_type = !0;
        mask.ipv4_dst = odpx_classifier::text::prefix_mask_u32(16 + (s % 16) as u32);
        mask.ipv4_src = odpx_classifier::text::prefix_mask_u32(16 + 4 * (s / 16) as u32);
        mask.attrs = odpx_classifier::key::attr::IN_PORT | odpx_classifier::key::attr::ETHERNET;
        let mut keys = Vec::new();
        for _ in 0..100 {
            let k = flow_key(1, r.gen(), r.gen(), 6, r.gen(), r.gen_range(0..64));
            cache.insert(Match::new(k, mask), s as u32, 0).unwrap();
            keys.push(k);
        }
        per_st.push(keys);
    }
    (cache, per_st)
}

fn megaflow(c: &mut Criterion) {
    let mut g = c.benchmark_group("megaflow_batch");
    g.throughput(Throughput::Elements(BATCH as u64));
    for n in [1usize, 4, 16, 64] {
        let (mut cache, per_st) = megaflow_cache(n);
        // Rank so the probe order is fixed, then build batches that all hit
        // the LAST subtable: every packet probes all n subtables, so
        // time / (32 * n) is the cost per subtable probed.
        cache.rerank();
        let order: Vec<FlowKey> = cache.subtables().map(|(m, _, _)| *m).collect();
        let last_mask = *order.last().unwrap();
        let last: Vec<FlowKey> = per_st
            .iter()
            .flatten()
            .copied()
            .filter(|k| {
                cache
                    .lookup(k)
                    .and_then(|r| cache.get(r))
                    .is_some_and(|f| f.matched.mask == last_mask)
            })
            .collect();
        assert!(!last.is_empty());
        let batch: Vec<FlowKey> = (0..BATCH).map(|i| last[i % last.len()]).collect();
        let mut out = [None; BATCH];
        g.bench_function(format!("{n}_subtables_worst_case"), |b| {
            b.iter(|| black_box(cache.lookup_batch(black_box(&batch), &mut out)))
        });
        // Hits spread over all subtables, after ranking by those hits.
        let mut r = rng(99);
        let spread: Vec<FlowKey> = (0..BATCH)
            .map(|_| per_st[r.gen_range(0..n)][r.gen_range(0..100)])
            .collect();
        g.bench_function(format!("{n}_subtables_spread"), |b| {
            b.iter(|| black_box(cache.lookup_batch(black_box(&spread), &mut out)))
        });
    }
    g.finish();
}

fn rule_tables(c: &mut Criterion) {
    let mut g = c.benchmark_group("rule_lookup");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    for n in [1_000usize, 10_000, 100_000] {
        let mut rs = RuleSet::new();
        for rule in acl_routing_rules(n, 42) {
            rs.add(rule);
        }
        let keys = flows(4096, 3);
        // Table 0 holds the ACL (45% of the rules), table 1 the routes.
        for (table, name) in [(0u8, "acl_table"), (1, "route_table")] {
            let mut i = 0;
            g.bench_function(format!("{n}_rules/{name}"), |b| {
                b.iter_batched_ref(
                    || FlowKey::ZERO,
                    |wc| {
                        let k = &keys[i % keys.len()];
                        i += 1;
                        black_box(rs.lookup(table, k, wc).map(|r| r.priority))
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, extraction, exact_match, megaflow, rule_tables);
criterion_main!(benches);
