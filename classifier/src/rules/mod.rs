//! Rule tables: the OpenFlow-like classifier of the slow path.
//!
//! # What
//! Up to 255 tables of [`Rule`]s (priority, wildcarded [`Match`], actions),
//! written in `ovs-ofctl add-flow` syntax ([`ofctl`]). [`RuleSet::lookup`]
//! returns the highest-priority rule that matches a key in one table **and**
//! ORs into a caller's wildcard mask every key bit the lookup had to consult
//! to reach that answer. The translator ([`crate::xlate`]) turns those bits
//! into the megaflow it installs, so the width of every megaflow is decided
//! here.
//!
//! # Basic design: tuple-space search by priority
//! Each table groups rules into subtables, one per distinct mask, sorted by
//! the highest priority they hold. A lookup walks subtables in that order and
//! stops as soon as the next subtable's best priority cannot beat the rule
//! already found; subtables it never probes add nothing to the wildcards.
//! Equal priorities that overlap are resolved by insertion order (earliest
//! wins), the same as the linear reference in the tests.
//!
//! # Keeping megaflows wide
//! A naive probe of a subtable un-wildcards that subtable's whole mask, even
//! when the packet differs from every rule in its first field. Two techniques
//! narrow that, both from Open vSwitch's classifier:
//!
//! * **Staged lookup.** A subtable's mask is cut into four cumulative stages,
//!   metadata (in_port, tunnel, marks) → L2 → L3 → L4. Each stage but the last
//!   keeps the set of hashes of its rules' keys under the cumulative mask. The
//!   probe stops at the first stage whose hash is absent and un-wildcards only
//!   the stages up to there. So a TCP-port ACL does not pin the ports of
//!   packets whose addresses already rule the ACL out.
//! * **Prefix tracking.** For `nw_src` and `nw_dst` (IPv4) and `ipv6_src` and
//!   `ipv6_dst`, the table keeps, per prefix length, the set of rule prefixes
//!   and of all their ancestors (a trie flattened into hash sets, looked up by
//!   binary search on the length). For a packet address that gives D, the
//!   length of the longest trie path it follows. A subtable whose mask on the
//!   field is a /L prefix cannot match when the packet's /L prefix is not a
//!   rule prefix; it is skipped, un-wildcarding L bits if L ≤ D, or only the
//!   bits that prove the path leaves the trie if L > D (D+1, or just D when
//!   no prefix extends the node at depth D). A routing table with /8, /16,
//!   /24 and /32 routes thus yields a /8 or /9 megaflow for traffic that only
//!   matches the /8, not a /32. The trie is used only when the
//!   packet meets the field's prerequisite (IPv4 or IPv6 Ethertype), which
//!   is then un-wildcarded too. When tries on several fields can each prove
//!   a skip, odpx uses the one whose pin adds the fewest bits not already in
//!   the wildcards (ties: destination first). OVS checks its tries in a
//!   fixed order; on the ACL + routing benchmark this choice gives 21% fewer
//!   megaflows than OVS 3.1 for the same flows
//!   (`tools/ovs-megaflow-compare.sh`).
//!
//! # Few masks
//! Every distinct megaflow mask is a subtable the fast path probes per
//! packet (and a mask the kernel datapath walks). Trie pins of D or D+1 bits
//! vary with each packet's address, so they breed masks. odpx therefore
//! rounds a pin up to the next prefix length that rules in the table
//! actually use (`/17` becomes `/24` when the table has /16 and /24 rules):
//! more bits are pinned, so megaflows are somewhat narrower, but their masks
//! come from the rules' own short list of lengths. On the ACL + routing
//! benchmark this takes 402 subtables to 36 and the subtables probed per
//! megaflow hit from 41 to 5, for 10% more megaflows
//! ([`RuleSet::set_prefix_pin_rounding`] turns it off).
//!
//! Compared with Open vSwitch: OVS also does both (plus partitioning by
//! OpenFlow metadata and port-prefix tracking on tp_src/tp_dst); its tries
//! are real binary tries with path compression and it un-wildcards the same
//! D+1 bits (odpx sometimes one bit fewer). odpx does not yet track L4 port prefixes, so an ACL on port
//! ranges (`tp_dst=0x400/0xfc00`) pins the bits of its masks when probed.
//!
//! # Invariants
//! * Every rule's match is normalised and satisfies its fields'
//!   prerequisites (checked when parsed), so un-wildcarded L3/L4 bits always
//!   come with the Ethertype and protocol bits that give them meaning.
//! * Adding a rule with the same table, priority and match as an existing
//!   one replaces it (OpenFlow `add` semantics).
//! * Stage hash sets may have false positives (hash collisions), which only
//!   make a probe go one stage further; they never have false negatives.
//!
//! # Threads
//! A `RuleSet` is plain data owned by the translator. The control layer
//! publishes a new set for a rule change (build aside, then swap), so a bad
//! batch of rules never half-applies.

