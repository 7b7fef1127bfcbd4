//! Bodies of the fuzz targets (`tools/fuzz`), kept here so the stable test
//! suite replays the checked-in corpus through exactly the same checks
//! (`tools/tests/fuzz_corpus.rs`). Each panics only when an invariant
//! breaks, never on bad input.

use crate::pcap;

/// Any bytes as a pcap file (what `odpx parse-pcap` and `packet execute
/// --pcap` read): packets or a reason, never a panic. What is accepted
/// writes back (in the little-endian microsecond form) to a file that reads
/// as the same packets, and every packet has a flow key.
pub fn pcap_input(data: &[u8]) {
    let packets = match pcap::read(data) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let mut out = Vec::new();
    pcap::write_header(&mut out, 65535);
    for p in &packets {
        pcap::write_packet(&mut out, p.ts_sec, p.ts_frac, p.data);
        let _ = odpx_classifier::extract::extract(p.data, 1);
    }
    let back = pcap::read(&out).expect("written pcap reads");
    assert_eq!(back.len(), packets.len());
    for (a, b) in packets.iter().zip(&back) {
        assert_eq!((a.ts_sec, a.ts_frac, a.data), (b.ts_sec, b.ts_frac, b.data));
    }
}
