//! Bodies of the fuzz targets (`control/fuzz`), kept here so the stable
//! test suite replays the checked-in corpus through exactly the same checks
//! (`control/tests/fuzz_corpus.rs`). Each panics only when an invariant
//! breaks, never on bad input.

use crate::config::Config;
use crate::ctl::command;
use crate::openflow::codec::message::{decode, encode, frame_len, Message, MAX_LEN};
use crate::openflow::convert;
use crate::switch::Switch;
use odpx_dataplane::port::Port;
use std::path::Path;
use std::sync::OnceLock;

/// Any bytes as the daemon's configuration file: a configuration or an
/// error message, never a panic; one accepted is accepted again.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text, Path::new("/nonexistent")) {
        Ok(_) => assert!(Config::parse(text, Path::new("/nonexistent")).is_ok()),
        Err(e) => assert!(!e.trim().is_empty(), "an error says what is wrong"),
    }
}

/// The switch the control-request target talks to: two in-memory ports,
/// one PMD that sleeps when idle (the fuzzer needs the CPU).
fn fuzzed_switch() -> &'static Switch {
    static SWITCH: OnceLock<Switch> = OnceLock::new();
    SWITCH.get_or_init(|| {
        let cfg = Config::parse(
            "[switch]\nrules_inline = [\"priority=0,actions=NORMAL\"]\n[[port]]\nname = \"p1\"\ntype = \"memory\"\n[[port]]\nname = \"p2\"\ntype = \"memory\"\n[pmd]\ncores = [0]\nidle_sleep_us = 1000\n",
            Path::new("/"),
        )
        .expect("the fuzzed switch's configuration");
        let ports = (1..=2).map(|i| Port::memory(i, &format!("p{i}"), false)).collect();
        Switch::start_with_ports(&cfg, ports).expect("the fuzzed switch starts")
    })
}

/// Any bytes as a control-socket request line (after the socket's own
/// framing: UTF-8, `\n` escapes): the answer is `ok` or an error, never a
/// panic, and the switch answers `show` afterwards.
pub fn ctl_request(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else { return };
    let sw = fuzzed_switch();
    let answer = command(sw, &line.replace("\\n", "\n"));
    assert!(
        answer.starts_with("ok\n") || (answer.starts_with("error: ") && answer.ends_with('\n')),
        "{answer:?}"
    );
    assert!(command(sw, "show").starts_with("ok\n"));
}

/// Any bytes as an OpenFlow stream: every framed message decodes or names
/// its error (never a panic); one that decodes encodes to bytes that
/// decode to the same message; a FLOW_MOD converts to a rule op or an
/// error. A stream that cannot be framed stops there (the connection
/// closes).
pub fn openflow_message(data: &[u8]) {
    let mut at = 0;
    while let Ok(Some(n)) = frame_len(&data[at..]) {
        if data.len() - at < n {
            break;
        }
        let raw = &data[at..at + n];
        at += n;
        let Ok((h, m)) = decode(raw) else { continue };
        let again = encode(h.xid, &m);
        // Re-encoding pads what a peer left unpadded; past 64 KiB it
        // cannot be one message any more.
        if again.len() <= MAX_LEN {
            assert_eq!(decode(&again).map(|(_, m)| m).as_ref(), Ok(&m), "{m:?}");
        }
        match &m {
            Message::FlowMod(fm) => {
                let _ = convert::flow_mod(fm);
            }
            Message::MultipartRequest {
                body: crate::openflow::codec::multipart::MultipartRequest::Flow(req),
                ..
            } => {
                let _ = convert::flow_selector(req);
            }
            _ => {}
        }
    }
}
