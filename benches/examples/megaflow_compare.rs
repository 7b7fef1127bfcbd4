//! Exports the ACL + routing workload for a side-by-side with Open vSwitch
//! and reports odpx's side: `megaflow_compare OUTDIR N_FLOWS`.
//!
//! Writes OUTDIR/rules.txt (ovs-ofctl add-flows syntax) and OUTDIR/flows.txt
//! (one `ofproto/trace` flow per line, the first N flows of the gateway
//! traffic), then prints how many distinct megaflows odpx's translator needs
//! for those flows. `tools/ovs-megaflow-compare.sh` runs the OVS side.

use odpx_classifier::rules::ofctl::format_rule;
use odpx_classifier::rules::RuleSet;
use odpx_classifier::xlate::{translate, FloodEnv};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: megaflow_compare OUTDIR N_FLOWS");
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let rules = odpx_benches::acl_routing_rules(1000, 42);
    let mut text = String::new();
    let mut set = RuleSet::new();
    for r in rules {
        writeln!(text, "{}", format_rule(&r)).unwrap();
        set.add(r);
    }
    std::fs::write(format!("{dir}/rules.txt"), text).unwrap();
    let flows = odpx_benches::flows(100_000, 7);
    let mut lines = String::new();
    let mut megaflows = HashSet::new();
    let mut env = FloodEnv {
        ports: (1..10).collect(),
    };
    for k in flows.iter().take(n) {
        let p = if k.ip_proto == 6 { "tcp" } else { "udp" };
        writeln!(
            lines,
            "in_port={},{p},dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_src={},nw_dst={},nw_ttl=64,{p}_src={},{p}_dst={}",
            k.in_port,
            Ipv4Addr::from(k.ipv4_src),
            Ipv4Addr::from(k.ipv4_dst),
            k.tp_src,
            k.tp_dst
        )
        .unwrap();
        megaflows.insert(translate(&set, k, &mut env).megaflow);
    }
    std::fs::write(format!("{dir}/flows.txt"), lines).unwrap();
    println!("odpx: {n} flows -> {} distinct megaflows", megaflows.len());
}
