//! The allocator: giving its free memory back to the system.

/// Gives the memory the allocator holds free back to the system: glibc's
/// `malloc_trim(0)`, which returns the free pages inside its heaps, not
/// only at their tops. Without it, one burst of allocation (a flood's
/// upcalls and installs) stays in RSS for the life of the process.
/// Returns whether any memory was released. It holds each heap's lock
/// while it walks that heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointers and only walks the allocator's
    // own structures under their locks.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other C libraries: nothing to do (musl returns freed pages itself).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}
