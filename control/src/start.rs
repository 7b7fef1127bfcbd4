//! Starting a switch from a [`Config`]: the ports, the PMDs, the
//! datapath's backend, the owner core and the threads around them, in
//! each datapath mode.
//!
//! # Order
//! Rules first (a bad rule file must not leave XDP programs behind), then
//! the kernel datapath and its vports (kernel and hybrid modes), the ports
//! (all or none), the PMDs, the backend and the core, the adoption of a
//! previous run's kernel flows, and only then the kernel's upcall
//! handlers: their sockets are open and named to the datapath before the
//! adoption, so the misses meanwhile wait in them.

use crate::backend::hybrid::Hybrid;
use crate::backend::kernel::Kernel;
use crate::backend::userspace::Userspace;
use crate::backend::Backend;
use crate::config::{Config, DatapathKind, PortType, XdpModeSetting};
use crate::core::kernel::Adopted;
use crate::core::offload::{KernelPortSet, Offload};
use crate::core::tunnels::Tunnels;
use crate::core::underlay::UnderlayView;
use crate::core::{Core, CoreConfig, Holders, SWEEP_INTERVAL};
use crate::owner::{self, Inputs, Owner, OwnerSink, UnderlayIo};
use crate::switch::{KernelInfo, Stoppable, Switch};
use crossbeam_channel::Receiver;
use odpx_classifier::rules::{ofctl, RuleSet};
use odpx_dataplane::pmd::{self, PmdConfig, PmdHandle, PortTable, SlowPath};
use odpx_dataplane::port::Port;
use odpx_dataplane::steer::SteeringTable;
use odpx_dataplane::sys::bpf::XdpAttach;
use odpx_dataplane::upcalls::{upcall_queues, userspace_queue, FromDatapath, UpcallReceiver, UserspaceSender};
use odpx_offload::kernel::{
    DumpReport, Dumper, FlowTable, HandlerCounters, Handlers, KernelDatapath, KernelFlows, Listening, VportWant,
};
use odpx_offload::policy::OffloadSettings;
use odpx_offload::rtnl::{Rtnl, RtnlError, RtnlMonitor};
use odpx_offload::{OdpClient, VportType};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How `odpx run` starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartOptions {
    /// Kernel and hybrid modes: delete the flows a previous run left,
    /// instead of adopting them.
    pub flush: bool,
}

/// Where the switch's tunnels learn the underlay.
pub enum UnderlaySource {
    /// The kernel of the switch's network namespace, followed live.
    Kernel,
    /// Fixed changes (tests on in-memory ports); further ones come
    /// through [`crate::owner::Owner::underlay_changed`].
    Given(Vec<odpx_offload::rtnl::Change>),
}

/// The kernel side of kernel and hybrid modes, opened before the owner.
struct KernelSide {
    flows: KernelFlows,
    listening: Listening,
    dumps: Receiver<DumpReport>,
    info: KernelInfo,
}

impl Switch {
    /// Opens the configured ports (all or none) and starts the switch.
    pub fn start(cfg: &Config) -> Result<Switch, String> {
        Switch::start_with(cfg, StartOptions::default())
    }

    /// [`Switch::start`] with options.
    pub fn start_with(cfg: &Config, opts: StartOptions) -> Result<Switch, String> {
        match cfg.switch.datapath {
            DatapathKind::Kernel => start_kernel(cfg, opts),
            DatapathKind::Hybrid => start_hybrid(cfg, opts),
            DatapathKind::Userspace => {
                remove_left_datapath(cfg)?;
                load_rules(cfg)?;
                let ports = open_ports(cfg, None)?;
                start_pmds(cfg, ports, UnderlaySource::Kernel, None)
            }
        }
    }

    /// Starts the switch on already-opened ports (numbered by position +1).
    pub fn start_with_ports(cfg: &Config, ports: Vec<Port>) -> Result<Switch, String> {
        Switch::start_with_ports_on(cfg, ports, UnderlaySource::Kernel)
    }

