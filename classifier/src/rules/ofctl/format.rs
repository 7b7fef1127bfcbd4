//! Rules, matches and actions printed in `ovs-ofctl` syntax.

use super::super::field::Field;
use super::super::{Rule, RuleAction};
use super::{exact, FLAG_WORDS, SHORTHANDS};
use crate::key::{Match, VLAN_CFI};
use crate::text::hexc;
use std::time::Duration;

/// Field names printed by [`format_match`] before the protocol
/// shorthand, in print order (Open vSwitch's `match_format()`).
const FIELDS_FIRST: &[&str] = &["pkt_mark", "skb_priority"];

/// Field names printed by [`format_match`] after the protocol shorthand,
/// in print order: Open vSwitch's (`match_format()`), so that a rule
/// prints as `ovs-ofctl dump-flows` prints it.
pub(super) const FIELD_CANON: &[&str] = &[
    "pkt_mark",
    "skb_priority",
    "reg0",
    "reg1",
    "reg2",
    "reg3",
    "reg4",
    "reg5",
    "reg6",
    "reg7",
    "reg8",
    "reg9",
    "reg10",
    "reg11",
    "reg12",
    "reg13",
    "reg14",
    "reg15",
    "tun_id",
    "tun_src",
    "tun_dst",
    "tun_ipv6_src",
    "tun_ipv6_dst",
    "tun_tos",
    "tun_ttl",
    "tun_flags",
    "tun_tp_src",
    "tun_tp_dst",
    "metadata",
    "in_port",
    "vlan_tci",
    "dl_src",
    "dl_dst",
    "dl_type",
    "ipv6_src",
    "ipv6_dst",
    "ipv6_label",
    "arp_spa",
    "arp_tpa",
    "nw_src",
    "nw_dst",
    "nw_proto",
    "arp_op",
    "arp_sha",
    "arp_tha",
    "nw_tos",
    "nw_ecn",
    "nw_ttl",
    "mpls_label",
    "mpls_tc",
    "mpls_ttl",
    "mpls_bos",
    "nw_frag",
    "icmp_type",
    "icmp_code",
    "nd_target",
    "nd_sll",
    "nd_tll",
    "tp_src",
    "tp_dst",
    "tcp_flags",
];

/// Formats a match in `ovs-ofctl` syntax (shorthand first, then fields).
pub fn format_match(m: &Match) -> String {
    let mut parts: Vec<String> = Vec::new();
    let et = exact(m, Field::DlType).map(|v| v as u16);
    let proto = exact(m, Field::NwProto).map(|v| v as u8);
    let mut skip_type = false;
    let mut skip_proto = false;
    for name in FIELDS_FIRST {
        if let Some(f) = Field::by_name(name).filter(|f| f.get(&m.mask) != 0) {
            parts.push(format!("{name}={}", f.format_value(f.get(&m.key), f.get(&m.mask))));
        }
    }
    if let Some(et) = et {
        if let Some((n, _, p)) = SHORTHANDS
            .iter()
            .find(|(_, e, p)| *e == et && p.is_some() && *p == proto)
        {
            parts.push(n.to_string());
            skip_type = true;
            skip_proto = p.is_some();
        } else if let Some((n, _, _)) = SHORTHANDS.iter().find(|(_, e, p)| *e == et && p.is_none()) {
            parts.push(n.to_string());
            skip_type = true;
        }
    }
    let is_arp = matches!(et, Some(0x0806 | 0x8035));
    let is_icmp = matches!(proto, Some(1 | 58)) && matches!(et, Some(0x0800 | 0x86dd));
    let is_nd = is_icmp && et == Some(0x86dd);
    for name in FIELD_CANON.iter().filter(|n| !FIELDS_FIRST.contains(n)) {
        let Some(f) = Field::by_name(name) else {
            continue;
        };
        let v = f.get(&m.key);
        let mk = f.get(&m.mask);
        if mk == 0 {
            continue;
        }
        let shown = match *name {
            "dl_type" => !skip_type,
            "nw_proto" => !skip_proto,
            "nw_src" | "nw_dst" => !is_arp,
            "arp_spa" | "arp_tpa" => is_arp,
            "arp_sha" | "arp_tha" => !is_nd,
            "nd_sll" | "nd_tll" => is_nd,
            "tp_src" | "tp_dst" => !is_icmp,
            "icmp_type" | "icmp_code" => is_icmp,
            _ => true,
        };
        if !shown {
            continue;
        }
        if *name == "vlan_tci" {
            let (t, tm) = (m.key.vlan_tci, m.mask.vlan_tci);
            if tm == 0x1fff && t & VLAN_CFI != 0 {
                parts.push(format!("dl_vlan={}", t & 0x0fff));
            } else if tm == 0xffff && t == 0 {
                parts.push("dl_vlan=0xffff".into());
            } else if tm == 0xf000 | VLAN_CFI && t & VLAN_CFI != 0 {
                parts.push(format!("dl_vlan_pcp={}", t >> 13));
            } else {
                parts.push(format!("vlan_tci={:#06x}/{:#06x}", t, tm));
            }
            continue;
        }
        parts.push(format!("{name}={}", f.format_value(v, mk)));
    }
    parts.join(",")
}

