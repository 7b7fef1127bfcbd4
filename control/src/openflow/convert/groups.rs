//! GROUP_MOD to a [`GroupOp`], and groups back to GROUP_DESC, GROUP
//! stats and GROUP_FEATURES.
//!
//! The wire's checks are the codec's; here: the type (`OFPGMFC_BAD_TYPE`),
//! the group number (`OFPGMFC_INVALID_GROUP`; `OFPG_ALL` only in a
//! delete), each bucket's actions as a rule's ([`action_from`]), and the
//! group table's refusals turned into GROUP_MOD_FAILED codes
//! ([`group_error`]).

use super::actions::{action_from, action_to, Context, Flavor};
use super::duration;
use crate::core::groups::{GroupOp, GroupStats};
use crate::openflow::codec::action::port;
use crate::openflow::codec::error::{BadAction, GroupModFailed, OfError};
use crate::openflow::codec::group::{self as wire, GroupFeatures, GroupMod, GroupModCommand, WireBucket};
use odpx_classifier::rules::group::{
    Bucket, Group, GroupError, GroupKind, Selection, ALL_GROUPS, ANY_GROUP, MAX_GROUPS, MAX_GROUP_ID,
};
use std::time::Instant;

/// The group-table change a GROUP_MOD asks for.
pub fn group_mod(gm: &GroupMod) -> Result<GroupOp, OfError> {
    let failed = |c| Err(OfError::GroupModFailed(c));
    if gm.command == GroupModCommand::Delete {
        if gm.group_id > MAX_GROUP_ID && gm.group_id != ALL_GROUPS {
            return failed(GroupModFailed::InvalidGroup);
        }
        return Ok(GroupOp::Delete(gm.group_id));
    }
    if gm.group_id > MAX_GROUP_ID {
        return failed(GroupModFailed::InvalidGroup);
    }
    let Some(kind) = GroupKind::from_wire(gm.kind) else {
        return failed(GroupModFailed::BadType);
    };
    let buckets = gm
        .buckets
        .iter()
        .map(|b| bucket_from(b, kind))
        .collect::<Result<Vec<_>, _>>()?;
    let g = Group {
        id: gm.group_id,
        kind,
        buckets,
        selection: Selection::Default,
    };
    Ok(match gm.command {
        GroupModCommand::Add => GroupOp::Add(g),
        _ => GroupOp::Modify(g),
    })
}

