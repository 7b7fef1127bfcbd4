//! The control socket's requests and replies, typed end to end.
//!
//! # What
//! A [`Request`] names what `odpx ctl` asks; a [`Reply`] is the answer
//! as data: the switch's [`Snapshot`], megaflows, rules, MAC entries,
//! routes, a trace. Both travel as JSON ([`crate::ctl`]); text is made
//! from a reply only at the end, for people ([`crate::render::text::reply`]),
//! and `--json` prints the data itself ([`crate::render::json::reply`]).
//!
//! Rules and keys stay in their own languages (ovs-ofctl rule syntax, ODP
//! key syntax) inside a request: they are what people type, and the
//! switch parses them whole before anything changes, so a bad one is an
//! error that changes nothing.

use crate::core::underlay::{NeighbourRow, RouteRow};
use crate::owner::MacEntry;
use crate::snapshot::Snapshot;
use serde::{Deserialize, Serialize};

/// What `odpx ctl` asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    Show,
    PmdStatsShow,
    PmdStatsClear,
    DumpFlows,
    /// One rule in `ovs-ofctl add-flow` syntax.
    AddFlow {
        rule: String,
    },
    /// Rules in `ovs-ofctl add-flow` syntax, one a line; all or none.
    AddFlows {
        rules: String,
    },
    /// A match in `ovs-ofctl del-flows` syntax (empty: every rule); with
    /// `strict`, exactly this match and priority.
    DelFlows {
        strict: bool,
        matched: String,
    },
    /// A group in `ovs-ofctl add-group` syntax.
    AddGroup {
        group: String,
    },
    /// A group's new kind and buckets (`ovs-ofctl mod-group`).
    ModGroup {
        group: String,
    },
    /// `group_id=N`, `group_id=all` or nothing (every group), and the
    /// rules that send packets to them.
    DelGroups {
        group: String,
    },
    DumpGroups,
    DumpGroupStats {
        group: String,
    },
    /// A meter in `ovs-ofctl add-meter` syntax.
    AddMeter {
        meter: String,
    },
    /// A meter's new flags and bands (`ovs-ofctl mod-meter`).
    ModMeter {
        meter: String,
    },
    /// `meter=N`, `meter=all` or nothing (every meter), and the rules that
    /// send packets through them.
    DelMeters {
        meter: String,
    },
    /// `meter=N`, `meter=all` or nothing.
    DumpMeters {
        meter: String,
    },
    MeterStats {
        meter: String,
    },
    DumpMegaflows,
    MacTable,
    Offload {
        on: bool,
    },
    TnlRoutes,
    TnlNeigh,
    /// A packet in ODP key syntax, or a flow in `ovs-ofctl` match
    /// syntax; `generate`: add the rules its `learn` actions make.
    Trace {
        key: String,
        #[serde(default)]
        generate: bool,
    },
}

/// One megaflow, as `dump-megaflows` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Megaflow {
    pub ufid: Option<String>,
    /// The match in ODP syntax.
    #[serde(rename = "match")]
    pub matched: String,
    pub packets: u64,
    pub bytes: u64,
    /// `never`, or seconds since the last packet (`1.234s`).
    pub used: String,
    /// TCP flags seen.
    pub flags: Option<String>,
    /// Moved into the kernel by the offload (hybrid mode).
    pub offloaded: bool,
    /// The datapath that holds it, in hybrid mode (`kernel`, `userspace`).
    pub dp: Option<String>,
    /// The actions in ODP syntax.
    pub actions: String,
}

