//! Hybrid mode's offload policy and consistency on the host: the megaflow
//! owner with real PMDs on in-memory ports, a model of the kernel
//! datapath (flows by UFID, a kernel clock the test sets) and a model of
//! the steering tables, all driven step by step on a fake clock.
//!
//! A packet the steering model passes goes to the kernel model (its flow,
//! or a miss upcalled to the owner); any other goes to the PMDs. The
//! kernel's real behaviour (the verifier, `ovs-dpctl`'s view, the wire) is
//! tested in the VM (`tools/tests/hybrid_mode.rs`).

use crossbeam_channel::{Receiver, Sender};
use odpx_classifier::extract::extract;
use odpx_classifier::flow_op::{Actions, FlowOp, Ufid};
use odpx_classifier::key::Match;
use odpx_classifier::odp::OdpAction;
use odpx_classifier::rules::{ofctl, RuleSet, Selector};
use odpx_control::backend::hybrid::{Hybrid, Steering};
use odpx_control::backend::kernel::Kernel;
use odpx_control::backend::userspace::Userspace;
use odpx_control::core::counters::OffloadSnapshot;
use odpx_control::core::offload::{KernelPortSet, Offload};
use odpx_control::core::{Change, Core, CoreConfig, Holders, Packet};
use odpx_control::owner::{Owner, UnderlayIo};
use odpx_dataplane::pmd::{Pmd, PmdConfig, PmdCounters, PmdMsg, PmdReport, PortTable, SlowPath};
use odpx_dataplane::port::Port;
use odpx_dataplane::steer::{SteerEntry, SteerRefusal};
use odpx_dataplane::upcalls::{upcall_queues, UpcallReceiver};
use odpx_offload::client::{Flow, FlowId};
use odpx_offload::error::{OdpError, Op};
use odpx_offload::kernel::{Applied, DumpReport, FlowTable, FlowUsage, PacketOut};
use odpx_offload::policy::OffloadSettings;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Ports 1-3 are kernel vports; port 4 is not (as a VXLAN port is not).
const PORTS: u32 = 4;
const VPORTS: u32 = 3;
const STEP: Duration = Duration::from_millis(500);
const IDLE: Duration = Duration::from_secs(3);

#[derive(Clone)]
struct KernelFlow {
    matched: Match,
    actions: Actions,
    packets: u64,
    bytes: u64,
    used_ms: u64,
}

/// The kernel datapath's flow table, as the tests see it.
#[derive(Default)]
struct KernelModel {
    flows: BTreeMap<Ufid, KernelFlow>,
    /// The kernel's CLOCK_MONOTONIC, in ms.
    now_ms: u64,
    /// Netlink batches that carried a put.
    put_batches: u64,
    puts: u64,
}

fn kernel_error(errno: i32) -> OdpError {
    OdpError::Kernel {
        op: Op::Flow,
        errno,
        context: "flow".into(),
        ext_ack: None,
    }
}

/// Packets the owner had the kernel run: (actions, frame).
type Executed = Arc<Mutex<Vec<(Actions, Vec<u8>)>>>;

struct FakeKernel {
    state: Arc<Mutex<KernelModel>>,
    dumps: Sender<DumpReport>,
    executed: Executed,
}

