//! `odpx demo`: the switch forwarding real traffic in a sandbox of
//! namespaces, with live statistics.
//!
//! The sandbox is three hosts on ports s1-s3 and, in userspace and hybrid
//! mode, a VXLAN site behind Linux's own vxlan device (VNI 42,
//! 10.0.0.100), reached through a VXLAN port over an AF_XDP underlay
//! port. Pings and UDP echoes go around the ring and across the tunnel,
//! UDP flows run one way. Every second the live table is rendered from one
//! snapshot of the switch; the summary at the end from the last one.

use odpx_control::config::{Config, DatapathKind};
use odpx_control::ctl;
use odpx_control::render::text;
use odpx_control::snapshot::Snapshot;
use odpx_control::switch::Switch;
use odpx_tools::sandbox::{self, echo_client, udp_echo_server, udp_traffic, Echo, Family, Sandbox, VxlanSite};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const HOSTS: usize = 3;

/// Hybrid demo: megaflows of this many packets a second (for a second)
/// move into the kernel.
const DEMO_OFFLOAD_PPS: u64 = 20;

/// The demo's VXLAN site: VNI 42 behind Linux's vxlan device.
const SITE_VNI: u32 = 42;

/// `odpx demo [--duration S] [--datapath kernel|hybrid]` (see the module
/// documentation).
pub fn demo(duration: Option<u64>, mode: DatapathKind) -> Result<ExitCode, String> {
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
    println!(
        "sandbox: namespaces {} and {} (10.0.0.1-3/24), switch ports s1-s3",
        sandbox.switch,
        sandbox.hosts.join(", ")
    );
    // The VXLAN site: userspace tunnelling only.
    let site = match mode {
        DatapathKind::Kernel => None,
        _ => Some(site(&mut sandbox, &tag)?),
    };
    let (sw, socket) = start_switch(&sandbox, site.as_ref(), mode, &tag)?;
    let traffic = Traffic::start(&sandbox.hosts, site.as_ref());
    let start = Instant::now();
    live_table(&sw, mode, site.is_some(), &stop, duration);
    traffic.finish(start);
    summary(&sw, &sandbox.switch, mode, site.is_some());
    let _ = std::fs::remove_file(&socket);
    drop(sw);
    drop(sandbox);
    println!("sandbox removed");
    Ok(ExitCode::SUCCESS)
}

fn site(sandbox: &mut Sandbox, tag: &str) -> Result<VxlanSite, String> {
    let s = sandbox::vxlan_site(sandbox, tag, Family::V4, SITE_VNI, 4789)?;
    println!(
        "VXLAN site: namespace {} behind Linux's vxlan device (VNI {SITE_VNI}, {}), VTEP {} <- underlay u0 -> VTEP {}",
        s.ns, s.host, s.remote, s.local
    );
    Ok(s)
}

/// The demo's switch: NORMAL on s1-s3 (and the tunnel ports), opened from
/// inside the switch namespace, with its control socket.
fn start_switch(
    sandbox: &Sandbox,
    site: Option<&VxlanSite>,
    mode: DatapathKind,
    tag: &str,
) -> Result<(Arc<Switch>, PathBuf), String> {
    let tunnel_ports = match site {
        Some(s) => format!(
            "[[port]]\nname = \"vx0\"\ntype = \"vxlan\"\nremote_ip = \"{}\"\nkey = {SITE_VNI}\n[[port]]\nname = \"u0\"\ntype = \"underlay\"\n",
            s.remote
        ),
        None => String::new(),
    };
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
    let f = sandbox::netns_file(&sandbox.switch).map_err(|e| format!("{}: {e}", sandbox.switch))?;
    let here = std::fs::File::open("/proc/self/ns/net").map_err(|e| format!("own namespace: {e}"))?;
    odpx_dataplane::sys::fd::enter_netns(&f).map_err(|e| e.to_string())?;
    let started = Switch::start(&cfg);
    odpx_dataplane::sys::fd::enter_netns(&here).map_err(|e| e.to_string())?;
    let sw = Arc::new(started?);
    let socket = cfg.switch.socket.clone();
    let _ = ctl::serve(sw.clone(), &socket);
    match (&sw.kernel, mode) {
        (Some(k), DatapathKind::Hybrid) => println!(
            "switch: AF_XDP on s1-s3 behind the steering program, PMD on core {}; megaflows of {DEMO_OFFLOAD_PPS} pps for 1 s move into the kernel datapath {} (s1-s3 and vx0 as vports); NORMAL (MAC learning), VXLAN port vx0 over the AF_XDP underlay u0",
            cores - 1,
            k.dp_name
        ),
        (Some(k), _) => println!(
            "switch: the kernel datapath {} with s1-s3 as vports, NORMAL (MAC learning), {}",
            k.dp_name, k.upcall_mode
        ),
        (None, _) => println!(
            "switch: AF_XDP on s1-s3, NORMAL (MAC learning), VXLAN port vx0 over the AF_XDP underlay u0, PMD on core {}",
            cores - 1
        ),
    }
    println!(
        "inspect it meanwhile: odpx ctl -s {} dump-megaflows | pmd-stats-show | mac-table",
        socket.display()
    );
    Ok((sw, socket))
}