pub mod field;
pub mod group;
pub mod learn;
pub mod meter;
pub mod ofctl;
pub mod subfield;

use crate::key::{FlowKey, Match, WORDS};
use crate::text::prefix_mask_u128;
use field::Field;
use group::GroupTable;
use hashbrown::HashMap;
use meter::MeterTable;
use std::collections::BTreeMap;

/// One action of a rule (OpenFlow level; the translator turns these into
/// datapath actions). OpenFlow 1.3's instructions are actions here too,
/// in the order Open vSwitch writes them: the applied actions, then
/// `ClearActions`, `WriteActions`, `WriteMetadata`, `GotoTable`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Output to a port. `max_len` is OpenFlow's field, kept to be given
    /// back as it came (it cuts only packets to the controller).
    Output {
        port: u32,
        max_len: u16,
    },
    /// Output to the packet's input port (`in_port`, `output:in_port`).
    InPort,
    Normal,
    /// Every port but the input one and those configured not to flood.
    Flood,
    /// Every port but the input one (OpenFlow's ALL).
    All,
    /// Send the packet to the OpenFlow controllers (a packet-in), cut to
    /// `max_len` bytes (65535: the whole packet).
    Controller {
        max_len: u16,
    },
    /// Write bits of a field (`set_field`, `mod_*`, `set_tunnel`, `load`).
    SetField {
        field: Field,
        value: u128,
        mask: u128,
    },
    PushVlan(u16),
    PopVlan,
    /// `mod_vlan_vid`: set the VID, pushing a tag if there is none.
    ModVlanVid(u16),
    /// `mod_vlan_pcp`: set the PCP, pushing a tag if there is none.
    ModVlanPcp(u8),
    DecTtl,
    /// `push_mpls:ETHERTYPE`: a new outermost MPLS label (after any VLAN
    /// tags), copied from the old outermost one or made from the IP TTL.
    PushMpls(u16),
    /// `pop_mpls:ETHERTYPE`: the outermost label off; the packet's
    /// Ethertype becomes ETHERTYPE.
    PopMpls(u16),
    /// `set_mpls_ttl:TTL`.
    SetMplsTtl(u8),
    /// `dec_mpls_ttl`: as `dec_ttl`, a TTL of 0 or 1 goes to the controller.
    DecMplsTtl,
    /// `resubmit([port],[table])`: look up again with an optional in_port
    /// and table, then continue with the next action.
    Resubmit {
        in_port: Option<u32>,
        table: Option<u8>,
    },
    /// `clear_actions`: empty the action set.
    ClearActions,
    /// `write_actions(...)`: merge into the action set, run at the end of
    /// the pipeline (see [`crate::xlate`]).
    WriteActions(Vec<RuleAction>),
    /// `write_metadata:VALUE[/MASK]`.
    WriteMetadata {
        value: u64,
        mask: u64,
    },
    /// `goto_table:N`: continue in table N after this rule's actions.
    GotoTable(u8),
    /// `group:N`: the packet goes through group N ([`group`]).
    Group(u32),
    /// `meter:N`: the packet goes through meter N ([`meter`]), which may
    /// drop it or remark its DSCP, before the rule's other actions.
    Meter(u32),
    /// `load:VALUE->DST`: write a constant into a subfield (a `set_field`
    /// that `ovs-ofctl` prints in its own syntax).
    Load {
        dst: subfield::Subfield,
        value: u128,
    },
    /// `move:SRC->DST`: copy bits between subfields of equal width.
    Move {
        src: subfield::Subfield,
        dst: subfield::Subfield,
    },
    /// `output:SRC`: output to the port number a subfield holds.
    OutputReg {
        src: subfield::Subfield,
        max_len: u16,
    },
    /// `learn(...)`: add a rule made from the packet ([`learn`]).
    Learn(Box<learn::Learn>),
}

impl RuleAction {
    /// Output to `port`, as `output:PORT` writes it.
    pub fn output(port: u32) -> RuleAction {
        RuleAction::Output { port, max_len: 0 }
    }

    /// Whether the action sends the packet to `port` (for OpenFlow's
    /// out_port filters), looking into the action set it writes.
    pub fn outputs_to(&self, port: u32) -> bool {
        match self {
            RuleAction::Output { port: p, .. } => *p == port,
            RuleAction::WriteActions(v) => v.iter().any(|a| a.outputs_to(port)),
            _ => false,
        }
    }