impl FlowTable for FakeKernel {
    fn apply(&mut self, ops: &[FlowOp], packets: &[PacketOut]) -> Result<Applied, OdpError> {
        let mut k = self.state.lock().unwrap();
        let mut results = Vec::new();
        let mut deleted = Vec::new();
        if ops.iter().any(|o| matches!(o, FlowOp::Install { .. })) {
            k.put_batches += 1;
        }
        for op in ops {
            results.push(match op {
                FlowOp::Install { ufid, matched, actions } => {
                    k.puts += 1;
                    if k.flows.contains_key(ufid) {
                        Err(kernel_error(17))
                    } else {
                        k.flows.insert(
                            *ufid,
                            KernelFlow {
                                matched: **matched,
                                actions: actions.clone(),
                                packets: 0,
                                bytes: 0,
                                used_ms: 0,
                            },
                        );
                        Ok(())
                    }
                }
                FlowOp::Modify { ufid, actions, .. } => match k.flows.get_mut(ufid) {
                    Some(f) => {
                        f.actions = actions.clone();
                        Ok(())
                    }
                    None => Err(kernel_error(2)),
                },
                FlowOp::Delete { ufid } => match k.flows.remove(ufid) {
                    // As the kernel, which echoes what a deleted flow carried.
                    Some(f) => {
                        deleted.push((*ufid, f.packets, f.bytes));
                        Ok(())
                    }
                    None => Err(kernel_error(2)),
                },
            });
        }
        let mut ex = self.executed.lock().unwrap();
        for p in packets {
            ex.push((p.actions.clone(), p.packet.clone()));
        }
        Ok(Applied {
            ops: results,
            packets: packets.iter().map(|_| Ok(())).collect(),
            deleted,
        })
    }

    fn delete(&mut self, ids: &[FlowId]) -> Result<(), OdpError> {
        let mut k = self.state.lock().unwrap();
        for id in ids {
            if let FlowId::Ufid(u) = id {
                if let Some(u) = Ufid::from_bytes(u) {
                    k.flows.remove(&u);
                }
            }
        }
        Ok(())
    }

    fn dump(&mut self) -> Result<Vec<Flow>, OdpError> {
        Ok(Vec::new())
    }

    fn request_dump(&self, token: u64) {
        let k = self.state.lock().unwrap();
        let flows = k
            .flows
            .iter()
            .map(|(u, f)| FlowUsage {
                ufid: Some(*u),
                key_raw: None,
                packets: f.packets,
                bytes: f.bytes,
                used_ms: f.used_ms,
            })
            .collect();
        let _ = self.dumps.send(DumpReport {
            token,
            now_ms: k.now_ms,
            flows: Ok(flows),
        });
    }
}

/// The steering tables, as a set.
struct FakeSteering(Arc<Mutex<HashSet<SteerEntry>>>);

impl Steering for FakeSteering {
    fn insert(&mut self, e: &SteerEntry) -> std::io::Result<Result<(), SteerRefusal>> {
        self.0.lock().unwrap().insert(*e);
        Ok(Ok(()))
    }
    fn remove(&mut self, e: &SteerEntry) -> std::io::Result<bool> {
        Ok(self.0.lock().unwrap().remove(e))
    }
    fn masks(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.mask)
            .collect::<HashSet<_>>()
            .len()
    }
}

struct Rig {
    ports: PortTable,
    pmds: Vec<Pmd>,
    pmd_counters: Arc<PmdCounters>,
    msgs: Vec<Sender<PmdMsg>>,
    upcalls: UpcallReceiver,
    reports: Receiver<PmdReport>,
    dumps: Receiver<DumpReport>,
    kernel: Arc<Mutex<KernelModel>>,
    executed: Executed,
    steering: Arc<Mutex<HashSet<SteerEntry>>>,
    owner: Arc<Owner>,
    /// The fake clock.
    now: Instant,
    /// Packets the kernel model carried, by (output port): delivered.
    kernel_out: Vec<(u32, Vec<u8>)>,
    kernel_packets: Arc<AtomicU64>,
}

fn settings() -> OffloadSettings {
    OffloadSettings {
        min_pps: 1000,
        min_duration: Duration::from_secs(2),
        max_flows: 100,
        interval: STEP,
    }
}

