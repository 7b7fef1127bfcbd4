//! One line of flow text, as `ovs-dpctl dump-flows` prints it and
//! `ovs-dpctl add-flow` reads it: a UFID, a key, statistics and actions,
//! any of them absent.

use super::actions::{self, OdpAction};
use super::parse::parse_key_at;
use super::OdpKey;
use crate::text::{Cursor, PResult};

/// One line of `ovs-dpctl dump-flows` (or of `ovs-dpctl add-flow` input):
/// any of the key, the statistics and the actions may be absent.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FlowLine {
    pub ufid: Option<String>,
    pub key: Option<OdpKey>,
    pub stats: Option<FlowStatsText>,
    pub actions: Option<Vec<OdpAction>>,
}

/// The statistics part of a dump-flows line, kept as OVS prints it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FlowStatsText {
    pub packets: u64,
    pub bytes: u64,
    /// `never` or `N.NNNs`.
    pub used: String,
    /// TCP flags seen, if printed.
    pub flags: Option<String>,
}

impl std::fmt::Display for FlowLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(u) = &self.ufid {
            parts.push(format!("ufid:{u}"));
        }
        if let Some(k) = &self.key {
            parts.push(k.to_string());
        }
        if let Some(s) = &self.stats {
            parts.push(format!("packets:{}", s.packets));
            parts.push(format!("bytes:{}", s.bytes));
            parts.push(format!("used:{}", s.used));
            if let Some(fl) = &s.flags {
                parts.push(format!("flags:{fl}"));
            }
        }
        let head = parts.join(", ");
        match &self.actions {
            Some(a) => {
                let acts = actions::format_actions(a);
                if head.is_empty() {
                    write!(f, "actions:{acts}")
                } else if self.stats.is_some() {
                    write!(f, "{head}, actions:{acts}")
                } else {
                    write!(f, "{head} actions:{acts}")
                }
            }
            None => f.write_str(&head),
        }
    }
}

/// Parses one line of flow text: `[ufid:U, ]KEY[, packets:N, bytes:N, used:T[, flags:F]][, ]actions:A`
/// or `KEY actions:A`, or a key alone, or `actions:A` alone.
pub fn parse_flow_line(line: &str) -> PResult<FlowLine> {
    let mut c = Cursor::new(line);
    let mut out = FlowLine::default();
    c.skip_ws();
    if c.eat("ufid:") {
        let u = c.take_while(|ch| ch.is_ascii_hexdigit() || ch == '-');
        if u.is_empty() {
            return c.err("expected a UFID after 'ufid:'");
        }
        out.ufid = Some(u.to_string());
        c.eat(",");
        c.skip_ws();
    }
    if !c.rest().starts_with("actions:") && !c.at_end() {
        out.key = Some(parse_key_at(&mut c)?);
    }
    loop {
        let before = c.pos;
        c.eat(",");
        c.skip_ws();
        if c.at_end() {
            break;
        }
        if c.eat("actions:") {
            c.skip_ws();
            let acts = actions::parse_actions_at(&mut c)?;
            c.skip_ws();
            if !c.at_end() {
                return c.err(format!("unexpected text after the actions: '{}'", c.rest()));
            }
            out.actions = Some(acts);
            break;
        }
        let stats = out.stats.get_or_insert_with(|| FlowStatsText {
            used: "never".into(),
            ..Default::default()
        });
        if c.eat("packets:") {
            stats.packets = c.uint(u64::MAX)?;
        } else if c.eat("bytes:") {
            stats.bytes = c.uint(u64::MAX)?;
        } else if c.eat("used:") {
            stats.used = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '.').to_string();
        } else if c.eat("flags:") {
            // TCP flags as ovs-dpctl prints them: letters, '.' and '|'.
            stats.flags = Some(
                c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '|')
                    .to_string(),
            );
        } else if c.pos == before || !c.rest().is_empty() {
            let word = c.rest().split([',', ' ']).next().unwrap_or("");
            return c.err(format!("expected 'actions:' or a statistic, found '{word}'"));
        }
    }
    if out.key.is_none() && out.actions.is_none() {
        return c.err("empty flow: expected a key, 'actions:' or both");
    }
    Ok(out)
}
