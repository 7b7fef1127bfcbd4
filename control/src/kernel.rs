//! Pure-kernel mode: the megaflow owner driving the Linux kernel datapath.
//!
//! # What
//! With `datapath = "kernel"` every configured interface is a netdev vport
//! of one ODP datapath ([`odpx_offload::kernel::KernelDatapath`]), the
//! kernel forwards, and its misses reach the translator from one upcall
//! handler thread per CPU. The translator is the same owner as in
//! userspace mode, with the kernel as the holder of every megaflow:
//! * **Upcalls** arrive in batches (up to 64). Each is translated and
//!   registered; then one netlink batch installs the new megaflows (key,
//!   mask, UFID) and executes every packet with the kernel's own key, so
//!   the first packet of a flow is never lost. A flow the kernel refuses is
//!   counted under the kernel's own reason; its packet still runs.
//! * **Revalidation** sends `OVS_FLOW_CMD_SET` (new actions, by UFID) and
//!   `OVS_FLOW_CMD_DEL` requests; each is acknowledged before the rule
//!   change that caused it returns.
//! * **Sweeps**: the dumper thread dumps the flows tersely (UFID, packets,
//!   bytes, last use); the owner deletes those idle beyond the idle
//!   timeout, refreshes its records and the MAC table from the others,
//!   deletes flows it does not own (left by someone else), and forgets
//!   records whose flow the kernel no longer has.
//! * **Adoption**: a daemon that starts on a datapath a previous run left
//!   dumps its flows, learns the MAC addresses they show, and translates
//!   each again: kept if the rules still give its actions, given the new
//!   actions in place if its match still holds, deleted otherwise. Flows
//!   keep forwarding through a restart (and through a `kill -9`, misses
//!   meanwhile being counted as lost by the kernel).
//!
//! # What the kernel cannot do
//! The kernel datapath cannot rewrite ICMP, ARP or ND fields, the IP
//! protocol or fragment type, the Ethertype, TCP flags or the input port:
//! a rule that sets one is refused at startup and by `add-flow`, with the
//! reason ([`refusal`]).
//!
//! # Threads
//! The [`KernelBackend`] is part of the owner, behind its lock. Each
//! upcall handler thread takes that lock to answer its own batch (through
//! [`OwnerSink`]); the dumper is a thread of its own whose dumps reach the
//! translator thread as data.

use crate::registry::{Record, Usage};
use crate::translator::{add, covers, lock, Admission, Env, MacEvent, Translator};
use odpx_classifier::flow_op::{FlowOp, Holder, Ufid};
use odpx_classifier::key::attr;
use odpx_classifier::rules::field::Field;
use odpx_classifier::rules::{ofctl, Rule, RuleAction};
use odpx_classifier::xlate::translate;
use odpx_offload::client::FlowId;
use odpx_offload::error::OdpError;
use odpx_offload::kernel::{
    Applied, DumpReport, Dumper, FlowTable, HandlerCounters, Handlers, KernelDatapath, KernelFlows, KernelUpcall,
    PacketOut, RateLimitedLog, UpcallSink,
};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;

/// The kernel datapath as the owner's backend.
pub struct KernelBackend {
    /// Its flow table: the kernel's, or a model in tests.
    pub flows: Box<dyn FlowTable>,
    pub handlers: Option<Handlers>,
    pub log: RateLimitedLog,
}

impl KernelBackend {
    pub fn new(dp: KernelDatapath, dumper: Dumper) -> KernelBackend {
        KernelBackend::with_flows(Box::new(KernelFlows { dp, dumper }))
    }

    pub fn with_flows(flows: Box<dyn FlowTable>) -> KernelBackend {
        KernelBackend {
            flows,
            handlers: None,
            log: RateLimitedLog::new(5),
        }
    }
}

/// Where the upcall handlers hand their batches: the owner, taken in turn
/// with the translator thread. Weak: the handlers must not keep a stopped
/// owner alive.
pub struct OwnerSink(pub Weak<Mutex<Translator>>);

impl UpcallSink for OwnerSink {
    fn upcalls(&self, batch: Vec<KernelUpcall>) {
        if let Some(owner) = self.0.upgrade() {
            lock(&owner).kernel_upcalls(batch);
        }
    }
}

