//! Groups in translation: which buckets a packet takes, each on its own
//! copy of the packet, and what the megaflow must pin for that choice.
//!
//! # Buckets are copies
//! A group's bucket works on a copy of the packet: what it changes is not
//! seen by the actions after the `group` action, nor by the next bucket.
//! The translator commits the packet as it stands, runs the bucket, and
//! restores its working key afterwards. A bucket whose datapath actions
//! change the packet (a set, a push, a pop) is wrapped in a datapath
//! `clone`, so the kernel and the PMDs also change only a copy; a bucket
//! that only outputs needs no copy.
//!
//! # Choices and the megaflow
//! * `all` takes every bucket, `indirect` its one: nothing to pin.
//! * `fast_failover` takes the first live bucket. Liveness depends on port
//!   state only, never on the packet; a port going down or up revalidates
//!   every megaflow, so nothing is pinned either.
//! * `select` hashes the Ethernet addresses, the Ethertype, the VLAN ID,
//!   the IP (or ARP) addresses, the IP protocol and the transport ports (symmetrically:
//!   both directions of a connection take the same bucket, as Open
//!   vSwitch's default), and pins exactly those fields, so each megaflow
//!   is one flow of the hash and every datapath (the kernel's included)
//!   spreads flows over the buckets without a datapath hash. The weighted
//!   choice is by hash threshold: the hash modulo the live buckets' total
//!   weight falls into one bucket's share. A select group with one live
//!   bucket hashes nothing and pins nothing. With
//!   `selection_method=hash,fields(...)`, the hash is of those fields
//!   only, and only they are pinned (a field the packet lacks is left
//!   out, after pinning the Ethertype or protocol that says so).
//!
//! # Liveness (as Open vSwitch)
//! A bucket is live when it watches nothing, or its watched port is live
//! (the [`super::SwitchEnv`] says), or its watched group is (it has a live
//! bucket), following `watch_group` at most
//! [`MAX_LIVENESS_DEPTH`] deep. A select bucket of weight 0 is never live.
//!
//! # Bucket actions and prerequisites
//! A bucket's actions were not checked against any rule's match, so an
//! action whose field the packet lacks (a `set_field` of an IP address on
//! an ARP packet) is skipped, after pinning what told it (the Ethertype,
//! the IP protocol): as Open vSwitch does at translation time.

use super::{mpls, Xlate, MAX_RESUBMIT_DEPTH};
use crate::key::{attr, FlowKey, Match, VLAN_CFI};
use crate::odp::OdpAction;
use crate::rules::field::Field;
use crate::rules::group::{Bucket, Group, GroupKind, Selection, MAX_LIVENESS_DEPTH};
use crate::rules::ofctl::check_action_prereqs;
use crate::rules::RuleAction;

/// One use of a group by a translation, for its counters: the group
/// itself (`bucket: None`, once per packet that reached it) or one of its
/// buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupUse {
    pub group: u32,
    pub bucket: Option<u32>,
}

/// The working state a bucket may change and must give back.
struct PacketState {
    flow: FlowKey,
    committed_tags: u8,
    vlan_written: u16,
    written: FlowKey,
    vlan_touched: bool,
    l3_unknown: bool,
    halted: bool,
    current: super::RuleContext,
}

