//! `learn` in translation: the advanced tutorial's four-table VLAN and
//! MAC-learning pipeline, traced packet by packet with its learned rules
//! added after each translation (as `ofproto/trace -generate` does), the
//! megaflows it makes, and a property: after any traffic, the learned
//! table is a reference model's MAC table.

use odpx_classifier::key::FlowKey;
use odpx_classifier::odp::actions::format_actions;
use odpx_classifier::odp::{format_match, parse_key};
use odpx_classifier::rules::ofctl::{format_rule, parse_rules};
use odpx_classifier::rules::RuleSet;
use odpx_classifier::xlate::{translate, FloodEnv, Translation};

/// The tutorial's tables, in the tutorial's own words (`ovs-ofctl`
/// syntax, spaces and all).
pub const TUTORIAL: &str = include_str!("../../tests/data/advanced-tutorial.rules");

fn tutorial() -> RuleSet {
    let mut r = RuleSet::new();
    for rule in parse_rules(TUTORIAL).unwrap() {
        r.add(rule);
    }
    r
}

/// An Ethernet frame (no payload: Ethertype 0, as `ofproto/trace`'s
/// flows) on `in_port`, tagged with `vlan` if given.
fn frame(in_port: u32, vlan: Option<u16>, src: &str, dst: &str) -> FlowKey {
    let tag = vlan
        .map(|v| format!("eth_type(0x8100),vlan(vid={v},pcp=0),encap(eth_type(0))"))
        .unwrap_or_else(|| "eth_type(0)".into());
    parse_key(&format!("in_port({in_port}),eth(src={src},dst={dst}),{tag}"))
        .unwrap()
        .matched
        .key
}

/// Translates and then adds what the translation learned (`-generate`).
fn generate(rules: &mut RuleSet, k: &FlowKey) -> Translation {
    let t = translate(
        rules,
        k,
        &mut FloodEnv {
            ports: vec![1, 2, 3, 4],
        },
    );
    for r in &t.learned {
        rules.add(r.clone());
    }
    t
}

fn table_10(rules: &RuleSet) -> Vec<String> {
    rules.iter().filter(|r| r.table == 10).map(format_rule).collect()
}

#[test]
fn learn_adds_the_tutorials_table_10_rule_and_pins_what_it_read() {
    let mut rules = tutorial();
    let t = generate(
        &mut rules,
        &frame(1, Some(20), "50:00:00:00:00:01", "00:00:00:00:00:00"),
    );
    assert_eq!(
        table_10(&rules),
        ["table=10, priority=32768,vlan_tci=0x0014/0x0fff,dl_dst=50:00:00:00:00:01 actions=load:0x1->NXM_NX_REG0[0..15]"]
    );
    // What learning read is in the megaflow: the VID, the source, in_port.
    let m = format_match(&t.megaflow);
    assert!(m.starts_with("in_port(1),eth(src=50:00:00:00:00:01"), "{m}");
    assert!(m.contains("vlan(vid=20"), "{m}");
    // The same packet again learns the same rule; nothing is added.
    let again = generate(
        &mut rules,
        &frame(1, Some(20), "50:00:00:00:00:01", "00:00:00:00:00:00"),
    );
    assert_eq!(again.learned, t.learned);
    assert_eq!(table_10(&rules).len(), 1);
    // The MAC on another port is learned there, in place.
    generate(&mut rules, &frame(2, None, "50:00:00:00:00:01", "00:00:00:00:00:00"));
    assert_eq!(
        table_10(&rules),
        ["table=10, priority=32768,vlan_tci=0x0014/0x0fff,dl_dst=50:00:00:00:00:01 actions=load:0x2->NXM_NX_REG0[0..15]"]
    );
}

