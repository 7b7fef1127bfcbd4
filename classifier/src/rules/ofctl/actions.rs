//! Actions (and OpenFlow 1.3 instructions) in `ovs-ofctl` syntax.
//!
//! `actions=A,B,...` where a `meter:N` comes first, then the applied
//! actions, then the instructions in OpenFlow's order, each at most once:
//! `clear_actions`,
//! `write_actions(...)`, `write_metadata:V[/M]`, `goto_table:N` (as
//! `ovs-ofctl` insists: "invalid instruction ordering").

use super::super::field::Field;
use super::super::subfield::{ones, Subfield};
use super::super::RuleAction;
use crate::text::{Cursor, PResult, ParseError};

/// The legacy `mod_*` and `set_tunnel` spellings of a set_field.
const LEGACY_SETS: &[(&str, Field)] = &[
    ("mod_dl_src", Field::DlSrc),
    ("mod_dl_dst", Field::DlDst),
    ("mod_nw_src", Field::NwSrc),
    ("mod_nw_dst", Field::NwDst),
    ("mod_nw_tos", Field::NwTos),
    ("mod_nw_ecn", Field::NwEcn),
    ("mod_nw_ttl", Field::NwTtl),
    ("mod_tp_src", Field::TpSrc),
    ("mod_tp_dst", Field::TpDst),
    ("set_tunnel", Field::TunId),
    ("set_tunnel64", Field::TunId),
];

/// Reserved port names, as actions and as `output:NAME`.
fn port_action(name: &str) -> Option<RuleAction> {
    Some(match name {
        "normal" | "NORMAL" => RuleAction::Normal,
        "flood" | "FLOOD" => RuleAction::Flood,
        "all" | "ALL" => RuleAction::All,
        "in_port" | "IN_PORT" => RuleAction::InPort,
        "controller" | "CONTROLLER" => RuleAction::Controller { max_len: u16::MAX },
        _ => return None,
    })
}

/// The instruction an action stands for: its place in OpenFlow's order
/// ([`APPLIED`]: an applied action, which may repeat).
fn instruction_rank(a: &RuleAction) -> (u8, &'static str) {
    match a {
        RuleAction::Meter(_) => (0, "meter"),
        RuleAction::ClearActions => (2, "clear_actions"),
        RuleAction::WriteActions(_) => (3, "write_actions"),
        RuleAction::WriteMetadata { .. } => (4, "write_metadata"),
        RuleAction::GotoTable(_) => (5, "goto_table"),
        _ => (APPLIED, "apply_actions"),
    }
}

/// The rank of the applied actions, the only instruction that may repeat.
const APPLIED: u8 = 1;

/// Parses the action list after `actions=` to the end of the input.
pub(super) fn parse_actions(c: &mut Cursor) -> PResult<Vec<RuleAction>> {
    let out = parse_list(c, None)?;
    let mut last: Option<(u8, &str)> = None;
    for a in &out {
        let rank = instruction_rank(a);
        if let Some(last) = last.filter(|l| rank.0 < l.0 || (rank.0 == l.0 && rank.0 != APPLIED)) {
            return c.err_at(
                0,
                format!("invalid instruction ordering: {} must appear before {}", rank.1, last.1),
            );
        }
        last = Some(rank);
    }
    Ok(out)
}

/// Actions separated by commas, up to the end of the input or up to
/// `close` (consumed). `drop` must stand alone.
pub(super) fn parse_list(c: &mut Cursor, close: Option<&str>) -> PResult<Vec<RuleAction>> {
    let mut items: Vec<(usize, Option<RuleAction>)> = Vec::new();
    c.skip_ws();
    if close.is_some_and(|e| c.eat(e)) {
        return Ok(Vec::new());
    }
    loop {
        c.skip_ws();
        if c.at_end() {
            match close {
                Some(e) => return c.err(format!("expected '{e}'")),
                None if items.is_empty() => break,
                None => return c.err("expected an action after ','"),
            }
        }
        let start = c.pos;
        items.push((start, parse_action(c)?));
        c.skip_ws();
        if c.eat(",") {
            continue;
        }
        if close.is_some_and(|e| c.eat(e)) || (close.is_none() && c.at_end()) {
            break;
        }
        return c.err("expected ',' between actions");
    }
    if items.len() > 1 {
        if let Some((at, _)) = items.iter().find(|(_, a)| a.is_none()) {
            return c.err_at(*at, "'drop' must be the only action");
        }
    }
    Ok(items.into_iter().filter_map(|(_, a)| a).collect())
}

