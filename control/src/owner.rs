//! The driver of the owner core: who calls it, and who carries out what
//! it decides.
//!
//! # What
//! [`Owner`] holds the core ([`crate::core::Core`]) behind one lock and
//! the datapath's backend ([`crate::backend`]) behind another, with what
//! the core's operations need beside the datapaths: the socket that asks
//! the kernel to resolve next hops, the underlay ports whose XDP filters
//! take VTEP addresses, and the reply channels of the changes waiting to
//! be answered.
//!
//! Every caller goes through [`Owner::decide`]: take the core's lock,
//! let it decide, release the lock, then carry out its operations
//! ([`Owner::drain`]). So the core is never held while a datapath is
//! called: a netlink round trip, a BPF map update or a channel send never
//! delays another thread's decision.
//!
//! # Order
//! Operations leave the core in the order it decided them, and one thread
//! at a time carries them out, in that order, under the executor's lock:
//! the one that holds it drains the outbox, hands each batch's feedback
//! back to the core (which may decide more), and goes on until the outbox
//! is empty. A thread that decided while another drains waits for the lock
//! and finds its operations done. The lock order is always executor, then
//! core; nobody holding the core waits for the executor.
//!
//! # Threads
//! * The owner thread ([`run`]): PMD misses, requests from control, the
//!   PMDs' reports, the kernel's dumps, and the tick (sweeps, aging,
//!   offload rounds), all as data over channels.
//! * In kernel and hybrid mode, the kernel's upcall handlers call
//!   [`Owner::decide`] from their own threads ([`OwnerSink`]): a first
//!   packet waits for no other thread to wake up.
//! * Control threads (the control socket, the link watch, the underlay
//!   monitor) call [`Owner::change`], [`Owner::query`] and
//!   [`Owner::underlay_changed`] from their own threads too.

use crate::backend::Backend;
use crate::core::counters::TunnelCounters;
use crate::core::groups::GroupOp;
use crate::core::meters::MeterOp;
use crate::core::registry::Usage;
use crate::core::translate::Trace;
use crate::core::underlay::{NeighbourRow, RouteRow};
use crate::core::{Change, Core, Op, Packet, Ticket, SWEEP_INTERVAL};
use crossbeam_channel::{select, Receiver, Sender};
use odpx_classifier::flow_op::Ufid;
use odpx_classifier::key::FlowKey;
use odpx_classifier::rules::group::Group;
use odpx_classifier::rules::meter::Meter;
use odpx_classifier::rules::Rule;
use odpx_dataplane::pmd::{PmdReport, PortTable};
use odpx_dataplane::upcalls::UpcallReceiver;
use odpx_offload::kernel::{DumpReport, KernelUpcall, UpcallSink};
use odpx_offload::rtnl::{Change as UnderlayChange, Rtnl};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// A question about the owner's state, answered at once.
#[derive(Clone, Debug)]
pub enum Query {
    Rules,
    /// One group (or every one, `ALL_GROUPS`), with counters and references.
    Groups(u32),
    Trace(Box<FlowKey>),
    MacTable,
    TunnelRoutes,
    TunnelNeighbours,
    /// Each kernel-held megaflow's offload mark and what it carried over.
    KernelMarks,
}

/// A learned MAC address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MacEntry {
    pub port: u32,
    pub vlan: u16,
    pub mac: String,
    pub age_seconds: u64,
}

/// The answer to a [`Query`].
#[derive(Clone, Debug)]
pub enum Answer {
    /// Every rule with its counters.
    Rules(Vec<(Rule, crate::core::rules::RuleStats)>),
    /// Groups with their counters and how many rules send packets to each.
    Groups(Vec<(Group, crate::core::groups::GroupStats, usize)>),
    Trace(Box<Trace>),
    MacTable(Vec<MacEntry>),
    Routes(Vec<RouteRow>),
    Neighbours(Vec<NeighbourRow>),
    KernelMarks(Vec<(Ufid, bool, Usage)>),
}

