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

use crate::emc_policy::EmcPolicy;
use crate::exec::{ExecResult, OutputSink, Packet, Program};
use crate::port::{Port, RxBatch, TxStage, BATCH};
use crate::tunnel::{DecapDrop, EncapDrop, Receivers, TunnelMeta};
pub use crate::upcalls::Upcall;
use crossbeam_channel::{Receiver, Sender};
use hashbrown::HashMap;
use odpx_classifier::emc::ExactMatchCache;
use odpx_classifier::extract::extract_into;
pub use odpx_classifier::flow_op::Actions;
use odpx_classifier::flow_op::{FlowOp, Ufid};
use odpx_classifier::key::{FlowKey, Match};
use odpx_classifier::megaflow::{FlowRef, FlowStats, MegaflowCache};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Passes a packet may take through the classifier: the received one and
/// recirculations after decapsulation (Open vSwitch's limit). A packet
/// that would need more is dropped and counted.
pub const MAX_RECIRC_DEPTH: usize = 6;

/// One installed megaflow, as reported by [`PmdMsg::Dump`].
#[derive(Clone, Debug)]
pub struct MegaflowEntry {
    pub ufid: Ufid,
    pub matched: Match,
    pub actions: Actions,
    pub stats: FlowStats,
    /// Time since the last hit (`None`: never hit).
    pub idle: Option<Duration>,
}

/// A megaflow's statistics as a PMD reports them to the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowUse {
    pub ufid: Ufid,
    pub stats: FlowStats,
    /// Time since the last hit (`None`: never hit).
    pub idle: Option<Duration>,
}

/// Messages from control to a PMD.
pub enum PmdMsg {
    /// Run the actions on `packet` (the upcalled packet, if any) and
    /// install the megaflow under `ufid` (an identical match already
    /// installed only gets the new actions).
    Install {
        ufid: Ufid,
        /// Boxed: a match is 400 bytes and the other messages are small.
        matched: Box<Match>,
        actions: Actions,
        packet: Option<(u32, Vec<u8>)>,
    },
    /// Install, modify or delete megaflows (UFIDs unknown here are
    /// ignored: the megaflow went already).
    Ops(Vec<FlowOp>),
    /// Run actions on a packet without installing anything.
    Execute {
        in_port: u32,
        actions: Actions,
        packet: Vec<u8>,
    },
    /// Delete the megaflows idle for at least `max_idle` and report, with
    /// [`PmdReport::Swept`], those and the ones used since the last sweep.
    Sweep {
        token: u64,
        max_idle: Duration,
    },
    /// Answer with [`PmdReport::Barrier`] (everything sent before is applied).
    Barrier(u64),
    /// Report every megaflow.
    Dump(Sender<Vec<MegaflowEntry>>),
    ClearStats,
}

/// What a PMD tells the megaflow owner.
#[derive(Debug)]
pub enum PmdReport {
    Swept {
        pmd: usize,
        token: u64,
        /// Deleted for being idle, with their final statistics.
        expired: Vec<FlowUse>,
        /// Hit since the previous sweep.
        active: Vec<FlowUse>,
    },
    Barrier {
        pmd: usize,
        token: u64,
    },
    /// The cache refused an install (its flow limit); the packet was run.
    NotInstalled {
        pmd: usize,
        ufid: Ufid,
    },
}