/// Why the kernel datapath cannot carry out `rule`, if it cannot.
pub fn refusal(rule: &Rule) -> Option<String> {
    for a in &rule.actions {
        if let RuleAction::SetField { field, .. } = a {
            let what = match field {
                Field::IcmpType | Field::IcmpCode => "ICMP fields",
                Field::ArpOp | Field::ArpSha | Field::ArpTha => "ARP fields",
                Field::NdTarget | Field::NdSll | Field::NdTll => "neighbour discovery fields",
                Field::NwProto | Field::NwFrag => "the IP protocol or fragment type",
                Field::DlType => "the Ethertype",
                Field::TcpFlags => "TCP flags",
                Field::InPort => "the input port",
                Field::NwSrc | Field::NwDst
                    if rule.matched.key.eth_type == 0x0806 && rule.matched.mask.eth_type != 0 =>
                {
                    "ARP fields"
                }
                _ => continue,
            };
            return Some(format!(
                "rule '{}': the kernel datapath cannot rewrite {what} (set_field ->{}), datapath = \"kernel\"",
                ofctl::format_rule(rule),
                field.name()
            ));
        }
    }
    None
}

/// A refusal's reason without the flow it was about: the kernel's errno
/// and its own words.
fn reason_of(e: &OdpError) -> String {
    match e {
        OdpError::Kernel { errno, ext_ack, .. } => {
            let name = std::io::Error::from_raw_os_error(*errno).to_string();
            let name = name.split(" (os error").next().unwrap_or(&name).to_string();
            match ext_ack {
                Some(why) => format!("errno {errno} ({name}): kernel says: {why}"),
                None => format!("errno {errno} ({name})"),
            }
        }
        other => other.to_string(),
    }
}

/// What adoption did, for the log and `odpx ctl show`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    pub kept: u64,
    pub fixed: u64,
    pub deleted: u64,
}

impl Translator {
    fn kernel(&mut self) -> Option<&mut KernelBackend> {
        self.datapaths.kernel.as_deref_mut()
    }

    /// Starts `n` upcall handler threads handing their batches to `sink`
    /// (kernel mode).
    pub fn start_handlers(
        &mut self,
        n: usize,
        sink: Arc<dyn UpcallSink>,
        counters: Arc<HandlerCounters>,
    ) -> Result<String, String> {
        let k = self.kernel().ok_or("not in kernel mode")?;
        let dp = k.flows.datapath().ok_or("no kernel datapath to listen to")?;
        let h = Handlers::start(dp, n, sink, counters)?;
        let mode = h.mode.clone();
        k.handlers = Some(h);
        Ok(mode)
    }

    /// The upcall handlers, to be stopped outside the owner's lock (they
    /// take it).
    pub fn take_handlers(&mut self) -> Option<Handlers> {
        self.kernel().and_then(|k| k.handlers.take())
    }

    /// Carries out operations and runs packets in the kernel, and takes in
    /// what failed ([`Translator::kernel_results`]).
    pub(crate) fn kernel_apply(&mut self, ops: Vec<FlowOp>, packets: Vec<PacketOut>) {
        // The kernel's form of each decision (hybrid mode's tunnel pushes).
        let ops: Vec<FlowOp> = ops
            .into_iter()
            .map(|op| match op {
                FlowOp::Install { ufid, matched, actions } => FlowOp::Install {
                    ufid,
                    matched,
                    actions: self.kernel_form(&actions),
                },
                FlowOp::Modify { ufid, matched, actions } => FlowOp::Modify {
                    ufid,
                    matched,
                    actions: self.kernel_form(&actions),
                },
                delete => delete,
            })
            .collect();
        let packets: Vec<PacketOut> = packets
            .into_iter()
            .map(|p| PacketOut {
                actions: self.kernel_form(&p.actions),
                ..p
            })
            .collect();
        let Some(k) = self.datapaths.kernel.as_deref_mut() else {
            return;
        };
        let applied = k.flows.apply(&ops, &packets);
        let applied = match applied {
            Ok(a) => a,
            Err(e) => {
                // The socket itself failed: nothing is known to have been
                // done, so no install is kept.
                k.log.say(|| format!("kernel datapath: {e}"));
                for op in &ops {
                    if let FlowOp::Install { ufid, .. } = op {
                        self.forget(ufid);
                    }
                }
                return;
            }
        };
        let (lines, doomed, again) = self.kernel_results(&ops, applied);
        let Some(k) = self.kernel() else { return };
        for l in lines {
            k.log.say(|| l);
        }
        if !doomed.is_empty() {
            let ids: Vec<FlowId> = doomed.iter().map(|u| FlowId::Ufid(u.as_bytes().to_vec())).collect();
            let _ = k.flows.delete(&ids);
        }
        if !again.is_empty() {
            self.kernel_apply(again, Vec::new());
        }
    }

