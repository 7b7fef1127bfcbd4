//! The owner core: one owner for every megaflow's life, free of I/O.
//!
//! # What
//! The core owns the rule tables, the MAC table, the registry of every
//! installed megaflow, the flow limit, the tunnels' view of the underlay
//! and, in hybrid mode, the offload policy. It takes in
//! * misses ([`Core::upcall`]): it translates them, learns from them,
//!   registers their megaflow and answers them;
//! * changes ([`Core::change`]): rules added or deleted, a port down or
//!   up, offload on or off, or just "sync"; each is answered once every
//!   datapath agrees with it;
//! * what the datapaths report: sweeps of the PMDs ([`Core::pmd_report`]),
//!   dumps of the kernel ([`Core::kernel_dump`]), and the feedback of the
//!   operations it asked for ([`Core::feedback`]);
//! * the underlay's changes ([`Core::underlay_changed`]) and the time
//!   ([`Core::tick`]: sweeps, MAC aging, parked packets, offload rounds);
//!
//! and decides flow operations: install, modify, delete, offload, steer,
//! evict. Each decision is an [`Op`] appended to the core's outbox
//! ([`Core::take_ops`]), for the driver ([`crate::owner`]) to carry out
//! through the datapath's backend ([`crate::backend`]).
//!
//! # No I/O
//! The core never calls the kernel, a socket, a channel or the clock:
//! time comes in as `now`, packets and reports as values, and everything
//! it wants done goes out as [`Op`]s. It can be driven step by step with
//! plain values and a made-up clock, and it never waits for a datapath
//! while it decides (so netlink is never called under its lock).
//!
//! It does not know which datapath mode it runs in. It knows how many
//! PMDs answer barriers and sweeps and whether a kernel datapath holds
//! megaflows ([`Holders`]); the megaflow's holder rides along with each
//! operation, and the backend of the mode carries it out. Hybrid mode's
//! offload is a component ([`offload`]) present when configured.
//!
//! # Rooms
//! * [`translate`]: the one translation every path uses, NORMAL's view of
//!   the MAC table, and traces;
//! * [`admit`]: answering misses, the flow limit; [`inject`]: packets a
//!   controller sends; [`learn`]: the rules `learn` actions make;
//! * [`revalidate`]: what a rule, MAC, port or underlay change does to
//!   the installed megaflows (the verdicts);
//! * [`sweep`]: idle expiry and statistics from the datapaths, barriers;
//! * [`kernel`]: the kernel's answers (refusals) and the adoption of a
//!   previous run's kernel flows;
//! * [`offload`]: hybrid mode's moves of hot megaflows into the kernel;
//! * [`rules`]: the rule tables as OpenFlow defines them (FLOW_MOD's
//!   commands, per-rule counters, timeouts); [`groups`]: the group table
//!   (GROUP_MOD's commands, group counters); [`meters`]: the meter table
//!   (METER_MOD's commands, meter counters); [`fail_open`]: NORMAL in
//!   their stead while a standalone switch has lost its controllers;
//! * its state: [`registry`], [`mac`], [`limits`], [`tunnels`],
//!   [`underlay`], and its [`counters`].
//!
//! # Invariants
//! * The registry holds exactly the megaflows the datapaths hold once the
//!   outbox is carried out (see [`registry`]).
//! * A change is answered ([`Op::Reply`]) only after the operations it
//!   caused, and, when PMDs hold megaflows, after every PMD answered a
//!   barrier sent after them.
//! * For every installed megaflow whose translation runs NORMAL, the MAC
//!   table already says what its packets would teach it (see
//!   [`revalidate`]).
//!
//! # Threads
//! The core is one value behind one lock ([`crate::owner::Owner`]); who
//! holds the lock may call it. Its counters are atomics that snapshots
//! read without the lock.

pub mod admit;
pub mod counters;
pub mod effects;
pub mod fail_open;
pub mod groups;
pub mod inject;
pub mod kernel;
pub mod learn;
pub mod limits;
pub mod mac;
pub mod meters;
pub mod offload;
pub mod registry;
pub mod revalidate;
pub mod rules;
pub mod sweep;
pub mod translate;
pub mod tunnels;
pub mod underlay;

pub use self::effects::{Feedback, Mark, Move, Op, Packet, Ticket};

