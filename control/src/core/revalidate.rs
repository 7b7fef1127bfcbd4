//! What a change does to the installed megaflows: a rule, a learned MAC
//! address, a port or the underlay changed, so every megaflow that may be
//! affected is translated again, once per change, and judged.
//!
//! # Verdicts
//! Translating a megaflow's packet key again gives actions and a megaflow
//! mask. If the installed megaflow does not pin every bit the new
//! translation needs, it is deleted (the next packet misses and installs
//! the new decision). Otherwise every packet it accepts gets the new
//! decision, so its actions are replaced in place if they differ, and it
//! is kept as it is if not. (Open vSwitch's revalidator decides the same
//! way.) An offloaded megaflow whose new actions the kernel cannot run
//! comes back to the PMDs.
//!
//! # MAC learning
//! The owner keeps one invariant: for every installed megaflow whose
//! translation runs NORMAL, the MAC table already says what its packets
//! would teach it (their source on their port), so no packet that skips
//! the owner misses a lesson. Hence a source learned anew, moved or aged
//! out revalidates the megaflows that pin it as destination and deletes
//! the megaflows that learned it on another port (their next packet
//! misses and learns it), and a revalidation whose new path to NORMAL
//! would learn something new deletes the megaflow too. Megaflows whose
//! packets keep coming never reach the owner: the sweep's statistics
//! refresh their source's entry instead, so an active address does not
//! age out.

use super::effects::Op;
use super::fail_open::pipeline;
use super::rules::Touched;
use super::translate::{covers, translate_all, Env, MacEvent};
use super::{add, Core};
use odpx_classifier::flow_op::{Actions, FlowOp, Ufid};
use odpx_classifier::odp::OdpAction;
use odpx_offload::rtnl::Change as UnderlayChange;
use std::time::Instant;

impl Core {
    /// Counts MAC-table changes and revalidates what they may affect.
    pub(super) fn mac_events(&mut self, events: &[MacEvent]) {
        for e in events {
            match (e.port, e.moved) {
                (Some(_), true) => add(&self.counters.mac_moves, 1),
                (Some(_), false) => add(&self.counters.mac_learned, 1),
                (None, _) => {}
            }
            self.mac_changed(e.mac, e.port);
        }
    }

    /// The megaflows pinning `mac`: those sending to it are translated
    /// again; those that learned it on another port than `now_on` go, so
    /// that its next packet there is a miss that learns it.
    fn mac_changed(&mut self, mac: [u8; 6], now_on: Option<u32>) {
        let dst = self.registry.pinning_dst(&mac);
        self.revalidate(dst);
        for ufid in self.registry.pinning_src(&mac) {
            let stale = self
                .registry
                .get(&ufid)
                .and_then(|r| r.learns)
                .is_some_and(|s| s.mac == mac && Some(s.port) != now_on);
            if stale {
                self.delete(ufid);
            }
        }
    }

    /// Forgets a megaflow and has its holder delete it.
    pub(super) fn delete(&mut self, ufid: Ufid) {
        if let Some(r) = self.forget(&ufid) {
            add(&self.counters.revalidation_removals, 1);
            self.bury(ufid, &r);
            self.outbox.push(Op::Flow {
                holder: r.holder,
                op: FlowOp::Delete { ufid },
            });
        }
    }

    /// Translates these megaflows again and decides for each (see
    /// "Verdicts").
    pub(super) fn revalidate(&mut self, ufids: Vec<Ufid>) {
        for ufid in ufids {
            let Some(rec) = self.registry.get(&ufid) else {
                continue;
            };
            add(&self.counters.revalidated, 1);
            let (holder, matched, packet, offloaded) = (rec.holder, rec.matched, rec.packet, rec.offloaded);
            let mut env = Env::new(&mut self.macs, &mut self.recirc, None);
            let (t, used) = translate_all(
                pipeline(&self.rules, &self.fail_open),
                &self.tunnels,
                &packet,
                &mut env,
                false,
            );
            let learns = env.source;
            // Its packets would now learn something the MAC table does not
            // say (the translation's path to NORMAL changed): they must
            // reach the owner again. So must those whose tunnel output
            // now waits for a next hop (they wait in the owner).
            let would_learn = learns.is_some_and(|s| self.macs.port_of(s.vlan, s.mac) != Some(s.port));
            let changed = t.actions[..] != rec.actions[..];
            let kernel_cannot = offloaded && changed && !self.kernel_runs(&t.actions);
            if would_learn || !used.waiting.is_empty() || !covers(&matched.mask, &t.megaflow.mask) || kernel_cannot {
                self.delete(ufid);
                continue;
            }
            let actions: Actions = if changed { t.actions.into() } else { rec.actions.clone() };
            if changed {
                self.offload_changed(&ufid);
                add(&self.counters.revalidation_modifications, 1);
                self.outbox.push(Op::Flow {
                    holder,
                    op: FlowOp::Modify {
                        ufid,
                        matched: Box::new(matched),
                        actions: actions.clone(),
                    },
                });
            }
            self.registry
                .update(&ufid, actions, t.lookups.into(), t.groups.into(), learns, used.underlay);
            self.registry.set_learned(&ufid, t.learned);
        }
    }

