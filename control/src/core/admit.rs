//! Answering a miss: translate the packet (learning its source if NORMAL
//! runs), apply what learning changed, register its megaflow under its
//! UFID unless the flow limit is reached, and have the datapath that
//! missed install it and run the packet, so a miss is never lost.

use super::effects::{Op, Packet};
use super::fail_open::pipeline;
use super::registry::{Record, Usage};
use super::translate::{translate_all, Env};
use super::{add, Core};
use odpx_classifier::flow_op::{Actions, Holder, Ufid};
use odpx_classifier::key::FlowKey;
use odpx_classifier::rules::Rule;
use std::time::Instant;

/// What the owner decided for a missed packet.
enum Admission {
    /// Install this megaflow (registered already) and run the packet.
    Install {
        ufid: Ufid,
        matched: Box<odpx_classifier::key::Match>,
        actions: Actions,
        /// The owner had it already (two misses of one flow raced).
        again: bool,
    },
    /// Only run the packet (the megaflow is installed, or may not be);
    /// its tunnel outputs toward `waiting` next hops were left out.
    Execute {
        actions: Actions,
        waiting: Vec<super::tunnels::NextHopKey>,
    },
}

impl Core {
    /// Answers one miss of the datapath that sent `packet` (see the
    /// module documentation).
    pub fn upcall(&mut self, key: &FlowKey, packet: Packet, now: Instant) {
        let holder = packet.holder();
        let (admission, learned) = self.admit(holder, key, packet.bytes_len(), now);
        let op = match admission {
            Admission::Install {
                ufid,
                matched,
                actions,
                again,
            } => Op::Upcalled {
                // The kernel was asked already, and answers an install of a
                // flow it has with EEXIST: run the packet only. A PMD takes
                // it again (it may have expired it, its report on the way).
                install: (!again || !holder.is_kernel()).then_some((ufid, matched)),
                actions,
                packet,
            },
            Admission::Execute { actions, waiting } => {
                for hop in waiting {
                    if self.tunnels.park(hop, *key, packet.clone(), now) {
                        self.outbox.push(Op::ResolveNeighbour {
                            ifindex: hop.0,
                            addr: hop.1,
                        });
                    }
                }
                Op::Upcalled {
                    install: None,
                    actions,
                    packet,
                }
            }
        };
        // A drop needs no run, nor a kernel execute.
        let needed = match &op {
            Op::Upcalled { install, actions, .. } => install.is_some() || !actions.is_empty(),
            _ => true,
        };
        if needed {
            self.outbox.push(op);
        }
        // After the install: a learned rule that changes this megaflow's
        // own decision revalidates it like any other.
        self.learn(learned, now);
        self.publish_gauges();
    }

    /// Translates a missed packet (learning), applies what MAC learning
    /// changed, and decides whether its megaflow is installed; also gives
    /// the rules its `learn` actions made ([`super::learn`]).
    fn admit(&mut self, holder: Holder, key: &FlowKey, bytes: usize, now: Instant) -> (Admission, Vec<Rule>) {
        add(&self.counters.upcalls, 1);
        let mut env = Env::new(&mut self.macs, &mut self.recirc, Some(now));
        let (mut t, used) = translate_all(
            pipeline(&self.rules, &self.fail_open),
            &self.tunnels,
            key,
            &mut env,
            false,
        );
        let learned = std::mem::take(&mut t.learned);
        // The upcalled packet itself: its megaflow's counters start after it.
        self.rule_counters.credit(&t.lookups, 1, bytes as u64, Some(now));
        self.group_counters.credit(&t.groups, 1, bytes as u64);
        let (events, learns) = (env.events, env.source);
        if !events.is_empty() {
            self.mac_events(&events);
        }
        let ufid = Ufid::of(&t.megaflow, holder);
        let actions: Actions = t.actions.into();
        if !used.waiting.is_empty() {
            // Not installed: the next packet of the flow, once the next
            // hop is known, installs the whole decision.
            let waiting = used.waiting;
            return (Admission::Execute { actions, waiting }, learned);
        }
        let again = self.registry.contains(&ufid);
        // What the owner knows of the megaflow beyond its translation
        // (hybrid mode: moved into the kernel, with a steering entry).
        let (mut offloaded, mut carried) = (false, Usage::default());
        if let Some(r) = self.registry.get(&ufid) {
            (offloaded, carried) = (r.offloaded, r.carried);
            if r.matched != t.megaflow || r.holder != holder {
                add(&self.counters.ufid_collisions, 1);
                let waiting = Vec::new();
                return (Admission::Execute { actions, waiting }, learned);
            }
        } else if !self.limiter.admits(self.registry.len()) {
            add(&self.counters.flow_limit_hits, 1);
            if !self.at_flow_limit {
                self.at_flow_limit = true;
                tracing::warn!(
                    "flow limit reached ({} megaflows): new flows run through the translator without a megaflow until it has room",
                    self.registry.len()
                );
            }
            let waiting = Vec::new();
            return (Admission::Execute { actions, waiting }, learned);
        }
        self.registry.insert(
            ufid,
            Record {
                holder,
                matched: t.megaflow,
                packet: *key,
                actions: actions.clone(),
                lookups: t.lookups.into(),
                groups: t.groups.into(),
                learns,
                learned: learned.clone().into(),
                underlay: used.underlay,
                usage: Usage::default(),
                carried,
                offloaded,
                installed: now,
                install_seq: self.install_seq,
            },
        );
        self.install_seq += 1;
        if !again {
            add(&self.counters.installs, 1);
        }
        let install = Admission::Install {
            ufid,
            matched: Box::new(t.megaflow),
            actions,
            again,
        };
        (install, learned)
    }
}