impl Rig {
    fn new(rules: &str) -> Rig {
        let ports: PortTable = Arc::new(
            std::iter::once(None)
                .chain((1..=PORTS).map(|i| Some(Arc::new(Port::memory(i, &format!("p{i}"), true)))))
                .collect(),
        );
        let (utx, upcalls) = upcall_queues(PORTS as usize + 1, 1 << 16);
        let (rtx, reports) = crossbeam_channel::unbounded();
        let (mtx, mrx) = crossbeam_channel::unbounded();
        let pmd_counters = Arc::new(PmdCounters::default());
        let pmd = Pmd::new(
            PmdConfig {
                id: 0,
                core: None,
                rxqs: (1..=PORTS).map(|p| (p, 0)).collect(),
                emc_entries: 1024,
                emc_insert_inv_prob: 1,
                emc_adaptive: true,
                idle_wait: None,
                megaflow_limit: 100_000,
            },
            ports.clone(),
            SlowPath {
                upcalls: utx,
                reports: rtx,
                to_userspace: odpx_dataplane::upcalls::UserspaceSender::none(),
            },
            mrx,
            pmd_counters.clone(),
        );
        let mut set = RuleSet::new();
        for r in ofctl::parse_rules(rules).unwrap() {
            set.add(r);
        }
        let kernel = Arc::new(Mutex::new(KernelModel::default()));
        let executed = Arc::new(Mutex::new(Vec::new()));
        let (dtx, dumps) = crossbeam_channel::unbounded();
        let steering = Arc::new(Mutex::new(HashSet::new()));
        let offload = Offload::new(
            settings(),
            true,
            KernelPortSet {
                vports: (1..=VPORTS).collect(),
                tunnel_vports: Vec::new(),
            },
        );
        let now = Instant::now();
        let core = Core::new(
            CoreConfig {
                rules: set,
                ports: (1..=PORTS).collect(),
                holders: Holders { pmds: 1, kernel: true },
                megaflow_limit: 100_000,
                idle_timeout: IDLE,
                tunnels: Default::default(),
                offload: Some(offload),
            },
            now,
        );
        let counters = core.offload_counters().expect("hybrid").0;
        let kernel_flows = FakeKernel {
            state: kernel.clone(),
            dumps: dtx,
            executed: executed.clone(),
        };
        let backend = Hybrid::new(
            Userspace::new(vec![mtx.clone()]),
            Kernel::offload(
                Box::new(kernel_flows),
                KernelPortSet {
                    vports: (1..=VPORTS).collect(),
                    tunnel_vports: Vec::new(),
                },
            ),
            Box::new(FakeSteering(steering.clone())),
            counters,
        );
        let owner = Owner::new(core, Box::new(backend), UnderlayIo::none());
        Rig {
            ports,
            pmds: vec![pmd],
            pmd_counters,
            msgs: vec![mtx],
            upcalls,
            reports,
            dumps,
            kernel,
            executed,
            steering,
            owner,
            now,
            kernel_out: Vec::new(),
            kernel_packets: Arc::new(AtomicU64::new(0)),
        }
    }

    fn settle(&mut self) {
        loop {
            let mut busy = false;
            for p in &mut self.pmds {
                busy |= p.poll_once() > 0 || p.has_backlog();
            }
            let now = self.now;
            while let Some(u) = self.upcalls.try_recv() {
                let packet = Packet::Pmd {
                    pmd: u.pmd,
                    in_port: u.in_port,
                    bytes: u.packet,
                };
                self.owner.decide(|c| c.upcall(&u.key, packet, now));
                busy = true;
            }
            while let Ok(r) = self.reports.try_recv() {
                self.owner.decide(|c| c.pmd_report(r, now));
                busy = true;
            }
            while let Ok(d) = self.dumps.try_recv() {
                self.owner.decide(|c| c.kernel_dump(d, now));
                busy = true;
            }
            let queued = self.msgs.iter().any(|m| !m.is_empty());
            let pending_rx = (1..=PORTS as usize).any(|p| self.ports[p].as_ref().unwrap().mem().unwrap().rx_len() > 0);
            if !busy && !queued && !pending_rx {
                return;
            }
        }
    }

    /// A change answered once every datapath agrees.
    fn change(&mut self, c: Change) -> usize {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.owner.change(c, tx);
        self.settle();
        rx.try_recv().expect("answered once settled").expect("accepted")
    }

    fn add_rule(&mut self, r: &str) {
        let rule = ofctl::parse_rule(r).unwrap();
        self.change(Change::AddRules(vec![rule]));
    }

