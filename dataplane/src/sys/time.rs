//! The CPU's time-stamp counter: one instruction where `clock_gettime`
//! costs a call, for the PMDs' cycle accounting and their clock.

/// The CPU's time-stamp counter (cycles at the nominal frequency), for
/// "cycles per packet" as OVS reports it.
#[inline(always)]
pub fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC has no preconditions and touches no memory.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos() as u64)
    }
}
