//! The Linux kernel datapath as odpx's datapath: setup, upcall handlers,
//! flow operations and dumps, for pure-kernel mode and for the offloaded
//! megaflows of hybrid mode.
//!
//! # What
//! * [`KernelDatapath::open`] creates the named ODP datapath, or reuses it
//!   as a previous run left it (its flows stay: the megaflow owner adopts
//!   them), and makes each configured interface a netdev vport at the
//!   port number the configuration gives it (its `ofport`, or its
//!   position: 1, 2, ...), as in userspace mode. Vports of the datapath that the configuration no
//!   longer names are removed; port 0 is the datapath's own internal port.
//! * [`KernelDatapath::apply`] turns the owner's decisions ([`FlowOp`]s)
//!   into flow requests keyed by UFID, and executes upcalled packets with
//!   the kernel's own key bytes, all in one netlink batch: puts first, so
//!   the packets after them follow their own new flow's ordering.
//! * [`Handlers`]: one upcall thread per CPU, each with its own netlink
//!   socket. With per-CPU dispatch (kernel 5.14+) CPU *i*'s misses go to
//!   handler *i mod n*; otherwise every vport lists every handler's socket
//!   and the kernel spreads misses by flow hash. A handler decodes the
//!   kernel's flow keys of a received batch and hands the batch, as data,
//!   to its [`UpcallSink`] on its own thread (the megaflow owner, which
//!   serialises its callers). No queue sits between the socket and the
//!   owner: a handler that cannot keep up leaves the misses in its socket,
//!   where the kernel counts those that do not fit as lost, and a first
//!   packet waits for no other thread to wake up. An upcall whose key does
//!   not decode is counted and logged (a few lines a second at most),
//!   never a crash.
//! * [`Dumper`]: a thread of its own that dumps the flows tersely (UFID and
//!   statistics only) when the owner asks, so a long dump never delays
//!   upcall handling.
//!
//! # Threads and sockets
//! [`KernelDatapath`] owns the owner's netlink socket (the translator
//! thread's). Each handler owns its listener; the dumper owns a client of
//! its own. Nothing is shared but counters and channels.
//!
//! # Stopping
//! A handler waits for upcalls at most [`HANDLER_WAKEUP`] at a time, so it
//! sees the stop flag soon after it is set.

use crate::actions::encode_actions;
use crate::client::{
    Datapath, DatapathSettings, DpRequest, Execute, Flow, FlowId, FlowPut, OdpClient, PutMode, Vport, VportId,
    VportSpec, VportType,
};
use crate::error::OdpError;
use crate::uapi::{dp_feature, ufid_flag};
use crate::upcall::{possible_cpus, UpcallListener};
use crossbeam_channel::{Receiver, Sender};
use odpx_classifier::flow_op::{Actions, FlowOp, Ufid};
use odpx_classifier::key::FlowKey;
use odpx_classifier::odp::{OdpAction, OdpKey};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a handler waits for upcalls before it looks at its stop flag.
pub const HANDLER_WAKEUP: Duration = Duration::from_millis(200);

/// Upcalls a handler answers in one turn at most (Open vSwitch's batch).
pub const UPCALL_BATCH: usize = 64;

/// The owner's handle on the kernel datapath.
pub struct KernelDatapath {
    client: OdpClient,
    pub dp: Datapath,
    /// The configured ports' vports, in configuration order.
    pub ports: Vec<Vport>,
}

/// A vport the configuration asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VportWant {
    pub name: String,
    pub no: u32,
    pub vtype: VportType,
    /// A tunnel vport's UDP port.
    pub dst_port: Option<u16>,
}

/// An upcalled packet that must still run in the kernel.
#[derive(Clone, Debug)]
pub struct PacketOut {
    /// The kernel's own key bytes from the upcall.
    pub key_raw: Vec<u8>,
    pub packet: Vec<u8>,
    pub actions: Actions,
}

