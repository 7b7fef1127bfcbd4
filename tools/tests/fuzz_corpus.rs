//! Replays the checked-in fuzz corpora (`tools/fuzz/corpus`: the daemon's
//! configuration file, control-socket requests, OpenFlow messages, pcap files) through the
//! fuzz target bodies on stable Rust.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| body(&data));
        assert!(r.is_ok(), "{} fails its invariants", path.display());
        n += 1;
    }
    assert!(n > 0, "empty corpus");
}

#[test]
fn config_toml_corpus() {
    replay("config_toml", odpx_control::fuzz_targets::config_toml);
}

#[test]
fn ctl_request_corpus() {
    replay("ctl_request", odpx_control::fuzz_targets::ctl_request);
}

#[test]
fn openflow_message_corpus() {
    replay("openflow_message", odpx_control::fuzz_targets::openflow_message);
}

#[test]
fn pcap_input_corpus() {
    replay("pcap_input", odpx_tools::fuzz_targets::pcap_input);
}
