//! Hybrid mode's backend: the PMDs, the kernel datapath, and the steering
//! tables that send the packets of offloaded megaflows to the kernel.
//!
//! # Order across datapaths
//! Each datapath keeps the order of its own operations. Between them, a
//! steering change and a mark flush both first: a steering entry is added
//! only after the kernel acknowledged its flow, and removed before the
//! kernel flow or a PMD copy is touched by anything decided later.

use super::kernel::Kernel;
use super::userspace::Userspace;
use super::Backend;
use crate::core::counters::OffloadCounters;
use crate::core::{Feedback, Op};
use odpx_dataplane::steer::{SteerEntry, SteerRefusal, SteeringTable};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The steering tables as the backend uses them: the BPF maps, or a model
/// in tests of the owner.
pub trait Steering: Send {
    fn insert(&mut self, e: &SteerEntry) -> io::Result<Result<(), SteerRefusal>>;
    fn remove(&mut self, e: &SteerEntry) -> io::Result<bool>;
    /// Distinct masks in use.
    fn masks(&self) -> usize;
}

impl Steering for SteeringTable {
    fn insert(&mut self, e: &SteerEntry) -> io::Result<Result<(), SteerRefusal>> {
        SteeringTable::insert(self, e)
    }

    fn remove(&mut self, e: &SteerEntry) -> io::Result<bool> {
        SteeringTable::remove(self, e)
    }

    fn masks(&self) -> usize {
        SteeringTable::masks(self)
    }
}

/// Hybrid mode's datapaths (see the module documentation).
pub struct Hybrid {
    pmds: Userspace,
    kernel: Kernel,
    steering: Box<dyn Steering>,
    /// Where the steering masks in use are published.
    counters: Arc<OffloadCounters>,
}

impl Hybrid {
    pub fn new(pmds: Userspace, kernel: Kernel, steering: Box<dyn Steering>, counters: Arc<OffloadCounters>) -> Hybrid {
        Hybrid {
            pmds,
            kernel,
            steering,
            counters,
        }
    }

    fn flush(&mut self, feedback: &mut Vec<Feedback>) {
        self.pmds.flush();
        self.kernel.flush(feedback);
    }
}

impl Backend for Hybrid {
    fn execute(&mut self, ops: Vec<Op>, feedback: &mut Vec<Feedback>) {
        for op in ops {
            let op = match op {
                // Both hold megaflows: both sweep.
                Op::Sweep { token, max_idle } => {
                    self.kernel.take(Op::Sweep { token, max_idle }, feedback);
                    self.pmds.take(Op::Sweep { token, max_idle }, feedback);
                    continue;
                }
                // The kernel's operations before it are acknowledged first.
                Op::Barrier { token } => {
                    self.kernel.flush(feedback);
                    self.pmds.take(Op::Barrier { token }, feedback);
                    continue;
                }
                other => other,
            };
            let Some(op) = self.pmds.take(op, feedback) else {
                continue;
            };
            let Some(op) = self.kernel.take(op, feedback) else {
                continue;
            };
            match op {
                Op::Steer { on, kernel, pmd, entry } => {
                    self.flush(feedback);
                    if on {
                        let refused = match self.steering.insert(&entry) {
                            Ok(Ok(())) => None,
                            Ok(Err(r)) => Some(r.to_string()),
                            Err(e) => Some(format!("steering: {e}")),
                        };
                        if let Some(reason) = refused {
                            feedback.push(Feedback::SteerRefused { kernel, pmd, reason });
                        }
                    } else if let Err(e) = self.steering.remove(&entry) {
                        tracing::warn!("steering: removing an entry: {e}");
                    }
                    self.counters
                        .masks
                        .store(self.steering.masks() as u64, Ordering::Relaxed);
                }
                Op::Mark(m) => {
                    self.flush(feedback);
                    feedback.push(Feedback::Reached(m));
                }
                other => tracing::warn!("hybrid datapath: an operation it does not carry out: {other:?}"),
            }
        }
        self.flush(feedback);
    }
}