/// What one [`KernelDatapath::apply`] did: one result per operation and
/// per packet, in order.
#[derive(Debug)]
pub struct Applied {
    pub ops: Vec<Result<(), OdpError>>,
    pub packets: Vec<Result<(), OdpError>>,
    /// The flows deleted, with the statistics they had when they went
    /// (packets and bytes), where the kernel said.
    pub deleted: Vec<(Ufid, u64, u64)>,
}

/// The error for "the kernel has no Open vSwitch datapath".
fn no_module(e: &OdpError) -> String {
    format!(
        "the kernel datapath is not available ({e}); datapath = \"kernel\" needs the openvswitch module (modprobe openvswitch)"
    )
}

/// Adds netdev vport `name` to the datapath again, at number `no`, when
/// the kernel removed it with its interface (a veth deleted and added
/// again): the kernel's flows name ports by number, so those of the old
/// vport work again once one of the same number is back. A vport at `no`
/// under another name is removed first. In per-vport upcall dispatch the
/// new vport gets the upcall pids of the datapath's other vports. Returns
/// whether a vport was added.
pub fn ensure_netdev_vport(client: &mut OdpClient, dp_ifindex: i32, no: u32, name: &str) -> Result<bool, OdpError> {
    let vports = client.list_vports(dp_ifindex)?;
    if vports.iter().any(|v| v.port_no == no && v.name == name) {
        return Ok(false);
    }
    if vports.iter().any(|v| v.port_no == no) {
        client.delete_vport(&VportId::Number {
            dp_ifindex,
            port_no: no,
        })?;
    }
    let upcall_pids = vports
        .iter()
        .find(|v| v.port_no != 0 && v.port_no != no && !v.upcall_pids.is_empty())
        .map(|v| v.upcall_pids.clone())
        .unwrap_or_default();
    client.create_vport(
        dp_ifindex,
        &VportSpec {
            name: name.to_string(),
            vtype: VportType::Netdev,
            port_no: Some(no),
            dst_port: None,
            upcall_pids,
        },
    )?;
    Ok(true)
}

impl KernelDatapath {
    /// Creates or reuses datapath `name` with `ports` as its netdev vports
    /// 1, 2, ... (see the module documentation). Fails, naming the part,
    /// when the module is missing or an interface cannot be added.
    pub fn open(name: &str, ports: &[(String, u32)]) -> Result<KernelDatapath, String> {
        let wanted: Vec<VportWant> = ports
            .iter()
            .map(|(p, no)| VportWant {
                name: p.clone(),
                no: *no,
                vtype: VportType::Netdev,
                dst_port: None,
            })
            .collect();
        KernelDatapath::open_numbered(name, &wanted)
    }