/// Per-PMD counters (relaxed atomics, written by the PMD only).
#[derive(Default, Debug)]
pub struct PmdCounters {
    pub packets: AtomicU64,
    pub emc_hits: AtomicU64,
    /// Packets classified without probing the EMC ([`crate::emc_policy`]).
    pub emc_bypassed: AtomicU64,
    /// Whether the PMD currently probes its EMC, and how often that changed.
    pub emc_on: AtomicBool,
    pub emc_switches: AtomicU64,
    /// Classify cycles per packet with and without the EMC, as measured
    /// when the mode last changed.
    pub emc_cost_with: AtomicU64,
    pub emc_cost_without: AtomicU64,
    pub megaflow_hits: AtomicU64,
    /// Subtables probed by megaflow lookups that hit.
    pub subtables_probed: AtomicU64,
    pub upcalls: AtomicU64,
    pub upcalls_lost: AtomicU64,
    pub flow_limit_hits: AtomicU64,
    pub unsupported_actions: AtomicU64,
    pub drops_no_headroom: AtomicU64,
    /// Inner packets classified again after decapsulation.
    pub recirculations: AtomicU64,
    pub drops_recirc_depth: AtomicU64,
    pub busy_ns: AtomicU64,
    pub idle_ns: AtomicU64,
    /// TSC cycles spent in passes that processed packets / found none.
    pub busy_cycles: AtomicU64,
    pub idle_cycles: AtomicU64,
    /// Times the PMD waited for frames instead of spinning, and the time
    /// it spent waiting (part of the idle time).
    pub idle_waits: AtomicU64,
    pub waited_ns: AtomicU64,
    /// Where the busy cycles go, by stage (TSC cycles, summed over batches):
    /// receiving (ring to batch buffers), classifying (key extraction, EMC,
    /// megaflow lookup, upcalls), running the actions (including stats
    /// credit), and transmitting (staging, the kick, completions).
    pub rx_cycles: AtomicU64,
    pub classify_cycles: AtomicU64,
    pub action_cycles: AtomicU64,
    pub tx_cycles: AtomicU64,
    pub megaflows: AtomicU64,
    pub expired: AtomicU64,
}

/// A snapshot of [`PmdCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PmdSnapshot {
    pub packets: u64,
    pub emc_hits: u64,
    pub emc_bypassed: u64,
    pub emc_on: bool,
    pub emc_switches: u64,
    pub emc_cost_with: u64,
    pub emc_cost_without: u64,
    pub megaflow_hits: u64,
    pub subtables_probed: u64,
    pub upcalls: u64,
    pub upcalls_lost: u64,
    pub flow_limit_hits: u64,
    pub unsupported_actions: u64,
    pub drops_no_headroom: u64,
    pub recirculations: u64,
    pub drops_recirc_depth: u64,
    pub busy_ns: u64,
    pub idle_ns: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    pub idle_waits: u64,
    pub waited_ns: u64,
    pub rx_cycles: u64,
    pub classify_cycles: u64,
    pub action_cycles: u64,
    pub tx_cycles: u64,
    pub megaflows: u64,
    pub expired: u64,
}

