//! `memory::trim` gives back memory freed inside the allocator's heaps,
//! which `free` alone keeps resident (the RSS steps of the soak).

use odpx_control::memory::{rss_bytes, trim};

const MIB: u64 = 1024 * 1024;

#[test]
fn memory_freed_inside_a_heap_goes_back_to_the_system_on_a_trim() {
    let rss = || rss_bytes().expect("VmRSS in /proc/self/status");
    // 64 MiB in 4 KiB blocks (below the size glibc maps on its own), every
    // page written; then all freed but every 64th block, so that no heap's
    // top is free and free() has nothing it could give back by itself.
    let blocks: Vec<Vec<u8>> = (0..16_384).map(|i| vec![i as u8; 4096]).collect();
    let full = rss();
    let kept: Vec<Vec<u8>> = blocks.into_iter().step_by(64).collect();
    let freed = rss();
    assert!(
        freed + 16 * MIB > full,
        "free() alone kept the memory: {} MiB of {} MiB",
        freed / MIB,
        full / MIB
    );
    let t = trim();
    assert!(
        t.rss_after + 32 * MIB < freed,
        "a trim gave it back: {} MiB -> {} MiB ({:?})",
        freed / MIB,
        t.rss_after / MIB,
        t.took
    );
    assert_eq!(kept.len(), 256);
    assert!(kept.iter().enumerate().all(|(i, b)| b[0] == (i * 64) as u8));
}
