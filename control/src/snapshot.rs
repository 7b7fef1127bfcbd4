//! The switch's state and counters as one value: every output of the
//! switch (`ctl show` and `pmd-stats-show` for people, `ctl --json`, the
//! Prometheus endpoint, and next the OpenFlow statistics replies) is a
//! renderer of a [`Snapshot`] ([`crate::render`]).
//!
//! # What
//! [`Switch::snapshot`] takes one reading of everything the switch counts
//! or knows about itself: its ports, PMDs, the owner, the kernel datapath,
//! the offload, the tunnels. Counters come as the snapshots of their sets
//! ([`odpx_classifier::counters!`]), so their names, help texts and units
//! are the sets' definitions, the same for every renderer.
//!
//! # Invariants
//! * Reading is all a snapshot does: atomics are loaded, the kernel is
//!   asked for its datapath and vport statistics (one netlink round trip;
//!   a failure is reported in the snapshot, not as an error), nothing
//!   else. It never takes the owner's lock, so a busy owner does not delay
//!   a scrape.
//! * Counters only grow (until a restart or `pmd-stats-clear`); gauges are
//!   the current value. Their definitions say which.

use crate::config::DatapathKind;
use crate::core::counters::{OffloadSnapshot, OwnerSnapshot, TunnelSnapshot};
use crate::openflow_counters::OpenflowSnapshot;
use crate::switch::Switch;
use odpx_dataplane::pmd::PmdSnapshot;
use odpx_dataplane::port::PortCounters;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// Everything the switch reports about itself, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// "userspace", "kernel" or "hybrid".
    pub mode: String,
    pub uptime_seconds: u64,
    pub ports: Vec<PortStatus>,
    pub pmds: Vec<PmdStatus>,
    #[serde(with = "crate::snapshot::counter_set")]
    pub owner: OwnerSnapshot,
    /// Kernel flow operations refused, by the kernel's reason.
    pub kernel_refusals: BTreeMap<String, u64>,
    pub kernel: Option<KernelStatus>,
    pub offload: Option<OffloadStatus>,
    /// When tunnel ports are configured.
    pub tunnels: Option<TunnelStatus>,
    /// When the OpenFlow agent runs.
    pub openflow: Option<OpenflowStatus>,
}

/// The OpenFlow agent: its targets and counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenflowStatus {
    /// The controllers it dials and the sockets it listens on.
    pub targets: Vec<String>,
    #[serde(flatten, with = "crate::snapshot::counter_set")]
    pub counters: OpenflowSnapshot,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortStatus {
    pub no: u32,
    pub name: String,
    /// "afxdp", "afxdp underlay", "vxlan" or "memory".
    pub kind: String,
    /// Hybrid mode: where the steering program runs ("native" or
    /// "generic" XDP).
    pub steering: Option<String>,
    /// False once the interface is gone.
    pub up: bool,
    pub queues: usize,
    /// For a VXLAN port, rx counts decapsulated packets and tx
    /// encapsulated ones; an underlay port counts its decapsulation drops.
    #[serde(with = "crate::snapshot::counter_set")]
    pub counters: PortCounters,
    /// The kernel's AF_XDP counters (`XDP_STATISTICS`), summed over queues.
    #[serde(default, with = "crate::snapshot::optional_counter_set")]
    pub afxdp: Option<AfxdpStatus>,
    pub vxlan: Option<VxlanStatus>,
    /// The port's ingress policer, if it has one.
    #[serde(default)]
    pub policing: Option<PolicingStatus>,
}

/// A port's ingress policer (`ingress_policing_rate` and `_burst`) and
/// what it did, as of the last sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicingStatus {
    pub rate_kbps: u32,
    pub burst_kb: u32,
    /// Packets the port received that went through the policer.
    pub packets: u64,
    /// Of those, the ones it dropped.
    pub dropped: u64,
}

odpx_classifier::counters! {
    /// The kernel's AF_XDP socket counters (`XDP_STATISTICS`), summed over
    /// a port's queues (read from the kernel at each snapshot).
    pub struct AfxdpCounters => AfxdpStatus;
    /// The kernel's AF_XDP socket counters (XDP_STATISTICS), summed over queues: frames dropped.
    rx_dropped: Counter(Packets) "rx_dropped" => "port_afxdp_events" event "rx_dropped";
    /// Frames dropped: the receive ring was full.
    rx_ring_full: Counter(Packets) "rx_ring_full" => "port_afxdp_events" event "rx_ring_full";
    /// Frames dropped: no fill-ring frame to receive into.
    fill_ring_empty: Counter(Packets) "fill_ring_empty" => "port_afxdp_events" event "fill_ring_empty";
    /// Invalid receive descriptors.
    rx_invalid: Counter(Events) "rx_invalid" => "port_afxdp_events" event "rx_invalid";
    /// Invalid transmit descriptors.
    tx_invalid: Counter(Events) "tx_invalid" => "port_afxdp_events" event "tx_invalid";
}

