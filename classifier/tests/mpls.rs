//! MPLS in translation, and the freeze and thaw it needs: what each
//! action emits, what the megaflow pins, and how a popped packet's
//! translation goes on after recirculation.

use odpx_classifier::key::FlowKey;
use odpx_classifier::odp::actions::format_actions;
use odpx_classifier::odp::{format_match, parse_key};
use odpx_classifier::rules::ofctl::parse_rules;
use odpx_classifier::rules::RuleSet;
use odpx_classifier::xlate::freeze::{Frozen, RecircStore};
use odpx_classifier::xlate::{translate, FloodEnv, SwitchEnv, Translation};

/// Flooding to no port, with a store of frozen states.
#[derive(Default)]
struct Env {
    store: RecircStore,
}

impl SwitchEnv for Env {
    fn flood_ports(&self, _in_port: u32) -> Vec<u32> {
        Vec::new()
    }
    fn normal_lookup(&mut self, _key: &FlowKey) -> Option<u32> {
        None
    }
    fn freeze(&mut self, state: &Frozen) -> Option<u32> {
        self.store.freeze(state)
    }
    fn thaw(&self, id: u32) -> Option<Frozen> {
        self.store.thaw(id).cloned()
    }
}

fn rules(text: &str) -> RuleSet {
    let mut r = RuleSet::new();
    for rule in parse_rules(text).unwrap() {
        r.add(rule);
    }
    r
}

fn key(s: &str) -> FlowKey {
    parse_key(s).unwrap().matched.key
}

const ETH: &str = "in_port(1),eth(src=12:11:11:11:11:11,dst=22:22:22:22:22:22)";

fn ipv4(tos: u8) -> FlowKey {
    key(&format!(
        "{ETH},eth_type(0x0800),ipv4(src=192.168.10.10,dst=192.168.20.20,proto=6,tos={tos},ttl=64,frag=no),tcp(src=11111,dst=2222)"
    ))
}

/// An MPLS packet with one label (100, TC 3, TTL `ttl`).
fn mpls(ttl: u8) -> FlowKey {
    key(&format!("{ETH},eth_type(0x8847),mpls(label=100,tc=3,ttl={ttl},bos=1)"))
}

fn with_recirc(mut k: FlowKey, id: u32) -> FlowKey {
    k.recirc_id = id;
    k
}

fn run(r: &RuleSet, env: &mut Env, k: &FlowKey) -> Translation {
    translate(r, k, env)
}

#[test]
fn push_mpls_on_ip_takes_the_ip_ttl_and_on_mpls_copies_the_outer_label() {
    let r = rules("ip,actions=push_mpls:0x8847,output:2\nmpls,actions=push_mpls:0x8847,output:2");
    let mut env = Env::default();
    let t = run(&r, &mut env, &ipv4(32));
    assert_eq!(
        format_actions(&t.actions),
        "push_mpls(label=0,tc=0,ttl=64,bos=1,eth_type=0x8847),2"
    );
    assert!(
        format_match(&t.megaflow).contains("ttl=64"),
        "{}",
        format_match(&t.megaflow)
    );
    let t = run(&r, &mut env, &mpls(64));
    assert_eq!(
        format_actions(&t.actions),
        "push_mpls(label=100,tc=3,ttl=64,bos=0,eth_type=0x8847),2"
    );
}

#[test]
fn mpls_ttl_and_label_writes_become_one_masked_set_of_the_outer_entry() {
    let r = rules("mpls,actions=dec_mpls_ttl,set_field:203->mpls_label,output:2");
    let t = run(&r, &mut Env::default(), &mpls(64));
    assert_eq!(
        format_actions(&t.actions),
        "set(mpls(label=203/0xfffff,tc=0/0,ttl=63/0xff,bos=0/0)),2"
    );
}

#[test]
fn an_expired_mpls_ttl_goes_to_the_controller_and_ends_the_pipeline() {
    let r = rules("mpls,actions=dec_mpls_ttl,output:2");
    let t = run(&r, &mut Env::default(), &mpls(1));
    let a = format_actions(&t.actions);
    assert!(a.starts_with("userspace(") && !a.ends_with(",2"), "{a}");
}

#[test]
fn pop_mpls_then_output_needs_no_recirculation() {
    let r = rules("mpls,actions=pop_mpls:0x0800,output:2");
    let t = run(&r, &mut Env::default(), &mpls(64));
    assert_eq!(format_actions(&t.actions), "pop_mpls(eth_type=0x800),2");
}

#[test]
fn a_lookup_after_the_last_pop_recirculates_and_goes_on_in_the_next_table() {
    let r = rules(
        "table=0,mpls,actions=pop_mpls:0x0800,goto_table:1\n\
         table=1,ip,nw_tos=32,actions=output:2\n\
         table=1,priority=0,actions=output:3",
    );
    let mut env = Env::default();
    let first = run(&r, &mut env, &mpls(64));
    assert_eq!(format_actions(&first.actions), "pop_mpls(eth_type=0x800),recirc(0x1)");
    // The first megaflow is for packets not recirculated, on this port.
    let m = format_match(&first.megaflow);
    assert!(m.starts_with("in_port(1),") && !m.contains("recirc_id"), "{m}");
    // Another packet of that megaflow freezes the same state.
    assert_eq!(run(&r, &mut env, &mpls(9)).actions, first.actions);
    // Round two: the packet parsed again, as IPv4, with recirc_id 1.
    let again = run(&r, &mut env, &with_recirc(ipv4(32), 1));
    assert_eq!(format_actions(&again.actions), "2");
    let m = format_match(&again.megaflow);
    assert!(m.starts_with("recirc_id(0x1),in_port(1),"), "{m}");
    let other = run(&r, &mut env, &with_recirc(ipv4(64), 1));
    assert_eq!(format_actions(&other.actions), "3");
    // A packet not recirculated never takes a recirculated megaflow.
    assert!(!again.megaflow.matches(&ipv4(32)));
    assert!(!first.megaflow.matches(&with_recirc(mpls(64), 1)));
}

#[test]
fn a_freeze_inside_a_resubmit_keeps_the_callers_actions_and_the_action_set() {
    let r = rules(
        "table=0,mpls,actions=write_actions(output:4),goto_table:1\n\
         table=1,mpls,actions=resubmit(,2),output:3\n\
         table=2,mpls,actions=pop_mpls:0x0800,set_field:10.0.0.1->ip_dst,output:2",
    );
    let mut env = Env::default();
    let first = run(&r, &mut env, &mpls(64));
    assert_eq!(format_actions(&first.actions), "pop_mpls(eth_type=0x800),recirc(0x1)");
    let again = run(&r, &mut env, &with_recirc(ipv4(0), 1));
    assert_eq!(format_actions(&again.actions), "set(ipv4(dst=10.0.0.1)),2,3,4");
}

#[test]
fn without_a_store_the_translation_stops_where_it_would_freeze() {
    let r = rules("table=0,mpls,actions=pop_mpls:0x0800,goto_table:1\ntable=1,actions=output:2");
    let t = translate(&r, &mpls(64), &mut FloodEnv { ports: vec![] });
    assert_eq!(format_actions(&t.actions), "pop_mpls(eth_type=0x800)");
    // An id nobody froze: dropped.
    let t = translate(&r, &with_recirc(ipv4(0), 7), &mut FloodEnv { ports: vec![] });
    assert!(t.actions.is_empty());
}