impl Xlate<'_> {
    /// `group:id`: the packet through the group's chosen buckets.
    pub(super) fn group(&mut self, id: u32, table: u8, depth: usize) {
        if depth >= MAX_RESUBMIT_DEPTH {
            self.too_deep = true;
            return;
        }
        let rules = self.rules;
        let Some(g) = rules.groups().get(id) else {
            // Rules never name a missing group (the group table's
            // invariant); a packet-out may: it is dropped there.
            self.step(table, depth, Some(format!("group:{id} does not exist: dropped")));
            return;
        };
        self.groups.push(GroupUse {
            group: id,
            bucket: None,
        });
        match g.kind {
            GroupKind::All => {
                for i in 0..g.buckets.len() {
                    self.bucket(g, i, table, depth);
                }
            }
            GroupKind::Indirect => self.bucket(g, 0, table, depth),
            GroupKind::FastFailover => {
                if let Some(i) = (0..g.buckets.len()).find(|&i| self.bucket_live(g, &g.buckets[i], 0)) {
                    self.bucket(g, i, table, depth);
                }
            }
            GroupKind::Select => {
                if let Some(i) = self.select(g) {
                    self.bucket(g, i, table, depth);
                }
            }
        }
    }

    fn bucket_live(&self, g: &Group, b: &Bucket, depth: usize) -> bool {
        if depth >= MAX_LIVENESS_DEPTH || (g.kind == GroupKind::Select && b.weight == 0) {
            return false;
        }
        !b.watches()
            || b.watch_port.is_some_and(|p| self.env.port_live(p))
            || b.watch_group.is_some_and(|w| self.group_live(w, depth + 1))
    }

    fn group_live(&self, id: u32, depth: usize) -> bool {
        self.rules
            .groups()
            .get(id)
            .is_some_and(|g| g.buckets.iter().any(|b| self.bucket_live(g, b, depth)))
    }

    /// The select group's bucket for this packet (see "Choices").
    fn select(&mut self, g: &Group) -> Option<usize> {
        let live: Vec<usize> = (0..g.buckets.len())
            .filter(|&i| self.bucket_live(g, &g.buckets[i], 0))
            .collect();
        if live.len() <= 1 {
            return live.first().copied();
        }
        let total: u64 = live.iter().map(|&i| u64::from(g.buckets[i].weight)).sum();
        let hash = match &g.selection {
            Selection::Hash(fields) => self.fields_hash(fields),
            Selection::Default | Selection::DpHash => self.flow_hash(),
        };
        let mut share = hash % total;
        for &i in &live {
            let w = u64::from(g.buckets[i].weight);
            if share < w {
                return Some(i);
            }
            share -= w;
        }
        None
    }

    /// The symmetric hash a select group chooses by, pinning what it read.
    fn flow_hash(&mut self) -> u64 {
        let f = self.flow;
        let wc = &mut self.wc;
        let mut h = Hash::default();
        wc.eth_src = [0xff; 6];
        wc.eth_dst = [0xff; 6];
        wc.eth_type = !0;
        h.pair(mac_word(&f.eth_src), mac_word(&f.eth_dst));
        h.add(u64::from(f.eth_type));
        // Whether there is a tag is read too: an untagged packet's
        // megaflow must not take tagged ones.
        wc.attrs |= attr::VLAN;
        wc.vlan_tci |= 0x0fff | VLAN_CFI;
        if f.has(attr::VLAN) {
            h.add(u64::from(f.vlan_tci & 0x0fff));
        }
        let ip = match f.eth_type {
            0x0800 => {
                (wc.ipv4_src, wc.ipv4_dst) = (!0, !0);
                h.pair(u64::from(f.ipv4_src), u64::from(f.ipv4_dst));
                true
            }
            // ARP's addresses too: hosts behind one router differ only there.
            0x0806 | 0x8035 => {
                (wc.ipv4_src, wc.ipv4_dst) = (!0, !0);
                h.pair(u64::from(f.ipv4_src), u64::from(f.ipv4_dst));
                false
            }
            0x86dd => {
                (wc.ipv6_src, wc.ipv6_dst) = ([0xff; 16], [0xff; 16]);
                let (s, d) = (u128::from_be_bytes(f.ipv6_src), u128::from_be_bytes(f.ipv6_dst));
                h.pair(s as u64 ^ (s >> 64) as u64, d as u64 ^ (d >> 64) as u64);
                true
            }
            _ => false,
        };
        if ip {
            wc.ip_proto = !0;
            // Later fragments carry no ports: they are flows of their own.
            wc.ip_frag = !0;
            h.add(u64::from(f.ip_proto));
            if matches!(f.ip_proto, 6 | 17 | 132) {
                (wc.tp_src, wc.tp_dst) = (!0, !0);
                h.pair(u64::from(f.tp_src), u64::from(f.tp_dst));
            }
        }
        h.finish()
    }

    /// The hash of `selection_method=hash,fields(...)`: those fields'
    /// values, each pinned, a field the packet lacks (its prerequisite
    /// unmet, which is pinned too) left out.
    fn fields_hash(&mut self, fields: &[Field]) -> u64 {
        let mut h = Hash::default();
        for &f in fields {
            let set = RuleAction::SetField {
                field: f,
                value: 0,
                mask: f.full_mask(),
            };
            if !self.prereqs_hold(&set) {
                continue;
            }
            f.put(&mut self.wc, f.full_mask(), f.full_mask());
            let v = f.get(&self.flow);
            h.add(v as u64);
            h.add((v >> 64) as u64);
        }
        h.finish()
    }

    /// Runs bucket `i` of `g` on a copy of the packet (see "Buckets are
    /// copies").
    fn bucket(&mut self, g: &Group, i: usize, table: u8, depth: usize) {
        let Some(b) = g.buckets.get(i) else {
            return;
        };
        self.groups.push(GroupUse {
            group: g.id,
            bucket: Some(i as u32),
        });
        self.commit();
        let saved = self.save_packet();
        let start = self.out.len();
        for a in &b.actions {
            if self.too_deep || self.halted || self.frozen.is_some() {
                break;
            }
            if self.l3_unknown && mpls::needs_l3(a) {
                self.step(
                    table,
                    depth,
                    Some(format!("group:{}: a bucket cannot read under MPLS", g.id)),
                );
                self.out.truncate(start);
                break;
            }
            if !self.prereqs_hold(a) {
                continue;
            }
            self.action(a, table, depth + 1);
        }
        if self.frozen.take().is_some() {
            // A bucket does not recirculate: its copy is dropped.
            self.step(
                table,
                depth,
                Some(format!("group:{}: a bucket cannot recirculate", g.id)),
            );
            self.out.truncate(start);
        }
        let changes_packet = self.out[start..]
            .iter()
            .any(|a| !matches!(a, OdpAction::Output(_) | OdpAction::Userspace { .. }));
        if changes_packet {
            let inner = self.out.split_off(start);
            self.out.push(OdpAction::Clone(inner));
        }
        self.restore_packet(saved);
    }

    /// Whether the packet has what `a` writes, pinning what that took.
    fn prereqs_hold(&mut self, a: &RuleAction) -> bool {
        let mut mask = FlowKey::ZERO;
        for f in [None, Some(Field::DlType), Some(Field::NwProto), Some(Field::IcmpType)] {
            if let Some(f) = f {
                f.put(&mut mask, u128::MAX, u128::MAX);
                f.put(&mut self.wc, u128::MAX, u128::MAX);
            }
            if check_action_prereqs(a, &Match::new(self.flow.masked(&mask), mask)).is_ok() {
                return true;
            }
        }
        false
    }

    fn save_packet(&self) -> PacketState {
        PacketState {
            flow: self.flow,
            committed_tags: self.committed_tags,
            vlan_written: self.vlan_written,
            written: self.written,
            vlan_touched: self.vlan_touched,
            l3_unknown: self.l3_unknown,
            halted: self.halted,
            current: self.current,
        }
    }

    /// Back to the packet as it was before a bucket: what the bucket
    /// wrote but did not output is forgotten.
    fn restore_packet(&mut self, s: PacketState) {
        self.flow = s.flow;
        self.committed_tags = s.committed_tags;
        self.vlan_written = s.vlan_written;
        self.written = s.written;
        self.vlan_touched = s.vlan_touched;
        self.l3_unknown = s.l3_unknown;
        self.halted = s.halted;
        self.current = s.current;
        self.pending = FlowKey::ZERO;
        self.vlan_dirty = false;
    }
}