    /// Receives `frame` on `port` the way hybrid mode does: steered to
    /// the kernel model, or to the PMDs. Returns true when the kernel
    /// took it.
    fn receive(&mut self, port: u32, frame: &[u8]) -> bool {
        let key = extract(frame, port);
        let steered = self.steering.lock().unwrap().iter().any(|e| e.matches(&key));
        if !steered {
            self.ports[port as usize]
                .as_ref()
                .unwrap()
                .mem()
                .unwrap()
                .push_rx(frame.to_vec());
            return false;
        }
        let hit = {
            let mut k = self.kernel.lock().unwrap();
            let now_ms = k.now_ms;
            let flow = k.flows.values_mut().find(|f| f.matched.matches(&key));
            flow.map(|f| {
                f.packets += 1;
                f.bytes += frame.len() as u64;
                f.used_ms = now_ms;
                f.actions.clone()
            })
        };
        self.kernel_packets.fetch_add(1, Ordering::Relaxed);
        match hit {
            Some(actions) => self.kernel_run(&actions, frame),
            None => {
                // A miss: upcalled to the owner, which installs the flow
                // and has the kernel run the packet.
                let key_raw = odpx_offload::keys::encode_packet_key(&key, &[]);
                let packet = Packet::Kernel {
                    key_raw,
                    bytes: frame.to_vec(),
                };
                let now = self.now;
                self.owner.decide(|c| c.upcall(&key, packet, now));
                let ran: Vec<(Actions, Vec<u8>)> = std::mem::take(&mut *self.executed.lock().unwrap());
                for (a, f) in ran {
                    self.kernel_run(&a, &f);
                }
            }
        }
        true
    }

    fn kernel_run(&mut self, actions: &[OdpAction], frame: &[u8]) {
        for a in actions {
            match a {
                OdpAction::Output(p) if *p <= VPORTS => self.kernel_out.push((*p, frame.to_vec())),
                other => panic!("the tests' rules use outputs only in the kernel, not {other:?}"),
            }
        }
    }

    /// Sends `n` frames of each flow, then one step of the fake clock:
    /// housekeeping (sweeps), then an offload round.
    fn step(&mut self, flows: &[(u32, Vec<u8>, u64)]) -> Vec<(u32, Vec<u8>)> {
        for (port, frame, n) in flows {
            for _ in 0..*n {
                self.receive(*port, frame);
            }
            self.settle();
        }
        self.now += STEP;
        self.kernel.lock().unwrap().now_ms += STEP.as_millis() as u64;
        // The tick starts a sweep; its reports settle it, and the offload
        // round at its end moves what it found hot.
        let now = self.now;
        self.owner.decide(|c| c.tick(now));
        self.settle();
        self.outputs()
    }

    /// What left the switch since the last call, by port (PMDs and
    /// kernel alike).
    fn outputs(&mut self) -> Vec<(u32, Vec<u8>)> {
        let mut out = std::mem::take(&mut self.kernel_out);
        for p in 1..=PORTS {
            for f in self.ports[p as usize].as_ref().unwrap().mem().unwrap().take_tx() {
                out.push((p, f));
            }
        }
        out.sort();
        out
    }

    fn kernel_flows(&self) -> usize {
        self.kernel.lock().unwrap().flows.len()
    }

    fn pmd_packets(&self) -> u64 {
        self.pmd_counters.snapshot().packets
    }

    fn offload_counters(&self) -> OffloadSnapshot {
        self.owner
            .read(|c| c.offload_counters().expect("hybrid mode").0.snapshot())
    }
}

fn udp(dst: u8, sport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, dst])
        .ipv4([10, 0, 0, 1], [10, 0, 0, dst], 64)
        .udp(sport, 7)
        .write(&mut v, &[0u8; 18])
        .unwrap();
    v
}

const RULES: &str = "priority=10,ip,nw_dst=10.0.0.2,actions=output:2
priority=10,ip,nw_dst=10.0.0.3,actions=output:4
priority=10,ip,nw_dst=10.0.0.4,actions=output:3
priority=0,actions=drop
";

