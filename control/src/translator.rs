//! The slow path and the megaflow owner: one thread that turns upcalls
//! into megaflows and keeps every installed megaflow right for its whole
//! life, in the userspace PMDs and in the kernel datapath alike.
//!
//! # What
//! The translator thread owns the rule tables, the MAC table and the
//! [`Registry`] of every installed megaflow. It
//! * answers upcalls: translates the packet ([`translate`], learning its
//!   source MAC if NORMAL runs), registers the megaflow under its UFID,
//!   and has the datapath that missed install it and run the packet, so a
//!   miss is never lost;
//! * revalidates: whenever something a translation depends on changes (a
//!   rule, a learned MAC address, the set of ports), it translates again
//!   every megaflow that may be affected, once per change batch, and
//!   decides for each (see "Verdicts");
//! * sweeps: every [`SWEEP_INTERVAL`] it asks each datapath for the
//!   megaflows idle longer than the current idle timeout (deleted) and the
//!   statistics of the others, which keep its records and the MAC table
//!   fresh; the round's duration drives the dynamic flow limit
//!   ([`crate::limits`]).
//!
//! Every decision reaches a datapath as data ([`FlowOp`]: UFIDs, matches,
//! actions), through the [`Datapaths`] backend: messages to PMD threads,
//! or netlink requests to the kernel.
//!
//! # Verdicts
//! Translating a megaflow's packet key again gives actions and a megaflow
//! mask. If the installed megaflow does not pin every bit the new
//! translation needs, it is deleted (the next packet upcalls and installs
//! the new decision). Otherwise every packet it accepts gets the new
//! decision, so its actions are replaced in place if they differ, and it
//! is kept as it is if not. (Open vSwitch's revalidator decides the same
//! way.)
//!
//! # When a change is in force
//! A rule change (`odpx ctl add-flow`, `del-flows`) is answered only once
//! every datapath has applied the operations it caused: the kernel acks
//! each netlink request before the next step, and every PMD answers a
//! barrier message sent after them. From the answer on, no packet gets an
//! old decision on any path. MAC learning changes, aging and sweeps take
//! effect the same way but nobody waits for them.
//!
//! # MAC learning
//! Learning happens in translation, when NORMAL runs, from the packet's
//! source (as in Open vSwitch). The owner keeps one invariant: for every
//! installed megaflow whose translation runs NORMAL, the MAC table already
//! says what its packets would teach it (their source on their port), so
//! no packet that skips the translator misses a lesson. Hence a source
//! learned anew, moved or aged out revalidates the megaflows that pin it
//! as destination and deletes the megaflows that learned it on another
//! port (their next packet is an upcall that learns it), and a
//! revalidation whose new path to NORMAL would learn something new deletes
//! the megaflow too. Megaflows whose packets keep coming never reach the
//! translator: the sweep's statistics refresh their source's entry
//! instead, so an active address does not age out.
//!
//! # Threads
//! The owner is one object, [`Translator`], behind one lock
//! ([`Owner`]); nothing of its state is read or written outside it. The
//! translator thread ([`run`]) takes the lock for each message it serves:
//! PMD upcalls, control requests and the datapaths' reports, all of which
//! reach it as data over channels, and the periodic work. In kernel mode
//! the upcall handler threads take the same lock to answer their batches
//! themselves, as Open vSwitch's handlers do: a first packet then waits
//! for no other thread to wake up (a cross-CPU wakeup per upcall, measured
//! at 0.1-5 ms under the test VM's emulation). PMD threads never take it:
//! they only send upcalls and reports.

use crate::hybrid::Offload;
use crate::kernel::KernelBackend;
use crate::limits::FlowLimiter;
use crate::mac::{vlan_of, Learned, MacTable};
use crate::registry::{MacSource, Record, Registry, Usage};
use crate::tunnels::{NextHopKey, TunnelUse, Tunnels};
use crossbeam_channel::{select, Receiver, Sender};
use odpx_classifier::flow_op::{Actions, FlowOp, Holder, Ufid};
use odpx_classifier::key::{FlowKey, Match};
use odpx_classifier::odp;
use odpx_classifier::rules::{ofctl, Rule, RuleSet};
use odpx_classifier::xlate::{translate, translate_traced, SwitchEnv, Translation, MAX_RESUBMIT_DEPTH};
use odpx_dataplane::pmd::{FlowUse, PmdDoor, PmdMsg, PmdReport, Upcall};
use odpx_dataplane::upcalls::UpcallReceiver;
use odpx_offload::kernel::DumpReport;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the owner sweeps the datapaths.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// Above this many changed rules in one request, every megaflow is
/// revalidated instead of checking each against each rule.
pub const FULL_REVALIDATION_RULES: usize = 64;

