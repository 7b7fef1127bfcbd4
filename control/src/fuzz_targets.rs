//! Bodies of the fuzz targets (`control/fuzz`), kept here so the stable
//! test suite replays the checked-in corpus through exactly the same checks
//! (`control/tests/fuzz_corpus.rs`). Each panics only when an invariant
//! breaks, never on bad input.

use crate::config::Config;
use crate::ctl::command;
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
