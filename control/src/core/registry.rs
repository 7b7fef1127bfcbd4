//! The registry of installed megaflows: what the megaflow owner knows.
//!
//! # What
//! One [`Record`] per installed megaflow, keyed by its [`Ufid`]: the
//! datapath that holds it, its match and actions, the packet key that made
//! it (translated again when something it depends on changes), the rule
//! lookups its translation made (to tell which rule changes may affect
//! it), the MAC address it learned (if its translation ran NORMAL), and its
//! statistics as last read back from the holder.
//!
//! # Finding the megaflows a change may affect
//! * A rule change: [`Registry::touched_by`] keeps the records with a
//!   lookup, in the changed rule's table, whose lookup space
//!   ([`odpx_classifier::xlate::lookup_space`]: every key that lookup could
//!   have seen for a packet of the megaflow, set-field rewrites included)
//!   overlaps the rule's match. A rule that overlaps no lookup space cannot
//!   change what any lookup returns for any packet of the megaflow (a
//!   property test of the classifier checks exactly this).
//! * A MAC address whose learned port changed, appeared or went: the
//!   records that pin it exactly as destination or as source, found
//!   through two indexes ([`Registry::pinning_dst`], [`Registry::pinning_src`]).
//!   NORMAL un-wildcards both addresses, so every megaflow whose decision
//!   used the MAC table is in them.
//!
//! # Invariants
//! * Every record is in the MAC indexes under its exact source and
//!   destination addresses (if its mask pins them), and nowhere else.
//! * The registry holds exactly what the holders hold, once their
//!   messages are applied: records are added before the install is sent,
//!   and removed when the owner deletes a megaflow, when a holder expires
//!   it at the owner's request, or when a holder reports that it refused it.
//!
//! # Threads
//! Part of the owner core ([`crate::core`]): read and written only by
//! whoever holds it.

use hashbrown::{HashMap, HashSet};
use odpx_classifier::flow_op::{Actions, Holder, Ufid};
use odpx_classifier::key::{attr, FlowKey, Match};
use odpx_classifier::rules::Rule;
use odpx_classifier::xlate::group::GroupUse;
use odpx_classifier::xlate::{lookup_space, Lookup};
use std::time::Instant;

/// The source address a NORMAL translation learned: (VLAN, MAC, port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacSource {
    pub vlan: u16,
    pub mac: [u8; 6],
    pub port: u32,
}

/// A megaflow's statistics as last read back from its holder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub packets: u64,
    pub bytes: u64,
    /// Last packet, on the owner's clock (`None`: never hit).
    pub used: Option<Instant>,
}

#[derive(Clone, Debug)]
pub struct Record {
    pub holder: Holder,
    pub matched: Match,
    /// The key of the packet whose translation made the megaflow (for a
    /// megaflow adopted from the kernel: its match's key).
    pub packet: FlowKey,
    pub actions: Actions,
    pub lookups: Box<[Lookup]>,
    /// The groups and buckets its translation went through.
    pub groups: Box<[GroupUse]>,
    pub learns: Option<MacSource>,
    /// The rules its `learn` actions make (the same for every packet of
    /// the megaflow): taught again while it carries packets.
    pub learned: Box<[Rule]>,
    /// Its translation read the underlay (a tunnel output or an underlay
    /// port's decapsulation): underlay changes revalidate it.
    pub underlay: bool,
    pub usage: Usage,
    /// Hybrid mode: what the megaflow carried in a PMD before it moved
    /// into the kernel (its statistics are `carried` plus `usage`).
    pub carried: Usage,
    /// Hybrid mode: moved into the kernel, with a steering entry.
    pub offloaded: bool,
    pub installed: Instant,
    /// The owner's install counter when this record was (last) installed:
    /// orders installs against sweeps without reading a clock.
    pub install_seq: u64,
}

impl Record {
    /// When the megaflow was last used, or installed if never.
    pub fn last_activity(&self) -> Instant {
        self.usage.used.unwrap_or(self.installed)
    }
}

/// The megaflow owner's registry. See the module documentation.
#[derive(Default)]
pub struct Registry {
    /// Boxed: the table doubles as it grows and every bucket of it is
    /// touched, so a bucket holds a pointer, not a 750-byte record (at
    /// 140,000 megaflows, 6 MiB of buckets instead of 200 MiB).
    records: HashMap<Ufid, Box<Record>>,
    by_src: HashMap<[u8; 6], Pins>,
    by_dst: HashMap<[u8; 6], Pins>,
    /// Records marked offloaded.
    offloaded: usize,
}

/// The megaflows that pin one address. Most addresses are pinned by one
/// megaflow (a flood of new sources makes one each), so one is kept in
/// place, and a set is made only for a second.
#[derive(Debug)]
enum Pins {
    One(Ufid),
    Many(HashSet<Ufid>),
}