use self::counters::{OwnerCounters, Reasons};
use self::groups::{GroupCounters, GroupOp};
use self::limits::FlowLimiter;
use self::mac::MacTable;
use self::meters::{MeterCounters, MeterOp};
use self::offload::Offload;
use self::registry::Registry;
use self::rules::{RuleCounters, RuleOp, N_TABLES};
use self::sweep::{Barrier, Sweep};
use self::tunnels::Tunnels;
use odpx_classifier::counters::add_shared;
use odpx_classifier::key::Match;
use odpx_classifier::rules::{Rule, RuleSet, Selector};
use odpx_classifier::xlate::freeze::RecircStore;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the owner sweeps the datapaths.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// Above this many changed rules in one change, every megaflow is
/// revalidated instead of checking each against each rule.
pub const FULL_REVALIDATION_RULES: usize = 64;

/// How long a MAC address is remembered without traffic.
pub const MAC_AGING: Duration = Duration::from_secs(300);

/// MAC addresses remembered at most.
pub const MAC_CAPACITY: usize = 65536;

/// The datapaths that hold megaflows: how many PMDs (each answers
/// barriers and sweeps) and whether the kernel datapath does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holders {
    pub pmds: usize,
    pub kernel: bool,
}

/// A change, answered once every datapath agrees with it.
#[derive(Clone, Debug)]
pub enum Change {
    /// Adds rules (all or none: they were parsed beforehand); answered
    /// with how many.
    AddRules(Vec<Rule>),
    /// Deletes rules like `ovs-ofctl del-flows`: every rule whose match
    /// lies within `matched` or, with `strict`, the rules of exactly this
    /// match and priority; answered with how many.
    DelRules {
        table: Option<u8>,
        matched: Box<Match>,
        strict: Option<u16>,
    },
    /// A port's link went (`up: false`) or came back.
    PortState { port: u32, up: bool },
    /// A port's OpenFlow NO_RECV and NO_FWD bits (PORT_MOD).
    PortConfig { port: u32, no_recv: bool, no_fwd: bool },
    /// One group-table change (`odpx ctl add-group` and kin): answered
    /// with how many groups it touched, or why it was refused.
    Group(GroupOp),
    /// One meter-table change (`odpx ctl add-meter` and kin): answered
    /// with how many meters it touched, or why it was refused.
    Meter(MeterOp),
    /// Nothing: answered once everything decided before is in force.
    Sync,
    /// Hybrid mode: offload on or off (off brings every kernel-held
    /// megaflow back); answered with how many came back.
    SetOffload(bool),
    /// Fail-open begins (NORMAL switching in the rule tables' stead) or
    /// ends ([`fail_open`]); answered with 1 if that changed anything.
    FailOpen(bool),
    /// Adds the rules `learn` actions made, as a packet teaching them
    /// would (`trace --generate`); answered with how many.
    Learn(Vec<Rule>),
    /// Fresh statistics: answered once a sweep sent after it came back,
    /// so that rule, table and megaflow counters include every packet the
    /// datapaths carried before it (OpenFlow's statistics requests).
    Refresh,
}

/// What the core is made of at start.
pub struct CoreConfig {
    pub rules: RuleSet,
    /// The switched ports (flooded, learned on).
    pub ports: Vec<u32>,
    pub holders: Holders,
    pub megaflow_limit: usize,
    pub idle_timeout: Duration,
    pub tunnels: Tunnels,
    /// Hybrid mode's offload.
    pub offload: Option<Offload>,
}

