#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| odpx_classifier::fuzz_targets::odp_text(data));
