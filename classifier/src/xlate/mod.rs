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
//!
//! # OpenFlow 1.3's pipeline
//! * `goto_table` continues in a later table; a miss there ends the
//!   pipeline (a drop, as a switch without a table-miss entry does), while
//!   a miss in a `resubmit`'s table only returns to the resubmitting rule.
//! * The action set ([`action_set`]): `write_actions` merge into it,
//!   `clear_actions` empty it, and what it holds runs when the pipeline
//!   ends without a miss, in the spec's order.
//! * Metadata and registers live in the working key ([`FlowKey::metadata`],
//!   [`FlowKey::regs`]): 0 when the packet enters, changed only by actions
//!   (`write_metadata`, `set_field`, `load`, `move`) to values that are the
//!   same for every packet of the megaflow: constants, or packet bits that
//!   `move` un-wildcards as it reads them. So they never appear in a
//!   megaflow's mask, and the datapath never sees them; a lookup that reads
//!   them un-wildcards only what decided their values.
//! * `CONTROLLER` becomes a datapath `userspace` action whose user data
//!   ([`controller::ToController`]) says everything a packet-in needs
//!   but the packet: reason, table, cookie, max_len, in_port, metadata,
//!   tunnel id. The translator pins in_port (and the tunnel id of a
//!   tunnelled packet) so that they are the same for every packet of the
//!   megaflow. The datapath hands the packet, as the actions so far made
//!   it, with that user data to the control layer.
//!
//! # Rule statistics
//! Each [`Lookup`] records the rule it hit, so whoever keeps a megaflow's
//! statistics can credit every rule its packets went through.

pub mod action_set;
mod actions;
mod commit;
pub mod controller;
pub mod freeze;
pub mod group;
mod mpls;

use self::action_set::ActionSet;
use self::freeze::Frozen;
use self::group::GroupUse;
use crate::key::{attr, FlowKey, Match, VLAN_CFI};
use crate::odp::{attr_fields, canonicalize, OdpAction};
use crate::rules::ofctl::format_rule;
use crate::rules::{RuleAction, RuleSet};

/// Maximum depth of resubmits, as a loop guard (OVS uses 64).
pub const MAX_RESUBMIT_DEPTH: usize = 64;

/// What the switch tells the translator about ports and MAC learning.
pub trait SwitchEnv {
    /// Ports a FLOOD (or NORMAL with an unknown destination) goes to.
    fn flood_ports(&self, in_port: u32) -> Vec<u32>;
    /// Ports an output to ALL goes to: every port but the input one
    /// (also those a FLOOD skips).
    fn all_ports(&self, in_port: u32) -> Vec<u32> {
        self.flood_ports(in_port)
    }
    /// NORMAL: the learned port for (vlan, dst MAC), if any. Learning the
    /// source is the implementation's business (it sees the key).
    fn normal_lookup(&mut self, key: &FlowKey) -> Option<u32>;
    /// The recirculation id `state` is kept under ([`freeze`]); `None`
    /// (the default: a switch that does not recirculate) ends the
    /// translation where it had to freeze, dropping the packet there.
    fn freeze(&mut self, _state: &Frozen) -> Option<u32> {
        None
    }
    /// The state frozen under recirculation id `id`.
    fn thaw(&self, _id: u32) -> Option<Frozen> {
        None
    }
    /// Whether packets received on `port` are taken in (OpenFlow's
    /// NO_RECV clear): a port that says no drops them all.
    fn receives_from(&self, _port: u32) -> bool {
        true
    }
    /// Whether outputs to `port` go out (OpenFlow's NO_FWD clear): a port
    /// that says no drops what the actions send it.
    fn forwards_to(&self, _port: u32) -> bool {
        true
    }
    /// Whether a fast-failover bucket watching `port` may be used: its
    /// link is up and it is not administratively down.
    fn port_live(&self, _port: u32) -> bool {
        true
    }
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
    /// The rule it hit ([`crate::rules::Rule::seq`]), if any.
    pub rule: Option<u64>,
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
    /// The groups and buckets the packet went through, in order.
    pub groups: Vec<GroupUse>,
    /// The rules its `learn` actions made, in order, for the caller to
    /// add: lookups in this translation do not see them (as in Open
    /// vSwitch, whose translation looks up one version of the tables).
    /// Every packet of the megaflow learns the same ones.
    pub learned: Vec<crate::rules::Rule>,
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
    groups: Vec<GroupUse>,
    learned: Vec<crate::rules::Rule>,
    out: Vec<OdpAction>,
    trace: Option<Vec<TraceStep>>,
    too_deep: bool,
    /// An action ended the pipeline (TTL expired).
    halted: bool,
    /// A table reached by `goto_table` had no rule: the pipeline ended
    /// with a drop, and the action set is not run.
    missed: bool,
    /// OpenFlow 1.3's action set.
    action_set: ActionSet,
    /// The last rule hit: its table, cookie, and whether it is a
    /// table-miss entry (for packet-ins).
    current: RuleContext,
    /// `pop_mpls` took the last label off: the key does not describe the
    /// header under it, and the next action that needs it freezes.
    l3_unknown: bool,
    /// The translation froze ([`freeze`]): the actions left, gathered as
    /// the rule loops unwind.
    frozen: Option<Frozen>,
}

