//! PMD threads: poll receive queues, classify in batches, run actions.
//!
//! # What
//! A PMD ("poll mode driver") thread is pinned to a core and loops over its
//! receive queues. Per batch of up to 32 packets it extracts all the flow
//! keys first, then looks the batch up in its exact-match cache, reads the
//! megaflow slot of every hit, and only then checks and uses them: live,
//! the kernel's transmit work between batches evicts these cache lines, and
//! loading a whole batch's before using any keeps their misses in flight
//! together instead of one after another. It then
//! sends the misses to its megaflow cache as one batch, runs the actions of
//! every hit, and transmits what the actions output, staged per port and
//! sent with one kick per port. A megaflow holds its actions as an
//! [`exec::Program`](crate::exec::Program), made when it is installed: the
//! values its sets write sit in the megaflow's own slot, so a hit does not
//! chase the action list through the heap.
//! A packet that misses both caches is an *upcall*: it goes, with its key
//! and bytes, to the slow path over a bounded channel. Where the EMC costs
//! more than it saves (few megaflows, or many more flows than entries),
//! the PMD classifies straight on the megaflows, having measured both ways
//! on the same traffic ([`crate::emc_policy`]).
//!
//! # Recirculation (tunnel decapsulation)
//! `tnl_pop` leaves the inner packet where it was, in its buffer. The PMD
//! finds the VXLAN port that receives it ([`crate::tunnel::Receivers`])
//! and moves the buffer, by swapping two pointers, into the PMD's second
//! batch with that port as `in_port` and the outer headers as tunnel
//! metadata. Once the first batch is done (outputs sent), the second runs
//! through the very same batch code: key extraction (then the tunnel
//! fields), EMC, megaflows, upcalls, actions. Its pops go back to the first
//! batch, and so on, up to [`MAX_RECIRC_DEPTH`] passes. Encapsulation
//! needs no second pass: the translator resolved route and neighbour, and
//! `tnl_push` outputs to the underlay port directly.
//!
//! # The slow path's door
//! The translator (in `odpx-control`) answers an upcall with a
//! [`PmdMsg::Install`]: the megaflow with its UFID, its actions, and the
//! packet, which the PMD executes as it installs the megaflow, so a miss is
//! never lost. When the upcall channel is full the
//! packet is dropped and counted as a lost upcall (the queue bounds the
//! slow path's memory and latency; OVS's kernel datapath does the same when
//! its netlink socket overflows).
//!
//! # Rooms
//! * this module: the thread, its configuration, the poll loop and the
//!   background slice;
//! * [`classify`]: batch classification, one lookup path for a batch of
//!   any size, upcalls, recirculation;
//! * [`output`]: running actions, staging and sending, tunnel tallies;
//! * [`messages`]: what control and a PMD tell each other, and how the
//!   owner's decisions are carried out;
//! * [`sweep`]: the owner's periodic round, in slices;
//! * [`counters`]: the PMD's counters, defined once;
//! * [`clock`]: the PMD's time source, injected ([`ManualClock`] in tests).
//!
//! # Ownership
//! Each PMD owns its caches outright: no locks around lookups. Control
//! reads them only through messages ([`PmdMsg::Dump`]). Counters are
//! relaxed atomics ([`PmdCounters`]) written by the PMD alone, including
//! TSC cycles per stage (receive, classify, actions, transmit), four
//! readings per batch.
//!
//! # Lifecycle of megaflows here: the PMD holds, the owner decides
//! Every megaflow has a [`Ufid`] and a life decided by one owner, the
//! revalidator on the translator thread. The PMD only carries decisions
//! out, all of them data ([`FlowOp`]): install, replace the actions in
//! place (the EMC keeps pointing at the same slot, so its entries stay
//! right), delete (the slot's generation changes, so EMC entries that
//! pointed at it miss). It never removes a megaflow by itself.
//! * [`PmdMsg::Sweep`]: the owner's periodic round. The PMD deletes the
//!   megaflows idle longer than the owner's (dynamic) idle timeout and
//!   answers with a [`PmdReport::Swept`]: the UFIDs and final statistics of
//!   those, and the statistics of every megaflow used since the previous
//!   sweep (the owner refreshes MAC learning and its records from them).
//! * [`PmdMsg::Barrier`]: answered with [`PmdReport::Barrier`] once every
//!   message sent before it has been applied; a rule change returns to its
//!   caller only after every PMD answered its barrier, so no batch after
//!   that runs an old decision.
//! * An install the cache refuses (its hard flow limit) executes the packet
//!   and is reported ([`PmdReport::NotInstalled`]), so the owner's registry
//!   stays exactly what the PMD holds.
//!
//! Reports go to the owner over an unbounded channel: the PMD never blocks
//! on the slow path.
//!
//! # Established traffic first: background work in slices
//! Everything that is not a received batch (the owner's messages, a
//! sweep) is *background work*, done between passes over the receive
//! queues: at least a batch of messages, then for at most
//! [`BACKGROUND_SLICE`] a pass; what is left waits for
//! the next pass, and a PMD with work left does not sleep. Under a flood of
//! new flows the owner sends installs by the thousand and a sweep walks
//! and expires a hundred thousand megaflows: done in one go, that stopped
//! reception for up to 100 ms, long enough for the kernel to run out of
//! receive frames and drop the established flows' packets with the
//! flood's (measured with `tools/flood-bench.sh`). A sweep is therefore a
//! walk over the cache's slots that stops when its slice is spent and
//! resumes at the same slot ([`SweepWalk`]); messages are taken one at a
//! time, alternating with sweep steps, and in order (a barrier still
//! follows everything sent before it).