    /// Whether the action sends the packet to group `id` (for OpenFlow's
    /// out_group filters), looking into the action set it writes.
    pub fn sends_to_group(&self, id: u32) -> bool {
        group::groups_named(std::slice::from_ref(self)).any(|g| g == id)
    }
}

/// `ofp_flow_mod_flags` a rule keeps (OpenFlow numbering).
pub mod flags {
    /// Send FLOW_REMOVED when the rule expires or is deleted.
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    pub const RESET_COUNTS: u16 = 1 << 2;
    pub const NO_PACKET_COUNTS: u16 = 1 << 3;
    pub const NO_BYTE_COUNTS: u16 = 1 << 4;
}

/// A rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    pub table: u8,
    pub priority: u16,
    pub matched: Match,
    pub actions: Vec<RuleAction>,
    pub cookie: u64,
    /// Seconds without a packet before the rule expires (0: never).
    pub idle_timeout: u16,
    /// Seconds after which the rule expires (0: never).
    pub hard_timeout: u16,
    /// [`flags`].
    pub flags: u16,
    /// Insertion order; earlier wins among overlapping equal priorities.
    /// Unique among the rules a [`RuleSet`] ever held: the rule's identity.
    pub seq: u64,
}

impl Rule {
    pub fn matches(&self, key: &FlowKey) -> bool {
        self.matched.matches(key)
    }

    /// OpenFlow's table-miss entry: priority 0, matching everything.
    pub fn is_table_miss(&self) -> bool {
        self.priority == 0 && self.matched.mask.is_zero()
    }

    /// Whether some packet could match both rules' matches.
    pub fn overlaps(&self, other: &Match) -> bool {
        let both = self.matched.mask.masked(&other.mask);
        self.matched.key.masked_eq(&other.key, &both)
    }
}

/// Which rules a modify, a delete or a statistics request names (as
/// OpenFlow and `ovs-ofctl` select them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// `None`: every table.
    pub table: Option<u8>,
    /// Non-strict: every rule at least as specific as this match (its mask
    /// covers this mask and it agrees on these bits). Strict: exactly it.
    pub matched: Match,
    /// Strict: only the rule of exactly this priority and match.
    pub strict: Option<u16>,
    /// Only rules whose cookie equals `cookie` under `cookie_mask`.
    pub cookie: u64,
    pub cookie_mask: u64,
    /// Only rules with an output to this port.
    pub out_port: Option<u32>,
    /// Only rules that send packets to this group.
    pub out_group: Option<u32>,
    /// Only rules that send packets through this meter (not an OpenFlow
    /// filter: deleting a meter deletes its rules).
    pub meter: Option<u32>,
}

impl Selector {
    /// Every rule of `table` (`None`: of every table).
    pub fn all(table: Option<u8>) -> Selector {
        Selector::matching(table, Match::default(), None)
    }

    /// The rules within `matched` (or, with `strict`, exactly it).
    pub fn matching(table: Option<u8>, matched: Match, strict: Option<u16>) -> Selector {
        Selector {
            table,
            matched: Match::new(matched.key, matched.mask),
            strict,
            cookie: 0,
            cookie_mask: 0,
            out_port: None,
            out_group: None,
            meter: None,
        }
    }

    pub fn selects(&self, r: &Rule) -> bool {
        let m = &self.matched;
        self.table.is_none_or(|t| t == r.table)
            && (r.cookie ^ self.cookie) & self.cookie_mask == 0
            && self.out_port.is_none_or(|p| r.actions.iter().any(|a| a.outputs_to(p)))
            && self
                .out_group
                .is_none_or(|g| r.actions.iter().any(|a| a.sends_to_group(g)))
            && self.meter.is_none_or(|m| meter::meter_named(&r.actions) == Some(m))
            && match self.strict {
                Some(p) => r.priority == p && r.matched == *m,
                None => r.matched.mask.masked(&m.mask) == m.mask && r.matched.key.masked(&m.mask) == m.key,
            }
    }
}