    /// Revalidates what a change of these rules may affect.
    pub(super) fn rules_changed(&mut self, changed: Touched) {
        add(&self.counters.rule_changes, 1);
        let ufids = if changed.many {
            self.registry.ufids()
        } else {
            self.registry.touched_by(&changed.rules)
        };
        self.revalidate(ufids);
        self.publish_gauges();
    }

    /// A port's link went down or came back: flooding and outputs depend
    /// on the port set, so everything is revalidated.
    pub(super) fn port_state(&mut self, port: u32, up: bool) {
        if up {
            self.macs.add_port(port);
        } else {
            for mac in self.macs.remove_port(port) {
                self.mac_changed(mac, None);
            }
        }
        let all = self.registry.ufids();
        self.revalidate(all);
        self.publish_gauges();
    }

    /// Takes in the kernel's underlay changes: revalidates the megaflows
    /// that read the underlay and says what the underlay filters should
    /// hold, then sends the packets that waited for a next hop now known.
    pub fn underlay_changed(&mut self, changes: Vec<UnderlayChange>, reload: bool, now: Instant) {
        if self.tunnels.apply_changes(changes, reload) {
            let ufids: Vec<Ufid> = self
                .registry
                .iter()
                .filter(|(_, r)| r.underlay)
                .map(|(u, _)| *u)
                .collect();
            self.revalidate(ufids);
            self.tell_underlay();
        }
        self.release_parked(now);
        self.publish_gauges();
    }

    /// Passes on what the underlay filters and ports should hold, if that
    /// changed.
    pub(super) fn tell_underlay(&mut self) {
        if let Some(w) = self.tunnels.underlay_wanted() {
            self.outbox.push(Op::Underlay {
                vteps: w.vteps,
                mtus: w.mtus,
            });
        }
    }

    /// Runs the tunnel outputs of parked packets whose next hop is known
    /// now (translated again: the rules may have changed meanwhile).
    pub(super) fn release_parked(&mut self, now: Instant) {
        for (hop, p) in self.tunnels.released(now) {
            let mut env = Env::new(&mut self.macs, &mut self.recirc, None);
            let (t, used) = translate_all(
                pipeline(&self.rules, &self.fail_open),
                &self.tunnels,
                &p.key,
                &mut env,
                false,
            );
            let actions: Vec<OdpAction> = used
                .pushes
                .iter()
                .filter(|(_, h)| *h == hop)
                .map(|(i, _)| t.actions[*i].clone())
                .collect();
            if !actions.is_empty() {
                self.outbox.push(Op::Upcalled {
                    install: None,
                    actions: actions.into(),
                    packet: p.packet,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Change, CoreConfig, Holders, Packet, Ticket};
    use super::*;
    use odpx_classifier::odp::parse_key;
    use odpx_classifier::rules::{ofctl, RuleSet};
    use std::time::Duration;

    fn core(rules: &str) -> Core {
        let mut set = RuleSet::new();
        for r in ofctl::parse_rules(rules).unwrap() {
            set.add(r);
        }
        Core::new(
            CoreConfig {
                rules: set,
                ports: vec![1, 2, 3],
                holders: Holders { pmds: 1, kernel: false },
                megaflow_limit: 1000,
                idle_timeout: Duration::from_secs(10),
                tunnels: Default::default(),
                offload: None,
            },
            Instant::now(),
        )
    }

    fn packet(dport: u16) -> (odpx_classifier::key::FlowKey, Packet) {
        let key = parse_key(&format!("in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1,dst={dport})"))
            .unwrap()
            .matched
            .key;
        let p = Packet::Pmd {
            pmd: 0,
            in_port: 1,
            bytes: vec![0; 60],
        };
        (key, p)
    }

    /// The core is driven with plain values: a miss gives an install, a
    /// rule change a modification in place and, after the PMD's barrier
    /// report, the reply; nothing leaves the core but operations.
    #[test]
    fn a_rule_change_modifies_in_place_and_is_answered_after_the_barrier() {
        let mut c = core("priority=1,udp,actions=output:2");
        let now = Instant::now();
        let (key, p) = packet(53);
        c.upcall(&key, p, now);
        let ops = c.take_ops();
        let [Op::Upcalled {
            install: Some((ufid, _)),
            ..
        }] = ops.as_slice()
        else {
            panic!("one install: {ops:?}");
        };
        let ufid = *ufid;
        let rule = ofctl::parse_rule("priority=2,udp,actions=output:3").unwrap();
        c.change(Change::AddRules(vec![rule]), Ticket(7), now);
        let ops = c.take_ops();
        assert!(
            matches!(&ops[0], Op::Flow { op: FlowOp::Modify { ufid: u, actions, .. }, .. } if *u == ufid && actions[..] == [OdpAction::Output(3)]),
            "{ops:?}"
        );
        let Op::Barrier { token } = ops[1] else {
            panic!("then a barrier: {ops:?}")
        };
        assert_eq!(ops.len(), 2, "no reply before the PMD's barrier: {ops:?}");
        c.pmd_report(odpx_dataplane::pmd::PmdReport::Barrier { pmd: 0, token }, now);
        let ops = c.take_ops();
        assert!(
            matches!(
                &ops[..],
                [Op::Reply {
                    ticket: Ticket(7),
                    result: Ok(1)
                }]
            ),
            "{ops:?}"
        );
    }
}