odpx_classifier::counters! {
    /// The kernel datapath's own counters (read from it at each snapshot)
    /// and its upcall handlers'.
    pub struct KernelDatapathCounters => KernelCounters;
    /// Kernel datapath lookups: hit a flow, missed (upcalled), or lost.
    lookups_hit: Counter(Packets) "hit" => "kernel_lookups" result "hit";
    /// Kernel datapath lookups that missed (upcalled).
    lookups_missed: Counter(Packets) "missed" => "kernel_lookups" result "missed";
    /// Kernel datapath lookups lost (the upcall socket overflowed).
    lookups_lost: Counter(Packets) "lost" => "kernel_lookups" result "lost";
    /// Flows in the kernel datapath.
    flows: Gauge(Events) "flows" => "kernel_flows";
    /// Masks in the kernel datapath's flow table.
    masks: Gauge(Events) "total" => "kernel_masks";
    /// Masks probed by the kernel's lookups.
    mask_hits: Counter(Events) "masks: hit" => "kernel_mask_hits";
    /// Upcalls the handlers received from the kernel.
    upcalls_received: Counter(Packets) "received" => "kernel_upcalls" result "received";
    /// Upcalls whose flow key did not decode (counted, logged, dropped).
    upcalls_undecodable: Counter(Packets) "undecodable keys" => "kernel_upcalls" result "undecodable";
    /// Upcalls that did not parse at all.
    upcalls_malformed: Counter(Packets) "malformed" => "kernel_upcalls" result "malformed";
}