pub mod classify;
pub mod clock;
pub mod counters;
pub mod messages;
pub mod output;
pub mod sweep;

pub use self::clock::{ManualClock, PmdClock, TscClock};
pub use self::counters::{PmdCounters, PmdSnapshot};
pub use self::messages::{FlowUse, MegaflowEntry, PmdMsg, PmdReport};
pub use crate::upcalls::Upcall;

use self::output::Output;
use self::sweep::SweepWalk;
use crate::emc_policy::EmcPolicy;
use crate::port::{Port, RxBatch, BATCH};
use crate::sys::time::cycles;
use crossbeam_channel::{Receiver, Sender};
use hashbrown::HashMap;
use odpx_classifier::counters::add_single_writer as add;
use odpx_classifier::emc::ExactMatchCache;
pub use odpx_classifier::flow_op::Actions;
use odpx_classifier::flow_op::Ufid;
use odpx_classifier::key::FlowKey;
use odpx_classifier::megaflow::{FlowRef, MegaflowCache};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Passes a packet may take through the classifier: the received one and
/// recirculations after decapsulation (Open vSwitch's limit). A packet
/// that would need more is dropped and counted.
pub const MAX_RECIRC_DEPTH: usize = 6;

#[derive(Clone, Debug)]
pub struct PmdConfig {
    pub id: usize,
    /// Core to pin to (`None`: not pinned).
    pub core: Option<usize>,
    /// (port number, queue) pairs this PMD polls.
    pub rxqs: Vec<(u32, usize)>,
    pub emc_entries: usize,
    /// EMC insertion probability is 1 / this.
    pub emc_insert_inv_prob: u32,
    /// Bypass the EMC while it costs more than it saves
    /// ([`crate::emc_policy`]); false probes it for every packet.
    pub emc_adaptive: bool,
    /// The cache's hard limit (the owner keeps below it).
    pub megaflow_limit: usize,
    /// After [`SPIN_BEFORE_WAIT`] without work, wait for frames up to
    /// this long instead of spinning (`None`: busy-poll always).
    pub idle_wait: Option<Duration>,
}

/// How long a PMD with `idle_wait` spins without work before it waits:
/// short, so that a trickle of packets costs CPU in proportion, not a
/// core (each wake-up is a syscall).
pub const SPIN_BEFORE_WAIT: Duration = Duration::from_micros(50);

/// The background work a PMD does per pass over its queues, at most,
/// once it took [`MESSAGES_PER_PASS`] messages (the message or sweep step
/// that crosses it finishes): see the module documentation. 100 µs is 15
/// packets at 150 kpps, against 4,096 frames in a socket's fill ring.
pub const BACKGROUND_SLICE: Duration = Duration::from_micros(100);