/// A packet's way through the tables (`trace`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceReply {
    /// The text `ofproto/trace` users read.
    pub text: String,
    /// The datapath actions and the megaflow, in ODP syntax.
    pub actions: String,
    pub megaflow: String,
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "body", rename_all = "kebab-case")]
pub enum Reply {
    /// `show` and `pmd-stats-show` (which renders the PMDs' part).
    Snapshot {
        snapshot: Box<Snapshot>,
        pmd_stats: bool,
    },
    Done,
    /// The rules with their counters, as `ovs-ofctl dump-flows` prints them.
    Rules(Vec<String>),
    /// Groups, or their counters, as `ovs-ofctl dump-groups` and
    /// `dump-group-stats` print them.
    Groups(Vec<String>),
    /// Meters, or their counters, as `ovs-ofctl dump-meters` and
    /// `meter-stats` print them (a meter may take several lines).
    Meters(Vec<String>),
    Added(usize),
    Deleted(usize),
    Megaflows(Vec<Megaflow>),
    MacTable(Vec<MacEntry>),
    Offload {
        on: bool,
        brought_back: usize,
    },
    Routes(Vec<RouteRow>),
    Neighbours(Vec<NeighbourRow>),
    Trace(TraceReply),
}

/// The commands `odpx ctl` knows, for its error message.
pub const COMMANDS: &str = "show, dump-flows, add-flow, add-flows, del-flows [--strict], add-group, mod-group, del-groups, dump-groups, dump-group-stats, add-meter, mod-meter, del-meter(s), dump-meters, meter-stats, dump-megaflows, pmd-stats-show, pmd-stats-clear, mac-table, offload on|off, tnl-routes, tnl-neigh, trace";

impl Request {
    /// The request `odpx ctl WORDS...` makes (the newlines of `add-flows`
    /// text kept).
    pub fn parse(line: &str) -> Result<Request, String> {
        let line = line.trim();
        let (cmd, arg) = line.split_once(' ').map_or((line, ""), |(c, a)| (c, a.trim()));
        Ok(match cmd {
            "show" => Request::Show,
            "pmd-stats-show" => Request::PmdStatsShow,
            "pmd-stats-clear" => Request::PmdStatsClear,
            "dump-flows" => Request::DumpFlows,
            "add-flow" | "add-flows" if arg.is_empty() => return Err(format!("{cmd}: no rule given")),
            "add-flow" => Request::AddFlow { rule: arg.to_string() },
            "add-flows" => Request::AddFlows { rules: arg.to_string() },
            "del-flows" => match arg.strip_prefix("--strict") {
                Some(rest) => Request::DelFlows {
                    strict: true,
                    matched: rest.trim().to_string(),
                },
                None => Request::DelFlows {
                    strict: false,
                    matched: arg.to_string(),
                },
            },
            "add-group" | "mod-group" if arg.is_empty() => return Err(format!("{cmd}: no group given")),
            "add-group" => Request::AddGroup { group: arg.to_string() },
            "mod-group" => Request::ModGroup { group: arg.to_string() },
            "del-groups" => Request::DelGroups { group: arg.to_string() },
            "dump-groups" => Request::DumpGroups,
            "dump-group-stats" => Request::DumpGroupStats { group: arg.to_string() },
            "add-meter" | "mod-meter" if arg.is_empty() => return Err(format!("{cmd}: no meter given")),
            "add-meter" => Request::AddMeter { meter: arg.to_string() },
            "mod-meter" => Request::ModMeter { meter: arg.to_string() },
            "del-meter" | "del-meters" => Request::DelMeters { meter: arg.to_string() },
            "dump-meters" => Request::DumpMeters { meter: arg.to_string() },
            "meter-stats" => Request::MeterStats { meter: arg.to_string() },
            "dump-megaflows" => Request::DumpMegaflows,
            "mac-table" => Request::MacTable,
            "offload" => match arg {
                "on" | "off" => Request::Offload { on: arg == "on" },
                _ => return Err(format!("offload: say on or off, not '{arg}'")),
            },
            "tnl-routes" => Request::TnlRoutes,
            "tnl-neigh" => Request::TnlNeigh,
            "trace" => {
                let words: Vec<&str> = arg.split_whitespace().collect();
                let generate = words.iter().any(|w| matches!(*w, "-generate" | "--generate"));
                let key = words
                    .into_iter()
                    .filter(|w| !matches!(*w, "-generate" | "--generate"))
                    .collect::<Vec<_>>()
                    .join(" ");
                Request::Trace { key, generate }
            }
            "" => return Err("empty command".into()),
            other => return Err(format!("unknown command '{other}' ({COMMANDS})")),
        })
    }
}