/// The name Open vSwitch gives the field a `set_field` writes (its
/// OXM-style name; the L4 ports by the rule's protocol, `proto`).
fn set_field_name(f: Field, proto: Option<u8>) -> &'static str {
    let l4 = |tcp, udp, sctp, other| match proto {
        Some(6) => tcp,
        Some(17) => udp,
        Some(132) => sctp,
        _ => other,
    };
    match f {
        Field::DlSrc => "eth_src",
        Field::DlDst => "eth_dst",
        Field::DlVlan => "vlan_vid",
        Field::DlVlanPcp => "vlan_pcp",
        Field::NwSrc => "ip_src",
        Field::NwDst => "ip_dst",
        Field::TpSrc => l4("tcp_src", "udp_src", "sctp_src", "tp_src"),
        Field::TpDst => l4("tcp_dst", "udp_dst", "sctp_dst", "tp_dst"),
        f => f.name(),
    }
}

/// Formats one action.
pub fn format_action(a: &RuleAction) -> String {
    format_action_in(a, None)
}

/// Formats one action of a rule whose match pins IP protocol `proto`.
fn format_action_in(a: &RuleAction, proto: Option<u8>) -> String {
    match a {
        RuleAction::Output { port: p, .. } => format!("output:{p}"),
        RuleAction::InPort => "IN_PORT".into(),
        RuleAction::Normal => "NORMAL".into(),
        RuleAction::Flood => "FLOOD".into(),
        RuleAction::All => "ALL".into(),
        RuleAction::Controller { max_len } => format!("CONTROLLER:{max_len}"),
        RuleAction::ClearActions => "clear_actions".into(),
        RuleAction::WriteActions(list) => {
            format!(
                "write_actions({})",
                list.iter().map(format_action).collect::<Vec<_>>().join(",")
            )
        }
        RuleAction::WriteMetadata { value, mask } if *mask == u64::MAX => format!("write_metadata:{value:#x}"),
        RuleAction::WriteMetadata { value, mask } => format!("write_metadata:{value:#x}/{mask:#x}"),
        // A VID written is a tag present: OpenFlow's value has bit 12 set.
        RuleAction::SetField {
            field: Field::DlVlan,
            value,
            ..
        } => format!("set_field:{}->vlan_vid", value | 0x1000),
        RuleAction::SetField { field, value, mask } => {
            let v = field.format_value(*value, *mask);
            format!("set_field:{v}->{}", set_field_name(*field, proto))
        }
        RuleAction::PushVlan(t) => format!("push_vlan:{t:#06x}"),
        RuleAction::PopVlan => "pop_vlan".into(),
        RuleAction::ModVlanVid(v) => format!("mod_vlan_vid:{v}"),
        RuleAction::ModVlanPcp(p) => format!("mod_vlan_pcp:{p}"),
        RuleAction::DecTtl => "dec_ttl".into(),
        RuleAction::PushMpls(t) => format!("push_mpls:{t:#06x}"),
        RuleAction::PopMpls(t) => format!("pop_mpls:{t:#06x}"),
        RuleAction::SetMplsTtl(t) => format!("set_mpls_ttl({t})"),
        RuleAction::DecMplsTtl => "dec_mpls_ttl".into(),
        RuleAction::Resubmit { in_port, table } => format!(
            "resubmit({},{})",
            in_port.map(|p| p.to_string()).unwrap_or_default(),
            table.map(|t| t.to_string()).unwrap_or_default()
        ),
        RuleAction::GotoTable(t) => format!("goto_table:{t}"),
        RuleAction::Group(g) => format!("group:{g}"),
        RuleAction::Meter(m) => format!("meter:{m}"),
        RuleAction::Load { dst, value } => format!("load:{}->{dst}", hexc(*value)),
        RuleAction::Move { src, dst } => format!("move:{src}->{dst}"),
        RuleAction::OutputReg { src, .. } => format!("output:{src}"),
        RuleAction::Learn(l) => super::learn::format_learn(l),
    }
}

