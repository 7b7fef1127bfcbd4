//! OpenFlow messages to odpx's rule model and back: FLOW_MOD to a
//! [`RuleOp`], flow statistics and FLOW_REMOVED from rules.
//!
//! The codec ([`super::codec`]) knows the wire; this room knows what the
//! wire means for odpx's rule tables ([`odpx_classifier::rules`]): fields
//! to key bits ([`matches`]), instructions to rule actions ([`actions`]),
//! and what odpx cannot do to the error OpenFlow names for it.

pub mod actions;
pub mod groups;
pub mod learn;
pub mod matches;
pub mod meters;
pub mod nxm;

use self::actions::{instructions_from, instructions_to};
use self::matches::{from_match, to_match};
use crate::core::rules::{RemovedRule, RuleOp, RuleStats, N_TABLES};
use crate::openflow::codec::action::port;
use crate::openflow::codec::error::{BadRequest, FlowModFailed, OfError};
use crate::openflow::codec::flow::{
    flags as of_flags, FlowMod, FlowModCommand, FlowRemoved, FlowStats, FlowStatsRequest, GROUP_ANY, NO_BUFFER,
    TABLE_ALL,
};
use odpx_classifier::rules::{Rule, Selector};
use std::time::Instant;

/// The rule-table change a FLOW_MOD asks for.
pub fn flow_mod(fm: &FlowMod) -> Result<RuleOp, OfError> {
    let bad_table = OfError::FlowModFailed(FlowModFailed::BadTableId);
    if fm.flags & !of_flags::ALL != 0 {
        return Err(OfError::FlowModFailed(FlowModFailed::BadFlags));
    }
    let matched = to_match(&fm.matched)?;
    let table = (fm.table_id != TABLE_ALL).then_some(fm.table_id);
    if table.is_some_and(|t| t >= N_TABLES) {
        return Err(bad_table);
    }
    let selector = |strict: bool| Selector {
        table,
        matched,
        strict: strict.then_some(fm.priority),
        cookie: fm.cookie,
        cookie_mask: fm.cookie_mask,
        out_port: None,
        out_group: None,
        meter: None,
    };
    let op = match fm.command {
        FlowModCommand::Add => {
            let table = table.ok_or(bad_table)?;
            if fm.buffer_id != NO_BUFFER {
                return Err(OfError::BadRequest(BadRequest::BufferUnknown));
            }
            RuleOp::Add(Rule {
                table,
                priority: fm.priority,
                matched,
                actions: instructions_from(&fm.instructions, &matched, table)?,
                cookie: fm.cookie,
                idle_timeout: fm.idle_timeout,
                hard_timeout: fm.hard_timeout,
                flags: fm.flags,
                seq: 0,
            })
        }
        FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
            let strict = fm.command == FlowModCommand::ModifyStrict;
            RuleOp::Modify {
                sel: selector(strict),
                actions: instructions_from(&fm.instructions, &matched, table.unwrap_or(0))?,
                reset_counts: fm.flags & of_flags::RESET_COUNTS != 0,
            }
        }
        FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
            let mut sel = selector(fm.command == FlowModCommand::DeleteStrict);
            sel.out_port = (fm.out_port != port::ANY).then_some(fm.out_port);
            sel.out_group = (fm.out_group != GROUP_ANY).then_some(fm.out_group);
            RuleOp::Delete { sel }
        }
    };
    Ok(op)
}

/// The rules a FLOW or AGGREGATE request names.
pub fn flow_selector(req: &FlowStatsRequest) -> Result<Selector, OfError> {
    if req.table_id != TABLE_ALL && req.table_id >= N_TABLES {
        return Err(OfError::BadRequest(BadRequest::BadTableId));
    }
    Ok(Selector {
        table: (req.table_id != TABLE_ALL).then_some(req.table_id),
        matched: to_match(&req.matched)?,
        strict: None,
        cookie: req.cookie,
        cookie_mask: req.cookie_mask,
        out_port: (req.out_port != port::ANY).then_some(req.out_port),
        out_group: (req.out_group != GROUP_ANY).then_some(req.out_group),
        meter: None,
    })
}

/// Seconds and nanoseconds from `since` to `now`, to the millisecond
/// (as Open vSwitch keeps them: `ovs-ofctl` prints `duration=1.234s`).
pub(super) fn duration(since: Instant, now: Instant) -> (u32, u32) {
    let d = now.saturating_duration_since(since);
    (d.as_secs() as u32, d.subsec_millis() * 1_000_000)
}

/// A rule and its counters as a FLOW stats entry.
pub fn flow_stats(r: &Rule, s: &RuleStats, now: Instant) -> FlowStats {
    let (duration_sec, duration_nsec) = duration(s.added, now);
    FlowStats {
        table_id: r.table,
        duration_sec,
        duration_nsec,
        priority: r.priority,
        idle_timeout: r.idle_timeout,
        hard_timeout: r.hard_timeout,
        flags: r.flags,
        cookie: r.cookie,
        packet_count: s.packets,
        byte_count: s.bytes,
        matched: from_match(&r.matched),
        instructions: instructions_to(&r.actions, &r.matched),
    }
}