/// The four lookup stages and the key fields in each.
fn stage_fields() -> [FlowKey; 4] {
    use field::Field::*;
    let mut out = [FlowKey::ZERO; 4];
    let groups: [&[Field]; 4] = [
        &[
            Metadata,
            InPort,
            SkbPriority,
            PktMark,
            TunId,
            TunSrc,
            TunDst,
            TunIpv6Src,
            TunIpv6Dst,
            TunTos,
            TunTtl,
            TunFlags,
            TunTpSrc,
            TunTpDst,
        ],
        &[DlSrc, DlDst, DlType, VlanTci],
        &[
            NwSrc, NwDst, NwProto, NwTos, NwEcn, NwTtl, NwFrag, ArpOp, ArpSha, ArpTha, Ipv6Src, Ipv6Dst, Ipv6Label,
            MplsLabel, MplsTc, MplsBos, MplsTtl,
        ],
        &[TpSrc, TpDst, TcpFlags, NdTarget],
    ];
    for (i, g) in groups.iter().enumerate() {
        for f in g.iter() {
            out[i].or_assign(&f.key_mask());
        }
    }
    // Everything the groups do not name (vlan tpids, mpls depth...) is L2/L3.
    out[1].vlan_tpid = !0;
    out[1].cvlan_tpid = !0;
    out[1].cvlan_tci = !0;
    out[2].mpls_lse = [!0; 3];
    out[2].mpls_depth = !0;
    out
}

fn hash_masked(key: &FlowKey, mask: &FlowKey) -> u64 {
    let (k, m) = (key.words(), mask.words());
    let mut h = 0x243f_6a88_85a3_08d3u64;
    for i in 0..WORDS {
        h = crate::key::mix_word(h, k[i] & m[i]);
    }
    h
}

/// A delete of at least this many rules, and of at least half of them
/// all, rebuilds the index instead of taking each rule out of it.
const BULK_DELETE: usize = 1024;

/// The prefix fields tracked by tries: field, prerequisite Ethertype.
/// Destinations first: when both can justify a skip, ties go to them.
const TRIE_FIELDS: [(Field, u16); 4] = [
    (Field::NwDst, 0x0800),
    (Field::NwSrc, 0x0800),
    (Field::Ipv6Dst, 0x86dd),
    (Field::Ipv6Src, 0x86dd),
];

/// Rule prefixes of one field, flattened: per length, counts of prefixes
/// that are rule prefixes (`ends`) or lie on the path to one (`nodes`).
#[derive(Default, Clone)]
struct PrefixTrie {
    bits: u32,
    nodes: Vec<HashMap<u128, u32>>,
    ends: Vec<HashMap<u128, u32>>,
}

impl PrefixTrie {
    fn new(bits: u32) -> Self {
        PrefixTrie {
            bits,
            nodes: vec![HashMap::new(); bits as usize + 1],
            ends: vec![HashMap::new(); bits as usize + 1],
        }
    }

    fn prefix(&self, v: u128, len: u32) -> u128 {
        if len == 0 {
            0
        } else {
            v >> (self.bits - len)
        }
    }

    fn update(&mut self, v: u128, len: u32, add: bool) {
        for l in 0..=len {
            let p = self.prefix(v, l);
            bump(&mut self.nodes[l as usize], p, add);
        }
        let p = self.prefix(v, len);
        bump(&mut self.ends[len as usize], p, add);
    }

    /// Length of the longest trie path the address follows (-1: empty trie).
    fn depth(&self, v: u128) -> i32 {
        if !self.nodes[0].contains_key(&0) {
            return -1;
        }
        let (mut lo, mut hi) = (0u32, self.bits);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if self.nodes[mid as usize].contains_key(&self.prefix(v, mid)) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo as i32
    }

    /// Bits of `v` that must be fixed to prove that no rule prefix longer
    /// than `d` (its trie depth) matches: `d` when the path ends in a node
    /// nothing extends, else `d + 1` (the bit where the path leaves the trie).
    fn pin_bits(&self, v: u128, d: i32) -> u32 {
        let d = d.max(0) as u32;
        if d >= self.bits {
            return self.bits;
        }
        let p = self.prefix(v, d) << 1;
        let next = &self.nodes[d as usize + 1];
        if next.contains_key(&p) || next.contains_key(&(p | 1)) {
            d + 1
        } else {
            d
        }
    }

    /// The shortest prefix length some rule uses that is at least `bits`
    /// (`bits` itself if none is). Pinning that many bits keeps the number
    /// of distinct megaflow masks down to the lengths the rules use.
    fn round_to_rule_length(&self, bits: u32) -> u32 {
        (bits..=self.bits)
            .find(|&l| !self.ends[l as usize].is_empty())
            .unwrap_or(bits)
    }

    fn is_rule_prefix(&self, v: u128, len: u32) -> bool {
        self.ends[len as usize].contains_key(&self.prefix(v, len))
    }
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, k: K, add: bool) {
    if add {
        *map.entry(k).or_insert(0) += 1;
    } else if let Some(c) = map.get_mut(&k) {
        *c -= 1;
        if *c == 0 {
            map.remove(&k);
        }
    }
}

