//! `learn`: the rules translations make from packets, added to the rule
//! tables whatever path carries the packets.
//!
//! # What
//! A translation that runs `learn` returns the rules it made
//! ([`odpx_classifier::xlate::Translation::learned`]); the translator
//! pinned every packet bit they were made from, so every packet of the
//! megaflow makes the same ones. The core adds them:
//! * when a miss is translated (after its megaflow is registered and its
//!   install decided, so that the rule change revalidates it too);
//! * at every sweep, for each megaflow that carried packets since the
//!   last one (in a PMD, the EMC or the kernel: their statistics say so),
//!   as Open vSwitch's translation cache does. So a rule that expired or
//!   was deleted comes back while traffic still teaches it, and a MAC
//!   that moves is learned again within one sweep;
//! * when a controller's packet-out runs `learn`.
//!
//! A learned rule that is not in its table is added; one that is (same
//! table, priority and match) with other actions gets the new ones in
//! place, its counters kept; one with the same actions is only refreshed:
//! its idle and hard timeouts start again. Only the first two change the
//! tables (and revalidate the megaflows they may affect), so steady
//! traffic that keeps teaching the same rules costs no revalidation.
//!
//! # Invariants
//! Learning never adds a second rule for one table, priority and match.

use super::rules::RuleOp;
use super::{add, Core};
use odpx_classifier::rules::{Rule, Selector};
use std::time::Instant;

impl Core {
    /// Adds, changes or refreshes the rules translations learned (see the
    /// module documentation).
    pub(super) fn learn(&mut self, learned: Vec<Rule>, now: Instant) {
        let mut ops = Vec::new();
        for rule in learned {
            match self.rules.get_strict(rule.table, rule.priority, &rule.matched) {
                Some(there) if there.actions == rule.actions => self.rule_counters.refresh(there.seq, now),
                Some(_) => ops.push(RuleOp::Modify {
                    sel: Selector::matching(Some(rule.table), rule.matched, Some(rule.priority)),
                    actions: rule.actions,
                    reset_counts: false,
                }),
                None => ops.push(RuleOp::Add(rule)),
            }
        }
        if ops.is_empty() {
            return;
        }
        add(&self.counters.rules_learned, ops.len() as u64);
        for answer in self.rule_ops(ops, now) {
            if let Err(e) = answer {
                // A full table, or a group or meter gone: the packet that
                // taught it still ran; the next one tries again.
                tracing::debug!("a learned rule was not added: {e:?}");
            }
        }
    }
}
