//! OpenFlow 1.3's action set: what `write_actions` collects during the
//! pipeline and the switch runs when it ends.
//!
//! The set holds at most one action of each type (a `set_field` per
//! field): writing an action replaces the one of its type. It runs in the
//! spec's order, whatever the order of writing: pops (VLAN, MPLS), push
//! MPLS, push VLAN, decrement TTLs (MPLS, IP), the sets (MPLS TTL
//! included), then the group or, without one, the output (a group in the
//! set makes its output ignored, as the spec says). (Copy-TTL, PBB and
//! QoS are not actions odpx rules carry yet.)

use crate::rules::field::Field;
use crate::rules::RuleAction;

/// The action set (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ActionSet {
    pop_vlan: bool,
    pop_mpls: Option<u16>,
    push_mpls: Option<u16>,
    push_vlan: Option<u16>,
    dec_mpls_ttl: bool,
    dec_ttl: bool,
    set_mpls_ttl: Option<u8>,
    /// One per field, in the order first written.
    sets: Vec<(Field, RuleAction)>,
    output: Option<RuleAction>,
    group: Option<u32>,
}

impl ActionSet {
    /// Merges `actions` in (`write_actions`). Actions a set cannot hold
    /// were refused when the rule was made; they are ignored here.
    pub fn write(&mut self, actions: &[RuleAction]) {
        for a in actions {
            match a {
                RuleAction::PopVlan => self.pop_vlan = true,
                RuleAction::PushVlan(t) => self.push_vlan = Some(*t),
                RuleAction::DecTtl => self.dec_ttl = true,
                RuleAction::PopMpls(t) => self.pop_mpls = Some(*t),
                RuleAction::PushMpls(t) => self.push_mpls = Some(*t),
                RuleAction::DecMplsTtl => self.dec_mpls_ttl = true,
                RuleAction::SetMplsTtl(t) => self.set_mpls_ttl = Some(*t),
                RuleAction::SetField { field, .. } => self.set(*field, a),
                RuleAction::Load { dst, .. } => self.set(dst.field, a),
                RuleAction::ModVlanVid(_) => self.set(Field::DlVlan, a),
                RuleAction::ModVlanPcp(_) => self.set(Field::DlVlanPcp, a),
                RuleAction::Output { .. }
                | RuleAction::InPort
                | RuleAction::Normal
                | RuleAction::Flood
                | RuleAction::All
                | RuleAction::Controller { .. } => self.output = Some(a.clone()),
                RuleAction::Group(g) => self.group = Some(*g),
                _ => {}
            }
        }
    }

    fn set(&mut self, field: Field, a: &RuleAction) {
        match self.sets.iter_mut().find(|(f, _)| *f == field) {
            Some(slot) => slot.1 = a.clone(),
            None => self.sets.push((field, a.clone())),
        }
    }

    /// Empties the set (`clear_actions`).
    pub fn clear(&mut self) {
        *self = ActionSet::default();
    }

    /// The set, leaving an empty one.
    pub fn take(&mut self) -> ActionSet {
        std::mem::take(self)
    }

    pub fn is_empty(&self) -> bool {
        *self == ActionSet::default()
    }

    /// The actions in the order they run.
    pub fn ordered(&self) -> Vec<RuleAction> {
        let mut out = Vec::new();
        if self.pop_vlan {
            out.push(RuleAction::PopVlan);
        }
        out.extend(self.pop_mpls.map(RuleAction::PopMpls));
        out.extend(self.push_mpls.map(RuleAction::PushMpls));
        out.extend(self.push_vlan.map(RuleAction::PushVlan));
        if self.dec_mpls_ttl {
            out.push(RuleAction::DecMplsTtl);
        }
        if self.dec_ttl {
            out.push(RuleAction::DecTtl);
        }
        out.extend(self.set_mpls_ttl.map(RuleAction::SetMplsTtl));
        out.extend(self.sets.iter().map(|(_, a)| a.clone()));
        match self.group {
            Some(g) => out.push(RuleAction::Group(g)),
            None => out.extend(self.output.clone()),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_of_each_type_in_the_specs_order() {
        let mut s = ActionSet::default();
        s.write(&[
            RuleAction::output(1),
            RuleAction::SetField {
                field: Field::DlDst,
                value: 1,
                mask: 0xffff_ffff_ffff,
            },
            RuleAction::PushVlan(0x8100),
        ]);
        s.write(&[
            RuleAction::output(2),
            RuleAction::SetField {
                field: Field::DlDst,
                value: 2,
                mask: 0xffff_ffff_ffff,
            },
            RuleAction::PopVlan,
        ]);
        assert_eq!(
            s.ordered(),
            vec![
                RuleAction::PopVlan,
                RuleAction::PushVlan(0x8100),
                RuleAction::SetField {
                    field: Field::DlDst,
                    value: 2,
                    mask: 0xffff_ffff_ffff
                },
                RuleAction::output(2),
            ]
        );
        s.write(&[RuleAction::Group(7)]);
        assert_eq!(
            s.ordered().last(),
            Some(&RuleAction::Group(7)),
            "a group outranks the output"
        );
        s.clear();
        assert!(s.is_empty());
        assert!(s.ordered().is_empty());
    }
}
