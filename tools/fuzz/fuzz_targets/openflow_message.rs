#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| odpx_control::fuzz_targets::openflow_message(data));