/// What the owner tells its subscribers ([`Owner::subscribe`]: the
/// OpenFlow agent) as it happens.
#[derive(Clone, Debug)]
pub enum Event {
    /// Rules that asked to be reported went (FLOW_REMOVED).
    RulesRemoved(Vec<crate::core::rules::RemovedRule>),
}

/// What the core's operations need besides the datapaths: the underlay
/// ports' filters and MTUs, and the socket that asks the kernel to resolve
/// a next hop.
pub struct UnderlayIo {
    pub ports: PortTable,
    pub rtnl: Option<Rtnl>,
    pub counters: Arc<TunnelCounters>,
    /// The VTEPs the filters accept now.
    vteps: HashSet<(IpAddr, u16)>,
}

impl UnderlayIo {
    pub fn new(ports: PortTable, rtnl: Option<Rtnl>, counters: Arc<TunnelCounters>) -> UnderlayIo {
        UnderlayIo {
            ports,
            rtnl,
            counters,
            vteps: HashSet::new(),
        }
    }

    /// Nothing to do (tests of the core alone, pure kernel mode).
    pub fn none() -> UnderlayIo {
        UnderlayIo::new(Arc::new(Vec::new()), None, Arc::new(TunnelCounters::default()))
    }

    fn resolve(&mut self, ifindex: u32, addr: IpAddr) {
        if let Some(r) = self.rtnl.as_mut() {
            if r.resolve(ifindex, addr).is_err() {
                odpx_classifier::counters::add_shared(&self.counters.neigh_request_errors, 1);
            }
        }
    }

    fn set(&mut self, vteps: Vec<(IpAddr, u16)>, mtus: Vec<(u32, u32)>) {
        let want: HashSet<(IpAddr, u16)> = vteps.into_iter().collect();
        for (no, mtu) in mtus {
            if let Some(Some(p)) = self.ports.get(no as usize) {
                p.mtu.store(mtu, std::sync::atomic::Ordering::Relaxed);
            }
        }
        for p in self.ports.iter().flatten() {
            let Some(maps) = p.vteps() else { continue };
            for &(a, port) in want.difference(&self.vteps) {
                let _ = maps.add(a, port);
            }
            for &(a, port) in self.vteps.difference(&want) {
                let _ = maps.remove(a, port);
            }
        }
        self.vteps = want;
    }
}

/// Who carries out the core's operations.
struct Executor {
    backend: Box<dyn Backend>,
    underlay: UnderlayIo,
}

/// The owner: the core and its executor (see the module documentation).
pub struct Owner {
    core: Mutex<Core>,
    exec: Mutex<Executor>,
    replies: Mutex<HashMap<Ticket, Sender<Result<usize, String>>>>,
    next_ticket: AtomicU64,
    subscribers: Mutex<Vec<Sender<Event>>>,
}

