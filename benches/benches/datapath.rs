//! The in-memory-port datapath rate: one PMD (`Pmd::poll_once`, the loop a
//! PMD thread runs) on looping in-memory ports, no kernel I/O. Per batch of
//! 32: copy in, key extraction, EMC, megaflow batch lookup, actions, staged
//! transmit. Megaflows are installed beforehand by the real translator.
//!
//! `cargo bench -p odpx-benches --bench datapath`; criterion reports time
//! per batch of 32 packets (throughput in elements = packets).
//! Workloads: 1, 1k and 100k flows (Zipf 1.0 popularity over the flows,
//! 64k-frame replay loop), with a port-to-port rule (one megaflow) and
//! with the 1k-rule ACL + routing set of the hit-rate bench.
//!
//! The `*_evicted` rows run the same batches but sweep a 4 MiB buffer
//! between them, outside the timed part: over AF_XDP in copy mode the
//! kernel's transmit work between two batches evicts the PMD's caches
//! from L1 and L2, so these rows show what a batch costs when its cache
//! lines must come back from L3, as they do live.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use odpx_benches::{acl_routing_rules, emc_summary, flows, frame_of, rng, stages, BenchPmd, Zipf};
use odpx_classifier::rules::{ofctl, RuleSet};
use odpx_dataplane::port::Port;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn setup(n_flows: usize, acl: bool) -> BenchPmd {
    let keys = flows(n_flows, 7);
    let zipf = Zipf::new(n_flows, 1.0);
    let mut r = rng(11);
    let replay: Vec<Vec<u8>> = if n_flows == 1 {
        vec![frame_of(&keys[0])]
    } else {
        (0..65536).map(|_| frame_of(&keys[zipf.sample(&mut r)])).collect()
    };
    let ports = Arc::new(vec![
        None,
        Some(Arc::new(Port::looping(1, "in", replay))),
        Some(Arc::new(Port::memory(2, "out", false))),
    ]);
    let mut rules = RuleSet::new();
    if acl {
        for rule in acl_routing_rules(1000, 3) {
            rules.add(rule);
        }
    } else {
        rules.add(ofctl::parse_rule("in_port=1,actions=output:2").unwrap());
    }
    let mut b = BenchPmd::new(ports, 1, rules, vec![1, 2]);
    // Replay the loop several times, answering every upcall.
    b.warm_up(4 * 65536 / 32);
    b
}

/// Twice this machine's L2: sweeping it leaves nothing of the PMD's in L2.
const EVICTING_BYTES: usize = 4 << 20;

/// Writes one word per cache line of `buf`, as other work would.
fn evict(buf: &mut [u64]) {
    for line in buf.chunks_mut(8) {
        line[0] = line[0].wrapping_add(1);
    }
    black_box(&buf[0]);
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("datapath");
    g.throughput(Throughput::Elements(32));
    g.measurement_time(Duration::from_secs(5));
    for (label, n, acl) in [
        ("p2p_1_flow", 1, false),
        ("p2p_1k_flows", 1000, false),
        ("p2p_100k_flows", 100_000, false),
        ("acl_1k_flows", 1000, true),
        ("acl_100k_flows", 100_000, true),
    ] {
        let BenchPmd { mut pmd, counters, .. } = setup(n, acl);
        let before = counters.snapshot();
        g.bench_function(label, |b| b.iter(|| pmd.poll_once()));
        let hot = counters.snapshot();
        eprintln!("{label}: {}", stages(&before, &hot));
        if n == 1000 {
            let mut other_work = vec![0u64; EVICTING_BYTES / 8];
            g.bench_function(format!("{label}_evicted"), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        evict(&mut other_work);
                        let t = Instant::now();
                        black_box(pmd.poll_once());
                        timed += t.elapsed();
                    }
                    timed
                })
            });
            eprintln!("{label}_evicted: {}", stages(&hot, &counters.snapshot()));
        }
        let after = counters.snapshot();
        let pk = (after.packets - before.packets).max(1) as f64;
        eprintln!(
            "{label}: {} megaflow {:.1}% upcall {:.3}% megaflows {}",
            emc_summary(&before, &after),
            100.0 * (after.megaflow_hits - before.megaflow_hits) as f64 / pk,
            100.0 * (after.upcalls - before.upcalls) as f64 / pk,
            after.megaflows
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
