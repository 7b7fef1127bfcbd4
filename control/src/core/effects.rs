//! What the owner core asks of the datapaths ([`Op`]), and what they
//! answer ([`Feedback`]): plain data both ways.
//!
//! # Order
//! The core appends operations to its outbox in the order it decides
//! them; whoever carries them out ([`crate::owner`]) does so in that
//! order, one batch at a time, and hands the feedback of a batch back to
//! the core before the next. So an operation never overtakes one decided
//! before it, on any datapath: an install is acknowledged before the
//! modification a later rule change made of it, a steering entry is
//! removed before its kernel flow is deleted, and a reply to a rule change
//! goes out after the operations it caused.

use odpx_classifier::flow_op::{Actions, FlowOp, Holder, Ufid};
use odpx_classifier::key::Match;
use odpx_classifier::rules::meter::Meter;
use odpx_dataplane::meter::MeterReading;
use odpx_dataplane::steer::SteerEntry;
use odpx_offload::client::FlowId;
use std::net::IpAddr;
use std::time::Duration;

/// Who waits for the answer to a change (the driver maps it to a reply
/// channel; the core only passes it along).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// A packet the slow path was handed, in the form its datapath runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// A PMD's miss: received on `in_port`.
    Pmd { pmd: usize, in_port: u32, bytes: Vec<u8> },
    /// A kernel miss: run again with the kernel's own key bytes.
    Kernel { key_raw: Vec<u8>, bytes: Vec<u8> },
}

impl Packet {
    /// The packet's length in bytes.
    pub fn bytes_len(&self) -> usize {
        match self {
            Packet::Pmd { bytes, .. } | Packet::Kernel { bytes, .. } => bytes.len(),
        }
    }

    /// The datapath that missed.
    pub fn holder(&self) -> Holder {
        match self {
            Packet::Pmd { pmd, .. } => Holder::Pmd(*pmd as u32),
            Packet::Kernel { .. } => Holder::Kernel,
        }
    }
}

/// A megaflow on its way into the kernel and, unless it was adopted from a
/// previous run, out of a PMD (hybrid mode's offload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    pub kernel: Ufid,
    /// The PMD's copy, deleted once the kernel's is steered to.
    pub pmd: Option<Ufid>,
    pub entry: SteerEntry,
}

/// A point in the operation stream the core wants to hear about, with
/// what it must do then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The kernel has answered these installs (refusals came before).
    Installed(Vec<Move>),
    /// The steering entries of these moves are in (refusals came before).
    Steered(Vec<Move>),
}

/// What the core asks of the datapaths, in order.
#[derive(Clone, Debug)]
pub enum Op {
    /// Install, modify or delete a megaflow of `holder`.
    Flow { holder: Holder, op: FlowOp },
    /// Answer a miss: install the megaflow (unless `install` is `None`)
    /// and run the packet with `actions` (to a PMD, one message; to the
    /// kernel, a put and an execute in one netlink batch).
    Upcalled {
        install: Option<(Ufid, Box<Match>)>,
        actions: Actions,
        packet: Packet,
    },
    /// Delete kernel flows the owner does not hold (strays, by UFID or key).
    KernelDelete(Vec<FlowId>),
    /// Every PMD answers with a barrier report once it applied everything
    /// sent before (the kernel needs none: its operations are acknowledged
    /// as they are carried out).
    Barrier { token: u64 },
    /// Start a sweep: the PMDs walk their caches, the kernel is dumped.
    Sweep { token: u64, max_idle: Duration },
    /// Steer an offloaded megaflow's packets to the kernel (`on`), or stop.
    Steer {
        on: bool,
        kernel: Ufid,
        pmd: Option<Ufid>,
        entry: SteerEntry,
    },
    /// Ask the kernel to resolve a next hop's MAC address.
    ResolveNeighbour { ifindex: u32, addr: IpAddr },
    /// The underlay filters accept exactly these VTEPs (address, UDP
    /// port), and the underlay ports have these MTUs (port, MTU).
    Underlay {
        vteps: Vec<(IpAddr, u16)>,
        mtus: Vec<(u32, u32)>,
    },
    /// Tell the core when everything before this has been carried out.
    Mark(Mark),
    /// Meter `meter.id` is now this one (added or modified), in datapath
    /// slot `slot` (what `meter(SLOT)` actions name): sent before
    /// anything that could name it ([`super::meters`]).
    SetMeter { slot: u32, meter: Meter },
    /// Meter `id`, in slot `slot`, is gone: sent after every megaflow that
    /// named it.
    DeleteMeter { slot: u32, id: u32 },
    /// These rules were deleted (by a controller, a rule file or a
    /// timeout) and asked to be reported: FLOW_REMOVED for the controllers.
    RulesRemoved(Vec<super::rules::RemovedRule>),
    /// Answer the change `ticket` waits for.
    Reply {
        ticket: Ticket,
        result: Result<usize, String>,
    },
}

/// What the datapaths answer (only what the core must act on).
#[derive(Clone, Debug, PartialEq)]
pub enum Feedback {
    /// The kernel refused a flow operation, with its errno and its words.
    Refused {
        op: FlowOp,
        errno: Option<i32>,
        reason: String,
    },
    /// The kernel would not run an upcalled packet.
    NotRun { reason: String },
    /// The datapath's socket failed: none of these installs is known to
    /// have been made.
    Lost { installs: Vec<Ufid> },
    /// A steering entry could not be added.
    SteerRefused {
        kernel: Ufid,
        pmd: Option<Ufid>,
        reason: String,
    },
    /// A [`Op::Mark`] was reached.
    Reached(Mark),
    /// The kernel deleted a flow the owner asked it to, and said what it
    /// had carried by then.
    FinalStats { ufid: Ufid, packets: u64, bytes: u64 },
    /// The meters' counters, read at a sweep, by meter number.
    Meters(Vec<(u32, MeterReading)>),
}

impl Op {
    /// Whether a PMD carries it out, changing what it forwards (so that a
    /// barrier after it needs the PMDs' answer).
    pub fn reaches_pmds(&self) -> bool {
        matches!(
            self,
            Op::Flow {
                holder: Holder::Pmd(_),
                ..
            } | Op::Upcalled {
                packet: Packet::Pmd { .. },
                ..
            } | Op::SetMeter { .. }
                | Op::DeleteMeter { .. }
        )
    }
}
