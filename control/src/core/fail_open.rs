//! Fail-open: what packets see while a standalone switch has lost its
//! controllers.
//!
//! Open vSwitch's `fail_mode=standalone` switches on its own (NORMAL)
//! once no controller has been connected for three probe intervals, and
//! goes back to the controllers' rules when one connects again. It does
//! so with a hidden flow above every OpenFlow priority, so that the
//! controllers' rules stay in place (and `ovs-ofctl` may still change
//! them) but decide nothing meanwhile. The core does the same with a
//! second rule set, `priority=0,actions=NORMAL` alone, that every
//! translation uses instead of the rule tables while fail-open holds
//! ([`pipeline`]). Its rules are numbered apart from the tables', so
//! that no packet it switches is credited to a controller's rule.
//!
//! Entering or leaving fail-open changes every packet's decision: every
//! megaflow is revalidated, and the change is answered after the barrier,
//! like a rule change. When to enter and leave is the agent's to decide
//! ([`crate::openflow::fail_open`]); the core only carries it out.

use super::Core;
use odpx_classifier::rules::{Rule, RuleAction, RuleSet};

/// Where the fail-open rule set numbers its rules: far above any number
/// the rule tables give.
const FAIL_OPEN_SEQ: u64 = 1 << 62;

/// The rules a translation runs: the rule tables, or the fail-open set
/// while it holds.
pub fn pipeline<'a>(rules: &'a RuleSet, fail_open: &'a Option<RuleSet>) -> &'a RuleSet {
    fail_open.as_ref().unwrap_or(rules)
}

/// NORMAL switching alone.
fn normal_only() -> RuleSet {
    let mut set = RuleSet::new().numbered_from(FAIL_OPEN_SEQ);
    set.add(Rule {
        actions: vec![RuleAction::Normal],
        ..Rule::default()
    });
    set
}

impl Core {
    /// Enters (`open`) or leaves fail-open; returns whether that changed
    /// anything. Every megaflow is revalidated when it does.
    pub(super) fn set_fail_open(&mut self, open: bool) -> bool {
        if open == self.fail_open.is_some() {
            return false;
        }
        self.fail_open = open.then(normal_only);
        let all = self.registry.ufids();
        self.revalidate(all);
        self.publish_gauges();
        true
    }

    /// Whether fail-open holds.
    pub fn is_fail_open(&self) -> bool {
        self.fail_open.is_some()
    }
}