fn mac_word(m: &[u8; 6]) -> u64 {
    m.iter().fold(0, |w, &b| w << 8 | u64::from(b))
}

/// A small, fixed mixing hash (the same on every run and every machine:
/// a flow keeps its bucket across restarts).
#[derive(Default)]
struct Hash(u64);

impl Hash {
    fn add(&mut self, v: u64) {
        self.0 = mix(self.0 ^ v);
    }

    /// Two values in either order give the same hash.
    fn pair(&mut self, a: u64, b: u64) {
        self.add(a.wrapping_add(b));
        self.add(a ^ b);
    }

    fn finish(&self) -> u64 {
        mix(self.0)
    }
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::super::{translate, FloodEnv, SwitchEnv};
    use super::GroupUse;
    use crate::key::FlowKey;
    use crate::odp::{actions::format_actions, format_match, parse_key};
    use crate::rules::ofctl::{parse_group, parse_rules};
    use crate::rules::RuleSet;

    fn pipeline(rules: &str, groups: &[&str]) -> RuleSet {
        let mut r = RuleSet::new();
        for g in groups {
            let g = parse_group(g).unwrap();
            r.groups().check(&g, false).unwrap();
            r.groups_mut().put(g);
        }
        for rule in parse_rules(rules).unwrap() {
            r.add(rule);
        }
        r
    }