    /// Takes in the kernel's answers to a batch: a refused install is
    /// forgotten (its packet ran anyway) and counted under the kernel's
    /// reason; an install that finds the flow there already (its UFID, so
    /// its match, but perhaps old actions: a flow the owner had lost track
    /// of) is kept and given the current actions; a modify or delete of a
    /// flow the kernel no longer has forgets it; a refused modify forgets
    /// the flow and returns it for deletion (its old actions must not go on
    /// running). Returns the lines to log, the flows to delete and the
    /// operations to send again.
    pub(crate) fn kernel_results(&mut self, ops: &[FlowOp], applied: Applied) -> (Vec<String>, Vec<Ufid>, Vec<FlowOp>) {
        let mut lines = Vec::new();
        let mut doomed = Vec::new();
        let mut again = Vec::new();
        for (op, r) in ops.iter().zip(applied.ops) {
            let Err(e) = r else { continue };
            match op {
                FlowOp::Install { ufid, matched, actions } if e.errno() == Some(EEXIST) => {
                    add(&self.counters.flows_existing, 1);
                    again.push(FlowOp::Modify {
                        ufid: *ufid,
                        matched: matched.clone(),
                        actions: actions.clone(),
                    });
                }
                FlowOp::Install { ufid, .. } => {
                    self.forget(ufid);
                    {
                        lines.push(format!("the kernel refused a flow: {e}"));
                        self.counters.refused(reason_of(&e));
                    }
                }
                FlowOp::Modify { ufid, .. } => {
                    self.forget(ufid);
                    if e.errno() != Some(ENOENT) {
                        lines.push(format!("the kernel refused new actions: {e}"));
                        self.counters.refused(reason_of(&e));
                        doomed.push(*ufid);
                    }
                }
                FlowOp::Delete { .. } => {
                    if e.errno() != Some(ENOENT) {
                        lines.push(format!("the kernel refused a flow deletion: {e}"));
                    }
                }
            }
        }
        for r in applied.packets {
            if let Err(e) = r {
                add(&self.counters.executes_failed, 1);
                lines.push(format!("the kernel would not run an upcalled packet: {e}"));
            }
        }
        (lines, doomed, again)
    }

    /// Answers a batch of kernel upcalls (see the module documentation).
    pub fn kernel_upcalls(&mut self, batch: Vec<KernelUpcall>) {
        let now = Instant::now();
        let mut ops = Vec::new();
        let mut packets = Vec::new();
        for u in batch {
            let actions = match self.admit(Holder::Kernel, &u.key, now) {
                Admission::Install {
                    ufid,
                    matched,
                    actions,
                    again,
                } => {
                    // Already asked of the kernel: the flow is there (or its
                    // refusal will be counted once).
                    if !again {
                        ops.push(FlowOp::Install {
                            ufid,
                            matched,
                            actions: actions.clone(),
                        });
                    }
                    actions
                }
                Admission::Execute { actions, .. } => actions,
            };
            // A drop needs no execution.
            if !actions.is_empty() {
                packets.push(PacketOut {
                    key_raw: u.key_raw,
                    packet: u.packet,
                    actions,
                });
            }
        }
        self.kernel_apply(ops, packets);
        self.publish_gauges();
    }

    /// Takes in a terse dump (see "Sweeps" in the module documentation)
    /// and returns the kernel flows to delete: the idle ones, already
    /// forgotten, and the ones the owner never installed. The caller
    /// deletes them with a socket of its own, without the owner's lock, so
    /// that deleting thousands of idle flows does not hold up upcalls; it
    /// must do so before it serves any other request (no rule change may
    /// come between: the owner no longer revalidates these flows), then
    /// call [`Translator::sweep_done`] if this was the sweep's last report
    /// (the second value; in hybrid mode the PMDs report too).
    pub fn kernel_dump(&mut self, r: DumpReport) -> (Vec<FlowId>, bool) {
        self.kernel_dump_at(r, Instant::now())
    }

