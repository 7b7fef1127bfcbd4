//! Groups: OpenFlow's group table (OpenFlow 1.3, 5.6), which rules reach
//! with the `group:N` action.
//!
//! # What
//! A [`Group`] is a list of [`Bucket`]s, each a list of actions, and a
//! kind that says which buckets a packet goes through:
//! * `all`: every bucket, each on its own copy of the packet (flooding,
//!   multicast);
//! * `select`: one bucket, chosen by a hash of the packet's addresses and
//!   ports and weighted by the buckets' weights (load balancing);
//! * `indirect`: its one bucket (many rules sharing a next hop);
//! * `fast_failover`: the first live bucket, a bucket being live when the
//!   port or group it watches is (a backup path without a controller).
//!
//! The [`GroupTable`] lives in the [`super::RuleSet`]: rules and groups
//! are one pipeline, published together, so a translation never sees a
//! rule without the group it names. Its invariants, checked by
//! [`GroupTable::check`] before any change is made:
//! * a rule's or a bucket's `group:N` names a group that exists;
//! * no group reaches itself through its buckets' `group` actions (a loop
//!   would be unbounded copying) — a bucket may watch any group, though;
//! * an indirect group has exactly one bucket.
//!
//! How the translator runs a group, and what a megaflow of one pins, is
//! [`crate::xlate`]'s business (its `group` room).

use super::field::Field;
use super::RuleAction;
use std::collections::BTreeMap;

/// The highest group number a controller may use (`OFPG_MAX`).
pub const MAX_GROUP_ID: u32 = 0xffff_ff00;
/// Every group (`OFPG_ALL`), in deletes and statistics requests.
pub const ALL_GROUPS: u32 = 0xffff_fffc;
/// No group (`OFPG_ANY`): an unused `watch_group`, a filter that filters nothing.
pub const ANY_GROUP: u32 = 0xffff_ffff;
/// Groups a switch holds at most (GROUP_MOD_FAILED/OUT_OF_GROUPS beyond).
pub const MAX_GROUPS: usize = 65536;
/// Buckets a group holds at most (GROUP_MOD_FAILED/OUT_OF_BUCKETS beyond).
pub const MAX_BUCKETS: usize = 1024;
/// How deep liveness follows `watch_group` chains (as Open vSwitch).
pub const MAX_LIVENESS_DEPTH: usize = 32;

/// What a group does with a packet (`ofp_group_type` numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKind {
    All = 0,
    Select = 1,
    Indirect = 2,
    FastFailover = 3,
}

impl GroupKind {
    pub fn from_wire(v: u8) -> Option<GroupKind> {
        Some(match v {
            0 => GroupKind::All,
            1 => GroupKind::Select,
            2 => GroupKind::Indirect,
            3 => GroupKind::FastFailover,
            _ => return None,
        })
    }

    /// The name `ovs-ofctl` writes (`type=...`).
    pub fn name(self) -> &'static str {
        match self {
            GroupKind::All => "all",
            GroupKind::Select => "select",
            GroupKind::Indirect => "indirect",
            GroupKind::FastFailover => "ff",
        }
    }
}

/// One bucket: its actions and what decides whether it is used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Bucket {
    /// A select group's share (0: never chosen); ignored by other kinds.
    pub weight: u16,
    /// The port whose liveness makes the bucket live.
    pub watch_port: Option<u32>,
    /// The group whose liveness makes the bucket live.
    pub watch_group: Option<u32>,
    pub actions: Vec<RuleAction>,
}

impl Bucket {
    /// Whether the bucket watches anything (if not, it is always live).
    pub fn watches(&self) -> bool {
        self.watch_port.is_some() || self.watch_group.is_some()
    }
}

