//! The OpenFlow 1.3 agent: odpx programmed by controllers (Faucet, any
//! os-ken or Ryu application, ONOS) and inspected with `ovs-ofctl`.
//!
//! # What
//! The agent dials the configured controllers (and dials again, backing
//! off, when a connection drops), listens on passive sockets for
//! `ovs-ofctl`, and serves each connection's OpenFlow session. Controllers
//! change the rule tables through the owner core, as rule files and
//! `odpx ctl` do: their FLOW_MODs are rule ops ([`crate::core::rules`]),
//! so the caches stay on and every megaflow a change affects is
//! revalidated; a BARRIER is answered once every datapath agrees.
//!
//! # Rooms
//! * [`codec`]: the wire, no I/O, fuzzed;
//! * [`convert`]: OpenFlow's matches, instructions and statistics to
//!   odpx's rule model and back;
//! * [`session`]: one connection's protocol (roles, configuration,
//!   requests and answers), against a [`bridge::Bridge`] — the switch as
//!   the agent sees it;
//! * [`conn`]: a connection's threads; [`transport`]: dialing,
//!   listening, the byte streams; [`dispatch`]: packet-ins, flow
//!   removals and port status to the connections that want them;
//!   [`ratelimit`]: the packet-in token bucket; [`features`]: what the
//!   switch says of itself; [`fail_open`]: when a standalone switch
//!   switches on its own. Its counters are [`crate::openflow_counters`].
//!
//! # Threads
//! One thread per controller to dial, one per passive socket to accept,
//! two per connection (read and answer; write), and the dispatcher. They
//! share [`Shared`]: the bridge, the roles, the live connections, the
//! counters, and the stop flag. Messages between them are bytes and data.

pub mod bridge;
pub mod codec;
pub mod conn;
pub mod convert;
pub mod dispatch;
pub mod fail_open;
pub mod features;
pub mod ratelimit;
pub mod session;
pub mod tls;
pub mod transport;

use self::bridge::{Bridge, SwitchBridge};
use self::conn::ConnHandle;
use self::fail_open::FailOpen;
use self::session::Roles;
use self::tls::Tls;
use self::transport::{Listener, Target};
use crate::config::{Config, FailMode, OpenflowSection};
use crate::openflow_counters::OpenflowCounters;
use crate::owner::Event;
use crate::switch::Switch;
use crossbeam_channel::{select, Receiver};
use odpx_dataplane::upcalls::FromDatapath;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the agent's threads share (see the module documentation).
pub struct Shared {
    pub bridge: Arc<dyn Bridge>,
    pub roles: Arc<Roles>,
    pub counters: Arc<OpenflowCounters>,
    pub probe_interval: Duration,
    pub packet_in_rate: u32,
    pub packet_in_burst: u32,
    conns: Mutex<Vec<Arc<ConnHandle>>>,
    stop: AtomicBool,
    /// Standalone with controllers to dial: when to fail open.
    fail_open: Option<Mutex<FailOpen>>,
}

