//! # odpx-classifier: the flow model every odpx layer speaks
//!
//! ## What
//! * [`key`]: the flow key/mask model ([`FlowKey`], [`Match`]), laid out as
//!   25 machine words so masked compare and hash are a few word operations.
//! * [`odp`]: the ODP text syntax of `ovs-dpctl dump-flows` for keys, masks
//!   and actions, both directions, plus the action model ([`OdpAction`]).
//! * [`layout`]: where each header of a frame starts, the one walk that key
//!   extraction and the datapath's actions share.
//! * [`extract`]: frame bytes to flow key by the kernel's ODP rules, through
//!   the zero-copy header views of [`wire`].
//! * [`flow_op`]: megaflow identity (UFIDs, holders) and the install,
//!   modify and delete operations the megaflow owner sends to datapaths.
//! * [`counters`]: counters defined once (name, help, unit, kind), from
//!   which every output of the switch is rendered.
//! * [`emc`]: the per-thread exact-match (microflow) cache.
//! * [`megaflow`]: the per-thread megaflow cache, tuple-space search with one
//!   subtable per mask, ranked by hits, batch lookup.
//! * [`rules`]: the OpenFlow-like rule tables of the slow path, with
//!   `ovs-ofctl add-flow` syntax and lookups that report which bits they
//!   consulted, and [`xlate`], which runs a packet through the tables and
//!   yields datapath actions plus the widest correct megaflow.
//!
//! ## Why one crate
//! The fast path, the offload engine and the kernel tools must agree on what a
//! flow is. Keeping the model, its text form and the caches together, free of
//! I/O (time, packets and buffers come from the caller), lets each be tested
//! alone and benchmarked without a kernel.
//!
//! ## Cache tiers, per packet
//! `extract` → [`emc::ExactMatchCache`] (hash of the whole key, two probes)
//! → [`megaflow::MegaflowCache`] (one hash probe per subtable, most-hit
//! subtables first) → miss: the caller hands the key to the translator
//! ([`xlate`]), which installs the resulting megaflow. This crate holds the
//! tiers; who owns which copy on which thread is the dataplane's business
//! (each PMD owns its caches; see that crate).
//!
//! ## What it owns, what it must not import
//! It owns the model: keys, matches, actions, rules, caches as data
//! structures, and the definitions of counters. It imports no other odpx
//! crate, and does no I/O: no threads, sockets, files, or clock readings
//! (time, packets and buffers come from the caller). Every other crate
//! builds on it.

#![forbid(unsafe_code)]

pub mod counters;
pub mod emc;
pub mod extract;
pub mod flow_op;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod key;
pub mod layout;
pub mod megaflow;
pub mod odp;
pub mod rules;
pub mod text;
pub mod wire;
pub mod xlate;

pub use key::{FlowKey, Match};
pub use odp::{OdpAction, OdpKey};
