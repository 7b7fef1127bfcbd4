//! `odpx run`, `odpx ctl` and `odpx demo`.

use odpx_control::config::{Config, DatapathKind};
use odpx_control::ctl;
use odpx_control::switch::{StartOptions, Switch};
use odpx_tools::sandbox::{self, echo_client, udp_echo_server, udp_traffic, Echo, Family};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type R = Result<ExitCode, String>;

/// `odpx run -c CONFIG [--flush]`: the switch daemon, until SIGINT or
/// SIGTERM.
pub fn run(config: &Path, flush: bool) -> R {
    let cfg = Config::load(config)?;
    let stop = odpx_tools::stop_flag()?;
    let sw = Arc::new(Switch::start_with(&cfg, StartOptions { flush })?);
    let socket = cfg.switch.socket.clone();
    ctl::serve(sw.clone(), &socket)?;
    if let Some(addr) = cfg.metrics.listen {
        let bound = odpx_control::metrics::serve(&sw, addr)?;
        eprintln!("odpx: metrics at http://{bound}/metrics");
    }
    match &sw.kernel {
        Some(k) if sw.mode == DatapathKind::Hybrid => eprintln!(
            "odpx: hybrid: {} port(s) with {} PMD thread(s), offloading to kernel datapath {}; {}; flows of a previous run: {} kept, {} given new actions, {} deleted, {} offloaded again; offload {}; control socket {}",
            cfg.ports.len(),
            cfg.pmd.cores.len(),
            k.dp_name,
            k.upcall_mode,
            k.adopted.kept,
            k.adopted.fixed,
            k.adopted.deleted,
            sw.offload_counters
                .as_ref()
                .map_or(0, |c| c.offloaded.load(Ordering::Relaxed)),
            if cfg.offload.enabled { "on" } else { "off" },
            socket.display()
        ),
        Some(k) => eprintln!(
            "odpx: kernel datapath {} with {} port(s); {}; flows of a previous run: {} kept, {} given new actions, {} deleted; control socket {}",
            k.dp_name,
            cfg.ports.len(),
            k.upcall_mode,
            k.adopted.kept,
            k.adopted.fixed,
            k.adopted.deleted,
            socket.display()
        ),
        None => eprintln!(
            "odpx: switching on {} port(s) with {} PMD thread(s); control socket {}",
            cfg.ports.len(),
            cfg.pmd.cores.len(),
            socket.display()
        ),
    }
    let mut links = odpx_control::links::LinkWatch::default();
    let mut losses = odpx_control::logs::LossWatch::default();
    let mut memory = odpx_control::memory::MemoryTrim::default();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        for line in links.check(&sw) {
            tracing::info!("{line}");
        }
        if let Some(line) = losses.check(&sw, Instant::now()) {
            tracing::warn!("{line}");
        }
        if let Some(t) = memory.check(Instant::now()) {
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            tracing::debug!(
                "memory trimmed: RSS {:.1} -> {:.1} MiB in {:.1} ms",
                mib(t.rss_before),
                mib(t.rss_after),
                t.took.as_secs_f64() * 1e3
            );
        }
    }
    eprintln!("odpx: stopping");
    let _ = std::fs::remove_file(&socket);
    drop(sw);
    Ok(ExitCode::SUCCESS)
}

/// `odpx ctl [-s SOCKET] [--json] COMMAND [ARGS...]`.
pub fn ctl(socket: &Path, json: bool, words: &[String]) -> R {
    let line = if json {
        format!("--json {}", words.join(" "))
    } else {
        words.join(" ")
    };
    let body = ctl::request(socket, &line)?;
    print!("{body}");
    Ok(ExitCode::SUCCESS)
}

const HOSTS: usize = 3;

/// Hybrid demo: megaflows of this many packets a second (for a second)
/// move into the kernel.
const DEMO_OFFLOAD_PPS: u64 = 20;

/// The demo's VXLAN site: VNI 42 behind Linux's vxlan device.
const SITE_VNI: u32 = 42;

