//! The switch: its datapath (PMD threads on AF_XDP ports, or the kernel
//! datapath) and the translator, started from a [`Config`] and driven
//! through the control socket ([`crate::ctl`]).
//!
//! # Start and stop
//! [`Switch::start`] parses the rules, opens every port, starts the
//! translator and the PMDs; if anything fails, what was opened is closed
//! again (ports detach their XDP programs on drop) and the error names the
//! part that failed. In kernel mode it creates or reuses the kernel
//! datapath and its vports instead, adopts the flows a previous run left
//! there (or flushes them, if asked), then starts the upcall handlers.
//! [`Switch::stop`] stops the PMDs, then the translator; dropping the ports
//! removes the XDP programs. The kernel datapath, its vports and flows
//! stay when the daemon stops (they keep forwarding, and the next run
//! adopts them); `odpx datapath delete` removes them.
//!
//! # Threads
//! One thread per PMD (or one upcall handler per CPU and a dump thread, in
//! kernel mode), one translator thread, and the caller's. The switch
//! object itself is only read after start (ports, PMD handles, counters)
//! and is shared with the control-socket thread behind an `Arc`.

use crate::config::{Config, DatapathKind, PortType, XdpModeSetting};
use crate::hybrid::{self, Offload, OffloadCounters};
use crate::kernel::{self, Adopted, KernelBackend, OwnerSink};
use crate::translator::{self, lock, Datapaths, Inputs, Request, Translator, TranslatorCounters};
use crate::tunnels::Tunnels;
use crate::underlay::UnderlayView;
use crossbeam_channel::Sender;
use odpx_classifier::odp::{self, FlowLine, FlowStatsText, OdpKey};
use odpx_classifier::rules::{ofctl, RuleSet};
use odpx_dataplane::pmd::{self, PmdConfig, PmdDoor, PmdHandle, PmdMsg, PortTable, SlowPath};
use odpx_dataplane::port::Port;
use odpx_dataplane::steer::SteeringTable;
use odpx_dataplane::sys::bpf::XdpAttach;
use odpx_dataplane::upcalls::upcall_queues;
use odpx_offload::kernel::{Dumper, HandlerCounters, KernelDatapath, VportWant};
use odpx_offload::policy::OffloadSettings;
use odpx_offload::rtnl::{Change, Rtnl, RtnlError, RtnlMonitor};
use odpx_offload::OdpClient;
use odpx_offload::VportType;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Switch {
    /// The AF_XDP or in-memory ports (none in kernel mode).
    pub ports: PortTable,
    pmds: Vec<PmdHandle>,
    translator: Option<std::thread::JoinHandle<()>>,
    pub requests: Sender<Request>,
    pub translator_counters: Arc<TranslatorCounters>,
    started: Instant,
    /// Kernel mode: the datapath and its upcall handlers.
    pub kernel: Option<KernelInfo>,
    /// The rtnetlink monitor that follows the underlay (tunnel ports only).
    underlay_monitor: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    /// Hybrid mode: the offload thread, and the offload counters.
    offload_thread: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    pub offload_counters: Option<Arc<OffloadCounters>>,
    pub(crate) offload_policy: Option<OffloadSettings>,
    pub mode: DatapathKind,
}

/// Hybrid mode's kernel side, opened before the PMDs start.
struct HybridParts {
    dp: KernelDatapath,
    steering: SteeringTable,
    /// The ports that are kernel vports, and the VXLAN ones among them.
    vports: Vec<u32>,
    tunnel_vports: Vec<u32>,
    /// The socket `show` and `dump-megaflows` read the datapath with.
    client: std::sync::Mutex<OdpClient>,
}

/// Where the switch's tunnels learn the underlay.
pub enum UnderlaySource {
    /// The kernel of the switch's network namespace, followed live.
    Kernel,
    /// Fixed changes (tests of the translator on in-memory ports), further
    /// ones sent as [`Request::Underlay`].
    Given(Vec<Change>),
}

