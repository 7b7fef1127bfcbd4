//! `odpx`: the command-line tool.
//!
//! Subcommands: `datapath`, `vport`, `flow`, `packet` (the kernel
//! datapath, go-odp style), `odp normalize`, `parse-pcap`, `trace`.
//! Subcommands may be abbreviated while unambiguous. Each failure prints a
//! one-line reason and exits non-zero.

mod daemon;
mod demo;
mod odp_cli;
mod odp_flags;
mod traffic;

use odpx_tools::pcap;

use clap::{Parser, Subcommand};
use odpx_classifier::odp::{self, parse_flow_line};
use odpx_classifier::rules::ofctl::parse_pipeline;
use odpx_classifier::rules::RuleSet;
use odpx_classifier::xlate::FloodEnv;
use std::io::{BufRead, Write};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "odpx",
    version,
    infer_subcommands = true,
    about = "odpx: a userspace fast-path switch that offloads to the Open vSwitch kernel datapath"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// The switch on a sandbox of namespaces and veths, forwarding real
    /// traffic with live statistics; removes everything it made on exit.
    Demo {
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// `userspace` (PMDs on AF_XDP), `kernel` (the Linux Open vSwitch
        /// datapath, which needs the openvswitch module) or `hybrid` (PMDs,
        /// hot flows offloaded to the kernel datapath).
        #[arg(long, default_value = "userspace", value_parser = ["userspace", "kernel", "hybrid"])]
        datapath: String,
    },
    /// Run the switch daemon from a configuration file.
    Run {
        #[arg(short, long)]
        config: std::path::PathBuf,
        /// Kernel and hybrid modes: delete the flows a previous run left in
        /// the kernel datapath instead of adopting them.
        #[arg(long)]
        flush: bool,
    },
    /// Talk to a running switch: show, dump-flows, add-flow RULE,
    /// del-flows [--strict] MATCH (none: all), add-group GROUP, mod-group GROUP,
    /// del-groups [group_id=N], dump-groups, dump-group-stats, add-meter METER, mod-meter METER,
    /// del-meters [meter=N], dump-meters [meter=N], meter-stats [meter=N], dump-megaflows, pmd-stats-show, pmd-stats-clear,
    /// mac-table, offload on|off (hybrid mode), tnl-routes, tnl-neigh, trace KEY.
    Ctl {
        /// The control socket.
        #[arg(short, long, default_value = "/run/odpx/odpx.sock")]
        socket: std::path::PathBuf,
        /// Machine-readable output (show, pmd-stats-show, dump-megaflows).
        #[arg(long)]
        json: bool,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Send frames with AF_XDP (benchmark traffic).
    Gen {
        iface: String,
        /// p2p (one UDP flow), gateway (the hit-rate bench mix) or macs
        /// (--flows frames, each from its own source MAC: flow setup) or
        /// faucet (--flows flows among --hosts hosts, bridged and routed
        /// through Faucet's pipeline: `odpx workload --faucet-hosts`).
        #[arg(long, default_value = "p2p")]
        workload: String,
        #[arg(long, default_value_t = 10_000)]
        flows: usize,
        #[arg(long, default_value_t = 1000)]
        hosts: usize,
        #[arg(long, default_value_t = 1.0)]
        zipf: f64,
        /// Packets per second (0: as fast as possible).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Frame size in bytes (at least the headers).
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long)]
        core: Option<usize>,
        /// Send every frame inside VXLAN: DST_MAC,SRC_IP,DST_IP,VNI (a
        /// remote VTEP's traffic, for decapsulation benchmarks).
        #[arg(long)]
        vxlan: Option<String>,
        /// Also this many new flows a second (UDP to port 9, a new source
        /// address and port each), as a port scan or SYN flood; with
        /// `--workload none`, only those.
        #[arg(long, default_value_t = 0)]
        churn: u64,
    },
    /// Bare AF_XDP forwarder IN -> OUT without lookup (the I/O ceiling).
    Fwd {
        inp: String,
        out: String,
        #[arg(long)]
        core: Option<usize>,
        #[arg(long)]
        duration: Option<f64>,
    },
    /// Count the frames arriving on an interface, through AF_XDP (a
    /// counting sink for `odpx gen`): per-second rates, then the totals.
    Sink {
        iface: String,
        #[arg(long)]
        core: Option<usize>,
        /// Stop after this many seconds (default: at Ctrl-C).
        #[arg(long)]
        duration: Option<f64>,
        /// Print nothing until the totals.
        #[arg(long)]
        quiet: bool,
    },
    /// Print a benchmark workload's rules (ovs-ofctl syntax).
    Workload {
        /// The number of ACL + routing rules.
        #[arg(long, default_value_t = 1000)]
        rules: usize,
        /// Port every output goes to.
        #[arg(long, default_value_t = 2)]
        out_port: u32,
        /// Faucet's pipeline (routing between two VLANs) with this many
        /// learned hosts instead, as `odpx gen --workload faucet` sends.
        #[arg(long)]
        faucet_hosts: Option<usize>,
    },
    /// Kernel datapaths: list, add, delete, show, set, listen.
    #[command(infer_subcommands = true)]
    Datapath {
        #[command(subcommand)]
        cmd: Option<odp_cli::DpCmd>,
    },
    /// Kernel datapath ports: list, add netdev|internal|vxlan|geneve|gre, delete.
    #[command(infer_subcommands = true)]
    Vport {
        #[command(subcommand)]
        cmd: Option<odp_cli::VportCmd>,
    },
    /// Kernel datapath flows: list, add, delete, get, clear.
    #[command(infer_subcommands = true)]
    Flow {
        #[command(subcommand)]
        cmd: odp_cli::FlowCmd,
    },
    /// Run actions on a packet in the kernel datapath.
    #[command(infer_subcommands = true)]
    Packet {
        #[command(subcommand)]
        cmd: odp_cli::PacketCmd,
    },
    /// ODP flow text tools.
    Odp {
        #[command(subcommand)]
        cmd: OdpCmd,
    },
    /// Print the ODP flow key of every packet in a pcap file, one per line.
    ParsePcap {
        /// Classic pcap file with Ethernet frames.
        file: String,
        /// The in_port to report (a pcap has none).
        #[arg(long, default_value_t = 0)]
        in_port: u32,
    },
    /// Trace one packet through a rule file offline: rules hit, datapath
    /// actions, and the megaflow that would be installed.
    Trace {
        /// Rules in ovs-ofctl add-flow syntax, one per line.
        #[arg(long)]
        rules: String,
        /// Ports that FLOOD and NORMAL (no MAC table offline) send to;
        /// default: every port the rules mention.
        #[arg(long, value_delimiter = ',')]
        ports: Vec<u32>,
        /// The packet: an ODP key, or a flow in ovs-ofctl match syntax as
        /// ofproto/trace takes it (unmentioned fields are zero).
        key: String,
    },
}