/// Takes a lock; a thread that panicked holding it left its value as it
/// was between two calls: go on with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Owner {
    pub fn new(core: Core, backend: Box<dyn Backend>, underlay: UnderlayIo) -> Arc<Owner> {
        let o = Arc::new(Owner {
            core: Mutex::new(core),
            exec: Mutex::new(Executor { backend, underlay }),
            replies: Mutex::new(HashMap::new()),
            next_ticket: AtomicU64::new(1),
            subscribers: Mutex::new(Vec::new()),
        });
        o.drain();
        o
    }

    /// Lets the core decide, then carries out what it decided.
    pub fn decide<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let r = f(&mut lock(&self.core));
        self.drain();
        r
    }

    /// Events from now on ([`Event`]); a subscriber that goes away is
    /// dropped.
    pub fn subscribe(&self) -> Receiver<Event> {
        let (tx, rx) = crossbeam_channel::unbounded();
        lock(&self.subscribers).push(tx);
        rx
    }

    fn notify(&self, e: Event) {
        lock(&self.subscribers).retain(|tx| tx.send(e.clone()).is_ok());
    }

    /// Why the datapath cannot run `m`, if it cannot (checked before the
    /// core sees a meter change).
    pub fn refuses_meter(&self, m: &Meter) -> Option<String> {
        lock(&self.exec).backend.refuses_meter(m)
    }

    /// Reads the core (a query: nothing is decided).
    pub fn read<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        f(&mut lock(&self.core))
    }

    /// Starts a change; `reply` gets the answer once every datapath
    /// agrees. A change the datapath cannot carry out at all is refused
    /// whole, before the core sees it.
    pub fn change(&self, c: Change, reply: Sender<Result<usize, String>>) {
        if let Change::AddRules(rules) = &c {
            let refused = {
                let exec = lock(&self.exec);
                rules.iter().find_map(|r| exec.backend.refuses(r))
            };
            if let Some(e) = refused {
                let _ = reply.send(Err(format!("{e}; no rules added")));
                return;
            }
        }
        if let Change::Group(GroupOp::Add(g) | GroupOp::Modify(g)) = &c {
            if let Some(e) = lock(&self.exec).backend.refuses_group(g) {
                let _ = reply.send(Err(format!("{e}; nothing changed")));
                return;
            }
        }
        if let Change::Meter(MeterOp::Add(m) | MeterOp::Modify(m)) = &c {
            if let Some(e) = self.refuses_meter(m) {
                let _ = reply.send(Err(format!("{e}; nothing changed")));
                return;
            }
        }
        let ticket = Ticket(self.next_ticket.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        lock(&self.replies).insert(ticket, reply);
        self.decide(|core| core.change(c, ticket, Instant::now()));
    }

    /// A change, and its answer once every datapath agrees (or an error
    /// after `wait`).
    pub fn change_and_wait(&self, c: Change, wait: Duration) -> Result<usize, String> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.change(c, tx);
        rx.recv_timeout(wait)
            .map_err(|_| format!("the datapaths did not agree within {} s", wait.as_secs()))?
    }

    /// The kernel's interfaces, addresses, routes or neighbours changed
    /// (`reload`: a full dump after lost notifications, replacing all).
    pub fn underlay_changed(&self, changes: Vec<UnderlayChange>, reload: bool) {
        self.decide(|core| core.underlay_changed(changes, reload, Instant::now()));
    }

    /// Answers a query from the core's state.
    pub fn query(&self, q: Query) -> Answer {
        let now = Instant::now();
        self.read(|core| match q {
            Query::Rules => Answer::Rules(core.select_rules(&odpx_classifier::rules::Selector::all(None))),
            Query::Groups(id) => Answer::Groups(
                core.groups(id)
                    .into_iter()
                    .map(|(g, s)| {
                        let refs = core.group_references(g.id);
                        (g, s, refs)
                    })
                    .collect(),
            ),
            Query::Trace(key) => Answer::Trace(Box::new(core.trace(&key))),
            Query::MacTable => Answer::MacTable(
                core.mac_table(now)
                    .into_iter()
                    .map(|(vlan, mac, port, age)| MacEntry {
                        port,
                        vlan,
                        mac: odpx_classifier::text::fmt_mac(&mac),
                        age_seconds: age.as_secs(),
                    })
                    .collect(),
            ),
            Query::TunnelRoutes => Answer::Routes(core.underlay().route_rows()),
            Query::TunnelNeighbours => Answer::Neighbours(core.underlay().neighbour_rows()),
            Query::KernelMarks => Answer::KernelMarks(core.kernel_marks()),
        })
    }

    /// Carries out every operation the core decided, in order (see the
    /// module documentation).
    pub fn drain(&self) {
        let mut exec = lock(&self.exec);
        loop {
            let ops = lock(&self.core).take_ops();
            if ops.is_empty() {
                return;
            }
            let feedback = self.execute(&mut exec, ops);
            if !feedback.is_empty() {
                lock(&self.core).feedback(feedback);
            }
        }
    }

    /// Runs one batch: the backend's operations in runs, the others here,
    /// in order.
    fn execute(&self, exec: &mut Executor, ops: Vec<Op>) -> Vec<crate::core::Feedback> {
        let mut feedback = Vec::new();
        let mut run = Vec::new();
        for op in ops {
            match op {
                Op::Reply { ticket, result } => {
                    exec.backend.execute(std::mem::take(&mut run), &mut feedback);
                    if let Some(tx) = lock(&self.replies).remove(&ticket) {
                        let _ = tx.send(result);
                    }
                }
                Op::ResolveNeighbour { ifindex, addr } => exec.underlay.resolve(ifindex, addr),
                Op::RulesRemoved(rules) => self.notify(Event::RulesRemoved(rules)),
                Op::Underlay { vteps, mtus } => exec.underlay.set(vteps, mtus),
                other => run.push(other),
            }
        }
        exec.backend.execute(run, &mut feedback);
        feedback
    }
}