    /// [`Switch::start_with_ports`], the tunnels' underlay from `underlay`.
    pub fn start_with_ports_on(cfg: &Config, ports: Vec<Port>, underlay: UnderlaySource) -> Result<Switch, String> {
        start_pmds(cfg, ports, underlay, None)
    }
}

/// Parses the configured rules (all or none).
/// The rule file's pipeline, with the ports' ingress policers.
pub fn load_rules(cfg: &Config) -> Result<RuleSet, String> {
    let text = cfg.rules_text()?;
    let mut rules =
        ofctl::parse_pipeline(&text).map_err(|e| format!("rules: line {}: {}; no rules loaded", e.line, e.err))?;
    for p in cfg.policers() {
        rules.meters_mut().put(p);
    }
    Ok(rules)
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
    tracing::info!("removed kernel datapath {name}, left by a kernel or hybrid run (datapath = \"userspace\" now)");
    Ok(())
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

/// Opens the configured ports (all or none); switched interfaces behind
/// the steering program of `steering` in hybrid mode.
fn open_ports(cfg: &Config, steering: Option<&SteeringTable>) -> Result<Vec<Port>, String> {
    let mut ports = Vec::new();
    let endpoints = cfg.vxlan_endpoints();
    for (no, p) in cfg.numbered_ports() {
        let named = |e: std::io::Error| format!("port {}: {e}", p.name);
        let port = match p.kind {
            PortType::Afxdp => match steering {
                Some(t) => Port::open_steered(no, &p.name, t, steering_attach(cfg.switch.xdp_mode, &p.name)),
                None => Port::open_xdp(no, &p.name),
            }
            .map_err(named)?,
            PortType::Underlay => Port::open_underlay(no, &p.name).map_err(named)?,
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

/// The ports by number.
fn port_table(ports: Vec<Port>) -> PortTable {
    let slots = ports.iter().map(|p| p.no as usize + 1).max().unwrap_or(1);
    let mut table: Vec<Option<Arc<Port>>> = vec![None; slots];
    for p in ports {
        let no = p.no as usize;
        table[no] = Some(Arc::new(p));
    }
    Arc::new(table)
}

/// The switched ports: every configured one but the underlay ports (not
/// flooded, not learned on).
fn switched_ports(cfg: &Config) -> Vec<u32> {
    cfg.numbered_ports()
        .filter(|(_, p)| p.kind != PortType::Underlay)
        .map(|(no, _)| no)
        .collect()
}

/// One PMD thread per configured core; the receive queues dealt out in
/// turn.
fn spawn_pmds(cfg: &Config, table: &PortTable, slow: SlowPath) -> Vec<PmdHandle> {
    let rxqs: Vec<(u32, usize)> = table
        .iter()
        .flatten()
        .flat_map(|p| (0..p.queues()).map(move |q| (p.no, q)))
        .collect();
    let n = cfg.pmd.cores.len();
    cfg.pmd
        .cores
        .iter()
        .enumerate()
        .map(|(i, &core)| {
            let mine = rxqs.iter().copied().skip(i).step_by(n.max(1)).collect();
            pmd::spawn(
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
                    upcalls: slow.upcalls.clone(),
                    reports: slow.reports.clone(),
                    to_userspace: slow.to_userspace.clone(),
                },
            )
        })
        .collect()
}

/// The tunnels and, when the underlay is the kernel's, the socket and
/// monitor that follow it (the monitor opened first: nothing falls
/// between the dump and it).
fn tunnels(cfg: &Config, underlay: UnderlaySource) -> Result<(Tunnels, Option<Rtnl>, Option<RtnlMonitor>), String> {
    if cfg.vxlan_endpoints().is_empty() {
        return Ok((Tunnels::none(), None, None));
    }
    match underlay {
        UnderlaySource::Given(changes) => Ok((Tunnels::new(cfg, UnderlayView::from_changes(changes)), None, None)),
        UnderlaySource::Kernel => {
            let mon = RtnlMonitor::open().map_err(|e| format!("underlay: {e}"))?;
            let mut rtnl = Rtnl::open().map_err(|e| format!("underlay: {e}"))?;
            let dump = rtnl.dump_all().map_err(|e| format!("underlay: {e}"))?;
            Ok((
                Tunnels::new(cfg, UnderlayView::from_changes(dump)),
                Some(rtnl),
                Some(mon),
            ))
        }
    }
}

/// Userspace and hybrid modes: the PMDs on `ports`, the owner, and in
/// hybrid mode the kernel side and the steering tables.
fn start_pmds(
    cfg: &Config,
    ports: Vec<Port>,
    underlay: UnderlaySource,
    hybrid: Option<(KernelSide, SteeringTable, KernelPortSet)>,
) -> Result<Switch, String> {
    let rules = load_rules(cfg)?;
    let table = port_table(ports);
    let (utx, urx) = upcall_queues(table.len(), cfg.cache.upcall_queue);
    let (report_tx, report_rx) = crossbeam_channel::unbounded();
    let packet_ins = userspace_queue(cfg.cache.upcall_queue);
    let pmds = spawn_pmds(
        cfg,
        &table,
        SlowPath {
            upcalls: utx,
            reports: report_tx,
            to_userspace: packet_ins.0.clone(),
        },
    );
    let doors = Userspace::new(pmds.iter().map(|p| p.tx.clone()).collect());
    let (tunnels, rtnl, monitor) = tunnels(cfg, underlay)?;
    let holders = Holders {
        pmds: pmds.len(),
        kernel: hybrid.is_some(),
    };
    let (offload, settings) = match &hybrid {
        Some((_, _, ports)) => {
            let settings = offload_settings(cfg);
            (
                Some(Offload::new(settings, cfg.offload.enabled, ports.clone())),
                Some(settings),
            )
        }
        None => (None, None),
    };
    let core = Core::new(
        CoreConfig {
            rules,
            ports: switched_ports(cfg),
            holders,
            megaflow_limit: cfg.cache.megaflow_limit,
            idle_timeout: Duration::from_millis(cfg.cache.idle_timeout_ms),
            tunnels,
            offload,
        },
        Instant::now(),
    );
    let io = UnderlayIo::new(table.clone(), rtnl, core.tunnel_counters());
    let (backend, kernel, adoptable): (Box<dyn Backend>, _, _) = match hybrid {
        None => (Box::new(doors), None, None),
        Some((side, steering, ports)) => {
            let KernelSide {
                mut flows,
                listening,
                dumps,
                info,
            } = side;
            let adoptable = flows.dump().map_err(|e| format!("adopting the kernel's flows: {e}"))?;
            let counters = core.offload_counters().map(|(c, _)| c).unwrap_or_default();
            let pid = listening.action_pid;
            let backend = Hybrid::new(
                doors,
                Kernel::offload(Box::new(flows), ports).with_upcall_pid(pid),
                Box::new(steering),
                counters,
            );
            (Box::new(backend), Some((listening, dumps, info)), Some(adoptable))
        }
    };
    let owner = Owner::new(core, backend, io);
    finish(
        cfg,
        owner,
        table,
        pmds,
        urx,
        report_rx,
        kernel.map(|(l, d, i)| (l, d, i, adoptable.unwrap_or_default())),
        monitor,
        settings,
        packet_ins,
    )
}

fn offload_settings(cfg: &Config) -> OffloadSettings {
    let o = &cfg.offload;
    OffloadSettings {
        min_pps: o.min_pps,
        min_duration: Duration::from_millis(o.min_duration_ms),
        max_flows: o.max_flows,
        interval: SWEEP_INTERVAL,
    }
}

/// Opens the kernel datapath with `wanted` vports, its listeners (not
/// started), its dump thread and a socket for reading it.
fn kernel_side(cfg: &Config, mut dp: KernelDatapath, opts: StartOptions) -> Result<KernelSide, String> {
    if opts.flush {
        dp.flush()
            .map_err(|e| format!("datapath {}: flush: {e}", cfg.switch.dp_name))?;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let listening = Handlers::listen(&mut dp, cpus)?;
    let dp_ifindex = dp.dp_ifindex();
    let (dump_tx, dumps) = crossbeam_channel::unbounded();
    let dumper = Dumper::start(dp_ifindex, dump_tx)?;
    let info = KernelInfo {
        dp_name: cfg.switch.dp_name.clone(),
        dp_ifindex,
        upcall_mode: listening.mode.clone(),
        handlers: Arc::new(HandlerCounters::default()),
        client: Mutex::new(OdpClient::connect().map_err(|e| e.to_string())?),
    };
    Ok(KernelSide {
        flows: KernelFlows { dp, dumper },
        listening,
        dumps,
        info,
    })
}

/// Kernel mode: the datapath, its vports, the owner and the handlers.
fn start_kernel(cfg: &Config, opts: StartOptions) -> Result<Switch, String> {
    let rules = load_rules(cfg)?;
    let refused = (rules.iter().find_map(crate::backend::kernel::refusal))
        .or_else(|| rules.groups().iter().find_map(crate::backend::kernel::group_refusal))
        .or_else(|| (rules.meters().iter()).find_map(|m| odpx_offload::meters::KernelMeter::from_meter(m).err()));
    if let Some(e) = refused {
        return Err(format!("{e}; no rules loaded"));
    }
    let ports: Vec<(String, u32)> = cfg.numbered_ports().map(|(no, p)| (p.name.clone(), no)).collect();
    let dp = KernelDatapath::open(&cfg.switch.dp_name, &ports)?;
    let KernelSide {
        mut flows,
        listening,
        dumps,
        info,
    } = kernel_side(cfg, dp, opts)?;
    let adoptable = flows.dump().map_err(|e| format!("adopting the kernel's flows: {e}"))?;
    let core = Core::new(
        CoreConfig {
            rules,
            ports: cfg.port_numbers(),
            holders: Holders { pmds: 0, kernel: true },
            megaflow_limit: cfg.cache.megaflow_limit,
            idle_timeout: Duration::from_millis(cfg.cache.idle_timeout_ms),
            tunnels: Tunnels::none(),
            offload: None,
        },
        Instant::now(),
    );
    let mut backend = Kernel::pure(Box::new(flows)).with_upcall_pid(listening.action_pid);
    match odpx_offload::meters::MeterClient::connect(info.dp_ifindex) {
        Ok(m) => backend = backend.with_meters(Box::new(m)),
        Err(e) => tracing::warn!("kernel datapath: no meters ({e}); meters will be refused"),
    }
    let owner = Owner::new(core, Box::new(backend), UnderlayIo::none());
    // No PMDs: nothing ever rings.
    let (_, urx) = upcall_queues(1, 1);
    finish(
        cfg,
        owner,
        Arc::new(Vec::new()),
        Vec::new(),
        urx,
        crossbeam_channel::never(),
        Some((listening, dumps, info, adoptable)),
        None,
        None,
        userspace_queue(cfg.cache.upcall_queue),
    )
}

/// Hybrid mode: the kernel datapath with the switched ports as vports,
/// the steering tables, the ports behind the steering program, then the
/// PMDs and the owner, which adopts the flows a previous run left.
fn start_hybrid(cfg: &Config, opts: StartOptions) -> Result<Switch, String> {
    load_rules(cfg)?;
    // Switched interfaces are netdev vports; VXLAN ports are VXLAN vports
    // (the first one of each UDP port: the kernel binds it once), so that
    // their pushes can be offloaded. Underlay ports stay the kernel's own.
    let mut wanted: Vec<VportWant> = Vec::new();
    for (no, p) in cfg.numbered_ports() {
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
    let dp = KernelDatapath::open_numbered(&cfg.switch.dp_name, &wanted)?;
    let side = kernel_side(cfg, dp, opts)?;
    let steering = SteeringTable::new(cfg.offload.max_flows).map_err(|e| format!("steering tables: {e}"))?;
    let ports = open_ports(cfg, Some(&steering))?;
    let kernel_ports = KernelPortSet {
        vports: wanted.iter().map(|w| w.no).collect(),
        tunnel_vports: wanted
            .iter()
            .filter(|w| w.vtype == VportType::Vxlan)
            .map(|w| w.no)
            .collect(),
    };
    start_pmds(cfg, ports, UnderlaySource::Kernel, Some((side, steering, kernel_ports)))
}

/// The last steps of every mode: adoption, the kernel's handlers, the
/// owner thread and the underlay monitor.
#[allow(clippy::too_many_arguments)]
fn finish(
    cfg: &Config,
    owner: Arc<Owner>,
    ports: PortTable,
    pmds: Vec<PmdHandle>,
    upcalls: UpcallReceiver,
    pmd_reports: Receiver<odpx_dataplane::pmd::PmdReport>,
    kernel: Option<(Listening, Receiver<DumpReport>, KernelInfo, Vec<odpx_offload::Flow>)>,
    monitor: Option<RtnlMonitor>,
    offload_policy: Option<OffloadSettings>,
    packet_ins: (UserspaceSender, Receiver<FromDatapath>),
) -> Result<Switch, String> {
    let (mut handlers, mut kernel_dumps, mut info) = (None, crossbeam_channel::never(), None);
    if let Some((listening, dumps, k, flows)) = kernel {
        let adopted: Adopted = owner.decide(|core| core.adopt(flows, Instant::now()));
        tracing::debug!("adopted: {adopted:?}");
        let sink = Arc::new(OwnerSink(Arc::downgrade(&owner), packet_ins.0.clone()));
        handlers = Some(listening.start(sink, k.handlers.clone())?);
        kernel_dumps = dumps;
        info = Some(k);
    }
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
    let inputs = Inputs {
        upcalls,
        pmd_reports,
        kernel_dumps,
        stop: stop_rx,
    };
    let o2 = owner.clone();
    let owner_thread = std::thread::Builder::new()
        .name("owner".into())
        .spawn(move || owner::run(o2, inputs))
        .map_err(|e| format!("owner thread: {e}"))?;
    let underlay_monitor = match monitor {
        Some(mon) => {
            let stop = Arc::new(AtomicBool::new(false));
            let (stop2, weak) = (stop.clone(), Arc::downgrade(&owner));
            let join = std::thread::Builder::new()
                .name("underlay".into())
                .spawn(move || underlay_monitor(mon, weak, stop2))
                .map_err(|e| format!("underlay thread: {e}"))?;
            Some(Stoppable { stop, join })
        }
        None => None,
    };
    Ok(Switch {
        ports,
        pmds,
        owner,
        owner_thread: Some((stop_tx, owner_thread)),
        handlers,
        underlay_monitor,
        started: Instant::now(),
        kernel: info,
        offload_policy,
        mode: cfg.switch.datapath,
        packet_ins: Mutex::new(Some(packet_ins.1)),
        openflow: std::sync::OnceLock::new(),
    })
}

/// Follows the kernel's underlay changes and hands them to the owner,
/// until `stop`; after lost notifications, a full dump replaces the view.
fn underlay_monitor(mut mon: RtnlMonitor, owner: std::sync::Weak<Owner>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let (changes, reload) = match mon.recv(Duration::from_millis(200)) {
            Ok(changes) if changes.is_empty() => continue,
            Ok(changes) => (changes, false),
            Err(RtnlError::Overflow) => match Rtnl::open().and_then(|mut r| r.dump_all()) {
                Ok(changes) => (changes, true),
                Err(e) => {
                    tracing::warn!("underlay: reloading after lost notifications: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            },
            Err(e) => {
                tracing::warn!("underlay monitor: {e}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let Some(owner) = owner.upgrade() else { return };
        owner.underlay_changed(changes, reload);
    }
}
