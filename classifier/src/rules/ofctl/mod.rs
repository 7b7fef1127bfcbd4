//! Rule text in the `ovs-ofctl add-flow` syntax.
//!
//! `[table=N,][priority=N,][cookie=N,]MATCH...,actions=ACTIONS`, fields
//! separated by commas or spaces, shorthands `ip ipv6 tcp udp sctp icmp
//! icmp6 tcp6 udp6 sctp6 arp rarp mpls`, default priority 32768. Every field
//! and action is checked against its prerequisites, so a rule that would
//! match `tp_dst` without a transport protocol is refused with a reason.
//! [`parse_rules`] is all-or-nothing: the first bad line fails the whole
//! text, with its line number.

mod actions;
mod flow;
mod format;
mod group;
mod learn;
mod meter;

pub use self::flow::parse_flow;
pub use self::format::{format_action, format_flow, format_match, format_rule};
pub use self::group::{format_group, format_group_stats, parse_group, parse_group_id};
pub use self::learn::format_learn;
pub use self::meter::{format_meter, format_meter_stats, parse_meter, parse_meter_id, MeterCounts};

use self::actions::parse_actions;
use self::format::FIELD_CANON;
use super::field::{Field, Prereq};
use super::group::groups_named;
use super::meter::meter_named;
use super::{flags, Rule, RuleAction, RuleSet};
use crate::key::{FlowKey, Match};
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

/// A rule file with its groups and meters: lines that start with
/// `group_id=` are groups in `add-group` syntax, lines that start with
/// `meter=` meters in `add-meter` syntax, the others rules. A group or
/// meter must come before the rules and groups that name it. All or
/// nothing, like [`parse_rules`].
pub fn parse_pipeline(text: &str) -> Result<RuleSet, RuleFileError> {
    let mut set = RuleSet::new();
    let fail = |line: usize, msg: String| RuleFileError {
        line,
        err: ParseError { pos: 0, msg },
    };
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with("group_id=") {
            let g = parse_group(t).map_err(|err| RuleFileError { line: i + 1, err })?;
            set.groups().check(&g, false).map_err(|e| fail(i + 1, e.to_string()))?;
            set.groups_mut().put(g);
            continue;
        }
        if t.starts_with("meter=") {
            let m = parse_meter(t).map_err(|err| RuleFileError { line: i + 1, err })?;
            set.meters().check(&m, false).map_err(|e| fail(i + 1, e.to_string()))?;
            set.meters_mut().put(m);
            continue;
        }
        let r = parse_rule(t).map_err(|err| RuleFileError { line: i + 1, err })?;
        if let Some(g) = groups_named(&r.actions).find(|g| !set.groups().contains(*g)) {
            return Err(fail(
                i + 1,
                format!("group {g} does not exist (define it on an earlier line)"),
            ));
        }
        if let Some(m) = meter_named(&r.actions).filter(|m| !set.meters().contains(*m)) {
            return Err(fail(
                i + 1,
                format!("meter {m} does not exist (define it on an earlier line)"),
            ));
        }
        set.add(r);
    }
    Ok(set)
}