/// `odpx demo [--duration S] [--datapath kernel]`: the switch forwarding
/// real traffic in a sandbox of namespaces, with live statistics. In
/// userspace mode it is also a VXLAN gateway: a site behind Linux's own
/// vxlan device (VNI 42, 10.0.0.100) is reached through a VXLAN port over
/// an AF_XDP underlay port.
pub fn demo(duration: Option<u64>, mode: DatapathKind) -> R {
    let kernel = mode == DatapathKind::Kernel;
    let hybrid = mode == DatapathKind::Hybrid;
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        return Err("odpx demo needs root: it creates network namespaces, veth pairs and XDP programs".into());
    }
    let stop = odpx_tools::stop_flag()?;
    let tag = std::process::id().to_string();
    let mut sandbox = sandbox::build(&tag, HOSTS)?;
    let (sw_ns, hosts) = (sandbox.switch.clone(), sandbox.hosts.clone());
    println!(
        "sandbox: namespaces {} and {} (10.0.0.1-3/24), switch ports s1-s3",
        sw_ns,
        hosts.join(", ")
    );
    // The VXLAN site: userspace tunnelling only.
    let site = if kernel {
        None
    } else {
        let s = sandbox::vxlan_site(&mut sandbox, &tag, Family::V4, SITE_VNI, 4789)?;
        println!(
            "VXLAN site: namespace {} behind Linux's vxlan device (VNI {SITE_VNI}, {}), VTEP {} <- underlay u0 -> VTEP {}",
            s.ns, s.host, s.remote, s.local
        );
        Some(s)
    };
    let tunnel_ports = match &site {
        Some(s) => format!(
            "[[port]]\nname = \"vx0\"\ntype = \"vxlan\"\nremote_ip = \"{}\"\nkey = {SITE_VNI}\n[[port]]\nname = \"u0\"\ntype = \"underlay\"\n",
            s.remote
        ),
        None => String::new(),
    };
    // The switch opens its ports from inside the switch namespace.
    let f = sandbox::netns_file(&sw_ns).map_err(|e| format!("{sw_ns}: {e}"))?;
    let here = std::fs::File::open("/proc/self/ns/net").map_err(|e| format!("own namespace: {e}"))?;
    odpx_dataplane::sys::fd::enter_netns(&f).map_err(|e| e.to_string())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let datapath = match mode {
        DatapathKind::Kernel => "kernel",
        DatapathKind::Hybrid => "hybrid",
        DatapathKind::Userspace => "userspace",
    };
    // The demo's flows are slow (50-200 pps): offload them after a second.
    let cfg = Config::parse(
        &format!(
            "[switch]\nrules_inline = [\"priority=0,actions=NORMAL\"]\nsocket = \"/run/odpx/demo-{tag}.sock\"\ndatapath = \"{datapath}\"\n[[port]]\nname = \"s1\"\n[[port]]\nname = \"s2\"\n[[port]]\nname = \"s3\"\n{tunnel_ports}[pmd]\ncores = [{}]\n[offload]\nmin_pps = {DEMO_OFFLOAD_PPS}\nmin_duration_ms = 1000\n",
            cores - 1
        ),
        Path::new("/"),
    )?;
    let started = Switch::start(&cfg);
    odpx_dataplane::sys::fd::enter_netns(&here).map_err(|e| e.to_string())?;
    let sw = Arc::new(started?);
    let socket = cfg.switch.socket.clone();
    let _ = ctl::serve(sw.clone(), &socket);
    match &sw.kernel {
        Some(k) if hybrid => println!(
            "switch: AF_XDP on s1-s3 behind the steering program, PMD on core {}; megaflows of {DEMO_OFFLOAD_PPS} pps for 1 s move into the kernel datapath {} (s1-s3 and vx0 as vports); NORMAL (MAC learning), VXLAN port vx0 over the AF_XDP underlay u0",
            cores - 1,
            k.dp_name
        ),
        Some(k) => println!(
            "switch: the kernel datapath {} with s1-s3 as vports, NORMAL (MAC learning), {}",
            k.dp_name, k.upcall_mode
        ),
        None => println!(
            "switch: AF_XDP on s1-s3, NORMAL (MAC learning), VXLAN port vx0 over the AF_XDP underlay u0, PMD on core {}",
            cores - 1
        ),
    }
    println!(
        "inspect it meanwhile: odpx ctl -s {} dump-megaflows | pmd-stats-show | mac-table",
        socket.display()
    );
    // Traffic: echo round trips around the ring, both ICMP ping (answered
    // by the far host's kernel) and UDP echo, and UDP flows.
    let traffic_stop = Arc::new(AtomicBool::new(false));
    let echo_servers: Vec<_> = hosts
        .iter()
        .map(|h| udp_echo_server(h.clone(), traffic_stop.clone()))
        .collect();
    let mut echoes = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let dst = format!("10.0.0.{}", (i + 1) % HOSTS + 1);
        for (kind, name) in [(Echo::Icmp, "ping"), (Echo::Udp, "UDP echo")] {
            echoes.push((
                format!("{name} h{} -> {dst}", i + 1),
                echo_client(h.clone(), dst.clone(), kind, traffic_stop.clone()),
            ));
        }
    }
    let mut udp = vec![
        udp_traffic(hosts[0].clone(), "10.0.0.2", 200, 20_000, traffic_stop.clone()),
        udp_traffic(hosts[2].clone(), "10.0.0.2", 50, 5_000, traffic_stop.clone()),
    ];
    let mut site_server = None;
    if let Some(s) = &site {
        site_server = Some(udp_echo_server(s.ns.clone(), traffic_stop.clone()));
        for (from, dst, kind, name) in [
            (hosts[0].clone(), s.host.clone(), Echo::Icmp, "VXLAN ping h1 -> site"),
            (hosts[1].clone(), s.host.clone(), Echo::Udp, "VXLAN UDP echo h2 -> site"),
            (
                s.ns.clone(),
                "10.0.0.3".to_string(),
                Echo::Icmp,
                "VXLAN ping site -> h3",
            ),
        ] {
            echoes.push((name.to_string(), echo_client(from, dst, kind, traffic_stop.clone())));
        }
        udp.push(udp_traffic(
            hosts[2].clone(),
            "10.0.0.100",
            100,
            10_000,
            traffic_stop.clone(),
        ));
    }
    let start = Instant::now();
    let mut last = (Instant::now(), totals(&sw));
    let (first, second) = match mode {
        DatapathKind::Kernel => ("hit", ""),
        DatapathKind::Hybrid => ("kernel", "megaflow"),
        DatapathKind::Userspace => ("EMC", "megaflow"),
    };
    let tunnel_head = if site.is_some() {
        format!("  {:>9} {:>9}", "encap pps", "decap pps")
    } else {
        String::new()
    };
    println!(
        "{:>5}  {:>9} {:>9}  {:>6} {:>8} {:>7}  {:>9}  {:>4}{tunnel_head}",
        "time", "rx pps", "tx pps", first, second, "upcall", "megaflows", "MACs"
    );
    while !stop.load(Ordering::Relaxed) && duration.is_none_or(|d| start.elapsed() < Duration::from_secs(d)) {
        std::thread::sleep(Duration::from_millis(100));
        if last.0.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let now = totals(&sw);
        let dt = last.0.elapsed().as_secs_f64();
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let pk = d(now.packets, last.1.packets).max(1) as f64;
        let second = if kernel {
            String::new()
        } else {
            format!("{:.1}%", 100.0 * d(now.megaflow, last.1.megaflow) as f64 / pk)
        };
        let tunnel = if site.is_some() {
            format!(
                "  {:>9.0} {:>9.0}",
                d(now.encap, last.1.encap) as f64 / dt,
                d(now.decap, last.1.decap) as f64 / dt
            )
        } else {
            String::new()
        };
        println!(
            "{:>4}s  {:>9.0} {:>9.0}  {:>5.1}% {:>8} {:>6.1}%  {:>9}  {:>4}{tunnel}",
            start.elapsed().as_secs(),
            d(now.rx, last.1.rx) as f64 / dt,
            d(now.tx, last.1.tx) as f64 / dt,
            100.0
                * d(
                    if hybrid { now.kernel } else { now.emc },
                    if hybrid { last.1.kernel } else { last.1.emc }
                ) as f64
                / pk,
            second,
            100.0 * d(now.upcalls, last.1.upcalls) as f64 / pk,
            now.megaflows,
            now.macs,
        );
        last = (Instant::now(), now);
    }
    traffic_stop.store(true, Ordering::Relaxed);
    let udp_sent: u64 = udp.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    println!("\nsummary after {:.1} s:", start.elapsed().as_secs_f64());
    for (name, h) in echoes {
        let (sent, got, rtt) = h.join().unwrap_or((0, 0, Duration::ZERO));
        let avg = if got > 0 {
            rtt.as_secs_f64() * 1000.0 / got as f64
        } else {
            0.0
        };
        println!("  {name}: {got}/{sent} answered, average round trip {avg:.3} ms");
    }
    for h in echo_servers.into_iter().chain(site_server) {
        let _ = h.join();
    }
    let t = totals(&sw);
    println!("  UDP datagrams sent by the hosts: {udp_sent}");
    println!(
        "  switch: {} packets in, {} out; {} megaflows, {} MAC addresses",
        t.rx, t.tx, t.megaflows, t.macs
    );
    if site.is_some() {
        println!("  VXLAN: {} packets encapsulated, {} decapsulated", t.encap, t.decap);
        // Read in the switch's namespace, where its interfaces are.
        let sw2 = sw.clone();
        let ns = sw_ns.clone();
        let show = std::thread::spawn(move || if sandbox::enter(&ns) { sw2.show() } else { String::new() })
            .join()
            .unwrap_or_default();
        for l in show
            .lines()
            .skip_while(|l| !l.contains("(vxlan"))
            .take_while(|l| !l.trim_start().starts_with("pmd "))
        {
            println!("  {l}");
        }
    }
    if hybrid {
        let sw2 = sw.clone();
        let ns = sw_ns.clone();
        let show = std::thread::spawn(move || if sandbox::enter(&ns) { sw2.show() } else { String::new() })
            .join()
            .unwrap_or_default();
        for l in show.lines().skip_while(|l| !l.starts_with("offload:")) {
            println!("  {l}");
        }
    }
    print!(
        "{}",
        sw.pmd_stats().lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let _ = std::fs::remove_file(&socket);
    drop(sw);
    drop(sandbox);
    println!("sandbox removed");
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, Default)]
struct Totals {
    rx: u64,
    tx: u64,
    packets: u64,
    emc: u64,
    megaflow: u64,
    upcalls: u64,
    megaflows: u64,
    macs: u64,
    encap: u64,
    decap: u64,
    /// Hybrid mode: packets the kernel's flows carried.
    kernel: u64,
}