impl Shared {
    fn conns(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ConnHandle>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(&self, c: Arc<ConnHandle>) {
        let mut v = self.conns();
        v.push(c);
        self.counters.connections.store(v.len() as u64, Ordering::Relaxed);
    }

    pub fn unregister(&self, id: u64) {
        let mut v = self.conns();
        v.retain(|c| c.id != id);
        self.counters.connections.store(v.len() as u64, Ordering::Relaxed);
    }

    /// The live connections.
    pub fn connections(&self) -> Vec<Arc<ConnHandle>> {
        self.conns().clone()
    }

    /// Whether a controller's session is up (a passive socket's peer,
    /// such as `ovs-ofctl`, is no controller).
    pub fn controller_connected(&self) -> bool {
        self.conns().iter().any(|c| c.controller && c.state().ready)
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The running agent; stops its threads and closes its connections when
/// dropped.
pub struct Agent {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    listeners: Vec<Arc<Listener>>,
    /// Closed to wake the dispatcher and the dialers.
    stop_tx: Option<crossbeam_channel::Sender<()>>,
}

/// How long a dial waits for the controller.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait before dialing again.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How often the dispatcher looks at the ports.
const PORT_WATCH: Duration = Duration::from_millis(100);
/// Packets for the controllers the dispatcher takes together, at most.
const PACKET_IN_BATCH: usize = 256;

/// A datapath id from the first port's name, when none is configured.
fn default_dpid(cfg: &Config) -> u64 {
    let name = cfg.ports.first().map_or("odpx", |p| p.name.as_str());
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) & 0x0000_ffff_ffff_ffff
}

impl Agent {
    /// Starts the agent of a running switch, if `[openflow]` is configured.
    pub fn start(sw: &Arc<Switch>, cfg: &Config) -> Result<Option<Agent>, String> {
        let Some(of) = &cfg.openflow else { return Ok(None) };
        let dpid = of.dpid()?.unwrap_or_else(|| default_dpid(cfg));
        let bridge = Arc::new(SwitchBridge::new(sw.clone(), cfg, dpid));
        let packets = sw.take_packet_ins().unwrap_or_else(crossbeam_channel::never);
        let events = sw.owner().subscribe();
        let agent = Agent::start_with(bridge, of, packets, events)?;
        let targets = of.controller.iter().chain(&of.listen).cloned().collect();
        sw.attach_openflow(targets, agent.counters().clone());
        Ok(Some(agent))
    }

    /// Starts the agent over any bridge (tests use a model switch).
    pub fn start_with(
        bridge: Arc<dyn Bridge>,
        of: &OpenflowSection,
        packets: Receiver<FromDatapath>,
        events: Receiver<Event>,
    ) -> Result<Agent, String> {
        let targets = of.targets()?;
        let probe_interval = Duration::from_secs(of.probe_interval_s);
        let dials = targets.iter().any(|t| !t.is_passive());
        let fail_open = (of.fail_mode == FailMode::Standalone && dials)
            .then(|| Mutex::new(FailOpen::new(probe_interval, bridge.now())));
        let tls = of.ssl.as_ref().map(Tls::load).transpose()?;
        let listeners = targets
            .iter()
            .filter(|t| t.is_passive())
            .map(|t| Listener::bind(t, tls.as_ref()).map(Arc::new))
            .collect::<Result<Vec<_>, String>>()?;
        let shared = Arc::new(Shared {
            bridge,
            roles: Arc::new(Roles::default()),
            counters: Arc::new(OpenflowCounters::default()),
            probe_interval,
            packet_in_rate: of.packet_in_rate,
            packet_in_burst: of.packet_in_burst,
            conns: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            fail_open,
        });
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let mut threads = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| format!("openflow: starting a thread: {e}"))
        };
        for l in &listeners {
            let (l, s) = (l.clone(), shared.clone());
            threads.push(spawn("of-listen", Box::new(move || accept_loop(&l, &s)))?);
        }
        let max_backoff = Duration::from_millis(of.max_backoff_ms);
        for t in targets.into_iter().filter(|t| !t.is_passive()) {
            let (s, stop, tls) = (shared.clone(), stop_rx.clone(), tls.clone());
            threads.push(spawn(
                "of-dial",
                Box::new(move || dial_loop(&t, tls.as_ref(), &s, &stop, max_backoff)),
            )?);
        }
        let s = shared.clone();
        threads.push(spawn(
            "of-dispatch",
            Box::new(move || dispatch_loop(&s, &packets, &events, &stop_rx)),
        )?);
        Ok(Agent {
            shared,
            threads,
            listeners,
            stop_tx: Some(stop_tx),
        })
    }

    pub fn counters(&self) -> &Arc<OpenflowCounters> {
        &self.shared.counters
    }

    /// The TCP ports the passive TCP targets listen on (`ptcp:0` picks one).
    pub fn tcp_ports(&self) -> Vec<u16> {
        self.listeners.iter().filter_map(|l| l.local_port()).collect()
    }