/// How a select group chooses (`selection_method`, an Open vSwitch
/// extension: OpenFlow 1.3 leaves it to the switch).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Selection {
    /// The addresses, the protocol and the ports (see the translator's
    /// group room).
    #[default]
    Default,
    /// `selection_method=dp_hash`: Open vSwitch hashes in the datapath;
    /// odpx hashes the same fields as by default.
    DpHash,
    /// `selection_method=hash,fields(...)`: these fields only.
    Hash(Vec<Field>),
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    pub id: u32,
    pub kind: GroupKind,
    pub buckets: Vec<Bucket>,
    pub selection: Selection,
}

/// Why a group change was refused (OpenFlow's GROUP_MOD_FAILED codes
/// say which; see the control layer's conversion).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("group {0} already exists")]
    Exists(u32),
    #[error("group {0} does not exist")]
    Unknown(u32),
    #[error("group {0} is not a number a group may have (at most {MAX_GROUP_ID})")]
    BadId(u32),
    #[error("an action names group {0}, which does not exist")]
    MissingTarget(u32),
    #[error("group {0} would reach itself through its buckets")]
    Loop(u32),
    #[error("group {0} is indirect and must have exactly one bucket")]
    IndirectBuckets(u32),
    #[error("group {0}: {1} buckets, at most {MAX_BUCKETS}")]
    TooManyBuckets(u32, usize),
    #[error("the switch holds {MAX_GROUPS} groups, its most")]
    Full,
    #[error("group {0}: a bucket's actions may not be instructions (goto_table, write_actions, ...)")]
    Instruction(u32),
    #[error("group {0} is forwarded to by group {1}: delete that one first")]
    Chained(u32, u32),
}

/// The group table (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupTable {
    groups: BTreeMap<u32, Group>,
}

impl GroupTable {
    pub fn get(&self, id: u32) -> Option<&Group> {
        self.groups.get(&id)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.groups.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Every group, by number.
    pub fn iter(&self) -> impl Iterator<Item = &Group> + '_ {
        self.groups.values()
    }

    /// Whether `g` may be added (`replacing`: modified in place) as the
    /// table stands: the invariants of the module documentation.
    pub fn check(&self, g: &Group, replacing: bool) -> Result<(), GroupError> {
        if g.id > MAX_GROUP_ID {
            return Err(GroupError::BadId(g.id));
        }
        match (self.contains(g.id), replacing) {
            (true, false) => return Err(GroupError::Exists(g.id)),
            (false, true) => return Err(GroupError::Unknown(g.id)),
            (false, false) if self.len() >= MAX_GROUPS => return Err(GroupError::Full),
            _ => {}
        }
        if g.kind == GroupKind::Indirect && g.buckets.len() != 1 {
            return Err(GroupError::IndirectBuckets(g.id));
        }
        if g.buckets.len() > MAX_BUCKETS {
            return Err(GroupError::TooManyBuckets(g.id, g.buckets.len()));
        }
        for b in &g.buckets {
            if b.actions.iter().any(is_instruction) {
                return Err(GroupError::Instruction(g.id));
            }
            for t in groups_named(&b.actions) {
                if t != g.id && !self.contains(t) {
                    return Err(GroupError::MissingTarget(t));
                }
            }
        }
        if self.reaches(g, g.id) {
            return Err(GroupError::Loop(g.id));
        }
        Ok(())
    }

    /// Whether `from`'s buckets (with the table as it stands for the
    /// groups they name) reach group `target`.
    fn reaches(&self, from: &Group, target: u32) -> bool {
        let mut seen = Vec::new();
        let mut todo: Vec<u32> = from.buckets.iter().flat_map(|b| groups_named(&b.actions)).collect();
        while let Some(id) = todo.pop() {
            if id == target {
                return true;
            }
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            if let Some(g) = self.get(id) {
                todo.extend(g.buckets.iter().flat_map(|b| groups_named(&b.actions)));
            }
        }
        false
    }

    /// Whether group `id` may be deleted alone: no other group forwards
    /// to it (rules that do go with it).
    pub fn check_delete(&self, id: u32) -> Result<(), GroupError> {
        match self.referrers(id).first() {
            Some(&by) => Err(GroupError::Chained(id, by)),
            None => Ok(()),
        }
    }

