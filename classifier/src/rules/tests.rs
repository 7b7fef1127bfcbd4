use super::*;

fn rules(text: &str) -> RuleSet {
    let mut rs = RuleSet::new();
    // These tests check the trie's own pins; rounding has its own test.
    rs.set_prefix_pin_rounding(false);
    for r in ofctl::parse_rules(text).unwrap() {
        rs.add(r);
    }
    rs
}

fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], dport: u16) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.in_port = 1;
    k.eth_type = 0x0800;
    k.ip_proto = 6;
    k.ipv4_src = u32::from_be_bytes(src);
    k.ipv4_dst = u32::from_be_bytes(dst);
    k.tp_dst = dport;
    k
}

#[test]
fn priority_wins_and_wildcards_are_reported() {
    let rs = rules("priority=10,ip,nw_dst=10.0.0.0/8,actions=output:2\npriority=20,tcp,nw_dst=10.1.0.0/16,tp_dst=80,actions=output:3\n");
    let mut wc = FlowKey::ZERO;
    let r = rs
        .lookup(0, &ipv4_tcp([1, 1, 1, 1], [10, 1, 2, 3], 80), &mut wc)
        .unwrap();
    assert_eq!(r.priority, 20);
    assert_eq!(wc.tp_dst, 0xffff);
    let mut wc = FlowKey::ZERO;
    let r = rs
        .lookup(0, &ipv4_tcp([1, 1, 1, 1], [10, 2, 2, 3], 80), &mut wc)
        .unwrap();
    assert_eq!(r.priority, 10);
    // The /16 subtable was skipped by the trie: the port was never consulted.
    assert_eq!(wc.tp_dst, 0);
    assert_eq!(wc.ipv4_src, 0);
}

#[test]
fn trie_pins_only_the_bits_that_decide() {
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!("priority=32,ip,nw_dst=10.0.{i}.1,actions=output:1\n"));
    }
    text.push_str("priority=8,ip,nw_dst=20.0.0.0/8,actions=output:2\n");
    let rs = rules(&text);
    let mut wc = FlowKey::ZERO;
    let r = rs
        .lookup(0, &ipv4_tcp([1, 1, 1, 1], [20, 5, 6, 7], 80), &mut wc)
        .unwrap();
    assert_eq!(r.priority, 8);
    // 20.x leaves the trie after a few bits; /8 is the widest correct answer.
    assert_eq!(wc.ipv4_dst, 0xff00_0000);
}

/// Asserts that `q`, if it agrees with `p` on the reported wildcards,
/// gets the same rule.
fn assert_sound(rs: &RuleSet, p: &FlowKey, q: &FlowKey) -> FlowKey {
    let mut wc = FlowKey::ZERO;
    let want = rs.lookup(0, p, &mut wc).map(|r| r.seq);
    if q.masked_eq(p, &wc) {
        let mut wc2 = FlowKey::ZERO;
        assert_eq!(rs.lookup(0, q, &mut wc2).map(|r| r.seq), want, "wc {wc:?}");
    }
    wc
}

#[test]
fn trie_skip_of_a_shorter_prefix_pins_its_length() {
    // /16 skipped (10.1/16 is on the trie path but not a rule), then the
    // priority-8 rule ends the search before the /24 subtable.
    let rs = rules("priority=10,ip,nw_dst=10.0.0.0/16,actions=output:1\npriority=8,ip,actions=output:2\npriority=5,ip,nw_dst=10.1.2.0/24,actions=output:3\n");
    let p = ipv4_tcp([1, 1, 1, 1], [10, 1, 9, 9], 80);
    let wc = assert_sound(&rs, &p, &ipv4_tcp([1, 1, 1, 1], [10, 0, 9, 9], 80));
    assert_eq!(wc.ipv4_dst, 0xffff_0000);
}