/// Requests from control (the control socket, the demo, tests).
pub enum Request {
    /// Adds rules (all or none: they were parsed beforehand). Answered
    /// once every datapath agrees with them.
    AddRules(Vec<Rule>, Sender<Result<usize, String>>),
    /// Deletes rules like `ovs-ofctl del-flows`: every rule whose match
    /// lies within `matched` or, with `strict` (`--strict`), the rules of
    /// exactly this match and priority. Answered once every datapath
    /// agrees.
    DelRules {
        table: Option<u8>,
        matched: Box<Match>,
        strict: Option<u16>,
        reply: Sender<Result<usize, String>>,
    },
    /// A port's link went (`up: false`) or came back.
    PortState {
        port: u32,
        up: bool,
        reply: Sender<Result<usize, String>>,
    },
    /// Answered once every datapath has applied everything decided before.
    Sync(Sender<Result<usize, String>>),
    /// The kernel's interfaces, addresses, routes or neighbours changed
    /// (`reload`: a full dump after lost notifications, replacing all).
    Underlay {
        changes: Vec<odpx_offload::rtnl::Change>,
        reload: bool,
    },
    /// `ctl tnl-routes`, `ctl tnl-neigh`, and the tunnel part of `ctl show`.
    TunnelRoutes(Sender<String>),
    TunnelNeighbours(Sender<String>),
    TunnelShow(Sender<String>),
    DumpRules(Sender<String>),
    /// Hybrid mode: offload on or off (off brings every kernel-held
    /// megaflow back); answered with how many came back, once every
    /// datapath agrees.
    SetOffload(bool, Sender<Result<usize, String>>),
    /// Hybrid mode: each kernel-held megaflow's offload mark and the
    /// statistics it carried over from a PMD.
    KernelMarks(Sender<Vec<(Ufid, bool, Usage)>>),
    Trace(Box<FlowKey>, Sender<String>),
    MacTable(Sender<String>),
    Stop,
}

/// Translator counters (relaxed atomics; gauges are stored, the rest added).
#[derive(Default, Debug)]
pub struct TranslatorCounters {
    pub upcalls: AtomicU64,
    pub installs: AtomicU64,
    /// Upcalls only executed: the flow limit was reached.
    pub flow_limit_hits: AtomicU64,
    /// Upcalls only executed: a UFID already known for another match.
    pub ufid_collisions: AtomicU64,
    pub revalidated: AtomicU64,
    pub revalidation_removals: AtomicU64,
    pub revalidation_modifications: AtomicU64,
    pub mac_learned: AtomicU64,
    pub mac_moves: AtomicU64,
    pub mac_aged: AtomicU64,
    pub rule_changes: AtomicU64,
    pub sweeps: AtomicU64,
    pub expired: AtomicU64,
    /// Gauges.
    pub megaflows: AtomicU64,
    pub flow_limit: AtomicU64,
    pub max_idle_ms: AtomicU64,
    pub last_sweep_ms: AtomicU64,
    /// Kernel mode: flows the kernel refused (the packet still ran), by
    /// the kernel's reason.
    pub flows_refused: AtomicU64,
    pub refusals: Mutex<BTreeMap<String, u64>>,
    /// Kernel mode: installs that found the flow there already.
    pub flows_existing: AtomicU64,
    /// Kernel mode: upcalled packets the kernel would not run.
    pub executes_failed: AtomicU64,
    /// Kernel mode: flows found in the kernel that the owner did not
    /// install (deleted), and registered flows the kernel no longer had.
    pub kernel_strays: AtomicU64,
    pub kernel_vanished: AtomicU64,
    /// Kernel mode, at start: flows of a previous run kept as they were,
    /// given new actions, or deleted.
    pub adopted_kept: AtomicU64,
    pub adopted_fixed: AtomicU64,
    pub adopted_deleted: AtomicU64,
}

