//! How long the megaflow owner takes to bring its megaflows in line with a
//! rule change, at 10k and 100k megaflows (the owner core, driven without
//! threads; its decisions are taken from its outbox and dropped instead of
//! reaching PMDs).
//!
//! Megaflows come from the 1k-rule ACL + routing set of the hit-rate bench
//! and uniformly random flows (nearly each needs its own megaflow), fed as
//! upcalls until the owner holds the target count.
//!
//! * `all`: a rule in table 0 that every megaflow's first lookup overlaps
//!   (`ip,actions=drop` at top priority), added and deleted again: each
//!   iteration revalidates every megaflow twice (both times each megaflow
//!   gets new actions in place). Per change: half the time shown.
//! * `none`: a /32 route for an address no flow uses, added and deleted:
//!   the cost of finding that no megaflow is affected (every megaflow's
//!   lookup spaces checked against the rule), twice per iteration.
//! * `batch100`: 100 new routes in one request, added and deleted: more
//!   than the 64-rule threshold, so each change revalidates every megaflow
//!   once, not once per rule.
//!
//! `cargo bench -p odpx-benches --bench revalidation`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use odpx_benches::{acl_routing_rules, flows_uniform};
use odpx_classifier::key::Match;
use odpx_classifier::rules::{ofctl, Rule, RuleSet};
use odpx_control::core::{Change, Core, CoreConfig, Holders, Op, Packet, Ticket};
use std::time::{Duration, Instant};

fn owner_with(megaflows: usize) -> Core {
    let mut rules = RuleSet::new();
    for r in acl_routing_rules(1000, 3) {
        rules.add(r);
    }
    // No PMD answers barriers: a change is answered at once.
    let mut t = Core::new(
        CoreConfig {
            rules,
            ports: (1..=9).collect(),
            holders: Holders { pmds: 0, kernel: false },
            megaflow_limit: 10_000_000,
            idle_timeout: Duration::from_secs(3600),
            tunnels: Default::default(),
            offload: None,
        },
        Instant::now(),
    );
    let mut seed = 1;
    while t.megaflows() < megaflows {
        for key in flows_uniform(50_000, seed) {
            let packet = Packet::Pmd {
                pmd: 0,
                in_port: 1,
                bytes: Vec::new(),
            };
            t.upcall(&key, packet, Instant::now());
            if t.megaflows() >= megaflows {
                break;
            }
        }
        t.take_ops();
        seed += 1;
    }
    t
}

/// Makes a change and returns its answer (the operations it decided are
/// dropped).
fn change(t: &mut Core, c: Change) -> Result<usize, String> {
    t.change(c, Ticket(1), Instant::now());
    t.take_ops()
        .into_iter()
        .find_map(|op| match op {
            Op::Reply { result, .. } => Some(result),
            _ => None,
        })
        .expect("answered at once")
}

/// Adds then deletes `rules`, each answered (no PMD to wait for).
fn add_and_delete(t: &mut Core, rules: &[Rule]) {
    assert_eq!(change(t, Change::AddRules(rules.to_vec())), Ok(rules.len()));
    for r in rules {
        let del = Change::DelRules {
            table: Some(r.table),
            matched: Box::new(r.matched),
            strict: Some(r.priority),
        };
        assert!(change(t, del).is_ok());
    }
}

/// The routes of `batch100`, deleted in one request by their common match.
fn routes(n: usize) -> (Vec<Rule>, Match) {
    let rules: Vec<Rule> = (0..n)
        .map(|i| {
            ofctl::parse_rule(&format!(
                "table=1,priority=40,ip,nw_dst=192.168.{}.{}/32,actions=output:9",
                i / 250,
                i % 250 + 1
            ))
            .unwrap()
        })
        .collect();
    let cover = ofctl::parse_rule("table=1,ip,nw_dst=192.168.0.0/16,actions=drop")
        .unwrap()
        .matched;
    (rules, cover)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("revalidation");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    let all = [ofctl::parse_rule("table=0,priority=65000,ip,actions=drop").unwrap()];
    let none = [ofctl::parse_rule("table=1,priority=32,ip,nw_dst=192.168.255.255/32,actions=output:9").unwrap()];
    let (batch, cover) = routes(100);
    for n in [10_000, 100_000] {
        let mut t = owner_with(n);
        eprintln!("revalidation: {} megaflows", t.megaflows());
        let label = format!("{}k", n / 1000);
        g.bench_function(BenchmarkId::new("all", &label), |b| {
            b.iter(|| add_and_delete(&mut t, &all))
        });
        g.bench_function(BenchmarkId::new("none", &label), |b| {
            b.iter(|| add_and_delete(&mut t, &none))
        });
        g.bench_function(BenchmarkId::new("batch100", &label), |b| {
            b.iter(|| {
                assert_eq!(change(&mut t, Change::AddRules(batch.clone())), Ok(100));
                let del = Change::DelRules {
                    table: Some(1),
                    matched: Box::new(cover),
                    strict: None,
                };
                assert_eq!(change(&mut t, del), Ok(100));
            })
        });
        let c = t.counters().snapshot();
        eprintln!(
            "revalidation {label}: megaflows {}, revalidated {}, modified {}, removed {}",
            t.megaflows(),
            c.revalidated,
            c.revalidation_modifications,
            c.revalidation_removals
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