impl Pins {
    fn add(index: &mut HashMap<[u8; 6], Pins>, mac: [u8; 6], ufid: Ufid) {
        match index.entry(mac) {
            hashbrown::hash_map::Entry::Vacant(v) => {
                v.insert(Pins::One(ufid));
            }
            hashbrown::hash_map::Entry::Occupied(mut o) => match o.get_mut() {
                Pins::One(first) if *first == ufid => {}
                Pins::One(first) => {
                    let first = *first;
                    o.insert(Pins::Many(HashSet::from_iter([first, ufid])));
                }
                Pins::Many(set) => {
                    set.insert(ufid);
                }
            },
        }
    }

    fn remove(index: &mut HashMap<[u8; 6], Pins>, mac: [u8; 6], ufid: &Ufid) {
        let gone = match index.get_mut(&mac) {
            None => false,
            Some(Pins::One(only)) => only == ufid,
            Some(Pins::Many(set)) => {
                set.remove(ufid);
                set.is_empty()
            }
        };
        if gone {
            index.remove(&mac);
        }
    }

    fn list(index: &HashMap<[u8; 6], Pins>, mac: &[u8; 6]) -> Vec<Ufid> {
        match index.get(mac) {
            None => Vec::new(),
            Some(Pins::One(u)) => vec![*u],
            Some(Pins::Many(set)) => set.iter().copied().collect(),
        }
    }
}

