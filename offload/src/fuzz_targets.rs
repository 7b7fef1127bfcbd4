//! Body of the netlink fuzz target (`offload/fuzz`), kept here so the
//! stable test suite replays the checked-in corpus through the same checks
//! (`tests/fuzz_corpus.rs`). It panics only when an invariant breaks,
//! never on bad input.

use crate::actions::{decode_actions, encode_actions};
use crate::keys::{decode_match, encode_match};

/// Input: `key_len (u16 le) | key | mask_len (u16 le) | mask | actions`,
/// each as netlink attribute bytes (truncated input is fine). Decoding
/// must not panic; whatever decodes and encodes must decode to the same
/// model again (the codec is a fixed point after one round).
pub fn netlink_flow(data: &[u8]) {
    let take = |d: &mut &[u8]| -> Vec<u8> {
        if d.len() < 2 {
            return std::mem::take(d).to_vec();
        }
        let n = (u16::from_le_bytes([d[0], d[1]]) as usize).min(d.len() - 2);
        let part = d[2..2 + n].to_vec();
        *d = &d[2 + n..];
        part
    };
    let mut d = data;
    let key = take(&mut d);
    let mask = take(&mut d);
    let actions = d.to_vec();
    for m in [Some(mask.as_slice()), None] {
        if let Ok(decoded) = decode_match(&key, m) {
            let _ = decoded.to_string();
            if let Ok(enc) = encode_match(&decoded) {
                let again = decode_match(&enc.key, Some(&enc.mask)).expect("odpx's own encoding decodes");
                assert_eq!(again.to_string(), decoded.to_string());
                assert_eq!(encode_match(&again).expect("re-encodes"), enc);
            }
        }
    }
    if let Ok(a) = decode_actions(&actions) {
        let _ = odpx_classifier::odp::actions::format_actions(&a);
        if let Ok(bytes) = encode_actions(&a) {
            let again = decode_actions(&bytes).expect("odpx's own encoding decodes");
            assert_eq!(again, a);
        }
    }
}