    fn tcp(src: &str, dst: &str, sport: u16, dport: u16) -> FlowKey {
        parse_key(&format!(
            "in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),\
             ipv4(src={src},dst={dst},proto=6,tos=0,ttl=64,frag=no),tcp(src={sport},dst={dport})"
        ))
        .unwrap()
        .matched
        .key
    }

    /// Ports 1-4, some of them down.
    struct Links {
        down: Vec<u32>,
    }

    impl SwitchEnv for Links {
        fn flood_ports(&self, in_port: u32) -> Vec<u32> {
            (1..5).filter(|&p| p != in_port).collect()
        }
        fn normal_lookup(&mut self, _key: &FlowKey) -> Option<u32> {
            None
        }
        fn port_live(&self, port: u32) -> bool {
            !self.down.contains(&port)
        }
    }

    #[test]
    fn all_copies_the_packet_to_every_bucket() {
        let r = pipeline(
            "in_port=1,actions=group:1,output:4",
            &["group_id=1,type=all,bucket=output:2,bucket=mod_dl_dst:00:00:00:00:00:09,output:3,bucket=output:1"],
        );
        let t = translate(&r, &tcp("10.0.0.1", "10.0.0.2", 1, 2), &mut FloodEnv { ports: vec![] });
        // The second bucket's change stays in its copy: port 4 gets the
        // packet as it came; the third bucket's output to the input port
        // sends nothing.
        assert_eq!(
            format_actions(&t.actions),
            "2,clone(set(eth(dst=00:00:00:00:00:09)),3),4"
        );
        assert_eq!(format_match(&t.megaflow), "in_port(1),eth()");
        let uses = |b: Option<u32>| GroupUse { group: 1, bucket: b };
        assert_eq!(t.groups, vec![uses(None), uses(Some(0)), uses(Some(1)), uses(Some(2))]);
    }

