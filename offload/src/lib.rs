//! # odpx-offload: the Linux Open vSwitch kernel datapath (ODP), from Rust
//!
//! ## What
//! * [`client`]: a generic-netlink client for the four ODP families:
//!   datapaths (create with per-CPU upcall dispatch when the kernel has it,
//!   stats, megaflow stats, masks cache size), vports (netdev, internal,
//!   vxlan, geneve, gre; stats; upcall pids), flows (new/set/del/get/dump
//!   with masks, UFIDs and the OMIT flags, stats, flush; batched puts and
//!   deletes), packets (execute), and mixed batches of those.
//! * [`meters`]: the datapath's meters (`ovs_meter`): set, delete, read.
//! * [`replies`]: what the kernel reports (datapaths, vports, flows),
//!   decoded from its replies, and a flow's `ovs-dpctl` text.
//! * [`channel`]: the netlink socket under it: framing, batched
//!   transactions, kernel errors and the kernel's log of its reasons.
//! * [`upcall`]: upcall listeners ([`upcall::UpcallListener`]).
//! * [`kernel`]: the kernel datapath as odpx's datapath (pure-kernel
//!   mode): setup with adoption of what a previous run left, upcall handler
//!   threads, the owner's flow operations in batches, terse dumps.
//! * [`policy`]: hybrid mode's offload policy: which userspace megaflows
//!   are hot and stable enough to move into the kernel, and whether the
//!   kernel can run their actions.
//! * [`keys`] and [`actions`]: the codec between netlink attributes and the
//!   flow model of `odpx-classifier` (the same model the ODP text syntax
//!   prints), following the kernel's flow-key compatibility rules.
//! * [`nla`]: the nested-attribute reader/writer under both.
//! * [`rtnl`]: the kernel's interfaces, addresses, routes and neighbours
//!   over rtnetlink (dumps, changes, neighbour resolution): the underlay a
//!   VXLAN gateway routes its tunnels with.
//! * [`error`]: errors that carry the kernel's errno and say what it means
//!   for the operation (no such datapath, exists, which attribute kind was
//!   refused, not supported by this kernel).
//!
//! ## What it owns, what it must not import
//! It owns every netlink socket of odpx (generic netlink to the ODP
//! families, rtnetlink, ethtool netlink) and the threads that read them
//! (upcall handlers, the dump thread). It imports `odpx-classifier` only:
//! never `odpx-dataplane` nor `odpx-control`, which drive it.
//!
//! ## Why this shape
//! The offload engine (hot megaflows pushed into the kernel) and pure-kernel
//! mode (kernel misses upcalled to the translator) both need exactly this:
//! encode a megaflow as key + mask + actions, install it in batches, read
//! stats back, and delete it by the key the kernel holds. The CLI (`odpx
//! datapath|vport|flow`) is a thin layer over the same calls, so what the
//! CLI shows is what the engine sees.
//!
//! ## Invariants
//! * A decoded key is the canonical model: decoding what the kernel dumps
//!   gives the same model as parsing the line `ovs-dpctl dump-flows` prints
//!   for that flow (tested in the VM against Debian's `ovs-dpctl`).
//! * `decode(encode(m)) == m` for every canonical match (property-tested),
//!   and attributes odpx does not model survive both directions unchanged.
//! * Kernel-provided keys are kept as bytes ([`client::Flow::key_raw`]) so
//!   that flows are modified and deleted with exactly the key the kernel
//!   holds.
//!
//! ## Threads
//! [`client::OdpClient`] owns one netlink socket and is driven by one thread
//! (`&mut self`); each [`upcall::UpcallListener`] owns another. The codecs
//! are pure functions.
#![forbid(unsafe_code)]

pub mod actions;
pub mod channel;
pub mod client;
pub mod error;
pub mod ethtool;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod kernel;
pub mod keys;
pub mod meters;
pub mod nla;
pub mod policy;
pub mod replies;
pub mod rtnl;
pub mod uapi;
pub mod upcall;

pub use client::{Datapath, Flow, FlowId, FlowPut, OdpClient, PutMode, Vport, VportId, VportSpec, VportType};
pub use error::{DecodeError, EncodeError, OdpError};
pub use upcall::{Upcall, UpcallListener};
