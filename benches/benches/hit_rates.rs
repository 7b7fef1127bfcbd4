//! Megaflow hit rates on a gateway workload: a 1k-rule ACL + routing rule
//! set and 100k flows with Zipf(1.0) popularity, through the same tiers a
//! PMD runs (exact-match cache -> megaflow cache -> translate and install).
//! The flows are connections between 2,000 clients and 500 servers (see
//! `odpx_benches::flows`); a stress row uses uniformly random addresses,
//! where almost every flow needs a megaflow of its own.
//!
//! `cargo bench -p odpx-benches --bench hit_rates` prints a table. The
//! packets/s column is this process's simulated pipeline on one core
//! (no I/O, no key extraction), measured over the whole run.

use odpx_benches::{acl_routing_rules, flows, flows_uniform, rng, Zipf};
use odpx_classifier::emc::ExactMatchCache;
use odpx_classifier::megaflow::MegaflowCache;
use odpx_classifier::odp::OdpAction;
use odpx_classifier::rules::RuleSet;
use odpx_classifier::xlate::{translate, FloodEnv};
use std::time::Instant;

struct Run {
    label: String,
    packets: u64,
    emc_hits: u64,
    mf_hits: u64,
    upcalls: u64,
    megaflows: usize,
    subtables: usize,
    probes_per_hit: f64,
    seconds: f64,
}

fn run(
    label: &str,
    round_pins: bool,
    flows: Vec<odpx_classifier::FlowKey>,
    packets: u64,
    emc_inv_prob: u32,
    skew: f64,
) -> Run {
    let n_flows = flows.len();
    let mut rules = RuleSet::new();
    rules.set_prefix_pin_rounding(round_pins);
    for r in acl_routing_rules(1000, 42) {
        rules.add(r);
    }
    let zipf = Zipf::new(n_flows, skew);
    let mut r = rng(11);
    // Draw the packet sequence up front so sampling is not timed.
    let seq: Vec<u32> = (0..packets).map(|_| zipf.sample(&mut r) as u32).collect();
    let mut emc = ExactMatchCache::new(8192, emc_inv_prob);
    let mut mf: MegaflowCache<Vec<OdpAction>> = MegaflowCache::new(200_000);
    let mut env = FloodEnv {
        ports: (1..10).collect(),
    };
    let (mut emc_hits, mut mf_hits, mut upcalls) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    for (i, &f) in seq.iter().enumerate() {
        let k = &flows[f as usize];
        let h = k.hash();
        if let Some(fr) = emc.lookup(k, h) {
            if mf.get(fr).is_some() {
                emc_hits += 1;
                continue;
            }
        }
        if let Some(fr) = mf.lookup(k) {
            mf_hits += 1;
            emc.insert(k, h, fr);
            continue;
        }
        upcalls += 1;
        let t = translate(&rules, k, &mut env);
        if let Ok(fr) = mf.insert(t.megaflow, t.actions, i as u64) {
            emc.insert(k, h, fr);
        }
        // "One second" of traffic: re-rank subtables as a PMD would.
        if i % 1_000_000 == 999_999 {
            mf.rerank();
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let probes_per_hit = mf.stats.subtables_probed_on_hit as f64 / mf.stats.hits.max(1) as f64;
    Run {
        label: label.into(),
        packets,
        emc_hits,
        mf_hits,
        upcalls,
        megaflows: mf.len(),
        subtables: mf.subtable_count(),
        probes_per_hit,
        seconds,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing and
    // expects a quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let packets = if quick { 200_000 } else { 5_000_000 };
    let runs = [
        run(
            "gateway: 100k flows, Zipf 1.0, EMC insert 1/100",
            true,
            flows(100_000, 7),
            packets,
            100,
            1.0,
        ),
        run(
            "gateway: 100k flows, Zipf 1.0, EMC insert always",
            true,
            flows(100_000, 7),
            packets,
            1,
            1.0,
        ),
        run(
            "gateway: 100k flows, uniform popularity",
            true,
            flows(100_000, 7),
            packets,
            100,
            0.0,
        ),
        run(
            "stress: 100k flows, random addresses, Zipf 1.0",
            true,
            flows_uniform(100_000, 7),
            packets,
            100,
            1.0,
        ),
        run(
            "gateway, Zipf 1.0, prefix pins not rounded",
            false,
            flows(100_000, 7),
            packets,
            100,
            1.0,
        ),
        run(
            "stress, Zipf 1.0, prefix pins not rounded",
            false,
            flows_uniform(100_000, 7),
            packets,
            100,
            1.0,
        ),
    ];
    println!();
    println!(
        "odpx megaflow hit rates ({} packets per run; exact-match cache 8192 entries; one core, no I/O)",
        packets
    );
    println!();
    println!("| workload | megaflows | subtables | EMC hit | megaflow hit | upcalls / 1M pkts | subtables probed / megaflow hit | pipeline Mpps |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &runs {
        let p = r.packets as f64;
        println!(
            "| {} | {} | {} | {:.1}% | {:.1}% | {:.0} | {:.2} | {:.2} |",
            r.label,
            r.megaflows,
            r.subtables,
            100.0 * r.emc_hits as f64 / p,
            100.0 * r.mf_hits as f64 / p,
            r.upcalls as f64 * 1e6 / p,
            r.probes_per_hit,
            p / r.seconds / 1e6
        );
    }
    println!();
}
