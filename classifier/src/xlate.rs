//! Translation: one packet key through the rule tables to datapath actions
//! and the widest megaflow that is still correct.
//!
//! # What
//! [`translate`] starts in table 0, follows `resubmit` and `goto_table`,
//! applies field writes to a working copy of the key, and emits
//! [`OdpAction`]s. It returns the actions, the megaflow [`Match`] (the
//! packet's key under the mask of every bit any lookup or action consulted)
//! and a trace of the rules hit.
//!
//! # Un-wildcarding
//! * Rule lookups add their consulted bits ([`RuleSet::lookup`]).
//! * Actions whose effect depends on the packet add what they read:
//!   `output` compares with `in_port`; VLAN edits read whether a tag is
//!   present (the CFI bit) and any TCI bits they keep; NORMAL reads in_port,
//!   the Ethernet addresses and VLAN.
//! * Field writes do **not** un-wildcard the field: set actions are emitted
//!   for every written field whatever its old value, so the result does not
//!   depend on it. (OVS compares with the old value to save a set action and
//!   must then un-wildcard; odpx prefers the wider megaflow.)
//! * Finally the presence bits of the megaflow are the packet's attributes
//!   that have a consulted field, the presence the actions read (VLAN tags),
//!   plus `eth` (the packet is Ethernet) — and the result is canonicalised,
//!   so it prints as OVS would. A presence bit set in the mask but absent
//!   from the key means "must not carry it" (e.g. untagged); ODP text cannot
//!   show absence, and the kernel enforces it itself by always matching the
//!   VLAN TCI exactly.
//!
//! # Soundness (tested by property)
//! For every packet P and every packet Q that the megaflow of P accepts,
//! `translate(Q)` yields the same actions as `translate(P)`.
//!
//! # NORMAL and FLOOD
//! They need the switch's ports and MAC table, which live in the control
//! layer; the caller supplies them through [`SwitchEnv`]. [`FloodEnv`] is
//! a stateless version (every port but the input one) for offline traces.

use crate::key::{attr, tun_flag, FlowKey, Match, VLAN_CFI};
use crate::odp::{attr_fields, canonicalize, OdpAction, SetAction};
use crate::rules::field::Field;
use crate::rules::ofctl::format_rule;
use crate::rules::{RuleAction, RuleSet};

/// Maximum depth of resubmits, as a loop guard (OVS uses 64).
pub const MAX_RESUBMIT_DEPTH: usize = 64;

/// What the switch tells the translator about ports and MAC learning.
pub trait SwitchEnv {
    /// Ports a FLOOD (or NORMAL with an unknown destination) goes to.
    fn flood_ports(&self, in_port: u32) -> Vec<u32>;
    /// NORMAL: the learned port for (vlan, dst MAC), if any. Learning the
    /// source is the implementation's business (it sees the key).
    fn normal_lookup(&mut self, key: &FlowKey) -> Option<u32>;
}

/// A switch with a fixed port list and no MAC learning.
pub struct FloodEnv {
    pub ports: Vec<u32>,
}

impl SwitchEnv for FloodEnv {
    fn flood_ports(&self, in_port: u32) -> Vec<u32> {
        self.ports.iter().copied().filter(|&p| p != in_port).collect()
    }
    fn normal_lookup(&mut self, _key: &FlowKey) -> Option<u32> {
        None
    }
}

/// One step of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep {
    pub table: u8,
    pub depth: usize,
    /// The rule hit (ofctl text), or None for a table miss.
    pub rule: Option<String>,
}

/// One rule-table lookup a translation made, for telling later which
/// rule changes may affect its megaflow (see [`lookup_space`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub table: u8,
    /// What the actions had changed in the looked-up key by then (`None`:
    /// nothing, the lookup saw the packet's own key).
    pub rewrite: Option<Box<Rewrite>>,
}

/// How a lookup's key differed from the packet's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// Bits written with a value that is the same for every packet of the
    /// megaflow (set-field constants, `dec_ttl` of a pinned TTL, the
    /// `in_port` of `resubmit(port,...)`), and those values.
    pub mask: FlowKey,
    pub values: FlowKey,
    /// Bits whose value at the lookup is not known from the megaflow (the
    /// VLAN tag fields after a push or pop): any value must be assumed.
    pub wild: FlowKey,
}

