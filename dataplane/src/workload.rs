//! Synthetic workloads: flows, frames and rule sets, shared by the traffic
//! generator (`odpx gen`, `odpx workload`) and the criterion benchmarks.
//!
//! Everything is generated from a fixed seed so runs are comparable.
//!
//! The "ACL + routing" rule set models a gateway: table 0 is an ACL
//! (5-tuple-ish drops and permits on prefixes and ports, then a default
//! `resubmit(,1)`), table 1 a routing table (longest prefix wins via
//! priority = prefix length; each route rewrites the destination MAC and
//! outputs to a port).

use odpx_classifier::key::{attr, FlowKey};
use odpx_classifier::rules::ofctl::parse_rule;
use odpx_classifier::rules::Rule;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn ip(a: u32) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

/// The routed address space: 10.0.0.0/8 and 172.16.0.0/12.
fn routed_addr(r: &mut StdRng) -> u32 {
    if r.gen_bool(0.7) {
        0x0a00_0000 | r.gen_range(0..0x0100_0000)
    } else {
        0xac10_0000 | r.gen_range(0..0x0010_0000)
    }
}

/// `n` rules: about 45% ACL entries in table 0, the rest routes in table 1.
pub fn acl_routing_rules(n: usize, seed: u64) -> Vec<Rule> {
    acl_routing_rules_text(n, seed)
        .iter()
        .map(|t| parse_rule(t).unwrap_or_else(|e| panic!("{t}: {e}")))
        .collect()
}

/// The same rules as `ovs-ofctl add-flow` lines (Open vSwitch reads them
/// too, for side-by-side runs).
pub fn acl_routing_rules_text(n: usize, seed: u64) -> Vec<String> {
    let mut r = rng(seed);
    let mut text = Vec::new();
    let n_acl = n * 45 / 100;
    let ports = [22u16, 23, 25, 53, 80, 123, 443, 3306, 5432, 6379, 8080, 8443];
    for i in 0..n_acl {
        let src_len = [8, 16, 24, 32][r.gen_range(0..4)];
        let dst_len = [16, 24, 32][r.gen_range(0..3)];
        let src = routed_addr(&mut r) & odpx_classifier::text::prefix_mask_u32(src_len);
        let dst = routed_addr(&mut r) & odpx_classifier::text::prefix_mask_u32(dst_len);
        let proto = if r.gen_bool(0.8) { "tcp" } else { "udp" };
        let port = ports[r.gen_range(0..ports.len())];
        let action = if i % 3 == 0 { "drop" } else { "resubmit(,1)" };
        let prio = 1000 + r.gen_range(0..100);
        let l4 = if r.gen_bool(0.7) {
            format!(",tp_dst={port}")
        } else {
            String::new()
        };
        text.push(format!(
            "table=0,priority={prio},{proto},nw_src={}/{src_len},nw_dst={}/{dst_len}{l4},actions={action}",
            ip(src),
            ip(dst)
        ));
    }
    text.push("table=0,priority=1,ip,actions=resubmit(,1)".into());
    text.push("table=0,priority=0,actions=drop".into());
    let n_routes = n.saturating_sub(text.len()).max(1);
    for i in 0..n_routes {
        let len = [8u32, 12, 16, 16, 20, 24, 24, 24, 28, 32][r.gen_range(0..10)];
        let dst = routed_addr(&mut r) & odpx_classifier::text::prefix_mask_u32(len);
        let port = 2 + (i % 8) as u32;
        text.push(format!(
            "table=1,priority={len},ip,nw_dst={}/{len},actions=mod_dl_dst:02:00:00:00:00:{:02x},output:{port}",
            ip(dst),
            port
        ));
    }
    text.push("table=1,priority=0,ip,actions=output:1".into());
    text
}

/// A plausible packet key for an IPv4 TCP/UDP flow.
pub fn flow_key(in_port: u32, src: u32, dst: u32, proto: u8, sport: u16, dport: u16) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.attrs = attr::RECIRC_ID
        | attr::DP_HASH
        | attr::PRIORITY
        | attr::IN_PORT
        | attr::SKB_MARK
        | attr::ETHERNET
        | attr::ETHERTYPE
        | attr::IPV4;
    k.in_port = in_port;
    k.eth_src = [2, 0, 0, 0, 0, 1];
    k.eth_dst = [2, 0, 0, 0, 0, 2];
    k.eth_type = 0x0800;
    k.ipv4_src = src;
    k.ipv4_dst = dst;
    k.ip_proto = proto;
    k.ip_ttl = 64;
    k.tp_src = sport;
    k.tp_dst = dport;
    k.attrs |= if proto == 6 {
        attr::TCP | attr::TCP_FLAGS
    } else {
        attr::UDP
    };
    k
}