    #[test]
    fn select_spreads_flows_by_weight_and_pins_what_it_hashed() {
        let r = pipeline(
            "in_port=1,actions=group:1",
            &["group_id=1,type=select,bucket=weight:1,output:2,bucket=weight:2,output:3,bucket=weight:0,output:4"],
        );
        let mut env = FloodEnv { ports: vec![] };
        let mut to = [0usize; 5];
        for i in 0..3000u32 {
            let k = tcp(
                &format!("10.0.{}.{}", i / 250, i % 250),
                "10.9.0.1",
                1000 + i as u16,
                80,
            );
            let t = translate(&r, &k, &mut env);
            let port = format_actions(&t.actions).parse::<usize>().unwrap();
            to[port] += 1;
            if i == 0 {
                assert_eq!(
                    format_match(&t.megaflow),
                    "in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),\
                     ipv4(src=10.0.0.0,dst=10.9.0.1,proto=6,frag=no),tcp(src=1000,dst=80)"
                );
                // The reply takes the same bucket.
                let mut back = tcp("10.9.0.1", "10.0.0.0", 80, 1000);
                (back.eth_src, back.eth_dst) = (k.eth_dst, k.eth_src);
                assert_eq!(translate(&r, &back, &mut env).actions, t.actions);
            }
        }
        assert_eq!(to[4], 0, "a bucket of weight 0 is never chosen");
        assert!((900..1100).contains(&to[2]) && (1900..2100).contains(&to[3]), "{to:?}");
        // Hashing chosen fields pins those only.
        let by_dst = pipeline(
            "in_port=1,actions=group:1",
            &["group_id=1,type=select,selection_method=hash,fields(ip_dst),bucket=output:2,bucket=output:3"],
        );
        let t = translate(&by_dst, &tcp("10.0.0.1", "10.0.0.2", 1, 2), &mut env);
        assert_eq!(
            format_match(&t.megaflow),
            "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2)"
        );
        let spread: std::collections::HashSet<String> = (0..64)
            .map(|i| {
                format_actions(&translate(&by_dst, &tcp("10.0.0.1", &format!("10.0.1.{i}"), 1, 2), &mut env).actions)
            })
            .collect();
        assert_eq!(spread.len(), 2, "both buckets: {spread:?}");
        // One live bucket: nothing hashed, nothing pinned.
        let one = pipeline("in_port=1,actions=group:1", &["group_id=1,type=select,bucket=output:2"]);
        let t = translate(&one, &tcp("10.0.0.1", "10.0.0.2", 1, 2), &mut env);
        assert_eq!(format_match(&t.megaflow), "in_port(1),eth()");
    }

    #[test]
    fn fast_failover_takes_the_first_live_bucket() {
        let r = pipeline(
            "in_port=1,actions=group:1",
            &[
                "group_id=2,type=ff,bucket=watch_port:4,actions=output:4",
                "group_id=1,type=ff,bucket=watch_port:2,actions=output:2,\
                 bucket=watch_group:2,actions=output:3,bucket=watch_port:1,actions=output:4",
            ],
        );
        let k = tcp("10.0.0.1", "10.0.0.2", 1, 2);
        let out = |down: Vec<u32>| format_actions(&translate(&r, &k, &mut Links { down }).actions);
        assert_eq!(out(vec![]), "2");
        assert_eq!(out(vec![2]), "3");
        assert_eq!(
            out(vec![2, 4]),
            "4",
            "group 2 is dead with port 4: the bucket watching it too"
        );
    }

    #[test]
    fn bucket_actions_the_packet_cannot_take_are_skipped() {
        let r = pipeline(
            "in_port=1,actions=group:1",
            &["group_id=1,type=indirect,bucket=mod_tp_dst:99,output:2"],
        );
        let arp = parse_key(
            "in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0806),\
             arp(sip=10.0.0.1,tip=10.0.0.2,op=1,sha=00:00:00:00:00:01,tha=00:00:00:00:00:00)",
        )
        .unwrap()
        .matched
        .key;
        let t = translate(&r, &arp, &mut FloodEnv { ports: vec![] });
        assert_eq!(format_actions(&t.actions), "2");
        assert_eq!(format_match(&t.megaflow), "in_port(1),eth(),eth_type(0x0806)");
        let t = translate(&r, &tcp("10.0.0.1", "10.0.0.2", 1, 2), &mut FloodEnv { ports: vec![] });
        assert_eq!(format_actions(&t.actions), "clone(set(tcp(dst=99)),2)");
        assert_eq!(
            format_match(&t.megaflow),
            "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6)"
        );
    }
}