    /// [`Translator::kernel_dump`] on the owner's clock reading `now`.
    pub fn kernel_dump_at(&mut self, r: DumpReport, now: Instant) -> (Vec<FlowId>, bool) {
        let Some(sweep) = self.sweep.as_mut().filter(|s| s.token == r.token) else {
            return (Vec::new(), false);
        };
        sweep.left = sweep.left.saturating_sub(1);
        let done = sweep.left == 0;
        let first_later = sweep.first_later_install;
        let flows = match r.flows {
            Ok(f) => f,
            Err(e) => {
                if let Some(k) = self.kernel() {
                    k.log.say(|| format!("kernel flow dump: {e}"));
                }
                return (Vec::new(), done);
            }
        };
        let max_idle = self.limiter.max_idle(self.registry.len());
        let mut doomed: Vec<FlowId> = Vec::new();
        let mut strays = 0;
        let mut seen = HashSet::new();
        let mut events: Vec<MacEvent> = Vec::new();
        for f in flows {
            let ufid = match f.ufid {
                Some(u) if self.registry.get(&u).is_some_and(|rec| rec.holder == Holder::Kernel) => u,
                Some(u) => {
                    strays += 1;
                    doomed.push(FlowId::Ufid(u.as_bytes().to_vec()));
                    continue;
                }
                None => {
                    if let Some(k) = f.key_raw {
                        strays += 1;
                        doomed.push(FlowId::Key(k));
                    }
                    continue;
                }
            };
            seen.insert(ufid);
            let idle = (f.used_ms != 0).then(|| Duration::from_millis(r.now_ms.saturating_sub(f.used_ms)));
            let usage = Usage {
                packets: f.packets,
                bytes: f.bytes,
                used: idle.map(|d| now.checked_sub(d).unwrap_or(now)),
            };
            events.extend(self.note_usage(&ufid, usage, now));
            let Some(rec) = self.registry.get(&ufid) else { continue };
            let idle_for = now.saturating_duration_since(rec.last_activity());
            if idle_for >= max_idle && rec.install_seq < first_later {
                self.forget(&ufid);
                add(&self.counters.expired, 1);
                doomed.push(FlowId::Ufid(ufid.as_bytes().to_vec()));
            }
        }
        // Registered, installed before the dump, and not in it: the kernel
        // lost it (someone deleted it, or the datapath was flushed).
        let vanished: Vec<Ufid> = self
            .registry
            .iter()
            .filter(|(u, rec)| rec.holder == Holder::Kernel && rec.install_seq < first_later && !seen.contains(*u))
            .map(|(u, _)| *u)
            .collect();
        for u in vanished {
            self.forget(&u);
            add(&self.counters.kernel_vanished, 1);
        }
        add(&self.counters.kernel_strays, strays);
        if !events.is_empty() {
            self.mac_events(&events);
        }
        self.publish_gauges();
        (doomed, done)
    }

