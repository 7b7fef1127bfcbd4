//! The control socket: `odpx ctl`'s protocol, and a server no client can
//! stall.
//!
//! # Protocol
//! One request per connection: one line of JSON, a [`Request`]. The
//! answer is one JSON value, `{"ok": REPLY}` or `{"error": "REASON"}`;
//! then the server closes the connection. Requests and replies are typed
//! ([`crate::api`]); text is made from a reply by the client, for people.
//! [`request`] is the client side.
//!
//! # Clients that misbehave
//! The switch never waits for a client, and no client waits for another:
//! * the listener thread only accepts; each connection gets a thread of
//!   its own, at most [`MAX_CLIENTS`] at once. More wait in the
//!   listener's backlog for a free one (a burst of clients is served in
//!   turn), and the kernel refuses connections beyond the backlog;
//! * the request must arrive whole within [`REQUEST_TIME`] and fit in
//!   [`MAX_REQUEST`] bytes. A client that connects and sends nothing, or
//!   trickles, is cut off at the deadline; one that sends a gigabyte is
//!   cut off at the limit (told why, if it listens), having cost the
//!   server one buffer of that size;
//! * the answer must be taken within [`REPLY_TIME`]: a client that never
//!   reads loses its answer, not the server's time;
//! * a connection holds the switch (an `Arc`) only while its command
//!   runs, so a stalled client never delays the daemon's stop.
//!
//! # The socket file
//! Only root may talk to the switch: the socket is bound under a
//! temporary name, made mode 0600, then renamed into place, so it never
//! exists with wider permissions. A symbolic link or anything other than
//! a socket at the path is refused, never followed or removed. A socket
//! that a live odpx answers on is refused too ("another odpx is running
//! there"): the new daemon does not steal it. A socket nobody answers on
//! (left by a crash) is replaced.

use crate::api::{Megaflow, Reply, Request, TraceReply};
use crate::config::DatapathKind;
use crate::core::groups::GroupOp;
use crate::core::meters::MeterOp;
use crate::core::Change;
use crate::owner::{Answer, Query};
use crate::render;
use crate::switch::Switch;
use odpx_classifier::flow_op::Ufid;
use odpx_classifier::odp::{self, OdpKey};
use odpx_classifier::rules::group::ALL_GROUPS;
use odpx_classifier::rules::ofctl;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections served at once.
pub const MAX_CLIENTS: usize = 16;
/// The longest request line (an `add-flows` of about 200,000 rules).
pub const MAX_REQUEST: usize = 16 << 20;
/// Time for the whole request to arrive.
pub const REQUEST_TIME: Duration = Duration::from_secs(5);
/// Time for the client to take the whole answer.
pub const REPLY_TIME: Duration = Duration::from_secs(10);

/// The answer on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Answered {
    Ok(Reply),
    Error(String),
}

