//! `learn`: an action that adds a rule made from the packet at hand
//! (Open vSwitch's `NXAST_LEARN`), the MAC-learning switch of the
//! advanced tutorial without a controller.
//!
//! # What
//! A [`Learn`] names a table, a priority, timeouts and a cookie for the
//! rule it makes, and specs that say what the rule matches and does:
//! * a match spec: a subfield of the new rule's match takes a value, the
//!   packet's (`NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[]`, or a field alone,
//!   `NXM_OF_VLAN_TCI[0..11]`, for "the same field") or a constant;
//! * a load spec: the new rule loads the packet's value (or a constant)
//!   into a subfield (`load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]`);
//! * an output spec: the new rule outputs to the port a subfield of the
//!   packet holds (`output:NXM_OF_IN_PORT[]`).
//!
//! [`Learn::rule`] makes that rule from a packet; the translator reads
//! the packet's bits through it (so they are un-wildcarded, and every
//! packet of a megaflow learns the same rule), and whoever owns the rule
//! tables adds it (see `odpx_classifier::xlate` and the control core).
//!
//! # Invariants
//! A parsed `Learn` has specs whose source and destination widths agree
//! and whose constants fit their destination; the rules it makes match
//! and write only inside their subfields.

use super::subfield::{ones, Subfield};
use super::{flags, Rule, RuleAction};
use crate::key::{FlowKey, Match};

/// `learn`'s flags (`NX_LEARN_F_*`).
pub mod learn_flags {
    /// The learned rule sends FLOW_REMOVED when it goes.
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    /// Deleting the learning rule deletes the rules it learned.
    pub const DELETE_LEARNED: u16 = 1 << 1;
}

/// Where a spec's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LearnSrc {
    /// The packet's bits, when it is learned from.
    Field(Subfield),
    /// A constant (right-aligned).
    Value(u128),
}

/// One part of the rule a `learn` makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LearnSpec {
    /// The new rule matches `dst` against the value.
    Match { dst: Subfield, src: LearnSrc },
    /// The new rule loads the value into `dst`.
    Load { dst: Subfield, src: LearnSrc },
    /// The new rule outputs to the port `src` holds in the packet.
    Output { src: Subfield },
}

/// The `learn` action (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Learn {
    pub table: u8,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub fin_idle_timeout: u16,
    pub fin_hard_timeout: u16,
    pub cookie: u64,
    /// [`learn_flags`].
    pub flags: u16,
    pub specs: Vec<LearnSpec>,
}

impl Default for Learn {
    fn default() -> Learn {
        Learn {
            table: 1,
            // OpenFlow's default priority, as for any rule.
            priority: 0x8000,
            idle_timeout: 0,
            hard_timeout: 0,
            fin_idle_timeout: 0,
            fin_hard_timeout: 0,
            cookie: 0,
            flags: 0,
            specs: Vec::new(),
        }
    }
}

impl LearnSrc {
    fn value(&self, read: &mut impl FnMut(&Subfield) -> u128) -> u128 {
        match self {
            LearnSrc::Field(sf) => read(sf),
            LearnSrc::Value(v) => *v,
        }
    }
}

impl Learn {
    /// The rule learning from a packet makes; `read` gives a subfield's
    /// value in the packet (the translator's read, which un-wildcards).
    pub fn rule(&self, mut read: impl FnMut(&Subfield) -> u128) -> Rule {
        let (mut key, mut mask) = (FlowKey::ZERO, FlowKey::ZERO);
        let mut actions = Vec::new();
        for spec in &self.specs {
            match spec {
                LearnSpec::Match { dst, src } => {
                    let v = src.value(&mut read) & ones(dst.n_bits.into());
                    dst.put(&mut key, v);
                    dst.mark(&mut mask);
                }
                LearnSpec::Load { dst, src } => {
                    let value = src.value(&mut read) & ones(dst.n_bits.into());
                    actions.push(RuleAction::Load { dst: *dst, value });
                }
                LearnSpec::Output { src } => actions.push(RuleAction::output(read(src) as u32)),
            }
        }
        Rule {
            table: self.table,
            priority: self.priority,
            matched: Match::new(key, mask),
            actions,
            cookie: self.cookie,
            idle_timeout: self.idle_timeout,
            hard_timeout: self.hard_timeout,
            flags: if self.flags & learn_flags::SEND_FLOW_REM != 0 {
                flags::SEND_FLOW_REM
            } else {
                0
            },
            seq: 0,
        }
    }

    /// The packet subfields learning reads.
    pub fn sources(&self) -> impl Iterator<Item = &Subfield> + '_ {
        self.specs.iter().filter_map(|s| match s {
            LearnSpec::Match {
                src: LearnSrc::Field(sf),
                ..
            }
            | LearnSpec::Load {
                src: LearnSrc::Field(sf),
                ..
            }
            | LearnSpec::Output { src: sf } => Some(sf),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::field::Field;

    fn sf(field: Field, ofs: u8, n_bits: u8) -> Subfield {
        Subfield { field, ofs, n_bits }
    }

    #[test]
    fn the_tutorials_learn_makes_its_table_10_rule() {
        let l = Learn {
            table: 10,
            specs: vec![
                LearnSpec::Match {
                    dst: sf(Field::VlanTci, 0, 12),
                    src: LearnSrc::Field(sf(Field::VlanTci, 0, 12)),
                },
                LearnSpec::Match {
                    dst: sf(Field::DlDst, 0, 48),
                    src: LearnSrc::Field(sf(Field::DlSrc, 0, 48)),
                },
                LearnSpec::Load {
                    dst: sf(Field::Reg(0), 0, 16),
                    src: LearnSrc::Field(sf(Field::InPort, 0, 16)),
                },
            ],
            ..Learn::default()
        };
        let mut packet = FlowKey::ZERO;
        packet.in_port = 1;
        packet.vlan_tci = 0x1014;
        packet.eth_src = [0x50, 0, 0, 0, 0, 1];
        let mut read = Vec::new();
        let rule = l.rule(|s| {
            read.push(*s);
            s.get(&packet)
        });
        // table=10, vlan_tci=0x0014/0x0fff,dl_dst=50:00:00:00:00:01
        // actions=load:0x1->NXM_NX_REG0[0..15]
        assert_eq!((rule.table, rule.priority), (10, 0x8000));
        let (k, m) = (rule.matched.key, rule.matched.mask);
        assert_eq!((k.vlan_tci, m.vlan_tci), (0x0014, 0x0fff));
        assert_eq!((k.eth_dst, m.eth_dst), ([0x50, 0, 0, 0, 0, 1], [0xff; 6]));
        let mut rest = rule.matched.mask;
        (rest.vlan_tci, rest.eth_dst) = (0, [0; 6]);
        assert!(rest.is_zero(), "nothing else matched");
        assert_eq!(
            rule.actions,
            [RuleAction::Load {
                dst: sf(Field::Reg(0), 0, 16),
                value: 1
            }]
        );
        assert_eq!(read, l.sources().copied().collect::<Vec<_>>());
    }
}
