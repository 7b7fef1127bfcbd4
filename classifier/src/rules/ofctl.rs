//! Rule text in the `ovs-ofctl add-flow` syntax.
//!
//! `[table=N,][priority=N,][cookie=N,]MATCH...,actions=ACTIONS`, fields
//! separated by commas or spaces, shorthands `ip ipv6 tcp udp sctp icmp
//! icmp6 tcp6 udp6 sctp6 arp rarp mpls`, default priority 32768. Every field
//! and action is checked against its prerequisites, so a rule that would
//! match `tp_dst` without a transport protocol is refused with a reason.
//! [`parse_rules`] is all-or-nothing: the first bad line fails the whole
//! text, with its line number.

use super::field::{Field, Prereq};
use super::{Rule, RuleAction};
use crate::key::{FlowKey, Match, VLAN_CFI};
use crate::text::{Cursor, PResult, ParseError};

pub const DEFAULT_PRIORITY: u16 = 32768;

/// An error in a rule file: line number (1-based) and the parse error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {err}")]
pub struct RuleFileError {
    pub line: usize,
    pub err: ParseError,
}

/// Parses rule lines (blank lines and `#` comments skipped). Nothing is
/// returned unless every line parses.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RuleFileError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push(parse_rule(t).map_err(|err| RuleFileError { line: i + 1, err })?);
    }
    Ok(out)
}

const SHORTHANDS: &[(&str, u16, Option<u8>)] = &[
    ("ip", 0x0800, None),
    ("ipv6", 0x86dd, None),
    ("tcp", 0x0800, Some(6)),
    ("udp", 0x0800, Some(17)),
    ("sctp", 0x0800, Some(132)),
    ("icmp", 0x0800, Some(1)),
    ("tcp6", 0x86dd, Some(6)),
    ("udp6", 0x86dd, Some(17)),
    ("sctp6", 0x86dd, Some(132)),
    ("icmp6", 0x86dd, Some(58)),
    ("arp", 0x0806, None),
    ("rarp", 0x8035, None),
    ("mpls", 0x8847, None),
    ("mplsm", 0x8848, None),
];

/// Parses one rule (match and actions).
pub fn parse_rule(s: &str) -> PResult<Rule> {
    let mut c = Cursor::new(s);
    let mut rule = Rule {
        table: 0,
        priority: DEFAULT_PRIORITY,
        matched: Match::default(),
        actions: Vec::new(),
        cookie: 0,
        seq: 0,
    };
    let mut key = FlowKey::ZERO;
    let mut mask = FlowKey::ZERO;
    let mut seen: Vec<&str> = Vec::new();
    let mut have_actions = false;
    loop {
        c.take_while(|ch| ch == ',' || ch.is_whitespace());
        if c.at_end() {
            break;
        }
        let start = c.pos;
        let name = c.ident();
        if name.is_empty() {
            return c.err("expected a field name");
        }
        if name == "actions" {
            c.expect("=")?;
            rule.actions = parse_actions(&mut c)?;
            have_actions = true;
            break;
        }
        if seen.contains(&name) {
            return c.err_at(start, format!("'{name}' given twice"));
        }
        seen.push(name);
        if let Some(&(_, et, proto)) = SHORTHANDS.iter().find(|(n, _, _)| *n == name) {
            set_exact(&mut c, start, &mut key, &mut mask, Field::DlType, et as u128)?;
            if let Some(p) = proto {
                set_exact(&mut c, start, &mut key, &mut mask, Field::NwProto, p as u128)?;
            }
            continue;
        }
        c.expect("=")?;
        match name {
            "table" => rule.table = c.uint(254)? as u8,
            "priority" => rule.priority = c.uint(u16::MAX as u64)? as u16,
            "cookie" => rule.cookie = c.uint(u64::MAX)?,
            "dl_vlan" | "vlan_vid" if c.rest().starts_with("0xffff") => {
                c.eat("0xffff");
                // OpenFlow 1.0 OFP_VLAN_NONE: no tag at all.
                merge(&mut c, start, &mut key, &mut mask, Field::VlanTci, 0, 0xffff)?;
            }
            _ => {
                let Some(f) = Field::by_name(name) else {
                    return c.err_at(start, format!("unknown field '{name}'"));
                };
                let vpos = c.pos;
                let (v, m) = f.parse_value(&mut c)?;
                let (fk, fm) = f.match_bits(v, m);
                merge_key(&c, vpos, &mut key, &mut mask, &fk, &fm, name)?;
            }
        }
    }
    if !have_actions {
        return c.err("missing 'actions=' (use actions=drop to drop)");
    }
    rule.matched = Match::new(key, mask);
    check_match_prereqs(&rule.matched).map_err(|msg| ParseError { pos: 0, msg })?;
    for a in &rule.actions {
        check_action_prereqs(a, &rule.matched).map_err(|msg| ParseError { pos: 0, msg })?;
    }
    Ok(rule)
}