/// Carries out one request on the switch.
pub fn handle(sw: &Switch, r: &Request) -> Result<Reply, String> {
    match r {
        Request::Show => Ok(Reply::Snapshot {
            snapshot: Box::new(sw.snapshot()),
            pmd_stats: false,
        }),
        Request::PmdStatsShow => Ok(Reply::Snapshot {
            snapshot: Box::new(sw.snapshot()),
            pmd_stats: true,
        }),
        Request::PmdStatsClear => {
            sw.clear_pmd_stats();
            Ok(Reply::Done)
        }
        Request::DumpFlows => {
            // Counters with every packet carried so far, as OpenFlow's
            // FLOW stats give them; a datapath that does not answer in
            // time leaves them as its last sweep made them.
            if let Err(e) = sw.change(Change::Refresh) {
                tracing::debug!("dump-flows: statistics not refreshed: {e}");
            }
            match sw.query(Query::Rules) {
                Answer::Rules(rules) => {
                    let now = std::time::Instant::now();
                    Ok(Reply::Rules(
                        rules
                            .iter()
                            .map(|(r, s)| {
                                ofctl::format_flow(r, s.packets, s.bytes, now.saturating_duration_since(s.added))
                            })
                            .collect(),
                    ))
                }
                _ => Err("no rules in the answer".into()),
            }
        }
        Request::AddFlow { rule } => {
            let r = ofctl::parse_rule(rule).map_err(|e| format!("{e}; no rule added"))?;
            sw.change(Change::AddRules(vec![r])).map(|_| Reply::Done)
        }
        Request::AddFlows { rules } => {
            let rs = ofctl::parse_rules(rules).map_err(|e| format!("line {}: {}; no rules added", e.line, e.err))?;
            sw.change(Change::AddRules(rs)).map(Reply::Added)
        }
        Request::DelFlows { strict, matched } => {
            // `--strict`: exactly this match and priority (default 32768),
            // as ovs-ofctl.
            let m = if matched.is_empty() {
                "actions=drop".to_string()
            } else {
                format!("{matched},actions=drop")
            };
            let r = ofctl::parse_rule(&m).map_err(|e| e.to_string())?;
            let table = matched.contains("table=").then_some(r.table);
            sw.change(Change::DelRules {
                table,
                matched: Box::new(r.matched),
                strict: strict.then_some(r.priority),
            })
            .map(Reply::Deleted)
        }
        Request::AddGroup { .. }
        | Request::ModGroup { .. }
        | Request::DelGroups { .. }
        | Request::DumpGroups
        | Request::DumpGroupStats { .. } => groups(sw, r),
        Request::AddMeter { .. }
        | Request::ModMeter { .. }
        | Request::DelMeters { .. }
        | Request::DumpMeters { .. }
        | Request::MeterStats { .. } => meters(sw, r),
        Request::DumpMegaflows => megaflows(sw).map(Reply::Megaflows),
        Request::MacTable => match sw.query(Query::MacTable) {
            Answer::MacTable(m) => Ok(Reply::MacTable(m)),
            _ => Err("no MAC table in the answer".into()),
        },
        Request::Offload { on } => sw
            .change(Change::SetOffload(*on))
            .map(|brought_back| Reply::Offload { on: *on, brought_back }),
        Request::TnlRoutes => match sw.query(Query::TunnelRoutes) {
            Answer::Routes(r) => Ok(Reply::Routes(r)),
            _ => Err("no routes in the answer".into()),
        },
        Request::TnlNeigh => match sw.query(Query::TunnelNeighbours) {
            Answer::Neighbours(n) => Ok(Reply::Neighbours(n)),
            _ => Err("no neighbours in the answer".into()),
        },
        Request::Trace { key, generate } => {
            let packet = crate::core::translate::packet_of(key)?;
            let Answer::Trace(t) = sw.query(Query::Trace(Box::new(packet))) else {
                return Err("no trace in the answer".into());
            };
            if *generate && !t.learned.is_empty() {
                // In force in every datapath when the trace returns.
                sw.change(Change::Learn(t.learned.clone()))?;
            }
            Ok(Reply::Trace(TraceReply {
                text: t.to_string(),
                actions: odp::actions::format_actions(&t.actions),
                megaflow: odp::format_match(&t.megaflow),
            }))
        }
    }
}

/// The group verbs, as `ovs-ofctl`'s: a change is in force in every
/// datapath when it returns; a dump shows counters with every packet
/// carried so far.
fn groups(sw: &Switch, r: &Request) -> Result<Reply, String> {
    let change = |op: GroupOp| sw.change(Change::Group(op)).map(|_| Reply::Done);
    let id = |text: &str| ofctl::parse_group_id(text).map_err(|e| format!("{e}"));
    let dump = |id: u32| {
        if let Err(e) = sw.change(Change::Refresh) {
            tracing::debug!("group statistics not refreshed: {e}");
        }
        match sw.query(Query::Groups(id)) {
            Answer::Groups(g) => Ok(g),
            _ => Err("no groups in the answer".to_string()),
        }
    };
    match r {
        Request::AddGroup { group } => change(GroupOp::Add(
            ofctl::parse_group(group).map_err(|e| format!("{e}; no group added"))?,
        )),
        Request::ModGroup { group } => change(GroupOp::Modify(
            ofctl::parse_group(group).map_err(|e| format!("{e}; no group changed"))?,
        )),
        Request::DelGroups { group } => change(GroupOp::Delete(id(group)?)),
        Request::DumpGroups => Ok(Reply::Groups(
            dump(ALL_GROUPS)?.iter().map(|(g, ..)| ofctl::format_group(g)).collect(),
        )),
        Request::DumpGroupStats { group } => {
            let now = Instant::now();
            Ok(Reply::Groups(
                dump(id(group)?)?
                    .iter()
                    .map(|(g, s, refs)| {
                        let age = now.saturating_duration_since(s.added);
                        ofctl::format_group_stats(g.id, age, *refs, s.packets, s.bytes, &s.buckets)
                    })
                    .collect(),
            ))
        }
        _ => Err("not a group request".into()),
    }
}

