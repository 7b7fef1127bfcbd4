//! The slow path: one thread that turns upcalls into megaflows.
//!
//! # What
//! The translator owns the rule tables and the MAC table. For each upcall
//! it learns the source address, runs the packet through the rules
//! ([`translate`]) and sends the PMD that missed a [`PmdMsg::Install`]: the
//! widest correct megaflow, its actions, and the packet (executed by the
//! PMD, so a miss is never lost). Control requests (rule changes, dumps,
//! traces) arrive on a second channel and are served between upcalls.
//!
//! # Keeping megaflows right
//! For every megaflow it installed the translator keeps a record: the PMD,
//! the match, the actions and the packet key that produced it.
//! * A rule change revalidates only the megaflows whose match overlaps a
//!   changed rule's match (no packet can reach both otherwise): each is
//!   translated again from its packet key, and removed from its PMD if the
//!   megaflow or the actions differ (the next packet upcalls and installs
//!   the new decision).
//! * A MAC address learned anew or moved to another port removes the
//!   megaflows that match it as destination (they flooded it, or sent it
//!   to the old port).
//! * Records are pruned when their megaflows must have expired in the PMD.
//!
//! # Threads
//! Everything here lives on the translator thread; the world reaches it
//! only through the two channels.

use crate::mac::{Learned, MacTable};
use crossbeam_channel::{select, Receiver, Sender};
use odpx_classifier::key::{attr, FlowKey, Match};
use odpx_classifier::odp::{self, OdpAction};
use odpx_classifier::rules::{ofctl, Rule, RuleSet};
use odpx_classifier::xlate::{translate, SwitchEnv, MAX_RESUBMIT_DEPTH};
use odpx_dataplane::pmd::{Actions, PmdMsg, Upcall};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests from control (the control socket, the demo).
pub enum Request {
    /// Adds rules (all or none: they were parsed beforehand).
    AddRules(Vec<Rule>, Sender<usize>),
    /// Deletes rules like `ovs-ofctl del-flows` (non-strict).
    DelRules {
        table: Option<u8>,
        matched: Box<Match>,
        reply: Sender<usize>,
    },
    DumpRules(Sender<String>),
    Trace(Box<FlowKey>, Sender<String>),
    MacTable(Sender<String>),
    Stop,
}

/// Translator counters (relaxed atomics).
#[derive(Default, Debug)]
pub struct TranslatorCounters {
    pub upcalls: AtomicU64,
    pub installs: AtomicU64,
    pub revalidated: AtomicU64,
    pub revalidation_removals: AtomicU64,
    pub mac_learned: AtomicU64,
    pub mac_moves: AtomicU64,
    pub rule_changes: AtomicU64,
}

struct Record {
    packet: FlowKey,
    actions: Actions,
    installed: Instant,
}

pub struct Translator {
    rules: RuleSet,
    macs: MacTable,
    pmds: Vec<Sender<PmdMsg>>,
    records: HashMap<(usize, Match), Record>,
    idle_timeout: Duration,
    pub counters: Arc<TranslatorCounters>,
}

/// Whether some packet can match both.
fn overlaps(a: &Match, b: &Match) -> bool {
    let both = a.mask.masked(&b.mask);
    a.key.masked(&both) == b.key.masked(&both)
}

/// The text of a trace (what `odpx trace` and `odpx ctl trace` print).
pub fn trace_text(rules: &RuleSet, packet: &FlowKey, env: &mut dyn SwitchEnv) -> String {
    use std::fmt::Write;
    let t = translate(rules, packet, env);
    let mut s = String::new();
    let _ = writeln!(s, "Flow: {}", odp::format_exact_key(packet));
    for step in &t.trace {
        let indent = "    ".repeat(step.depth);
        match &step.rule {
            Some(r) => {
                let _ = writeln!(s, "{indent}table {}: {r}", step.table);
            }
            None => {
                let _ = writeln!(s, "{indent}table {}: no match (drop)", step.table);
            }
        }
    }
    if t.too_deep {
        let _ = writeln!(s, "resubmit depth limit ({MAX_RESUBMIT_DEPTH}) reached: packet dropped");
    }
    let _ = writeln!(s, "Datapath actions: {}", odp::actions::format_actions(&t.actions));
    let _ = writeln!(s, "Megaflow: {}", odp::format_match(&t.megaflow));
    s
}

impl Translator {
    pub fn new(rules: RuleSet, ports: Vec<u32>, pmds: Vec<Sender<PmdMsg>>, idle_timeout: Duration) -> Translator {
        Translator {
            rules,
            macs: MacTable::new(ports, Duration::from_secs(300), 65536),
            pmds,
            records: HashMap::new(),
            idle_timeout,
            counters: Arc::new(TranslatorCounters::default()),
        }
    }

    /// Serves upcalls and requests until `Request::Stop` or both channels
    /// close.
    pub fn run(mut self, upcalls: Receiver<Upcall>, requests: Receiver<Request>) {
        let tick = crossbeam_channel::tick(Duration::from_secs(1));
        loop {
            select! {
                recv(upcalls) -> u => match u {
                    Ok(u) => self.upcall(u),
                    Err(_) => return,
                },
                recv(requests) -> r => match r {
                    Ok(Request::Stop) | Err(_) => return,
                    Ok(r) => self.request(r),
                },
                recv(tick) -> _ => self.housekeeping(),
            }
        }
    }

