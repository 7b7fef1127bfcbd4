//! Groups in `ovs-ofctl`'s syntax: what `add-group` takes and
//! `dump-groups` prints.
//!
//! `group_id=N,type=all|select|indirect|ff[,selection_method=hash|dp_hash]
//! [,fields(FIELD,...)][,bucket=BUCKET]...`, where a bucket is `[weight:W,][watch_port:P,][watch_group:G,][actions=]A,B,...`
//! (`=` or `:` after each key). A select group's bucket without a weight
//! weighs 1, as in Open vSwitch; other kinds ignore weights.

use super::super::field::Field;
use super::super::group::{Bucket, Group, GroupKind, Selection, ALL_GROUPS, ANY_GROUP, MAX_GROUP_ID};
use super::actions::parse_list;
use super::format_action;
use crate::text::{Cursor, PResult, ParseError};

/// Parses a group (`add-group`, `mod-group`).
pub fn parse_group(s: &str) -> PResult<Group> {
    let (head, buckets) = split_buckets(s);
    let mut c = Cursor::new(head);
    let (mut id, mut kind, mut method, mut fields) = (None, None, None, None);
    loop {
        c.take_while(|ch| ch == ',' || ch.is_whitespace());
        if c.at_end() {
            break;
        }
        let start = c.pos;
        let key = c.ident();
        if key == "fields" && c.eat("(") {
            fields = Some(parse_fields(&mut c)?);
            continue;
        }
        if !(c.eat("=") || c.eat(":")) {
            return c.err_at(start, format!("expected '{key}=VALUE'"));
        }
        match key {
            "group_id" => id = Some(c.uint(MAX_GROUP_ID as u64)? as u32),
            "type" => {
                let at = c.pos;
                kind = Some(match c.ident() {
                    "all" => GroupKind::All,
                    "select" => GroupKind::Select,
                    "indirect" => GroupKind::Indirect,
                    "ff" | "fast_failover" => GroupKind::FastFailover,
                    other => return c.err_at(at, format!("unknown group type '{other}'")),
                });
            }
            "selection_method" => {
                let at = c.pos;
                method = Some(match c.ident() {
                    "hash" => "hash",
                    "dp_hash" => "dp_hash",
                    other => return c.err_at(at, format!("unknown selection method '{other}' (hash or dp_hash)")),
                });
            }
            "selection_method_param" => {
                return c.err_at(
                    start,
                    "'selection_method_param' is not supported: the hash has no basis to set",
                );
            }
            "" => return c.err("expected a group field"),
            other => return c.err_at(start, format!("unknown group field '{other}'")),
        }
    }
    let id = id.ok_or_else(|| ParseError {
        pos: 0,
        msg: "missing 'group_id='".into(),
    })?;
    let kind = kind.ok_or_else(|| ParseError {
        pos: 0,
        msg: "missing 'type=' (all, select, indirect or ff)".into(),
    })?;
    let fail = |msg: &str| {
        Err(ParseError {
            pos: 0,
            msg: msg.into(),
        })
    };
    let selection = match (method, fields) {
        (Some("hash"), Some(f)) => Selection::Hash(f),
        (Some("hash"), None) => return fail("selection_method=hash needs fields(...)"),
        (_, Some(_)) => return fail("fields(...) goes with selection_method=hash"),
        (Some(_), None) => Selection::DpHash,
        (None, None) => Selection::Default,
    };
    if selection != Selection::Default && kind != GroupKind::Select {
        return fail("a selection method is for select groups");
    }
    let buckets = buckets
        .into_iter()
        .map(|(at, text)| {
            parse_bucket(text, kind).map_err(|e| ParseError {
                pos: at + e.pos,
                msg: e.msg,
            })
        })
        .collect::<PResult<Vec<Bucket>>>()?;
    // As ovs-ofctl: a fast-failover bucket says what makes it live.
    if kind == GroupKind::FastFailover && buckets.iter().any(|b| !b.watches()) {
        return fail("fast failover bucket requires watch_port or watch_group");
    }
    Ok(Group {
        id,
        kind,
        buckets,
        selection,
    })
}

/// `FIELD,...)` of `fields(...)`.
fn parse_fields(c: &mut Cursor) -> PResult<Vec<Field>> {
    let mut out = Vec::new();
    loop {
        c.skip_ws();
        let at = c.pos;
        let name = c.ident();
        match Field::by_name(name) {
            Some(f) => out.push(f),
            None => return c.err_at(at, format!("unknown field '{name}'")),
        }
        if c.eat(")") {
            return Ok(out);
        }
        c.expect(",")?;
    }
}

