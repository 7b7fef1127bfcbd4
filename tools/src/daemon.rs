//! `odpx run` and `odpx ctl`.

use odpx_control::config::{Config, DatapathKind};
use odpx_control::ctl;
use odpx_control::start::StartOptions;
use odpx_control::switch::Switch;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
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
    let agent = odpx_control::openflow::Agent::start(&sw, &cfg)?;
    if let Some(of) = &cfg.openflow {
        let to: Vec<&str> = of.controller.iter().chain(&of.listen).map(String::as_str).collect();
        eprintln!("odpx: OpenFlow 1.3 on {}", to.join(", "));
    }
    eprintln!("odpx: {}; control socket {}", started_line(&cfg, &sw), socket.display());
    let mut links = odpx_control::links::LinkWatch::default();
    let mut losses = odpx_control::logs::LossWatch::default();
    let mut memory = odpx_control::memory::MemoryTrim::default();
    // The kernel's link notices wake the link watch at once (a fast-failover
    // group's traffic moves when its port goes down, not at the next
    // check); the checks also run every WATCH_EVERY without one.
    let mut notices = odpx_offload::rtnl::RtnlMonitor::open()
        .map_err(|e| tracing::warn!("no link notices ({e}): links are checked every {WATCH_EVERY:?}"))
        .ok();
    let mut last_watch = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match notices.as_mut() {
            // Any notice, or a lost one (an overflow), is a reason to look.
            Some(n) => drop(n.recv(WATCH_EVERY)),
            None => std::thread::sleep(WATCH_EVERY),
        }
        for line in links.check(&sw) {
            tracing::info!("{line}");
        }
        if last_watch.elapsed() < WATCH_EVERY {
            continue;
        }
        last_watch = Instant::now();
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
    drop(agent);
    drop(sw);
    Ok(ExitCode::SUCCESS)
}

/// How often the daemon checks links, losses and memory without a notice.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// What the daemon says once it runs: its datapath, ports, and what it
/// did with a previous run's kernel flows.
fn started_line(cfg: &Config, sw: &Switch) -> String {
    let s = sw.snapshot();
    let o = &s.owner;
    let adopted = format!(
        "flows of a previous run: {} kept, {} given new actions, {} deleted",
        o.adopted_kept, o.adopted_fixed, o.adopted_deleted
    );
    match (&sw.kernel, sw.mode) {
        (Some(k), DatapathKind::Hybrid) => {
            let offloaded = s.offload.as_ref().map_or(0, |o| o.counters.offloaded);
            format!(
                "hybrid: {} port(s) with {} PMD thread(s), offloading to kernel datapath {}; {}; {adopted}, {offloaded} offloaded again; offload {}",
                cfg.ports.len(),
                cfg.pmd.cores.len(),
                k.dp_name,
                k.upcall_mode,
                if cfg.offload.enabled { "on" } else { "off" },
            )
        }
        (Some(k), _) => format!(
            "kernel datapath {} with {} port(s); {}; {adopted}",
            k.dp_name,
            cfg.ports.len(),
            k.upcall_mode,
        ),
        (None, _) => format!(
            "switching on {} port(s) with {} PMD thread(s)",
            cfg.ports.len(),
            cfg.pmd.cores.len(),
        ),
    }
}

/// `odpx ctl [-s SOCKET] [--json] COMMAND [ARGS...]`.
pub fn ctl(socket: &Path, json: bool, words: &[String]) -> R {
    print!("{}", ctl::request_text(socket, &words.join(" "), json)?);
    Ok(ExitCode::SUCCESS)
}