pub(crate) const SHORTHANDS: &[(&str, u16, Option<u8>)] = &[
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

/// The flag words of a rule (`ofp_flow_mod_flags`), as `ovs-ofctl`
/// writes them.
pub(crate) const FLAG_WORDS: &[(&str, u16)] = &[
    ("send_flow_rem", flags::SEND_FLOW_REM),
    ("check_overlap", flags::CHECK_OVERLAP),
    ("reset_counts", flags::RESET_COUNTS),
    ("no_packet_counts", flags::NO_PACKET_COUNTS),
    ("no_byte_counts", flags::NO_BYTE_COUNTS),
];

/// Parses one rule (match and actions).
pub fn parse_rule(s: &str) -> PResult<Rule> {
    let mut c = Cursor::new(s);
    let mut rule = Rule {
        priority: DEFAULT_PRIORITY,
        ..Rule::default()
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
        if let Some(&(_, bit)) = FLAG_WORDS.iter().find(|(n, _)| *n == name) {
            rule.flags |= bit;
            continue;
        }
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
            "idle_timeout" => rule.idle_timeout = c.uint(u16::MAX as u64)? as u16,
            "hard_timeout" => rule.hard_timeout = c.uint(u16::MAX as u64)? as u16,
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
    check_actions_prereqs(&rule.actions, &rule.matched).map_err(|msg| ParseError { pos: 0, msg })?;
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

pub(crate) fn exact(m: &Match, f: Field) -> Option<u128> {
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
                // As Open vSwitch: the code must be 0, which a match that
                // leaves it wild also says (OpenFlow asks only the type).
                && (Field::IcmpCode.get(&m.mask) == 0 || exact(m, Field::IcmpCode) == Some(0))
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

/// Checks that every field the match names has its prerequisites
/// (`Err` names the field and what it needs).
pub fn check_match_prereqs(m: &Match) -> Result<(), String> {
    // Fields sharing storage fail together: name the commoner meaning
    // (tp_dst, not icmp_code; arp_sha, not nd_sll).
    const SECOND_MEANINGS: [&str; 4] = ["icmp_type", "icmp_code", "nd_sll", "nd_tll"];
    let order = FIELD_CANON
        .iter()
        .filter(|n| !SECOND_MEANINGS.contains(n))
        .chain(SECOND_MEANINGS.iter());
    for name in order {
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

/// Checks each action of a list against the packets as the actions before
/// it made them: after `push_mpls` or `pop_mpls` the Ethertype is the
/// action's, and nothing the match said of the IP protocol holds.
pub fn check_actions_prereqs(list: &[RuleAction], m: &Match) -> Result<(), String> {
    let mut now = *m;
    for a in list {
        check_action_prereqs(a, &now)?;
        if let RuleAction::PushMpls(et) | RuleAction::PopMpls(et) = a {
            let (mut key, mut mask) = (now.key, now.mask);
            Field::DlType.put(&mut key, *et as u128, u128::MAX);
            Field::DlType.put(&mut mask, u128::MAX, u128::MAX);
            Field::NwProto.put(&mut mask, 0, u128::MAX);
            now = Match::new(key, mask);
        }
    }
    Ok(())
}

/// Checks that an action's fields exist in every packet the match takes
/// (`Err` says which protocol the match lacks).
pub fn check_action_prereqs(a: &RuleAction, m: &Match) -> Result<(), String> {
    let (name, p) = match a {
        RuleAction::WriteActions(list) => {
            return list.iter().try_for_each(|a| check_action_prereqs(a, m));
        }
        RuleAction::SetField { field, .. } => (field.name(), field.prereq()),
        RuleAction::Load { dst, .. } => (dst.field.name(), dst.field.prereq()),
        RuleAction::Move { src, dst } => {
            prereq_ok(src.field.prereq(), m)
                .map_err(|need| format!("action reading {} needs a rule that matches {need}", src.field.name()))?;
            (dst.field.name(), dst.field.prereq())
        }
        RuleAction::Learn(l) => {
            return l.sources().try_for_each(|src| {
                prereq_ok(src.field.prereq(), m)
                    .map_err(|need| format!("learn reading {} needs a rule that matches {need}", src.field.name()))
            });
        }
        RuleAction::OutputReg { src, .. } => {
            return prereq_ok(src.field.prereq(), m)
                .map_err(|need| format!("action reading {} needs a rule that matches {need}", src.field.name()));
        }
        RuleAction::DecTtl => ("dec_ttl", Prereq::Ip),
        RuleAction::PopMpls(_) => ("pop_mpls", Prereq::Mpls),
        RuleAction::SetMplsTtl(_) => ("set_mpls_ttl", Prereq::Mpls),
        RuleAction::DecMplsTtl => ("dec_mpls_ttl", Prereq::Mpls),
        _ => return Ok(()),
    };
    prereq_ok(p, m).map_err(|need| format!("action setting {name} needs a rule that matches {need}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_file_defines_its_groups_before_using_them() {
        let set = parse_pipeline(
            "# groups first\ngroup_id=2,type=indirect,bucket=output:3\n\
             group_id=1,type=all,bucket=output:2,bucket=group:2\n\
             in_port=1,actions=group:1\n",
        )
        .unwrap();
        assert_eq!((set.len(), set.groups().len()), (1, 2));
        let e = parse_pipeline("in_port=1,actions=group:1\ngroup_id=1,type=all,bucket=output:2\n")
            .err()
            .expect("refused");
        assert_eq!(e.line, 1);
        assert!(e.err.msg.contains("group 1 does not exist"), "{e}");
        let e = parse_pipeline("group_id=1,type=all,bucket=group:1\n")
            .err()
            .expect("refused");
        assert!(e.err.msg.contains("reach itself"), "{e}");
    }

    #[test]
    fn a_pipeline_holds_meters_and_a_meter_comes_first() {
        let set =
            parse_pipeline("meter=1,kbps,band=type=drop,rate=5000\nin_port=1,actions=meter:1,output:2\n").unwrap();
        assert!(set.meters().contains(1));
        let r = set.iter().next().unwrap();
        assert_eq!(r.actions, vec![RuleAction::Meter(1), RuleAction::output(2)]);
        assert_eq!(
            format_rule(r),
            "table=0, priority=32768,in_port=1 actions=meter:1,output:2"
        );
        let e = parse_pipeline("in_port=1,actions=meter:2,output:2\n")
            .err()
            .expect("refused");
        assert!(e.err.msg.contains("meter 2 does not exist"), "{e}");
        let e = parse_rule("in_port=1,actions=output:2,meter:1").unwrap_err();
        assert!(e.msg.contains("meter must appear before apply_actions"), "{e}");
        assert!(parse_rule("in_port=1,actions=meter:1,meter:2").is_err());
        assert!(parse_rule("in_port=1,actions=meter:0").is_err());
        assert!(parse_rule("in_port=1,actions=write_actions(meter:1)").is_err());
    }

    #[test]
    fn parse_and_format_round_trip() {
        for line in [
            "table=0, priority=100,tcp,nw_src=10.0.0.0/8,tp_dst=80 actions=output:2",
            "table=1, priority=5,in_port=3,dl_dst=00:00:00:00:00:01 actions=set_field:00:00:00:00:00:02->eth_src,output:1",
            "table=0, priority=32768,dl_vlan=10 actions=pop_vlan,NORMAL",
            "table=0, priority=1,dl_vlan=0xffff actions=mod_vlan_vid:20,output:4",
            "table=0, priority=7,arp,arp_tpa=10.0.0.1 actions=FLOOD",
            "table=0, priority=9,icmp6,icmp_type=135,icmp_code=0,nd_target=2001:db8::1 actions=drop",
            "table=0, priority=2,ip,tun_id=0x2a actions=set_field:192.0.2.9->tun_dst,set_field:0x7->tun_id,output:5",
            "table=0, priority=3,udp,tp_dst=0x400/0xfc00 actions=resubmit(,1),goto_table:2",
            "table=0, priority=4,mpls,mpls_label=100 actions=dec_mpls_ttl,set_mpls_ttl(9),push_mpls:0x8847,pop_mpls:0x0800,output:1",
            "table=0, priority=4,ip actions=push_mpls:0x8848,set_field:5->mpls_tc,output:1",
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
            "table=0, priority=32768,in_port=1 actions=set_field:00:00:00:00:00:02->eth_src,pop_vlan,output:1"
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
        // MPLS actions need a label stack, as the actions before them left
        // the packet: a pop leaves IPv4 whose protocol nobody knows.
        let e = parse_rule("ip,actions=set_mpls_ttl:3").unwrap_err();
        assert!(e.msg.contains("needs a rule that matches mpls"), "{e}");
        assert!(parse_rule("ip,actions=push_mpls:0x8847,dec_mpls_ttl").is_ok());
        let e = parse_rule("tcp,actions=push_mpls:0x8847,mod_tp_dst:1").unwrap_err();
        assert!(e.msg.contains("needs a rule that matches"), "{e}");
        let e = parse_rule("mpls,actions=pop_mpls:0x0800,mod_tp_dst:1").unwrap_err();
        assert!(e.msg.contains("needs a rule that matches"), "{e}");
        let e = parse_rule("ip,actions=push_mpls:0x0800").unwrap_err();
        assert!(e.msg.contains("push_mpls takes 0x8847 or 0x8848"), "{e}");
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