fn set_exact(c: &mut Cursor, at: usize, key: &mut FlowKey, mask: &mut FlowKey, f: Field, v: u128) -> PResult<()> {
    merge(c, at, key, mask, f, v, f.full_mask())
}

fn merge(c: &mut Cursor, at: usize, key: &mut FlowKey, mask: &mut FlowKey, f: Field, v: u128, m: u128) -> PResult<()> {
    let mut fk = FlowKey::ZERO;
    let mut fm = FlowKey::ZERO;
    f.put(&mut fk, v, u128::MAX);
    f.put(&mut fm, m, u128::MAX);
    merge_key(c, at, key, mask, &fk, &fm, f.name())
}

/// Adds field bits to a match; conflicting values on shared bits are an error.
fn merge_key(
    c: &Cursor,
    at: usize,
    key: &mut FlowKey,
    mask: &mut FlowKey,
    fk: &FlowKey,
    fm: &FlowKey,
    name: &str,
) -> PResult<()> {
    let both = mask.masked(fm);
    if !key.masked(&both).masked_eq(&fk.masked(&both), &both) {
        return c.err_at(at, format!("'{name}' contradicts an earlier field or shorthand"));
    }
    *key = {
        let mut k = key.masked(mask);
        k.or_assign(&fk.masked(fm));
        k
    };
    mask.or_assign(fm);
    Ok(())
}

fn exact(m: &Match, f: Field) -> Option<u128> {
    (f.get(&m.mask) == f.full_mask()).then(|| f.get(&m.key))
}

/// Checks a prerequisite against a match; `Err` names what is missing.
pub fn prereq_ok(p: Prereq, m: &Match) -> Result<(), &'static str> {
    let et = exact(m, Field::DlType).map(|v| v as u16);
    let proto = exact(m, Field::NwProto).map(|v| v as u8);
    let ok = match p {
        Prereq::None => true,
        Prereq::Ip => matches!(et, Some(0x0800 | 0x86dd)),
        Prereq::Ipv4 => et == Some(0x0800),
        Prereq::Ipv6 => et == Some(0x86dd),
        Prereq::Ipv4OrArp => matches!(et, Some(0x0800 | 0x0806 | 0x8035)),
        Prereq::Arp => matches!(et, Some(0x0806 | 0x8035)),
        Prereq::Transport => matches!(et, Some(0x0800 | 0x86dd)) && matches!(proto, Some(6 | 17 | 132)),
        Prereq::Tcp => matches!(et, Some(0x0800 | 0x86dd)) && proto == Some(6),
        Prereq::Icmp => (et == Some(0x0800) && proto == Some(1)) || (et == Some(0x86dd) && proto == Some(58)),
        Prereq::Nd => {
            et == Some(0x86dd)
                && proto == Some(58)
                && matches!(exact(m, Field::IcmpType), Some(135 | 136))
                && exact(m, Field::IcmpCode) == Some(0)
        }
        Prereq::Mpls => matches!(et, Some(0x8847 | 0x8848)),
    };
    if ok {
        return Ok(());
    }
    Err(match p {
        Prereq::None => "",
        Prereq::Ip => "ip or ipv6",
        Prereq::Ipv4 => "ip",
        Prereq::Ipv6 => "ipv6",
        Prereq::Ipv4OrArp => "ip, arp or rarp",
        Prereq::Arp => "arp or rarp",
        Prereq::Transport => "tcp, udp or sctp (or tcp6, udp6, sctp6)",
        Prereq::Tcp => "tcp or tcp6",
        Prereq::Icmp => "icmp or icmp6",
        Prereq::Nd => "icmp6,icmp_type=135 or 136,icmp_code=0",
        Prereq::Mpls => "mpls or mplsm",
    })
}