#[derive(Subcommand)]
enum OdpCmd {
    /// Read flows (`KEY actions:ACTIONS`, a key alone, or `actions:...`)
    /// from stdin and print each in canonical ovs-dpctl form.
    Normalize,
}

/// The daemon's log (`tracing`, on stderr): `ODPX_LOG` filters it
/// (`info` by default; `warn`, `debug`, or per module as `tracing` says).
fn init_log() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ODPX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.cmd, Cmd::Run { .. } | Cmd::Demo { .. }) {
        init_log();
    }
    let r = match cli.cmd {
        Cmd::Demo { duration, datapath } => demo::demo(
            duration,
            match datapath.as_str() {
                "kernel" => odpx_control::config::DatapathKind::Kernel,
                "hybrid" => odpx_control::config::DatapathKind::Hybrid,
                _ => odpx_control::config::DatapathKind::Userspace,
            },
        ),
        Cmd::Gen {
            iface,
            workload,
            flows,
            hosts,
            zipf,
            rate,
            size,
            duration,
            core,
            vxlan,
            churn,
        } => traffic::gen(&traffic::GenArgs {
            iface: &iface,
            workload: &workload,
            flows,
            hosts,
            zipf,
            rate,
            size,
            duration,
            core,
            vxlan: vxlan.as_deref(),
            churn,
        }),
        Cmd::Fwd {
            inp,
            out,
            core,
            duration,
        } => traffic::fwd(&inp, &out, core, duration),
        Cmd::Sink {
            iface,
            core,
            duration,
            quiet,
        } => traffic::sink(&iface, core, duration, quiet),
        Cmd::Workload {
            rules,
            out_port,
            faucet_hosts,
        } => traffic::rules(rules, out_port, faucet_hosts),
        Cmd::Run { config, flush } => daemon::run(&config, flush),
        Cmd::Ctl { socket, json, command } => daemon::ctl(&socket, json, &command),
        Cmd::Datapath { cmd } => odp_cli::datapath(cmd),
        Cmd::Vport { cmd } => odp_cli::vport(cmd),
        Cmd::Flow { cmd } => odp_cli::flow(cmd),
        Cmd::Packet { cmd } => odp_cli::packet(cmd),
        Cmd::Odp { cmd: OdpCmd::Normalize } => normalize(),
        Cmd::ParsePcap { file, in_port } => parse_pcap(&file, in_port),
        Cmd::Trace { rules, ports, key } => trace(&rules, ports, &key),
    };
    match r {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("odpx: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn normalize() -> Result<ExitCode, String> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut bad = 0usize;
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match parse_flow_line(t) {
            Ok(f) => {
                if writeln!(out, "{f}").is_err() {
                    return Ok(ExitCode::FAILURE);
                }
            }
            Err(e) => {
                bad += 1;
                eprintln!("line {}: {e}", i + 1);
            }
        }
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn parse_pcap(file: &str, in_port: u32) -> Result<ExitCode, String> {
    let buf = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let packets = pcap::read(&buf).map_err(|e| format!("{file}: {e}"))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for p in packets {
        let key = odpx_classifier::extract::extract(p.data, in_port);
        if writeln!(out, "{}", odp::format_exact_key(&key)).is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn trace(rules_file: &str, mut ports: Vec<u32>, key_text: &str) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(rules_file).map_err(|e| format!("{rules_file}: {e}"))?;
    let set = parse_pipeline(&text).map_err(|e| format!("{rules_file}:{}: {}; no rules loaded", e.line, e.err))?;
    if key_text.contains('(') {
        let key = odp::parse_key(key_text).map_err(|e| format!("key: {e}"))?;
        if !key.opaque.is_empty() {
            eprintln!(
                "odpx: note: attributes odpx does not interpret ({}) do not take part in the trace",
                key.opaque.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let packet = odpx_control::core::translate::packet_of(key_text)?;
    if ports.is_empty() {
        ports = mentioned_ports(&set);
    }
    let tunnels = odpx_control::core::tunnels::Tunnels::none();
    print!(
        "{}",
        odpx_control::core::translate::trace(&set, &tunnels, &packet, &mut FloodEnv { ports })
    );
    Ok(ExitCode::SUCCESS)
}

/// Ports named by in_port matches and output actions.
fn mentioned_ports(set: &RuleSet) -> Vec<u32> {
    use odpx_classifier::rules::RuleAction;
    let mut ports: Vec<u32> = Vec::new();
    for r in set.iter() {
        if r.matched.mask.in_port != 0 {
            ports.push(r.matched.key.in_port);
        }
        for a in &r.actions {
            if let RuleAction::Output { port: p, .. } = a {
                ports.push(*p);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}