    /// Adopts the flows a previous run left in the kernel (see the module
    /// documentation); call before the handlers start.
    pub fn adopt(&mut self) -> Result<Adopted, String> {
        let now = Instant::now();
        let flows = {
            let k = self.kernel().ok_or("not in kernel mode")?;
            k.flows
                .dump()
                .map_err(|e| format!("adopting the kernel's flows: {e}"))?
        };
        // The MAC table first: what the flows show about where sources are.
        for f in &flows {
            if let Ok(Some(k)) = f.key() {
                let (key, mask) = (k.matched.key, k.matched.mask);
                if key.has(attr::ETHERNET) && mask.eth_src == [0xff; 6] && mask.in_port == !0 {
                    self.macs
                        .refresh(crate::mac::vlan_of(&key), key.eth_src, key.in_port, now);
                }
            }
        }
        let mut done = Adopted::default();
        let mut ops = Vec::new();
        let mut strays = Vec::new();
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
            let mut env = Env::new(&mut self.macs, None);
            let t = translate(&self.rules, &matched.key, &mut env);
            let learns = env.source;
            let learned_there = learns.is_none_or(|s| self.macs.port_of(s.vlan, s.mac) == Some(s.port));
            if !learned_there || !covers(&matched.mask, &t.megaflow.mask) {
                strays.push(FlowId::Ufid(ufid.as_bytes().to_vec()));
                done.deleted += 1;
                continue;
            }
            let fresh: odpx_classifier::flow_op::Actions = t.actions.into();
            if self.kernel_form(&fresh)[..] == actions[..] {
                done.kept += 1;
            } else {
                done.fixed += 1;
                ops.push((
                    Holder::Kernel,
                    FlowOp::Modify {
                        ufid,
                        matched: Box::new(matched),
                        actions: fresh.clone(),
                    },
                ));
            }
            self.registry.insert(
                ufid,
                Record {
                    holder: Holder::Kernel,
                    matched,
                    packet: matched.key,
                    actions: fresh,
                    lookups: t.lookups.into(),
                    learns,
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
        }
        self.apply(ops);
        if let Some(k) = self.kernel() {
            k.flows
                .delete(&strays)
                .map_err(|e| format!("adopting the kernel's flows: {e}"))?;
        }
        let c = &self.counters;
        c.adopted_kept.store(done.kept, Ordering::Relaxed);
        c.adopted_fixed.store(done.fixed, Ordering::Relaxed);
        c.adopted_deleted.store(done.deleted, Ordering::Relaxed);
        self.publish_gauges();
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translator::Datapaths;
    use odpx_classifier::odp::parse_key;
    use odpx_classifier::rules::RuleSet;
    use odpx_dataplane::pmd::PmdDoor;
    use odpx_offload::error::Op;

    #[test]
    fn a_refused_flow_is_counted_under_the_kernels_reason_and_forgotten() {
        let mut rules = RuleSet::new();
        rules.add(ofctl::parse_rule("priority=0,actions=output:2").unwrap());
        let mut t = Translator::new(
            rules,
            vec![1, 2],
            Datapaths::userspace(Vec::<PmdDoor>::new()),
            1000,
            Duration::from_secs(10),
        );
        let key = parse_key("in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1,dst=2)")
            .unwrap()
            .matched
            .key;
        let Admission::Install {
            ufid, matched, actions, ..
        } = t.admit(Holder::Kernel, &key, Instant::now())
        else {
            panic!("a new megaflow is installed");
        };
        assert_eq!(t.megaflows(), 1);
        let refused = |errno| OdpError::Kernel {
            op: Op::Flow,
            errno,
            context: "flow in_port(1),eth()".into(),
            ext_ack: Some("Flow actions may not be safe on all matching packets.".into()),
        };
        let ops = vec![FlowOp::Install { ufid, matched, actions }];
        let (lines, doomed, again) = t.kernel_results(
            &ops,
            Applied {
                ops: vec![Err(refused(22))],
                packets: vec![Ok(())],
            },
        );
        assert_eq!(t.megaflows(), 0, "not installed: forgotten");
        assert!(doomed.is_empty() && again.is_empty());
        assert_eq!(lines.len(), 1);
        let c = &t.counters;
        assert_eq!(c.flows_refused.load(Ordering::Relaxed), 1);
        assert_eq!(c.executes_failed.load(Ordering::Relaxed), 0, "its packet ran");
        let reasons = c.refusals.lock().unwrap().clone();
        assert_eq!(
            reasons.into_iter().collect::<Vec<_>>(),
            vec![(
                "errno 22 (Invalid argument): kernel says: Flow actions may not be safe on all matching packets."
                    .to_string(),
                1
            )]
        );
    }

    #[test]
    fn rules_the_kernel_cannot_run_are_named() {
        let r = |t: &str| ofctl::parse_rule(t).unwrap();
        assert!(refusal(&r("priority=1,ip,actions=mod_nw_dst:10.0.0.1,output:2")).is_none());
        assert!(refusal(&r("priority=1,tcp,actions=mod_tp_dst:80,NORMAL")).is_none());
        let e = refusal(&r("priority=1,icmp,actions=set_field:3->icmp_type,output:2")).unwrap();
        assert!(e.contains("cannot rewrite ICMP fields"), "{e}");
        let e = refusal(&r("priority=1,arp,actions=set_field:10.0.0.9->arp_spa,output:2")).unwrap();
        assert!(e.contains("ARP fields"), "{e}");
    }
}
