//! # odpx-control: the slow path and the switch daemon
//!
//! * [`translator`]: the slow path and megaflow owner: upcalls in,
//!   megaflows out; MAC learning for NORMAL; revalidation of every
//!   megaflow a rule, MAC or port change may affect; sweeps for idle
//!   expiry and statistics; rule changes answered once every datapath
//!   agrees.
//! * [`registry`]: the owner's record of every installed megaflow, by UFID.
//! * [`kernel`]: pure-kernel mode: the owner driving the Linux kernel
//!   datapath (upcall batches, flow operations, sweeps by dump, adoption
//!   of a previous run's flows).
//! * [`hybrid`]: hybrid mode: hot, stable megaflows moved from the PMDs
//!   into the kernel datapath, their packets steered there by XDP, and
//!   brought back when idle, invalidated or when offload is turned off.
//! * [`limits`]: the dynamic flow limit and idle timeout.
//! * [`logs`]: what the daemon logs (one line per state change, per-packet
//!   events summed and rate-limited).
//! * [`links`]: ports whose link goes down or whose interface goes away
//!   are taken out, and put back (opened again) when they return.
//! * [`mac`]: the MAC learning table with aging.
//! * [`reference`]: the reference decision (a fresh translation, no
//!   cache), which the randomized checks hold every path to.
//! * [`tunnels`]: native VXLAN tunnelling in translation (encapsulation in
//!   one pass, decapsulation, next hops that wait for their MAC address,
//!   the underlay filters' VTEP sets).
//! * [`underlay`]: the kernel's interfaces, addresses, routes and
//!   neighbours as the owner keeps them, for tunnel routing.
//! * [`status`]: every counter as data, one snapshot (`ctl --json`);
//!   [`metrics`]: the same in the Prometheus text format, over HTTP.
//! * [`config`]: the daemon's TOML configuration, checked whole first.
//! * [`ctl`]: the control socket (`odpx ctl`): its protocol, and a server
//!   that no client can stall.
//! * [`switch`]: ports + PMDs + translator started from a configuration.
//!
//! Layering: this crate uses `odpx-classifier` (rules, translation),
//! `odpx-dataplane` (ports, PMDs) and `odpx-offload` (the kernel datapath,
//! for pure-kernel and hybrid modes); nothing below imports it.
#![forbid(unsafe_code)]

pub mod config;
pub mod ctl;
pub mod fuzz_targets;
pub mod hybrid;
pub mod kernel;
pub mod limits;
pub mod links;
pub mod logs;
pub mod mac;
pub mod memory;
pub mod metrics;
pub mod reference;
pub mod registry;
pub mod status;
pub mod switch;
pub mod translator;
pub mod tunnels;
pub mod underlay;
