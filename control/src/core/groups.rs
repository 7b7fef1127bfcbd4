//! The group table as OpenFlow defines it: GROUP_MOD's adds, modifies and
//! deletes, and each group's and bucket's counters.
//!
//! # What
//! [`Core::group_ops`] applies a batch of [`GroupOp`]s in order, each whole
//! or not at all, and answers each at once; a later barrier says when
//! every datapath agrees (as [`super::rules`] does for FLOW_MODs). The
//! groups live in the rule set ([`odpx_classifier::rules::group`]), so a
//! translation sees rules and groups of one moment.
//!
//! # What a change does
//! * A group modified: every megaflow whose translation went through it
//!   is translated again (the registry records which groups each used),
//!   and so is every megaflow through a group whose buckets watch a group
//!   (its liveness may follow any group: one added, changed or deleted).
//! * A group deleted: so are the rules that send packets to it, as the
//!   OpenFlow specification says (reported with reason GROUP_DELETE to the
//!   controllers that asked), and the megaflows through either are
//!   revalidated. A group that another group forwards to is not deleted
//!   alone (CHAINED_GROUP); deleting every group deletes them all.
//! * A rule may only name groups that exist ([`super::rules`] checks).
//!
//! # Counters
//! A group counts the packets that reached it, a bucket those it ran,
//! whichever datapath carried them: credited like the rules' counters,
//! from the upcalled packet and then from each sweep's difference, to the
//! [`GroupUse`]s of the megaflow's translation.
//!
//! # Invariants
//! * Every group in the table has a [`GroupStats`] entry, and only they do.

use super::rules::{Removal, RemovedRule, Touched};
use super::Core;
use hashbrown::HashMap;
use odpx_classifier::rules::group::{Group, GroupError, ALL_GROUPS};
use odpx_classifier::rules::Selector;
use odpx_classifier::xlate::group::GroupUse;
use std::time::Instant;

/// One change to the group table (a GROUP_MOD, or `odpx ctl`'s verbs).
#[derive(Clone, Debug)]
pub enum GroupOp {
    /// Adds a group; one of the same number refuses it.
    Add(Group),
    /// Replaces an existing group's kind and buckets.
    Modify(Group),
    /// Deletes a group ([`ALL_GROUPS`]: every group) and the rules that
    /// send packets to it; a group that does not exist is no error.
    Delete(u32),
}

/// What a group saw, for GROUP stats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStats {
    pub packets: u64,
    pub bytes: u64,
    /// Each bucket's packets and bytes.
    pub buckets: Vec<(u64, u64)>,
    pub added: Instant,
}

impl GroupStats {
    fn new(g: &Group, now: Instant) -> GroupStats {
        GroupStats {
            packets: 0,
            bytes: 0,
            buckets: vec![(0, 0); g.buckets.len()],
            added: now,
        }
    }
}

/// The counters of every group (see "Counters").
#[derive(Default)]
pub struct GroupCounters {
    groups: HashMap<u32, GroupStats>,
}

impl GroupCounters {
    /// Counters for the groups of a rule set made at `now`.
    pub fn for_groups<'a>(groups: impl Iterator<Item = &'a Group>, now: Instant) -> GroupCounters {
        GroupCounters {
            groups: groups.map(|g| (g.id, GroupStats::new(g, now))).collect(),
        }
    }

    /// Credits `packets` and `bytes` to every group and bucket of `uses`.
    pub fn credit(&mut self, uses: &[GroupUse], packets: u64, bytes: u64) {
        if packets == 0 {
            return;
        }
        for u in uses {
            let Some(s) = self.groups.get_mut(&u.group) else {
                continue;
            };
            match u.bucket.and_then(|b| s.buckets.get_mut(b as usize)) {
                Some(b) => (b.0, b.1) = (b.0 + packets, b.1 + bytes),
                None if u.bucket.is_none() => (s.packets, s.bytes) = (s.packets + packets, s.bytes + bytes),
                None => {}
            }
        }
    }

    pub fn get(&self, id: u32) -> Option<&GroupStats> {
        self.groups.get(&id)
    }
}