#[test]
fn the_tutorials_floods_and_learned_destinations() {
    let mut rules = tutorial();
    let bcast = "ff:ff:ff:ff:ff:ff";
    let a = "00:00:00:00:00:aa";
    for (k, actions) in [
        // Broadcasts: to the VLAN's other ports, tagged only to the trunk.
        (frame(1, Some(30), a, bcast), "pop_vlan,3,4"),
        (frame(3, None, a, bcast), "push_vlan(vid=30,pcp=0),1,pop_vlan,4"),
        (frame(1, None, a, bcast), "drop"),
        (frame(1, Some(55), a, bcast), "drop"),
        (frame(1, Some(20), a, bcast), "pop_vlan,2"),
        (frame(2, None, a, bcast), "push_vlan(vid=20,pcp=0),1"),
        // Multicast and unknown unicast flood the same way.
        (
            frame(4, None, a, "01:00:00:00:00:00"),
            "push_vlan(vid=30,pcp=0),1,pop_vlan,3",
        ),
        (frame(1, Some(20), a, "90:12:34:56:78:90"), "pop_vlan,2"),
        (frame(1, Some(30), a, "90:12:34:56:78:90"), "pop_vlan,3,4"),
    ] {
        let t = generate(&mut rules, &k);
        assert_eq!(format_actions(&t.actions), actions, "{}", format_match(&t.megaflow));
    }
    // Example 2: learn 10:..:01 on p1 in VLAN 30, then 20:..:01 on p4.
    let (ten, twenty) = ("10:00:00:00:00:01", "20:00:00:00:00:01");
    let t = generate(&mut rules, &frame(1, Some(30), ten, twenty));
    assert_eq!(format_actions(&t.actions), "pop_vlan,3,4");
    let t = generate(&mut rules, &frame(4, None, twenty, ten));
    assert_eq!(format_actions(&t.actions), "push_vlan(vid=30,pcp=0),1");
    let t = generate(&mut rules, &frame(1, Some(30), ten, twenty));
    assert_eq!(format_actions(&t.actions), "pop_vlan,4");
    // A learned destination's megaflow pins it, and its VLAN.
    let m = format_match(&t.megaflow);
    assert!(m.contains("dst=20:00:00:00:00:01"), "{m}");
}

#[test]
fn a_learned_match_without_its_prerequisites_is_not_learned() {
    let mut rules = RuleSet::new();
    for r in parse_rules("ip,actions=learn(table=1,NXM_OF_IP_SRC[]),output:2").unwrap() {
        rules.add(r);
    }
    let k = parse_key("in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1,dst=2)")
        .unwrap()
        .matched
        .key;
    let t = generate(&mut rules, &k);
    // nw_src without ip in the learned rule: Open vSwitch refuses it too.
    assert!(t.learned.is_empty());
    assert_eq!(format_actions(&t.actions), "2");
}

/// One frame of the property: from host `host` (a unicast MAC, or with
/// `multicast` a group address) in on `port`, tagged with `vlan`.
#[derive(Clone, Copy, Debug)]
struct Sent {
    port: u32,
    host: u8,
    vlan: Option<u16>,
    multicast: bool,
}

fn sent() -> impl proptest::strategy::Strategy<Value = Sent> {
    use proptest::prelude::*;
    (
        1u32..=4,
        1u8..=6,
        proptest::option::of(prop_oneof![Just(20u16), Just(30), Just(55)]),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(port, host, vlan, multicast)| Sent {
            port,
            host,
            vlan,
            multicast,
        })
}

/// What the tutorial's switch should have learned: (VLAN, MAC) to the
/// port it was last seen on, for sources its table 0 and 1 let in (the
/// trunk takes any frame, access ports untagged ones only; group
/// addresses never).
fn model(seq: &[Sent]) -> std::collections::BTreeMap<(u16, [u8; 6]), u32> {
    let mut m = std::collections::BTreeMap::new();
    for s in seq {
        let vid = match (s.port, s.vlan) {
            _ if s.multicast => continue,
            (1, v) => v.unwrap_or(0),
            (2, None) => 20,
            (3 | 4, None) => 30,
            _ => continue,
        };
        m.insert((vid, mac_of(s)), s.port);
    }
    m
}

fn mac_of(s: &Sent) -> [u8; 6] {
    [if s.multicast { 1 } else { 0x02 }, 0, 0, 0, 0, s.host]
}

proptest::proptest! {
    /// After any traffic, table 10 is the model's MAC table: one rule per
    /// (VLAN, MAC), loading the port it was last seen on.
    #[test]
    fn learned_rules_are_the_mac_table_of_the_traffic(seq in proptest::collection::vec(sent(), 1..60)) {
        let mut rules = tutorial();
        for s in &seq {
            let src = odpx_classifier::text::fmt_mac(&mac_of(s));
            generate(&mut rules, &frame(s.port, s.vlan, &src, "02:00:00:00:00:ff"));
        }
        let mut got = std::collections::BTreeMap::new();
        for r in rules.iter().filter(|r| r.table == 10) {
            let (k, m) = (r.matched.key, r.matched.mask);
            proptest::prop_assert_eq!((m.vlan_tci, m.eth_dst), (0x0fff, [0xff; 6]));
            let port = match r.actions.as_slice() {
                [odpx_classifier::rules::RuleAction::Load { value, .. }] => *value as u32,
                other => panic!("{other:?}"),
            };
            proptest::prop_assert!(got.insert((k.vlan_tci, k.eth_dst), port).is_none(), "one rule each");
        }
        proptest::prop_assert_eq!(got, model(&seq));
    }
}