/// An echo client: (sent, answered, the round trips' sum).
type EchoClient = JoinHandle<(u64, u64, Duration)>;

/// The demo's traffic: echo round trips (ICMP ping, answered by the far
/// host's kernel, and UDP echo) around the ring and across the tunnel,
/// and UDP flows.
struct Traffic {
    stop: Arc<AtomicBool>,
    servers: Vec<JoinHandle<()>>,
    echoes: Vec<(String, EchoClient)>,
    udp: Vec<JoinHandle<u64>>,
}

impl Traffic {
    fn start(hosts: &[String], site: Option<&VxlanSite>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let mut servers: Vec<_> = hosts.iter().map(|h| udp_echo_server(h.clone(), stop.clone())).collect();
        let mut echoes = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            let dst = format!("10.0.0.{}", (i + 1) % HOSTS + 1);
            for (kind, name) in [(Echo::Icmp, "ping"), (Echo::Udp, "UDP echo")] {
                echoes.push((
                    format!("{name} h{} -> {dst}", i + 1),
                    echo_client(h.clone(), dst.clone(), kind, stop.clone()),
                ));
            }
        }
        let mut udp = vec![
            udp_traffic(hosts[0].clone(), "10.0.0.2", 200, 20_000, stop.clone()),
            udp_traffic(hosts[2].clone(), "10.0.0.2", 50, 5_000, stop.clone()),
        ];
        if let Some(s) = site {
            servers.push(udp_echo_server(s.ns.clone(), stop.clone()));
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
                echoes.push((name.to_string(), echo_client(from, dst, kind, stop.clone())));
            }
            udp.push(udp_traffic(hosts[2].clone(), "10.0.0.100", 100, 10_000, stop.clone()));
        }
        Traffic {
            stop,
            servers,
            echoes,
            udp,
        }
    }

    /// Stops the traffic and prints what it saw.
    fn finish(self, start: Instant) {
        self.stop.store(true, Ordering::Relaxed);
        let udp_sent: u64 = self.udp.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        println!("\nsummary after {:.1} s:", start.elapsed().as_secs_f64());
        for (name, h) in self.echoes {
            let (sent, got, rtt) = h.join().unwrap_or((0, 0, Duration::ZERO));
            let avg = if got > 0 {
                rtt.as_secs_f64() * 1000.0 / got as f64
            } else {
                0.0
            };
            println!("  {name}: {got}/{sent} answered, average round trip {avg:.3} ms");
        }
        for h in self.servers {
            let _ = h.join();
        }
        println!("  UDP datagrams sent by the hosts: {udp_sent}");
    }
}

/// What the live table shows, summed from one snapshot.
#[derive(Clone, Copy, Default)]
struct Totals {
    rx: u64,
    tx: u64,
    packets: u64,
    /// The first hit column: EMC hits, or the kernel's hits (kernel and
    /// hybrid mode).
    first: u64,
    megaflow: u64,
    upcalls: u64,
    megaflows: u64,
    macs: u64,
    encap: u64,
    decap: u64,
}