/// The meter verbs, as `ovs-ofctl`'s (see [`groups`]).
fn meters(sw: &Switch, r: &Request) -> Result<Reply, String> {
    let change = |op: MeterOp| sw.change(Change::Meter(op)).map(|_| Reply::Done);
    let id = |text: &str| ofctl::parse_meter_id(text).map_err(|e| format!("{e}"));
    let dump = |id: u32| {
        if let Err(e) = sw.change(Change::Refresh) {
            tracing::debug!("meter statistics not refreshed: {e}");
        }
        sw.owner().read(|c| c.meters(id))
    };
    match r {
        Request::AddMeter { meter } => change(MeterOp::Add(
            ofctl::parse_meter(meter).map_err(|e| format!("{e}; no meter added"))?,
        )),
        Request::ModMeter { meter } => change(MeterOp::Modify(
            ofctl::parse_meter(meter).map_err(|e| format!("{e}; no meter changed"))?,
        )),
        Request::DelMeters { meter } => change(MeterOp::Delete(id(meter)?)),
        Request::DumpMeters { meter } => Ok(Reply::Meters(
            dump(id(meter)?).iter().map(|(m, ..)| ofctl::format_meter(m)).collect(),
        )),
        Request::MeterStats { meter } => {
            let now = Instant::now();
            Ok(Reply::Meters(
                dump(id(meter)?)
                    .iter()
                    .map(|(m, s, c)| ofctl::format_meter_stats(m.id, now.saturating_duration_since(s.added), c))
                    .collect(),
            ))
        }
        _ => Err("not a meter request".into()),
    }
}

/// Every megaflow: the PMDs' and, in kernel and hybrid modes, the
/// kernel's (with what a PMD carried before the move, marked as Open
/// vSwitch marks its datapath layers).
fn megaflows(sw: &Switch) -> Result<Vec<Megaflow>, String> {
    let mut out = Vec::new();
    let hybrid = sw.mode == DatapathKind::Hybrid;
    if let Some(k) = &sw.kernel {
        let marks: HashMap<Ufid, (bool, crate::core::registry::Usage)> = match sw.query(Query::KernelMarks) {
            Answer::KernelMarks(m) => m.into_iter().map(|(u, o, c)| (u, (o, c))).collect(),
            _ => HashMap::new(),
        };
        for f in k.flows()? {
            let key = f.key().map_err(|e| e.to_string())?;
            let actions = f.actions().map_err(|e| e.to_string())?.unwrap_or_default();
            let mark = f.ufid.as_deref().and_then(Ufid::from_bytes).and_then(|u| marks.get(&u));
            let (offloaded, carried) = match mark {
                Some((true, c)) => (true, *c),
                _ => (false, Default::default()),
            };
            out.push(Megaflow {
                ufid: None,
                matched: key.map_or(String::new(), |k| k.to_string()),
                packets: f.packets + carried.packets,
                bytes: f.bytes + carried.bytes,
                used: odpx_offload::replies::format_used(f.used_ms),
                flags: (f.tcp_flags != 0).then(|| odpx_offload::replies::tcp_flag_letters(f.tcp_flags)),
                offloaded,
                dp: hybrid.then(|| "kernel".to_string()),
                actions: odp::actions::format_actions(&actions),
            });
        }
    }
    for (_, flows) in sw.pmd_megaflows()? {
        for f in flows {
            out.push(Megaflow {
                ufid: None,
                matched: OdpKey::from_match(f.matched).to_string(),
                packets: f.stats.packets,
                bytes: f.stats.bytes,
                used: f.idle.map_or("never".into(), |d| format!("{:.3}s", d.as_secs_f64())),
                flags: (f.stats.tcp_flags != 0).then(|| odp::fmt_tcp_flags(f.stats.tcp_flags)),
                offloaded: false,
                dp: hybrid.then(|| "userspace".to_string()),
                actions: odp::actions::format_actions(&f.actions),
            });
        }
    }
    Ok(out)
}