/// The prefix length of `mask` on a trie field, if it is a CIDR prefix > 0.
fn prefix_len(f: Field, mask: &FlowKey) -> Option<u32> {
    let m = f.get(mask);
    let bits = f.bits();
    let shifted = m << (128 - bits);
    let len = shifted.leading_ones();
    (len > 0 && shifted << len == 0).then_some(len)
}

struct RuleSubtable {
    mask: FlowKey,
    /// Cumulative stage masks that are non-empty, in order; the last is `mask`.
    stages: Vec<FlowKey>,
    /// Hash sets (with counts) for every stage but the last.
    stage_sets: Vec<HashMap<u64, u32>>,
    /// Final stage: hash of `key & mask` -> rule ids, best first.
    rules: HashMap<u64, Vec<u32>>,
    n_rules: usize,
    max_priority: u16,
    /// How many rules have each priority: the highest is `max_priority`,
    /// known again without a walk when a rule goes.
    priorities: BTreeMap<u16, u32>,
    /// Prefix length on each trie field, if the mask is a prefix there.
    plens: [Option<u32>; 4],
}

impl RuleSubtable {
    fn new(mask: FlowKey, stage_masks: &[FlowKey; 4]) -> Self {
        let mut stages = Vec::new();
        let mut cum = FlowKey::ZERO;
        let mut last_added = FlowKey::ZERO;
        for s in stage_masks {
            cum.or_assign(&mask.masked(s));
            if cum != last_added && !cum.is_zero() {
                stages.push(cum);
                last_added = cum;
            }
        }
        if stages.last() != Some(&mask) {
            stages.push(mask);
        }
        let n = stages.len();
        RuleSubtable {
            mask,
            stages,
            stage_sets: vec![HashMap::new(); n - 1],
            rules: HashMap::new(),
            n_rules: 0,
            max_priority: 0,
            priorities: BTreeMap::new(),
            plens: TRIE_FIELDS.map(|(f, _)| prefix_len(f, &mask)),
        }
    }
}

#[derive(Default)]
struct Table {
    subtables: Vec<RuleSubtable>,
    tries: Vec<PrefixTrie>,
    n_rules: usize,
}

/// Outcome of one lookup, for tracing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupStats {
    pub subtables_probed: u32,
    pub subtables_skipped_by_trie: u32,
}

/// All rule tables.
pub struct RuleSet {
    rules: Vec<Option<Rule>>,
    free: Vec<u32>,
    tables: Vec<Table>,
    next_seq: u64,
    stage_masks: [FlowKey; 4],
    /// Round prefix-trie pins up to prefix lengths the rules use (see the
    /// module essay, "Few masks"). On by default.
    round_prefix_pins: bool,
    /// The groups the rules send packets to.
    groups: GroupTable,
    /// The meters the rules send packets through.
    meters: MeterTable,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for RuleSet {
    fn clone(&self) -> Self {
        let mut out = RuleSet::new();
        for r in self.iter() {
            out.insert_rule(r.clone());
        }
        out.next_seq = self.next_seq;
        out.round_prefix_pins = self.round_prefix_pins;
        out.groups = self.groups.clone();
        out.meters = self.meters.clone();
        out
    }
}

impl RuleSet {
    pub fn new() -> Self {
        RuleSet {
            rules: Vec::new(),
            free: Vec::new(),
            tables: Vec::new(),
            next_seq: 0,
            stage_masks: stage_fields(),
            round_prefix_pins: true,
            groups: GroupTable::default(),
            meters: MeterTable::default(),
        }
    }

    /// The group table the rules send packets to.
    pub fn groups(&self) -> &GroupTable {
        &self.groups
    }

    /// The group table, to change (its invariants are the caller's to
    /// keep: [`GroupTable::check`] first).
    pub fn groups_mut(&mut self) -> &mut GroupTable {
        &mut self.groups
    }

    /// The meter table the rules send packets through.
    pub fn meters(&self) -> &MeterTable {
        &self.meters
    }

    /// The meter table, to change ([`MeterTable::check`] first).
    pub fn meters_mut(&mut self) -> &mut MeterTable {
        &mut self.meters
    }

