//! # odpx-control: the owner of every megaflow, and the switch daemon
//!
//! ## Rooms
//! * [`core`]: the owner core, free of I/O. It takes misses, changes,
//!   the datapaths' reports and the time, and decides flow operations
//!   (install, modify, delete, offload, steer, evict) as data. Its state:
//!   rules, MAC table, the registry of megaflows, the flow limit, the
//!   tunnels' view of the underlay, hybrid mode's offload policy.
//! * [`backend`]: one backend per datapath mode (userspace PMDs, the
//!   kernel datapath, hybrid) behind one small interface that carries out
//!   the core's operations.
//! * [`owner`]: the driver: the core behind one lock, the backend behind
//!   another, and the owner thread; netlink is never called under the
//!   core's lock.
//! * [`snapshot`]: the switch's state and counters as one value;
//!   [`render`]: every output made from it (text, JSON, Prometheus).
//! * [`api`]: the control socket's typed requests and replies; [`ctl`]:
//!   the socket, a server no client can stall.
//! * [`config`]: the daemon's TOML configuration, checked whole first.
//! * [`openflow`]: the OpenFlow 1.3 agent (controllers, `ovs-ofctl`), with
//!   its codec as a room of its own.
//! * [`start`] and [`switch`]: ports, PMDs, backend and owner started from
//!   a configuration, and the running switch.
//! * [`links`]: ports whose link goes down or whose interface goes away
//!   are taken out, and put back when they return; [`logs`]: what the
//!   daemon logs; [`memory`]: free memory given back; [`metrics`]: the
//!   Prometheus endpoint; [`reference`]: the reference decision the
//!   randomized checks hold every path to.
//!
//! ## Layering
//! This crate uses `odpx-classifier` (rules, translation, counters),
//! `odpx-dataplane` (ports, PMDs) and `odpx-offload` (the kernel
//! datapath). Nothing below imports it, and it imports nothing above
//! (`odpx-tools`). Inside it, `core` imports no other room of the crate
//! but `config` (the tunnels' settings); the backends import only the
//! core's data types.
#![forbid(unsafe_code)]

pub mod api;
pub mod backend;
pub mod config;
pub mod core;
pub mod ctl;
pub mod fuzz_targets;
pub mod links;
pub mod logs;
pub mod memory;
pub mod metrics;
pub mod openflow;
pub mod openflow_counters;
pub mod owner;
pub mod reference;
pub mod render;
pub mod snapshot;
pub mod start;
pub mod switch;
