//! Helpers shared by the `odpx` binary and its tests.

pub mod pcap;
pub mod sandbox;
