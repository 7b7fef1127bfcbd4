//! Differential and soundness properties of the classifier tiers.
//!
//! * Rule tables vs a trivial linear classifier (highest priority, then
//!   earliest inserted) on random rule sets and packets.
//! * Wildcard soundness of a lookup: any packet that agrees with P on the
//!   bits the lookup reported gets the same rule.
//! * Megaflow soundness: any packet accepted by the megaflow generated for P
//!   gets the same datapath actions as P.
//! * Revalidation footprints: a rule added or deleted whose match overlaps
//!   none of a translation's lookup spaces (in its table) changes the
//!   actions of no packet of that megaflow (so the installed megaflow can
//!   stay as it is).
//! * Megaflow cache vs linear search, through inserts and removes.

use odpx_classifier::key::{attr, FlowKey, Match};
use odpx_classifier::megaflow::{MegaflowCache, BATCH};
use odpx_classifier::rules::{ofctl, Rule, RuleSet, Selector};
use odpx_classifier::xlate::{lookup_space, translate, FloodEnv};
use proptest::prelude::*;

const NETS: [&str; 4] = ["10.0.0.0", "10.1.0.0", "10.1.2.0", "192.168.1.0"];
const PLENS: [u32; 4] = [8, 16, 24, 32];

fn rule_text(table: u8) -> impl Strategy<Value = String> {
    let proto = prop_oneof![Just(""), Just("ip,"), Just("tcp,"), Just("udp,"), Just("arp,")];
    (
        proto,
        proptest::option::of(1u32..4),
        proptest::option::of((0usize..4, 0usize..4, any::<u8>())),
        proptest::option::of((0usize..4, 0usize..4)),
        proptest::option::of(prop_oneof![
            Just("tp_dst=80"),
            Just("tp_dst=443"),
            Just("tp_dst=0x400/0xfc00"),
            Just("tp_src=53")
        ]),
        proptest::option::of(prop_oneof![
            Just("dl_vlan=10"),
            Just("dl_vlan=0xffff"),
            Just("dl_dst=00:00:00:00:00:02")
        ]),
        1u16..6,
        0usize..14,
        1u32..5,
    )
        .prop_map(move |(proto, in_port, src, dst, l4, l2, prio, act, port)| {
            let mut s = format!("table={table},priority={prio},{proto}");
            if let Some(p) = in_port {
                s += &format!("in_port={p},");
            }
            let ipish = proto == "ip," || proto == "tcp," || proto == "udp," || proto == "arp,";
            if ipish {
                if let Some((n, l, low)) = src {
                    s += &format!("nw_src={}/{},", bump(NETS[n], low), PLENS[l]);
                }
                if let Some((n, l)) = dst {
                    s += &format!("nw_dst={}/{},", NETS[n], PLENS[l]);
                }
            }
            if proto == "tcp," || proto == "udp," {
                if let Some(l4) = l4 {
                    s += l4;
                    s += ",";
                }
            }
            if let Some(l2) = l2 {
                s += l2;
                s += ",";
            }
            let action = match act {
                0 => format!("output:{port}"),
                7 if table == 0 && proto == "ip," => format!("mod_nw_dst:10.1.2.{port},resubmit(,1)"),
                8 if table == 0 => format!("resubmit({port},1)"),
                9 if table == 0 => format!("mod_vlan_vid:{port},resubmit(,1)"),
                1 if table == 0 => "resubmit(,1)".to_string(),
                2 if proto == "ip," || proto == "tcp," => {
                    format!("mod_nw_dst:10.9.9.{port},output:{port}")
                }
                3 => format!("mod_vlan_vid:{port},output:1"),
                4 => format!("strip_vlan,output:{port}"),
                5 if table == 0 => "goto_table:1".to_string(),
                6 => "drop".to_string(),
                10..=13 => format!("group:{}", act - 9),
                _ => format!("output:{}", port + 1),
            };
            s + "actions=" + &action
        })
}

fn bump(net: &str, low: u8) -> String {
    let a: std::net::Ipv4Addr = net.parse().unwrap();
    std::net::Ipv4Addr::from(u32::from(a) | low as u32).to_string()
}

fn rule_set() -> impl Strategy<Value = Vec<String>> {
    (
        proptest::collection::vec(rule_text(0), 1..25),
        proptest::collection::vec(rule_text(1), 0..10),
    )
        .prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
}