#[test]
fn a_hot_stable_flow_moves_into_the_kernel_and_rule_changes_follow_it_there() {
    let mut r = Rig::new(RULES);
    let hot = udp(2, 1000);
    let refused = udp(3, 1000);
    let cold = udp(4, 1000);
    // 2,000 pps (1,000 a half-second step) for the hot and refused flows,
    // 20 pps for the cold one.
    let traffic = vec![
        (1, hot.clone(), 1000),
        (1, refused.clone(), 1000),
        (1, cold.clone(), 10),
    ];
    // The first reading comes with the first sweep; the rate with the
    // second. After 4 steps the flow has been hot for 1.5 s by the readings.
    for step in 0..4 {
        let out = r.step(&traffic);
        assert_eq!(
            out.iter().filter(|(p, _)| *p == 2).count(),
            1000,
            "step {step}: the hot flow forwarded"
        );
        assert_eq!(r.kernel_flows(), 0, "step {step}: not hot for 2 s yet");
    }
    // Hot for 2 s: moved now.
    r.step(&traffic);
    assert_eq!(r.kernel_flows(), 1, "the hot flow moved into the kernel");
    assert_eq!(r.steering.lock().unwrap().len(), 1, "with its steering entry");
    let c = r.offload_counters();
    assert_eq!(c.moved, 1);
    let reasons = r.owner.read(|c| c.offload_counters().expect("hybrid").1.snapshot());
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons
            .keys()
            .next()
            .unwrap()
            .contains("port 4, which is not a kernel vport"),
        "the flow to port 4: {reasons:?}"
    );
    {
        let k = r.kernel.lock().unwrap();
        assert_eq!(k.put_batches, 1, "one batch of puts");
    }

    // Now the kernel carries it: its count grows, the PMD's stays flat.
    let pmd_before = r.pmd_packets();
    let out = r.step(&[(1, hot.clone(), 1000)]);
    assert_eq!(out.len(), 1000, "forwarded by the kernel");
    assert!(out.iter().all(|(p, f)| *p == 2 && *f == hot));
    assert_eq!(r.pmd_packets(), pmd_before, "no packet of it reached a PMD");
    let kflow = r.kernel.lock().unwrap().flows.values().next().unwrap().clone();
    assert_eq!(kflow.packets, 1000);
    assert_eq!(kflow.bytes, 1000 * hot.len() as u64, "bytes count the Ethernet header");
    // Its statistics carry on from the PMD's: 5 steps of 1000 before,
    // less the first packets, which the slow path ran while the megaflow
    // was being installed.
    let marks = r.owner.read(|c| c.kernel_marks());
    assert_eq!(marks.len(), 1);
    let (_, offloaded, carried) = marks[0];
    assert!(offloaded);
    assert!(
        (4900..=5000).contains(&carried.packets),
        "the PMD's count at the move: {carried:?}"
    );
    assert_eq!(
        carried.bytes,
        carried.packets * hot.len() as u64,
        "bytes with the L2 header in both"
    );

    // A rule change: answered once the kernel flow has the new actions.
    r.add_rule("priority=20,ip,nw_dst=10.0.0.2,actions=output:3");
    let out = r.step(&[(1, hot.clone(), 10)]);
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|(p, _)| *p == 3), "the new decision, in the kernel");
    assert_eq!(r.kernel_flows(), 1, "fixed in place");

    // New actions the kernel does not run: the flow comes back.
    let moved_back = r.offload_counters().brought_back;
    r.add_rule("priority=30,ip,nw_dst=10.0.0.2,actions=output:4");
    assert_eq!(
        r.kernel_flows(),
        0,
        "deleted from the kernel before the change returned"
    );
    assert!(r.steering.lock().unwrap().is_empty(), "and no longer steered");
    assert_eq!(r.offload_counters().brought_back, moved_back + 1);
    let pmd_before = r.pmd_packets();
    let out = r.step(&[(1, hot.clone(), 10)]);
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|(p, _)| *p == 4), "the new decision, in the PMDs");
    assert_eq!(r.pmd_packets(), pmd_before + 10, "the PMDs have it again");
}