/// The group numbers `del-groups` and the statistics verbs take:
/// `group_id=N`, `group_id=all` or nothing (every group).
pub fn parse_group_id(s: &str) -> PResult<u32> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(ALL_GROUPS);
    }
    let mut c = Cursor::new(t);
    c.expect("group_id")?;
    if !(c.eat("=") || c.eat(":")) {
        return c.err("expected 'group_id=N'");
    }
    if c.eat("all") {
        return Ok(ALL_GROUPS);
    }
    let id = c.uint(MAX_GROUP_ID as u64)? as u32;
    if !c.at_end() {
        return c.err("expected nothing after the group number");
    }
    Ok(id)
}

/// The text before the first `bucket=`, and each bucket's text (after
/// its `bucket=`) with where it starts. A `bucket=` counts only at the
/// start of a field, outside parentheses.
fn split_buckets(s: &str) -> (&str, Vec<(usize, &str)>) {
    let mut starts = Vec::new();
    let mut depth = 0i32;
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ => {}
        }
        let field_start = i == 0 || matches!(bytes[i - 1], b',' | b' ' | b'\t');
        if depth == 0 && field_start && s[i..].starts_with("bucket=") {
            starts.push(i);
        }
    }
    let head = &s[..starts.first().copied().unwrap_or(s.len())];
    let buckets = starts
        .iter()
        .enumerate()
        .map(|(n, &at)| {
            let end = starts.get(n + 1).copied().unwrap_or(s.len());
            let body = s[at + "bucket=".len()..end].trim_end_matches(|c: char| c == ',' || c.is_whitespace());
            (at + "bucket=".len(), body)
        })
        .collect();
    (head, buckets)
}

fn parse_bucket(text: &str, kind: GroupKind) -> PResult<Bucket> {
    let mut c = Cursor::new(text);
    let mut b = Bucket {
        weight: u16::from(kind == GroupKind::Select),
        ..Bucket::default()
    };
    loop {
        c.take_while(|ch| ch == ',' || ch.is_whitespace());
        if c.at_end() {
            return Ok(b);
        }
        let start = c.pos;
        let key = c.ident();
        let sep = c.eat(":") || c.eat("=");
        match key {
            "actions" if sep => break,
            "weight" if sep => b.weight = c.uint(u16::MAX as u64)? as u16,
            "watch_port" if sep => b.watch_port = watch(&mut c, u32::MAX)?,
            "watch_group" if sep => b.watch_group = watch(&mut c, MAX_GROUP_ID)?,
            "bucket_id" if sep => {
                c.uint(u32::MAX as u64)?;
            }
            _ => {
                // The rest of the bucket is its actions.
                c.pos = start;
                break;
            }
        }
    }
    b.actions = parse_list(&mut c, None)?;
    Ok(b)
}

/// A watched port or group: a number, or `any`/`none` for nothing.
fn watch(c: &mut Cursor, max: u32) -> PResult<Option<u32>> {
    for word in ["ANY", "any", "NONE", "none"] {
        if c.eat(word) {
            return Ok(None);
        }
    }
    let v = c.uint(u64::from(max))? as u32;
    Ok((v != ANY_GROUP).then_some(v))
}

/// A group as `ovs-ofctl -O OpenFlow13 dump-groups` prints it (without
/// the leading space).
pub fn format_group(g: &Group) -> String {
    let mut s = format!("group_id={},type={}", g.id, g.kind.name());
    match &g.selection {
        Selection::Default => {}
        Selection::DpHash => s.push_str(",selection_method=dp_hash"),
        Selection::Hash(fields) => {
            let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
            s.push_str(&format!(",selection_method=hash,fields({})", names.join(",")));
        }
    }
    for b in &g.buckets {
        s.push_str(",bucket=");
        let default_weight = u16::from(g.kind == GroupKind::Select);
        if b.weight != default_weight {
            s.push_str(&format!("weight:{},", b.weight));
        }
        if let Some(p) = b.watch_port {
            s.push_str(&format!("watch_port:{p},"));
        }
        if let Some(w) = b.watch_group {
            s.push_str(&format!("watch_group:{w},"));
        }
        s.push_str("actions=");
        if b.actions.is_empty() {
            s.push_str("drop");
        } else {
            s.push_str(&b.actions.iter().map(format_action).collect::<Vec<_>>().join(","));
        }
    }
    s
}

