//! The rule tables as OpenFlow defines them: FLOW_MOD's adds, modifies
//! and deletes, each rule's counters, and idle and hard timeouts.
//!
//! # What
//! [`Core::rule_ops`] applies a batch of [`RuleOp`]s in order, each whole
//! or not at all, and answers each at once (the core decides without
//! I/O); the megaflows they affect are revalidated once for the batch,
//! and a later barrier ([`super::Change::Sync`]) says when every datapath
//! agrees.
//!
//! # Counters
//! A rule's packets and bytes are those of every packet whose translation
//! went through it, whichever datapath carried the packet: the upcalled
//! packet itself (credited when it is translated), and then its
//! megaflow's hits as the sweeps read them back from the PMDs and the
//! kernel (credited by difference to every rule of the megaflow's
//! lookups, [`odpx_classifier::xlate::Lookup::rule`]). A megaflow the
//! owner deletes before a sweep read its last packets is credited too:
//! the PMD reports its final statistics with its next sweep, the kernel
//! echoes them with the deletion, and the owner keeps the megaflow's
//! lookups until then ([`super::sweep`]'s tombstones). The tables count
//! lookups and matches the same way. A rule's last use is the latest use
//! of any megaflow that went through it.
//!
//! # Timeouts
//! After each sweep (the counters are fresh then), rules idle for their
//! `idle_timeout` (no packet in any datapath) or older than their
//! `hard_timeout` are deleted like any other rule; the ones that asked
//! for it are reported ([`super::Op::RulesRemoved`]) for FLOW_REMOVED messages.
//!
//! # Invariants
//! * Every rule in the tables has a [`RuleStats`] entry, and only they do.
//! * A batch that fails an op leaves that op without effect; the ops
//!   before and after it apply (OpenFlow answers each FLOW_MOD alone).

use super::{Core, FULL_REVALIDATION_RULES};
use hashbrown::HashMap;
use odpx_classifier::rules::group::groups_named;
use odpx_classifier::rules::meter::meter_named;
use odpx_classifier::rules::{flags, Rule, RuleAction, Selector};
use odpx_classifier::xlate::Lookup;
use std::time::{Duration, Instant};

/// The number of tables (0 to 253, as Open vSwitch; 254 and 255 are not
/// tables a controller may use).
pub const N_TABLES: u8 = 254;

/// Rules the tables hold at most (FLOW_MOD_FAILED/TABLE_FULL beyond).
pub const MAX_RULES: usize = 1_000_000;

/// One change to the rule tables (a FLOW_MOD, or a rule file's line).
#[derive(Clone, Debug)]
pub enum RuleOp {
    /// Adds a rule; one with the same table, priority and match is
    /// replaced (its counters kept unless `RESET_COUNTS` is in the new
    /// rule's flags). With `CHECK_OVERLAP` in its flags, a rule of the same
    /// priority that overlaps refuses it.
    Add(Rule),
    /// Gives the rules `sel` names new actions (and, with
    /// `RESET_COUNTS`, zero counters).
    Modify {
        sel: Selector,
        actions: Vec<RuleAction>,
        reset_counts: bool,
    },
    /// Deletes the rules `sel` names.
    Delete { sel: Selector },
}

/// Why an op was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleOpError {
    /// `CHECK_OVERLAP`: a rule of the same priority overlaps.
    Overlap,
    /// No table by that number.
    BadTable,
    /// The tables hold [`MAX_RULES`] rules.
    TableFull,
    /// The actions send packets to a group that does not exist.
    UnknownGroup(u32),
    /// The actions send packets through a meter that does not exist.
    UnknownMeter(u32),
}

/// What a rule saw, for FLOW stats and FLOW_REMOVED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleStats {
    pub packets: u64,
    pub bytes: u64,
    pub added: Instant,
    /// The last packet (or the add, if none came since).
    pub used: Instant,
    /// The add, or the last time `learn` taught the rule again: its hard
    /// timeout runs from here, its idle timeout from the later of this
    /// and `used` (as Open vSwitch's `modified`).
    pub modified: Instant,
}

impl RuleStats {
    pub fn new(now: Instant) -> RuleStats {
        RuleStats {
            packets: 0,
            bytes: 0,
            added: now,
            used: now,
            modified: now,
        }
    }
}

/// Why a rule went (`ofp_flow_removed_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    IdleTimeout = 0,
    HardTimeout = 1,
    Delete = 2,
    /// The group it sent packets to was deleted.
    GroupDelete = 3,
}

/// A rule that went, with its last counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedRule {
    pub rule: Rule,
    pub stats: RuleStats,
    pub reason: Removal,
}

/// One table's lookups and matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCount {
    pub lookups: u64,
    pub matched: u64,
}

/// The counters the rule tables keep (see the module documentation).
#[derive(Default)]
pub struct RuleCounters {
    rules: HashMap<u64, RuleStats>,
    tables: Vec<TableCount>,
}

