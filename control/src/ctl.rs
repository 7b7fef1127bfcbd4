//! The control socket: `odpx ctl`'s protocol, and a server no client can
//! stall.
//!
//! # Protocol
//! One request per connection: one line of text, a command and its
//! argument (the newlines of `add-flows` text travel as `\n`). The answer
//! is `ok` and a body, or `error: ` and the reason, each on its own line;
//! then the server closes the connection. [`request`] is the client side.
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

use crate::switch::Switch;
use crate::translator::Request;
use odpx_classifier::odp;
use odpx_classifier::rules::ofctl;
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

/// Runs one control command; the reply starts with `ok` or `error: ...`.
pub fn command(sw: &Switch, line: &str) -> String {
    let line = line.trim();
    if let Some(rest) = line
        .strip_prefix("--json")
        .filter(|r| r.is_empty() || r.starts_with(' '))
    {
        return match json_command(sw, rest.trim()) {
            Ok(b) => ok(b),
            Err(e) => format!("error: {e}\n"),
        };
    }
    let (cmd, arg) = line.split_once(' ').map_or((line, ""), |(c, a)| (c, a.trim()));
    let r: Result<String, String> = match cmd {
        "show" => Ok(sw.show()),
        "dump-flows" => sw.ask(Request::DumpRules),
        "add-flow" => ofctl::parse_rule(arg)
            .map_err(|e| format!("{e}; no rule added"))
            .and_then(|r| sw.change(|tx| Request::AddRules(vec![r], tx)).map(|_| String::new())),
        "add-flows" => ofctl::parse_rules(arg)
            .map_err(|e| format!("line {}: {}; no rules added", e.line, e.err))
            .and_then(|rs| {
                sw.change(|tx| Request::AddRules(rs, tx))
                    .map(|n| format!("{n} rules added\n"))
            }),
        "del-flows" => {
            // `--strict`: exactly this match and priority (default 32768),
            // as ovs-ofctl.
            let (strict, arg) = match arg.strip_prefix("--strict") {
                Some(rest) => (true, rest.trim()),
                None => (false, arg),
            };
            let m = if arg.is_empty() { "actions=drop".to_string() } else { format!("{arg},actions=drop") };
            ofctl::parse_rule(&m).map_err(|e| e.to_string()).and_then(|r| {
                let table = arg.contains("table=").then_some(r.table);
                sw.change(|tx| Request::DelRules {
                    table,
                    matched: Box::new(r.matched),
                    strict: strict.then_some(r.priority),
                    reply: tx,
                })
                .map(|n| format!("{n} rules deleted\n"))
            })
        }
        "dump-megaflows" => sw.dump_megaflows(),
        "pmd-stats-show" => Ok(sw.pmd_stats()),
        "pmd-stats-clear" => {
            sw.clear_pmd_stats();
            Ok(String::new())
        }
        "mac-table" => sw.ask(Request::MacTable),
        "offload" => match arg {
            "on" | "off" => sw
                .change(|tx| Request::SetOffload(arg == "on", tx))
                .map(|n| format!("offload {arg}; {n} megaflows brought back from the kernel\n")),
            _ => Err(format!("offload: say on or off, not '{arg}'")),
        },
        "tnl-routes" => sw.ask(Request::TunnelRoutes),
        "tnl-neigh" => sw.ask(Request::TunnelNeighbours),
        "trace" => odp::parse_key(arg)
            .map_err(|e| format!("key: {e}"))
            .and_then(|k| sw.ask(|tx| Request::Trace(Box::new(k.matched.key), tx))),
        "" => Err("empty command".into()),
        other => Err(format!(
            "unknown command '{other}' (show, dump-flows, add-flow, add-flows, del-flows [--strict], dump-megaflows, pmd-stats-show, pmd-stats-clear, mac-table, offload on|off, tnl-routes, tnl-neigh, trace)"
        )),
    };
    match r {
        Ok(b) => ok(b),
        Err(e) => format!("error: {e}\n"),
    }
}

/// `--json COMMAND`: the machine-readable form of `show`,
/// `pmd-stats-show` and `dump-megaflows` (see [`crate::status`]).
fn json_command(sw: &Switch, cmd: &str) -> Result<String, String> {
    let value = match cmd {
        "show" => serde_json::to_value(sw.status()),
        "pmd-stats-show" => {
            let s = sw.status();
            Ok(serde_json::json!({ "pmds": s.pmds, "translator": s.translator }))
        }
        "dump-megaflows" => Ok(serde_json::Value::Array(
            sw.dump_megaflows()?.lines().map(megaflow_json).collect(),
        )),
        other => {
            return Err(format!(
                "no JSON form of '{other}' (show, pmd-stats-show, dump-megaflows)"
            ))
        }
    };
    let mut text = value
        .and_then(|v| serde_json::to_string_pretty(&v))
        .map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// One `dump-megaflows` line as a JSON object: `match` (ODP text), the
/// statistics, the datapath marks (`offloaded`, `dp`) and `actions`.
fn megaflow_json(line: &str) -> serde_json::Value {
    let (head, actions) = line.rsplit_once("actions:").unwrap_or((line, ""));
    let head = head.trim_end().trim_end_matches(',');
    let (ufid, head) = match head.strip_prefix("ufid:") {
        Some(rest) => rest.split_once(", ").map_or((None, rest), |(u, h)| (Some(u), h)),
        None => (None, head),
    };
    let (key, stats) = head.split_once(", packets:").map_or((head, ""), |(k, s)| (k, s));
    let mut o = serde_json::Map::new();
    if let Some(u) = ufid {
        o.insert("ufid".into(), u.into());
    }
    o.insert("match".into(), key.into());
    o.insert("offloaded".into(), false.into());
    for (i, field) in stats.split(", ").enumerate() {
        let (name, value) = if i == 0 {
            ("packets", field)
        } else {
            field.split_once(':').unwrap_or((field, ""))
        };
        let v: serde_json::Value = match value.parse::<u64>() {
            Ok(n) if name == "packets" || name == "bytes" => n.into(),
            _ if name == "offloaded" => (value == "yes").into(),
            _ => value.into(),
        };
        o.insert(name.into(), v);
    }
    o.insert("actions".into(), actions.trim().into());
    serde_json::Value::Object(o)
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
                            Some(sw) => command(&sw, line.replace("\\n", "\n").trim_end_matches('\r')),
                            None => "error: the switch is stopping\n".to_string(),
                        },
                        Err(e) => format!("error: {e}\n"),
                    };
                    reply(&mut c, &answer);
                    mine.fetch_sub(1, Ordering::AcqRel);
                });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })
        .map_err(|e| format!("ctl thread: {e}"))
}

/// Binds the socket at `path`, mode 0600 from the start.
fn bind(path: &Path) -> Result<UnixListener, String> {
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

/// Sends one command to a running switch; Ok(body) or Err(reason).
pub fn request(path: &Path, line: &str) -> Result<String, String> {
    let mut c = UnixStream::connect(path).map_err(|e| format!("{}: {e} (is odpx running?)", path.display()))?;
    c.write_all(format!("{}\n", line.replace('\n', "\\n")).as_bytes())
        .map_err(|e| e.to_string())?;
    let mut s = String::new();
    c.read_to_string(&mut s).map_err(|e| e.to_string())?;
    match s.strip_prefix("ok\n") {
        Some(body) => Ok(body.to_string()),
        None => Err(s.trim_start_matches("error: ").trim_end().to_string()),
    }
}

fn ok(body: String) -> String {
    format!("ok\n{body}")
}
