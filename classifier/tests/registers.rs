//! Registers in rules and translation: `regN` matches, `load`, `move`,
//! `set_field` and `output:SUBFIELD`, what a megaflow pins for them (only
//! the packet bits that decided a register, never a register), and
//! registers kept across a freeze.

use odpx_classifier::key::FlowKey;
use odpx_classifier::odp::actions::format_actions;
use odpx_classifier::odp::{format_match, parse_key};
use odpx_classifier::rules::ofctl::{format_rule, parse_rule, parse_rules};
use odpx_classifier::rules::RuleSet;
use odpx_classifier::xlate::freeze::{Frozen, RecircStore};
use odpx_classifier::xlate::{translate, SwitchEnv, Translation};

#[derive(Default)]
struct Env {
    store: RecircStore,
}

impl SwitchEnv for Env {
    fn flood_ports(&self, in_port: u32) -> Vec<u32> {
        (1..=4).filter(|p| *p != in_port).collect()
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

fn packet(in_port: u32, src: &str) -> FlowKey {
    key(&format!(
        "in_port({in_port}),eth(src={src},dst=22:22:22:22:22:22),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1,dst=2)"
    ))
}

fn run(r: &RuleSet, k: &FlowKey) -> Translation {
    translate(r, k, &mut Env::default())
}

#[test]
fn register_matches_and_loads_print_as_ovs_ofctl_prints_them() {
    for (text, printed) in [
        (
            "table=4,reg0=0,priority=99,dl_vlan=20,actions=1,strip_vlan,2",
            "table=4, priority=99,reg0=0,dl_vlan=20 actions=output:1,pop_vlan,output:2",
        ),
        (
            "table=10,reg0=0x5/0xff,reg15=7,actions=load:0x1->NXM_NX_REG0[0..15]",
            "table=10, priority=32768,reg0=0x5/0xff,reg15=0x7 actions=load:0x1->NXM_NX_REG0[0..15]",
        ),
        (
            "ip,actions=move:NXM_OF_IN_PORT[]->reg1[16..31],load:0->reg2[],output:NXM_NX_REG1[16..31]",
            "table=0, priority=32768,ip actions=move:NXM_OF_IN_PORT[]->NXM_NX_REG1[16..31],load:0->NXM_NX_REG2[],output:NXM_NX_REG1[16..31]",
        ),
        (
            "xreg1=0x100000002,actions=set_field:0x3->reg4",
            "table=0, priority=32768,reg2=0x1,reg3=0x2 actions=set_field:0x3->reg4",
        ),
    ] {
        let rule = parse_rule(text).unwrap();
        assert_eq!(format_rule(&rule), printed, "{text}");
        assert_eq!(parse_rule(printed).unwrap().matched, rule.matched, "{printed}");
        assert_eq!(parse_rule(printed).unwrap().actions, rule.actions, "{printed}");
    }
}

#[test]
fn bad_register_actions_are_refused_with_a_reason() {
    for (text, why) in [
        ("actions=load:0x10000->NXM_NX_REG0[0..15]", "does not fit into 16 bits"),
        (
            "actions=move:NXM_OF_ETH_SRC[]->NXM_NX_REG0[]",
            "48 bits wide but destination",
        ),
        (
            "actions=move:NXM_OF_TCP_SRC[]->NXM_NX_REG0[0..15]",
            "needs a rule that matches",
        ),
        ("actions=output:NXM_NX_REG0[40..47]", "only 32 bits"),
        ("actions=output:xreg0[]", "wider than a port number"),
        ("reg16=1,actions=drop", "reg16"),
    ] {
        let err = parse_rule(text).unwrap_err().to_string();
        assert!(err.contains(why), "{text}: {err}");
    }
}

#[test]
fn a_register_set_by_a_constant_routes_without_pinning_anything() {
    let r = rules(
        "table=0,in_port=1,actions=load:0x5->NXM_NX_REG0[0..15],resubmit(,1)\n\
         table=1,reg0=5,actions=output:2\n\
         table=1,reg0=6,actions=output:3",
    );
    let t = run(&r, &packet(1, "00:00:00:00:00:01"));
    assert_eq!(format_actions(&t.actions), "2");
    // No register, and nothing but in_port, in the megaflow.
    assert_eq!(format_match(&t.megaflow), "in_port(1),eth()");
    assert_eq!(t.megaflow.mask.regs, [0; 16]);
    // A packet that never loads reg0 misses both reg0 rules.
    assert_eq!(
        format_actions(&run(&r, &packet(2, "00:00:00:00:00:01")).actions),
        "drop"
    );
}

#[test]
fn a_register_moved_from_the_packet_pins_the_bits_it_came_from() {
    let r = rules(
        "table=0,actions=move:NXM_OF_ETH_SRC[0..15]->NXM_NX_REG1[0..15],resubmit(,1)\n\
         table=1,reg1=0x1/0xffff,actions=output:2\n\
         table=1,priority=1,actions=output:3",
    );
    let a = run(&r, &packet(1, "00:00:00:00:00:01"));
    assert_eq!(format_actions(&a.actions), "2");
    let m = format_match(&a.megaflow);
    assert!(m.contains("eth(src=00:00:00:00:00:01/00:00:00:00:ff:ff"), "{m}");
    // The megaflow is sound: another source with the same low bits takes
    // it and the same way; one with other low bits does not take it.
    let same = packet(1, "aa:bb:cc:dd:00:01");
    assert!(a.megaflow.matches(&same));
    assert_eq!(run(&r, &same).actions, a.actions);
    let other = packet(1, "00:00:00:00:00:02");
    assert!(!a.megaflow.matches(&other));
    assert_eq!(format_actions(&run(&r, &other).actions), "3");
}

#[test]
fn output_to_a_register_goes_to_the_port_it_holds_and_never_back_in() {
    let r = rules(
        "table=0,actions=load:0x3->NXM_NX_REG0[0..15],resubmit(,1),move:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15],resubmit(,1)\n\
         table=1,actions=output:NXM_NX_REG0[0..15]",
    );
    let t = run(&r, &packet(1, "00:00:00:00:00:01"));
    // Port 3, then the input port itself: dropped, as output:in_port would be.
    assert_eq!(format_actions(&t.actions), "3");
    assert_eq!(format_match(&t.megaflow), "in_port(1),eth()");
}

#[test]
fn registers_survive_a_freeze() {
    let r = rules(
        "table=0,mpls,actions=load:0x7->NXM_NX_REG3[],pop_mpls:0x0800,goto_table:1\n\
         table=1,ip,reg3=7,actions=output:2\n\
         table=1,priority=0,actions=output:4",
    );
    let mut env = Env::default();
    let mpls = key(
        "in_port(1),eth(src=00:00:00:00:00:01,dst=22:22:22:22:22:22),eth_type(0x8847),mpls(label=100,tc=3,ttl=64,bos=1)",
    );
    let first = translate(&r, &mpls, &mut env);
    assert_eq!(format_actions(&first.actions), "pop_mpls(eth_type=0x800),recirc(0x1)");
    let mut again = packet(1, "00:00:00:00:00:01");
    again.recirc_id = 1;
    let t = translate(&r, &again, &mut env);
    assert_eq!(format_actions(&t.actions), "2");
}
