//! Prints the ACL + routing rule set and a few flow keys, for inspection
//! with `odpx trace`: `cargo run -p odpx-benches --example dump_workload N`.
use odpx_classifier::odp::format_exact_key;
use odpx_classifier::rules::ofctl::format_rule;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    for r in odpx_benches::acl_routing_rules(n, 42) {
        println!("{}", format_rule(&r).replace(", ", ","));
    }
    for k in odpx_benches::flows(5, 7) {
        eprintln!("{}", format_exact_key(&k));
    }
}
