//! Replays the checked-in netlink fuzz corpus (`offload/fuzz/corpus`)
//! through the fuzz target body on stable Rust.

use std::path::Path;

#[test]
fn netlink_flow_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/netlink_flow");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| odpx_offload::fuzz_targets::netlink_flow(&data));
        assert!(r.is_ok(), "{} fails its invariants", path.display());
        n += 1;
    }
    assert!(n > 0, "empty corpus");
}