odpx_classifier::counters! {
    /// A kernel vport's counters (read from the kernel at each snapshot).
    pub struct VportAtomics => VportCounters;
    /// Packets a kernel vport received.
    rx_packets: Counter(Packets) "rx packets" => "kernel_vport_rx_packets";
    /// Bytes a kernel vport received.
    rx_bytes: Counter(Bytes) "bytes" => "kernel_vport_rx_bytes";
    /// Receive errors of a kernel vport.
    rx_errors: Counter(Packets) "errors" => "kernel_vport_errors" direction "rx";
    /// Received packets a kernel vport dropped.
    rx_dropped: Counter(Packets) "dropped" => "kernel_vport_dropped" direction "rx";
    /// Packets a kernel vport sent.
    tx_packets: Counter(Packets) "tx packets" => "kernel_vport_tx_packets";
    /// Bytes a kernel vport sent.
    tx_bytes: Counter(Bytes) "bytes" => "kernel_vport_tx_bytes";
    /// Transmit errors of a kernel vport.
    tx_errors: Counter(Packets) "errors" => "kernel_vport_errors" direction "tx";
    /// Packets a kernel vport dropped on transmit.
    tx_dropped: Counter(Packets) "dropped" => "kernel_vport_dropped" direction "tx";
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanStatus {
    /// None: taken from the flow (`"flow"` in the configuration).
    pub remote_ip: Option<String>,
    pub key: Option<u64>,
    pub dst_port: u16,
    pub local_ip: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PmdStatus {
    pub id: usize,
    pub core: Option<usize>,
    /// `port:queue` of each receive queue it polls.
    pub rx_queues: Vec<String>,
    #[serde(flatten, with = "crate::snapshot::counter_set")]
    pub counters: PmdSnapshot,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelStatus {
    pub datapath: String,
    pub upcall_mode: String,
    /// Why the datapath's statistics are missing, if they are (then they
    /// read zero).
    pub error: Option<String>,
    #[serde(flatten, with = "crate::snapshot::counter_set")]
    pub counters: KernelCounters,
    pub masks_cache_size: Option<u32>,
    pub vports: Vec<VportStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VportStatus {
    pub no: u32,
    pub name: String,
    #[serde(rename = "type")]
    pub vtype: String,
    #[serde(flatten, with = "crate::snapshot::counter_set")]
    pub counters: VportCounters,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OffloadStatus {
    pub min_pps: Option<u64>,
    pub min_duration_ms: Option<u64>,
    pub max_flows: Option<usize>,
    #[serde(flatten, with = "crate::snapshot::counter_set")]
    pub counters: OffloadSnapshot,
    /// The steering program's mask slots.
    pub mask_slots: usize,
    /// Proposed megaflows not moved, by reason.
    pub refusals: BTreeMap<String, u64>,
    /// Packets the kernel datapath carried (its lookup hits), and the PMDs.
    pub kernel_packets: Option<u64>,
    pub pmd_packets: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TunnelStatus {
    /// `ADDRESS:PORT` of each VTEP the underlay filters accept.
    pub vteps: Vec<String>,
    #[serde(flatten, with = "crate::snapshot::counter_set")]
    pub counters: TunnelSnapshot,
}

impl Switch {
    /// One snapshot of the switch (see the module documentation).
    pub fn snapshot(&self) -> Snapshot {
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
        let kernel = self.kernel.as_ref().map(kernel_status);
        let (owner_counters, refusals, tunnels, offload, vteps, policers) = self.owner.read(|c| {
            (
                c.counters(),
                c.refusals(),
                c.tunnel_counters(),
                c.offload_counters(),
                c.vteps(),
                c.policers(),
            )
        });
        let offload = offload.map(|(c, r)| OffloadStatus {
            min_pps: self.offload_policy.map(|p| p.min_pps),
            min_duration_ms: self.offload_policy.map(|p| p.min_duration.as_millis() as u64),
            max_flows: self.offload_policy.map(|p| p.max_flows),
            counters: c.snapshot(),
            mask_slots: odpx_dataplane::steer::MASK_SLOTS,
            refusals: r.snapshot(),
            kernel_packets: kernel
                .as_ref()
                .filter(|k| k.error.is_none())
                .map(|k| k.counters.lookups_hit),
            pmd_packets,
        });
        let mut ports: Vec<PortStatus> = self.ports.iter().flatten().map(|p| port_status(p)).collect();
        for p in &mut ports {
            p.policing = policers.iter().find(|x| x.port == p.no).map(|x| PolicingStatus {
                rate_kbps: x.rate_kbps,
                burst_kb: x.burst_kb,
                packets: x.packets,
                dropped: x.dropped,
            });
        }
        let tunnels = ports.iter().any(|p| p.vxlan.is_some()).then(|| TunnelStatus {
            vteps: vteps.iter().map(|(a, p)| format!("{a}:{p}")).collect(),
            counters: tunnels.snapshot(),
        });
        Snapshot {
            mode: match self.mode {
                DatapathKind::Userspace => "userspace",
                DatapathKind::Kernel => "kernel",
                DatapathKind::Hybrid => "hybrid",
            }
            .to_string(),
            uptime_seconds: self.uptime().as_secs(),
            ports,
            pmds,
            owner: owner_counters.snapshot(),
            kernel_refusals: refusals.snapshot(),
            kernel,
            offload,
            tunnels,
            openflow: self.openflow.get().map(|(targets, c)| OpenflowStatus {
                targets: targets.clone(),
                counters: c.snapshot(),
            }),
        }
    }
}

fn kernel_status(k: &crate::switch::KernelInfo) -> KernelStatus {
    let l = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let mut s = KernelStatus {
        datapath: k.dp_name.clone(),
        upcall_mode: k.upcall_mode.clone(),
        ..Default::default()
    };
    let c = &mut s.counters;
    c.upcalls_received = l(&k.handlers.received);
    c.upcalls_undecodable = l(&k.handlers.undecodable);
    c.upcalls_malformed = l(&k.handlers.malformed);
    match k.datapath() {
        Ok((dp, vports)) => {
            if let Some(st) = dp.stats {
                (c.lookups_hit, c.lookups_missed, c.lookups_lost, c.flows) =
                    (st.n_hit, st.n_missed, st.n_lost, st.n_flows);
            }
            if let Some(m) = dp.megaflow_stats {
                (c.masks, c.mask_hits) = (u64::from(m.n_masks), m.n_mask_hit);
            }
            s.masks_cache_size = dp.masks_cache_size;
            s.vports = vports
                .into_iter()
                .map(|v| {
                    let st = v.stats.unwrap_or_default();
                    VportStatus {
                        no: v.port_no,
                        name: v.name,
                        vtype: v.vtype.name(),
                        counters: VportCounters {
                            rx_packets: st.rx_packets,
                            rx_bytes: st.rx_bytes,
                            rx_errors: st.rx_errors,
                            rx_dropped: st.rx_dropped,
                            tx_packets: st.tx_packets,
                            tx_bytes: st.tx_bytes,
                            tx_errors: st.tx_errors,
                            tx_dropped: st.tx_dropped,
                        },
                    }
                })
                .collect();
        }
        Err(e) => s.error = Some(e),
    }
    s
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
        kind: kind.to_string(),
        steering: p
            .steering_native()
            .map(|n| if n { "native" } else { "generic" }.to_string()),
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
        policing: None,
    }
}

/// (De)serializes a counter set as an object `{ key: value, ... }`, its
/// keys the set's definitions ([`odpx_classifier::counters::Def::key`]).
pub mod counter_set {
    use odpx_classifier::counters::Snapshot as CounterSet;
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};
    use std::marker::PhantomData;

    pub fn serialize<S: Serializer, T: CounterSet>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(T::DEFS.len()))?;
        for (d, v) in v.pairs() {
            m.serialize_entry(d.key, &v)?;
        }
        m.end()
    }

    /// Keys the set does not define are ignored (a newer writer); missing
    /// ones read as zero (an older one).
    pub fn deserialize<'de, D: Deserializer<'de>, T: CounterSet + Default>(d: D) -> Result<T, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: CounterSet + Default> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of counters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
                let mut out = T::default();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    if let Some(n) = v.as_u64() {
                        out.set(&k, n);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// [`counter_set`] for an optional set (absent: `null`).
pub mod optional_counter_set {
    use odpx_classifier::counters::Snapshot as CounterSet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: CounterSet>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::counter_set::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: CounterSet + Default>(d: D) -> Result<Option<T>, D::Error> {
        let v: Option<serde_json::Value> = Option::deserialize(d)?;
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => super::counter_set::deserialize(v)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}
