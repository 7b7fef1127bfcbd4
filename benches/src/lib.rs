//! The odpx benchmarks' shared code. The workloads themselves (flows,
//! frames, rule sets) live in [`odpx_dataplane::workload`], where the
//! traffic generator uses them too; they are re-exported here for the
//! benchmarks.
//!
//! A top-layer crate like `tools`: it may import every crate, and nothing
//! imports it.

pub use odpx_dataplane::workload::*;

use odpx_classifier::rules::RuleSet;
use odpx_control::backend::userspace::Userspace;
use odpx_control::core::tunnels::Tunnels;
use odpx_control::core::{Core, CoreConfig, Holders, Packet};
use odpx_control::owner::{Owner, UnderlayIo};
use odpx_dataplane::pmd::{Pmd, PmdConfig, PmdCounters, PmdSnapshot, PortTable, SlowPath};
use odpx_dataplane::upcalls::{upcall_queues, UpcallReceiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A PMD driven without a thread, with the real owner answering its
/// upcalls: what the datapath benchmarks time.
pub struct BenchPmd {
    pub pmd: Pmd,
    pub counters: Arc<PmdCounters>,
    pub owner: Arc<Owner>,
    upcalls: UpcallReceiver,
}

impl BenchPmd {
    /// A PMD polling port `rx_port` of `ports`, translating with `rules`
    /// over the switch ports `switch_ports`. The EMC is as `odpx run` sets
    /// it up by default; the environment overrides it for A/B runs:
    /// `EMC=N` entries, `EMC_ADAPTIVE=0` to probe it always.
    pub fn new(ports: PortTable, rx_port: u32, rules: RuleSet, switch_ports: Vec<u32>) -> BenchPmd {
        BenchPmd::with_tunnels(ports, rx_port, rules, switch_ports, Tunnels::none())
    }

    /// [`BenchPmd::new`] with tunnel ports.
    pub fn with_tunnels(
        ports: PortTable,
        rx_port: u32,
        rules: RuleSet,
        switch_ports: Vec<u32>,
        tunnels: Tunnels,
    ) -> BenchPmd {
        let (utx, urx) = upcall_queues(ports.len(), 1 << 20);
        let (mtx, mrx) = crossbeam_channel::unbounded();
        let counters = Arc::new(PmdCounters::default());
        let cfg = PmdConfig {
            id: 0,
            core: None,
            rxqs: vec![(rx_port, 0)],
            emc_entries: std::env::var("EMC").map_or(8192, |v| v.parse().expect("EMC: a number of entries")),
            emc_insert_inv_prob: 100,
            emc_adaptive: std::env::var("EMC_ADAPTIVE").map_or(true, |v| v != "0"),
            idle_wait: None,
            megaflow_limit: 200_000,
        };
        // Reports (sweeps, barriers) are not asked for here.
        let (report_tx, _) = crossbeam_channel::unbounded();
        let slow = SlowPath {
            upcalls: utx,
            reports: report_tx,
            to_userspace: odpx_dataplane::upcalls::UserspaceSender::none(),
        };
        let core = Core::new(
            CoreConfig {
                rules,
                ports: switch_ports,
                holders: Holders { pmds: 1, kernel: false },
                megaflow_limit: 200_000,
                idle_timeout: Duration::from_secs(3600),
                tunnels,
                offload: None,
            },
            Instant::now(),
        );
        let io = UnderlayIo::new(ports.clone(), None, core.tunnel_counters());
        BenchPmd {
            pmd: Pmd::new(cfg, ports, slow, mrx, counters.clone()),
            counters,
            owner: Owner::new(core, Box::new(Userspace::new(vec![mtx])), io),
            upcalls: urx,
        }
    }

    /// Polls `passes` times, answering every upcall, then once more so the
    /// last installs are in.
    pub fn warm_up(&mut self, passes: usize) {
        for _ in 0..passes {
            self.pmd.poll_once();
            while let Some(u) = self.upcalls.try_recv() {
                let packet = Packet::Pmd {
                    pmd: u.pmd,
                    in_port: u.in_port,
                    bytes: u.packet,
                };
                self.owner.decide(|core| core.upcall(&u.key, packet, Instant::now()));
            }
        }
        self.pmd.poll_once();
        while self.pmd.has_backlog() {
            self.pmd.poll_once();
        }
    }
}

/// TSC cycles per packet by stage between two snapshots, as
/// `pmd-stats-show` prints them live.
pub fn stages(a: &PmdSnapshot, b: &PmdSnapshot) -> String {
    let pk = (b.packets - a.packets).max(1) as f64;
    let per = |x: u64, y: u64| (y - x) as f64 / pk;
    format!(
        "cycles per packet by stage: receive {:.0}, classify {:.0}, actions {:.0}, transmit {:.0}",
        per(a.rx_cycles, b.rx_cycles),
        per(a.classify_cycles, b.classify_cycles),
        per(a.action_cycles, b.action_cycles),
        per(a.tx_cycles, b.tx_cycles)
    )
}

/// How a PMD's EMC fared between two snapshots.
pub fn emc_summary(a: &PmdSnapshot, b: &PmdSnapshot) -> String {
    let pk = (b.packets - a.packets).max(1) as f64;
    format!(
        "EMC {:.1}% (bypassed {:.1}%; now {}, {} changes, last measured {}/{} classify cycles per packet with/without)",
        100.0 * (b.emc_hits - a.emc_hits) as f64 / pk,
        100.0 * (b.emc_bypassed - a.emc_bypassed) as f64 / pk,
        if b.emc_on != 0 { "probed" } else { "bypassed" },
        b.emc_switches,
        b.emc_cost_with,
        b.emc_cost_without,
    )
}