impl RuleCounters {
    /// Counters for the rules of a table set made at `now`.
    pub fn for_rules<'a>(rules: impl Iterator<Item = &'a Rule>, now: Instant) -> RuleCounters {
        RuleCounters {
            rules: rules.map(|r| (r.seq, RuleStats::new(now))).collect(),
            tables: vec![TableCount::default(); N_TABLES as usize],
        }
    }

    /// Credits `packets` and `bytes`, used at `used`, to every rule and
    /// table of `lookups`.
    pub fn credit(&mut self, lookups: &[Lookup], packets: u64, bytes: u64, used: Option<Instant>) {
        if packets == 0 && used.is_none() {
            return;
        }
        for l in lookups {
            if let Some(t) = self.tables.get_mut(l.table as usize) {
                t.lookups += packets;
                t.matched += if l.rule.is_some() { packets } else { 0 };
            }
            let Some(s) = l.rule.and_then(|seq| self.rules.get_mut(&seq)) else {
                continue;
            };
            s.packets += packets;
            s.bytes += bytes;
            if let Some(u) = used {
                s.used = s.used.max(u);
            }
        }
    }

    pub fn get(&self, seq: u64) -> Option<RuleStats> {
        self.rules.get(&seq).copied()
    }

    /// A rule `learn` taught again at `now`: its timeouts start again.
    pub fn refresh(&mut self, seq: u64, now: Instant) {
        if let Some(s) = self.rules.get_mut(&seq) {
            s.modified = s.modified.max(now);
        }
    }

    pub fn table(&self, table: u8) -> TableCount {
        self.tables.get(table as usize).copied().unwrap_or_default()
    }
}

impl Core {
    /// Applies `ops` in order, each whole or not at all, and answers each
    /// (how many rules it added, changed or deleted). Revalidates what
    /// they may affect, once; rules deleted that asked for it are
    /// reported ([`super::Op::RulesRemoved`]).
    pub fn rule_ops(&mut self, ops: Vec<RuleOp>, now: Instant) -> Vec<Result<usize, RuleOpError>> {
        let mut changed = Touched::default();
        let mut removed = Vec::new();
        let answers = ops
            .into_iter()
            .map(|op| self.rule_op(op, now, &mut changed, &mut removed))
            .collect();
        self.rules_removed(removed);
        if !changed.is_empty() {
            self.rules_changed(changed);
        }
        answers
    }

    fn rule_op(
        &mut self,
        op: RuleOp,
        now: Instant,
        changed: &mut Touched,
        removed: &mut Vec<RemovedRule>,
    ) -> Result<usize, RuleOpError> {
        match op {
            RuleOp::Add(rule) => {
                if rule.table >= N_TABLES {
                    return Err(RuleOpError::BadTable);
                }
                self.named_exist(&rule.actions)?;
                if rule.flags & flags::CHECK_OVERLAP != 0
                    && self.rules.overlaps(rule.table, rule.priority, &rule.matched)
                {
                    return Err(RuleOpError::Overlap);
                }
                if self.rules.len() >= MAX_RULES
                    && self
                        .rules
                        .get_strict(rule.table, rule.priority, &rule.matched)
                        .is_none()
                {
                    return Err(RuleOpError::TableFull);
                }
                let reset = rule.flags & flags::RESET_COUNTS != 0;
                let old = self.rules.add(rule.clone());
                let added = self.rules.get_strict(rule.table, rule.priority, &rule.matched).cloned();
                let kept = old
                    .as_ref()
                    .and_then(|o| self.rule_counters.rules.remove(&o.seq))
                    .filter(|_| !reset);
                if let Some(a) = &added {
                    let mut stats = kept.unwrap_or_else(|| RuleStats::new(now));
                    (stats.added, stats.modified) = (now, now);
                    self.rule_counters.rules.insert(a.seq, stats);
                    changed.note(a);
                }
                if let Some(o) = &old {
                    changed.note(o);
                }
                Ok(1)
            }
            RuleOp::Modify {
                sel,
                actions,
                reset_counts,
            } => {
                self.named_exist(&actions)?;
                let before = self.rules.modify(&sel, |r| r.actions = actions.clone());
                for r in &before {
                    if reset_counts {
                        if let Some(s) = self.rule_counters.rules.get_mut(&r.seq) {
                            (s.packets, s.bytes) = (0, 0);
                        }
                    }
                }
                let n = before.len();
                before.iter().for_each(|r| changed.note(r));
                Ok(n)
            }
            RuleOp::Delete { sel } => Ok(self.delete_rules(&sel, Removal::Delete, changed, removed)),
        }
    }

    /// Deletes the rules `sel` names, for `reason`; returns how many.
    pub(super) fn delete_rules(
        &mut self,
        sel: &Selector,
        reason: Removal,
        changed: &mut Touched,
        removed: &mut Vec<RemovedRule>,
    ) -> usize {
        let counters = &mut self.rule_counters.rules;
        self.rules.delete_each(sel, |r| {
            changed.note(&r);
            let stats = counters.remove(&r.seq);
            if let Some(stats) = stats.filter(|_| r.flags & flags::SEND_FLOW_REM != 0) {
                removed.push(RemovedRule { rule: r, stats, reason });
            }
        })
    }

