//! The system calls odpx makes through `libc`: the only `unsafe` code of
//! the project.
//!
//! # What
//! Each room wraps one family of calls in small, safe functions:
//! * [`xsk`]: AF_XDP sockets, their UMEM and their four rings;
//! * [`bpf`]: `bpf(2)`: maps, loading XDP programs, test runs, links;
//! * [`fd`]: interface indexes, the eventfd that wakes a waiting PMD,
//!   `ppoll` on sockets, entering a network namespace;
//! * [`time`]: the CPU's time-stamp counter;
//! * [`mem`]: giving the allocator's free memory back to the system.
//!
//! # Why here
//! No maintained crate covers AF_XDP and `bpf()` without a C toolchain
//! (libbpf, libxdp, clang), and the calls are few. Keeping every one of
//! them in this module makes the rest of the workspace `unsafe`-free:
//! `odpx-dataplane` denies `unsafe_code` everywhere else, and the crates
//! above it forbid it.
//!
//! # Rules every wrapper keeps
//! * Each `unsafe` block has a `// SAFETY:` line saying what it relies on.
//! * Memory shared with the kernel (UMEM frames, rings) is never handed
//!   out by reference beyond the call that owns it: a received frame is
//!   read inside [`xsk::XskSocket::receive`]'s closure and given back to
//!   the kernel when it returns; a transmit frame is written inside
//!   [`xsk::XskSocket::transmit`]'s closure before the kernel sees it.
//!   Safe code cannot reach a frame the kernel owns.
//! * Errors carry the call's name and the OS error ([`last_err`]).
//!
//! # Threads
//! An [`xsk::XskSocket`] is `Send`, not `Sync`: one thread at a time (the
//! PMD that polls it, under its queue lock). The other wrappers hold no
//! state beyond their file descriptors.

pub mod bpf;
pub mod fd;
pub mod mem;
pub mod time;
pub mod xsk;

use std::io;

/// The last OS error, prefixed with what was being done.
pub(crate) fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