#[test]
fn trie_skip_of_a_longer_prefix_pins_where_the_path_leaves() {
    let rs = rules("priority=10,ip,nw_dst=10.1.2.0/24,actions=output:1\npriority=8,ip,nw_dst=10.1.3.0/24,actions=output:4\npriority=1,ip,actions=output:2\n");
    // 10.1.0.9 leaves the trie at bit 23 (10.1.2 and 10.1.3 share 23 bits).
    let p = ipv4_tcp([1, 1, 1, 1], [10, 1, 0, 9], 80);
    let wc = assert_sound(&rs, &p, &ipv4_tcp([1, 1, 1, 1], [10, 1, 2, 9], 80));
    assert_eq!(wc.ipv4_dst, 0xffff_fe00);
    // 10.1.9.9 leaves the path of 10.1.2.0/24 at bit 21.
    let rs = rules("priority=10,ip,nw_dst=10.1.2.0/24,actions=output:1\npriority=1,ip,actions=output:2\n");
    let wc = assert_sound(
        &rs,
        &ipv4_tcp([1, 1, 1, 1], [10, 1, 9, 9], 80),
        &ipv4_tcp([1, 1, 1, 1], [10, 1, 2, 9], 80),
    );
    assert_eq!(wc.ipv4_dst, 0xffff_f800);
}

#[test]
fn rounding_pins_to_rule_lengths_keeps_masks_few() {
    let text = "priority=10,ip,nw_dst=10.1.2.0/24,actions=output:1\npriority=8,ip,nw_dst=10.1.3.0/24,actions=output:4\npriority=1,ip,actions=output:2\n";
    let mut rs = rules(text);
    rs.set_prefix_pin_rounding(true);
    // Raw pin would be /23 (see above); the table only uses /24.
    let p = ipv4_tcp([1, 1, 1, 1], [10, 1, 0, 9], 80);
    let wc = assert_sound(&rs, &p, &ipv4_tcp([1, 1, 1, 1], [10, 1, 1, 9], 80));
    assert_eq!(wc.ipv4_dst, 0xffff_ff00);
    // Many packets, few distinct masks.
    let masks: std::collections::HashSet<u32> = (0..=255u8)
        .map(|b| {
            let mut wc = FlowKey::ZERO;
            rs.lookup(0, &ipv4_tcp([1, 1, 1, 1], [10, 1, b, 9], 80), &mut wc);
            wc.ipv4_dst
        })
        .collect();
    assert_eq!(masks.len(), 1, "{masks:x?}");
    // A pin that already is a rule length stays as it is.
    let mut rs = rules("priority=10,ip,nw_dst=10.0.0.0/16,actions=output:1\npriority=8,ip,actions=output:2\npriority=5,ip,nw_dst=10.1.2.0/24,actions=output:3\n");
    rs.set_prefix_pin_rounding(true);
    let p = ipv4_tcp([1, 1, 1, 1], [10, 1, 9, 9], 80);
    let wc = assert_sound(&rs, &p, &ipv4_tcp([1, 1, 1, 1], [10, 0, 9, 9], 80));
    assert_eq!(wc.ipv4_dst, 0xffff_0000);
}

#[test]
fn replace_and_delete() {
    let mut rs = rules("priority=5,in_port=1,actions=output:2\n");
    let again = ofctl::parse_rules("priority=5,in_port=1,actions=output:3").unwrap();
    assert!(rs.add(again[0].clone()).is_some());
    assert_eq!(rs.len(), 1);
    let m = ofctl::parse_rules("in_port=1,actions=drop").unwrap()[0].matched;
    assert_eq!(rs.delete(&Selector::matching(None, m, None)).len(), 1);
    assert!(rs.is_empty());
    assert_eq!(rs.subtable_count(0), 0);
}