fn packet() -> impl Strategy<Value = FlowKey> {
    (
        1u32..4,
        0usize..3,
        proptest::option::of(prop_oneof![Just(10u16), Just(20)]),
        0usize..3,
        (0usize..4, any::<u16>()),
        (0usize..4, any::<u16>()),
        0usize..3,
        prop_oneof![Just(80u16), Just(443), Just(53), Just(1027), any::<u16>()],
    )
        .prop_map(|(in_port, dst, vlan, et, (sn, slow), (dn, dlow), proto, port)| {
            let mut k = FlowKey::ZERO;
            k.attrs = attr::IN_PORT | attr::ETHERNET | attr::ETHERTYPE;
            k.in_port = in_port;
            k.eth_dst = [0, 0, 0, 0, 0, dst as u8 + 1];
            if let Some(v) = vlan {
                k.attrs |= attr::VLAN | attr::ENCAP;
                k.vlan_tpid = 0x8100;
                k.vlan_tci = v | 0x1000;
            }
            k.eth_type = [0x0800, 0x0806, 0x86dd][et];
            let ip = |n: usize, low: u16| u32::from(NETS[n].parse::<std::net::Ipv4Addr>().unwrap()) | low as u32;
            if et < 2 {
                k.attrs |= if et == 0 { attr::IPV4 } else { attr::ARP };
                k.ipv4_src = ip(sn, slow);
                k.ipv4_dst = ip(dn, dlow);
            }
            if et == 0 {
                k.ip_proto = [6, 17, 1][proto];
                k.attrs |= [attr::TCP, attr::UDP, attr::ICMP][proto];
                k.tp_dst = port;
                k.tp_src = port.rotate_left(3);
            }
            k
        })
}

/// The groups rules may send packets to (`group:1` to `group:4`): copies
/// that change the packet, a weighted select, a fast failover to a group,
/// a select hashing chosen fields.
const GROUPS: [&str; 4] = [
    "group_id=1,type=all,bucket=mod_nw_dst:10.9.9.9,output:2,bucket=output:3,bucket=mod_vlan_vid:7,resubmit(,1)",
    "group_id=2,type=select,bucket=output:1,bucket=weight:2,mod_dl_src:00:00:00:00:00:09,output:2,\
     bucket=output:3,bucket=weight:0,output:4",
    "group_id=3,type=ff,bucket=watch_port:2,actions=group:2,bucket=watch_port:1,actions=output:1",
    "group_id=4,type=select,selection_method=hash,fields(nw_dst,tp_src,dl_vlan),bucket=output:1,bucket=output:2",
];

fn load(texts: &[String], round_pins: bool) -> (RuleSet, Vec<Rule>) {
    let mut rs = RuleSet::new();
    for g in GROUPS {
        let g = ofctl::parse_group(g).unwrap();
        rs.groups().check(&g, false).unwrap();
        rs.groups_mut().put(g);
    }
    rs.set_prefix_pin_rounding(round_pins);
    let mut linear: Vec<Rule> = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let r = ofctl::parse_rule(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        let seq = i as u64;
        // OpenFlow add replaces an identical (table, priority, match).
        linear.retain(|o| !(o.table == r.table && o.priority == r.priority && o.matched == r.matched));
        rs.add(r.clone());
        linear.push(Rule { seq, ..r });
    }
    (rs, linear)
}

fn linear_lookup<'a>(rules: &'a [Rule], table: u8, k: &FlowKey) -> Option<&'a Rule> {
    rules
        .iter()
        .filter(|r| r.table == table && r.matches(k))
        .max_by(|a, b| a.priority.cmp(&b.priority).then(b.seq.cmp(&a.seq)))
}

/// A packet that agrees with `p` on every bit of `mask` and takes the
/// other bits from `other` (a packet of the same small universe, so that the
/// mix often lands on rule values; uniform noise almost never would).
fn perturb(p: &FlowKey, mask: &FlowKey, other: &FlowKey) -> FlowKey {
    let (pw, mw, ow) = (p.words(), mask.words(), other.words());
    let mut q = FlowKey::from_words(std::array::from_fn(|i| (pw[i] & mw[i]) | (ow[i] & !mw[i])));
    q._pad = 0;
    q
}