/// The owner core (see the module documentation).
pub struct Core {
    rules: RuleSet,
    /// While fail-open holds, what packets see instead of `rules`.
    fail_open: Option<RuleSet>,
    /// Each rule's and table's counters ([`rules`]).
    rule_counters: RuleCounters,
    /// Each group's and bucket's counters ([`groups`]).
    group_counters: GroupCounters,
    /// Each meter's and band's counters ([`meters`]).
    meter_counters: MeterCounters,
    macs: MacTable,
    /// Translations frozen for recirculation, by id (see
    /// `odpx_classifier::xlate::freeze`).
    recirc: RecircStore,
    registry: Registry,
    /// Megaflows deleted from PMDs whose final statistics are still due
    /// ([`sweep::Tombstone`]).
    tombstones: hashbrown::HashMap<odpx_classifier::flow_op::Ufid, sweep::Tombstone>,
    limiter: FlowLimiter,
    /// Whether the flow limit turned an upcall away since the owner was
    /// last below it (logged on each change).
    at_flow_limit: bool,
    holders: Holders,
    sweep: Option<Sweep>,
    last_sweep: Instant,
    barriers: Vec<Barrier>,
    /// Operations that reach the PMDs, taken from the outbox so far, and
    /// how many of them the PMDs are known to have carried out (a barrier
    /// sent after them was answered): when the two agree, a barrier needs
    /// no round trip ([`sweep`]).
    pmd_ops: u64,
    pmd_synced: u64,
    /// [`Change::Refresh`]es answered when the sweep in progress is done,
    /// and those that need one sent after the one in progress.
    refresh_now: Vec<Ticket>,
    refresh_next: Vec<Ticket>,
    next_token: u64,
    /// Numbers installs (see [`registry::Record::install_seq`]).
    install_seq: u64,
    counters: Arc<OwnerCounters>,
    /// Kernel flow operations refused, by the kernel's reason.
    refusals: Arc<Reasons>,
    tunnels: Tunnels,
    offload: Option<Offload>,
    outbox: Vec<Op>,
}

impl Core {
    /// A core that starts at `now`.
    pub fn new(cfg: CoreConfig, now: Instant) -> Core {
        let mut c = Core {
            rule_counters: RuleCounters::for_rules(cfg.rules.iter(), now),
            group_counters: GroupCounters::for_groups(cfg.rules.groups().iter(), now),
            meter_counters: MeterCounters::for_meters(cfg.rules.meters().iter(), now),
            rules: cfg.rules,
            fail_open: None,
            macs: MacTable::new(cfg.ports, MAC_AGING, MAC_CAPACITY),
            recirc: RecircStore::default(),
            registry: Registry::new(),
            tombstones: hashbrown::HashMap::new(),
            limiter: FlowLimiter::new(cfg.megaflow_limit, cfg.idle_timeout),
            at_flow_limit: false,
            holders: cfg.holders,
            sweep: None,
            last_sweep: now,
            barriers: Vec::new(),
            pmd_ops: 0,
            pmd_synced: 0,
            refresh_now: Vec::new(),
            refresh_next: Vec::new(),
            next_token: 1,
            install_seq: 0,
            counters: Arc::new(OwnerCounters::default()),
            refusals: Arc::new(Reasons::default()),
            tunnels: cfg.tunnels,
            offload: cfg.offload,
            outbox: Vec::new(),
        };
        c.send_meters();
        c.tell_underlay();
        c.publish_gauges();
        c
    }

    /// The operations decided since the last call, in order.
    pub fn take_ops(&mut self) -> Vec<Op> {
        self.pmd_ops += self.outbox.iter().filter(|o| o.reaches_pmds()).count() as u64;
        std::mem::take(&mut self.outbox)
    }