    /// [`KernelDatapath::open`] with the vports given: hybrid mode makes
    /// its switched interfaces netdev vports and its VXLAN ports VXLAN
    /// vports, at the numbers they have in the configuration.
    pub fn open_numbered(name: &str, ports: &[VportWant]) -> Result<KernelDatapath, String> {
        let mut client = OdpClient::connect().map_err(|e| no_module(&e))?;
        let dp = match client.get_datapath(name) {
            Ok(dp) => {
                // Ask for per-CPU dispatch again: a previous run may have
                // been another program.
                let features = dp.user_features | dp_feature::UNALIGNED | dp_feature::VPORT_PIDS;
                let want = features | dp_feature::DISPATCH_UPCALL_PER_CPU;
                let settings = |f| DatapathSettings {
                    user_features: Some(f),
                    ..Default::default()
                };
                client
                    .set_datapath(name, &settings(want))
                    .or_else(|_| client.set_datapath(name, &settings(features)))
                    .map_err(|e| format!("datapath {name}: {e}"))?
            }
            Err(_) => client
                .create_datapath(name, 0, true)
                .map_err(|e| format!("datapath {name}: {e}"))?,
        };
        let existing = client
            .list_vports(dp.dp_ifindex)
            .map_err(|e| format!("datapath {name}: {e}"))?;
        // Vports this configuration does not name, or names at another
        // number, go first (port 0 is the datapath's own).
        for v in &existing {
            let wanted = ports.iter().find(|w| w.name == v.name);
            if v.port_no != 0 && !wanted.is_some_and(|w| w.no == v.port_no && w.vtype == v.vtype) {
                client
                    .delete_vport(&VportId::Number {
                        dp_ifindex: dp.dp_ifindex,
                        port_no: v.port_no,
                    })
                    .map_err(|e| format!("datapath {name}: removing vport {}: {e}", v.name))?;
            }
        }
        let mut vports = Vec::new();
        for w in ports {
            let kept = existing
                .iter()
                .find(|v| v.name == w.name && v.port_no == w.no && v.vtype == w.vtype);
            let v = match kept {
                Some(v) => v.clone(),
                None => client
                    .create_vport(
                        dp.dp_ifindex,
                        &VportSpec {
                            name: w.name.clone(),
                            vtype: w.vtype,
                            port_no: Some(w.no),
                            dst_port: w.dst_port,
                            upcall_pids: Vec::new(),
                        },
                    )
                    .map_err(|e| format!("port {}: {e}", w.name))?,
            };
            vports.push(v);
        }
        Ok(KernelDatapath {
            client,
            dp,
            ports: vports,
        })
    }

    pub fn dp_ifindex(&self) -> i32 {
        self.dp.dp_ifindex
    }

    /// Whether misses are dispatched per CPU (else per vport).
    pub fn per_cpu(&self) -> bool {
        self.dp.user_features & dp_feature::DISPATCH_UPCALL_PER_CPU != 0
    }

    /// The client, for what this module does not wrap.
    pub fn client(&mut self) -> &mut OdpClient {
        &mut self.client
    }

    /// Deletes every flow of the datapath.
    pub fn flush(&mut self) -> Result<(), OdpError> {
        self.client.flush_flows(self.dp.dp_ifindex)
    }

    /// Every flow with its key, mask, actions and statistics.
    pub fn dump(&mut self) -> Result<Vec<Flow>, OdpError> {
        self.client.dump_flows(self.dp.dp_ifindex, 0)
    }

    /// Carries out the owner's operations, then runs the packets, in one
    /// batch (see the module documentation). An operation or packet that
    /// cannot be encoded fails alone, with the codec's reason.
    pub fn apply(&mut self, ops: &[FlowOp], packets: &[PacketOut]) -> Result<Applied, OdpError> {
        enum Encoded {
            Put(FlowPut),
            Delete(FlowId),
        }
        let put = |ufid: &Ufid, m: &odpx_classifier::Match, actions: &[OdpAction], mode| {
            let p = FlowPut::with_ufid(
                &OdpKey::from_match(naming_recirc_id(m)),
                actions,
                mode,
                Some(ufid.as_bytes()),
            )?;
            Ok(Encoded::Put(p))
        };
        let encoded: Vec<Result<Encoded, OdpError>> = ops
            .iter()
            .map(|op| match op {
                FlowOp::Install { ufid, matched, actions } => put(ufid, matched, actions, PutMode::Create),
                FlowOp::Modify { ufid, matched, actions } => put(ufid, matched, actions, PutMode::Modify),
                FlowOp::Delete { ufid } => Ok(Encoded::Delete(FlowId::Ufid(ufid.as_bytes().to_vec()))),
            })
            .collect();
        let executes: Vec<Result<Execute, OdpError>> = packets
            .iter()
            .map(|p| {
                Ok(Execute {
                    packet: &p.packet,
                    key: p.key_raw.clone(),
                    actions: encode_actions(&p.actions)?,
                    probe: false,
                })
            })
            .collect();
        let reqs: Vec<DpRequest> = encoded
            .iter()
            .flatten()
            .map(|e| match e {
                Encoded::Put(p) => DpRequest::Put(p),
                Encoded::Delete(id) => DpRequest::Delete(id),
            })
            .chain(executes.iter().flatten().map(DpRequest::Execute))
            .collect();
        let mut sent = if reqs.is_empty() {
            Vec::new()
        } else {
            self.client.batch(self.dp.dp_ifindex, &reqs)?
        }
        .into_iter();
        let mut result_of = |e: Result<(), OdpError>| match e {
            Ok(()) => sent.next().expect("one result per request"),
            Err(e) => Err(e),
        };
        let mut deleted = Vec::new();
        let ops = encoded
            .into_iter()
            .zip(ops)
            .map(|(e, op)| {
                let r = result_of(e.map(|_| ()));
                if let (FlowOp::Delete { ufid }, Ok(Some(f))) = (op, &r) {
                    deleted.push((*ufid, f.packets, f.bytes));
                }
                r.map(drop)
            })
            .collect();
        let packets = executes
            .into_iter()
            .map(|e| result_of(e.map(|_| ())).map(drop))
            .collect();
        Ok(Applied { ops, packets, deleted })
    }
}

