//! Helpers shared by the `odpx` binary and its tests.

pub mod fuzz_targets;
pub mod pcap;
pub mod sandbox;
pub mod soak;

/// A flag that Ctrl-C and SIGTERM set; long-running commands poll it.
/// (The handler can be installed once per process.)
pub fn stop_flag() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::Relaxed)).map_err(|e| format!("signal handler: {e}"))?;
    Ok(stop)
}