    /// Stops every thread and closes every connection.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        drop(self.stop_tx.take());
        for l in &self.listeners {
            l.wake();
        }
        for c in self.shared.connections() {
            c.close();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts connections on a passive target, each served on a thread of
/// its own.
fn accept_loop(l: &Listener, shared: &Arc<Shared>) {
    while !shared.stopping() {
        match l.accept() {
            Ok(accepted) if !shared.stopping() => {
                let s = shared.clone();
                let spawned =
                    std::thread::Builder::new()
                        .name("of-conn".into())
                        .spawn(move || match accepted.stream() {
                            Ok(stream) => {
                                conn::serve(stream, &s, false);
                            }
                            Err(e) => tracing::warn!("openflow: a connection refused: {e}"),
                        });
                if let Err(e) = spawned {
                    tracing::warn!("openflow: serving a connection: {e}");
                }
            }
            Ok(_) => return,
            Err(e) => {
                tracing::warn!("openflow: accept: {e}");
                std::thread::sleep(FIRST_BACKOFF);
            }
        }
    }
}

/// Dials a controller, serves the connection, and dials again when it
/// ends, waiting longer after each failure up to `max_backoff`.
fn dial_loop(t: &Target, tls: Option<&Tls>, shared: &Arc<Shared>, stop: &Receiver<()>, max_backoff: Duration) {
    let mut backoff = FIRST_BACKOFF.min(max_backoff);
    // Each new reason is logged once (a refused connection, then a
    // certificate the CA did not sign, ...).
    let mut said: Option<String> = None;
    while !shared.stopping() {
        match transport::dial(t, DIAL_TIMEOUT, tls) {
            Ok(stream) => {
                said = None;
                backoff = FIRST_BACKOFF.min(max_backoff);
                conn::serve(stream, shared, true);
            }
            Err(e) => {
                let why = e.to_string();
                if said.as_ref() != Some(&why) {
                    tracing::warn!(
                        "openflow: {t}: {why}; dialing again every {} ms at most",
                        max_backoff.as_millis()
                    );
                    said = Some(why);
                }
                if stop.recv_timeout(backoff).is_err_and(|e| e.is_disconnected()) {
                    return;
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

/// Packet-ins, removed rules and port changes to the connections.
fn dispatch_loop(
    shared: &Arc<Shared>,
    packets: &Receiver<FromDatapath>,
    events: &Receiver<Event>,
    stop: &Receiver<()>,
) {
    let tick = crossbeam_channel::tick(PORT_WATCH);
    let mut ports = shared.bridge.ports();
    loop {
        select! {
            recv(packets) -> p => match p {
                Ok(p) => {
                    // And whatever else waits, up to a bound: together.
                    let mut batch = vec![p];
                    batch.extend(packets.try_iter().take(PACKET_IN_BATCH - 1));
                    dispatch::packet_ins(shared, &batch, Instant::now());
                }
                Err(_) => std::thread::sleep(PORT_WATCH),
            },
            recv(events) -> e => match e {
                Ok(Event::RulesRemoved(rules)) => dispatch::rules_removed(shared, &rules, shared.bridge.now()),
                Err(_) => std::thread::sleep(PORT_WATCH),
            },
            recv(tick) -> _ => {
                watch_fail_open(shared);
                let now = shared.bridge.ports();
                let changes = dispatch::port_changes(&ports, &now);
                if !changes.is_empty() {
                    dispatch::port_status(shared, changes);
                    ports = now;
                }
            }
            recv(stop) -> _ => return,
        }
    }
}

/// Fails open, or ends it, when [`FailOpen`] says so.
fn watch_fail_open(shared: &Shared) {
    let Some(f) = &shared.fail_open else { return };
    let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
    let Some(open) = f.decide(shared.controller_connected(), shared.bridge.now()) else {
        return;
    };
    match shared.bridge.fail_open(open) {
        Ok(()) => {
            f.applied(open);
            shared.counters.fail_open.store(u64::from(open), Ordering::Relaxed);
            if open {
                shared.counters.fail_open_entered.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "openflow: no controller for {} s: failing open (NORMAL switching until one connects)",
                    f.trigger().as_secs()
                );
            } else {
                tracing::info!("openflow: a controller is connected: fail-open ends, its rules decide again");
            }
        }
        Err(e) => tracing::warn!(
            "openflow: fail-open {}: {e}; trying again",
            if open { "on" } else { "off" }
        ),
    }
}