impl Totals {
    fn of(s: &Snapshot) -> Totals {
        let mut t = Totals {
            macs: s.owner.mac_learned,
            ..Default::default()
        };
        if let Some(k) = s.kernel.as_ref().filter(|k| k.error.is_none()) {
            // The kernel's view: packets into the switch, hits and misses
            // of its flow table; in hybrid mode the PMDs' adds to it.
            for v in &k.vports {
                t.rx += v.counters.rx_packets;
                t.tx += v.counters.tx_packets;
            }
            let c = &k.counters;
            t.packets += c.lookups_hit + c.lookups_missed;
            t.first += c.lookups_hit;
            t.upcalls += c.lookups_missed;
            t.megaflows += c.flows;
        }
        for p in &s.ports {
            if p.vxlan.is_some() {
                // A tunnel port's traffic is the underlay's too: counted apart.
                t.encap += p.counters.tx_packets;
                t.decap += p.counters.rx_packets;
            } else {
                t.rx += p.counters.rx_packets;
                t.tx += p.counters.tx_packets;
            }
        }
        for p in &s.pmds {
            let c = &p.counters;
            t.packets += c.packets;
            if s.kernel.is_none() {
                t.first += c.emc_hits;
            }
            t.megaflow += c.megaflow_hits;
            t.upcalls += c.upcalls;
            t.megaflows += c.megaflows;
        }
        t
    }
}

/// One line a second, from one snapshot each, until `stop` or `duration`.
fn live_table(sw: &Switch, mode: DatapathKind, tunnels: bool, stop: &AtomicBool, duration: Option<u64>) {
    let (first, second) = match mode {
        DatapathKind::Kernel => ("hit", ""),
        DatapathKind::Hybrid => ("kernel", "megaflow"),
        DatapathKind::Userspace => ("EMC", "megaflow"),
    };
    let tunnel_head = if tunnels {
        format!("  {:>9} {:>9}", "encap pps", "decap pps")
    } else {
        String::new()
    };
    println!(
        "{:>5}  {:>9} {:>9}  {:>6} {:>8} {:>7}  {:>9}  {:>4}{tunnel_head}",
        "time", "rx pps", "tx pps", first, second, "upcall", "megaflows", "MACs"
    );
    let start = Instant::now();
    let mut last = (Instant::now(), Totals::of(&sw.snapshot()));
    while !stop.load(Ordering::Relaxed) && duration.is_none_or(|d| start.elapsed() < Duration::from_secs(d)) {
        std::thread::sleep(Duration::from_millis(100));
        if last.0.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let now = Totals::of(&sw.snapshot());
        let dt = last.0.elapsed().as_secs_f64();
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let pk = d(now.packets, last.1.packets).max(1) as f64;
        let second = match mode {
            DatapathKind::Kernel => String::new(),
            _ => format!("{:.1}%", 100.0 * d(now.megaflow, last.1.megaflow) as f64 / pk),
        };
        let tunnel = if tunnels {
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
            100.0 * d(now.first, last.1.first) as f64 / pk,
            second,
            100.0 * d(now.upcalls, last.1.upcalls) as f64 / pk,
            now.megaflows,
            now.macs,
        );
        last = (Instant::now(), now);
    }
}

/// The switch's part of the summary, from one last snapshot taken in the
/// switch's namespace (where its interfaces are).
fn summary(sw: &Arc<Switch>, switch_ns: &str, mode: DatapathKind, tunnels: bool) {
    let (sw2, ns) = (sw.clone(), switch_ns.to_string());
    let snap = std::thread::spawn(move || sandbox::enter(&ns).then(|| sw2.snapshot()))
        .join()
        .ok()
        .flatten()
        .unwrap_or_else(|| sw.snapshot());
    let t = Totals::of(&snap);
    println!(
        "  switch: {} packets in, {} out; {} megaflows, {} MAC addresses",
        t.rx, t.tx, t.megaflows, t.macs
    );
    let show = text::show(&snap);
    if tunnels {
        println!("  VXLAN: {} packets encapsulated, {} decapsulated", t.encap, t.decap);
        for l in show
            .lines()
            .skip_while(|l| !l.contains("(vxlan"))
            .take_while(|l| !l.trim_start().starts_with("pmd "))
        {
            println!("  {l}");
        }
    }
    if mode == DatapathKind::Hybrid {
        for l in show.lines().skip_while(|l| !l.starts_with("offload:")) {
            println!("  {l}");
        }
    }
    let stats = text::pmd_stats(&snap);
    print!("{}", stats.lines().map(|l| format!("  {l}\n")).collect::<String>());
}