#[test]
fn strict_selection_finds_the_one_rule_in_any_table() {
    let mut rs = rules(
        "table=0,priority=5,in_port=1,actions=output:2\n\
         table=3,priority=5,in_port=1,actions=output:3\n\
         table=3,priority=6,in_port=1,actions=output:4\n\
         table=3,cookie=0x7,priority=5,in_port=2,actions=output:4\n",
    );
    let m = |text: &str| ofctl::parse_rules(text).unwrap()[0].matched;
    // Every table (0xff): the table-0 and table-3 rules of priority 5.
    let sel = Selector::matching(None, m("in_port=1,actions=drop"), Some(5));
    assert_eq!(rs.select(&sel).len(), 2);
    // One table, and the cookie must agree too.
    let mut sel = Selector::matching(Some(3), m("in_port=2,actions=drop"), Some(5));
    (sel.cookie, sel.cookie_mask) = (0x8, !0);
    assert!(rs.delete(&sel).is_empty());
    sel.cookie = 0x7;
    assert_eq!(rs.delete(&sel).len(), 1);
    // A table that holds nothing, and one past the last.
    assert!(rs
        .delete(&Selector::matching(Some(1), m("in_port=1,actions=drop"), Some(5)))
        .is_empty());
    assert!(rs
        .delete(&Selector::matching(Some(200), m("in_port=1,actions=drop"), Some(5)))
        .is_empty());
    let gone = rs.delete(&Selector::matching(None, m("in_port=1,actions=drop"), Some(5)));
    assert_eq!(gone.iter().map(|r| r.table).collect::<Vec<_>>(), vec![0, 3]);
    assert_eq!(rs.len(), 1, "the priority-6 rule stays");
}

#[test]
fn a_bulk_delete_leaves_the_same_lookups_as_one_by_one() {
    let mut text = String::from("priority=1,actions=drop\ntable=1,priority=7,ip,nw_dst=10.0.0.0/8,actions=output:3\n");
    for i in 0..3000 {
        text += &format!(
            "priority=100,ip,nw_dst=172.16.{}.{},actions=output:2\n",
            i / 250,
            i % 250 + 1
        );
    }
    text += "priority=200,ip,nw_dst=172.16.0.1,tcp,tp_dst=80,actions=output:4\n";
    let m = ofctl::parse_rules("ip,nw_dst=172.16.0.0/16,actions=drop").unwrap()[0].matched;
    let sel = Selector::matching(Some(0), m, None);
    // The same 3001 rules go, in bulk (more than half) and one by one
    // (the same selection from a set where they are fewer than half).
    let mut bulk = rules(&text);
    let mut filler = String::new();
    for i in 0..7000 {
        filler += &format!("table=2,priority=5,in_port={i},actions=drop\n");
    }
    let mut single = rules(&(text.clone() + &filler));
    assert_eq!(bulk.delete(&sel).len(), 3001);
    assert_eq!(single.delete(&sel).len(), 3001);
    assert_eq!(bulk.len(), 2);
    assert_eq!(single.len(), 7002);
    for (table, dst, port) in [(0, [172, 16, 0, 1], 80), (0, [10, 1, 1, 1], 80), (1, [10, 2, 2, 2], 22)] {
        let k = ipv4_tcp([1, 1, 1, 1], dst, port);
        let (mut wb, mut ws) = (FlowKey::ZERO, FlowKey::ZERO);
        let b = bulk.lookup(table, &k, &mut wb).map(|r| r.actions.clone());
        let s = single.lookup(table, &k, &mut ws).map(|r| r.actions.clone());
        assert_eq!(b, s, "table {table} {dst:?}");
        assert!(b.is_some());
        assert_eq!(wb, ws, "the same bits consulted");
    }
    // The set goes on: rules in again, found, deleted again.
    bulk.add(
        ofctl::parse_rules("priority=100,ip,nw_dst=172.16.0.9,actions=output:5")
            .unwrap()
            .remove(0),
    );
    let mut wc = FlowKey::ZERO;
    let hit = bulk
        .lookup(0, &ipv4_tcp([1, 1, 1, 1], [172, 16, 0, 9], 1), &mut wc)
        .unwrap();
    assert_eq!(hit.priority, 100);
    assert_eq!(bulk.len(), 3);
    assert_eq!(bulk.delete(&Selector::all(None)).len(), 3);
    assert!(bulk.is_empty());
}