fn check_match_prereqs(m: &Match) -> Result<(), String> {
    for name in FIELD_CANON {
        let Some(f) = Field::by_name(name) else {
            continue;
        };
        if f.get(&m.mask) == 0 {
            continue;
        }
        // Fields sharing storage (tp_src/icmp_type, arp_sha/nd_sll, ...)
        // are fine when either meaning's prerequisite holds.
        let alias = match f {
            Field::TpSrc => Some(Field::IcmpType),
            Field::IcmpType => Some(Field::TpSrc),
            Field::TpDst => Some(Field::IcmpCode),
            Field::IcmpCode => Some(Field::TpDst),
            Field::ArpSha => Some(Field::NdSll),
            Field::NdSll => Some(Field::ArpSha),
            Field::ArpTha => Some(Field::NdTll),
            Field::NdTll => Some(Field::ArpTha),
            _ => None,
        };
        if alias.is_some_and(|a| prereq_ok(a.prereq(), m).is_ok()) {
            continue;
        }
        prereq_ok(f.prereq(), m)
            .map_err(|need| format!("{name} needs {need} in the same rule (e.g. '{}')", example(need)))?;
    }
    Ok(())
}

fn example(need: &str) -> String {
    need.split([',', ' ']).next().unwrap_or("ip").to_string() + ",..."
}

fn check_action_prereqs(a: &RuleAction, m: &Match) -> Result<(), String> {
    let (name, p) = match a {
        RuleAction::SetField { field, .. } => (field.name(), field.prereq()),
        RuleAction::DecTtl => ("dec_ttl", Prereq::Ip),
        _ => return Ok(()),
    };
    prereq_ok(p, m).map_err(|need| format!("action setting {name} needs a rule that matches {need}"))
}

fn parse_actions(c: &mut Cursor) -> PResult<Vec<RuleAction>> {
    let mut out = Vec::new();
    loop {
        c.skip_ws();
        if c.at_end() {
            break;
        }
        let start = c.pos;
        let a = parse_action(c)?;
        if let Some(a) = a {
            if matches!(out.last(), Some(RuleAction::GotoTable(_))) {
                return c.err_at(start, "goto_table must be the last action");
            }
            out.push(a);
        } else if !out.is_empty() || {
            c.skip_ws();
            c.eat(",") || !c.at_end()
        } {
            return c.err_at(start, "'drop' must be the only action");
        }
        c.skip_ws();
        if !c.eat(",") {
            c.skip_ws();
            if !c.at_end() {
                return c.err("expected ',' between actions");
            }
            break;
        }
    }
    Ok(out)
}