    /// Adds or replaces `g`, unchecked (see [`GroupTable::check`]).
    pub fn put(&mut self, g: Group) -> Option<Group> {
        self.groups.insert(g.id, g)
    }

    pub fn remove(&mut self, id: u32) -> Option<Group> {
        self.groups.remove(&id)
    }

    /// The groups whose buckets name group `id` (a group another one
    /// forwards to cannot go alone).
    pub fn referrers(&self, id: u32) -> Vec<u32> {
        self.iter()
            .filter(|g| g.id != id && g.buckets.iter().any(|b| groups_named(&b.actions).any(|t| t == id)))
            .map(|g| g.id)
            .collect()
    }
}

/// OpenFlow instructions odpx writes as actions: not allowed in buckets.
fn is_instruction(a: &RuleAction) -> bool {
    matches!(
        a,
        RuleAction::ClearActions
            | RuleAction::WriteActions(_)
            | RuleAction::WriteMetadata { .. }
            | RuleAction::GotoTable(_)
            | RuleAction::Meter(_)
    )
}

/// The groups a list of actions sends packets to, in the action set too.
pub fn groups_named(actions: &[RuleAction]) -> impl Iterator<Item = u32> + '_ {
    actions.iter().flat_map(|a| match a {
        RuleAction::Group(id) => vec![*id],
        RuleAction::WriteActions(v) => groups_named(v).collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: u32, kind: GroupKind, targets: &[&[RuleAction]]) -> Group {
        Group {
            selection: Selection::Default,
            id,
            kind,
            buckets: targets
                .iter()
                .map(|a| Bucket {
                    actions: a.to_vec(),
                    ..Bucket::default()
                })
                .collect(),
        }
    }

    #[test]
    fn groups_must_exist_and_never_loop() {
        let mut t = GroupTable::default();
        let out = RuleAction::output(2);
        let g1 = group(
            1,
            GroupKind::All,
            &[std::slice::from_ref(&out), &[RuleAction::Group(2)]],
        );
        assert_eq!(t.check(&g1, false), Err(GroupError::MissingTarget(2)));
        let g2 = group(2, GroupKind::Indirect, &[std::slice::from_ref(&out)]);
        assert_eq!(t.check(&g2, true), Err(GroupError::Unknown(2)));
        t.check(&g2, false).unwrap();
        t.put(g2.clone());
        assert_eq!(t.check(&g2, false), Err(GroupError::Exists(2)));
        t.check(&g1, false).unwrap();
        t.put(g1);
        assert_eq!(t.referrers(2), vec![1]);
        assert_eq!(t.check_delete(2), Err(GroupError::Chained(2, 1)));
        assert_eq!(t.check_delete(1), Ok(()));
        // 2 -> 1 -> 2 is a loop; so is a group naming itself.
        let back = group(2, GroupKind::Indirect, &[&[RuleAction::Group(1)]]);
        assert_eq!(t.check(&back, true), Err(GroupError::Loop(2)));
        let me = group(3, GroupKind::All, &[&[RuleAction::Group(3)]]);
        assert_eq!(t.check(&me, false), Err(GroupError::Loop(3)));
        let two = group(
            4,
            GroupKind::Indirect,
            &[std::slice::from_ref(&out), std::slice::from_ref(&out)],
        );
        assert_eq!(t.check(&two, false), Err(GroupError::IndirectBuckets(4)));
        let goto = group(5, GroupKind::All, &[&[RuleAction::GotoTable(1)]]);
        assert_eq!(t.check(&goto, false), Err(GroupError::Instruction(5)));
        assert_eq!(
            t.check(&group(MAX_GROUP_ID + 1, GroupKind::All, &[]), false),
            Err(GroupError::BadId(MAX_GROUP_ID + 1))
        );
    }
}