/// Where the kernel's upcall handlers hand their batches: misses to the
/// owner, from the handler's thread (weak: the handlers must not keep a
/// stopped owner alive); `userspace()` actions' packets to the OpenFlow
/// agent's queue.
pub struct OwnerSink(pub Weak<Owner>, pub odpx_dataplane::upcalls::UserspaceSender);

impl UpcallSink for OwnerSink {
    fn userspace(&self, userdata: Vec<u8>, packet: Vec<u8>) {
        self.1.send(&userdata, &packet);
    }

    fn upcalls(&self, batch: Vec<KernelUpcall>) {
        let Some(owner) = self.0.upgrade() else { return };
        let now = Instant::now();
        owner.decide(|core| {
            for u in batch {
                core.upcall(
                    &u.key,
                    Packet::Kernel {
                        key_raw: u.key_raw,
                        bytes: u.packet,
                    },
                    now,
                );
            }
        });
    }
}

/// The channels the owner thread serves (`never()` for those a datapath
/// does not use).
pub struct Inputs {
    pub upcalls: UpcallReceiver,
    pub pmd_reports: Receiver<PmdReport>,
    pub kernel_dumps: Receiver<DumpReport>,
    /// Closed (or sent to) when the thread is to stop.
    pub stop: Receiver<()>,
}

/// PMD misses answered under one taking of the lock, at most.
const UPCALL_BATCH: usize = 64;

/// How often the owner thread ticks (sweeps, aging, parked packets,
/// offload rounds are due on multiples of it).
pub const TICK: Duration = Duration::from_millis(SWEEP_INTERVAL.as_millis() as u64 / 5);

/// The owner thread: serves misses, reports and the tick until told to
/// stop.
pub fn run(owner: Arc<Owner>, mut inputs: Inputs) {
    let tick = crossbeam_channel::tick(TICK);
    let mut batch = Vec::with_capacity(UPCALL_BATCH);
    loop {
        select! {
            recv(inputs.upcalls.doorbell()) -> _ => {
                // One round over the ports' queues (a flood on one port
                // gets its turn, not the whole batch), under one lock.
                batch.clear();
                inputs.upcalls.take(UPCALL_BATCH, &mut batch);
                if !batch.is_empty() {
                    let now = Instant::now();
                    owner.decide(|core| {
                        for u in batch.drain(..) {
                            let packet = Packet::Pmd { pmd: u.pmd, in_port: u.in_port, bytes: u.packet };
                            core.upcall(&u.key, packet, now);
                        }
                    });
                }
            }
            recv(inputs.pmd_reports) -> r => {
                if let Ok(r) = r {
                    owner.decide(|core| core.pmd_report(r, Instant::now()));
                }
            }
            recv(inputs.kernel_dumps) -> r => {
                if let Ok(r) = r {
                    owner.decide(|core| core.kernel_dump(r, Instant::now()));
                }
            }
            recv(inputs.stop) -> _ => return,
            recv(tick) -> _ => owner.decide(|core| core.tick(Instant::now())),
        }
    }
}