/// One action; `None` for `drop`.
fn parse_action(c: &mut Cursor) -> PResult<Option<RuleAction>> {
    let start = c.pos;
    if c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
        return Ok(Some(RuleAction::Output(c.uint(u32::MAX as u64)? as u32)));
    }
    let name = c.ident();
    let set = |f: Field, c: &mut Cursor| -> PResult<Option<RuleAction>> {
        let (v, m) = f.parse_value(c)?;
        if m != f.full_mask() {
            return c.err_at(start, format!("{name} takes a value without a mask"));
        }
        Ok(Some(RuleAction::SetField {
            field: f,
            value: v,
            mask: m,
        }))
    };
    let colon = |c: &mut Cursor| c.expect(":");
    Ok(match name {
        "drop" => None,
        "normal" | "NORMAL" => Some(RuleAction::Normal),
        "flood" | "FLOOD" | "all" | "ALL" => Some(RuleAction::Flood),
        "in_port" | "IN_PORT" => Some(RuleAction::InPort),
        "output" => {
            colon(c)?;
            if c.eat("in_port") {
                Some(RuleAction::InPort)
            } else {
                Some(RuleAction::Output(c.uint(u32::MAX as u64)? as u32))
            }
        }
        "mod_dl_src" => {
            colon(c)?;
            set(Field::DlSrc, c)?
        }
        "mod_dl_dst" => {
            colon(c)?;
            set(Field::DlDst, c)?
        }
        "mod_nw_src" => {
            colon(c)?;
            set(Field::NwSrc, c)?
        }
        "mod_nw_dst" => {
            colon(c)?;
            set(Field::NwDst, c)?
        }
        "mod_nw_tos" => {
            colon(c)?;
            set(Field::NwTos, c)?
        }
        "mod_nw_ecn" => {
            colon(c)?;
            set(Field::NwEcn, c)?
        }
        "mod_nw_ttl" => {
            colon(c)?;
            set(Field::NwTtl, c)?
        }
        "mod_tp_src" => {
            colon(c)?;
            set(Field::TpSrc, c)?
        }
        "mod_tp_dst" => {
            colon(c)?;
            set(Field::TpDst, c)?
        }
        "set_tunnel" | "set_tunnel64" => {
            colon(c)?;
            set(Field::TunId, c)?
        }
        "set_field" => {
            colon(c)?;
            // VALUE[/MASK]->FIELD: find the field first to know the syntax.
            let rest = c.rest();
            let Some(arrow) = rest.find("->") else {
                return c.err("set_field needs VALUE->FIELD");
            };
            let fname_start = c.pos + arrow + 2;
            let fname: String = rest[arrow + 2..]
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .collect();
            let Some(f) = Field::by_name(&fname) else {
                return c.err_at(fname_start, format!("unknown field '{fname}'"));
            };
            let (v, m) = f.parse_value(c)?;
            c.expect("->")?;
            c.pos += fname.len();
            Some(RuleAction::SetField {
                field: f,
                value: v,
                mask: m,
            })
        }
        "push_vlan" => {
            colon(c)?;
            let tpid = c.uint(0xffff)? as u16;
            if tpid != 0x8100 && tpid != 0x88a8 {
                return c.err_at(start, "push_vlan takes 0x8100 or 0x88a8");
            }
            Some(RuleAction::PushVlan(tpid))
        }
        "strip_vlan" | "pop_vlan" => Some(RuleAction::PopVlan),
        "mod_vlan_vid" => {
            colon(c)?;
            Some(RuleAction::ModVlanVid(c.uint(0x0fff)? as u16))
        }
        "mod_vlan_pcp" => {
            colon(c)?;
            Some(RuleAction::ModVlanPcp(c.uint(7)? as u8))
        }
        "dec_ttl" => Some(RuleAction::DecTtl),
        "goto_table" => {
            colon(c)?;
            Some(RuleAction::GotoTable(c.uint(254)? as u8))
        }
        "resubmit" => {
            if c.eat(":") {
                Some(RuleAction::Resubmit {
                    in_port: Some(c.uint(u32::MAX as u64)? as u32),
                    table: None,
                })
            } else {
                c.expect("(")?;
                let in_port = if c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
                    Some(c.uint(u32::MAX as u64)? as u32)
                } else {
                    None
                };
                let table = if c.eat(",") && c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
                    Some(c.uint(254)? as u8)
                } else {
                    None
                };
                c.expect(")")?;
                Some(RuleAction::Resubmit { in_port, table })
            }
        }
        "" => return c.err("expected an action"),
        other => return c.err_at(start, format!("unknown or unsupported action '{other}'")),
    })
}

/// Field names printed by [`format_match`], in print order.
const FIELD_CANON: &[&str] = &[
    "in_port",
    "skb_priority",
    "pkt_mark",
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
    "dl_src",
    "dl_dst",
    "dl_type",
    "vlan_tci",
    "nw_src",
    "nw_dst",
    "arp_spa",
    "arp_tpa",
    "ipv6_src",
    "ipv6_dst",
    "ipv6_label",
    "nw_proto",
    "nw_tos",
    "nw_ecn",
    "nw_ttl",
    "ip_frag",
    "arp_op",
    "arp_sha",
    "arp_tha",
    "tp_src",
    "tp_dst",
    "icmp_type",
    "icmp_code",
    "tcp_flags",
    "nd_target",
    "nd_sll",
    "nd_tll",
    "mpls_label",
    "mpls_tc",
    "mpls_bos",
    "mpls_ttl",
];