/// What the megaflow owner asks of the kernel datapath's flow table:
/// [`KernelFlows`] in the kernel, a model in tests of the owner.
pub trait FlowTable: Send {
    /// Carries out operations and runs packets, in one batch.
    fn apply(&mut self, ops: &[FlowOp], packets: &[PacketOut]) -> Result<Applied, OdpError>;
    /// Deletes flows by UFID or key (absent ones are no error).
    fn delete(&mut self, ids: &[FlowId]) -> Result<(), OdpError>;
    /// Every flow with its key, mask, actions and statistics.
    fn dump(&mut self) -> Result<Vec<Flow>, OdpError>;
    /// Asks for a terse dump; a [`DumpReport`] with `token` follows.
    fn request_dump(&self, token: u64);
}

/// The kernel's flow table: the owner's socket and the dump thread.
pub struct KernelFlows {
    pub dp: KernelDatapath,
    pub dumper: Dumper,
}

impl FlowTable for KernelFlows {
    fn apply(&mut self, ops: &[FlowOp], packets: &[PacketOut]) -> Result<Applied, OdpError> {
        self.dp.apply(ops, packets)
    }

    fn delete(&mut self, ids: &[FlowId]) -> Result<(), OdpError> {
        let ifindex = self.dp.dp_ifindex();
        self.dp.client().del_flows(ifindex, ids).map(drop)
    }

    fn dump(&mut self) -> Result<Vec<Flow>, OdpError> {
        self.dp.dump()
    }

    fn request_dump(&self, token: u64) {
        self.dumper.request(token);
    }
}

/// Counters of the upcall handlers (relaxed atomics).
#[derive(Default, Debug)]
pub struct HandlerCounters {
    /// Misses received.
    pub received: AtomicU64,
    /// Misses whose flow key did not decode (counted, logged, dropped).
    pub undecodable: AtomicU64,
    /// Upcalls that did not parse at all.
    pub malformed: AtomicU64,
    /// `userspace()` action upcalls (odpx installs none).
    pub actions: AtomicU64,
}

/// Where handlers deliver decoded misses: called on the handler's thread
/// with each received batch.
pub trait UpcallSink: Send + Sync {
    fn upcalls(&self, batch: Vec<KernelUpcall>);

    /// A packet a flow's `userspace()` action sent up, with the action's
    /// user data (an OpenFlow packet-in). Dropped unless overridden.
    fn userspace(&self, _userdata: Vec<u8>, _packet: Vec<u8>) {}
}

/// A miss, decoded, for the owner.
#[derive(Clone, Debug)]
pub struct KernelUpcall {
    pub key: FlowKey,
    /// The kernel's own key bytes (the packet is executed with them).
    pub key_raw: Vec<u8>,
    pub packet: Vec<u8>,
}

