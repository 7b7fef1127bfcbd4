#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| odpx_offload::fuzz_targets::netlink_flow(data));