/// Formats a match in `ovs-ofctl` syntax (shorthand first, then fields).
pub fn format_match(m: &Match) -> String {
    let mut parts: Vec<String> = Vec::new();
    let et = exact(m, Field::DlType).map(|v| v as u16);
    let proto = exact(m, Field::NwProto).map(|v| v as u8);
    let mut skip_type = false;
    let mut skip_proto = false;
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
    for name in FIELD_CANON {
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

/// Formats one action.
pub fn format_action(a: &RuleAction) -> String {
    match a {
        RuleAction::Output(p) => format!("output:{p}"),
        RuleAction::InPort => "in_port".into(),
        RuleAction::Normal => "NORMAL".into(),
        RuleAction::Flood => "FLOOD".into(),
        RuleAction::SetField { field, value, mask } => {
            let v = field.format_value(*value, *mask);
            format!("set_field:{v}->{}", field.name())
        }
        RuleAction::PushVlan(t) => format!("push_vlan:{t:#06x}"),
        RuleAction::PopVlan => "pop_vlan".into(),
        RuleAction::ModVlanVid(v) => format!("mod_vlan_vid:{v}"),
        RuleAction::ModVlanPcp(p) => format!("mod_vlan_pcp:{p}"),
        RuleAction::DecTtl => "dec_ttl".into(),
        RuleAction::Resubmit { in_port, table } => format!(
            "resubmit({},{})",
            in_port.map(|p| p.to_string()).unwrap_or_default(),
            table.map(|t| t.to_string()).unwrap_or_default()
        ),
        RuleAction::GotoTable(t) => format!("goto_table:{t}"),
    }
}

/// Formats a rule as `ovs-ofctl dump-flows` would (without statistics).
pub fn format_rule(r: &Rule) -> String {
    let mut s = String::new();
    if r.cookie != 0 {
        s.push_str(&format!("cookie={:#x}, ", r.cookie));
    }
    s.push_str(&format!("table={}, priority={}", r.table, r.priority));
    let m = format_match(&r.matched);
    if !m.is_empty() {
        s.push(',');
        s.push_str(&m);
    }
    s.push_str(" actions=");
    if r.actions.is_empty() {
        s.push_str("drop");
    } else {
        s.push_str(&r.actions.iter().map(format_action).collect::<Vec<_>>().join(","));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_round_trip() {
        for line in [
            "table=0, priority=100,tcp,nw_src=10.0.0.0/8,tp_dst=80 actions=output:2",
            "table=1, priority=5,in_port=3,dl_dst=00:00:00:00:00:01 actions=set_field:00:00:00:00:00:02->dl_src,output:1",
            "table=0, priority=32768,dl_vlan=10 actions=pop_vlan,NORMAL",
            "table=0, priority=1,dl_vlan=0xffff actions=mod_vlan_vid:20,output:4",
            "table=0, priority=7,arp,arp_tpa=10.0.0.1 actions=FLOOD",
            "table=0, priority=9,icmp6,icmp_type=135,icmp_code=0,nd_target=2001:db8::1 actions=drop",
            "table=0, priority=2,ip,tun_id=0x2a actions=set_field:192.0.2.9->tun_dst,set_field:0x7->tun_id,output:5",
            "table=0, priority=3,udp,tp_dst=0x400/0xfc00 actions=resubmit(,1),goto_table:2",
        ] {
            let r = parse_rule(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(format_rule(&r), line);
        }
        // Legacy action spellings parse to their set_field form.
        let a = parse_rule("in_port=1,actions=mod_dl_src:00:00:00:00:00:02,mod_tp_dst:80").unwrap_err();
        assert!(a.msg.contains("tp_dst"), "{a}");
        let r = parse_rule("in_port=1,actions=mod_dl_src:00:00:00:00:00:02,strip_vlan,output:1").unwrap();
        assert_eq!(
            format_rule(&r),
            "table=0, priority=32768,in_port=1 actions=set_field:00:00:00:00:00:02->dl_src,pop_vlan,output:1"
        );
    }

    #[test]
    fn prerequisites_are_enforced() {
        let e = parse_rule("tp_dst=80,actions=drop").unwrap_err();
        assert!(e.msg.contains("tp_dst needs tcp, udp or sctp"), "{e}");
        let e = parse_rule("ip,actions=mod_tp_dst:80").unwrap_err();
        assert!(e.msg.contains("needs a rule that matches"), "{e}");
        assert!(parse_rule("tcp,tp_dst=80,actions=mod_tp_dst:8080,output:1").is_ok());
        let e = parse_rule("tcp,dl_type=0x86dd,actions=drop").unwrap_err();
        assert!(e.msg.contains("contradicts"), "{e}");
    }

    #[test]
    fn bad_lines_fail_the_whole_file() {
        let e =
            parse_rules("priority=1,actions=drop\n# comment\n\npriority=2,nw_dst=1.2.3.4,actions=drop\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(parse_rule("priority=1").unwrap_err().msg.contains("missing 'actions='"));
        assert!(parse_rule("actions=drop,output:1").is_err());
        assert!(parse_rule("actions=goto_table:1,output:2").is_err());
        assert!(parse_rule("bogus=1,actions=drop")
            .unwrap_err()
            .msg
            .contains("unknown field"));
    }
}