/// A rule that went, as FLOW_REMOVED.
pub fn flow_removed(r: &RemovedRule, now: Instant) -> FlowRemoved {
    let (duration_sec, duration_nsec) = duration(r.stats.added, now);
    FlowRemoved {
        cookie: r.rule.cookie,
        priority: r.rule.priority,
        reason: r.reason as u8,
        table_id: r.rule.table,
        duration_sec,
        duration_nsec,
        idle_timeout: r.rule.idle_timeout,
        hard_timeout: r.rule.hard_timeout,
        packet_count: r.stats.packets,
        byte_count: r.stats.bytes,
        matched: from_match(&r.rule.matched),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::codec::instruction::Instruction;
    use crate::openflow::codec::oxm::{Oxm, OxmField};
    use odpx_classifier::rules::ofctl::{format_rule, parse_rule};

    fn add(table: u8, matched: Vec<Oxm>, instructions: Vec<Instruction>) -> FlowMod {
        FlowMod {
            cookie: 7,
            cookie_mask: 0,
            table_id: table,
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: 100,
            buffer_id: NO_BUFFER,
            out_port: port::ANY,
            out_group: GROUP_ANY,
            flags: 0,
            matched,
            instructions,
        }
    }

    /// Rules in ovs-ofctl syntax go to FLOW stats and back to the same rule.
    #[test]
    fn rules_survive_the_trip_through_openflow() {
        let now = Instant::now();
        for text in [
            "table=1, idle_timeout=10, send_flow_rem priority=100,tcp,nw_src=10.0.0.0/8,tp_dst=80 actions=push_vlan:0x8100,set_field:100->dl_vlan,output:2,goto_table:2",
            "table=0, priority=9000,in_port=1,vlan_tci=0x0000/0x1fff actions=CONTROLLER:128,clear_actions,write_actions(set_field:00:00:00:00:00:01->dl_dst,output:1),write_metadata:0x5/0xff,goto_table:3",
            "table=2, priority=5,ip actions=dec_ttl,set_field:9->nw_ttl,FLOOD,ALL,IN_PORT,NORMAL",
        ] {
            let mut rule = parse_rule(text).unwrap();
            rule.cookie = 7;
            let stats = RuleStats {
                packets: 3,
                bytes: 300,
                ..RuleStats::new(now)
            };
            let fs = flow_stats(&rule, &stats, now);
            let mut fm = add(fs.table_id, fs.matched.clone(), fs.instructions.clone());
            (fm.idle_timeout, fm.flags, fm.priority) = (fs.idle_timeout, fs.flags, fs.priority);
            let Ok(RuleOp::Add(back)) = flow_mod(&fm) else {
                panic!("{text}: {:?}", flow_mod(&fm))
            };
            assert_eq!(format_rule(&back), format_rule(&rule), "{text}");
        }
    }

    #[test]
    fn refusals_name_the_spec_error() {
        let err = |fm: &FlowMod| flow_mod(fm).map(|_| ()).map_err(|e| e.to_string());
        // goto backwards.
        assert_eq!(
            err(&add(3, vec![], vec![Instruction::GotoTable(1)])),
            Err("OFPBIC_BAD_TABLE_ID".into())
        );
        // Table 0xff for an add, and table 254.
        assert_eq!(err(&add(0xff, vec![], vec![])), Err("OFPFMFC_BAD_TABLE_ID".into()));
        assert_eq!(err(&add(254, vec![], vec![])), Err("OFPFMFC_BAD_TABLE_ID".into()));
        // A set of ipv4_dst in a rule that does not match IPv4.
        let set = Instruction::ApplyActions(vec![crate::openflow::codec::action::Action::SetField(Oxm::exact(
            OxmField::Ipv4Dst,
            1,
        ))]);
        assert_eq!(err(&add(0, vec![], vec![set])), Err("OFPBAC_MATCH_INCONSISTENT".into()));
        // Meter 0, a group number above OFPG_MAX.
        assert_eq!(
            err(&add(0, vec![], vec![Instruction::Meter(0)])),
            Err("OFPMMFC_INVALID_METER".into())
        );
        let group = Instruction::ApplyActions(vec![crate::openflow::codec::action::Action::Group(0xffff_ff01)]);
        assert_eq!(err(&add(0, vec![], vec![group])), Err("OFPBAC_BAD_OUT_GROUP".into()));
        // Unknown flags; a buffer.
        let mut fm = add(0, vec![], vec![]);
        fm.flags = 1 << 9;
        assert_eq!(err(&fm), Err("OFPFMFC_BAD_FLAGS".into()));
        let mut fm = add(0, vec![], vec![]);
        fm.buffer_id = 3;
        assert_eq!(err(&fm), Err("OFPBRC_BUFFER_UNKNOWN".into()));
    }
}