impl PmdCounters {
    pub fn snapshot(&self) -> PmdSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PmdSnapshot {
            packets: l(&self.packets),
            emc_hits: l(&self.emc_hits),
            emc_bypassed: l(&self.emc_bypassed),
            emc_on: self.emc_on.load(Ordering::Relaxed),
            emc_switches: l(&self.emc_switches),
            emc_cost_with: l(&self.emc_cost_with),
            emc_cost_without: l(&self.emc_cost_without),
            megaflow_hits: l(&self.megaflow_hits),
            subtables_probed: l(&self.subtables_probed),
            upcalls: l(&self.upcalls),
            upcalls_lost: l(&self.upcalls_lost),
            flow_limit_hits: l(&self.flow_limit_hits),
            unsupported_actions: l(&self.unsupported_actions),
            drops_no_headroom: l(&self.drops_no_headroom),
            recirculations: l(&self.recirculations),
            drops_recirc_depth: l(&self.drops_recirc_depth),
            busy_ns: l(&self.busy_ns),
            idle_ns: l(&self.idle_ns),
            busy_cycles: l(&self.busy_cycles),
            idle_cycles: l(&self.idle_cycles),
            idle_waits: l(&self.idle_waits),
            waited_ns: l(&self.waited_ns),
            rx_cycles: l(&self.rx_cycles),
            classify_cycles: l(&self.classify_cycles),
            action_cycles: l(&self.action_cycles),
            tx_cycles: l(&self.tx_cycles),
            megaflows: l(&self.megaflows),
            expired: l(&self.expired),
        }
    }

    fn clear(&self) {
        for a in [
            &self.packets,
            &self.emc_hits,
            &self.emc_bypassed,
            &self.megaflow_hits,
            &self.subtables_probed,
            &self.upcalls,
            &self.upcalls_lost,
            &self.flow_limit_hits,
            &self.unsupported_actions,
            &self.drops_no_headroom,
            &self.recirculations,
            &self.drops_recirc_depth,
            &self.busy_ns,
            &self.idle_ns,
            &self.busy_cycles,
            &self.idle_cycles,
            &self.idle_waits,
            &self.waited_ns,
            &self.rx_cycles,
            &self.classify_cycles,
            &self.action_cycles,
            &self.tx_cycles,
            &self.expired,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

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

/// Slots a sweep step visits (between two readings of the clock).
const SWEEP_STEP: usize = 256;

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
    mf: MegaflowCache<Program>,
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
    /// Which VXLAN port receives a decapsulated packet.
    receivers: Receivers,
    /// The received batch and the recirculation batch (they trade roles
    /// pass by pass).
    batches: [RxBatch; 2],
    /// Encapsulations and decapsulations of a batch by port, added to the
    /// ports' shared counters once per batch.
    tally: Vec<TunnelTally>,
    keys: [FlowKey; BATCH],
    /// The keys of a batch's EMC misses, gathered for the megaflow lookup
    /// (kept here, not zeroed per batch: 6 KiB).
    miss_keys: [FlowKey; BATCH],
    stages: Vec<TxStage>,
    clock: TscClock,
    /// When the previous sweep started (PMD clock, ns).
    last_sweep: u64,
}

/// A sweep in progress: where its walk over the cache's slots stands and
/// what it found so far (see [`Pmd::sweep_step`]).
struct SweepWalk {
    token: u64,
    timeout_ns: u64,
    /// Megaflows used after this were used since the previous sweep.
    since: u64,
    next_slot: usize,
    expired: Vec<FlowUse>,
    active: Vec<FlowUse>,
}

/// The VXLAN port that receives a packet decapsulated on `underlay`
/// (`len` bytes left), with the decapsulation counted there; `None`, with
/// the drop counted on the underlay port, when no port has its VNI.
fn receiver_of(
    receivers: &Receivers,
    tally: &mut [TunnelTally],
    ports: &PortTable,
    underlay: u32,
    meta: &TunnelMeta,
    len: usize,
) -> Option<u32> {
    let Some(port) = receivers.resolve(meta) else {
        port_stats(ports, underlay, |s| s.count_decap_drop(DecapDrop::UnknownVni));
        return None;
    };
    if let Some(t) = tally.get_mut(port as usize) {
        t.decap_packets += 1;
        t.decap_bytes += len as u64;
    }
    Some(port)
}

/// Nanoseconds since the PMD started, from the TSC: one RDTSC where a
/// `clock_gettime` cost three calls a pass (2.4% of a busy PMD's time in a
/// profile of VXLAN decap). The TSC's rate is measured against the
/// monotonic clock at start and again at every sweep, over the whole time
/// since start; readings never go backwards.
struct TscClock {
    started: Instant,
    started_cycles: u64,
    ns_per_cycle: f64,
    last: u64,
}

impl TscClock {
    /// How long the first measurement of the TSC's rate takes.
    const CALIBRATION: Duration = Duration::from_millis(2);

    fn new() -> TscClock {
        let (started, started_cycles) = (Instant::now(), crate::sys::time::cycles());
        while started.elapsed() < Self::CALIBRATION {
            std::hint::spin_loop();
        }
        let mut c = TscClock {
            started,
            started_cycles,
            ns_per_cycle: 1.0,
            last: 0,
        };
        c.recalibrate();
        c
    }

    fn recalibrate(&mut self) {
        let ns = self.started.elapsed().as_nanos() as f64;
        let cycles = crate::sys::time::cycles().wrapping_sub(self.started_cycles);
        if cycles > 0 {
            self.ns_per_cycle = ns / cycles as f64;
        }
    }

    fn ns_of(&self, cycles: u64) -> u64 {
        (cycles as f64 * self.ns_per_cycle) as u64
    }

    fn now(&mut self) -> u64 {
        let t = self.ns_of(crate::sys::time::cycles().wrapping_sub(self.started_cycles));
        self.last = self.last.max(t);
        self.last
    }
}

impl Pmd {
    pub fn new(
        cfg: PmdConfig,
        ports: PortTable,
        slow: SlowPath,
        msgs: Receiver<PmdMsg>,
        counters: Arc<PmdCounters>,
    ) -> Pmd {
        let nports = ports.len();
        counters.emc_on.store(cfg.emc_entries > 0, Ordering::Relaxed);
        // Control validated the endpoints with the same constructor.
        let receivers = Receivers::new(
            ports
                .iter()
                .flatten()
                .filter_map(|p| p.vxlan_endpoint().map(|e| (p.no, *e))),
        )
        .unwrap_or_default();
        Pmd {
            emc: ExactMatchCache::new(cfg.emc_entries, cfg.emc_insert_inv_prob),
            emc_policy: EmcPolicy::new(cfg.emc_adaptive && cfg.emc_entries > 0),
            mf: MegaflowCache::new(cfg.megaflow_limit),
            by_ufid: HashMap::new(),
            ufid_at: Vec::new(),
            sweeping: None,
            cfg,
            ports,
            slow,
            msgs,
            waker: None,
            counters,
            receivers,
            batches: [RxBatch::default(), RxBatch::default()],
            tally: vec![TunnelTally::default(); nports],
            keys: [FlowKey::ZERO; BATCH],
            miss_keys: [FlowKey::ZERO; BATCH],
            stages: (0..nports).map(|_| TxStage::default()).collect(),
            clock: TscClock::new(),
            last_sweep: 0,
        }
    }

    fn now(&mut self) -> u64 {
        self.clock.now()
    }

    /// This PMD's counters.
    pub fn counters(&self) -> &Arc<PmdCounters> {
        &self.counters
    }

    pub fn run(&mut self, stop: &AtomicBool) {
        let mut idle_rounds = 0u32;
        // When work was last done, and how long to spin after it.
        let mut last_work = crate::sys::time::cycles();
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
            let c0 = crate::sys::time::cycles();
            let upcalls = self.counters.upcalls.load(Ordering::Relaxed);
            let n = self.poll_once();
            let c1 = crate::sys::time::cycles();
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
                        let c1 = crate::sys::time::cycles();
                        match (&fds, &self.waker) {
                            (Some(fds), Some(w)) => {
                                let _ = crate::sys::fd::wait_readable(fds, wait);
                                w.clear();
                            }
                            _ => std::thread::sleep(wait.min(Duration::from_micros(100))),
                        }
                        let dc = crate::sys::time::cycles().wrapping_sub(c1);
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
            let c0 = crate::sys::time::cycles();
            let n = port.recv(q, &mut self.batches[0]);
            if n > 0 {
                let rx = crate::sys::time::cycles().wrapping_sub(c0);
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

    /// Runs the inner packets left in batch `k` by decapsulation (`n` of
    /// them) through the batch code again, pass after pass.
    fn recirculate(&mut self, mut k: usize, mut n: usize, now: u64) {
        for _ in 1..MAX_RECIRC_DEPTH {
            if n == 0 {
                return;
            }
            add(&self.counters.recirculations, n as u64);
            n = self.process_batch(k, n, now);
            k = 1 - k;
        }
        add(&self.counters.drops_recirc_depth, n as u64);
    }

    /// Classifies and runs the `n` packets of batch `k`; returns how many
    /// were decapsulated into the other batch for another pass.
    fn process_batch(&mut self, k: usize, n: usize, now: u64) -> usize {
        let c_start = crate::sys::time::cycles();
        let mut flows: [Option<FlowRef>; BATCH] = [None; BATCH];
        let mut miss_idx = [0usize; BATCH];
        let mut n_miss = 0;
        let mut hashes = [0u32; BATCH];
        // Keys first, lookups second: the EMC probes of the whole batch then
        // run back to back, and their cache misses overlap instead of
        // waiting behind each packet's parsing.
        let with_emc = self.emc_policy.next_batch();
        let batch = &self.batches[k];
        for (i, hash) in hashes.iter_mut().enumerate().take(n) {
            let key = &mut self.keys[i];
            extract_into(batch.data(i), batch.in_ports[i], key);
            if let Some(t) = &batch.tunnels[i] {
                t.apply(key);
            }
            if with_emc {
                *hash = key.hash();
            }
        }
        let mut upcalls = 0;
        if !with_emc {
            // The EMC does not pay here (see `emc_policy`): straight to the
            // megaflows, with no key hash, probe or insert.
            add(&self.counters.emc_bypassed, n as u64);
            let probed_before = self.mf.stats.subtables_probed_on_hit;
            let hits = self.mf.lookup_batch(&self.keys[..n], &mut flows[..n]);
            add(
                &self.counters.subtables_probed,
                self.mf.stats.subtables_probed_on_hit - probed_before,
            );
            add(&self.counters.megaflow_hits, hits.count_ones() as u64);
            let mut missed = hits ^ if n == BATCH { u32::MAX } else { (1u32 << n) - 1 };
            while missed != 0 {
                let i = missed.trailing_zeros() as usize;
                missed &= missed - 1;
                upcalls += 1;
                self.upcall(k, i);
            }
        } else {
            self.emc.lookup_batch(&self.keys[..n], &hashes[..n], &mut flows[..n]);
            // Read every hit's megaflow slot before checking any (see
            // `ExactMatchCache::lookup_batch` for why loads come first).
            let mut touched = 0u64;
            for r in flows[..n].iter().flatten() {
                touched ^= self.mf.touch(*r);
            }
            std::hint::black_box(touched);
            for (i, flow) in flows.iter_mut().enumerate().take(n) {
                match *flow {
                    Some(r) if self.mf.get(r).is_some() => {}
                    _ => {
                        *flow = None;
                        miss_idx[n_miss] = i;
                        self.miss_keys[n_miss] = self.keys[i];
                        n_miss += 1;
                    }
                }
            }
            add(&self.counters.emc_hits, (n - n_miss) as u64);
        }
        if n_miss > 0 {
            let mut out = [None; BATCH];
            let probed_before = self.mf.stats.subtables_probed_on_hit;
            let hits = self.mf.lookup_batch(&self.miss_keys[..n_miss], &mut out);
            add(
                &self.counters.subtables_probed,
                self.mf.stats.subtables_probed_on_hit - probed_before,
            );
            add(&self.counters.megaflow_hits, hits.count_ones() as u64);
            for j in 0..n_miss {
                let i = miss_idx[j];
                match out[j] {
                    Some(r) => {
                        flows[i] = Some(r);
                        self.emc.insert(&self.keys[i], hashes[i], r);
                    }
                    None => {
                        upcalls += 1;
                        self.upcall(k, i);
                    }
                }
            }
        }
        let c_actions = crate::sys::time::cycles();
        let classify = c_actions.wrapping_sub(c_start);
        add(&self.counters.classify_cycles, classify);
        // A batch with upcalls measures the slow path's door, not the cache.
        if upcalls == 0 && self.emc_policy.record(with_emc, n as u64, classify) {
            self.counters.emc_on.store(self.emc_policy.emc_on(), Ordering::Relaxed);
            add(&self.counters.emc_switches, 1);
            if let Some((with, without)) = self.emc_policy.last_cost {
                self.counters.emc_cost_with.store(with as u64, Ordering::Relaxed);
                self.counters.emc_cost_without.store(without as u64, Ordering::Relaxed);
            }
        }
        let [b0, b1] = &mut self.batches;
        let (cur, next) = if k == 0 { (b0, b1) } else { (b1, b0) };
        let mut popped = 0;
        for (i, f) in flows.iter().enumerate().take(n) {
            let Some(r) = *f else { continue };
            let (start, len) = (cur.starts[i], cur.lens[i]);
            let tcp_flags = self.keys[i].tcp_flags;
            // Borrow the actions in place (disjoint fields): no reference
            // count traffic per packet.
            let Some(flow) = self.mf.hit(r, 1, len as u64, tcp_flags, now) else {
                continue;
            };
            let mut sink = PmdSink {
                stages: &mut self.stages,
                ports: &self.ports,
                tally: &mut self.tally,
            };
            let mut p = Packet::new(&mut cur.buf_mut(i)[..], start, len);
            let result = flow.actions.run(&mut p, &mut sink);
            let at = (p.start(), p.len());
            count_result(&result, &self.counters, &self.ports);
            if let Some((underlay, meta)) = result.popped {
                if let Some(port) = receiver_of(&self.receivers, &mut self.tally, &self.ports, underlay, &meta, at.1) {
                    cur.move_to(i, next, popped, at, port, meta);
                    popped += 1;
                }
            }
        }
        let c_tx = crate::sys::time::cycles();
        add(&self.counters.action_cycles, c_tx.wrapping_sub(c_actions));
        self.flush_tx();
        let tx = crate::sys::time::cycles().wrapping_sub(c_tx);
        add(&self.counters.tx_cycles, tx);
        popped
    }

    fn upcall(&mut self, k: usize, i: usize) {
        add(&self.counters.upcalls, 1);
        let batch = &self.batches[k];
        let u = Upcall {
            pmd: self.cfg.id,
            in_port: batch.in_ports[i],
            key: self.keys[i],
            packet: batch.data(i).to_vec(),
        };
        if !self.slow.upcalls.send(u) {
            add(&self.counters.upcalls_lost, 1);
        }
    }

    fn flush_tx(&mut self) {
        for (no, stage) in self.stages.iter_mut().enumerate() {
            if stage.is_empty() {
                continue;
            }
            if let Some(Some(p)) = self.ports.get(no) {
                p.send(self.cfg.id, stage);
            }
            stage.clear();
        }
        for (no, t) in self.tally.iter_mut().enumerate() {
            if *t == TunnelTally::default() {
                continue;
            }
            if let Some(Some(p)) = self.ports.get(no) {
                let r = Ordering::Relaxed;
                p.stats.count_encap(Ok(t.encap_bytes), t.encap_packets);
                p.stats.rx_packets.fetch_add(t.decap_packets, r);
                p.stats.rx_bytes.fetch_add(t.decap_bytes, r);
            }
            *t = TunnelTally::default();
        }
    }

    /// Runs a program on one packet that came from the slow path (between
    /// batches, so both batches are free), recirculating it if it was
    /// decapsulated.
    fn run_packet(&mut self, program: &Program, in_port: u32, packet: &[u8]) {
        self.batches[0].fill(0, in_port, packet);
        let [b0, b1] = &mut self.batches;
        let (start, len) = (b0.starts[0], b0.lens[0]);
        let mut sink = PmdSink {
            stages: &mut self.stages,
            ports: &self.ports,
            tally: &mut self.tally,
        };
        let mut p = Packet::new(&mut b0.buf_mut(0)[..], start, len);
        let result = program.run(&mut p, &mut sink);
        let at = (p.start(), p.len());
        count_result(&result, &self.counters, &self.ports);
        let mut popped = 0;
        if let Some((underlay, meta)) = result.popped {
            if let Some(port) = receiver_of(&self.receivers, &mut self.tally, &self.ports, underlay, &meta, at.1) {
                b0.move_to(0, b1, 0, at, port, meta);
                popped = 1;
            }
        }
        self.flush_tx();
        let now = self.now();
        self.recirculate(1, popped, now);
    }

    fn handle(&mut self, m: PmdMsg) {
        match m {
            PmdMsg::Install {
                ufid,
                matched,
                actions,
                packet,
            } => {
                let program = Program::new(actions);
                // The packet first, so the program moves into the cache
                // instead of being copied; nothing here can tell the order.
                if let Some((in_port, p)) = packet {
                    self.run_packet(&program, in_port, &p);
                }
                self.install(ufid, *matched, program);
            }
            PmdMsg::Ops(ops) => {
                for op in ops {
                    match op {
                        FlowOp::Install { ufid, matched, actions } => {
                            self.install(ufid, *matched, Program::new(actions))
                        }
                        FlowOp::Modify { ufid, actions, .. } => {
                            if let Some(&r) = self.by_ufid.get(&ufid) {
                                self.mf.set_actions(r, Program::new(actions));
                            }
                        }
                        FlowOp::Delete { ufid } => {
                            if let Some(r) = self.by_ufid.remove(&ufid) {
                                self.mf.remove(r);
                            }
                        }
                    }
                }
                self.counters.megaflows.store(self.mf.len() as u64, Ordering::Relaxed);
            }
            PmdMsg::Execute {
                in_port,
                actions,
                packet,
            } => self.run_packet(&Program::new(actions), in_port, &packet),
            PmdMsg::Sweep { token, max_idle } => {
                self.clock.recalibrate();
                self.start_sweep(token, max_idle)
            }
            PmdMsg::Barrier(token) => {
                let _ = self.slow.reports.send(PmdReport::Barrier {
                    pmd: self.cfg.id,
                    token,
                });
            }
            PmdMsg::Dump(reply) => {
                let now = self.now();
                let v = self
                    .by_ufid
                    .iter()
                    .filter_map(|(u, r)| self.mf.get(*r).map(|f| (*u, f)))
                    .map(|(ufid, f)| MegaflowEntry {
                        ufid,
                        matched: f.matched,
                        actions: f.actions.actions().clone(),
                        stats: f.stats,
                        idle: idle_of(f.stats.used, now),
                    })
                    .collect();
                let _ = reply.send(v);
            }
            PmdMsg::ClearStats => self.counters.clear(),
        }
    }

    /// Installs a megaflow under `ufid`; a refusal (the cache's flow limit)
    /// is counted and reported to the owner.
    fn install(&mut self, ufid: Ufid, matched: Match, program: Program) {
        let now = self.now();
        match self.mf.insert(matched, program, now) {
            Ok(r) => {
                self.by_ufid.insert(ufid, r);
                let i = r.index as usize;
                if self.ufid_at.len() <= i {
                    self.ufid_at.resize(i + 1, Ufid([0; 16]));
                }
                self.ufid_at[i] = ufid;
            }
            Err(_) => {
                add(&self.counters.flow_limit_hits, 1);
                let _ = self
                    .slow
                    .reports
                    .send(PmdReport::NotInstalled { pmd: self.cfg.id, ufid });
            }
        }
        self.counters.megaflows.store(self.mf.len() as u64, Ordering::Relaxed);
    }

    /// The owner's round: deletes megaflows idle for `max_idle` or more and
    /// reports them, with every megaflow used since the previous sweep.
    /// The walk is done in steps ([`Pmd::sweep_step`]); a sweep asked for
    /// while one is under way ends that one where it stands (what it
    /// expired is reported) and starts again.
    fn start_sweep(&mut self, token: u64, max_idle: Duration) {
        if self.sweeping.is_some() {
            self.finish_sweep();
        }
        let now = self.now();
        self.sweeping = Some(SweepWalk {
            token,
            timeout_ns: max_idle.as_nanos() as u64,
            since: self.last_sweep,
            next_slot: 0,
            expired: Vec::new(),
            active: Vec::new(),
        });
        self.last_sweep = now;
    }

    /// Visits the next [`SWEEP_STEP`] slots of the sweep under way;
    /// reports the sweep when the walk reaches the end. Megaflows
    /// installed or deleted meanwhile are simply found or not: a new one
    /// is not idle yet, and a deleted one was reported by its deleter.
    fn sweep_step(&mut self) {
        let Some(walk) = self.sweeping.as_mut() else {
            return;
        };
        let now = self.clock.now();
        let end = (walk.next_slot + SWEEP_STEP).min(self.mf.slot_count());
        for i in walk.next_slot..end {
            let Some((r, f)) = self.mf.at(i) else {
                continue;
            };
            let last = if f.stats.used == 0 { f.created } else { f.stats.used };
            let u = FlowUse {
                ufid: self.ufid_at[i],
                stats: f.stats,
                idle: idle_of(f.stats.used, now),
            };
            if now.saturating_sub(last) >= walk.timeout_ns {
                self.mf.remove(r);
                if self.by_ufid.get(&u.ufid) == Some(&r) {
                    self.by_ufid.remove(&u.ufid);
                }
                walk.expired.push(u);
            } else if f.stats.used > walk.since {
                walk.active.push(u);
            }
        }
        walk.next_slot = end;
        if end >= self.mf.slot_count() {
            self.finish_sweep();
        }
    }

    /// Reports the sweep under way with what its walk found.
    fn finish_sweep(&mut self) {
        let Some(walk) = self.sweeping.take() else {
            return;
        };
        add(&self.counters.expired, walk.expired.len() as u64);
        self.counters.megaflows.store(self.mf.len() as u64, Ordering::Relaxed);
        let _ = self.slow.reports.send(PmdReport::Swept {
            pmd: self.cfg.id,
            token: walk.token,
            expired: walk.expired,
            active: walk.active,
        });
    }
}

/// Time since `used` (PMD clock, ns; 0 = never).
fn idle_of(used: u64, now: u64) -> Option<Duration> {
    (used != 0).then(|| Duration::from_nanos(now.saturating_sub(used)))
}

/// Adds to a PMD counter. Each PMD's counters have one writer, the PMD
/// itself (`pmd-stats-clear` reaches it as a message), so a plain load and
/// store does what `fetch_add` does without a locked instruction; about ten
/// of those a batch are not free.
#[inline(always)]
fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// A batch's encapsulations and decapsulations on one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TunnelTally {
    encap_packets: u64,
    encap_bytes: u64,
    decap_packets: u64,
    decap_bytes: u64,
}

/// Where a PMD's actions output: the batch's transmit stages, with the
/// ports' MTUs and the tunnel tallies.
struct PmdSink<'a> {
    stages: &'a mut [TxStage],
    ports: &'a PortTable,
    tally: &'a mut [TunnelTally],
}

impl OutputSink for PmdSink<'_> {
    fn output(&mut self, port: u32, packet: &[u8]) {
        if let Some(s) = self.stages.get_mut(port as usize) {
            s.push(packet);
        }
    }

    fn max_frame(&self, port: u32) -> usize {
        match self.ports.get(port as usize) {
            Some(Some(p)) => p.max_frame(),
            _ => usize::MAX,
        }
    }

    fn encapsulated(&mut self, tnl_port: u32, outcome: Result<usize, EncapDrop>) {
        match (outcome, self.tally.get_mut(tnl_port as usize)) {
            (Ok(bytes), Some(t)) => {
                t.encap_packets += 1;
                t.encap_bytes += bytes as u64;
            }
            (Err(why), _) => port_stats(self.ports, tnl_port, |s| s.count_encap(Err(why), 1)),
            (Ok(_), None) => {}
        }
    }
}

/// Runs `f` on the counters of port `no`, if it exists.
fn port_stats(ports: &PortTable, no: u32, f: impl FnOnce(&crate::port::PortStats)) {
    if let Some(Some(p)) = ports.get(no as usize) {
        f(&p.stats);
    }
}

/// Counts what running a packet's actions reported.
fn count_result(r: &ExecResult, counters: &PmdCounters, ports: &PortTable) {
    if r.unsupported {
        add(&counters.unsupported_actions, 1);
    }
    if r.no_headroom {
        add(&counters.drops_no_headroom, 1);
    }
    if let Some((underlay, why)) = r.decap_drop {
        port_stats(ports, underlay, |s| s.count_decap_drop(why));
    }
}