/// A rule's counters include what the kernel carried for it up to the
/// moment a change deleted the flow there, before any dump read it: the
/// kernel says what a deleted flow carried, and the owner credits it.
#[test]
fn a_rule_counts_what_the_kernel_carried_until_the_flow_was_deleted() {
    let mut r = Rig::new(RULES);
    let hot = udp(2, 1000);
    for _ in 0..6 {
        r.step(&[(1, hot.clone(), 1000)]);
    }
    assert_eq!(r.kernel_flows(), 1, "moved into the kernel");
    // 500 more through the kernel flow, read by no dump: then a change
    // the kernel cannot run deletes the flow there.
    for _ in 0..500 {
        assert!(r.receive(1, &hot));
    }
    r.settle();
    r.add_rule("priority=30,ip,nw_dst=10.0.0.2,actions=output:4");
    assert_eq!(r.kernel_flows(), 0);
    r.step(&[]);
    let rules = r.owner.read(|c| c.select_rules(&Selector::all(None)));
    let to2 = rules
        .iter()
        .find(|(rule, _)| rule.priority == 10 && format!("{:?}", rule.actions).contains("port: 2"))
        .expect("the rule");
    assert_eq!(to2.1.packets, 6500, "every packet the hot flow sent: {rules:?}");
}

/// `learn` from a flow the kernel carries: the rule it taught (idle 2 s)
/// stays while only the kernel flow carries the traffic, the sweeps'
/// dumps teaching it again, and idles out once the traffic stops.
#[test]
fn what_a_kernel_flow_carries_keeps_teaching_its_learned_rule() {
    let learning = format!(
        "priority=20,ip,nw_dst=10.0.0.2,actions=learn(table=10,idle_timeout=2,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),output:2\n{RULES}"
    );
    let mut r = Rig::new(&learning);
    let hot = udp(2, 1000);
    let taught = |r: &Rig| {
        r.owner.read(|c| {
            c.rules()
                .iter()
                .filter(|rule| rule.table == 10)
                .map(odpx_classifier::rules::ofctl::format_rule)
                .collect::<Vec<_>>()
        })
    };
    for _ in 0..6 {
        r.step(&[(1, hot.clone(), 1000)]);
    }
    assert_eq!(r.kernel_flows(), 1, "moved into the kernel");
    let rule = "table=10, idle_timeout=2, priority=32768,dl_dst=02:00:00:00:00:01 actions=output:1";
    assert_eq!(taught(&r), [rule]);
    // 4 s of traffic that only the kernel flow carries.
    let in_pmds = r.pmd_packets();
    for _ in 0..8 {
        r.step(&[(1, hot.clone(), 100)]);
    }
    assert_eq!(r.pmd_packets(), in_pmds, "the kernel carried it all");
    assert_eq!(taught(&r), [rule], "taught again by the kernel flow");
    // Silence: it idles out.
    for _ in 0..6 {
        r.step(&[]);
    }
    assert!(taught(&r).is_empty(), "{:?}", taught(&r));
}

#[test]
fn an_idle_offloaded_flow_comes_back_and_offload_off_leaves_nothing() {
    let mut r = Rig::new(RULES);
    let a = udp(2, 1);
    let b = udp(4, 2);
    let traffic = vec![(1, a.clone(), 1000), (1, b.clone(), 1000)];
    for _ in 0..6 {
        r.step(&traffic);
    }
    assert_eq!(r.kernel_flows(), 2, "both moved");
    assert_eq!(r.kernel.lock().unwrap().put_batches, 1, "in one batch");
    // a goes quiet; b keeps going. After the idle timeout (3 s of the
    // kernel's clock) a is brought back, b stays.
    for _ in 0..8 {
        r.step(&[(1, b.clone(), 100)]);
    }
    assert_eq!(r.kernel_flows(), 1, "the idle flow left the kernel");
    assert_eq!(r.steering.lock().unwrap().len(), 1);
    assert!(r.steering.lock().unwrap().iter().all(|e| e.matches(&extract(&b, 1))));
    // Its packets go to the PMDs again, and are forwarded there.
    let pmd_before = r.pmd_packets();
    let out = r.step(&[(1, a.clone(), 5)]);
    assert_eq!(out.len(), 5);
    assert_eq!(r.pmd_packets(), pmd_before + 5);

    // Offload off: nothing of it is left behind.
    let back = r.change(Change::SetOffload(false));
    assert_eq!(back, 1);
    assert_eq!(r.kernel_flows(), 0, "no kernel flow left");
    assert!(r.steering.lock().unwrap().is_empty(), "no steering entry left");
    // And nothing moves while it is off, however hot.
    for _ in 0..8 {
        r.step(&[(1, b.clone(), 1000)]);
    }
    assert_eq!(r.kernel_flows(), 0);
    r.change(Change::SetOffload(true));
    for _ in 0..6 {
        r.step(&[(1, b.clone(), 1000)]);
    }
    assert_eq!(r.kernel_flows(), 1, "on again: moved again");
}

