//! What `learn` costs the megaflow owner, with the advanced tutorial's
//! pipeline (the owner core driven without threads; its decisions are
//! taken from its outbox and dropped).
//!
//! * `new_macs/N`: N packets from N new source addresses on an access
//!   port, each an upcall whose `learn` adds a rule to table 10 (a rule
//!   change, which revalidates the megaflows it may affect): the time until
//!   table 10 holds all N. Per address: divide by N.
//! * `sweep_refresh/N`: a sweep report in which the N megaflows those
//!   packets made carried packets again: each teaches its rule again, which
//!   is there already (its timeouts restart; no rule change).
//!
//! `cargo bench -p odpx-benches --bench learn`

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use odpx_classifier::extract::extract;
use odpx_classifier::flow_op::Ufid;
use odpx_classifier::megaflow::FlowStats;
use odpx_classifier::rules::{ofctl, RuleSet};
use odpx_control::core::{Core, CoreConfig, Holders, Op, Packet};
use odpx_dataplane::pmd::{FlowUse, PmdReport};
use std::time::{Duration, Instant};

/// The tutorial's tables on four ports: 1 the trunk, 2 in VLAN 20, 3 and
/// 4 in VLAN 30 (`tests/data/advanced-tutorial.rules` without its
/// link-local drop rule, as BENCHMARKS.md's figures were measured).
const TUTORIAL: &str = "\
table=0, dl_src=01:00:00:00:00:00/01:00:00:00:00:00, actions=drop
table=0, priority=0, actions=resubmit(,1)
table=1, priority=0, actions=drop
table=1, priority=99, in_port=1, actions=resubmit(,2)
table=1, priority=99, in_port=2, vlan_tci=0, actions=mod_vlan_vid:20, resubmit(,2)
table=1, priority=99, in_port=3, vlan_tci=0, actions=mod_vlan_vid:30, resubmit(,2)
table=1, priority=99, in_port=4, vlan_tci=0, actions=mod_vlan_vid:30, resubmit(,2)
table=2 actions=learn(table=10, NXM_OF_VLAN_TCI[0..11], NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[], load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]), resubmit(,3)
table=3 priority=50 actions=resubmit(,10), resubmit(,4)
table=3 priority=99 dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,4)
table=4 reg0=1 actions=1
table=4 reg0=2 actions=strip_vlan,2
table=4 reg0=3 actions=strip_vlan,3
table=4 reg0=4 actions=strip_vlan,4
table=4 reg0=0 priority=99 dl_vlan=20 actions=1,strip_vlan,2
table=4 reg0=0 priority=99 dl_vlan=30 actions=1,strip_vlan,3,4
table=4 reg0=0 priority=50 actions=1
";

fn owner(start: Instant) -> Core {
    let mut rules = RuleSet::new();
    for r in ofctl::parse_rules(TUTORIAL).expect("the tutorial's rules") {
        rules.add(r);
    }
    Core::new(
        CoreConfig {
            rules,
            ports: (1..=4).collect(),
            holders: Holders { pmds: 1, kernel: false },
            megaflow_limit: 10_000_000,
            idle_timeout: Duration::from_secs(3600),
            tunnels: Default::default(),
            offload: None,
        },
        start,
    )
}

/// A UDP frame from host `i` on VLAN 20's access port to an address
/// nobody taught.
fn frame(i: u32) -> Vec<u8> {
    let src = [2, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1];
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(src, [2, 0, 0, 0, 0, 0xff])
        .ipv4([10, 1, 0, 1], [10, 1, 0, 2], 64)
        .udp(1000, 53)
        .write(&mut f, &[0u8; 18])
        .expect("a frame");
    f
}

/// Upcalls `frames` on port 2; the UFIDs of the megaflows installed.
fn teach(core: &mut Core, frames: &[Vec<u8>], now: Instant) -> Vec<Ufid> {
    for f in frames {
        let key = extract(f, 2);
        let packet = Packet::Pmd {
            pmd: 0,
            in_port: 2,
            bytes: Vec::new(),
        };
        core.upcall(&key, packet, now);
    }
    core.take_ops()
        .into_iter()
        .filter_map(|op| match op {
            Op::Upcalled {
                install: Some((ufid, _)),
                ..
            } => Some(ufid),
            _ => None,
        })
        .collect()
}

fn learned(core: &Core) -> usize {
    core.rules().iter().filter(|r| r.table == 10).count()
}

fn new_macs(c: &mut Criterion) {
    let mut g = c.benchmark_group("learn/new_macs");
    g.sample_size(10);
    for n in [1_000u32, 10_000] {
        let frames: Vec<Vec<u8>> = (0..n).map(frame).collect();
        g.throughput(Throughput::Elements(n.into()));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_batched(
                || owner(Instant::now()),
                |mut core| {
                    teach(&mut core, &frames, Instant::now());
                    assert_eq!(learned(&core), n as usize);
                    core
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn sweep_refresh(c: &mut Criterion) {
    let mut g = c.benchmark_group("learn/sweep_refresh");
    g.sample_size(10);
    for n in [1_000u32, 10_000] {
        let start = Instant::now();
        let mut core = owner(start);
        let frames: Vec<Vec<u8>> = (0..n).map(frame).collect();
        let ufids = teach(&mut core, &frames, start);
        assert_eq!(ufids.len(), n as usize);
        let mut round = 0u64;
        g.throughput(Throughput::Elements(n.into()));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                round += 1;
                let now = start + Duration::from_secs(round);
                core.tick(now);
                let token = core
                    .take_ops()
                    .into_iter()
                    .find_map(|op| match op {
                        Op::Sweep { token, .. } => Some(token),
                        _ => None,
                    })
                    .expect("a sweep");
                let active = ufids
                    .iter()
                    .map(|&ufid| FlowUse {
                        ufid,
                        stats: FlowStats {
                            packets: round,
                            bytes: 60 * round,
                            used: 1,
                            tcp_flags: 0,
                        },
                        idle: Some(Duration::ZERO),
                    })
                    .collect();
                let report = PmdReport::Swept {
                    pmd: 0,
                    token,
                    expired: Vec::new(),
                    active,
                    deleted: Vec::new(),
                };
                core.pmd_report(report, now);
                core.take_ops();
            })
        });
        assert_eq!(learned(&core), n as usize);
    }
    g.finish();
}

criterion_group!(benches, new_macs, sweep_refresh);
criterion_main!(benches);