/// A log that says at most `per_second` lines a second, and how many it
/// held back.
pub struct RateLimitedLog {
    per_second: u32,
    window: Mutex<(Instant, u32, u64)>,
}

impl RateLimitedLog {
    pub fn new(per_second: u32) -> RateLimitedLog {
        RateLimitedLog {
            per_second,
            window: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// Prints `line` (to stderr) unless this second's quota is spent.
    pub fn say(&self, line: impl FnOnce() -> String) {
        let Ok(mut w) = self.window.lock() else { return };
        let now = Instant::now();
        if now.duration_since(w.0) >= Duration::from_secs(1) {
            if w.2 > 0 {
                eprintln!("odpx: ({} more like this held back)", w.2);
            }
            *w = (now, 0, 0);
        }
        if w.1 < self.per_second {
            w.1 += 1;
            eprintln!("odpx: {}", line());
        } else {
            w.2 += 1;
        }
    }
}

/// The upcall handler threads. See the module documentation.
pub struct Handlers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// How misses reach the handlers, for `odpx ctl show`.
    pub mode: String,
}

/// Upcall listeners opened and named to the datapath, their handler
/// threads not started yet: the kernel queues the misses in their
/// sockets meanwhile (while the owner adopts a previous run's flows).
pub struct Listening {
    listeners: Vec<UpcallListener>,
    /// How misses reach the handlers, for `odpx ctl show`.
    pub mode: String,
    /// The socket `userspace()` actions send to (the first handler's).
    pub action_pid: u32,
}

impl Handlers {
    /// Opens `n` listeners and points the datapath's misses at them.
    pub fn listen(dp: &mut KernelDatapath, n: usize) -> Result<Listening, String> {
        let n = n.max(1);
        let mut listeners = Vec::new();
        for _ in 0..n {
            listeners.push(UpcallListener::open(&dp.client).map_err(|e| format!("upcall socket: {e}"))?);
        }
        let pids: Vec<u32> = listeners
            .iter()
            .map(|l| l.pid())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("upcall socket: {e}"))?;
        let mode = if dp.per_cpu() {
            let ncpu = possible_cpus().unwrap_or(n);
            let per_cpu: Vec<u32> = (0..ncpu).map(|c| pids[c % n]).collect();
            dp.client
                .set_datapath(
                    &dp.dp.name,
                    &DatapathSettings {
                        per_cpu_pids: Some(per_cpu),
                        ..Default::default()
                    },
                )
                .map_err(|e| format!("datapath {}: upcall pids: {e}", dp.dp.name))?;
            format!("per-CPU dispatch, {ncpu} CPUs to {n} handler(s)")
        } else {
            for v in &dp.ports {
                dp.client
                    .set_vport_upcall_pids(
                        &VportId::Number {
                            dp_ifindex: dp.dp.dp_ifindex,
                            port_no: v.port_no,
                        },
                        &pids,
                    )
                    .map_err(|e| format!("port {}: upcall pids: {e}", v.name))?;
            }
            format!("per-vport dispatch, {n} handler(s)")
        };
        Ok(Listening {
            listeners,
            mode,
            action_pid: pids[0],
        })
    }
}

impl Listening {
    /// Starts one thread per listener that hands decoded misses to `sink`.
    pub fn start(self, sink: Arc<dyn UpcallSink>, counters: Arc<HandlerCounters>) -> Result<Handlers, String> {
        let Listening { listeners, mode, .. } = self;
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(RateLimitedLog::new(5));
        let mut threads = Vec::new();
        for (i, mut l) in listeners.into_iter().enumerate() {
            let (stop, sink, counters, log) = (stop.clone(), sink.clone(), counters.clone(), log.clone());
            let t = std::thread::Builder::new()
                .name(format!("handler{i}"))
                .spawn(move || handler(&mut l, &stop, &*sink, &counters, &log))
                .map_err(|e| format!("handler thread: {e}"))?;
            threads.push(t);
        }
        Ok(Handlers { stop, threads, mode })
    }
}