#[test]
fn a_steered_packet_that_misses_in_the_kernel_still_gets_the_right_decision() {
    let mut r = Rig::new(RULES);
    let a = udp(2, 1);
    for _ in 0..6 {
        r.step(&[(1, a.clone(), 1000)]);
    }
    assert_eq!(r.kernel_flows(), 1);
    // Someone else deletes the kernel's flows (ovs-dpctl del-flows).
    r.kernel.lock().unwrap().flows.clear();
    let out = r.step(&[(1, a.clone(), 3)]);
    assert_eq!(out.len(), 3, "upcalled from the kernel, and forwarded");
    assert!(out.iter().all(|(p, _)| *p == 2));
    // The sweep's dump showed the flow gone: brought back to the PMDs.
    assert!(r.steering.lock().unwrap().is_empty(), "no longer steered");
    assert_eq!(r.owner.read(|c| c.kernel_marks()).len(), 0, "forgotten");
    let pmd_before = r.pmd_packets();
    let out = r.step(&[(1, a.clone(), 3)]);
    assert_eq!(out.len(), 3);
    assert_eq!(r.pmd_packets(), pmd_before + 3, "the PMDs carry it again");
}

/// The reference: the output ports the rules give a packet, translated
/// afresh.
fn reference_ports(rules: &RuleSet, port: u32, frame: &[u8]) -> Vec<u32> {
    let t = odpx_classifier::xlate::translate(
        rules,
        &extract(frame, port),
        &mut odpx_classifier::xlate::FloodEnv {
            ports: (1..=PORTS).collect(),
        },
    );
    let mut ports: Vec<u32> = t
        .actions
        .iter()
        .filter_map(|a| match a {
            OdpAction::Output(p) => Some(*p),
            _ => None,
        })
        .collect();
    ports.sort();
    ports
}

fn random_rule(rng: &mut rand::rngs::StdRng) -> String {
    use rand::Rng;
    let mut s = format!("priority={},ip,", rng.gen_range(1..30));
    if rng.gen_bool(0.5) {
        s += &format!("in_port={},", rng.gen_range(1..=3));
    }
    if rng.gen_bool(0.7) {
        s += &format!(
            "nw_dst=10.0.0.{}/{},",
            rng.gen_range(1..7),
            [24, 30, 31, 32][rng.gen_range(0..4)]
        );
    }
    if rng.gen_bool(0.3) {
        s += &format!("udp,tp_src={},", rng.gen_range(1..4));
    }
    s += &match rng.gen_range(0..6) {
        0 => "actions=drop".to_string(),
        1 => "actions=output:4".to_string(),
        2 => format!(
            "actions=output:{},output:{}",
            rng.gen_range(1..=3),
            rng.gen_range(1..=3)
        ),
        _ => format!("actions=output:{}", rng.gen_range(1..=3)),
    };
    s
}