/// Messages a pass takes whatever the time (a batch's worth): the slice
/// bounds how long background work may hold the queues, not how little of
/// it is done. A PMD that took one message per pass when one took longer
/// than the slice (a slow machine: the test VM's emulated CPUs) fell
/// behind the owner by seconds, sweeps included.
const MESSAGES_PER_PASS: usize = BATCH;

/// How long it spins after sending an upcall: the owner's answer comes
/// within this, and a PMD that waited would add a wake-up to every first
/// packet's latency.
pub const SPIN_AFTER_UPCALL: Duration = Duration::from_millis(2);

/// The ports by number (index = port number; slot 0 unused).
pub type PortTable = Arc<Vec<Option<Arc<Port>>>>;

/// The way in to a PMD: its message channel and, for a PMD that waits
/// for frames when idle, the eventfd that wakes it for a message.
#[derive(Clone)]
pub struct PmdDoor {
    tx: Sender<PmdMsg>,
    waker: Option<Arc<crate::sys::fd::Waker>>,
}

impl PmdDoor {
    pub fn new(tx: Sender<PmdMsg>, waker: Option<Arc<crate::sys::fd::Waker>>) -> PmdDoor {
        PmdDoor { tx, waker }
    }

    /// Sends a message, and wakes the PMD if it waits.
    pub fn send(&self, m: PmdMsg) -> Result<(), crossbeam_channel::SendError<PmdMsg>> {
        self.tx.send(m)?;
        if let Some(w) = &self.waker {
            w.wake();
        }
        Ok(())
    }
}

impl From<Sender<PmdMsg>> for PmdDoor {
    fn from(tx: Sender<PmdMsg>) -> PmdDoor {
        PmdDoor { tx, waker: None }
    }
}