impl Handlers {
    /// Stops the handlers and waits for them.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn handler(
    l: &mut UpcallListener,
    stop: &AtomicBool,
    sink: &dyn UpcallSink,
    counters: &HandlerCounters,
    log: &RateLimitedLog,
) {
    while !stop.load(Ordering::Relaxed) {
        let received = match l.recv_timeout(Some(HANDLER_WAKEUP)) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                // ENOBUFS: the socket overflowed, the kernel counts those
                // as lost. Anything else is logged and retried.
                log.say(|| format!("upcall socket: {e}"));
                continue;
            }
        };
        // Whatever else has arrived joins the batch (up to UPCALL_BATCH):
        // one netlink batch then installs and runs them all.
        let mut batch = Vec::with_capacity(UPCALL_BATCH);
        let mut received = Some(received);
        while let Some(upcalls) = received.take() {
            for u in upcalls {
                match decode(u, counters, log) {
                    Some(Received::Miss(m)) => batch.push(m),
                    Some(Received::Action { userdata, packet }) => sink.userspace(userdata, packet),
                    None => {}
                }
            }
            if batch.len() < UPCALL_BATCH {
                received = l.try_recv().ok().flatten();
            }
        }
        if !batch.is_empty() {
            sink.upcalls(batch);
        }
    }
}

/// An upcall, decoded.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "lives for one match on the handler's stack; boxing a miss would allocate per upcall"
)]
pub enum Received {
    /// A miss, for the owner.
    Miss(KernelUpcall),
    /// A `userspace()` action's packet and user data (a packet-in).
    Action { userdata: Vec<u8>, packet: Vec<u8> },
}

/// One received upcall as the owner wants it, or counted as why not (a
/// malformed message, a `userspace()` action upcall without user data, a
/// key that does not decode).
pub fn decode(
    u: Result<crate::upcall::Upcall, OdpError>,
    counters: &HandlerCounters,
    log: &RateLimitedLog,
) -> Option<Received> {
    let u = match u {
        Ok(u) => u,
        Err(e) => {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            log.say(|| format!("an upcall did not parse: {e}"));
            return None;
        }
    };
    if !u.is_miss() {
        counters.actions.fetch_add(1, Ordering::Relaxed);
        let userdata = u.userdata?;
        return Some(Received::Action {
            userdata,
            packet: u.packet,
        });
    }
    counters.received.fetch_add(1, Ordering::Relaxed);
    match u.key() {
        Ok((key, _)) => Some(Received::Miss(KernelUpcall {
            key,
            key_raw: u.key_raw,
            packet: u.packet,
        })),
        Err(e) => {
            counters.undecodable.fetch_add(1, Ordering::Relaxed);
            log.say(|| format!("an upcall's flow key does not decode ({e}); packet dropped"));
            None
        }
    }
}

/// One flow's statistics from a terse dump.
#[derive(Clone, Debug)]
pub struct FlowUsage {
    /// `None`: a flow without a UFID (not odpx's); then `key_raw` names it.
    pub ufid: Option<Ufid>,
    pub key_raw: Option<Vec<u8>>,
    pub packets: u64,
    pub bytes: u64,
    /// Last use, ms of CLOCK_MONOTONIC (0: never).
    pub used_ms: u64,
}

/// A dump the owner asked for.
#[derive(Debug)]
pub struct DumpReport {
    pub token: u64,
    /// CLOCK_MONOTONIC ms when the dump was taken.
    pub now_ms: u64,
    pub flows: Result<Vec<FlowUsage>, String>,
}