fn bucket_from(b: &WireBucket, kind: GroupKind) -> Result<Bucket, OfError> {
    let actions = b
        .actions
        .iter()
        .filter_map(|a| action_from(a, Context::Table(0)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    if b.watch_group != ANY_GROUP && b.watch_group > MAX_GROUP_ID {
        return Err(OfError::GroupModFailed(GroupModFailed::BadWatch));
    }
    Ok(Bucket {
        weight: if kind == GroupKind::Select { b.weight } else { 0 },
        watch_port: (b.watch_port != port::ANY).then_some(b.watch_port),
        watch_group: (b.watch_group != ANY_GROUP).then_some(b.watch_group),
        actions,
    })
}

/// What the group table's refusal is called in OpenFlow.
pub fn group_error(e: &GroupError) -> OfError {
    let c = match e {
        GroupError::Exists(_) => GroupModFailed::GroupExists,
        GroupError::Unknown(_) => GroupModFailed::UnknownGroup,
        GroupError::BadId(_) | GroupError::IndirectBuckets(_) => GroupModFailed::InvalidGroup,
        GroupError::MissingTarget(_) => return OfError::BadAction(BadAction::BadOutGroup),
        GroupError::Loop(_) => GroupModFailed::Loop,
        GroupError::TooManyBuckets(..) => GroupModFailed::OutOfBuckets,
        GroupError::Full => GroupModFailed::OutOfGroups,
        GroupError::Instruction(_) => GroupModFailed::BadBucket,
        GroupError::Chained(..) => GroupModFailed::ChainedGroup,
    };
    OfError::GroupModFailed(c)
}

/// A group as GROUP_DESC describes it.
pub fn group_desc(g: &Group) -> wire::GroupDesc {
    wire::GroupDesc {
        kind: g.kind as u8,
        group_id: g.id,
        buckets: g
            .buckets
            .iter()
            .map(|b| WireBucket {
                weight: b.weight,
                watch_port: b.watch_port.unwrap_or(port::ANY),
                watch_group: b.watch_group.unwrap_or(ANY_GROUP),
                actions: b.actions.iter().flat_map(|a| action_to(a, Flavor::default())).collect(),
            })
            .collect(),
    }
}

/// A group's counters as a GROUP stats entry.
pub fn group_stats(g: &Group, s: &GroupStats, ref_count: usize, now: Instant) -> wire::GroupStats {
    let (duration_sec, duration_nsec) = duration(s.added, now);
    wire::GroupStats {
        group_id: g.id,
        ref_count: ref_count as u32,
        packet_count: s.packets,
        byte_count: s.bytes,
        duration_sec,
        duration_nsec,
        buckets: s.buckets.clone(),
    }
}

/// What odpx's groups can do: every type, weights, liveness and chaining
/// (checked: loops are refused), with the actions rules have.
pub fn group_features() -> GroupFeatures {
    // OUTPUT, SET_MPLS_TTL, DEC_MPLS_TTL, PUSH_VLAN, POP_VLAN, PUSH_MPLS,
    // POP_MPLS, GROUP, SET_NW_TTL, DEC_NW_TTL, SET_FIELD.
    let actions = [0u32, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25]
        .iter()
        .fold(0, |m, bit| m | 1 << bit);
    GroupFeatures {
        types: 0b1111,
        // SELECT_WEIGHT, SELECT_LIVENESS, CHAINING, CHAINING_CHECKS.
        capabilities: 0b1111,
        max_groups: [MAX_GROUPS as u32; 4],
        actions: [actions; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::codec::action::Action;

    fn wire_bucket(weight: u16, port_no: u32) -> WireBucket {
        WireBucket {
            weight,
            watch_port: port::ANY,
            watch_group: ANY_GROUP,
            actions: vec![Action::Output {
                port: port_no,
                max_len: 0,
            }],
        }
    }

    #[test]
    fn group_mods_become_group_ops_and_come_back() {
        let gm = GroupMod {
            command: GroupModCommand::Add,
            kind: 1,
            group_id: 7,
            buckets: vec![wire_bucket(1, 2), wire_bucket(2, 3)],
        };
        let GroupOp::Add(g) = group_mod(&gm).unwrap() else {
            panic!("not an add")
        };
        assert_eq!(
            (g.kind, g.buckets[1].weight, g.buckets[1].watch_port),
            (GroupKind::Select, 2, None)
        );
        let desc = group_desc(&g);
        assert_eq!((desc.kind, desc.group_id, &desc.buckets), (1, 7, &gm.buckets));
        let bad = |gm: GroupMod| group_mod(&gm).unwrap_err();
        assert_eq!(
            bad(GroupMod { kind: 9, ..gm.clone() }),
            OfError::GroupModFailed(GroupModFailed::BadType)
        );
        assert_eq!(
            bad(GroupMod {
                group_id: ALL_GROUPS,
                ..gm.clone()
            }),
            OfError::GroupModFailed(GroupModFailed::InvalidGroup)
        );
        let mut to_table = gm.clone();
        to_table.buckets[0].actions = vec![Action::Output {
            port: port::TABLE,
            max_len: 0,
        }];
        assert_eq!(bad(to_table), OfError::BadAction(BadAction::BadOutPort));
        let all = GroupMod {
            command: GroupModCommand::Delete,
            group_id: ALL_GROUPS,
            ..gm
        };
        assert!(matches!(group_mod(&all), Ok(GroupOp::Delete(ALL_GROUPS))));
    }
}
