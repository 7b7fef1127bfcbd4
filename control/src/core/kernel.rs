//! The kernel datapath's side of the owner: what its answers mean for the
//! registry, and the adoption of the flows a previous run left there.
//!
//! # Refusals
//! * An install refused: the megaflow is forgotten (its packet ran
//!   anyway) and the refusal counted under the kernel's reason.
//! * An install that finds the flow there already (its UFID, so its
//!   match, but perhaps old actions: a flow the owner had lost track of)
//!   is kept and given the current actions.
//! * A modification or deletion of a flow the kernel no longer has
//!   forgets it; a refused modification forgets the flow and deletes it
//!   (its old actions must not go on running).
//!
//! # Adoption
//! A daemon that starts on a datapath a previous run left dumps its flows,
//! learns the MAC addresses they show, and translates each again: kept if
//! the rules still give its actions, given the new actions in place if its
//! match still holds, deleted otherwise. Flows keep forwarding through a
//! restart (and through a `kill -9`, misses meanwhile being counted as lost
//! by the kernel). In hybrid mode an adopted flow is also steered to again
//! if it qualifies for offload, and deleted if not.

use super::effects::{Feedback, Mark, Op};
use super::fail_open::pipeline;
use super::registry::{Record, Usage};
use super::translate::{covers, Env};
use super::{add, Core};
use odpx_classifier::flow_op::{Actions, FlowOp, Holder, Ufid};
use odpx_classifier::key::attr;
use odpx_classifier::xlate::translate;
use odpx_offload::client::{Flow, FlowId};
use std::sync::atomic::Ordering;
use std::time::Instant;

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;

/// What adoption did, for the log and `odpx ctl show`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    pub kept: u64,
    pub fixed: u64,
    pub deleted: u64,
}

impl Core {
    /// Takes in what the datapaths answered to the operations it asked for.
    pub fn feedback(&mut self, answers: Vec<Feedback>) {
        for f in answers {
            match f {
                Feedback::Refused { op, errno, reason } => self.refused(op, errno, reason),
                Feedback::NotRun { .. } => add(&self.counters.kernel_executes_failed, 1),
                Feedback::Lost { installs } => {
                    // Nothing is known to have been done: no install is kept.
                    for u in installs {
                        self.forget(&u);
                    }
                }
                Feedback::SteerRefused { kernel, pmd, reason } => self.steer_refused(kernel, pmd, reason),
                Feedback::Reached(Mark::Installed(moves)) => self.offload_installed(moves),
                Feedback::Reached(Mark::Steered(moves)) => self.offload_steered(moves),
                Feedback::FinalStats { ufid, packets, bytes } => self.final_stats(&ufid, packets, bytes),
                Feedback::Meters(readings) => self.meter_counters.read(readings),
            }
        }
        self.publish_gauges();
    }

    /// A flow operation the kernel refused (see "Refusals").
    fn refused(&mut self, op: FlowOp, errno: Option<i32>, reason: String) {
        match op {
            FlowOp::Install { ufid, matched, actions } if errno == Some(EEXIST) => {
                add(&self.counters.kernel_flows_existing, 1);
                self.outbox.push(Op::Flow {
                    holder: Holder::Kernel,
                    op: FlowOp::Modify { ufid, matched, actions },
                });
            }
            FlowOp::Install { ufid, .. } => {
                self.forget(&ufid);
                self.count_refusal(reason);
            }
            FlowOp::Modify { ufid, .. } => {
                self.forget(&ufid);
                if errno != Some(ENOENT) {
                    self.count_refusal(reason);
                    self.outbox.push(Op::Flow {
                        holder: Holder::Kernel,
                        op: FlowOp::Delete { ufid },
                    });
                }
            }
            // Gone already, or refused: the backend logged why.
            FlowOp::Delete { .. } => {}
        }
    }

    fn count_refusal(&mut self, reason: String) {
        add(&self.counters.kernel_refused, 1);
        self.refusals.count(reason);
    }

    /// Adopts the flows a previous run left in the kernel (see
    /// "Adoption"); call before the kernel's misses are handled.
    pub fn adopt(&mut self, flows: Vec<Flow>, now: Instant) -> Adopted {
        // The MAC table first: what the flows show about where sources are.
        for f in &flows {
            if let Ok(Some(k)) = f.key() {
                let (key, mask) = (k.matched.key, k.matched.mask);
                if key.has(attr::ETHERNET) && mask.eth_src == [0xff; 6] && mask.in_port == !0 {
                    self.macs
                        .refresh(super::mac::vlan_of(&key), key.eth_src, key.in_port, now);
                }
            }
        }
        let mut done = Adopted::default();
        let mut strays = Vec::new();
        let mut kept = Vec::new();
        for f in flows {
            let decoded = f.key().ok().flatten().zip(f.actions().ok().flatten());
            let (Some(ufid), Some((key, actions))) = (f.ufid.as_deref().and_then(Ufid::from_bytes), decoded) else {
                strays.push(match (&f.ufid, &f.key_raw) {
                    (Some(u), _) => FlowId::Ufid(u.clone()),
                    (None, Some(k)) => FlowId::Key(k.clone()),
                    (None, None) => continue,
                });
                done.deleted += 1;
                continue;
            };
            let matched = key.matched;
            let mut env = Env::new(&mut self.macs, &mut self.recirc, None);
            let t = translate(pipeline(&self.rules, &self.fail_open), &matched.key, &mut env);
            let learns = env.source;
            let learned_there = learns.is_none_or(|s| self.macs.port_of(s.vlan, s.mac) == Some(s.port));
            if !learned_there || !covers(&matched.mask, &t.megaflow.mask) {
                strays.push(FlowId::Ufid(ufid.as_bytes().to_vec()));
                done.deleted += 1;
                continue;
            }
            let fresh: Actions = t.actions.into();
            if self.kernel_form_equals(&fresh, &actions) {
                done.kept += 1;
            } else {
                done.fixed += 1;
                self.outbox.push(Op::Flow {
                    holder: Holder::Kernel,
                    op: FlowOp::Modify {
                        ufid,
                        matched: Box::new(matched),
                        actions: fresh.clone(),
                    },
                });
            }
            self.registry.insert(
                ufid,
                Record {
                    holder: Holder::Kernel,
                    matched,
                    packet: matched.key,
                    actions: fresh,
                    lookups: t.lookups.into(),
                    groups: t.groups.into(),
                    learns,
                    learned: t.learned.into(),
                    underlay: false,
                    usage: Usage {
                        packets: f.packets,
                        bytes: f.bytes,
                        used: None,
                    },
                    carried: Usage::default(),
                    offloaded: false,
                    installed: now,
                    install_seq: self.install_seq,
                },
            );
            self.install_seq += 1;
            kept.push(ufid);
        }
        if !strays.is_empty() {
            self.outbox.push(Op::KernelDelete(strays));
        }
        self.steer_adopted(kept);
        let c = &self.counters;
        c.adopted_kept.store(done.kept, Ordering::Relaxed);
        c.adopted_fixed.store(done.fixed, Ordering::Relaxed);
        c.adopted_deleted.store(done.deleted, Ordering::Relaxed);
        self.publish_gauges();
        done
    }
}