/// Runs one `odpx ctl` command line on the switch, in-process, and
/// answers as the command line prints it: `ok` and the text (or, after
/// `--json`, the data), or `error: ` and the reason.
pub fn command(sw: &Switch, line: &str) -> String {
    let line = line.trim();
    let (json, words) = match line
        .strip_prefix("--json")
        .filter(|r| r.is_empty() || r.starts_with(' '))
    {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let answer = Request::parse(words).and_then(|r| handle(sw, &r)).and_then(|reply| {
        if json {
            render::json::reply(&reply)
        } else {
            Ok(render::text::reply(&reply))
        }
    });
    match answer {
        Ok(b) => format!("ok\n{b}"),
        Err(e) => format!("error: {e}\n"),
    }
}

/// Serves the control socket at `path` until the switch is dropped (see
/// the module documentation). Fails if the path cannot be a socket of
/// ours: a symbolic link, a file that is not a socket, or a socket that
/// another odpx answers on.
pub fn serve(sw: Arc<Switch>, path: &Path) -> Result<std::thread::JoinHandle<()>, String> {
    let listener = bind(path)?;
    let weak = Arc::downgrade(&sw);
    drop(sw);
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("ctl".into())
        .spawn(move || {
            loop {
                // A free slot first: until then, new clients wait in the
                // listener's backlog (and beyond it are refused by the
                // kernel), so a burst is served in turn, not turned away.
                while active.load(Ordering::Acquire) >= MAX_CLIENTS {
                    std::thread::sleep(Duration::from_millis(2));
                }
                let Ok((mut c, _)) = listener.accept() else { continue };
                if weak.strong_count() == 0 {
                    return;
                }
                active.fetch_add(1, Ordering::AcqRel);
                let (weak, mine) = (weak.clone(), active.clone());
                let spawned = std::thread::Builder::new().name("ctl-client".into()).spawn(move || {
                    let answer = match read_request(&mut c) {
                        Ok(line) => match weak.upgrade() {
                            Some(sw) => serde_json::from_str::<Request>(&line)
                                .map_err(|e| format!("not a request: {e}"))
                                .and_then(|r| handle(&sw, &r)),
                            None => Err("the switch is stopping".to_string()),
                        },
                        Err(e) => Err(e),
                    };
                    let answered = match answer {
                        Ok(r) => Answered::Ok(r),
                        Err(e) => Answered::Error(e),
                    };
                    let mut text = serde_json::to_string(&answered)
                        .unwrap_or_else(|e| format!("{{\"error\":\"the reply did not serialize: {e}\"}}"));
                    text.push('\n');
                    reply(&mut c, &text);
                    mine.fetch_sub(1, Ordering::AcqRel);
                });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })
        .map_err(|e| format!("ctl thread: {e}"))
}

/// Binds a Unix socket at `path`, mode 0600 from the start (root only):
/// refuses a symbolic link, a file, or a socket another process answers
/// on (the control socket, OpenFlow's `punix:`).
pub(crate) fn bind(path: &Path) -> Result<UnixListener, String> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(format!(
                "{shown}: is a symbolic link; refusing to use it as the control socket"
            ))
        }
        Ok(m) if !m.file_type().is_socket() => {
            return Err(format!("{shown}: exists and is not a socket; refusing to replace it"))
        }
        Ok(_) if UnixStream::connect(path).is_ok() => {
            return Err(format!(
                "{shown}: another odpx is running there (its control socket answers)"
            ))
        }
        // A socket nobody answers on: what a crashed run leaves.
        Ok(_) | Err(_) => {}
    }
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().map_or("odpx.sock".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{shown}: {e}"));
    }
    Ok(listener)
}

/// Reads one request line within [`REQUEST_TIME`] and [`MAX_REQUEST`].
/// The end of the stream ends a request too (a client that shuts down its
/// side instead of sending a newline).
fn read_request(c: &mut UnixStream) -> Result<String, String> {
    let deadline = Instant::now() + REQUEST_TIME;
    let mut line = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no whole request within {} s", REQUEST_TIME.as_secs()));
        }
        c.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match c.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                let got = &chunk[..n];
                let end = got.iter().position(|&b| b == b'\n');
                line.extend_from_slice(&got[..end.unwrap_or(n)]);
                if line.len() > MAX_REQUEST {
                    return Err(format!("request longer than {} MiB", MAX_REQUEST >> 20));
                }
                if end.is_some() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!("no whole request within {} s", REQUEST_TIME.as_secs()))
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    String::from_utf8(line).map_err(|_| "the request is not UTF-8 text".to_string())
}

/// Writes `answer` within [`REPLY_TIME`], or gives up on the client.
fn reply(c: &mut UnixStream, answer: &str) {
    let deadline = Instant::now() + REPLY_TIME;
    let mut rest = answer.as_bytes();
    while !rest.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || c.set_write_timeout(Some(left)).is_err() {
            return;
        }
        match c.write(rest) {
            Ok(0) => return,
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Sends one request to a running switch and returns its reply.
pub fn request(path: &Path, r: &Request) -> Result<Reply, String> {
    let mut c = UnixStream::connect(path).map_err(|e| format!("{}: {e} (is odpx running?)", path.display()))?;
    let mut line = serde_json::to_string(r).map_err(|e| e.to_string())?;
    line.push('\n');
    c.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
    let mut s = String::new();
    c.read_to_string(&mut s).map_err(|e| e.to_string())?;
    match serde_json::from_str::<Answered>(&s) {
        Ok(Answered::Ok(reply)) => Ok(reply),
        Ok(Answered::Error(e)) => Err(e),
        Err(e) => Err(format!("an answer that is not odpx's ({e}): {}", s.trim())),
    }
}

/// `odpx ctl [--json] WORDS...` as one line (`--json show`): the reply as
/// text, or as JSON.
pub fn request_line(path: &Path, line: &str) -> Result<String, String> {
    match line.trim().strip_prefix("--json") {
        Some(rest) => request_text(path, rest, true),
        None => request_text(path, line, false),
    }
}

/// `odpx ctl [--json] WORDS...` against a running switch: the reply as
/// text, or as JSON.
pub fn request_text(path: &Path, line: &str, json: bool) -> Result<String, String> {
    let reply = request(path, &Request::parse(line)?)?;
    if json {
        render::json::reply(&reply)
    } else {
        Ok(render::text::reply(&reply))
    }
}
