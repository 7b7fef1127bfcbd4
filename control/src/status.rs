//! The switch's state as data: one [`Status`] snapshot of its counters and
//! gauges, for machines.
//!
//! # What
//! `odpx ctl show` and `pmd-stats-show` are written for people. Scripts
//! and monitoring need the same numbers without parsing prose, so
//! [`Switch::status`] takes one snapshot of everything they report (ports,
//! PMDs, the megaflow owner, the kernel datapath, the offload, the tunnel
//! ports' encapsulation and decapsulation counts) as plain data. It has
//! two forms: JSON (`odpx ctl --json show`, serde) and the Prometheus text
//! format ([`crate::metrics`]).
//!
//! # Invariants
//! * Reading is all a snapshot does: atomics are loaded, the kernel is
//!   asked for its datapath and vport statistics (one netlink round trip;
//!   a failure is reported in the snapshot, not as an error), nothing else.
//!   It never takes the owner's lock, so a busy translator does not delay
//!   a scrape.
//! * Counters only grow (until the process restarts); gauges are the
//!   current value. The names say which (`_total` in Prometheus).

use crate::config::DatapathKind;
use crate::switch::Switch;
use odpx_dataplane::pmd::PmdSnapshot;
use odpx_dataplane::port::PortCounters;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Serialize)]
pub struct Status {
    /// "userspace", "kernel" or "hybrid".
    pub mode: &'static str,
    pub uptime_seconds: u64,
    pub ports: Vec<PortStatus>,
    pub pmds: Vec<PmdStatus>,
    pub translator: TranslatorStatus,
    pub kernel: Option<KernelStatus>,
    pub offload: Option<OffloadStatus>,
}

#[derive(Debug, Serialize)]
pub struct PortStatus {
    pub no: u32,
    pub name: String,
    /// "afxdp", "afxdp underlay", "vxlan" or "memory".
    pub kind: &'static str,
    /// False once the interface is gone.
    pub up: bool,
    pub queues: usize,
    /// For a VXLAN port, rx counts decapsulated packets and tx
    /// encapsulated ones; an underlay port counts its decapsulation drops.
    pub counters: PortCounters,
    /// The kernel's AF_XDP counters (`XDP_STATISTICS`), summed over queues.
    pub afxdp: Option<AfxdpStatus>,
    pub vxlan: Option<VxlanStatus>,
}

#[derive(Debug, Serialize)]
pub struct AfxdpStatus {
    pub rx_dropped: u64,
    pub rx_ring_full: u64,
    pub fill_ring_empty: u64,
    pub rx_invalid: u64,
    pub tx_invalid: u64,
}

