//! Replays the checked-in fuzz corpus (`classifier/fuzz/corpus`) through the
//! fuzz target bodies on stable Rust, so every seed and every crash input
//! added there stays a regression test.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{} fails its invariants", path.display());
        n += 1;
    }
    assert!(n > 0, "empty corpus for {target}");
}

#[test]
fn extract_frame_corpus() {
    replay("extract_frame", odpx_classifier::fuzz_targets::extract_frame);
}

#[test]
fn odp_text_corpus() {
    replay("odp_text", odpx_classifier::fuzz_targets::odp_text);
}

#[test]
fn rule_text_corpus() {
    replay("rule_text", odpx_classifier::fuzz_targets::rule_text);
}