/// What a packet-in says of the rule that sent it.
#[derive(Clone, Copy, Debug, Default)]
struct RuleContext {
    table: u8,
    cookie: u64,
    table_miss: bool,
}

/// Translates `packet` through `rules`.
pub fn translate(rules: &RuleSet, packet: &FlowKey, env: &mut dyn SwitchEnv) -> Translation {
    run(rules, packet, env, false)
}

/// [`translate`], recording the rules hit in [`Translation::trace`].
pub fn translate_traced(rules: &RuleSet, packet: &FlowKey, env: &mut dyn SwitchEnv) -> Translation {
    run(rules, packet, env, true)
}

/// Translates `packet` through `actions` alone, as if a rule in table 0
/// held them (an OpenFlow PACKET_OUT; its output to TABLE is a
/// `resubmit(,0)` here), then through the action set they wrote.
pub fn translate_actions(
    rules: &RuleSet,
    packet: &FlowKey,
    env: &mut dyn SwitchEnv,
    actions: &[crate::rules::RuleAction],
) -> Translation {
    run_with(rules, packet, env, false, Some(actions))
}

fn run(rules: &RuleSet, packet: &FlowKey, env: &mut dyn SwitchEnv, tracing: bool) -> Translation {
    run_with(rules, packet, env, tracing, None)
}

fn run_with(
    rules: &RuleSet,
    packet: &FlowKey,
    env: &mut dyn SwitchEnv,
    tracing: bool,
    actions: Option<&[crate::rules::RuleAction]>,
) -> Translation {
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
        groups: Vec::new(),
        learned: Vec::new(),
        out: Vec::new(),
        trace: tracing.then(Vec::new),
        too_deep: false,
        halted: false,
        missed: false,
        action_set: ActionSet::default(),
        current: RuleContext::default(),
        l3_unknown: false,
        frozen: None,
    };
    if actions.is_none() && packet.recirc_id == 0 {
        x.police();
    }
    match actions {
        // NO_RECV: nothing the port receives goes further (a drop
        // megaflow of that in_port).
        None if !x.env.receives_from(packet.in_port) => x.wc.in_port = !0,
        _ if packet.recirc_id != 0 => x.thaw(packet.recirc_id),
        None => x.table(0, 0, false),
        Some(list) => x.run_actions(list, 0, 0),
    }
    if !(x.too_deep || x.halted || x.missed) {
        let (table, set) = (x.current.table, x.action_set.take().ordered());
        x.run_actions(&set, table, 0);
    }
    if x.frozen.is_some() {
        x.recirculate();
    }
    if x.too_deep {
        x.out.clear();
    }
    let megaflow = megaflow_of(packet, &x.wc);
    Translation {
        actions: x.out,
        megaflow,
        trace: x.trace.unwrap_or_default(),
        lookups: x.lookups,
        groups: x.groups,
        learned: x.learned,
        too_deep: x.too_deep,
    }
}