/// A group's counters as `ovs-ofctl -O OpenFlow13 dump-group-stats`
/// prints them (without the leading space).
pub fn format_group_stats(
    id: u32,
    age: std::time::Duration,
    ref_count: usize,
    packets: u64,
    bytes: u64,
    buckets: &[(u64, u64)],
) -> String {
    let mut s = format!(
        "group_id={id},duration={}.{:03}s,ref_count={ref_count},packet_count={packets},byte_count={bytes}",
        age.as_secs(),
        age.subsec_millis()
    );
    for (i, (p, b)) in buckets.iter().enumerate() {
        s.push_str(&format!(",bucket{i}:packet_count={p},byte_count={b}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleAction;

    #[test]
    fn the_tutorials_groups_parse_and_print_as_ovs_ofctl_does() {
        let all = parse_group("group_id=1,type=all,bucket=output:2,bucket=output:3,bucket=output:4").unwrap();
        assert_eq!(all.kind, GroupKind::All);
        assert_eq!(all.buckets.len(), 3);
        assert_eq!(all.buckets[2].actions, vec![RuleAction::output(4)]);
        assert_eq!(
            format_group(&all),
            "group_id=1,type=all,bucket=actions=output:2,bucket=actions=output:3,bucket=actions=output:4"
        );
        let ff = parse_group(
            "group_id=0,type=ff,bucket=weight:0,watch_port:2,watch_group:0,actions=output:2,\
             bucket=weight:0,watch_port:3,watch_group:0,actions=output:3",
        )
        .unwrap();
        assert_eq!(ff.buckets[1].watch_port, Some(3));
        assert_eq!(ff.buckets[1].watch_group, Some(0));
        assert_eq!(
            format_group(&ff),
            "group_id=0,type=ff,bucket=watch_port:2,watch_group:0,actions=output:2,\
             bucket=watch_port:3,watch_group:0,actions=output:3"
        );
        let sel = parse_group(
            "group_id=2,type=select,bucket=weight:2,actions=mod_dl_dst:00:00:00:00:00:01,output:2,bucket=output:3",
        )
        .unwrap();
        assert_eq!((sel.buckets[0].weight, sel.buckets[1].weight), (2, 1));
        assert_eq!(
            format_group(&sel),
            "group_id=2,type=select,bucket=weight:2,actions=set_field:00:00:00:00:00:01->eth_dst,output:2,bucket=actions=output:3"
        );
        assert_eq!(parse_group(&format_group(&sel)).unwrap(), sel);
        assert_eq!(
            format_group_stats(
                2,
                std::time::Duration::from_millis(2227),
                1,
                5,
                500,
                &[(2, 200), (3, 300)]
            ),
            "group_id=2,duration=2.227s,ref_count=1,packet_count=5,byte_count=500,\
             bucket0:packet_count=2,byte_count=200,bucket1:packet_count=3,byte_count=300"
        );
    }

    #[test]
    fn bad_groups_say_why() {
        let err = |s: &str| parse_group(s).unwrap_err().msg;
        assert!(err("type=all,bucket=output:2").contains("group_id"));
        assert!(err("group_id=1,bucket=output:2").contains("type="));
        assert!(err("group_id=1,type=any").contains("unknown group type"));
        assert!(
            err("group_id=1,type=ff,bucket=watch_port:1,actions=output:1,bucket=output:2")
                .contains("requires watch_port")
        );
        assert!(err("group_id=1,type=all,bucket=output:2,bucket=frob").contains("frob"));
        assert!(err("group_id=1,type=select,selection_method=hash").contains("needs fields"));
        assert!(err("group_id=1,type=all,selection_method=dp_hash").contains("for select groups"));
        assert!(err("group_id=1,type=select,selection_method=hash,fields(ip_dst,frob)").contains("frob"));
        let g =
            parse_group("group_id=1,type=select,selection_method=hash,fields(ip_dst,tcp_dst),bucket=output:1").unwrap();
        assert_eq!(g.selection, Selection::Hash(vec![Field::NwDst, Field::TpDst]));
        assert_eq!(
            format_group(&g),
            "group_id=1,type=select,selection_method=hash,fields(nw_dst,tp_dst),bucket=actions=output:1"
        );
        assert_eq!(parse_group(&format_group(&g)).unwrap(), g);
        assert_eq!(parse_group_id("group_id=7"), Ok(7));
        assert_eq!(parse_group_id(""), Ok(ALL_GROUPS));
        assert_eq!(parse_group_id("group_id=all"), Ok(ALL_GROUPS));
        assert!(parse_group_id("group_id=7x").is_err());
    }
}