/// `n` flows between a pool of 2,000 client hosts and 500 server hosts in
/// the routed space, with random ephemeral source ports and destination
/// ports biased to well-known services: many connections, fewer host pairs,
/// as a gateway sees.
pub fn flows(n: usize, seed: u64) -> Vec<FlowKey> {
    let mut r = rng(seed);
    let clients: Vec<u32> = (0..2000).map(|_| routed_addr(&mut r)).collect();
    let servers: Vec<u32> = (0..500).map(|_| routed_addr(&mut r)).collect();
    let ports = [22u16, 53, 80, 443, 8080];
    (0..n)
        .map(|_| {
            let proto = if r.gen_bool(0.8) { 6 } else { 17 };
            let dport = if r.gen_bool(0.8) {
                ports[r.gen_range(0..ports.len())]
            } else {
                r.gen_range(1024..65535)
            };
            let (c, s) = (
                clients[r.gen_range(0..clients.len())],
                servers[r.gen_range(0..servers.len())],
            );
            flow_key(1, c, s, proto, r.gen_range(1024..65535), dport)
        })
        .collect()
}

/// `n` flows with uniformly random source and destination addresses over
/// the routed space: an adversarial stress case where nearly every flow
/// needs its own megaflow.
pub fn flows_uniform(n: usize, seed: u64) -> Vec<FlowKey> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| {
            let proto = if r.gen_bool(0.8) { 6 } else { 17 };
            flow_key(
                1,
                routed_addr(&mut r),
                routed_addr(&mut r),
                proto,
                r.gen_range(1024..65535),
                r.gen_range(1..65535),
            )
        })
        .collect()
}

/// Zipf(s) sampler over ranks 0..n by inverse CDF.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 1..=n {
            acc += 1.0 / (k as f64).powf(s);
            cdf.push(acc);
        }
        for c in cdf.iter_mut() {
            *c /= acc;
        }
        Zipf { cdf }
    }

    pub fn sample(&self, r: &mut StdRng) -> usize {
        let u: f64 = r.gen();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// Ethernet frames for the extraction benchmark.
pub mod frames {
    use etherparse::PacketBuilder;

    const SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST: [u8; 6] = [2, 0, 0, 0, 0, 2];

    pub fn ipv4_tcp() -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1234, 80, 1, 1000)
            .write(&mut v, &[0; 6])
            .unwrap();
        v
    }

    pub fn ipv6_udp() -> Vec<u8> {
        let mut v = Vec::new();
        let a = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut b = a;
        b[15] = 2;
        PacketBuilder::ethernet2(SRC, DST)
            .ipv6(a, b, 64)
            .udp(53, 5353)
            .write(&mut v, &[0; 6])
            .unwrap();
        v
    }

    pub fn vlan_ipv4_udp() -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .single_vlan(10.try_into().unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 4789)
            .write(&mut v, &[0; 6])
            .unwrap();
        v
    }

    pub fn arp() -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&SRC);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&SRC);
        f.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        f.resize(60, 0);
        f
    }
}

/// An Ethernet frame for a flow key made by [`flow_key`] (IPv4, TCP with
/// ACK or UDP, 18 bytes of payload: a 64-byte frame on the wire).
pub fn frame_of(k: &FlowKey) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
        k.ipv4_src.to_be_bytes(),
        k.ipv4_dst.to_be_bytes(),
        64,
    );
    let mut f = Vec::new();
    let payload = [0u8; 6];
    if k.ip_proto == 6 {
        b.tcp(k.tp_src, k.tp_dst, 1, 65535)
            .ack(1)
            .write(&mut f, &payload)
            .unwrap();
    } else {
        b.udp(k.tp_src, k.tp_dst).write(&mut f, &payload).unwrap();
    }
    f
}