impl TranslatorCounters {
    /// Counts a refusal under its reason.
    pub fn refused(&self, reason: String) {
        add(&self.flows_refused, 1);
        if let Ok(mut m) = self.refusals.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The datapaths the owner's decisions go to: PMD threads (userspace
/// mode), the kernel datapath (kernel mode), or both with the offload
/// engine's state (hybrid mode).
pub struct Datapaths {
    /// Userspace PMD threads, by id.
    pub pmds: Vec<PmdDoor>,
    /// The Linux kernel datapath.
    pub kernel: Option<Box<KernelBackend>>,
    /// Hybrid mode: what is offloaded and the policy.
    pub offload: Option<Box<Offload>>,
}

impl Datapaths {
    pub fn userspace<D: Into<PmdDoor>>(pmds: Vec<D>) -> Datapaths {
        Datapaths {
            pmds: pmds.into_iter().map(Into::into).collect(),
            kernel: None,
            offload: None,
        }
    }

    pub fn kernel(k: KernelBackend) -> Datapaths {
        Datapaths {
            pmds: Vec::new(),
            kernel: Some(Box::new(k)),
            offload: None,
        }
    }

    pub fn hybrid<D: Into<PmdDoor>>(pmds: Vec<D>, k: KernelBackend, offload: Offload) -> Datapaths {
        Datapaths {
            pmds: pmds.into_iter().map(Into::into).collect(),
            kernel: Some(Box::new(k)),
            offload: Some(Box::new(offload)),
        }
    }

    /// Pure-kernel mode: the kernel holds every megaflow.
    pub fn pure_kernel(&self) -> bool {
        self.kernel.is_some() && self.offload.is_none()
    }
}

/// Who waits for a barrier, and what to answer.
struct Waiter {
    token: u64,
    left: usize,
    reply: Sender<Result<usize, String>>,
    answer: usize,
}

/// A sweep in progress.
pub(crate) struct Sweep {
    pub(crate) token: u64,
    pub(crate) started: Instant,
    /// Records installed from this install number on came after the sweep
    /// was sent.
    pub(crate) first_later_install: u64,
    pub(crate) left: usize,
}

/// A MAC-table change a translation caused.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MacEvent {
    pub(crate) mac: [u8; 6],
    /// Where it is now (`None`: gone).
    pub(crate) port: Option<u32>,
    /// It was known on another port before.
    pub(crate) moved: bool,
}

/// The translator's view of NORMAL's world: the MAC table, learning only
/// when the translation is for an upcalled packet.
pub(crate) struct Env<'a> {
    macs: &'a mut MacTable,
    learn_at: Option<Instant>,
    events: Vec<MacEvent>,
    pub(crate) source: Option<MacSource>,
}

impl<'a> Env<'a> {
    pub(crate) fn new(macs: &'a mut MacTable, learn_at: Option<Instant>) -> Env<'a> {
        Env {
            macs,
            learn_at,
            events: Vec::new(),
            source: None,
        }
    }
}

impl SwitchEnv for Env<'_> {
    fn flood_ports(&self, in_port: u32) -> Vec<u32> {
        self.macs.flood_ports(in_port)
    }

    fn normal_lookup(&mut self, key: &FlowKey) -> Option<u32> {
        if key.eth_src[0] & 1 == 0 && self.source.is_none() {
            self.source = Some(MacSource {
                vlan: vlan_of(key),
                mac: key.eth_src,
                port: key.in_port,
            });
        }
        if let Some(now) = self.learn_at {
            let learned = self.macs.learn(key, now);
            if learned != Learned::Known {
                self.events.push(MacEvent {
                    mac: key.eth_src,
                    port: Some(key.in_port),
                    moved: matches!(learned, Learned::Moved { .. }),
                });
            }
        }
        self.macs.normal_lookup(key)
    }
}

/// True if `old` pins every bit `new` does.
pub(crate) fn covers(old: &FlowKey, new: &FlowKey) -> bool {
    new.masked(old) == *new
}

/// Translates `key`: a packet on an underlay port through the tunnels'
/// decapsulation, any other through the rule tables and then the tunnels'
/// encapsulation. The one translation every path uses (upcalls,
/// revalidation, traces).
pub(crate) fn translate_all(
    rules: &RuleSet,
    tunnels: &Tunnels,
    key: &FlowKey,
    env: &mut dyn SwitchEnv,
    traced: bool,
) -> (Translation, TunnelUse) {
    if tunnels.is_underlay(key.in_port) {
        let used = TunnelUse {
            underlay: true,
            ..TunnelUse::default()
        };
        return (tunnels.decap(key), used);
    }
    let mut t = if traced {
        translate_traced(rules, key, env)
    } else {
        translate(rules, key, env)
    };
    let (actions, used) = tunnels.encap(std::mem::take(&mut t.actions));
    t.actions = actions;
    (t, used)
}

/// The text of a trace (what `odpx trace` and `odpx ctl trace` print).
pub fn trace_text(rules: &RuleSet, packet: &FlowKey, env: &mut dyn SwitchEnv) -> String {
    trace_text_with(rules, &Tunnels::none(), packet, env)
}

/// [`trace_text`] with the switch's tunnels.
pub(crate) fn trace_text_with(rules: &RuleSet, tunnels: &Tunnels, packet: &FlowKey, env: &mut dyn SwitchEnv) -> String {
    use std::fmt::Write;
    let (t, used) = translate_all(rules, tunnels, packet, env, true);
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
    if tunnels.is_underlay(packet.in_port) {
        let _ = writeln!(
            s,
            "underlay port: VXLAN for a local VTEP is decapsulated, the rest dropped"
        );
    }
    for (ifindex, via) in &used.waiting {
        let _ = writeln!(
            s,
            "tunnel output waits for the MAC address of {via} (interface {ifindex})"
        );
    }
    let _ = writeln!(s, "Datapath actions: {}", odp::actions::format_actions(&t.actions));
    let _ = writeln!(s, "Megaflow: {}", odp::format_match(&t.megaflow));
    s
}

