//! # odpx-dataplane: AF_XDP ports, PMD threads and action execution
//!
//! (Being built for issue 4; see each module's essay.)
//!
//! * [`xsk`]: AF_XDP sockets, UMEM, rings and the XDP redirect program on
//!   raw syscalls: the only module of odpx with `unsafe` code, every block
//!   with a `// SAFETY:` line.
//! * [`exec`]: running datapath actions on a packet (set fields with
//!   incremental checksums, VLAN push/pop, outputs, clone).
#![deny(unsafe_code)]

pub mod exec;
#[allow(unsafe_code)]
pub mod xsk;