    /// `Err` with the first group `actions` send packets to, or the meter
    /// they send packets through, that does not exist.
    pub(super) fn named_exist(&self, actions: &[RuleAction]) -> Result<(), RuleOpError> {
        if let Some(g) = groups_named(actions).find(|g| !self.rules.groups().contains(*g)) {
            return Err(RuleOpError::UnknownGroup(g));
        }
        match meter_named(actions).filter(|m| !self.rules.meters().contains(*m)) {
            Some(m) => Err(RuleOpError::UnknownMeter(m)),
            None => Ok(()),
        }
    }

    /// Deletes the rules whose idle or hard timeout passed (see
    /// "Timeouts").
    pub(super) fn expire_rules(&mut self, now: Instant) {
        let mut doomed: Vec<(Rule, Removal)> = Vec::new();
        for r in self.rules.iter().filter(|r| r.idle_timeout != 0 || r.hard_timeout != 0) {
            let Some(s) = self.rule_counters.get(r.seq) else {
                continue;
            };
            let after = |secs: u16, since: Instant| {
                secs != 0 && now.saturating_duration_since(since) >= Duration::from_secs(u64::from(secs))
            };
            if after(r.hard_timeout, s.modified) {
                doomed.push((r.clone(), Removal::HardTimeout));
            } else if after(r.idle_timeout, s.used.max(s.modified)) {
                doomed.push((r.clone(), Removal::IdleTimeout));
            }
        }
        if doomed.is_empty() {
            return;
        }
        let mut removed = Vec::new();
        let mut changed = Touched::default();
        for (r, reason) in doomed {
            let sel = Selector::matching(Some(r.table), r.matched, Some(r.priority));
            for gone in self.rules.delete(&sel) {
                let stats = self.rule_counters.rules.remove(&gone.seq);
                if let Some(stats) = stats.filter(|_| gone.flags & flags::SEND_FLOW_REM != 0) {
                    removed.push(RemovedRule {
                        rule: gone.clone(),
                        stats,
                        reason,
                    });
                }
                changed.note(&gone);
            }
        }
        self.rules_removed(removed);
        self.rules_changed(changed);
    }

    /// A rule's counters.
    pub fn rule_stats(&self, seq: u64) -> Option<RuleStats> {
        self.rule_counters.get(seq)
    }

    /// A table's lookups and matches, and how many rules it holds.
    pub fn table_stats(&self, table: u8) -> (TableCount, usize) {
        (self.rule_counters.table(table), self.rules.table_len(table))
    }

    /// The rules `sel` names, with their counters.
    pub fn select_rules(&self, sel: &Selector) -> Vec<(Rule, RuleStats)> {
        self.rules
            .select(sel)
            .into_iter()
            .filter_map(|r| self.rule_counters.get(r.seq).map(|s| (r.clone(), s)))
            .collect()
    }
}

/// The rules a batch of changes touched (added, modified or deleted), for
/// [`Core::rules_changed`]: kept one by one up to
/// [`FULL_REVALIDATION_RULES`], past that only that there were many
/// (every megaflow is revalidated then, and copying 100k deleted rules
/// to say so cost more than deleting them).
#[derive(Default)]
pub(super) struct Touched {
    pub(super) rules: Vec<Rule>,
    pub(super) many: bool,
}

impl Touched {
    pub(super) fn note(&mut self, r: &Rule) {
        if self.many {
            return;
        }
        if self.rules.len() >= FULL_REVALIDATION_RULES {
            self.many = true;
            self.rules = Vec::new();
        } else {
            self.rules.push(r.clone());
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        !self.many && self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::rules::ofctl::parse_rule;

    fn lookup(table: u8, rule: Option<u64>) -> Lookup {
        Lookup {
            table,
            rule,
            rewrite: None,
        }
    }

    #[test]
    fn credit_goes_to_every_rule_and_table_of_the_path() {
        let t0 = Instant::now();
        let rules = [parse_rule("table=0,actions=goto_table:1").unwrap(), {
            let mut r = parse_rule("table=1,actions=drop").unwrap();
            r.seq = 1;
            r
        }];
        let mut c = RuleCounters::for_rules(rules.iter(), t0);
        let later = t0 + Duration::from_secs(3);
        c.credit(
            &[lookup(0, Some(0)), lookup(1, Some(1)), lookup(2, None)],
            5,
            500,
            Some(later),
        );
        assert_eq!(c.get(0).map(|s| (s.packets, s.bytes, s.used)), Some((5, 500, later)));
        assert_eq!(c.get(1).map(|s| s.packets), Some(5));
        assert_eq!(c.table(2), TableCount { lookups: 5, matched: 0 });
        assert_eq!(c.table(0), TableCount { lookups: 5, matched: 5 });
    }
}
