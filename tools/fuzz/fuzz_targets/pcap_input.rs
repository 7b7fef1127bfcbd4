#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| odpx_tools::fuzz_targets::pcap_input(data));