/// Every key that a lookup `l` made while translating packets of
/// `megaflow` could have seen. A rule change in `l.table` whose match does
/// not overlap it cannot change what that lookup returns for any packet of
/// the megaflow.
pub fn lookup_space(megaflow: &Match, l: &Lookup) -> Match {
    let Some(r) = &l.rewrite else {
        return *megaflow;
    };
    let (mk, mm) = (megaflow.key.words(), megaflow.mask.words());
    let (rm, rv, rw) = (r.mask.words(), r.values.words(), r.wild.words());
    let key = FlowKey::from_words(core::array::from_fn(|i| (mk[i] & !rm[i]) | (rv[i] & rm[i])));
    let mask = FlowKey::from_words(core::array::from_fn(|i| (mm[i] | rm[i]) & !rw[i]));
    Match::new(key, mask)
}

/// The key fields that describe the VLAN tags, for [`Rewrite::wild`].
fn vlan_fields() -> FlowKey {
    let mut f = FlowKey::ZERO;
    f.vlan_tci = !0;
    f.vlan_tpid = !0;
    f.cvlan_tci = !0;
    f.cvlan_tpid = !0;
    f.attrs = attr::VLAN | attr::ENCAP | attr::CVLAN | attr::CENCAP;
    f
}

/// The result of translating one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub actions: Vec<OdpAction>,
    pub megaflow: Match,
    /// The rules hit, step by step ([`translate_traced`] only: formatting
    /// every rule hit would cost upcalls and revalidation dearly).
    pub trace: Vec<TraceStep>,
    /// The rule-table lookups, in order.
    pub lookups: Vec<Lookup>,
    /// True if the resubmit depth limit cut the pipeline short (the
    /// packet is dropped, as OVS does).
    pub too_deep: bool,
}

struct Xlate<'a> {
    rules: &'a RuleSet,
    env: &'a mut dyn SwitchEnv,
    /// The packet as modified by the actions so far.
    flow: FlowKey,
    /// Bits consulted.
    wc: FlowKey,
    /// Field bits written since the last commit.
    pending: FlowKey,
    /// The VLAN stack changed since the last commit.
    vlan_dirty: bool,
    /// VLAN tags present in the packet as the datapath last saw it (0-2).
    committed_tags: u8,
    /// TCI bits written by actions (the rest of a pushed TCI comes from the packet).
    vlan_written: u16,
    /// Bits of `flow` the actions so far set to megaflow-wide constants.
    written: FlowKey,
    /// A VLAN tag was pushed, popped or rewritten so far.
    vlan_touched: bool,
    lookups: Vec<Lookup>,
    out: Vec<OdpAction>,
    trace: Option<Vec<TraceStep>>,
    too_deep: bool,
    /// An action ended the pipeline with a drop (TTL expired).
    halted: bool,
}

/// Translates `packet` through `rules`.
pub fn translate(rules: &RuleSet, packet: &FlowKey, env: &mut dyn SwitchEnv) -> Translation {
    run(rules, packet, env, false)
}

/// [`translate`], recording the rules hit in [`Translation::trace`].
pub fn translate_traced(rules: &RuleSet, packet: &FlowKey, env: &mut dyn SwitchEnv) -> Translation {
    run(rules, packet, env, true)
}

fn run(rules: &RuleSet, packet: &FlowKey, env: &mut dyn SwitchEnv, tracing: bool) -> Translation {
    let tags = packet.has(attr::VLAN) as u8 + packet.has(attr::CVLAN) as u8;
    let mut x = Xlate {
        rules,
        env,
        flow: *packet,
        wc: FlowKey::ZERO,
        pending: FlowKey::ZERO,
        vlan_dirty: false,
        committed_tags: tags,
        vlan_written: 0,
        written: FlowKey::ZERO,
        vlan_touched: false,
        lookups: Vec::new(),
        out: Vec::new(),
        trace: tracing.then(Vec::new),
        too_deep: false,
        halted: false,
    };
    x.table(0, 0);
    if x.too_deep || x.halted {
        x.out.clear();
    }
    let megaflow = megaflow_of(packet, &x.wc);
    Translation {
        actions: x.out,
        megaflow,
        trace: x.trace.unwrap_or_default(),
        lookups: x.lookups,
        too_deep: x.too_deep,
    }
}

/// The megaflow for `packet` given the consulted bits `wc`.
pub fn megaflow_of(packet: &FlowKey, wc: &FlowKey) -> Match {
    let mut mask = *wc;
    mask._pad = 0;
    // Presence that was read (wc.attrs), the structural attributes, and
    // every present attribute with a consulted field.
    let mut attrs = wc.attrs | packet.attrs & (attr::ETHERNET | attr::ENCAP | attr::CENCAP);
    for bit in (0..32).map(|i| 1u32 << i) {
        if packet.attrs & bit != 0 && !wc.masked(&attr_fields(bit)).is_zero() {
            attrs |= bit;
        }
    }
    // The VLAN structure stays described whenever it is present: its tag
    // presence decides how every inner field is encoded.
    if packet.has(attr::VLAN) {
        attrs |= attr::VLAN | attr::ENCAP;
        mask.vlan_tpid = !0;
        mask.vlan_tci |= VLAN_CFI;
    }
    if packet.has(attr::CVLAN) {
        attrs |= attr::CVLAN | attr::CENCAP;
        mask.cvlan_tpid = !0;
        mask.cvlan_tci |= VLAN_CFI;
    }
    mask.attrs = attrs;
    canonicalize(&Match::new(*packet, mask))
}

