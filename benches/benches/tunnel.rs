//! VXLAN encapsulation and decapsulation rates of one PMD on in-memory
//! ports (`Pmd::poll_once`, no kernel I/O), with the megaflows the real
//! translator installs for a VXLAN gateway: its tunnels built from a
//! fixed underlay (u0 at 172.31.0.1/24, the remote VTEP 172.31.0.2 known
//! as a neighbour).
//!
//! * `encap`: inner frames (64 bytes) on the access port, rule
//!   `in_port=1,actions=output:2` (vx0, VNI 42): one pass, `tnl_push`
//!   onto the underlay (114-byte frames out).
//! * `decap`: VXLAN frames (114 bytes; each flow with its own outer UDP
//!   source port, as a remote VTEP's entropy makes them) on the underlay,
//!   rule `in_port=2,actions=output:1`: the decap megaflow (`tnl_pop`),
//!   then recirculation and the inner packet's megaflow.
//!
//! Each for 1 flow and for 10k flows (uniformly random over the flows of
//! the hit-rate bench, a 64k-frame replay loop: the 8,192-entry EMC
//! cannot hold them all). Criterion reports time per batch of 32 packets
//! (throughput in elements = packets).
//!
//! `cargo bench -p odpx-benches --bench tunnel`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use odpx_benches::{emc_summary, flows, frame_of, rng, stages, BenchPmd};
use odpx_classifier::rules::{ofctl, RuleSet};
use odpx_classifier::wire::{TunnelIp, VxlanRepr, IPV4_DF, VXLAN_FLAGS_VNI, VXLAN_PORT};
use odpx_control::config::Config;
use odpx_control::core::tunnels::Tunnels;
use odpx_control::core::underlay::UnderlayView;
use odpx_dataplane::pmd::PortTable;
use odpx_dataplane::port::Port;
use odpx_offload::rtnl::{nud, route_type, Address, Change, Link, Neighbour, Route, RT_TABLE_MAIN};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

const U0: u32 = 7;
const U0_MAC: [u8; 6] = [2, 0, 0, 0, 0xee, 1];
const VTEP_MAC: [u8; 6] = [2, 0, 0, 0, 0xee, 2];

const CONFIG: &str = r#"
[[port]]
name = "a0"
type = "memory"
[[port]]
name = "vx0"
type = "vxlan"
remote_ip = "172.31.0.2"
key = 42
[[port]]
name = "u0"
type = "underlay"
"#;

fn underlay() -> UnderlayView {
    let ip = |s: &str| s.parse().unwrap();
    UnderlayView::from_changes([
        Change::Link(Link {
            ifindex: U0,
            name: "u0".into(),
            mac: Some(U0_MAC),
            mtu: 1500,
            up: true,
        }),
        Change::Address(Address {
            ifindex: U0,
            addr: ip("172.31.0.1"),
            prefix_len: 24,
        }),
        Change::Route(Route {
            table: RT_TABLE_MAIN,
            kind: route_type::UNICAST,
            dst: ip("172.31.0.0"),
            prefix_len: 24,
            oif: Some(U0),
            gateway: None,
            prefsrc: None,
            metric: 0,
        }),
        Change::Neighbour(Neighbour {
            ifindex: U0,
            addr: ip("172.31.0.2"),
            mac: Some(VTEP_MAC),
            state: nud::REACHABLE,
        }),
    ])
}

/// The replayed frames: inner frames for `n` flows, or (decap) each
/// inside a VXLAN frame from the remote VTEP.
fn replay(n: usize, decap: bool) -> Vec<Vec<u8>> {
    let keys = flows(n, 7);
    let outer = |i: usize, inner: &[u8]| {
        VxlanRepr {
            eth_dst: U0_MAC,
            eth_src: VTEP_MAC,
            ip: TunnelIp::V4 {
                src: 0xac1f_0002,
                dst: 0xac1f_0001,
                tos: 0,
                ttl: 64,
                frag: IPV4_DF,
            },
            udp_src: 49152 + (i % 16384) as u16,
            udp_dst: VXLAN_PORT,
            udp_checksum: 0,
            flags: VXLAN_FLAGS_VNI,
            vni: 42,
        }
        .encapsulate(inner)
    };
    let frame = |i: usize| {
        let f = frame_of(&keys[i]);
        if decap {
            outer(i, &f)
        } else {
            f
        }
    };
    if n == 1 {
        return vec![frame(0)];
    }
    let mut r = rng(11);
    (0..65536).map(|_| frame(r.gen_range(0..n))).collect()
}

fn setup(n_flows: usize, decap: bool) -> BenchPmd {
    let cfg = Config::parse(CONFIG, std::path::Path::new("/")).unwrap();
    let frames = replay(n_flows, decap);
    let (access, underlay_port) = if decap {
        (Port::memory(1, "a0", false), Port::looping(3, "u0", frames))
    } else {
        (Port::looping(1, "a0", frames), Port::memory(3, "u0", false))
    };
    let ports: PortTable = Arc::new(vec![
        None,
        Some(Arc::new(access)),
        Some(Arc::new(Port::vxlan(2, "vx0", cfg.vxlan_endpoints()[0].1))),
        Some(Arc::new(underlay_port)),
    ]);
    let mut rules = RuleSet::new();
    rules.add(ofctl::parse_rule("in_port=1,actions=output:2").unwrap());
    rules.add(ofctl::parse_rule("in_port=2,actions=output:1").unwrap());
    let tunnels = Tunnels::new(&cfg, underlay());
    let mut b = BenchPmd::with_tunnels(ports.clone(), if decap { 3 } else { 1 }, rules, vec![1, 2], tunnels);
    b.warm_up(4 * 65536 / 32);
    let n = b.owner.read(|core| core.megaflows());
    assert!((1..=2).contains(&n), "{n} megaflows");
    b
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("tunnel");
    g.throughput(Throughput::Elements(32));
    g.measurement_time(Duration::from_secs(5));
    for (label, n, decap) in [
        ("encap_1_flow", 1, false),
        ("encap_10k_flows", 10_000, false),
        ("decap_1_flow", 1, true),
        ("decap_10k_flows", 10_000, true),
    ] {
        let BenchPmd { mut pmd, counters, .. } = setup(n, decap);
        let before = counters.snapshot();
        g.bench_function(label, |b| b.iter(|| pmd.poll_once()));
        let after = counters.snapshot();
        let pk = (after.packets - before.packets).max(1) as f64;
        eprintln!(
            "{label}: {}; megaflow {:.1}% of lookups; upcalls {} recirculations/packet {:.2}; {}",
            emc_summary(&before, &after),
            100.0 * (after.megaflow_hits - before.megaflow_hits) as f64
                / (pk + (after.recirculations - before.recirculations) as f64),
            after.upcalls - before.upcalls,
            (after.recirculations - before.recirculations) as f64 / pk,
            stages(&before, &after)
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