    /// Numbers this set's rules from `seq` on, so that they never share
    /// a number with another set's (whose counters are kept by number).
    pub fn numbered_from(mut self, seq: u64) -> Self {
        self.next_seq = self.next_seq.max(seq);
        self
    }

    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.n_rules).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every rule, by table, then priority (highest first), then insertion.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> + '_ {
        let mut v: Vec<&Rule> = self.rules.iter().flatten().collect();
        v.sort_by_key(|r| (r.table, std::cmp::Reverse(r.priority), r.seq));
        v.into_iter()
    }

    /// Chooses whether prefix-trie pins are rounded up to the prefix lengths
    /// the rules use: fewer distinct megaflow masks (fewer subtables to probe
    /// per packet) for somewhat narrower megaflows.
    pub fn set_prefix_pin_rounding(&mut self, on: bool) {
        self.round_prefix_pins = on;
    }

    /// Number of distinct masks in `table`.
    pub fn subtable_count(&self, table: u8) -> usize {
        self.tables.get(table as usize).map_or(0, |t| t.subtables.len())
    }

    /// Adds a rule (OpenFlow add: replaces a rule with the same table,
    /// priority and match). Returns the rule it replaced, if any.
    pub fn add(&mut self, mut rule: Rule) -> Option<Rule> {
        rule.matched = Match::new(rule.matched.key, rule.matched.mask);
        let old = self
            .find_exact(rule.table, rule.priority, &rule.matched)
            .and_then(|id| self.remove_id(id));
        rule.seq = self.next_seq;
        self.next_seq += 1;
        self.insert_rule(rule);
        old
    }

    fn find_exact(&self, table: u8, priority: u16, m: &Match) -> Option<u32> {
        let t = self.tables.get(table as usize)?;
        let st = t.subtables.iter().find(|s| s.mask == m.mask)?;
        let ids = st.rules.get(&hash_masked(&m.key, &m.mask))?;
        ids.iter().copied().find(|&id| {
            self.rules[id as usize]
                .as_ref()
                .is_some_and(|r| r.priority == priority && r.matched == *m)
        })
    }

    fn insert_rule(&mut self, rule: Rule) {
        let id = match self.free.pop() {
            Some(i) => i,
            None => {
                self.rules.push(None);
                (self.rules.len() - 1) as u32
            }
        };
        self.rules[id as usize] = Some(rule);
        self.index_rule(id);
    }

    /// Enters the rule in slot `id` into its table's index: subtable,
    /// stage sets, bucket (best first), priorities, tries.
    fn index_rule(&mut self, id: u32) {
        let Some(rule) = self.rules[id as usize].as_ref() else {
            return;
        };
        let table = rule.table as usize;
        while self.tables.len() <= table {
            self.tables.push(Table {
                subtables: Vec::new(),
                tries: TRIE_FIELDS.iter().map(|(f, _)| PrefixTrie::new(f.bits())).collect(),
                n_rules: 0,
            });
        }
        let t = &mut self.tables[table];
        let pos = match t.subtables.iter().position(|s| s.mask == rule.matched.mask) {
            Some(p) => p,
            None => {
                t.subtables
                    .push(RuleSubtable::new(rule.matched.mask, &self.stage_masks));
                t.subtables.len() - 1
            }
        };
        let st = &mut t.subtables[pos];
        for (i, set) in st.stage_sets.iter_mut().enumerate() {
            bump(set, hash_masked(&rule.matched.key, &st.stages[i]), true);
        }
        let bucket = st.rules.entry(hash_masked(&rule.matched.key, &st.mask)).or_default();
        bucket.push(id);
        let rules = &self.rules;
        let key_of = |i: &u32| {
            rules[*i as usize]
                .as_ref()
                .map_or((0, 0), |r| (std::cmp::Reverse(r.priority).0, r.seq))
        };
        // Best first: priority descending, then insertion order.
        bucket.sort_by(|a, b| {
            let ((pa, sa), (pb, sb)) = (key_of(a), key_of(b));
            pb.cmp(&pa).then(sa.cmp(&sb))
        });
        st.n_rules += 1;
        st.max_priority = st.max_priority.max(rule.priority);
        *st.priorities.entry(rule.priority).or_default() += 1;
        for (i, (f, _)) in TRIE_FIELDS.iter().enumerate() {
            if let Some(len) = st.plens[i] {
                t.tries[i].update(f.get(&rule.matched.key), len, true);
            }
        }
        t.n_rules += 1;
        t.subtables.sort_by_key(|s| std::cmp::Reverse(s.max_priority));
    }

    /// Deletes the rules in slots `ids`, at least half of all: out of
    /// their slots, then the index built again from the rules that stay
    /// (undoing each rule's share of it took longer, 100k at once).
    fn remove_bulk(&mut self, ids: &[u32], mut f: impl FnMut(Rule)) -> usize {
        let mut n = 0;
        for &id in ids {
            if let Some(r) = self.rules.get_mut(id as usize).and_then(Option::take) {
                self.free.push(id);
                f(r);
                n += 1;
            }
        }
        self.tables.clear();
        for id in 0..self.rules.len() as u32 {
            self.index_rule(id);
        }
        n
    }

    fn remove_id(&mut self, id: u32) -> Option<Rule> {
        let rule = self.rules.get_mut(id as usize)?.take()?;
        self.free.push(id);
        let t = &mut self.tables[rule.table as usize];
        let pos = t.subtables.iter().position(|s| s.mask == rule.matched.mask)?;
        let st = &mut t.subtables[pos];
        for (i, set) in st.stage_sets.iter_mut().enumerate() {
            bump(set, hash_masked(&rule.matched.key, &st.stages[i]), false);
        }
        let h = hash_masked(&rule.matched.key, &st.mask);
        if let Some(b) = st.rules.get_mut(&h) {
            b.retain(|&x| x != id);
            if b.is_empty() {
                st.rules.remove(&h);
            }
        }
        for (i, (f, _)) in TRIE_FIELDS.iter().enumerate() {
            if let Some(len) = st.plens[i] {
                t.tries[i].update(f.get(&rule.matched.key), len, false);
            }
        }
        st.n_rules -= 1;
        t.n_rules -= 1;
        if let Some(n) = st.priorities.get_mut(&rule.priority) {
            *n -= 1;
            if *n == 0 {
                st.priorities.remove(&rule.priority);
            }
        }
        if st.n_rules == 0 {
            t.subtables.remove(pos);
        } else {
            let max = st.priorities.keys().next_back().copied().unwrap_or(0);
            if max != st.max_priority {
                st.max_priority = max;
                t.subtables.sort_by_key(|s| std::cmp::Reverse(s.max_priority));
            }
        }
        Some(rule)
    }

    /// The rules `sel` names, by table, then priority, then age.
    pub fn select(&self, sel: &Selector) -> Vec<&Rule> {
        let mut v: Vec<&Rule> = self.rules.iter().flatten().filter(|r| sel.selects(r)).collect();
        v.sort_by_key(|r| (r.table, std::cmp::Reverse(r.priority), r.seq));
        v
    }

    fn selected_ids(&self, sel: &Selector) -> Vec<u32> {
        // Strict: at most one rule per table, found by its hash (timeouts
        // expire rules one by one through this).
        if let Some(priority) = sel.strict {
            let tables = match sel.table {
                Some(t) => t..=t,
                None => 0..=(self.tables.len().max(1) - 1) as u8,
            };
            return tables
                .filter_map(|t| self.find_exact(t, priority, &sel.matched))
                .filter(|&i| self.rules[i as usize].as_ref().is_some_and(|r| sel.selects(r)))
                .collect();
        }
        (0..self.rules.len() as u32)
            .filter(|&i| self.rules[i as usize].as_ref().is_some_and(|r| sel.selects(r)))
            .collect()
    }

    /// Deletes the rules `sel` names (`ovs-ofctl del-flows`, OpenFlow's
    /// DELETE and DELETE_STRICT). Returns them.
    pub fn delete(&mut self, sel: &Selector) -> Vec<Rule> {
        let mut gone = Vec::new();
        self.delete_each(sel, |r| gone.push(r));
        gone
    }

    /// [`Self::delete`], handing each deleted rule to `f` (100k deleted
    /// rules gathered in one vector cost more than deleting them); returns
    /// how many.
    pub fn delete_each(&mut self, sel: &Selector, mut f: impl FnMut(Rule)) -> usize {
        let doomed = self.selected_ids(sel);
        if doomed.len() >= BULK_DELETE && doomed.len() * 2 >= self.len() {
            return self.remove_bulk(&doomed, f);
        }
        let mut n = 0;
        for r in doomed.into_iter().filter_map(|id| self.remove_id(id)) {
            f(r);
            n += 1;
        }
        n
    }

    /// Changes the rules `sel` names with `f` (OpenFlow's MODIFY and
    /// MODIFY_STRICT: actions, flags, cookie; a rule's table, priority,
    /// match and identity stay). Returns the rules as they were before.
    pub fn modify(&mut self, sel: &Selector, mut f: impl FnMut(&mut Rule)) -> Vec<Rule> {
        let mut before = Vec::new();
        for id in self.selected_ids(sel) {
            let Some(r) = self.rules[id as usize].as_mut() else {
                continue;
            };
            before.push(r.clone());
            let (table, priority, matched, seq) = (r.table, r.priority, r.matched, r.seq);
            f(r);
            (r.table, r.priority, r.matched, r.seq) = (table, priority, matched, seq);
        }
        before
    }

    /// The rule with exactly this table, priority and match.
    pub fn get_strict(&self, table: u8, priority: u16, m: &Match) -> Option<&Rule> {
        let m = Match::new(m.key, m.mask);
        self.find_exact(table, priority, &m)
            .and_then(|id| self.rules[id as usize].as_ref())
    }

    /// Whether a rule of `table` and `priority` other than one with exactly
    /// match `m` overlaps `m` (OpenFlow's CHECK_OVERLAP).
    pub fn overlaps(&self, table: u8, priority: u16, m: &Match) -> bool {
        let m = Match::new(m.key, m.mask);
        self.rules
            .iter()
            .flatten()
            .any(|r| r.table == table && r.priority == priority && r.matched != m && r.overlaps(&m))
    }

    /// Rules in `table`.
    pub fn table_len(&self, table: u8) -> usize {
        self.tables.get(table as usize).map_or(0, |t| t.n_rules)
    }

    /// Finds the best rule for `key` in `table`, ORing consulted bits into `wc`.
    pub fn lookup(&self, table: u8, key: &FlowKey, wc: &mut FlowKey) -> Option<&Rule> {
        self.lookup_with_stats(table, key, wc).0
    }

    pub fn lookup_with_stats(&self, table: u8, key: &FlowKey, wc: &mut FlowKey) -> (Option<&Rule>, LookupStats) {
        let mut stats = LookupStats::default();
        let Some(t) = self.tables.get(table as usize) else {
            return (None, stats);
        };
        let mut best: Option<&Rule> = None;
        // Trie results, computed on first use: depth per trie field.
        let mut depth: [Option<i32>; 4] = [None; 4];
        for st in &t.subtables {
            if let Some(b) = best {
                if st.max_priority < b.priority {
                    break;
                }
            }
            // Prefix tracking: skip subtables whose prefix cannot match.
            // When several tries can prove it, use the one whose pin adds
            // the fewest bits not already pinned (ties: the order of
            // TRIE_FIELDS, destination first, which routing pins anyway).
            let mut best_pin: Option<(u32, FlowKey)> = None;
            for (i, (f, prereq)) in TRIE_FIELDS.iter().enumerate() {
                let Some(len) = st.plens[i] else { continue };
                if key.eth_type != *prereq {
                    continue;
                }
                let v = f.get(key);
                let d = *depth[i].get_or_insert_with(|| t.tries[i].depth(v));
                if len as i32 <= d && t.tries[i].is_rule_prefix(v, len) {
                    continue;
                }
                let pin = if len as i32 <= d {
                    len
                } else {
                    t.tries[i].pin_bits(v, d)
                };
                let pin = if self.round_prefix_pins {
                    t.tries[i].round_to_rule_length(pin)
                } else {
                    pin
                };
                let pinned = prefix_mask_u128(pin) >> (128 - f.bits());
                let new_bits = (pinned & !f.get(wc)).count_ones();
                if best_pin.is_none_or(|(b, _)| new_bits < b) {
                    let mut m = FlowKey::ZERO;
                    f.put(&mut m, pinned, u128::MAX);
                    best_pin = Some((new_bits, m));
                }
            }
            let skip = best_pin.is_some();
            if let Some((_, m)) = best_pin {
                wc.eth_type = !0;
                wc.or_assign(&m);
            }
            if skip {
                stats.subtables_skipped_by_trie += 1;
                continue;
            }
            stats.subtables_probed += 1;
            let mut failed = false;
            for (i, set) in st.stage_sets.iter().enumerate() {
                if !set.contains_key(&hash_masked(key, &st.stages[i])) {
                    wc.or_assign(&st.stages[i]);
                    failed = true;
                    break;
                }
            }
            if failed {
                continue;
            }
            wc.or_assign(&st.mask);
            let Some(bucket) = st.rules.get(&hash_masked(key, &st.mask)) else {
                continue;
            };
            for &id in bucket {
                let Some(r) = self.rules[id as usize].as_ref() else {
                    continue;
                };
                if r.matches(key) {
                    let better = match best {
                        None => true,
                        Some(b) => r.priority > b.priority || (r.priority == b.priority && r.seq < b.seq),
                    };
                    if better {
                        best = Some(r);
                    }
                    break;
                }
            }
        }
        (best, stats)
    }
}

#[cfg(test)]
mod tests;
