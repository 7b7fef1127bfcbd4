//! # odpx-dataplane: AF_XDP ports, PMD threads and action execution
//!
//! ## What
//! The fast path: PMD threads poll AF_XDP (or in-memory) ports in batches
//! of 32, classify through the caches of `odpx-classifier` (exact-match,
//! then megaflow), run the actions and transmit, staged per output port.
//! Misses leave as upcalls over a bounded channel; the slow path
//! (`odpx-control`) answers with megaflows to install.
//!
//! ## What it owns, what it must not import
//! It owns the ports (AF_XDP sockets, their XDP programs, in-memory ports),
//! the PMD threads and everything a PMD holds (its caches, batches,
//! counters, clock), and every system call of odpx ([`sys`]). It imports
//! `odpx-classifier` only: never `odpx-offload` (the kernel datapath is
//! another datapath, not a part of this one) nor `odpx-control` (the slow
//! path talks to it through messages, as data).
//!
//! ## Threads and ownership
//! Each PMD owns its caches and buffers; ports are shared, with one lock
//! per AF_XDP queue taken once per batch; counters are relaxed atomics
//! that control reads. No allocation, lock or syscall per packet besides
//! the transmit kick per batch (upcalls, the slow path, copy the packet).
//!
//! * [`sys`]: the system calls on `libc` (AF_XDP sockets and rings,
//!   `bpf()`, eventfd and `ppoll`, the TSC, the allocator): the only module
//!   of odpx with `unsafe` code, every block with a `// SAFETY:` line.
//! * [`bpf`]: an eBPF assembler (labels, the instructions the programs
//!   use), so that no C toolchain is needed.
//! * [`xdp`]: the XDP programs (AF_XDP redirect, tunnel underlay filter)
//!   and the objects that keep them attached.
//! * [`steer`]: hybrid mode's steering program and tables: packets of
//!   offloaded megaflows to the kernel datapath, the rest to AF_XDP.
//! * [`packet`]: a packet inside a frame buffer, with headroom in front.
//! * [`exec`]: running datapath actions on a packet (set fields with
//!   incremental checksums, VLAN push/pop, outputs, clone).
//! * [`meter`]: OpenFlow meters as the PMDs run them: one lock-free set
//!   of token buckets per meter, shared by every PMD.
//! * [`tunnel`]: VXLAN encapsulation and decapsulation of a packet in
//!   place (the `tnl_push` and `tnl_pop` actions).
//! * [`port`]: AF_XDP and in-memory ports behind one type, batch receive
//!   and staged, once-per-batch transmit.
//! * [`pmd`]: the polling threads: exact-match cache, megaflow cache,
//!   upcalls to the slow path, actions, counters.
//! * [`workload`]: synthetic flows, frames and rule sets from fixed seeds,
//!   for the traffic generator and the benchmarks.
#![deny(unsafe_code)]

pub mod bpf;
pub mod emc_policy;
pub mod exec;
pub mod meter;
pub mod packet;
pub mod pmd;
pub mod port;
pub mod steer;
#[allow(unsafe_code)]
pub mod sys;
pub mod tunnel;
pub mod upcalls;
pub mod workload;
pub mod xdp;
