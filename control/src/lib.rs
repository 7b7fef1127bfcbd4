//! # odpx-control: the slow path and the switch daemon
//!
//! * [`translator`]: the translator thread: upcalls in, megaflows out; MAC
//!   learning for NORMAL; rule changes revalidate only the megaflows they
//!   may affect.
//! * [`mac`]: the MAC learning table with aging.
//! * [`config`]: the daemon's TOML configuration, checked whole first.
//! * [`switch`]: ports + PMDs + translator started from a configuration,
//!   and the control socket (`odpx ctl`).
//!
//! Layering: this crate uses `odpx-classifier` (rules, translation),
//! `odpx-dataplane` (ports, PMDs) and `odpx-offload` (the kernel datapath,
//! for offload and pure-kernel mode, later); nothing below imports it.
#![forbid(unsafe_code)]

pub mod config;
pub mod mac;
pub mod switch;
pub mod translator;