    pub fn upcall(&mut self, u: Upcall) {
        let now = Instant::now();
        self.counters.upcalls.fetch_add(1, Ordering::Relaxed);
        match self.macs.learn(&u.key, now) {
            Learned::Known => {}
            l => {
                if matches!(l, Learned::Moved { .. }) {
                    self.counters.mac_moves.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.counters.mac_learned.fetch_add(1, Ordering::Relaxed);
                }
                self.forget_destination(u.key.eth_src);
            }
        }
        let t = translate(&self.rules, &u.key, &mut self.macs);
        let actions: Actions = t.actions.into();
        self.records.insert(
            (u.pmd, t.megaflow),
            Record {
                packet: u.key,
                actions: actions.clone(),
                installed: now,
            },
        );
        if let Some(pmd) = self.pmds.get(u.pmd) {
            let _ = pmd.send(PmdMsg::Install {
                matched: Box::new(t.megaflow),
                actions,
                packet: Some((u.in_port, u.packet)),
            });
            self.counters.installs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes megaflows that match `mac` as their exact destination.
    fn forget_destination(&mut self, mac: [u8; 6]) {
        let sel = move |m: &Match| m.key.has(attr::ETHERNET) && m.mask.eth_dst == [0xff; 6] && m.key.eth_dst == mac;
        self.records.retain(|(_, m), _| !sel(m));
        for p in &self.pmds {
            let _ = p.send(PmdMsg::Remove(Box::new(move |m: &Match, _: &[OdpAction]| sel(m))));
        }
    }

    /// Re-translates the megaflows a rule change may affect; removes the
    /// ones whose decision changed.
    fn revalidate(&mut self, changed: &[Match]) {
        let mut doomed: Vec<(usize, Match)> = Vec::new();
        for ((pmd, m), rec) in &self.records {
            if !changed.iter().any(|c| overlaps(c, m)) {
                continue;
            }
            self.counters.revalidated.fetch_add(1, Ordering::Relaxed);
            let t = translate(&self.rules, &rec.packet, &mut self.macs);
            if t.megaflow != *m || t.actions[..] != rec.actions[..] {
                doomed.push((*pmd, *m));
            }
        }
        for (pmd, m) in doomed {
            self.records.remove(&(pmd, m));
            self.counters.revalidation_removals.fetch_add(1, Ordering::Relaxed);
            if let Some(p) = self.pmds.get(pmd) {
                let _ = p.send(PmdMsg::Remove(Box::new(move |x: &Match, _: &[OdpAction]| *x == m)));
            }
        }
    }

    pub fn request(&mut self, r: Request) {
        match r {
            Request::AddRules(rules, reply) => {
                let changed: Vec<Match> = rules.iter().map(|r| r.matched).collect();
                let n = rules.len();
                for r in rules {
                    self.rules.add(r);
                }
                self.counters.rule_changes.fetch_add(1, Ordering::Relaxed);
                self.revalidate(&changed);
                let _ = reply.send(n);
            }
            Request::DelRules { table, matched, reply } => {
                let gone = self.rules.delete(table, &matched, None);
                let changed: Vec<Match> = gone.iter().map(|r| r.matched).collect();
                self.counters.rule_changes.fetch_add(1, Ordering::Relaxed);
                self.revalidate(&changed);
                let _ = reply.send(gone.len());
            }
            Request::DumpRules(reply) => {
                let mut rules: Vec<&Rule> = self.rules.iter().collect();
                rules.sort_by_key(|r| (r.table, std::cmp::Reverse(r.priority), r.seq));
                let text: String = rules.iter().map(|r| format!(" {}\n", ofctl::format_rule(r))).collect();
                let _ = reply.send(text);
            }
            Request::Trace(key, reply) => {
                let _ = reply.send(trace_text(&self.rules, &key, &mut self.macs));
            }
            Request::MacTable(reply) => {
                let now = Instant::now();
                let mut s = String::from(" port  VLAN  MAC                Age\n");
                for (vlan, mac, port, age) in self.macs.dump(now) {
                    s += &format!(
                        "{port:>5}  {vlan:>4}  {}  {}\n",
                        odpx_classifier::text::fmt_mac(&mac),
                        age.as_secs()
                    );
                }
                let _ = reply.send(s);
            }
            Request::Stop => {}
        }
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        self.macs.age(now);
        // A record outlives its megaflow by at most twice the idle timeout.
        let keep = self.idle_timeout * 2;
        self.records.retain(|_, r| now.duration_since(r.installed) < keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::odp::parse_key;

    #[test]
    fn overlap_is_decided_on_common_bits() {
        let a = parse_key("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0,frag=no)")
            .unwrap()
            .matched;
        let b = parse_key("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.1.2.3,frag=no)")
            .unwrap()
            .matched;
        let c = parse_key("in_port(2),eth()").unwrap().matched;
        let d = parse_key("in_port(1),eth(),eth_type(0x0800),ipv4(dst=11.0.0.1,frag=no)")
            .unwrap()
            .matched;
        assert!(overlaps(&a, &b));
        assert!(!overlaps(&a, &c));
        assert!(!overlaps(&a, &d));
    }
}