    /// Whether operations wait in the outbox.
    pub fn has_ops(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Takes in a change at `now`; answers `ticket` once every datapath
    /// agrees.
    pub fn change(&mut self, c: Change, ticket: Ticket, now: Instant) {
        match c {
            Change::AddRules(rules) => {
                if let Some(r) = rules.iter().find(|r| r.table >= N_TABLES) {
                    let e = format!("table {} does not exist (tables 0 to {})", r.table, N_TABLES - 1);
                    self.outbox.push(Op::Reply { ticket, result: Err(e) });
                    return;
                }
                if let Some(Err(e)) = rules.iter().map(|r| self.named_exist(&r.actions)).find(Result::is_err) {
                    let e = match e {
                        rules::RuleOpError::UnknownGroup(g) => format!("group {g} does not exist; no rules added"),
                        rules::RuleOpError::UnknownMeter(m) => format!("meter {m} does not exist; no rules added"),
                        other => format!("{other:?}"),
                    };
                    self.outbox.push(Op::Reply { ticket, result: Err(e) });
                    return;
                }
                let n = rules.len();
                self.rule_ops(rules.into_iter().map(RuleOp::Add).collect(), now);
                self.barrier(ticket, Ok(n));
            }
            Change::DelRules { table, matched, strict } => {
                let sel = Selector::matching(table, *matched, strict);
                let n = self.rule_ops(vec![RuleOp::Delete { sel }], now)[0].unwrap_or(0);
                self.barrier(ticket, Ok(n));
            }
            Change::PortState { port, up } => {
                self.port_state(port, up);
                self.barrier(ticket, Ok(0));
            }
            Change::PortConfig { port, no_recv, no_fwd } => {
                if self.macs.set_port_config(port, no_recv, no_fwd) {
                    let all = self.registry.ufids();
                    self.revalidate(all);
                }
                self.barrier(ticket, Ok(0));
            }
            Change::Group(op) => match self.group_ops(vec![op], now).remove(0) {
                Ok(n) => self.barrier(ticket, Ok(n)),
                Err(e) => self.outbox.push(Op::Reply {
                    ticket,
                    result: Err(format!("{e}; nothing changed")),
                }),
            },
            Change::Meter(op) => match self.meter_ops(vec![op], now).remove(0) {
                Ok(n) => self.barrier(ticket, Ok(n)),
                Err(e) => self.outbox.push(Op::Reply {
                    ticket,
                    result: Err(format!("{e}; nothing changed")),
                }),
            },
            Change::Sync => self.barrier(ticket, Ok(0)),
            Change::SetOffload(on) => match self.set_offload(on) {
                Ok(back) => self.barrier(ticket, Ok(back)),
                Err(e) => self.outbox.push(Op::Reply { ticket, result: Err(e) }),
            },
            Change::FailOpen(open) => {
                let changed = self.set_fail_open(open);
                self.barrier(ticket, Ok(usize::from(changed)));
            }
            Change::Learn(rules) => {
                let n = rules.len();
                self.learn(rules, now);
                self.barrier(ticket, Ok(n));
            }
            Change::Refresh => self.refresh(ticket, now),
        }
    }

    /// The next token for a barrier or a sweep.
    fn token(&mut self) -> u64 {
        let t = self.next_token;
        self.next_token += 1;
        t
    }

    /// The number of megaflows the owner knows of.
    pub fn megaflows(&self) -> usize {
        self.registry.len()
    }

    /// The rules, as `dump-flows` lists them (by table, then priority,
    /// highest first, then age).
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules: Vec<Rule> = self.rules.iter().cloned().collect();
        rules.sort_by_key(|r| (r.table, std::cmp::Reverse(r.priority), r.seq));
        rules
    }

    /// The learned MAC addresses: (VLAN, MAC, port, age).
    pub fn mac_table(&self, now: Instant) -> Vec<(u16, [u8; 6], u32, Duration)> {
        self.macs.dump(now)
    }

    /// The underlay as the tunnels see it.
    pub fn underlay(&self) -> &underlay::UnderlayView {
        &self.tunnels.view
    }

    /// The (address, UDP port) pairs the underlay filters accept.
    pub fn vteps(&self) -> Vec<(std::net::IpAddr, u16)> {
        self.tunnels.vteps()
    }

    pub fn counters(&self) -> Arc<OwnerCounters> {
        self.counters.clone()
    }

    /// The kernel's refusals by reason.
    pub fn refusals(&self) -> Arc<Reasons> {
        self.refusals.clone()
    }

    pub fn tunnel_counters(&self) -> Arc<counters::TunnelCounters> {
        self.tunnels.counters.clone()
    }

    /// Hybrid mode's offload counters and refusals.
    pub fn offload_counters(&self) -> Option<(Arc<counters::OffloadCounters>, Arc<Reasons>)> {
        self.offload.as_ref().map(|o| (o.counters.clone(), o.refusals.clone()))
    }

    /// Reports rules that went and asked for it (FLOW_REMOVED).
    fn rules_removed(&mut self, removed: Vec<rules::RemovedRule>) {
        if !removed.is_empty() {
            self.outbox.push(Op::RulesRemoved(removed));
        }
    }

    fn publish_gauges(&self) {
        let c = &self.counters;
        let n = self.registry.len();
        c.megaflows.store(n as u64, Ordering::Relaxed);
        c.flow_limit.store(self.limiter.limit() as u64, Ordering::Relaxed);
        c.idle_timeout_ms
            .store(self.limiter.max_idle(n).as_millis() as u64, Ordering::Relaxed);
        if let Some(o) = &self.offload {
            o.publish(self.registry.offloaded());
        }
    }
}

/// Adds to one of the core's counters.
fn add(c: &AtomicU64, n: u64) {
    add_shared(c, n);
}