fn noise() -> impl Strategy<Value = FlowKey> {
    packet()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn rule_lookup_matches_linear_reference(texts in rule_set(), pkts in proptest::collection::vec(packet(), 20), round in any::<bool>()) {
        let (rs, linear) = load(&texts, round);
        for k in &pkts {
            for table in 0..2u8 {
                let mut wc = FlowKey::ZERO;
                let got = rs.lookup(table, k, &mut wc).map(|r| (r.priority, r.matched, r.actions.clone()));
                let want = linear_lookup(&linear, table, k).map(|r| (r.priority, r.matched, r.actions.clone()));
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn lookup_wildcards_are_sound(texts in rule_set(), p in packet(), noises in proptest::collection::vec(noise(), 24), round in any::<bool>()) {
        let (rs, _) = load(&texts, round);
        for table in 0..2u8 {
            let mut wc = FlowKey::ZERO;
            let want = rs.lookup(table, &p, &mut wc).map(|r| r.seq);
            for n in &noises {
                let q = perturb(&p, &wc, n);
                let mut wc2 = FlowKey::ZERO;
                prop_assert_eq!(rs.lookup(table, &q, &mut wc2).map(|r| r.seq), want);
            }
        }
    }

    #[test]
    fn megaflows_are_sound(texts in rule_set(), p in packet(), noises in proptest::collection::vec(noise(), 24), round in any::<bool>()) {
        let (rs, _) = load(&texts, round);
        let mut env = FloodEnv { ports: vec![1, 2, 3] };
        let t = translate(&rs, &p, &mut env);
        prop_assert!(t.megaflow.matches(&p));
        for n in &noises {
            let q = perturb(&p, &t.megaflow.mask, n);
            prop_assert!(t.megaflow.matches(&q));
            let tq = translate(&rs, &q, &mut env);
            prop_assert_eq!(&tq.actions, &t.actions, "packet {:?} vs {:?}\nmegaflow {:?}", q, p, t.megaflow);
        }
    }

    #[test]
    fn rule_changes_outside_the_lookup_spaces_change_nothing(
        texts in rule_set(),
        extra in prop_oneof![rule_text(0), rule_text(1)],
        victim in any::<prop::sample::Index>(),
        p in packet(),
        noises in proptest::collection::vec(noise(), 12),
    ) {
        let (rs, _) = load(&texts, true);
        let mut env = FloodEnv { ports: vec![1, 2, 3] };
        let t = translate(&rs, &p, &mut env);
        let touches = |r: &Rule| {
            t.lookups.iter().any(|l| l.table == r.table && r.matched.overlaps(&lookup_space(&t.megaflow, l)))
        };
        let added = ofctl::parse_rule(&extra).unwrap();
        let mut with_added = rs.clone();
        with_added.add(added.clone());
        let victim_rule = rs.iter().nth(victim.index(rs.len())).unwrap().clone();
        let mut with_deleted = rs.clone();
        with_deleted.delete(&Selector::matching(Some(victim_rule.table), victim_rule.matched, Some(victim_rule.priority)));
        let mut qs = vec![p];
        qs.extend(noises.iter().map(|n| perturb(&p, &t.megaflow.mask, n)));
        for (changed, rule) in [(&with_added, &added), (&with_deleted, &victim_rule)] {
            if touches(rule) {
                continue;
            }
            for q in &qs {
                let before = translate(&rs, q, &mut env);
                let after = translate(changed, q, &mut env);
                prop_assert_eq!(&after.actions, &before.actions, "rule {:?} changed packet {:?}", rule, q);
            }
        }
    }

    #[test]
    fn megaflow_cache_matches_linear_search(
        flows in proptest::collection::vec((packet(), 0usize..6), 1..60),
        probes in proptest::collection::vec(packet(), BATCH),
        removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        // Masks from a small family so subtables are shared.
        let masks: Vec<FlowKey> = (0..6).map(|i| {
            let mut m = FlowKey::ZERO;
            m.in_port = !0;
            if i & 1 != 0 { m.ipv4_dst = 0xffff_0000; }
            if i & 2 != 0 { m.tp_dst = 0xff00; m.ip_proto = 0xff; }
            if i >= 4 { m.eth_dst = [0xff; 6]; }
            m
        }).collect();
        let mut cache: MegaflowCache<usize> = MegaflowCache::new(1000);
        let mut live: Vec<(odpx_classifier::megaflow::FlowRef, Match)> = Vec::new();
        for (i, (k, mi)) in flows.iter().enumerate() {
            let m = Match::new(*k, masks[*mi]);
            let r = cache.insert(m, i, 0).unwrap();
            live.retain(|(lr, _)| *lr != r);
            live.push((r, m));
        }
        for idx in &removals {
            if live.is_empty() { break; }
            let (r, _) = live.remove(idx.index(live.len()));
            prop_assert!(cache.remove(r).is_some());
        }
        prop_assert_eq!(cache.len(), live.len());
        let mut out = [None; BATCH];
        let hits = cache.lookup_batch(&probes, &mut out);
        for (i, k) in probes.iter().enumerate() {
            let any_match = live.iter().any(|(_, m)| m.matches(k));
            prop_assert_eq!(hits & (1 << i) != 0, any_match);
            match out[i] {
                Some(r) => {
                    let f = cache.get(r).expect("live reference");
                    prop_assert!(f.matched.matches(k));
                    prop_assert!(live.iter().any(|(lr, _)| *lr == r));
                }
                None => prop_assert!(!any_match),
            }
            prop_assert_eq!(cache.lookup(k).is_some(), any_match);
        }
    }
}