/// One action; `None` for `drop`.
fn parse_action(c: &mut Cursor) -> PResult<Option<RuleAction>> {
    let start = c.pos;
    if c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
        return Ok(Some(RuleAction::output(c.uint(u32::MAX as u64)? as u32)));
    }
    let name = c.ident();
    if let Some(&(_, field)) = LEGACY_SETS.iter().find(|(n, _)| *n == name) {
        c.expect(":")?;
        let (value, mask) = field.parse_value(c)?;
        if mask != field.full_mask() {
            return c.err_at(start, format!("{name} takes a value without a mask"));
        }
        return Ok(Some(RuleAction::SetField { field, value, mask }));
    }
    if name == "controller" || name == "CONTROLLER" {
        return parse_controller(c).map(Some);
    }
    if let Some(a) = port_action(name) {
        return Ok(Some(a));
    }
    let a = match name {
        "drop" => return Ok(None),
        "output" => {
            c.expect(":")?;
            if c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
                RuleAction::output(c.uint(u32::MAX as u64)? as u32)
            } else {
                let at = c.pos;
                let port = c.ident();
                match port_action(port) {
                    Some(a) => a,
                    None => {
                        // `output:SUBFIELD`: the port a field holds.
                        c.pos = at;
                        let src = Subfield::parse(c).map_err(|e| ParseError {
                            msg: format!("unknown port or field '{port}': {}", e.msg),
                            ..e
                        })?;
                        if src.n_bits > 32 {
                            return c.err_at(at, format!("output:{src} is wider than a port number (32 bits)"));
                        }
                        RuleAction::OutputReg { src, max_len: 0 }
                    }
                }
            }
        }
        "set_field" => parse_set_field(c)?,
        "push_vlan" => {
            c.expect(":")?;
            let tpid = c.uint(0xffff)? as u16;
            if tpid != 0x8100 && tpid != 0x88a8 {
                return c.err_at(start, "push_vlan takes 0x8100 or 0x88a8");
            }
            RuleAction::PushVlan(tpid)
        }
        "strip_vlan" | "pop_vlan" => RuleAction::PopVlan,
        "mod_vlan_vid" => {
            c.expect(":")?;
            RuleAction::ModVlanVid(c.uint(0x0fff)? as u16)
        }
        "mod_vlan_pcp" => {
            c.expect(":")?;
            RuleAction::ModVlanPcp(c.uint(7)? as u8)
        }
        "dec_ttl" => RuleAction::DecTtl,
        "dec_mpls_ttl" => RuleAction::DecMplsTtl,
        // `set_mpls_ttl:TTL`, or `set_mpls_ttl(TTL)` as ovs-ofctl prints it.
        "set_mpls_ttl" => {
            let paren = c.eat("(");
            if !paren {
                c.expect(":")?;
            }
            let ttl = c.uint(255)? as u8;
            if paren {
                c.expect(")")?;
            }
            RuleAction::SetMplsTtl(ttl)
        }
        "push_mpls" | "pop_mpls" => {
            c.expect(":")?;
            let et = c.uint(0xffff)? as u16;
            let mpls = matches!(et, 0x8847 | 0x8848);
            if name == "push_mpls" && !mpls {
                return c.err_at(start, "push_mpls takes 0x8847 or 0x8848");
            }
            if name == "push_mpls" {
                RuleAction::PushMpls(et)
            } else {
                RuleAction::PopMpls(et)
            }
        }
        "goto_table" => {
            c.expect(":")?;
            RuleAction::GotoTable(c.uint(254)? as u8)
        }
        "resubmit" => parse_resubmit(c)?,
        "group" => {
            c.expect(":")?;
            RuleAction::Group(c.uint(crate::rules::group::MAX_GROUP_ID as u64)? as u32)
        }
        "meter" => {
            c.expect(":")?;
            let id = c.uint(crate::rules::meter::MAX_METER_ID as u64)? as u32;
            if id == 0 {
                return c.err_at(start, "meter 0 does not exist (meters are numbered from 1)");
            }
            RuleAction::Meter(id)
        }
        "load" => parse_load(c)?,
        "learn" => RuleAction::Learn(Box::new(super::learn::parse_learn(c)?)),
        "move" => parse_move(c)?,
        "clear_actions" => RuleAction::ClearActions,
        "write_actions" => parse_write_actions(c)?,
        "write_metadata" => {
            c.expect(":")?;
            let (value, mask) = c.uint_masked(u64::MAX)?;
            RuleAction::WriteMetadata { value, mask }
        }
        "" => return c.err("expected an action"),
        other => return c.err_at(start, format!("unknown or unsupported action '{other}'")),
    };
    Ok(Some(a))
}