impl Core {
    /// Applies `ops` in order, each whole or not at all, and answers each
    /// (how many groups it added, changed or deleted). Revalidates what
    /// they may affect, once.
    pub fn group_ops(&mut self, ops: Vec<GroupOp>, now: Instant) -> Vec<Result<usize, GroupError>> {
        let mut through = Vec::new();
        let mut changed = Touched::default();
        let mut removed = Vec::new();
        let answers: Vec<_> = ops
            .into_iter()
            .map(|op| self.group_op(op, now, &mut through, &mut changed, &mut removed))
            .collect();
        self.rules_removed(removed);
        if !changed.is_empty() {
            self.rules_changed(changed);
        }
        if answers_changed(&answers) {
            // A group that watches another is live or not by it: what went
            // through a watching group may change with any group.
            through.extend(self.rules.groups().iter().filter(|g| watches_a_group(g)).map(|g| g.id));
        }
        if !through.is_empty() {
            let ufids = self.registry.through_groups(&through);
            self.revalidate(ufids);
        }
        answers
    }

    fn group_op(
        &mut self,
        op: GroupOp,
        now: Instant,
        through: &mut Vec<u32>,
        changed: &mut Touched,
        removed: &mut Vec<RemovedRule>,
    ) -> Result<usize, GroupError> {
        match op {
            GroupOp::Add(g) => {
                self.rules.groups().check(&g, false)?;
                self.group_counters.groups.insert(g.id, GroupStats::new(&g, now));
                self.rules.groups_mut().put(g);
                Ok(1)
            }
            GroupOp::Modify(g) => {
                self.rules.groups().check(&g, true)?;
                // The group's totals stay; its buckets are new ones.
                if let Some(s) = self.group_counters.groups.get_mut(&g.id) {
                    s.buckets = vec![(0, 0); g.buckets.len()];
                }
                through.push(g.id);
                self.rules.groups_mut().put(g);
                Ok(1)
            }
            GroupOp::Delete(ALL_GROUPS) => {
                let ids: Vec<u32> = self.rules.groups().iter().map(|g| g.id).collect();
                for &id in &ids {
                    self.delete_group(id, through, changed, removed);
                }
                Ok(ids.len())
            }
            GroupOp::Delete(id) => {
                if !self.rules.groups().contains(id) {
                    return Ok(0);
                }
                self.rules.groups().check_delete(id)?;
                self.delete_group(id, through, changed, removed);
                Ok(1)
            }
        }
    }

    /// Deletes group `id` and the rules that send packets to it.
    fn delete_group(&mut self, id: u32, through: &mut Vec<u32>, changed: &mut Touched, removed: &mut Vec<RemovedRule>) {
        let sel = Selector {
            out_group: Some(id),
            ..Selector::all(None)
        };
        self.delete_rules(&sel, Removal::GroupDelete, changed, removed);
        self.rules.groups_mut().remove(id);
        self.group_counters.groups.remove(&id);
        through.push(id);
    }

    /// Every group with its counters, by number (`id`: only that one;
    /// [`ALL_GROUPS`]: all).
    pub fn groups(&self, id: u32) -> Vec<(Group, GroupStats)> {
        self.rules
            .groups()
            .iter()
            .filter(|g| id == ALL_GROUPS || g.id == id)
            .filter_map(|g| self.group_counters.get(g.id).map(|s| (g.clone(), s.clone())))
            .collect()
    }

    /// How many rules send packets to group `id` (GROUP stats' ref_count,
    /// which counts rules only, as Open vSwitch's).
    pub fn group_references(&self, id: u32) -> usize {
        self.rules
            .iter()
            .filter(|r| r.actions.iter().any(|a| a.sends_to_group(id)))
            .count()
    }
}

/// Whether any op of a batch changed the table.
fn answers_changed(answers: &[Result<usize, GroupError>]) -> bool {
    answers.iter().any(|a| a.as_ref().is_ok_and(|n| *n > 0))
}

fn watches_a_group(g: &Group) -> bool {
    g.buckets.iter().any(|b| b.watch_group.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::rules::ofctl::parse_group;

    #[test]
    fn groups_and_buckets_count_what_reached_them() {
        let t0 = Instant::now();
        let g = parse_group("group_id=5,type=all,bucket=output:1,bucket=output:2").unwrap();
        let mut c = GroupCounters::for_groups([&g].into_iter(), t0);
        let uses = [
            GroupUse { group: 5, bucket: None },
            GroupUse {
                group: 5,
                bucket: Some(1),
            },
            GroupUse { group: 9, bucket: None },
        ];
        c.credit(&uses, 3, 300);
        let s = c.get(5).unwrap();
        assert_eq!(
            (s.packets, s.bytes, s.buckets.clone()),
            (3, 300, vec![(0, 0), (3, 300)])
        );
        assert!(c.get(9).is_none());
    }
}