/// What the owner decided for an upcalled packet.
pub(crate) enum Admission {
    /// Install this megaflow (registered already) and run the packet.
    Install {
        ufid: Ufid,
        matched: Box<Match>,
        actions: Actions,
        /// The owner had it already (two upcalls of one flow raced).
        again: bool,
    },
    /// Only run the packet (the megaflow is installed, or may not be);
    /// its tunnel outputs toward `waiting` next hops were left out: the
    /// packet waits for them ([`Tunnels::park`]).
    Execute { actions: Actions, waiting: Vec<NextHopKey> },
}

/// The channels the translator thread serves (`never()` for those a
/// datapath does not use).
pub struct Inputs {
    pub upcalls: UpcallReceiver,
    pub requests: Receiver<Request>,
    pub pmd_reports: Receiver<PmdReport>,
    pub kernel_dumps: Receiver<DumpReport>,
    /// Kernel mode: the translator thread's own socket, and the datapath,
    /// for deleting idle flows without the owner's lock.
    pub kernel_sweeper: Option<(odpx_offload::OdpClient, i32)>,
}

/// Flow operations per message to a PMD, at most (see [`Translator::apply`]).
const OPS_PER_MESSAGE: usize = 128;

/// PMD upcalls answered under one taking of the lock, at most.
const UPCALL_BATCH: usize = 64;

/// The megaflow owner, shared by the threads that take turns at it.
pub type Owner = Arc<Mutex<Translator>>;

/// Takes the owner's lock. A thread that panicked holding it left the
/// owner as it was between two messages: go on with it.
pub fn lock(owner: &Mutex<Translator>) -> std::sync::MutexGuard<'_, Translator> {
    owner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The translator thread: serves upcalls, requests and reports until
/// `Request::Stop` or the request channel closes.
pub fn run(owner: Owner, mut inputs: Inputs) {
    let tick = crossbeam_channel::tick(SWEEP_INTERVAL / 5);
    let mut batch = Vec::with_capacity(UPCALL_BATCH);
    loop {
        select! {
            recv(inputs.upcalls.doorbell()) -> _ => {
                // One round over the ports' queues (a flood on one port
                // gets its turn, not the whole batch), under one lock.
                batch.clear();
                inputs.upcalls.take(UPCALL_BATCH, &mut batch);
                if !batch.is_empty() {
                    let mut t = lock(&owner);
                    for u in batch.drain(..) {
                        t.upcall(u);
                    }
                }
            }
            recv(inputs.pmd_reports) -> r => {
                if let Ok(r) = r {
                    lock(&owner).pmd_report(r);
                }
            }
            recv(inputs.kernel_dumps) -> r => {
                if let Ok(r) = r {
                    let (doomed, done) = lock(&owner).kernel_dump(r);
                    if let Some((client, dp_ifindex)) = inputs.kernel_sweeper.as_mut() {
                        if !doomed.is_empty() {
                            let _ = client.del_flows(*dp_ifindex, &doomed);
                        }
                    }
                    if done {
                        lock(&owner).sweep_done(Instant::now());
                    }
                }
            }
            recv(inputs.requests) -> r => match r {
                Ok(Request::Stop) | Err(_) => {
                    // The handlers take the lock: stop them without it.
                    let handlers = lock(&owner).take_handlers();
                    if let Some(h) = handlers {
                        h.stop();
                    }
                    return;
                }
                Ok(r) => lock(&owner).request(r),
            },
            recv(tick) -> _ => lock(&owner).housekeeping(Instant::now()),
        }
    }
}

pub struct Translator {
    pub(crate) rules: RuleSet,
    pub(crate) macs: MacTable,
    pub(crate) registry: Registry,
    pub(crate) datapaths: Datapaths,
    pub(crate) limiter: FlowLimiter,
    /// Whether the flow limit turned an upcall away since the owner was
    /// last below it (logged on each change).
    at_flow_limit: bool,
    pub(crate) sweep: Option<Sweep>,
    last_sweep: Instant,
    waiting: Vec<Waiter>,
    pub(crate) next_token: u64,
    /// Numbers installs (see [`Record::install_seq`]).
    pub(crate) install_seq: u64,
    pub counters: Arc<TranslatorCounters>,
    pub(crate) tunnels: Tunnels,
}

impl Translator {
    pub fn new(
        rules: RuleSet,
        ports: Vec<u32>,
        datapaths: Datapaths,
        megaflow_limit: usize,
        idle_timeout: Duration,
    ) -> Translator {
        let t = Translator {
            rules,
            macs: MacTable::new(ports, Duration::from_secs(300), 65536),
            registry: Registry::new(),
            datapaths,
            limiter: FlowLimiter::new(megaflow_limit, idle_timeout),
            at_flow_limit: false,
            sweep: None,
            last_sweep: Instant::now(),
            waiting: Vec::new(),
            next_token: 1,
            install_seq: 0,
            counters: Arc::new(TranslatorCounters::default()),
            tunnels: Tunnels::none(),
        };
        t.publish_gauges();
        t
    }

