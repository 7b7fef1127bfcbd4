//! # odpx-dataplane: AF_XDP ports, PMD threads and action execution
//!
//! (Being built for issue 4; see each module's essay.)
//!
//! * [`xsk`]: AF_XDP sockets, UMEM, rings and the XDP redirect program on
//!   raw syscalls: the only module of odpx with `unsafe` code, every block
//!   with a `// SAFETY:` line.
//! * [`exec`]: running datapath actions on a packet (set fields with
//!   incremental checksums, VLAN push/pop, outputs, clone).
//! * [`port`]: AF_XDP and in-memory ports behind one type, batch receive
//!   and staged, once-per-batch transmit.
//! * [`pmd`]: the polling threads: exact-match cache, megaflow cache,
//!   upcalls to the slow path, actions, counters.
#![deny(unsafe_code)]

pub mod exec;
pub mod pmd;
pub mod port;
#[allow(unsafe_code)]
pub mod xsk;
