//! The snapshot and the control replies as JSON (`odpx ctl --json`, and
//! the control socket's wire format): serde, with each counter set
//! written as an object of its definitions' keys
//! ([`crate::snapshot::counter_set`]).

use crate::api::Reply;

/// Pretty JSON of any reply or snapshot, newline-terminated.
pub fn to_text<T: serde::Serialize>(v: &T) -> Result<String, String> {
    let mut s = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    s.push('\n');
    Ok(s)
}

/// A reply's data as JSON (`odpx ctl --json`).
pub fn reply(r: &Reply) -> Result<String, String> {
    match r {
        Reply::Snapshot {
            snapshot,
            pmd_stats: false,
        } => to_text(snapshot),
        Reply::Snapshot {
            snapshot,
            pmd_stats: true,
        } => to_text(&serde_json::json!({
            "pmds": snapshot.pmds,
            "owner": serde_json::to_value(snapshot).map_err(|e| e.to_string())?["owner"],
        })),
        Reply::Done => to_text(&serde_json::json!({})),
        Reply::Rules(r) | Reply::Groups(r) | Reply::Meters(r) => to_text(r),
        Reply::Added(n) => to_text(&serde_json::json!({ "added": n })),
        Reply::Deleted(n) => to_text(&serde_json::json!({ "deleted": n })),
        Reply::Megaflows(f) => to_text(f),
        Reply::MacTable(m) => to_text(m),
        Reply::Offload { on, brought_back } => to_text(&serde_json::json!({ "on": on, "brought_back": brought_back })),
        Reply::Routes(r) => to_text(r),
        Reply::Neighbours(n) => to_text(n),
        Reply::Trace(t) => to_text(t),
    }
}