/// Control's handle on a running PMD.
pub struct PmdHandle {
    pub id: usize,
    pub core: Option<usize>,
    pub rxqs: Vec<(u32, usize)>,
    pub tx: PmdDoor,
    pub counters: Arc<PmdCounters>,
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl PmdHandle {
    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for PmdHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The channels a PMD talks to the slow path on.
pub struct SlowPath {
    /// Misses, to the translator: a bounded queue per input port (a full
    /// queue loses the upcall; [`crate::upcalls`]).
    pub upcalls: crate::upcalls::UpcallSender,
    /// Answers to the owner (sweeps, barriers, refused installs).
    pub reports: Sender<PmdReport>,
    /// Packets `userspace` actions hand up (packet-ins, for the OpenFlow
    /// agent; [`crate::upcalls::userspace_queue`]).
    pub to_userspace: crate::upcalls::UserspaceSender,
}

/// Starts a PMD thread.
pub fn spawn(cfg: PmdConfig, ports: PortTable, slow: SlowPath) -> PmdHandle {
    let (tx, rx) = crossbeam_channel::unbounded();
    let counters = Arc::new(PmdCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    // A PMD that waits when idle is woken for its messages; without an
    // eventfd it would see them only when the wait times out.
    let waker = cfg
        .idle_wait
        .and_then(|_| crate::sys::fd::Waker::new().ok())
        .map(Arc::new);
    let (c2, s2, cfg2, w2) = (counters.clone(), stop.clone(), cfg.clone(), waker.clone());
    let join = std::thread::Builder::new()
        .name(format!("pmd{}", cfg.id))
        .spawn(move || {
            if let Some(core) = cfg2.core {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
            }
            let mut pmd = Pmd::new(cfg2, ports, slow, rx, c2);
            pmd.waker = w2;
            pmd.run(&s2);
        })
        .expect("spawn PMD thread");
    PmdHandle {
        id: cfg.id,
        core: cfg.core,
        rxqs: cfg.rxqs,
        tx: PmdDoor::new(tx, waker),
        counters,
        stop,
        join: Some(join),
    }
}

/// A PMD's state; public so benchmarks can drive one without a thread.
pub struct Pmd {
    cfg: PmdConfig,
    ports: PortTable,
    emc: ExactMatchCache,
    /// Whether probing the EMC pays, measured batch by batch.
    emc_policy: EmcPolicy,
    mf: MegaflowCache<crate::exec::Program>,
    /// The installed megaflows by UFID (the owner names them so).
    by_ufid: HashMap<Ufid, FlowRef>,
    /// The UFID of the megaflow in each slot of `mf` (by slot index), for
    /// the sweep's walk over the slots.
    ufid_at: Vec<Ufid>,
    /// The sweep under way, if any.
    sweeping: Option<SweepWalk>,
    slow: SlowPath,
    msgs: Receiver<PmdMsg>,
    /// Rung by whoever sends a message (a PMD that waits when idle).
    waker: Option<Arc<crate::sys::fd::Waker>>,
    counters: Arc<PmdCounters>,
    /// The received batch and the recirculation batch (they trade roles
    /// pass by pass).
    batches: [RxBatch; 2],
    keys: [FlowKey; BATCH],
    /// The keys' hashes, when the EMC is probed.
    hashes: [u32; BATCH],
    /// The keys of a batch's EMC misses, gathered for the megaflow lookup
    /// (kept here, not zeroed per batch: 6 KiB).
    miss_keys: [FlowKey; BATCH],
    out: Output,
    clock: Box<dyn PmdClock>,
    /// The clock's zero on the meters' time line ([`PmdClock::epoch_offset_ns`]).
    meter_offset: u64,
    /// When the previous sweep started (PMD clock, ns).
    last_sweep: u64,
    /// Megaflows the owner deleted since the last sweep began, with their
    /// final statistics (reported by the next sweep).
    deleted: Vec<messages::FlowUse>,
}

impl Pmd {
    /// A PMD on the TSC clock.
    pub fn new(
        cfg: PmdConfig,
        ports: PortTable,
        slow: SlowPath,
        msgs: Receiver<PmdMsg>,
        counters: Arc<PmdCounters>,
    ) -> Pmd {
        Pmd::with_clock(cfg, ports, slow, msgs, counters, Box::new(TscClock::new()))
    }

    /// A PMD whose time-driven work reads `clock`.
    pub fn with_clock(
        cfg: PmdConfig,
        ports: PortTable,
        slow: SlowPath,
        msgs: Receiver<PmdMsg>,
        counters: Arc<PmdCounters>,
        clock: Box<dyn PmdClock>,
    ) -> Pmd {
        counters.emc_on.store(u64::from(cfg.emc_entries > 0), Ordering::Relaxed);
        Pmd {
            emc: ExactMatchCache::new(cfg.emc_entries, cfg.emc_insert_inv_prob),
            emc_policy: EmcPolicy::new(cfg.emc_adaptive && cfg.emc_entries > 0),
            mf: MegaflowCache::new(cfg.megaflow_limit),
            by_ufid: HashMap::new(),
            ufid_at: Vec::new(),
            sweeping: None,
            out: Output::new(cfg.id, ports.clone(), counters.clone(), slow.to_userspace.clone()),
            cfg,
            ports,
            slow,
            msgs,
            waker: None,
            counters,
            batches: [RxBatch::default(), RxBatch::default()],
            keys: [FlowKey::ZERO; BATCH],
            hashes: [0; BATCH],
            miss_keys: [FlowKey::ZERO; BATCH],
            meter_offset: clock.epoch_offset_ns(),
            clock,
            last_sweep: 0,
            deleted: Vec::new(),
        }
    }

    /// The PMD's time, which its meters see too until the next reading.
    fn now(&mut self) -> u64 {
        let t = self.clock.now_ns();
        self.out.set_time(t + self.meter_offset);
        t
    }

    /// This PMD's counters.
    pub fn counters(&self) -> &Arc<PmdCounters> {
        &self.counters
    }

    pub fn run(&mut self, stop: &AtomicBool) {
        let mut idle_rounds = 0u32;
        // When work was last done, and how long to spin after it.
        let mut last_work = cycles();
        let mut spin = SPIN_BEFORE_WAIT;
        // The sockets to wait on when idle, and the waker for messages;
        // any queue without a socket (an in-memory port), or no waker,
        // makes the PMD sleep briefly instead.
        // A port opened again (its interface re-created) has new sockets:
        // the descriptors are taken again when the ports' generations change.
        let (ports, rxqs) = (self.ports.clone(), self.cfg.rxqs.clone());
        let waker_fd = self.waker.as_ref().map(|w| w.fd());
        let port_of = |p: u32| ports.get(p as usize).and_then(|p| p.as_ref());
        let generations = || -> u64 {
            rxqs.iter()
                .filter_map(|&(p, _)| port_of(p))
                .map(|p| p.generation())
                .sum()
        };
        let rx_fds = || -> Option<Vec<std::os::fd::RawFd>> {
            rxqs.iter()
                .map(|&(p, q)| port_of(p).and_then(|p| p.rx_fd(q)))
                .chain(waker_fd.map(Some))
                .collect()
        };
        let (mut fds, mut fds_of) = (rx_fds(), generations());
        while !stop.load(Ordering::Relaxed) {
            let c0 = cycles();
            let upcalls = self.counters.upcalls.load(Ordering::Relaxed);
            let n = self.poll_once();
            let c1 = cycles();
            let dc = c1.wrapping_sub(c0);
            let dt = self.clock.ns_of(dc);
            if n > 0 || self.has_backlog() {
                add(&self.counters.busy_ns, dt);
                add(&self.counters.busy_cycles, dc);
                idle_rounds = 0;
                last_work = c1;
                spin = if self.counters.upcalls.load(Ordering::Relaxed) != upcalls {
                    SPIN_AFTER_UPCALL
                } else {
                    SPIN_BEFORE_WAIT
                };
            } else {
                add(&self.counters.idle_ns, dt);
                add(&self.counters.idle_cycles, dc);
                idle_rounds = idle_rounds.saturating_add(1);
                match self.cfg.idle_wait {
                    // Nothing for a while: let the kernel wake us when a
                    // frame comes (the core is free meanwhile).
                    Some(wait) if self.clock.ns_of(c1.wrapping_sub(last_work)) > spin.as_nanos() as u64 => {
                        add(&self.counters.idle_waits, 1);
                        if generations() != fds_of {
                            (fds, fds_of) = (rx_fds(), generations());
                        }
                        let c1 = cycles();
                        match (&fds, &self.waker) {
                            (Some(fds), Some(w)) => {
                                let _ = crate::sys::fd::wait_readable(fds, wait);
                                w.clear();
                            }
                            _ => std::thread::sleep(wait.min(Duration::from_micros(100))),
                        }
                        let dc = cycles().wrapping_sub(c1);
                        add(&self.counters.waited_ns, self.clock.ns_of(dc));
                    }
                    // Busy-poll, but give the core a breath after a long
                    // idle stretch so a test machine stays usable.
                    _ if idle_rounds > 10_000 => std::thread::yield_now(),
                    _ => {}
                }
            }
        }
    }

    /// One pass over the receive queues and the message channel; returns
    /// the packets processed.
    pub fn poll_once(&mut self) -> usize {
        // One clock reading per pass: megaflow "used" times need no more
        // precision than a pass takes.
        let now = self.now();
        let mut total = 0;
        for i in 0..self.cfg.rxqs.len() {
            let (port_no, q) = self.cfg.rxqs[i];
            let Some(port) = self.ports.get(port_no as usize).and_then(|p| p.clone()) else {
                continue;
            };
            let c0 = cycles();
            let n = port.recv(q, &mut self.batches[0]);
            if n > 0 {
                let rx = cycles().wrapping_sub(c0);
                add(&self.counters.rx_cycles, rx);
                add(&self.counters.packets, n as u64);
                let popped = self.process_batch(0, n, now);
                self.recirculate(1, popped, now);
                total += n;
            }
            port.poll_tx(self.cfg.id);
        }
        self.background();
        self.mf.maybe_rerank(now);
        total
    }

    /// Whether background work is left for the next pass (messages, or a
    /// sweep under way).
    pub fn has_backlog(&self) -> bool {
        !self.msgs.is_empty() || self.sweeping.is_some()
    }

    /// One slice of background work: messages in order, alternating with
    /// steps of a sweep under way, until both are done or
    /// [`BACKGROUND_SLICE`] is spent.
    fn background(&mut self) {
        let deadline = self.now() + BACKGROUND_SLICE.as_nanos() as u64;
        let mut taken = 0;
        loop {
            let in_time = self.now() < deadline;
            let mut worked = false;
            if in_time || taken < MESSAGES_PER_PASS {
                if let Ok(m) = self.msgs.try_recv() {
                    self.handle(m);
                    taken += 1;
                    worked = true;
                }
            }
            if in_time && self.sweeping.is_some() {
                self.sweep_step();
                worked = true;
            }
            if !worked {
                return;
            }
        }
    }
}