/// Every steering entry is an offloaded kernel-held megaflow the kernel
/// has, and every kernel flow is one the owner knows: no stale flow and
/// no orphan entry.
fn assert_consistent(r: &Rig, when: &str) {
    let marks = r.owner.read(|c| c.kernel_marks());
    let k = r.kernel.lock().unwrap();
    for u in k.flows.keys() {
        assert!(
            marks.iter().any(|(m, _, _)| m == u),
            "{when}: a kernel flow the owner does not know"
        );
    }
    let steering = r.steering.lock().unwrap();
    let offloaded: Vec<&KernelFlow> = marks
        .iter()
        .filter(|(_, o, _)| *o)
        .filter_map(|(u, _, _)| k.flows.get(u))
        .collect();
    assert_eq!(
        steering.len(),
        marks.iter().filter(|(_, o, _)| *o).count(),
        "{when}: one entry per offloaded flow"
    );
    for e in steering.iter() {
        assert!(
            offloaded
                .iter()
                .any(|f| odpx_dataplane::steer::steer_match(&f.matched).as_ref() == Ok(e)),
            "{when}: a steering entry without its kernel flow"
        );
    }
}

#[test]
fn random_rule_changes_and_flows_starting_and_stopping_never_get_an_old_decision() {
    use rand::{Rng, SeedableRng};
    for seed in 1..=6u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut r = Rig::new("priority=0,actions=output:1\n");
        let mut rules = RuleSet::new();
        rules.add(ofctl::parse_rule("priority=0,actions=output:1").unwrap());
        // (in port, frame, packets a step while on); on or off.
        let flows: Vec<(u32, Vec<u8>, u64)> = (0..12)
            .map(|i| {
                let rate = if i % 3 == 0 { 5 } else { 600 };
                (1 + i % 3, udp(1 + (i as u8 % 6), 1 + i as u16 % 3), rate)
            })
            .collect();
        let mut on: Vec<bool> = flows.iter().map(|_| true).collect();
        let mut moved_any = false;
        for step in 0..60 {
            if step % 3 == 2 {
                if rng.gen_bool(0.7) || rules.iter().count() < 3 {
                    let text = random_rule(&mut rng);
                    let rule = ofctl::parse_rule(&text).unwrap();
                    rules.add(rule.clone());
                    r.change(Change::AddRules(vec![rule]));
                } else {
                    let victim = rules
                        .iter()
                        .nth(rng.gen_range(0..rules.iter().count()))
                        .unwrap()
                        .clone();
                    let gone = rules.delete(&Selector::matching(None, victim.matched, Some(victim.priority)));
                    assert!(!gone.is_empty());
                    r.change(Change::DelRules {
                        table: None,
                        matched: Box::new(victim.matched),
                        strict: Some(victim.priority),
                    });
                }
            }
            for o in on.iter_mut() {
                if rng.gen_bool(0.1) {
                    *o = !*o;
                }
            }
            let traffic: Vec<(u32, Vec<u8>, u64)> = flows
                .iter()
                .zip(&on)
                .filter(|(_, o)| **o)
                .map(|(f, _)| f.clone())
                .collect();
            let mut want: Vec<(u32, Vec<u8>)> = Vec::new();
            for (port, frame, n) in &traffic {
                for p in reference_ports(&rules, *port, frame) {
                    for _ in 0..*n {
                        want.push((p, frame.clone()));
                    }
                }
            }
            want.sort();
            let got = r.step(&traffic);
            assert!(
                got == want,
                "seed {seed} step {step}: {} outputs, the reference says {}",
                got.len(),
                want.len()
            );
            assert_consistent(&r, &format!("seed {seed} step {step}"));
            moved_any |= r.kernel_flows() > 0;
        }
        assert!(moved_any, "seed {seed}: some flow was offloaded");
        let carried = r.kernel_packets.load(Ordering::Relaxed);
        eprintln!(
            "seed {seed}: the kernel carried {carried} packets, the PMDs {}",
            r.pmd_packets()
        );
        assert!(carried > 10_000, "seed {seed}: the kernel carried {carried} packets");
        // Offload off at the end: nothing left.
        r.change(Change::SetOffload(false));
        assert_eq!(r.kernel_flows(), 0);
        assert!(r.steering.lock().unwrap().is_empty());
    }
}
