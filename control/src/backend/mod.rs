//! The datapaths as the owner core sees them: one backend per mode, each
//! carrying out the core's operations on its datapath.
//!
//! # What
//! * [`userspace::Userspace`]: PMD threads, reached through their message
//!   channels (and the eventfd of a PMD that waits when idle);
//! * [`kernel::Kernel`]: the Linux kernel datapath over generic netlink
//!   (flow puts, modifications, deletions and packet executions in
//!   batches, dumps through the dump thread);
//! * [`hybrid::Hybrid`]: both, plus the steering tables that send the
//!   packets of offloaded megaflows to the kernel.
//!
//! # The interface
//! [`Backend::execute`] takes the core's operations in order, carries
//! them out in that order, and returns what the core must hear (refusals,
//! marks reached). It is the only place where the owner's decisions
//! become I/O. A backend is owned by the driver ([`crate::owner`]) and
//! used by one thread at a time; it never takes the core's lock.
//!
//! [`Backend::refuses`] says which rules the datapath cannot carry out at
//! all (pure kernel mode cannot rewrite some fields): the driver checks a
//! rule change with it before the core sees it, so a bad rule never
//! half-applies.

pub mod hybrid;
pub mod kernel;
pub mod userspace;

use crate::core::{Feedback, Op};
use odpx_classifier::rules::group::Group;
use odpx_classifier::rules::meter::Meter;
use odpx_classifier::rules::Rule;

/// A datapath mode's backend (see the module documentation).
pub trait Backend: Send {
    /// Carries out `ops` in order; appends what the core must hear to
    /// `feedback`, in order.
    fn execute(&mut self, ops: Vec<Op>, feedback: &mut Vec<Feedback>);

    /// Why this datapath cannot carry out `rule`, if it cannot.
    fn refuses(&self, _rule: &Rule) -> Option<String> {
        None
    }

    /// Why this datapath cannot carry out `group`'s buckets, if it cannot.
    fn refuses_group(&self, _group: &Group) -> Option<String> {
        None
    }

    /// Why this datapath cannot run `meter`, if it cannot.
    fn refuses_meter(&self, _meter: &Meter) -> Option<String> {
        None
    }
}