impl Xlate<'_> {
    fn table(&mut self, table: u8, depth: usize) {
        if depth >= MAX_RESUBMIT_DEPTH {
            self.too_deep = true;
            return;
        }
        let rules = self.rules;
        let rewrite = (!self.written.is_zero() || self.vlan_touched).then(|| {
            Box::new(Rewrite {
                mask: self.written,
                values: self.flow.masked(&self.written),
                wild: if self.vlan_touched {
                    vlan_fields()
                } else {
                    FlowKey::ZERO
                },
            })
        });
        self.lookups.push(Lookup { table, rewrite });
        let Some(rule) = rules.lookup(table, &self.flow, &mut self.wc) else {
            self.step(table, depth, None);
            return;
        };
        if self.trace.is_some() {
            self.step(table, depth, Some(format_rule(rule)));
        }
        for a in &rule.actions {
            if self.too_deep || self.halted {
                return;
            }
            self.action(a, table, depth);
        }
    }

    fn action(&mut self, a: &RuleAction, table: u8, depth: usize) {
        match a {
            RuleAction::Output(p) => {
                self.wc.in_port = !0;
                if *p != self.flow.in_port {
                    self.output(*p);
                }
            }
            RuleAction::InPort => {
                self.wc.in_port = !0;
                self.output(self.flow.in_port);
            }
            RuleAction::Flood => {
                self.wc.in_port = !0;
                for p in self.env.flood_ports(self.flow.in_port) {
                    self.output(p);
                }
            }
            RuleAction::Normal => {
                self.wc.in_port = !0;
                self.wc.eth_src = [0xff; 6];
                self.wc.eth_dst = [0xff; 6];
                self.wc.vlan_tci = !0;
                let flow = self.flow;
                match self.env.normal_lookup(&flow) {
                    Some(p) if p != flow.in_port => self.output(p),
                    Some(_) => {}
                    None => {
                        for p in self.env.flood_ports(flow.in_port) {
                            self.output(p);
                        }
                    }
                }
            }
            RuleAction::SetField { field, value, mask } => {
                if matches!(field, Field::DlVlan | Field::DlVlanPcp | Field::VlanTci) {
                    self.vlan_write(*field, *value, *mask);
                    return;
                }
                field.put(&mut self.flow, *value, *mask);
                let mut m = FlowKey::ZERO;
                field.put(&mut m, *mask, u128::MAX);
                self.pending.or_assign(&m);
                self.written.or_assign(&m);
                if matches!(
                    field,
                    Field::TunId | Field::TunSrc | Field::TunDst | Field::TunIpv6Src | Field::TunIpv6Dst
                ) {
                    self.flow.attrs |= attr::TUNNEL;
                    self.written.attrs |= attr::TUNNEL;
                    if *field == Field::TunId {
                        self.flow.tun_flags |= tun_flag::KEY;
                        self.written.tun_flags |= tun_flag::KEY;
                    }
                }
            }
            RuleAction::DecTtl => {
                // The prerequisite (ip) guarantees the TTL field exists.
                self.wc.ip_ttl = !0;
                if self.flow.ip_ttl <= 1 {
                    // OVS sends these to the controller; odpx drops them.
                    self.step(table, depth, Some("dec_ttl: TTL expired, dropped".into()));
                    self.halted = true;
                    return;
                }
                self.flow.ip_ttl -= 1;
                self.pending.ip_ttl = !0;
                // The packet's TTL is pinned above, so the result is the
                // same for every packet of the megaflow.
                self.written.ip_ttl = !0;
            }
            RuleAction::PushVlan(tpid) => {
                self.consult_tags();
                self.vlan_dirty = true;
                self.vlan_touched = true;
                if self.flow.has(attr::VLAN) {
                    // The old outer tag becomes the inner one; the new tag copies its TCI.
                    self.wc.cvlan_tci |= VLAN_CFI;
                    self.flow.cvlan_tpid = self.flow.vlan_tpid;
                    self.flow.cvlan_tci = self.flow.vlan_tci;
                    self.flow.attrs |= attr::CVLAN | attr::CENCAP;
                } else {
                    self.flow.vlan_tci = VLAN_CFI;
                    self.vlan_written = !0;
                    self.flow.attrs |= attr::VLAN | attr::ENCAP;
                }
                self.flow.vlan_tpid = *tpid;
            }
            RuleAction::PopVlan => {
                self.consult_tags();
                if self.flow.has(attr::VLAN) {
                    self.vlan_dirty = true;
                    self.vlan_touched = true;
                    if self.flow.has(attr::CVLAN) {
                        self.flow.vlan_tpid = self.flow.cvlan_tpid;
                        self.flow.vlan_tci = self.flow.cvlan_tci;
                        self.flow.cvlan_tpid = 0;
                        self.flow.cvlan_tci = 0;
                        self.flow.attrs &= !(attr::CVLAN | attr::CENCAP);
                    } else {
                        self.flow.vlan_tpid = 0;
                        self.flow.vlan_tci = 0;
                        self.flow.attrs &= !(attr::VLAN | attr::ENCAP);
                    }
                }
            }
            RuleAction::ModVlanVid(vid) => self.vlan_write(Field::DlVlan, *vid as u128, 0x0fff),
            RuleAction::ModVlanPcp(pcp) => self.vlan_write(Field::DlVlanPcp, *pcp as u128, 0x7),
            RuleAction::Resubmit { in_port, table: t } => {
                let saved = (self.flow.in_port, self.written.in_port);
                if let Some(p) = in_port {
                    self.flow.in_port = *p;
                    self.written.in_port = !0;
                }
                self.table(t.unwrap_or(table), depth + 1);
                (self.flow.in_port, self.written.in_port) = saved;
            }
            RuleAction::GotoTable(t) => self.table(*t, depth + 1),
        }
    }

    /// Records a trace step, when tracing.
    fn step(&mut self, table: u8, depth: usize, rule: Option<String>) {
        if let Some(t) = self.trace.as_mut() {
            t.push(TraceStep { table, depth, rule });
        }
    }

    /// mod_vlan_vid / mod_vlan_pcp / set_field on VLAN bits (OpenFlow 1.0
    /// semantics: a tag is pushed when there is none).
    fn vlan_write(&mut self, f: Field, value: u128, mask: u128) {
        self.consult_tags();
        self.vlan_dirty = true;
        self.vlan_touched = true;
        if !self.flow.has(attr::VLAN) {
            self.flow.attrs |= attr::VLAN | attr::ENCAP;
            self.flow.vlan_tpid = 0x8100;
            self.flow.vlan_tci = VLAN_CFI;
            self.vlan_written = !0;
        }
        f.put(&mut self.flow, value, mask);
        self.flow.vlan_tci |= VLAN_CFI;
        let mut m = FlowKey::ZERO;
        f.put(&mut m, mask, u128::MAX);
        self.vlan_written |= m.vlan_tci;
    }

    /// Records that the VLAN tag structure (which tags exist) was read.
    fn consult_tags(&mut self) {
        self.wc.attrs |= attr::VLAN | attr::CVLAN;
        self.wc.vlan_tci |= VLAN_CFI;
        self.wc.cvlan_tci |= VLAN_CFI;
    }

    fn output(&mut self, port: u32) {
        self.commit();
        self.out.push(OdpAction::Output(port));
    }

    /// Emits set/push/pop actions for everything written since the last commit.
    fn commit(&mut self) {
        if self.vlan_dirty {
            for _ in 0..self.committed_tags {
                self.out.push(OdpAction::PopVlan);
            }
            let tags: Vec<(u16, u16)> = [
                (self.flow.has(attr::CVLAN), self.flow.cvlan_tpid, self.flow.cvlan_tci),
                (self.flow.has(attr::VLAN), self.flow.vlan_tpid, self.flow.vlan_tci),
            ]
            .into_iter()
            .filter(|(p, _, _)| *p)
            .map(|(_, t, c)| (t, c))
            .collect();
            // TCI bits and TPIDs pushed but not written come from the packet.
            self.consult_tags();
            self.wc.vlan_tci |= !self.vlan_written;
            self.wc.vlan_tpid = !0;
            if self.flow.has(attr::CVLAN) {
                self.wc.cvlan_tci = !0;
                self.wc.cvlan_tpid = !0;
            }
            for (tpid, tci) in tags {
                self.out.push(OdpAction::PushVlan { tpid, tci });
            }
            self.committed_tags = self.flow.has(attr::VLAN) as u8 + self.flow.has(attr::CVLAN) as u8;
            self.vlan_dirty = false;
        }
        if self.pending.is_zero() {
            return;
        }
        let pending = self.pending;
        self.pending = FlowKey::ZERO;
        // Tunnel: always a full set(tunnel(...)); unset parts default like
        // an OVS tunnel port (ttl 64, df).
        if !pending.masked(&attr_fields(attr::TUNNEL)).is_zero() {
            let mut t = self.flow;
            if t.tun_ttl == 0 {
                t.tun_ttl = 64;
            }
            if pending.tun_flags & tun_flag::DF == 0 {
                t.tun_flags |= tun_flag::DF;
            }
            t.attrs = attr::TUNNEL;
            // Tunnel fields not written are inherited from the packet.
            let tf = attr_fields(attr::TUNNEL);
            let mut inherited = tf;
            for (w, p) in inherited.words_mut().iter_mut().zip(pending.words()) {
                *w &= !p;
            }
            self.wc.or_assign(&inherited);
            let mut m = tf;
            m.attrs = attr::TUNNEL;
            self.out.push(OdpAction::Set(SetAction {
                attr: attr::TUNNEL,
                key: t.masked(&m),
                mask: m,
            }));
        }
        let l4 = match self.flow.ip_proto {
            6 => attr::TCP,
            17 => attr::UDP,
            132 => attr::SCTP,
            1 if self.flow.eth_type == 0x0800 => attr::ICMP,
            58 if self.flow.eth_type == 0x86dd => attr::ICMPV6,
            _ => 0,
        };
        let l3 = match self.flow.eth_type {
            0x0800 => attr::IPV4,
            0x86dd => attr::IPV6,
            _ => 0,
        };
        for bit in [attr::PRIORITY, attr::SKB_MARK, attr::ETHERNET, l3, l4] {
            if bit == 0 {
                continue;
            }
            let fields = attr_fields(bit);
            let m = pending.masked(&fields);
            if m.is_zero() {
                continue;
            }
            let mut mask = m;
            mask.attrs = bit;
            let mut key = self.flow.masked(&mask);
            key.attrs = bit;
            let s = SetAction { attr: bit, key, mask };
            let mut full = fields;
            full.attrs = bit;
            self.out.push(if mask == full {
                OdpAction::Set(s)
            } else {
                OdpAction::SetMasked(s)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odp::{actions::format_actions, format_match, parse_key};
    use crate::rules::ofctl::parse_rules;

    fn rs(text: &str) -> RuleSet {
        let mut r = RuleSet::new();
        for rule in parse_rules(text).unwrap() {
            r.add(rule);
        }
        r
    }

    fn key(s: &str) -> FlowKey {
        parse_key(s).unwrap().matched.key
    }

    #[test]
    fn simple_forwarding_megaflow_is_narrow_only_where_consulted() {
        let r = rs("priority=10,in_port=1,actions=output:2\npriority=0,actions=drop\n");
        let k = key("in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=1,dst=2)");
        let t = translate(&r, &k, &mut FloodEnv { ports: vec![] });
        assert_eq!(format_actions(&t.actions), "2");
        assert_eq!(format_match(&t.megaflow), "in_port(1),eth()");
    }

    #[test]
    fn sets_resubmit_and_vlan() {
        let r = rs("table=0,priority=10,ip,actions=mod_nw_dst:10.9.9.9,resubmit(,1)\ntable=1,priority=1,actions=mod_vlan_vid:5,output:3\n");
        let k = key("in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=1,dst=2)");
        let t = translate_traced(&r, &k, &mut FloodEnv { ports: vec![] });
        assert_eq!(
            format_actions(&t.actions),
            "push_vlan(vid=5,pcp=0),set(ipv4(dst=10.9.9.9)),3"
        );
        assert_eq!(t.trace.len(), 2);
        assert!(translate(&r, &k, &mut FloodEnv { ports: vec![] }).trace.is_empty());
        assert_eq!(format_match(&t.megaflow), "in_port(1),eth(),eth_type(0x0800)");
    }

    #[test]
    fn tunnel_set_is_complete() {
        let r = rs("priority=1,ip,actions=set_tunnel:0x2a,set_field:192.0.2.9->tun_dst,output:2");
        let k = key("in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1,dst=2)");
        let t = translate(&r, &k, &mut FloodEnv { ports: vec![] });
        assert_eq!(
            format_actions(&t.actions),
            "set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2"
        );
    }

    #[test]
    fn resubmit_loops_are_cut() {
        let r = rs("priority=1,actions=resubmit(,0)");
        let t = translate(&r, &key("in_port(1),eth()"), &mut FloodEnv { ports: vec![] });
        assert!(t.too_deep);
        assert!(t.actions.is_empty());
    }
}