    /// Gives the owner the switch's tunnel ports and underlay view.
    pub fn set_tunnels(&mut self, tunnels: Tunnels) {
        self.tunnels = tunnels;
    }

    /// The tunnel counters.
    pub fn tunnel_counters(&self) -> Arc<crate::tunnels::TunnelCounters> {
        self.tunnels.counters.clone()
    }

    /// The number of megaflows the owner knows of.
    pub fn megaflows(&self) -> usize {
        self.registry.len()
    }

    pub(crate) fn publish_gauges(&self) {
        let c = &self.counters;
        let n = self.registry.len();
        c.megaflows.store(n as u64, Ordering::Relaxed);
        c.flow_limit.store(self.limiter.limit() as u64, Ordering::Relaxed);
        c.max_idle_ms
            .store(self.limiter.max_idle(n).as_millis() as u64, Ordering::Relaxed);
    }

    // ------------------------------------------------------------ upcalls

    /// Answers one upcall from a PMD.
    pub fn upcall(&mut self, u: Upcall) {
        let holder = Holder::Pmd(u.pmd as u32);
        let now = Instant::now();
        let msg = match self.admit(holder, &u.key, now) {
            Admission::Install {
                ufid, matched, actions, ..
            } => PmdMsg::Install {
                ufid,
                matched,
                actions,
                packet: Some((u.in_port, u.packet)),
            },
            Admission::Execute { actions, waiting } => {
                for hop in waiting {
                    self.tunnels.park(hop, u.pmd, u.in_port, u.key, u.packet.clone(), now);
                }
                PmdMsg::Execute {
                    in_port: u.in_port,
                    actions,
                    packet: u.packet,
                }
            }
        };
        self.send_pmd(u.pmd, msg);
        self.publish_gauges();
    }

