//! What a meter costs a PMD per packet: `MeterCell::run` (the shared,
//! lock-free token buckets of `odpx_dataplane::meter`), uncontended, with
//! one band and with two, on a packet that conforms and on one that
//! exceeds. Time advances 1 µs a packet (a million packets a second into
//! a meter of the row's rate).
//!
//! `cargo bench -p odpx-benches --bench meter`; criterion reports time per
//! packet.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use odpx_classifier::rules::ofctl::parse_meter;
use odpx_dataplane::meter::MeterCell;
use std::hint::black_box;
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("meter");
    g.throughput(Throughput::Elements(1));
    for (name, text) in [
        // 10 Mpps: every packet conforms.
        ("one_band_conforming", "meter=1,pktps,band=type=drop,rate=10000000"),
        // 1000 pps: nearly every packet exceeds.
        ("one_band_exceeding", "meter=1,pktps,band=type=drop,rate=1000"),
        (
            "two_bands_remark_then_drop",
            "meter=1,kbps,bands=type=dscp_remark,rate=1000,prec_level=1,type=drop,rate=100000",
        ),
    ] {
        let cell = MeterCell::new(&parse_meter(text).unwrap(), Arc::default());
        let mut now = 1_000_000_000u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                now += 1_000;
                black_box(cell.run(black_box(1000), now))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