/// The megaflow for `packet` given the consulted bits `wc`.
pub fn megaflow_of(packet: &FlowKey, wc: &FlowKey) -> Match {
    let mut mask = *wc;
    mask._pad = 0;
    // Metadata and registers are 0 in every packet entering the pipeline
    // (see the module documentation): what a lookup read of them is the
    // same for all.
    mask.metadata = 0;
    mask.regs = [0; 16];
    // Every megaflow is for one recirculation id (0: packets as received),
    // as in the kernel, where a flow without recirc_id matches only 0.
    mask.recirc_id = !0;
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
    // recirc_id(0) goes without saying (see `canonicalize`).
    if packet.recirc_id == 0 {
        attrs &= !attr::RECIRC_ID;
    } else {
        attrs |= attr::RECIRC_ID;
    }
    mask.attrs = attrs;
    let mut key = *packet;
    if key.recirc_id != 0 {
        key.attrs |= attr::RECIRC_ID;
    }
    canonicalize(&Match::new(key, mask))
}

impl Xlate<'_> {
    /// Looks `table` up and runs the rule found. `resubmitted`: a miss
    /// only returns (else it ends the pipeline).
    fn table(&mut self, table: u8, depth: usize, resubmitted: bool) {
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
        let found = rules.lookup(table, &self.flow, &mut self.wc);
        self.lookups.push(Lookup {
            table,
            rule: found.map(|r| r.seq),
            rewrite,
        });
        let Some(rule) = found else {
            self.step(table, depth, None);
            self.missed |= !resubmitted;
            return;
        };
        self.current = RuleContext {
            table,
            cookie: rule.cookie,
            table_miss: rule.is_table_miss(),
        };
        if self.trace.is_some() {
            self.step(table, depth, Some(format_rule(rule)));
        }
        self.run_actions(&rule.actions, table, depth);
    }

    /// Runs a list of actions (a rule's, a packet-out's, the action set's)
    /// until the pipeline ends. If the translation freezes, at one of them
    /// or inside a table it leads to, what is left of the list becomes a
    /// [`Frame`] of the frozen state.
    fn run_actions(&mut self, list: &[RuleAction], table: u8, depth: usize) {
        for (i, a) in list.iter().enumerate() {
            if self.too_deep || self.halted || self.missed {
                return;
            }
            if self.l3_unknown && mpls::needs_l3(a) {
                self.start_freeze();
                self.push_frame(table, depth, &list[i..]);
                return;
            }
            self.action(a, table, depth);
            if self.frozen.is_some() {
                self.push_frame(table, depth, &list[i + 1..]);
                return;
            }
        }
    }

    /// Records a trace step, when tracing.
    fn step(&mut self, table: u8, depth: usize, rule: Option<String>) {
        if let Some(t) = self.trace.as_mut() {
            t.push(TraceStep { table, depth, rule });
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
    fn neighbour_discovery_writes_are_committed_as_nd_sets() {
        let r = rs("icmp6,icmp_type=135,icmp_code=0,actions=set_field:2001:db8::99->nd_target,set_field:aa:aa:aa:aa:aa:aa->nd_sll,output:2");
        let k = key("in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x86dd),ipv6(src=2001:db8::1,dst=2001:db8::2,proto=58,tclass=0,hlimit=255,frag=no),icmpv6(type=135,code=0),nd(target=2001:db8::2,sll=00:00:00:00:00:01,tll=00:00:00:00:00:00)");
        let t = translate(&r, &k, &mut FloodEnv { ports: vec![] });
        assert_eq!(
            format_actions(&t.actions),
            "set(nd(target=2001:db8::99,sll=aa:aa:aa:aa:aa:aa)),2"
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