    /// Translates an upcalled packet (learning), applies what learning
    /// changed, and decides whether its megaflow is installed.
    pub(crate) fn admit(&mut self, holder: Holder, key: &FlowKey, now: Instant) -> Admission {
        add(&self.counters.upcalls, 1);
        let mut env = Env::new(&mut self.macs, Some(now));
        let (t, used) = translate_all(&self.rules, &self.tunnels, key, &mut env, false);
        let (events, learns) = (env.events, env.source);
        if !events.is_empty() {
            self.mac_events(&events);
        }
        let ufid = Ufid::of(&t.megaflow, holder);
        let actions: Actions = t.actions.into();
        if !used.waiting.is_empty() {
            // Not installed: the next packet of the flow, once the next
            // hop is known, installs the whole decision.
            return Admission::Execute {
                actions,
                waiting: used.waiting,
            };
        }
        let again = self.registry.contains(&ufid);
        // What the owner knows of the megaflow beyond its translation
        // (hybrid mode: moved into the kernel, with a steering entry).
        let (mut offloaded, mut carried) = (false, Usage::default());
        if let Some(r) = self.registry.get(&ufid) {
            (offloaded, carried) = (r.offloaded, r.carried);
            if r.matched != t.megaflow || r.holder != holder {
                add(&self.counters.ufid_collisions, 1);
                return Admission::Execute {
                    actions,
                    waiting: Vec::new(),
                };
            }
            // Two upcalls of one flow raced, or the holder expired it and
            // its report is on the way: install again (idempotent), and
            // note it so that report does not erase the new install.
        } else if !self.limiter.admits(self.registry.len()) {
            add(&self.counters.flow_limit_hits, 1);
            if !self.at_flow_limit {
                self.at_flow_limit = true;
                tracing::warn!(
                    "flow limit reached ({} megaflows): new flows run through the translator without a megaflow until it has room",
                    self.registry.len()
                );
            }
            return Admission::Execute {
                actions,
                waiting: Vec::new(),
            };
        }
        self.registry.insert(
            ufid,
            Record {
                holder,
                matched: t.megaflow,
                packet: *key,
                actions: actions.clone(),
                lookups: t.lookups.into(),
                learns,
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
        Admission::Install {
            ufid,
            matched: Box::new(t.megaflow),
            actions,
            again,
        }
    }

    // ------------------------------------------------------------ revalidation

    /// Counts MAC-table changes and revalidates what they may affect.
    pub(crate) fn mac_events(&mut self, events: &[MacEvent]) {
        let mut ops = Vec::new();
        for e in events {
            match (e.port, e.moved) {
                (Some(_), true) => add(&self.counters.mac_moves, 1),
                (Some(_), false) => add(&self.counters.mac_learned, 1),
                (None, _) => {}
            }
            self.mac_changed(e.mac, e.port, &mut ops);
        }
        self.apply(ops);
    }

    /// The megaflows pinning `mac`: those sending to it are translated
    /// again; those that learned it on another port than `now_on` go, so
    /// that its next packet there is an upcall that learns it.
    fn mac_changed(&mut self, mac: [u8; 6], now_on: Option<u32>, ops: &mut Vec<(Holder, FlowOp)>) {
        let dst = self.registry.pinning_dst(&mac);
        self.revalidate(dst, ops);
        for ufid in self.registry.pinning_src(&mac) {
            let stale = self
                .registry
                .get(&ufid)
                .and_then(|r| r.learns)
                .is_some_and(|s| s.mac == mac && Some(s.port) != now_on);
            if stale {
                self.delete(ufid, ops);
            }
        }
    }

    pub(crate) fn delete(&mut self, ufid: Ufid, ops: &mut Vec<(Holder, FlowOp)>) {
        if let Some(r) = self.forget(&ufid) {
            add(&self.counters.revalidation_removals, 1);
            ops.push((r.holder, FlowOp::Delete { ufid }));
        }
    }

    /// Translates these megaflows again and decides for each (see
    /// "Verdicts" in the module documentation).
    fn revalidate(&mut self, ufids: Vec<Ufid>, ops: &mut Vec<(Holder, FlowOp)>) {
        for ufid in ufids {
            let Some(rec) = self.registry.get(&ufid) else {
                continue;
            };
            add(&self.counters.revalidated, 1);
            let (holder, matched, packet) = (rec.holder, rec.matched, rec.packet);
            let mut env = Env::new(&mut self.macs, None);
            let (t, used): (Translation, TunnelUse) =
                translate_all(&self.rules, &self.tunnels, &packet, &mut env, false);
            let learns = env.source;
            // Its packets would now learn something the MAC table does not
            // say (the translation's path to NORMAL changed): they must
            // reach the translator again. So must those whose tunnel
            // output now waits for a next hop (they wait in the translator).
            let would_learn = learns.is_some_and(|s| self.macs.port_of(s.vlan, s.mac) != Some(s.port));
            // An offloaded megaflow whose new actions the kernel cannot
            // run comes back to the PMDs.
            let offloaded = rec.offloaded;
            let changed = t.actions[..] != rec.actions[..];
            let kernel_cannot = offloaded && changed && !self.kernel_runs(&t.actions);
            if would_learn || !used.waiting.is_empty() || !covers(&matched.mask, &t.megaflow.mask) || kernel_cannot {
                self.delete(ufid, ops);
                continue;
            }
            let actions: Actions = if changed { t.actions.into() } else { rec.actions.clone() };
            if changed {
                self.offload_forget(&ufid);
                add(&self.counters.revalidation_modifications, 1);
                ops.push((
                    holder,
                    FlowOp::Modify {
                        ufid,
                        matched: Box::new(matched),
                        actions: actions.clone(),
                    },
                ));
            }
            self.registry
                .update(&ufid, actions, t.lookups.into(), learns, used.underlay);
        }
    }

    /// Revalidates after a change of these rules and answers `reply` once
    /// every datapath agrees.
    fn rules_changed(&mut self, changed: Vec<Rule>, reply: Sender<Result<usize, String>>, answer: usize) {
        add(&self.counters.rule_changes, 1);
        let ufids = if changed.len() > FULL_REVALIDATION_RULES {
            self.registry.ufids()
        } else {
            self.registry.touched_by(&changed)
        };
        let mut ops = Vec::new();
        self.revalidate(ufids, &mut ops);
        self.apply(ops);
        self.barrier(reply, answer);
    }

    // ------------------------------------------------------------ datapaths

    pub(crate) fn send_pmd(&self, pmd: usize, msg: PmdMsg) {
        if let Some(p) = self.datapaths.pmds.get(pmd) {
            let _ = p.send(msg);
        }
    }

    /// Sends decisions to the datapaths that hold the megaflows, in order.
    pub(crate) fn apply(&mut self, ops: Vec<(Holder, FlowOp)>) {
        if ops.is_empty() {
            return;
        }
        let pmds = &self.datapaths.pmds;
        let mut per_pmd: Vec<Vec<FlowOp>> = vec![Vec::new(); pmds.len()];
        let mut kernel = Vec::new();
        for (holder, op) in ops {
            match holder {
                Holder::Pmd(i) => {
                    if let Some(v) = per_pmd.get_mut(i as usize) {
                        v.push(op);
                    }
                }
                Holder::Kernel => kernel.push(op),
            }
        }
        for (p, mut v) in pmds.iter().zip(per_pmd) {
            // In pieces: a PMD applies a message whole between two reads
            // of its queues (a revalidation can touch every megaflow).
            while !v.is_empty() {
                let rest = v.split_off(v.len().min(OPS_PER_MESSAGE));
                let _ = p.send(PmdMsg::Ops(v));
                v = rest;
            }
        }
        if !kernel.is_empty() {
            self.kernel_apply(kernel, Vec::new());
        }
        self.publish_gauges();
    }

    /// Answers `reply` once every datapath has applied what was sent.
    fn barrier(&mut self, reply: Sender<Result<usize, String>>, answer: usize) {
        // Every netlink request to the kernel was acknowledged before this
        // point; the PMDs answer a barrier sent after their operations.
        let pmds = &self.datapaths.pmds;
        if pmds.is_empty() {
            let _ = reply.send(Ok(answer));
            return;
        }
        let token = self.next_token;
        self.next_token += 1;
        for p in pmds {
            let _ = p.send(PmdMsg::Barrier(token));
        }
        self.waiting.push(Waiter {
            token,
            left: pmds.len(),
            reply,
            answer,
        });
    }

    /// Handles a PMD's answer.
    pub fn pmd_report(&mut self, r: PmdReport) {
        self.pmd_report_at(r, Instant::now());
    }

    /// [`Translator::pmd_report`] on the owner's clock reading `now`.
    pub fn pmd_report_at(&mut self, r: PmdReport, now: Instant) {
        match r {
            PmdReport::Barrier { token, .. } => {
                if let Some(i) = self.waiting.iter().position(|w| w.token == token) {
                    self.waiting[i].left -= 1;
                    if self.waiting[i].left == 0 {
                        let w = self.waiting.swap_remove(i);
                        let _ = w.reply.send(Ok(w.answer));
                    }
                }
            }
            PmdReport::NotInstalled { pmd, ufid } => {
                // It may have been installed again since: make sure no copy
                // stays that the owner does not know of.
                if self.forget(&ufid).is_some() {
                    self.send_pmd(pmd, PmdMsg::Ops(vec![FlowOp::Delete { ufid }]));
                }
            }
            PmdReport::Swept {
                token, expired, active, ..
            } => {
                let Some(sweep) = self.sweep.as_mut().filter(|s| s.token == token) else {
                    return;
                };
                let first_later = sweep.first_later_install;
                sweep.left -= 1;
                let done = sweep.left == 0;
                for u in &expired {
                    // Installed again after the sweep began: that install
                    // came after the expiry in the PMD, and stands.
                    if self.registry.get(&u.ufid).is_some_and(|r| r.install_seq < first_later) {
                        self.forget(&u.ufid);
                        add(&self.counters.expired, 1);
                    }
                }
                self.used(&active, now);
                if done {
                    self.sweep_done(now);
                }
            }
        }
    }

    /// Takes in the statistics of megaflows used since the last sweep, and
    /// keeps the MAC addresses they learned from aging out.
    fn used(&mut self, active: &[FlowUse], now: Instant) {
        let mut events = Vec::new();
        for u in active {
            let usage = Usage {
                packets: u.stats.packets,
                bytes: u.stats.bytes,
                used: u.idle.map(|d| now.checked_sub(d).unwrap_or(now)),
            };
            events.extend(self.note_usage(&u.ufid, usage, now));
            self.offload_observe(&u.ufid, u.stats.packets, now);
        }
        if !events.is_empty() {
            self.mac_events(&events);
        }
    }

    /// Records a megaflow's statistics; if it was used since the last
    /// reading and learned a source, refreshes that MAC entry (a MAC event
    /// if the entry had gone).
    pub(crate) fn note_usage(&mut self, ufid: &Ufid, usage: Usage, now: Instant) -> Option<MacEvent> {
        let before = self.registry.get(ufid)?.usage.packets;
        let r = self.registry.set_usage(ufid, usage)?;
        let s = r.learns.filter(|_| usage.packets > before)?;
        (self.macs.refresh(s.vlan, s.mac, s.port, now) == Learned::New).then_some(MacEvent {
            mac: s.mac,
            port: Some(s.port),
            moved: false,
        })
    }

    pub fn sweep_done(&mut self, now: Instant) {
        if let Some(s) = self.sweep.take() {
            let took = now.duration_since(s.started);
            self.limiter.after_round(took, self.registry.len());
            if self.at_flow_limit && self.limiter.admits(self.registry.len()) {
                self.at_flow_limit = false;
                tracing::info!("below the flow limit again ({} megaflows)", self.registry.len());
            }
            add(&self.counters.sweeps, 1);
            self.counters
                .last_sweep_ms
                .store(took.as_millis() as u64, Ordering::Relaxed);
        }
        self.publish_gauges();
    }

    /// Takes in the kernel's underlay changes: revalidates the megaflows
    /// that read the underlay, then sends the packets that waited for a
    /// next hop now known.
    pub fn underlay_changed(&mut self, changes: Vec<odpx_offload::rtnl::Change>, reload: bool, now: Instant) {
        if self.tunnels.apply_changes(changes, reload) {
            let ufids: Vec<Ufid> = self
                .registry
                .iter()
                .filter(|(_, r)| r.underlay)
                .map(|(u, _)| *u)
                .collect();
            let mut ops = Vec::new();
            self.revalidate(ufids, &mut ops);
            self.apply(ops);
        }
        self.release_parked(now);
    }

    /// Runs the tunnel outputs of parked packets whose next hop is known
    /// now (translated again: the rules may have changed meanwhile).
    fn release_parked(&mut self, now: Instant) {
        for (hop, p) in self.tunnels.released(now) {
            let mut env = Env::new(&mut self.macs, None);
            let (t, used) = translate_all(&self.rules, &self.tunnels, &p.key, &mut env, false);
            let actions: Vec<odp::OdpAction> = used
                .pushes
                .iter()
                .filter(|(_, h)| *h == hop)
                .map(|(i, _)| t.actions[*i].clone())
                .collect();
            if !actions.is_empty() {
                self.send_pmd(
                    p.pmd,
                    PmdMsg::Execute {
                        in_port: p.in_port,
                        actions: actions.into(),
                        packet: p.packet,
                    },
                );
            }
        }
    }

    /// Periodic work: MAC aging, and the next sweep when it is due.
    pub fn housekeeping(&mut self, now: Instant) {
        self.release_parked(now);
        let gone = self.macs.age(now);
        if !gone.is_empty() {
            add(&self.counters.mac_aged, gone.len() as u64);
            let events: Vec<MacEvent> = gone
                .into_iter()
                .map(|mac| MacEvent {
                    mac,
                    port: None,
                    moved: false,
                })
                .collect();
            self.mac_events(&events);
        }
        if self.sweep.is_none() && now.duration_since(self.last_sweep) >= SWEEP_INTERVAL {
            self.last_sweep = now;
            self.start_sweep(now);
        }
    }

    fn start_sweep(&mut self, now: Instant) {
        let max_idle = self.limiter.max_idle(self.registry.len());
        let token = self.next_token;
        self.next_token += 1;
        let pmds = &self.datapaths.pmds;
        for p in pmds {
            let _ = p.send(PmdMsg::Sweep { token, max_idle });
        }
        let mut left = pmds.len();
        if let Some(k) = &self.datapaths.kernel {
            k.flows.request_dump(token);
            left += 1;
        }
        self.sweep = Some(Sweep {
            token,
            started: now,
            first_later_install: self.install_seq,
            left,
        });
        if left == 0 {
            self.sweep_done(now);
        }
    }

    // ------------------------------------------------------------ requests

    pub fn request(&mut self, r: Request) {
        match r {
            Request::AddRules(rules, reply) => {
                if self.datapaths.pure_kernel() {
                    if let Some(e) = rules.iter().find_map(crate::kernel::refusal) {
                        let _ = reply.send(Err(format!("{e}; no rules added")));
                        return;
                    }
                }
                let n = rules.len();
                for r in rules.iter().cloned() {
                    self.rules.add(r);
                }
                self.rules_changed(rules, reply, n);
            }
            Request::DelRules {
                table,
                matched,
                strict,
                reply,
            } => {
                let gone = self.rules.delete(table, &matched, strict);
                let n = gone.len();
                self.rules_changed(gone, reply, n);
            }
            Request::PortState { port, up, reply } => {
                let mut ops = Vec::new();
                if up {
                    self.macs.add_port(port);
                } else {
                    for mac in self.macs.remove_port(port) {
                        self.mac_changed(mac, None, &mut ops);
                    }
                }
                // Flooding and outputs depend on the port set: everything.
                let all = self.registry.ufids();
                self.revalidate(all, &mut ops);
                self.apply(ops);
                self.barrier(reply, 0);
            }
            Request::Sync(reply) => self.barrier(reply, 0),
            Request::SetOffload(on, reply) => {
                if self.datapaths.offload.is_none() {
                    let _ = reply.send(Err("offload is hybrid mode's (datapath = \"hybrid\")".into()));
                    return;
                }
                let back = self.set_offload(on);
                self.barrier(reply, back);
            }
            Request::KernelMarks(reply) => {
                let _ = reply.send(self.kernel_marks());
            }
            Request::Underlay { changes, reload } => self.underlay_changed(changes, reload, Instant::now()),
            Request::TunnelRoutes(reply) => {
                let _ = reply.send(self.tunnels.view.routes_text());
            }
            Request::TunnelNeighbours(reply) => {
                let _ = reply.send(self.tunnels.view.neighbours_text());
            }
            Request::TunnelShow(reply) => {
                let _ = reply.send(self.tunnels.show_text());
            }
            Request::DumpRules(reply) => {
                let mut rules: Vec<&Rule> = self.rules.iter().collect();
                rules.sort_by_key(|r| (r.table, std::cmp::Reverse(r.priority), r.seq));
                let text: String = rules.iter().map(|r| format!(" {}\n", ofctl::format_rule(r))).collect();
                let _ = reply.send(text);
            }
            Request::Trace(key, reply) => {
                let _ = reply.send(trace_text_with(&self.rules, &self.tunnels, &key, &mut self.macs));
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
}