fn totals(sw: &Switch) -> Totals {
    let mut t = Totals {
        macs: sw.translator_counters.mac_learned.load(Ordering::Relaxed),
        ..Default::default()
    };
    if let (Some(k), DatapathKind::Hybrid) = (&sw.kernel, sw.mode) {
        // Both datapaths: what the kernel carried adds to the PMDs'.
        if let Ok((dp, vports)) = k.datapath() {
            for v in vports.iter().filter_map(|v| v.stats) {
                t.rx += v.rx_packets;
                t.tx += v.tx_packets;
            }
            if let Some(st) = dp.stats {
                t.packets += st.n_hit + st.n_missed;
                t.kernel = st.n_hit;
                t.upcalls += st.n_missed;
                t.megaflows += st.n_flows;
            }
        }
    } else if let Some(k) = &sw.kernel {
        // The kernel's view: packets into the switch, hits and misses of
        // its flow table (`emc` holds the hits here).
        if let Ok((dp, vports)) = k.datapath() {
            for v in vports.iter().filter_map(|v| v.stats) {
                t.rx += v.rx_packets;
                t.tx += v.tx_packets;
            }
            if let Some(st) = dp.stats {
                t.packets = st.n_hit + st.n_missed;
                t.emc = st.n_hit;
                t.upcalls = st.n_missed;
                t.megaflows = st.n_flows;
            }
        }
        return t;
    }
    for p in sw.ports.iter().flatten() {
        let c = p.stats.snapshot();
        if p.vxlan_endpoint().is_some() {
            // A tunnel port's traffic is the underlay's too: counted apart.
            t.encap += c.tx_packets;
            t.decap += c.rx_packets;
            continue;
        }
        t.rx += c.rx_packets;
        t.tx += c.tx_packets;
    }
    for h in sw.pmds() {
        let c = h.counters.snapshot();
        t.packets += c.packets;
        t.emc += c.emc_hits;
        t.megaflow += c.megaflow_hits;
        t.upcalls += c.upcalls;
        t.megaflows += c.megaflows;
    }
    t
}