/// The exact (source, destination) addresses a match pins, if any.
fn pinned_macs(m: &Match) -> (Option<[u8; 6]>, Option<[u8; 6]>) {
    if !m.key.has(attr::ETHERNET) {
        return (None, None);
    }
    (
        (m.mask.eth_src == [0xff; 6]).then_some(m.key.eth_src),
        (m.mask.eth_dst == [0xff; 6]).then_some(m.key.eth_dst),
    )
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, ufid: &Ufid) -> Option<&Record> {
        self.records.get(ufid).map(|r| &**r)
    }

    pub fn contains(&self, ufid: &Ufid) -> bool {
        self.records.contains_key(ufid)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Ufid, &Record)> + '_ {
        self.records.iter().map(|(u, r)| (u, &**r))
    }

    /// Every UFID, in no particular order.
    pub fn ufids(&self) -> Vec<Ufid> {
        self.records.keys().copied().collect()
    }

    /// Adds or replaces a record.
    pub fn insert(&mut self, ufid: Ufid, rec: Record) {
        self.remove(&ufid);
        let (src, dst) = pinned_macs(&rec.matched);
        if let Some(mac) = src {
            Pins::add(&mut self.by_src, mac, ufid);
        }
        if let Some(mac) = dst {
            Pins::add(&mut self.by_dst, mac, ufid);
        }
        self.offloaded += usize::from(rec.offloaded);
        self.records.insert(ufid, Box::new(rec));
    }

    pub fn remove(&mut self, ufid: &Ufid) -> Option<Record> {
        let rec = self.records.remove(ufid)?;
        self.offloaded -= usize::from(rec.offloaded);
        let (src, dst) = pinned_macs(&rec.matched);
        for (index, mac) in [(&mut self.by_src, src), (&mut self.by_dst, dst)] {
            if let Some(mac) = mac {
                Pins::remove(index, mac, ufid);
            }
        }
        Some(*rec)
    }

    /// Updates what the owner may change in place: actions, lookups,
    /// learned source, underlay dependence. The match (and so the
    /// indexes) stays.
    pub fn update(
        &mut self,
        ufid: &Ufid,
        actions: Actions,
        lookups: Box<[Lookup]>,
        groups: Box<[GroupUse]>,
        learns: Option<MacSource>,
        underlay: bool,
    ) {
        if let Some(r) = self.records.get_mut(ufid) {
            r.actions = actions;
            r.lookups = lookups;
            r.groups = groups;
            r.learns = learns;
            r.underlay = underlay;
        }
    }

    /// What the megaflow's packets learn, as its last translation said.
    pub fn set_learned(&mut self, ufid: &Ufid, learned: Vec<Rule>) {
        if let Some(r) = self.records.get_mut(ufid) {
            r.learned = learned.into();
        }
    }

    /// Marks a kernel-held megaflow as offloaded (it has a steering
    /// entry), or no longer.
    pub fn set_offloaded(&mut self, ufid: &Ufid, offloaded: bool) {
        if let Some(r) = self.records.get_mut(ufid) {
            if r.offloaded != offloaded {
                r.offloaded = offloaded;
                if offloaded {
                    self.offloaded += 1;
                } else {
                    self.offloaded -= 1;
                }
            }
        }
    }

    /// How many records are marked offloaded.
    pub fn offloaded(&self) -> usize {
        self.offloaded
    }

    /// Records statistics read back from a holder.
    pub fn set_usage(&mut self, ufid: &Ufid, usage: Usage) -> Option<&Record> {
        let r = self.records.get_mut(ufid)?;
        r.usage = usage;
        Some(&**r)
    }

    /// The megaflows that pin `mac` as their exact destination.
    pub fn pinning_dst(&self, mac: &[u8; 6]) -> Vec<Ufid> {
        Pins::list(&self.by_dst, mac)
    }

    /// The megaflows that pin `mac` as their exact source.
    pub fn pinning_src(&self, mac: &[u8; 6]) -> Vec<Ufid> {
        Pins::list(&self.by_src, mac)
    }

    /// The megaflows whose translation went through one of `groups`.
    pub fn through_groups(&self, groups: &[u32]) -> Vec<Ufid> {
        self.records
            .iter()
            .filter(|(_, r)| r.groups.iter().any(|u| groups.contains(&u.group)))
            .map(|(u, _)| *u)
            .collect()
    }

    /// The megaflows a change of these rules may affect (see the module
    /// documentation).
    pub fn touched_by(&self, changed: &[Rule]) -> Vec<Ufid> {
        self.records
            .iter()
            .filter(|(_, r)| {
                r.lookups.iter().any(|l| {
                    changed.iter().any(|c| {
                        c.table == l.table && {
                            let space = lookup_space(&r.matched, l);
                            c.matched.overlaps(&space)
                        }
                    })
                })
            })
            .map(|(u, _)| *u)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::odp::parse_key;
    use odpx_classifier::rules::{ofctl, RuleSet};
    use odpx_classifier::xlate::{translate, FloodEnv};

    fn record(rules: &RuleSet, packet: &str) -> (Ufid, Record) {
        let k = parse_key(packet).unwrap().matched.key;
        let t = translate(rules, &k, &mut FloodEnv { ports: vec![1, 2, 3] });
        let ufid = Ufid::of(&t.megaflow, Holder::Kernel);
        (
            ufid,
            Record {
                holder: Holder::Kernel,
                matched: t.megaflow,
                packet: k,
                underlay: false,
                actions: t.actions.into(),
                lookups: t.lookups.into(),
                groups: t.groups.into(),
                learns: None,
                learned: Box::new([]),
                usage: Usage::default(),
                carried: Usage::default(),
                offloaded: false,
                installed: Instant::now(),
                install_seq: 0,
            },
        )
    }

    #[test]
    fn rule_changes_find_megaflows_through_rewritten_lookups() {
        // Table 0 rewrites nw_dst and resubmits: table 1 sees 10.9.9.9,
        // which the packet never carried.
        let mut rules = RuleSet::new();
        for r in ofctl::parse_rules(
            "table=0,priority=1,ip,actions=mod_nw_dst:10.9.9.9,resubmit(,1)\ntable=1,priority=1,actions=output:2\n",
        )
        .unwrap()
        {
            rules.add(r);
        }
        let mut reg = Registry::new();
        let (u, r) = record(&rules, "in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1,dst=2)");
        reg.insert(u, r);
        let rule = |t: &str| ofctl::parse_rule(t).unwrap();
        assert_eq!(
            reg.touched_by(&[rule("table=1,priority=9,ip,nw_dst=10.9.9.9,actions=drop")]),
            vec![u]
        );
        assert!(reg
            .touched_by(&[rule("table=1,priority=9,ip,nw_dst=10.0.0.2,actions=drop")])
            .is_empty());
        // Table 0 saw the packet's own key; the megaflow leaves nw_dst wild.
        assert_eq!(
            reg.touched_by(&[rule("table=0,priority=9,ip,nw_dst=10.9.9.9,actions=drop")]),
            vec![u]
        );
        assert!(reg
            .touched_by(&[rule("table=0,priority=9,arp,actions=drop")])
            .is_empty());
        assert!(reg.touched_by(&[rule("table=2,priority=9,actions=drop")]).is_empty());
    }

    #[test]
    fn mac_indexes_follow_inserts_and_removals() {
        let mut rules = RuleSet::new();
        rules.add(
            ofctl::parse_rule("priority=1,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,actions=output:2").unwrap(),
        );
        let mut reg = Registry::new();
        let (u, r) = record(&rules, "in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1,dst=2)");
        reg.insert(u, r);
        assert_eq!(reg.pinning_src(&[2, 0, 0, 0, 0, 1]), vec![u]);
        assert_eq!(reg.pinning_dst(&[2, 0, 0, 0, 0, 2]), vec![u]);
        assert!(reg.pinning_dst(&[2, 0, 0, 0, 0, 1]).is_empty());
        // A second megaflow pinning the same addresses (another in_port).
        let (u2, r2) = record(&rules, "in_port(3),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1,dst=2)");
        assert_ne!(u, u2);
        reg.insert(u2, r2.clone());
        reg.insert(u2, r2);
        let mut both = reg.pinning_src(&[2, 0, 0, 0, 0, 1]);
        both.sort();
        let mut want = vec![u, u2];
        want.sort();
        assert_eq!(both, want);
        assert!(reg.remove(&u).is_some());
        assert_eq!(reg.pinning_src(&[2, 0, 0, 0, 0, 1]), vec![u2]);
        assert_eq!(reg.pinning_dst(&[2, 0, 0, 0, 0, 2]), vec![u2]);
        assert!(reg.remove(&u2).is_some());
        assert!(reg.pinning_src(&[2, 0, 0, 0, 0, 1]).is_empty());
        assert!(reg.pinning_dst(&[2, 0, 0, 0, 0, 2]).is_empty());
        assert!(reg.is_empty());
    }
}