#[derive(Debug, Serialize)]
pub struct VxlanStatus {
    /// None: taken from the flow (`"flow"` in the configuration).
    pub remote_ip: Option<String>,
    pub key: Option<u64>,
    pub dst_port: u16,
    pub local_ip: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PmdStatus {
    pub id: usize,
    pub core: Option<usize>,
    /// `port:queue` of each receive queue it polls.
    pub rx_queues: Vec<String>,
    #[serde(flatten, serialize_with = "as_map")]
    pub counters: PmdSnapshot,
}

/// The megaflow owner's counters (and gauges: `megaflows`, `flow_limit`,
/// `idle_timeout_ms`, `last_sweep_ms`).
#[derive(Debug, Default, Serialize)]
pub struct TranslatorStatus {
    pub upcalls: u64,
    pub installs: u64,
    pub megaflows: u64,
    pub flow_limit: u64,
    pub idle_timeout_ms: u64,
    pub flow_limit_hits: u64,
    pub ufid_collisions: u64,
    pub rule_changes: u64,
    pub revalidated: u64,
    pub revalidation_removals: u64,
    pub revalidation_modifications: u64,
    pub sweeps: u64,
    pub last_sweep_ms: u64,
    pub expired: u64,
    pub mac_learned: u64,
    pub mac_moves: u64,
    pub mac_aged: u64,
    /// Kernel and hybrid modes: flows the kernel refused, by its reason.
    pub kernel_refusals: BTreeMap<String, u64>,
    pub kernel_flows_existing: u64,
    pub kernel_executes_failed: u64,
    pub kernel_strays: u64,
    pub kernel_vanished: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct KernelStatus {
    pub datapath: String,
    pub upcall_mode: String,
    /// Why the datapath's statistics are missing, if they are.
    pub error: Option<String>,
    pub lookups_hit: u64,
    pub lookups_missed: u64,
    pub lookups_lost: u64,
    pub flows: u64,
    pub masks: Option<u32>,
    pub mask_hits: Option<u64>,
    pub vports: Vec<VportStatus>,
    pub upcalls_received: u64,
    pub upcalls_undecodable: u64,
    pub upcalls_malformed: u64,
}

#[derive(Debug, Serialize)]
pub struct VportStatus {
    pub no: u32,
    pub name: String,
    #[serde(rename = "type")]
    pub vtype: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

#[derive(Debug, Serialize)]
pub struct OffloadStatus {
    pub enabled: bool,
    pub min_pps: Option<u64>,
    pub min_duration_ms: Option<u64>,
    pub max_flows: Option<usize>,
    /// Gauges: megaflows in the kernel now, steering masks in use (of
    /// `mask_slots`).
    pub offloaded: u64,
    pub masks: u64,
    pub mask_slots: usize,
    pub proposed: u64,
    pub moved: u64,
    pub brought_back: u64,
    /// Proposed megaflows not moved, by reason.
    pub refusals: BTreeMap<String, u64>,
    /// Packets the kernel datapath carried (its lookup hits), and the PMDs.
    pub kernel_packets: Option<u64>,
    pub pmd_packets: u64,
}

/// A counter set as a JSON object of its definitions' keys.
fn as_map<S: serde::Serializer, T: odpx_classifier::counters::Snapshot>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(T::DEFS.len()))?;
    for (d, v) in v.pairs() {
        m.serialize_entry(d.key, &v)?;
    }
    m.end()
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn reasons(m: &std::sync::Mutex<BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    m.lock().map(|m| m.clone()).unwrap_or_default()
}

impl Switch {
    /// One snapshot of every counter (see the module documentation).
    pub fn status(&self) -> Status {
        let pmds: Vec<PmdStatus> = self
            .pmds()
            .iter()
            .map(|h| PmdStatus {
                id: h.id,
                core: h.core,
                rx_queues: h
                    .rxqs
                    .iter()
                    .map(|(p, q)| format!("{}:{q}", self.port_name(*p)))
                    .collect(),
                counters: h.counters.snapshot(),
            })
            .collect();
        let pmd_packets = pmds.iter().map(|p| p.counters.packets).sum();
        let kernel = self.kernel.as_ref().map(|k| {
            let mut s = KernelStatus {
                datapath: k.dp_name.clone(),
                upcall_mode: k.upcall_mode.clone(),
                upcalls_received: load(&k.handlers.received),
                upcalls_undecodable: load(&k.handlers.undecodable),
                upcalls_malformed: load(&k.handlers.malformed),
                ..Default::default()
            };
            match k.datapath() {
                Ok((dp, vports)) => {
                    if let Some(st) = dp.stats {
                        (s.lookups_hit, s.lookups_missed, s.lookups_lost, s.flows) =
                            (st.n_hit, st.n_missed, st.n_lost, st.n_flows);
                    }
                    s.masks = dp.megaflow_stats.map(|m| m.n_masks);
                    s.mask_hits = dp.megaflow_stats.map(|m| m.n_mask_hit);
                    s.vports = vports
                        .into_iter()
                        .map(|v| {
                            let st = v.stats.unwrap_or_default();
                            VportStatus {
                                no: v.port_no,
                                name: v.name,
                                vtype: v.vtype.name(),
                                rx_packets: st.rx_packets,
                                rx_bytes: st.rx_bytes,
                                rx_errors: st.rx_errors,
                                rx_dropped: st.rx_dropped,
                                tx_packets: st.tx_packets,
                                tx_bytes: st.tx_bytes,
                                tx_errors: st.tx_errors,
                                tx_dropped: st.tx_dropped,
                            }
                        })
                        .collect();
                }
                Err(e) => s.error = Some(e),
            }
            s
        });
        let offload = self.offload_counters.as_ref().map(|c| OffloadStatus {
            enabled: c.enabled.load(Ordering::Relaxed),
            min_pps: self.offload_policy.as_ref().map(|p| p.min_pps),
            min_duration_ms: self.offload_policy.as_ref().map(|p| p.min_duration.as_millis() as u64),
            max_flows: self.offload_policy.as_ref().map(|p| p.max_flows),
            offloaded: load(&c.offloaded),
            masks: load(&c.masks),
            mask_slots: odpx_dataplane::steer::MASK_SLOTS,
            proposed: load(&c.attempts),
            moved: load(&c.moved),
            brought_back: load(&c.brought_back),
            refusals: reasons(&c.refusals),
            kernel_packets: kernel.as_ref().filter(|k| k.error.is_none()).map(|k| k.lookups_hit),
            pmd_packets,
        });
        let t = &self.translator_counters;
        Status {
            mode: match self.mode {
                DatapathKind::Userspace => "userspace",
                DatapathKind::Kernel => "kernel",
                DatapathKind::Hybrid => "hybrid",
            },
            uptime_seconds: self.uptime().as_secs(),
            ports: self.ports.iter().flatten().map(|p| port_status(p)).collect(),
            pmds,
            translator: TranslatorStatus {
                upcalls: load(&t.upcalls),
                installs: load(&t.installs),
                megaflows: load(&t.megaflows),
                flow_limit: load(&t.flow_limit),
                idle_timeout_ms: load(&t.max_idle_ms),
                flow_limit_hits: load(&t.flow_limit_hits),
                ufid_collisions: load(&t.ufid_collisions),
                rule_changes: load(&t.rule_changes),
                revalidated: load(&t.revalidated),
                revalidation_removals: load(&t.revalidation_removals),
                revalidation_modifications: load(&t.revalidation_modifications),
                sweeps: load(&t.sweeps),
                last_sweep_ms: load(&t.last_sweep_ms),
                expired: load(&t.expired),
                mac_learned: load(&t.mac_learned),
                mac_moves: load(&t.mac_moves),
                mac_aged: load(&t.mac_aged),
                kernel_refusals: reasons(&t.refusals),
                kernel_flows_existing: load(&t.flows_existing),
                kernel_executes_failed: load(&t.executes_failed),
                kernel_strays: load(&t.kernel_strays),
                kernel_vanished: load(&t.kernel_vanished),
            },
            kernel,
            offload,
        }
    }
}

fn port_status(p: &odpx_dataplane::port::Port) -> PortStatus {
    let vxlan = p.vxlan_endpoint().map(|e| VxlanStatus {
        remote_ip: e.remote.map(|r| r.to_string()),
        key: e.vni.map(u64::from),
        dst_port: e.dst_port,
        local_ip: e.local.map(|l| l.to_string()),
    });
    let kind = match (p.mem().is_some(), vxlan.is_some(), p.vteps().is_some()) {
        (true, _, _) => "memory",
        (_, true, _) => "vxlan",
        (_, _, true) => "afxdp underlay",
        _ => "afxdp",
    };
    PortStatus {
        no: p.no,
        name: p.name.clone(),
        kind,
        up: p.is_alive(),
        queues: p.queues(),
        counters: p.stats.snapshot(),
        afxdp: p.kernel_stats().map(|k| AfxdpStatus {
            rx_dropped: k.rx_dropped,
            rx_ring_full: k.rx_ring_full,
            fill_ring_empty: k.rx_fill_ring_empty_descs,
            rx_invalid: k.rx_invalid_descs,
            tx_invalid: k.tx_invalid_descs,
        }),
        vxlan,
    }
}