/// Formats a rule as `ovs-ofctl dump-flows` would (without statistics;
/// the priority always shown). [`super::parse_rule`] reads it back.
pub fn format_rule(r: &Rule) -> String {
    let mut s = String::new();
    if r.cookie != 0 {
        s.push_str(&format!("cookie={:#x}, ", r.cookie));
    }
    s.push_str(&format!("table={}, ", r.table));
    push_timeouts_and_flags(&mut s, r);
    s.push_str(&format!("priority={}", r.priority));
    let m = format_match(&r.matched);
    if !m.is_empty() {
        s.push(',');
        s.push_str(&m);
    }
    s.push_str(" actions=");
    s.push_str(&format_actions(r));
    s
}

/// A rule with its counters, as `ovs-ofctl dump-flows` prints it:
/// `cookie=0x0, duration=1.234s, table=0, n_packets=0, n_bytes=0,
/// [idle_timeout=N, ][hard_timeout=N, ][FLAGS ]priority=P,MATCH
/// actions=ACTIONS`, the default priority (32768) left out.
pub fn format_flow(r: &Rule, packets: u64, bytes: u64, age: Duration) -> String {
    let mut s = format!(
        "cookie={:#x}, duration={}.{:03}s, table={}, n_packets={packets}, n_bytes={bytes}, ",
        r.cookie,
        age.as_secs(),
        age.subsec_millis(),
        r.table
    );
    push_timeouts_and_flags(&mut s, r);
    let mut head = Vec::new();
    if r.priority != super::DEFAULT_PRIORITY {
        head.push(format!("priority={}", r.priority));
    }
    let m = format_match(&r.matched);
    if !m.is_empty() {
        head.push(m);
    }
    if !head.is_empty() {
        s.push_str(&head.join(","));
        s.push(' ');
    }
    s.push_str("actions=");
    s.push_str(&format_actions(r));
    s
}

/// `idle_timeout=N, hard_timeout=N, ` and the flag words, as both dumps
/// write them (each only when set).
fn push_timeouts_and_flags(s: &mut String, r: &Rule) {
    if r.idle_timeout != 0 {
        s.push_str(&format!("idle_timeout={}, ", r.idle_timeout));
    }
    if r.hard_timeout != 0 {
        s.push_str(&format!("hard_timeout={}, ", r.hard_timeout));
    }
    for (word, bit) in FLAG_WORDS {
        if r.flags & bit != 0 {
            s.push_str(word);
            s.push(' ');
        }
    }
}

/// A rule's actions, comma-separated (`drop` when there are none).
fn format_actions(r: &Rule) -> String {
    if r.actions.is_empty() {
        return "drop".into();
    }
    let proto = exact(&r.matched, Field::NwProto).map(|p| p as u8);
    r.actions
        .iter()
        .map(|a| format_action_in(a, proto))
        .collect::<Vec<_>>()
        .join(",")
}
