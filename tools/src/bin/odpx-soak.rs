//! `odpx-soak`: random rule changes, MAC moves, flows starting and
//! stopping and idle pauses against a running odpx, with every frame that
//! comes out checked against the reference decision (see
//! `odpx_tools::soak`). Prints the tallies; exits 1 on any wrong, missing
//! or stale decision.

use clap::Parser;
use odpx_tools::soak::{run, SoakArgs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "odpx-soak", about = "Soak a running odpx against the reference decision")]
struct Cli {
    /// The switch's control socket.
    #[arg(short, long, default_value = "/run/odpx/odpx.sock")]
    socket: PathBuf,
    /// A switch port and the interface at its far end (`1:e1`); all of
    /// the switch's ports, at least two.
    #[arg(long = "port", value_parser = parse_port, required = true)]
    ports: Vec<(u32, String)>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Seconds of traffic after each change.
    #[arg(long, default_value_t = 2.0)]
    phase: f64,
    /// Frames per second of each running flow.
    #[arg(long, default_value_t = 100)]
    pps: u32,
    /// The switch's idle timeout in ms (the idle pauses wait it out).
    #[arg(long, default_value_t = 10000)]
    idle_ms: u64,
    /// A shell command printing the kernel's flows, checked on their own
    /// (`ovs-dpctl dump-flows odpx0`).
    #[arg(long)]
    kernel_flows: Option<String>,
    /// Stop after this many seconds (steps then only bound the run).
    #[arg(long)]
    duration: Option<f64>,
    /// Flap the ports' links too (their far ends, with `ip link`).
    #[arg(long)]
    flap: bool,
}

fn parse_port(s: &str) -> Result<(u32, String), String> {
    let (no, name) = s.split_once(':').ok_or("say NUMBER:INTERFACE")?;
    let no = no.parse().map_err(|_| format!("'{no}' is not a port number"))?;
    if name.is_empty() {
        return Err("no interface name".into());
    }
    Ok((no, name.to_string()))
}

fn main() -> ExitCode {
    let c = Cli::parse();
    let args = SoakArgs {
        socket: c.socket,
        ports: c.ports,
        seed: c.seed,
        steps: c.steps,
        phase: Duration::from_secs_f64(c.phase),
        pps: c.pps,
        idle: Duration::from_millis(c.idle_ms),
        kernel_flows: c.kernel_flows,
        duration: c.duration.map(Duration::from_secs_f64),
        flap: c.flap,
    };
    match run(args) {
        Ok((t, left)) => {
            println!(
                "soak: {} frames checked: {} wrong, {} missing; {} foreign",
                t.frames, t.wrong, t.missing, t.foreign
            );
            println!(
                "changes: {} rules added, {} deletes, {} MAC moves, {} flow starts/stops, {} idle pauses, {} link flaps in {} steps",
                t.rules_added, t.deletes, t.moves, t.starts_stops, t.idle_pauses, t.flaps, t.steps
            );
            if let Some(left) = left {
                println!(
                    "kernel: {} flows checked on {} frames, {} stale; {} flows left after idle",
                    t.kernel_flows_checked, t.kernel_frames_checked, t.stale_kernel_flows, left
                );
            }
            for e in &t.examples {
                println!("  {e}");
            }
            let bad = t.wrong + t.missing + t.stale_kernel_flows + left.unwrap_or(0) as u64;
            if bad == 0 && t.frames > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("odpx-soak: {e}");
            ExitCode::from(2)
        }
    }
}