/// Follows the kernel's underlay changes and sends them to the owner,
/// until `stop`; after lost notifications, a full dump replaces the view.
fn underlay_monitor(mut mon: RtnlMonitor, requests: Sender<Request>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let msg = match mon.recv(Duration::from_millis(200)) {
            Ok(changes) if changes.is_empty() => continue,
            Ok(changes) => Request::Underlay { changes, reload: false },
            Err(RtnlError::Overflow) => match Rtnl::open().and_then(|mut r| r.dump_all()) {
                Ok(changes) => Request::Underlay { changes, reload: true },
                Err(e) => {
                    eprintln!("odpx: underlay: reloading after lost notifications: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            },
            Err(e) => {
                eprintln!("odpx: underlay monitor: {e}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if requests.send(msg).is_err() {
            return;
        }
    }
}

/// What a kernel-mode switch knows of its datapath.
pub struct KernelInfo {
    pub dp_name: String,
    pub dp_ifindex: i32,
    /// How misses reach the handlers.
    pub upcall_mode: String,
    pub handlers: Arc<HandlerCounters>,
    pub adopted: Adopted,
    /// A socket for reading the datapath (`show`, `dump-megaflows`),
    /// opened at start: it stays in the datapath's network namespace
    /// whatever namespace the caller is in.
    client: std::sync::Mutex<OdpClient>,
}

impl KernelInfo {
    /// Hybrid mode: port `no`'s netdev vport added again if the kernel
    /// removed it with its interface ([`odpx_offload::kernel::ensure_netdev_vport`]);
    /// true if it was.
    pub fn ensure_vport(&self, no: u32, name: &str) -> Result<bool, String> {
        let mut c = self.client.lock().map_err(|_| "datapath socket poisoned".to_string())?;
        odpx_offload::kernel::ensure_netdev_vport(&mut c, self.dp_ifindex, no, name)
            .map_err(|e| format!("datapath {}: vport {name}: {e}", self.dp_name))
    }

    /// The datapath's statistics and ports, and its vports with theirs.
    pub fn datapath(&self) -> Result<(odpx_offload::Datapath, Vec<odpx_offload::Vport>), String> {
        let mut c = self.client.lock().map_err(|_| "datapath socket poisoned".to_string())?;
        let dp = c.get_datapath(&self.dp_name).map_err(|e| e.to_string())?;
        let vports = c.list_vports(dp.dp_ifindex).map_err(|e| e.to_string())?;
        Ok((dp, vports))
    }

    /// Hybrid mode's kernel flows: `ovs-dpctl dump-flows` lines whose
    /// statistics include what the megaflow carried in a PMD before it
    /// moved, marked `offloaded:yes, dp:kernel` (moved by the offload
    /// engine) or `dp:kernel` (installed by a kernel miss), as Open
    /// vSwitch marks the flows of its datapath layers.
    pub fn flows_text_marked(
        &self,
        marks: &[(odpx_classifier::flow_op::Ufid, bool, crate::registry::Usage)],
    ) -> Result<String, String> {
        let by_ufid: std::collections::HashMap<[u8; 16], (bool, crate::registry::Usage)> =
            marks.iter().map(|(u, o, c)| (*u.as_bytes(), (*o, *c))).collect();
        let mut c = self.client.lock().map_err(|_| "datapath socket poisoned".to_string())?;
        let mut s = String::new();
        for mut f in c.dump_flows(self.dp_ifindex, 0).map_err(|e| e.to_string())? {
            let known = f
                .ufid
                .as_deref()
                .and_then(|u| <[u8; 16]>::try_from(u).ok())
                .and_then(|u| by_ufid.get(&u));
            let mark = match known {
                Some((true, carried)) => {
                    f.packets += carried.packets;
                    f.bytes += carried.bytes;
                    ", offloaded:yes, dp:kernel"
                }
                _ => ", dp:kernel",
            };
            s += &with_mark(&f.to_line(true, false).map_err(|e| e.to_string())?, mark);
            s.push('\n');
        }
        Ok(s)
    }

    /// Every kernel flow, as `ovs-dpctl dump-flows` prints it.
    pub fn flows_text(&self) -> Result<String, String> {
        let mut c = self.client.lock().map_err(|_| "datapath socket poisoned".to_string())?;
        let mut s = String::new();
        for f in c.dump_flows(self.dp_ifindex, 0).map_err(|e| e.to_string())? {
            s += &f.to_line(true, false).map_err(|e| e.to_string())?;
            s.push('\n');
        }
        Ok(s)
    }
}

/// How `odpx run` starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartOptions {
    /// Kernel mode: delete the flows a previous run left, instead of
    /// adopting them.
    pub flush: bool,
}

/// Kernel and hybrid modes, once the owner exists: the upcall handlers
/// (one per CPU, answering through the owner), what `show` reports of the
/// kernel, and the translator thread's own socket for sweeping.
fn start_kernel_side(
    cfg: &Config,
    owner: &Arc<std::sync::Mutex<Translator>>,
    dp_ifindex: i32,
    adopted: Adopted,
    client: std::sync::Mutex<OdpClient>,
) -> Result<(KernelInfo, (OdpClient, i32)), String> {
    let handlers = Arc::new(HandlerCounters::default());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sink = Arc::new(OwnerSink(Arc::downgrade(owner)));
    let upcall_mode = lock(owner).start_handlers(cpus, sink, handlers.clone())?;
    let sweeper = (OdpClient::connect().map_err(|e| e.to_string())?, dp_ifindex);
    let info = KernelInfo {
        dp_name: cfg.switch.dp_name.clone(),
        dp_ifindex,
        upcall_mode,
        handlers,
        adopted,
        client,
    };
    Ok((info, sweeper))
}

/// Where hybrid mode's steering program runs on interface `name` (see
/// [`crate::config::XdpModeSetting`]).
fn steering_attach(setting: XdpModeSetting, name: &str) -> XdpAttach {
    match setting {
        XdpModeSetting::Native => XdpAttach::Native,
        XdpModeSetting::Generic => XdpAttach::Generic,
        XdpModeSetting::Auto if Path::new(&format!("/sys/class/net/{name}/device")).exists() => XdpAttach::Native,
        XdpModeSetting::Auto => XdpAttach::Generic,
    }
}

/// Userspace mode: a kernel datapath of this name that a kernel or
/// hybrid run left would keep its flows and vports (whose receive hook
/// takes every packet XDP passes), so it goes, and the log says so. A
/// kernel without the Open vSwitch module has nothing to remove.
fn remove_left_datapath(cfg: &Config) -> Result<(), String> {
    let Ok(mut c) = OdpClient::connect() else {
        return Ok(());
    };
    let name = &cfg.switch.dp_name;
    if c.get_datapath(name).is_err() {
        return Ok(());
    }
    c.delete_datapath(name)
        .map_err(|e| format!("datapath {name}, left by a kernel or hybrid run: {e}"))?;
    eprintln!("odpx: removed kernel datapath {name}, left by a kernel or hybrid run (datapath = \"userspace\" now)");
    Ok(())
}

/// Parses the configured rules (all or none).
fn load_rules(cfg: &Config) -> Result<RuleSet, String> {
    let text = cfg.rules_text()?;
    let rules = ofctl::parse_rules(&text).map_err(|e| format!("rules: line {}: {}; no rules loaded", e.line, e.err))?;
    let mut set = RuleSet::new();
    for r in rules {
        set.add(r);
    }
    Ok(set)
}

impl Switch {
    /// Starts the switch on already-opened ports (numbered by position +1).
    pub fn start_with_ports(cfg: &Config, ports: Vec<Port>) -> Result<Switch, String> {
        Switch::start_with_ports_on(cfg, ports, UnderlaySource::Kernel)
    }

    /// [`Switch::start_with_ports`], the tunnels' underlay from `underlay`.
    pub fn start_with_ports_on(cfg: &Config, ports: Vec<Port>, underlay: UnderlaySource) -> Result<Switch, String> {
        Switch::start_pmds(cfg, ports, underlay, None)
    }

    /// Starts the PMDs on `ports` and the owner; in hybrid mode with the
    /// kernel datapath and the steering tables as well.
    fn start_pmds(
        cfg: &Config,
        ports: Vec<Port>,
        underlay: UnderlaySource,
        hybrid: Option<HybridParts>,
    ) -> Result<Switch, String> {
        let set = load_rules(cfg)?;
        // Underlay ports are not switched: not flooded, not learned on.
        let underlays: Vec<u32> = cfg
            .ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kind == PortType::Underlay)
            .map(|(i, _)| i as u32 + 1)
            .collect();
        let port_nos: Vec<u32> = ports.iter().map(|p| p.no).filter(|n| !underlays.contains(n)).collect();
        let slots = ports.iter().map(|p| p.no as usize + 1).max().unwrap_or(1);
        let mut table: Vec<Option<Arc<Port>>> = vec![None; slots];
        let mut rxqs: Vec<(u32, usize)> = Vec::new();
        for p in ports {
            for q in 0..p.queues() {
                rxqs.push((p.no, q));
            }
            let no = p.no as usize;
            table[no] = Some(Arc::new(p));
        }
        let table: PortTable = Arc::new(table);
        let (utx, urx) = upcall_queues(table.len(), cfg.cache.upcall_queue);
        let (rtx, rrx) = crossbeam_channel::unbounded();
        let (report_tx, report_rx) = crossbeam_channel::unbounded();
        let idle = Duration::from_millis(cfg.cache.idle_timeout_ms);
        let mut pmds = Vec::new();
        let n = cfg.pmd.cores.len();
        for (i, &core) in cfg.pmd.cores.iter().enumerate() {
            let mine: Vec<(u32, usize)> = rxqs
                .iter()
                .copied()
                .enumerate()
                .filter(|(j, _)| j % n == i)
                .map(|(_, q)| q)
                .collect();
            pmds.push(pmd::spawn(
                PmdConfig {
                    id: i,
                    core: Some(core),
                    rxqs: mine,
                    emc_entries: cfg.cache.emc_entries,
                    emc_insert_inv_prob: cfg.cache.emc_insert_inv_prob,
                    emc_adaptive: cfg.cache.emc_adaptive,
                    idle_wait: cfg.pmd_idle_wait(),
                    megaflow_limit: cfg.cache.megaflow_limit,
                },
                table.clone(),
                SlowPath {
                    upcalls: utx.clone(),
                    reports: report_tx.clone(),
                },
            ));
        }
        drop((utx, report_tx));
        let pmd_txs: Vec<PmdDoor> = pmds.iter().map(|p| p.tx.clone()).collect();
        let mut kernel_parts = None;
        let mut offload_policy = None;
        let datapaths = match hybrid {
            None => Datapaths::userspace(pmd_txs),
            Some(h) => {
                let dp_ifindex = h.dp.dp_ifindex();
                let (dump_tx, dump_rx) = crossbeam_channel::unbounded();
                let dumper = Dumper::start(dp_ifindex, dump_tx)?;
                let o = &cfg.offload;
                let settings = OffloadSettings {
                    min_pps: o.min_pps,
                    min_duration: Duration::from_millis(o.min_duration_ms),
                    max_flows: o.max_flows,
                    interval: translator::SWEEP_INTERVAL,
                };
                offload_policy = Some(settings);
                let offload = Offload::new(Box::new(h.steering), settings, o.enabled, h.vports, h.tunnel_vports);
                kernel_parts = Some((dp_ifindex, dump_rx, h.client));
                Datapaths::hybrid(pmd_txs, KernelBackend::new(h.dp, dumper), offload)
            }
        };
        let mut t = Translator::new(set, port_nos, datapaths, cfg.cache.megaflow_limit, idle);
        let mut monitor = None;
        if !cfg.vxlan_endpoints().is_empty() {
            let (view, rtnl) = match underlay {
                UnderlaySource::Given(changes) => (UnderlayView::from_changes(changes), None),
                UnderlaySource::Kernel => {
                    // The monitor first: nothing falls between the dump and it.
                    let mon = RtnlMonitor::open().map_err(|e| format!("underlay: {e}"))?;
                    let mut rtnl = Rtnl::open().map_err(|e| format!("underlay: {e}"))?;
                    let dump = rtnl.dump_all().map_err(|e| format!("underlay: {e}"))?;
                    monitor = Some(mon);
                    (UnderlayView::from_changes(dump), Some(rtnl))
                }
            };
            t.set_tunnels(Tunnels::new(cfg, Some(&table), view, rtnl));
        }
        let mut adopted = Adopted::default();
        if kernel_parts.is_some() {
            adopted = t.adopt()?;
            t.steer_adopted();
        }
        let offload_counters = t.datapaths.offload.as_ref().map(|o| o.counters.clone());
        let translator_counters = t.counters.clone();
        let mut inputs = Inputs {
            upcalls: urx,
            requests: rrx,
            pmd_reports: report_rx,
            kernel_dumps: crossbeam_channel::never(),
            kernel_sweeper: None,
        };
        let owner = Arc::new(std::sync::Mutex::new(t));
        let mut kernel = None;
        let mut offload_thread = None;
        if let Some((dp_ifindex, dump_rx, client)) = kernel_parts {
            let (info, sweeper) = start_kernel_side(cfg, &owner, dp_ifindex, adopted, client)?;
            inputs.kernel_dumps = dump_rx;
            inputs.kernel_sweeper = Some(sweeper);
            kernel = Some(info);
            let stop = Arc::new(AtomicBool::new(false));
            let (stop2, weak) = (stop.clone(), Arc::downgrade(&owner));
            let join = std::thread::Builder::new()
                .name("offload".into())
                .spawn(move || hybrid::run_offload(weak, stop2, translator::SWEEP_INTERVAL))
                .map_err(|e| format!("offload thread: {e}"))?;
            offload_thread = Some((stop, join));
        }
        let translator = std::thread::Builder::new()
            .name("translator".into())
            .spawn(move || translator::run(owner, inputs))
            .map_err(|e| format!("translator thread: {e}"))?;
        let underlay_monitor = match monitor {
            Some(mon) => {
                let stop = Arc::new(AtomicBool::new(false));
                let (stop2, requests) = (stop.clone(), rtx.clone());
                let join = std::thread::Builder::new()
                    .name("underlay".into())
                    .spawn(move || underlay_monitor(mon, requests, stop2))
                    .map_err(|e| format!("underlay thread: {e}"))?;
                Some((stop, join))
            }
            None => None,
        };
        Ok(Switch {
            ports: table,
            pmds,
            translator: Some(translator),
            requests: rtx,
            translator_counters,
            started: Instant::now(),
            kernel,
            underlay_monitor,
            mode: if offload_thread.is_some() {
                DatapathKind::Hybrid
            } else {
                DatapathKind::Userspace
            },
            offload_thread,
            offload_counters,
            offload_policy,
        })
    }

    /// Opens the configured ports (all or none) and starts the switch.
    pub fn start(cfg: &Config) -> Result<Switch, String> {
        Switch::start_with(cfg, StartOptions::default())
    }

    /// [`Switch::start`] with options.
    pub fn start_with(cfg: &Config, opts: StartOptions) -> Result<Switch, String> {
        match cfg.switch.datapath {
            DatapathKind::Kernel => return Switch::start_kernel(cfg, opts),
            DatapathKind::Hybrid => return Switch::start_hybrid(cfg, opts),
            DatapathKind::Userspace => remove_left_datapath(cfg)?,
        }
        // Rules first: a bad rule file must not leave XDP programs behind.
        load_rules(cfg)?;
        let ports = Switch::open_ports(cfg, None)?;
        Switch::start_with_ports(cfg, ports)
    }

    /// Hybrid mode: the kernel datapath with the switched ports as vports,
    /// the steering tables, the ports behind the steering program, then
    /// the PMDs and the owner, which adopts the flows a previous run left.
    fn start_hybrid(cfg: &Config, opts: StartOptions) -> Result<Switch, String> {
        load_rules(cfg)?;
        // Switched interfaces are netdev vports; VXLAN ports are VXLAN
        // vports (the first one of each UDP port: the kernel binds it once),
        // so that their pushes can be offloaded. Underlay ports stay the
        // kernel's own.
        let mut wanted: Vec<VportWant> = Vec::new();
        for (p, no) in cfg.ports.iter().zip(1..) {
            let w = match (p.kind, p.vxlan()) {
                (PortType::Afxdp, _) => VportWant {
                    name: p.name.clone(),
                    no,
                    vtype: VportType::Netdev,
                    dst_port: None,
                },
                (PortType::Vxlan, Some(v)) if !wanted.iter().any(|w| w.dst_port == Some(v.dst_port)) => VportWant {
                    name: p.name.clone(),
                    no,
                    vtype: VportType::Vxlan,
                    dst_port: Some(v.dst_port),
                },
                _ => continue,
            };
            wanted.push(w);
        }
        let mut dp = KernelDatapath::open_numbered(&cfg.switch.dp_name, &wanted)?;
        if opts.flush {
            dp.flush()
                .map_err(|e| format!("datapath {}: flush: {e}", cfg.switch.dp_name))?;
        }
        let steering = SteeringTable::new(cfg.offload.max_flows).map_err(|e| format!("steering tables: {e}"))?;
        let ports = Switch::open_ports(cfg, Some(&steering))?;
        let parts = HybridParts {
            dp,
            steering,
            vports: wanted.iter().map(|w| w.no).collect(),
            tunnel_vports: wanted
                .iter()
                .filter(|w| w.vtype == VportType::Vxlan)
                .map(|w| w.no)
                .collect(),
            client: std::sync::Mutex::new(OdpClient::connect().map_err(|e| e.to_string())?),
        };
        Switch::start_pmds(cfg, ports, UnderlaySource::Kernel, Some(parts))
    }

    /// Opens the configured ports (all or none); switched interfaces
    /// behind the steering program of `steering` in hybrid mode.
    fn open_ports(cfg: &Config, steering: Option<&SteeringTable>) -> Result<Vec<Port>, String> {
        let mut ports = Vec::new();
        let endpoints = cfg.vxlan_endpoints();
        for (i, p) in cfg.ports.iter().enumerate() {
            let no = i as u32 + 1;
            let port = match p.kind {
                PortType::Afxdp => match steering {
                    Some(t) => Port::open_steered(no, &p.name, t, steering_attach(cfg.switch.xdp_mode, &p.name)),
                    None => Port::open_xdp(no, &p.name),
                }
                .map_err(|e| format!("port {}: {e}", p.name))?,
                PortType::Underlay => Port::open_underlay(no, &p.name).map_err(|e| format!("port {}: {e}", p.name))?,
                PortType::Memory => Port::memory(no, &p.name, false),
                PortType::Vxlan => {
                    let (_, e) = endpoints
                        .iter()
                        .find(|(n, _)| *n == no)
                        .ok_or_else(|| format!("port {}: no VXLAN settings", p.name))?;
                    Port::vxlan(no, &p.name, *e)
                }
            };
            ports.push(port);
        }
        Ok(ports)
    }

    /// Kernel mode: the datapath, its vports, the owner and the handlers.
    fn start_kernel(cfg: &Config, opts: StartOptions) -> Result<Switch, String> {
        let set = load_rules(cfg)?;
        if let Some(e) = set.iter().find_map(kernel::refusal) {
            return Err(format!("{e}; no rules loaded"));
        }
        let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
        let mut dp = KernelDatapath::open(&cfg.switch.dp_name, &names)?;
        let client = std::sync::Mutex::new(OdpClient::connect().map_err(|e| e.to_string())?);
        if opts.flush {
            dp.flush()
                .map_err(|e| format!("datapath {}: flush: {e}", cfg.switch.dp_name))?;
        }
        let dp_ifindex = dp.dp_ifindex();
        let (dump_tx, dump_rx) = crossbeam_channel::unbounded();
        let dumper = Dumper::start(dp_ifindex, dump_tx)?;
        let port_nos: Vec<u32> = (1..=cfg.ports.len() as u32).collect();
        let mut t = Translator::new(
            set,
            port_nos,
            Datapaths::kernel(KernelBackend::new(dp, dumper)),
            cfg.cache.megaflow_limit,
            Duration::from_millis(cfg.cache.idle_timeout_ms),
        );
        let adopted = t.adopt()?;
        let translator_counters = t.counters.clone();
        let owner = Arc::new(std::sync::Mutex::new(t));
        let (info, sweeper) = start_kernel_side(cfg, &owner, dp_ifindex, adopted, client)?;
        let (rtx, rrx) = crossbeam_channel::unbounded();
        let inputs = Inputs {
            // No PMDs: nothing ever rings.
            upcalls: upcall_queues(1, 1).1,
            requests: rrx,
            pmd_reports: crossbeam_channel::never(),
            kernel_dumps: dump_rx,
            kernel_sweeper: Some(sweeper),
        };
        let translator = std::thread::Builder::new()
            .name("translator".into())
            .spawn(move || translator::run(owner, inputs))
            .map_err(|e| format!("translator thread: {e}"))?;
        Ok(Switch {
            ports: Arc::new(Vec::new()),
            pmds: Vec::new(),
            translator: Some(translator),
            requests: rtx,
            translator_counters,
            started: Instant::now(),
            kernel: Some(info),
            underlay_monitor: None,
            offload_thread: None,
            offload_counters: None,
            offload_policy: None,
            mode: DatapathKind::Kernel,
        })
    }

    pub fn stop(&mut self) {
        for (stop, join) in [self.underlay_monitor.take(), self.offload_thread.take()]
            .into_iter()
            .flatten()
        {
            stop.store(true, Ordering::Relaxed);
            let _ = join.join();
        }
        for p in &mut self.pmds {
            p.stop();
        }
        let _ = self.requests.send(Request::Stop);
        if let Some(t) = self.translator.take() {
            let _ = t.join();
        }
    }

    pub fn pmds(&self) -> &[PmdHandle] {
        &self.pmds
    }

    /// Time since the switch started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Request) -> Result<T, String> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.requests
            .send(make(tx))
            .map_err(|_| "the translator has stopped".to_string())?;
        rx.recv_timeout(Duration::from_secs(30))
            .map_err(|_| "the translator did not answer".to_string())
    }

    /// Asks for a change that is answered once every datapath agrees.
    pub(crate) fn change(&self, make: impl FnOnce(Sender<Result<usize, String>>) -> Request) -> Result<usize, String> {
        self.ask(make)?
    }

    /// Returns once every datapath has applied everything the megaflow
    /// owner decided before the call.
    pub fn sync(&self) -> Result<(), String> {
        self.change(Request::Sync).map(|_| ())
    }

    /// Tells the owner a port's link went down or came back; returns once
    /// every datapath agrees.
    pub fn port_state(&self, port: u32, up: bool) -> Result<(), String> {
        self.change(|reply| Request::PortState { port, up, reply }).map(|_| ())
    }

    /// `ctl show`.
    pub fn show(&self) -> String {
        match (&self.kernel, self.mode) {
            (Some(k), DatapathKind::Kernel) => self.show_kernel(k),
            (Some(k), _) => self.show_userspace() + &self.show_hybrid(k),
            (None, _) => self.show_userspace(),
        }
    }

    /// `ctl show` in hybrid mode, after the ports and PMDs: the kernel
    /// datapath, the offload and the share of packets each path carried.
    fn show_hybrid(&self, k: &KernelInfo) -> String {
        let mut s = format!("kernel datapath {}:\n", k.dp_name);
        s += &self.kernel_section(k);
        let Some(c) = &self.offload_counters else { return s };
        let l = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let on = if c.enabled.load(Ordering::Relaxed) { "on" } else { "off" };
        match &self.offload_policy {
            Some(p) => {
                s += &format!(
                    "offload: {on}, megaflows of at least {} pps for {} ms, up to {}\n",
                    p.min_pps,
                    p.min_duration.as_millis(),
                    p.max_flows
                )
            }
            None => s += &format!("offload: {on}\n"),
        }
        s += &format!(
            "  offloaded: {} (steering masks: {} of {})\n  proposed: {}, moved: {}, brought back: {}\n",
            l(&c.offloaded),
            l(&c.masks),
            odpx_dataplane::steer::MASK_SLOTS,
            l(&c.attempts),
            l(&c.moved),
            l(&c.brought_back),
        );
        s += &counted_reasons(&c.refusals, "  not offloaded");
        let pmd_packets: u64 = self.pmds.iter().map(|h| h.counters.snapshot().packets).sum();
        if let Ok((dp, _)) = k.datapath() {
            if let Some(st) = dp.stats {
                let all = st.n_hit + st.n_missed + pmd_packets;
                s += &format!(
                    "  packets carried: kernel {} ({:.1}%), PMDs {}\n",
                    st.n_hit,
                    100.0 * ratio(st.n_hit, all),
                    pmd_packets
                );
            }
        }
        s
    }

    /// `ctl show` for the PMDs and their ports.
    fn show_userspace(&self) -> String {
        let mut s = format!("odpx switch, up {} s\n", self.started.elapsed().as_secs());
        for p in self.ports.iter().flatten() {
            let c = p.stats.snapshot();
            let alive = if p.is_alive() { "" } else { " (interface gone)" };
            if let Some(e) = p.vxlan_endpoint() {
                let opt = |o: Option<String>| o.unwrap_or_else(|| "flow".into());
                s += &format!(
                    "  port {}: {} (vxlan: remote_ip={} key={} dst_port={}{})\n    decap packets:{} bytes:{}\n    encap packets:{} bytes:{} dropped_mtu:{} failed:{}\n",
                    p.no,
                    p.name,
                    opt(e.remote.map(|r| r.to_string())),
                    opt(e.vni.map(|k| k.to_string())),
                    e.dst_port,
                    e.local.map_or(String::new(), |l| format!(" local_ip={l}")),
                    c.rx_packets,
                    c.rx_bytes,
                    c.tx_packets,
                    c.tx_bytes,
                    c.encap_too_big,
                    c.encap_failed
                );
                continue;
            }
            let kind = match (p.mem().is_some(), p.vteps().is_some(), p.steering_native()) {
                (true, _, _) => "memory",
                (false, true, _) => "afxdp underlay",
                (false, false, Some(true)) => "afxdp, steering in native XDP",
                (false, false, Some(false)) => "afxdp, steering in generic XDP",
                (false, false, None) => "afxdp",
            };
            s += &format!(
                "  port {}: {} ({kind}, {} queue(s)){alive}\n    rx packets:{} bytes:{} dropped_too_big:{}\n    tx packets:{} bytes:{} dropped_full:{}\n",
                p.no, p.name, p.queues(), c.rx_packets, c.rx_bytes, c.rx_dropped_too_big, c.tx_packets, c.tx_bytes, c.tx_dropped_full
            );
            if c.link_down > 0 || c.link_reopened > 0 {
                s += &format!(
                    "    link: down {} time(s), opened again {} time(s)\n",
                    c.link_down, c.link_reopened
                );
            }
            let decap_drops = c.decap_malformed + c.decap_bad_checksum + c.decap_bad_flags + c.decap_unknown_vni;
            if p.vteps().is_some() || decap_drops > 0 {
                s += &format!(
                    "    decap dropped: malformed:{} bad_checksum:{} bad_flags:{} unknown_vni:{}\n",
                    c.decap_malformed, c.decap_bad_checksum, c.decap_bad_flags, c.decap_unknown_vni
                );
            }
            if let Some(k) = p.kernel_stats() {
                s += &format!(
                    "    kernel rx_dropped:{} rx_ring_full:{} fill_ring_empty:{} rx_invalid:{} tx_invalid:{}\n",
                    k.rx_dropped, k.rx_ring_full, k.rx_fill_ring_empty_descs, k.rx_invalid_descs, k.tx_invalid_descs
                );
            }
        }
        if self.ports.iter().flatten().any(|p| p.vxlan_endpoint().is_some()) {
            if let Ok(t) = self.ask(Request::TunnelShow) {
                s += &t;
            }
        }
        for h in &self.pmds {
            let q: Vec<String> = h
                .rxqs
                .iter()
                .map(|(p, q)| format!("{}:{q}", self.port_name(*p)))
                .collect();
            s += &format!(
                "  pmd {} core {}: rx queues {}\n",
                h.id,
                h.core.map_or("-".into(), |c| c.to_string()),
                q.join(" ")
            );
        }
        s
    }

    /// `ctl show` in kernel mode: the datapath as `ovs-dpctl show` gives
    /// it, the upcall handlers, and what the owner did with the kernel.
    fn show_kernel(&self, k: &KernelInfo) -> String {
        let s = format!(
            "odpx switch, kernel datapath {}, up {} s\n",
            k.dp_name,
            self.started.elapsed().as_secs()
        );
        s + &self.kernel_section(k)
    }

    /// The kernel datapath as `ovs-dpctl show` gives it, the upcall
    /// handlers, and what the owner did with the kernel.
    fn kernel_section(&self, k: &KernelInfo) -> String {
        let mut s = String::new();
        let l = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        match k.datapath() {
            Ok((dp, vports)) => {
                if let Some(st) = dp.stats {
                    s += &format!(
                        "  lookups: hit:{} missed:{} lost:{}\n  flows: {}\n",
                        st.n_hit, st.n_missed, st.n_lost, st.n_flows
                    );
                    if let Some(m) = dp.megaflow_stats {
                        s += &format!(
                            "  masks: hit:{} total:{} hit/pkt:{:.2}\n",
                            m.n_mask_hit,
                            m.n_masks,
                            ratio(m.n_mask_hit, st.n_hit + st.n_missed)
                        );
                    }
                }
                if let Some(m) = dp.masks_cache_size {
                    s += &format!("  masks cache: size:{m}\n");
                }
                for v in vports {
                    s += &format!("  port {}: {} ({})\n", v.port_no, v.name, v.vtype.name());
                    if let Some(st) = v.stats {
                        s += &format!(
                            "    rx packets:{} bytes:{} errors:{} dropped:{}\n    tx packets:{} bytes:{} errors:{} dropped:{}\n",
                            st.rx_packets, st.rx_bytes, st.rx_errors, st.rx_dropped, st.tx_packets, st.tx_bytes, st.tx_errors, st.tx_dropped
                        );
                    }
                }
            }
            Err(e) => s += &format!("  datapath {}: {e}\n", k.dp_name),
        }
        let h = &k.handlers;
        s += &format!(
            "  upcalls: {}; received {}, undecodable keys {}, malformed {}\n",
            k.upcall_mode,
            l(&h.received),
            l(&h.undecodable),
            l(&h.malformed),
        );
        let t = &self.translator_counters;
        s += &format!(
            "  adopted at start: kept {}, fixed {}, deleted {}\n  kernel flows: refused {}, already there {}, strays deleted {}, vanished {}; packets not run {}\n",
            k.adopted.kept,
            k.adopted.fixed,
            k.adopted.deleted,
            l(&t.flows_refused),
            l(&t.flows_existing),
            l(&t.kernel_strays),
            l(&t.kernel_vanished),
            l(&t.executes_failed),
        );
        s += &counted_reasons(&t.refusals, "    refused");
        s
    }

    pub(crate) fn port_name(&self, no: u32) -> String {
        self.ports
            .get(no as usize)
            .and_then(|p| p.as_ref())
            .map_or(no.to_string(), |p| p.name.clone())
    }

    /// `ctl pmd-stats-show`, in the spirit of `ovs-appctl dpif-netdev/pmd-stats-show`.
    pub fn pmd_stats(&self) -> String {
        let mut s = String::new();
        for h in &self.pmds {
            let c = h.counters.snapshot();
            let per_packet = |x: u64| ratio(x, c.packets);
            let busy = c.busy_ns + c.idle_ns;
            s += &format!(
                "pmd thread {} core {}:\n  packets received: {}\n  exact match hits: {} ({:.1}%)\n  megaflow hits: {} ({:.1}%)\n  avg. subtable lookups per megaflow hit: {:.2}\n  upcalls: {} ({:.1}%)\n  lost upcalls: {}\n  flow limit hits: {}\n  unsupported actions: {}\n  megaflows: {}\n  expired megaflows: {}\n  processing: {:.1}% of {:.3} s; {:.0} ns per packet\n  avg processing cycles per packet: {:.0}\n",
                h.id,
                h.core.map_or("-".into(), |c| c.to_string()),
                c.packets,
                c.emc_hits,
                100.0 * per_packet(c.emc_hits),
                c.megaflow_hits,
                100.0 * per_packet(c.megaflow_hits),
                ratio(c.subtables_probed, c.megaflow_hits),
                c.upcalls,
                100.0 * per_packet(c.upcalls),
                c.upcalls_lost,
                c.flow_limit_hits,
                c.unsupported_actions,
                c.megaflows,
                c.expired,
                100.0 * ratio(c.busy_ns, busy),
                busy as f64 / 1e9,
                per_packet(c.busy_ns),
                per_packet(c.busy_cycles),
            );
            s += &format!(
                "  exact match cache: {} (packets classified without it: {}; mode changes: {}{})\n",
                if c.emc_on != 0 {
                    "probed"
                } else {
                    "bypassed, it costs more than it saves"
                },
                c.emc_bypassed,
                c.emc_switches,
                if c.emc_switches > 0 {
                    format!(
                        ", the last at {} classify cycles per packet with it, {} without",
                        c.emc_cost_with, c.emc_cost_without
                    )
                } else {
                    String::new()
                },
            );
            if c.idle_waits > 0 {
                s += &format!(
                    "  idle waits for frames: {} ({:.3} s waited)\n",
                    c.idle_waits,
                    c.waited_ns as f64 / 1e9
                );
            }
            let all_cycles = c.idle_cycles + c.busy_cycles;
            s += &format!(
                "  idle cycles: {} ({:.2}%)\n  processing cycles: {} ({:.2}%)\n",
                c.idle_cycles,
                100.0 * ratio(c.idle_cycles, all_cycles),
                c.busy_cycles,
                100.0 * ratio(c.busy_cycles, all_cycles),
            );
            s += &format!(
                "  cycles per packet by stage: receive {:.0}, classify {:.0}, actions {:.0}, transmit {:.0}\n",
                per_packet(c.rx_cycles),
                per_packet(c.classify_cycles),
                per_packet(c.action_cycles),
                per_packet(c.tx_cycles),
            );
        }
        s += &translator_stats(&self.translator_counters);
        s
    }

    pub fn clear_pmd_stats(&self) {
        for h in &self.pmds {
            let _ = h.tx.send(PmdMsg::ClearStats);
        }
    }

    /// `ctl dump-megaflows`: every PMD's megaflows in ODP syntax with
    /// statistics, like `ovs-appctl dpctl/dump-flows`; in kernel mode the
    /// kernel's flows, as `ovs-dpctl dump-flows` prints them.
    pub fn dump_megaflows(&self) -> Result<String, String> {
        let mut s = String::new();
        match (&self.kernel, self.mode) {
            (Some(k), DatapathKind::Kernel) => return k.flows_text(),
            (Some(k), _) => {
                let marks = self.ask(Request::KernelMarks)?;
                s += &k.flows_text_marked(&marks)?;
            }
            (None, _) => {}
        }
        for h in &self.pmds {
            let (tx, rx) = crossbeam_channel::bounded(1);
            h.tx.send(PmdMsg::Dump(tx))
                .map_err(|_| format!("pmd {} stopped", h.id))?;
            let flows = rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| format!("pmd {} did not answer", h.id))?;
            for f in flows {
                let mark = if self.mode == DatapathKind::Hybrid {
                    ", dp:userspace"
                } else {
                    ""
                };
                let line = FlowLine {
                    ufid: None,
                    key: Some(OdpKey::from_match(f.matched)),
                    stats: Some(FlowStatsText {
                        packets: f.stats.packets,
                        bytes: f.stats.bytes,
                        used: f.idle.map_or("never".into(), |d| format!("{:.3}s", d.as_secs_f64())),
                        flags: (f.stats.tcp_flags != 0).then(|| odp::fmt_tcp_flags(f.stats.tcp_flags)),
                    }),
                    actions: Some(f.actions.to_vec()),
                };
                s += &with_mark(&line.to_string(), mark);
                s.push('\n');
            }
        }
        Ok(s)
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A dump-flows line with `mark` (", dp:..." ) before its actions, where
/// Open vSwitch puts its datapath-layer marks.
fn with_mark(line: &str, mark: &str) -> String {
    match line.find(", actions:") {
        Some(at) if !mark.is_empty() => format!("{}{mark}{}", &line[..at], &line[at..]),
        _ => line.to_string(),
    }
}

/// The megaflow owner's section of `pmd-stats-show`.
fn translator_stats(t: &TranslatorCounters) -> String {
    let l = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    format!(
        "translator:\n  upcalls handled: {}\n  megaflows installed: {}\n  megaflows: {} (flow limit: {}, idle timeout: {} ms)\n  flow limit hits: {}\n  revalidated: {} (removed: {}, modified: {})\n  expired: {} (sweeps: {}, last took {} ms)\n  MAC addresses learned: {} (moved: {}, aged: {})\n",
        l(&t.upcalls),
        l(&t.installs),
        l(&t.megaflows),
        l(&t.flow_limit),
        l(&t.max_idle_ms),
        l(&t.flow_limit_hits),
        l(&t.revalidated),
        l(&t.revalidation_removals),
        l(&t.revalidation_modifications),
        l(&t.expired),
        l(&t.sweeps),
        l(&t.last_sweep_ms),
        l(&t.mac_learned),
        l(&t.mac_moves),
        l(&t.mac_aged),
    )
}

/// One line per reason: `{lead} {count}: {reason}`.
fn counted_reasons(m: &std::sync::Mutex<std::collections::BTreeMap<String, u64>>, lead: &str) -> String {
    m.lock()
        .map(|m| m.iter().map(|(reason, n)| format!("{lead} {n}: {reason}\n")).collect())
        .unwrap_or_default()
}

/// `x / of`, or 0 when there is nothing to divide by (a fresh PMD).
fn ratio(x: u64, of: u64) -> f64 {
    if of > 0 {
        x as f64 / of as f64
    } else {
        0.0
    }
}
