//! Giving freed memory back to the system.
//!
//! # Why
//! The allocator keeps what it freed for the next allocation, and glibc
//! gives back only what is free at the top of a heap. One burst (a
//! flood's upcalls queued and installs sent, a revalidation of every
//! megaflow) then leaves RSS at its peak for the life of the process,
//! though the memory is free: the 10-minute soak saw such steps of 30-46
//! MiB that never came back. Open vSwitch's family does the same as here
//! (OVN's `memory-trim`, ovsdb-server's trim after compaction).
//!
//! # What
//! [`MemoryTrim::check`], called by the daemon's main thread a few times a
//! second, releases the free memory every [`TRIM_EVERY`]
//! ([`odpx_dataplane::sys::mem::release_free_memory`]) and says how much RSS
//! went and how long it took. The allocator holds each heap's lock while
//! it walks that heap, so a PMD that allocates meanwhile (an upcall's
//! copy of its packet) waits: a few milliseconds, against the 27 ms a
//! socket's 4,096 fill frames last at 150 kpps.

use std::time::{Duration, Instant};

/// How often free memory is given back.
pub const TRIM_EVERY: Duration = Duration::from_secs(30);

/// What one trim did.
#[derive(Clone, Copy, Debug)]
pub struct Trimmed {
    /// RSS before and after, in bytes.
    pub rss_before: u64,
    pub rss_after: u64,
    pub took: Duration,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct MemoryTrim {
    last: Option<Instant>,
}

impl MemoryTrim {
    /// Trims if [`TRIM_EVERY`] passed since the last trim (or since the
    /// first call).
    pub fn check(&mut self, now: Instant) -> Option<Trimmed> {
        let last = *self.last.get_or_insert(now);
        if now.duration_since(last) < TRIM_EVERY {
            return None;
        }
        self.last = Some(now);
        Some(trim())
    }
}

/// Gives the free memory back now.
pub fn trim() -> Trimmed {
    let rss_before = rss_bytes().unwrap_or(0);
    let t0 = Instant::now();
    odpx_dataplane::sys::mem::release_free_memory();
    let took = t0.elapsed();
    Trimmed {
        rss_before,
        rss_after: rss_bytes().unwrap_or(0),
        took,
    }
}

/// This process's resident set, from `/proc/self/status` (`VmRSS`).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_is_due_every_period_from_the_first_check() {
        let mut t = MemoryTrim::default();
        let t0 = Instant::now();
        assert!(t.check(t0).is_none());
        assert!(t.check(t0 + TRIM_EVERY / 2).is_none());
        assert!(t.check(t0 + TRIM_EVERY).is_some());
        assert!(t.check(t0 + TRIM_EVERY + TRIM_EVERY / 2).is_none());
        assert!(t.check(t0 + 2 * TRIM_EVERY).is_some());
    }
}
