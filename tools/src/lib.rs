//! Helpers shared by the `odpx` binary and its tests.
//!
//! The top layer: it may import every crate of the workspace, and nothing
//! imports it. The binary (`src/main.rs`) is the command line: `run` and
//! `ctl` (`daemon.rs`), `demo` (`demo.rs`), the kernel datapath's
//! commands (`odp_cli.rs`, `odp_flags.rs`), traffic tools (`traffic.rs`,
//! with Faucet's pipeline as a workload in `faucet_workload.rs`).

pub mod faucet_workload;
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