/// The dump thread. See the module documentation.
pub struct Dumper {
    requests: Sender<u64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Dumper {
    /// Starts a thread with its own client for `dp_ifindex`; reports go to
    /// `reports`.
    pub fn start(dp_ifindex: i32, reports: Sender<DumpReport>) -> Result<Dumper, String> {
        let mut client = OdpClient::connect().map_err(|e| no_module(&e))?;
        let (tx, rx): (Sender<u64>, Receiver<u64>) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("dumper".into())
            .spawn(move || {
                for token in rx {
                    let flags = ufid_flag::OMIT_KEY | ufid_flag::OMIT_MASK | ufid_flag::OMIT_ACTIONS;
                    let now_ms = crate::client::monotonic_ms();
                    let flows = client
                        .dump_flows(dp_ifindex, flags)
                        .map(|fs| {
                            fs.into_iter()
                                .map(|f| FlowUsage {
                                    ufid: f.ufid.as_deref().and_then(Ufid::from_bytes),
                                    key_raw: if f.ufid.is_none() { f.key_raw } else { None },
                                    packets: f.packets,
                                    bytes: f.bytes,
                                    used_ms: f.used_ms,
                                })
                                .collect()
                        })
                        .map_err(|e| e.to_string());
                    if reports.send(DumpReport { token, now_ms, flows }).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("dumper thread: {e}"))?;
        Ok(Dumper {
            requests: tx,
            thread: Some(thread),
        })
    }

    /// Asks for a dump; its report carries `token`.
    pub fn request(&self, token: u64) {
        let _ = self.requests.send(token);
    }
}

impl Drop for Dumper {
    fn drop(&mut self) {
        let (tx, _) = crossbeam_channel::unbounded();
        drop(std::mem::replace(&mut self.requests, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A switch's flow as the kernel must get it: naming its recirc_id. The
/// kernel matches a flow whose key leaves recirc_id out on every
/// recirculation id, so it would take the packets that recirculate; the
/// switch's megaflows are each for one id (0 unless recirculated).
fn naming_recirc_id(m: &odpx_classifier::Match) -> odpx_classifier::Match {
    let mut m = *m;
    m.key.attrs |= odpx_classifier::key::attr::RECIRC_ID;
    m.mask.attrs |= odpx_classifier::key::attr::RECIRC_ID;
    m.mask.recirc_id = !0;
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::encode_packet_key;
    use crate::uapi::packet_cmd;
    use odpx_classifier::key::attr;

    fn upcall(cmd: u8, key_raw: Vec<u8>) -> crate::upcall::Upcall {
        crate::upcall::Upcall {
            cmd,
            dp_ifindex: 1,
            packet: vec![0; 60],
            key_raw,
            userdata: None,
            orig_len: None,
            mru: None,
            hash: None,
        }
    }

    #[test]
    fn handlers_decode_misses_and_count_what_they_cannot() {
        let c = HandlerCounters::default();
        let log = RateLimitedLog::new(5);
        let mut key = FlowKey::ZERO;
        key.attrs = attr::IN_PORT | attr::ETHERNET;
        key.in_port = 3;
        let good = encode_packet_key(&key, &[]);
        let Some(Received::Miss(u)) = decode(Ok(upcall(packet_cmd::MISS, good.clone())), &c, &log) else {
            panic!("a miss")
        };
        assert_eq!((u.key.in_port, u.key_raw), (3, good.clone()));
        // A key cut in the middle of an attribute: counted, never passed on.
        assert!(decode(Ok(upcall(packet_cmd::MISS, good[..good.len() - 3].to_vec())), &c, &log).is_none());
        assert!(decode(Ok(upcall(packet_cmd::ACTION, good.clone())), &c, &log).is_none());
        // A userspace() action's packet, with its user data: for the agent.
        let mut action = upcall(packet_cmd::ACTION, good);
        action.userdata = Some(vec![0xc1, 1]);
        assert!(matches!(
            decode(Ok(action), &c, &log),
            Some(Received::Action { userdata, .. }) if userdata == [0xc1, 1]
        ));
        assert!(decode(Err(OdpError::Netlink("bad".into())), &c, &log).is_none());
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(
            (l(&c.received), l(&c.undecodable), l(&c.actions), l(&c.malformed)),
            (2, 1, 2, 1)
        );
    }
}