/// `controller`, `controller:MAX_LEN`, `controller(max_len=MAX_LEN)`.
fn parse_controller(c: &mut Cursor) -> PResult<RuleAction> {
    let max_len = if c.eat(":") {
        c.uint(0xffff)? as u16
    } else if c.eat("(") {
        let mut max_len = u16::MAX;
        loop {
            c.skip_ws();
            if c.eat(")") {
                break;
            }
            let at = c.pos;
            let key = c.ident();
            match key {
                "max_len" => {
                    c.expect("=")?;
                    max_len = c.uint(0xffff)? as u16;
                }
                _ => return c.err_at(at, format!("unsupported controller option '{key}'")),
            }
            c.skip_ws();
            c.eat(",");
        }
        max_len
    } else {
        u16::MAX
    };
    Ok(RuleAction::Controller { max_len })
}

/// `set_field:VALUE[/MASK]->FIELD`: the field is read first, to know the
/// value's syntax.
fn parse_set_field(c: &mut Cursor) -> PResult<RuleAction> {
    c.expect(":")?;
    let rest = c.rest();
    let Some(arrow) = rest.find("->") else {
        return c.err("set_field needs VALUE->FIELD");
    };
    let fname_start = c.pos + arrow + 2;
    let fname: String = rest[arrow + 2..]
        .chars()
        .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
        .collect();
    let Some(field) = Field::by_name(&fname) else {
        return c.err_at(fname_start, format!("unknown field '{fname}'"));
    };
    let (value, mask) = if fname == "vlan_vid" {
        // OpenFlow's vlan_vid: the VID with bit 12 set (a tag present),
        // as `ovs-ofctl` writes it (`set_field:4196->vlan_vid` is VID 100).
        ((c.uint(0x1fff)? & 0x0fff) as u128, 0x0fff)
    } else {
        field.parse_value(c)?
    };
    c.expect("->")?;
    c.pos += fname.len();
    Ok(RuleAction::SetField { field, value, mask })
}

/// `load:VALUE->DST`: the value must fit the subfield.
fn parse_load(c: &mut Cursor) -> PResult<RuleAction> {
    c.expect(":")?;
    let at = c.pos;
    let value = c.uint(u64::MAX)? as u128;
    c.expect("->")?;
    let dst = Subfield::parse(c)?;
    if value & !ones(dst.n_bits as u32) != 0 {
        return c.err_at(
            at,
            format!("{dst}: value {value:#x} does not fit into {} bits", dst.n_bits),
        );
    }
    Ok(RuleAction::Load { dst, value })
}

/// `move:SRC->DST`: both of the same width.
fn parse_move(c: &mut Cursor) -> PResult<RuleAction> {
    c.expect(":")?;
    let at = c.pos;
    let src = Subfield::parse(c)?;
    c.expect("->")?;
    let dst = Subfield::parse(c)?;
    if src.n_bits != dst.n_bits {
        return c.err_at(
            at,
            format!(
                "source field {src} is {} bits wide but destination {dst} is {} bits wide",
                src.n_bits, dst.n_bits
            ),
        );
    }
    Ok(RuleAction::Move { src, dst })
}

/// `resubmit:PORT` or `resubmit([PORT],[TABLE])`.
fn parse_resubmit(c: &mut Cursor) -> PResult<RuleAction> {
    if c.eat(":") {
        return Ok(RuleAction::Resubmit {
            in_port: Some(c.uint(u32::MAX as u64)? as u32),
            table: None,
        });
    }
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
    Ok(RuleAction::Resubmit { in_port, table })
}

/// `write_actions(A,B,...)`: only actions an action set can hold.
fn parse_write_actions(c: &mut Cursor) -> PResult<RuleAction> {
    c.expect("(")?;
    let start = c.pos;
    let list = parse_list(c, Some(")"))?;
    for a in &list {
        let allowed = matches!(
            a,
            RuleAction::Output { .. }
                | RuleAction::InPort
                | RuleAction::Normal
                | RuleAction::Flood
                | RuleAction::All
                | RuleAction::Controller { .. }
                | RuleAction::SetField { .. }
                | RuleAction::Load { .. }
                | RuleAction::PushVlan(_)
                | RuleAction::PopVlan
                | RuleAction::ModVlanVid(_)
                | RuleAction::ModVlanPcp(_)
                | RuleAction::DecTtl
                | RuleAction::PushMpls(_)
                | RuleAction::PopMpls(_)
                | RuleAction::SetMplsTtl(_)
                | RuleAction::DecMplsTtl
                | RuleAction::Group(_)
        );
        if !allowed {
            return c.err_at(start, format!("{} cannot be in an action set", super::format_action(a)));
        }
    }
    Ok(RuleAction::WriteActions(list))
}
