//! What the kernel reports about datapaths, vports and flows: the reply
//! types, their decoding from generic-netlink replies, and the text
//! `ovs-dpctl` prints for a flow.
//!
//! The client ([`crate::client`]) builds requests and hands replies here;
//! the CLI, pure-kernel mode and the offload engine read these types. They
//! keep the kernel's bytes where the kernel must get them back unchanged
//! (a flow's key, mask and actions), and decode on demand.

use crate::actions::decode_actions;
use crate::channel::Reply;
use crate::error::{DecodeError, OdpError};
use crate::keys::decode_match;
use crate::nla;
use crate::uapi::{dp_attr, flow_attr, tunnel_opt, vport_attr, vport_type};
use odpx_classifier::odp::{FlowLine, FlowStatsText, OdpAction, OdpKey};

/// Datapath statistics (`struct ovs_dp_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DpStats {
    pub n_hit: u64,
    pub n_missed: u64,
    pub n_lost: u64,
    pub n_flows: u64,
}

/// Megaflow statistics (`struct ovs_dp_megaflow_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MegaflowStats {
    pub n_mask_hit: u64,
    pub n_masks: u32,
    pub n_cache_hit: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Datapath {
    pub name: String,
    pub dp_ifindex: i32,
    pub stats: Option<DpStats>,
    pub megaflow_stats: Option<MegaflowStats>,
    pub user_features: u32,
    pub masks_cache_size: Option<u32>,
    /// Per-CPU dispatch: the upcall socket of each CPU, by CPU id.
    pub per_cpu_pids: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VportType {
    Netdev,
    Internal,
    Gre,
    Vxlan,
    Geneve,
    Other(u32),
}

impl VportType {
    pub fn from_u32(v: u32) -> Self {
        match v {
            vport_type::NETDEV => VportType::Netdev,
            vport_type::INTERNAL => VportType::Internal,
            vport_type::GRE => VportType::Gre,
            vport_type::VXLAN => VportType::Vxlan,
            vport_type::GENEVE => VportType::Geneve,
            o => VportType::Other(o),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            VportType::Netdev => vport_type::NETDEV,
            VportType::Internal => vport_type::INTERNAL,
            VportType::Gre => vport_type::GRE,
            VportType::Vxlan => vport_type::VXLAN,
            VportType::Geneve => vport_type::GENEVE,
            VportType::Other(o) => o,
        }
    }

    /// The name `ovs-dpctl show` uses.
    pub fn name(self) -> String {
        match self {
            VportType::Netdev => "netdev".into(),
            VportType::Internal => "internal".into(),
            VportType::Gre => "gre".into(),
            VportType::Vxlan => "vxlan".into(),
            VportType::Geneve => "geneve".into(),
            VportType::Other(o) => format!("type{o}"),
        }
    }

    pub fn is_udp_tunnel(self) -> bool {
        matches!(self, VportType::Vxlan | VportType::Geneve)
    }
}

/// Vport statistics (`struct ovs_vport_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VportStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vport {
    pub dp_ifindex: i32,
    pub port_no: u32,
    pub vtype: VportType,
    pub name: String,
    pub ifindex: Option<u32>,
    pub upcall_pids: Vec<u32>,
    pub stats: Option<VportStats>,
    /// UDP destination port of a VXLAN/Geneve vport.
    pub dst_port: Option<u16>,
}

/// A datapath flow as the kernel reports it. The key, mask and actions are
/// kept as the kernel's bytes, so that the flow can be modified or deleted
/// with exactly the key the kernel holds; the decoded forms are computed on
/// demand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub dp_ifindex: i32,
    pub ufid: Option<Vec<u8>>,
    pub key_raw: Option<Vec<u8>>,
    pub mask_raw: Option<Vec<u8>>,
    pub actions_raw: Option<Vec<u8>>,
    pub packets: u64,
    pub bytes: u64,
    /// Last use, in milliseconds of CLOCK_MONOTONIC (0: never).
    pub used_ms: u64,
    pub tcp_flags: u8,
}

impl Flow {
    /// The decoded match (`None` when the reply omitted the key).
    pub fn key(&self) -> Result<Option<OdpKey>, DecodeError> {
        match &self.key_raw {
            Some(k) => decode_match(k, self.mask_raw.as_deref()).map(Some),
            None => Ok(None),
        }
    }

    pub fn actions(&self) -> Result<Option<Vec<OdpAction>>, DecodeError> {
        self.actions_raw.as_deref().map(decode_actions).transpose()
    }

    /// The flow as `ovs-dpctl dump-flows` prints it (`stats`: with
    /// packets, bytes, used and flags; `ufid`: with the UFID first).
    pub fn to_line(&self, stats: bool, with_ufid: bool) -> Result<String, DecodeError> {
        let line = FlowLine {
            ufid: if with_ufid {
                self.ufid.as_deref().map(format_ufid)
            } else {
                None
            },
            key: self.key()?,
            stats: stats.then(|| FlowStatsText {
                packets: self.packets,
                bytes: self.bytes,
                used: format_used(self.used_ms),
                flags: (self.tcp_flags != 0).then(|| tcp_flag_letters(self.tcp_flags)),
            }),
            actions: self.actions()?,
        };
        Ok(line.to_string())
    }
}

/// `ovs-dpctl`'s `used:` field: seconds since last use, or `never`.
pub fn format_used(used_ms: u64) -> String {
    if used_ms == 0 {
        return "never".into();
    }
    let now = monotonic_ms();
    format!("{:.3}s", now.saturating_sub(used_ms) as f64 / 1000.0)
}

/// Milliseconds of CLOCK_MONOTONIC, the clock of the kernel's `used` times.
pub fn monotonic_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1000 + t.tv_nsec as u64 / 1_000_000
}

/// TCP flags as OVS prints them in flow statistics (`S.` = SYN+ACK).
pub fn tcp_flag_letters(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (0x02, 'S'),
        (0x01, 'F'),
        (0x08, 'P'),
        (0x04, 'R'),
        (0x20, 'U'),
        (0x10, '.'),
        (0x40, 'E'),
        (0x80, 'C'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

pub use odpx_classifier::flow_op::{format_ufid, parse_ufid};

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
}

fn name_attr(r: &Reply, ty: u16, what: &'static str) -> Result<String, DecodeError> {
    r.required(ty, what)?.str(what)
}

pub(crate) fn parse_datapath(r: &Reply) -> Result<Datapath, OdpError> {
    const W: &str = "datapath";
    r.check_unique(W)?;
    let stats = match r.get(dp_attr::STATS) {
        Some(a) => {
            let b: [u8; 32] = a.array(W)?;
            Some(DpStats {
                n_hit: u64_at(&b, 0),
                n_missed: u64_at(&b, 1),
                n_lost: u64_at(&b, 2),
                n_flows: u64_at(&b, 3),
            })
        }
        None => None,
    };
    let megaflow_stats = match r.get(dp_attr::MEGAFLOW_STATS) {
        Some(a) => {
            let b: [u8; 32] = a.array(W)?;
            Some(MegaflowStats {
                n_mask_hit: u64_at(&b, 0),
                n_masks: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
                n_cache_hit: u64_at(&b, 2),
            })
        }
        None => None,
    };
    Ok(Datapath {
        name: name_attr(r, dp_attr::NAME, W)?,
        dp_ifindex: r.dp_ifindex,
        stats,
        megaflow_stats,
        user_features: r
            .get(dp_attr::USER_FEATURES)
            .map(|a| a.u32(W))
            .transpose()?
            .unwrap_or(0),
        masks_cache_size: r.get(dp_attr::MASKS_CACHE_SIZE).map(|a| a.u32(W)).transpose()?,
        per_cpu_pids: pid_list(r, dp_attr::PER_CPU_PIDS, W)?,
    })
}

/// A list of netlink port ids (upcall pids), empty when absent.
fn pid_list(r: &Reply, ty: u16, what: &'static str) -> Result<Vec<u32>, DecodeError> {
    match r.get(ty) {
        Some(a) if a.payload.len() % 4 == 0 => Ok(a
            .payload
            .chunks(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect()),
        Some(a) => Err(DecodeError::Invalid {
            what,
            detail: format!("pid list of {} bytes", a.payload.len()),
        }),
        None => Ok(Vec::new()),
    }
}

pub(crate) fn parse_vport(r: &Reply) -> Result<Vport, OdpError> {
    const W: &str = "vport";
    r.check_unique(W)?;
    let port_no = r.required(vport_attr::PORT_NO, W)?.u32(W)?;
    let vtype = VportType::from_u32(r.required(vport_attr::TYPE, W)?.u32(W)?);
    let stats = match r.get(vport_attr::STATS) {
        Some(a) => {
            let b: [u8; 64] = a.array(W)?;
            Some(VportStats {
                rx_packets: u64_at(&b, 0),
                tx_packets: u64_at(&b, 1),
                rx_bytes: u64_at(&b, 2),
                tx_bytes: u64_at(&b, 3),
                rx_errors: u64_at(&b, 4),
                tx_errors: u64_at(&b, 5),
                rx_dropped: u64_at(&b, 6),
                tx_dropped: u64_at(&b, 7),
            })
        }
        None => None,
    };
    let upcall_pids = pid_list(r, vport_attr::UPCALL_PID, W)?;
    let mut dst_port = None;
    if let Some(o) = r.get(vport_attr::OPTIONS) {
        for a in nla::unique(o.payload, "vport options")? {
            if a.ty == tunnel_opt::DST_PORT {
                dst_port = Some(a.u16("vport options")?);
            }
        }
    }
    Ok(Vport {
        dp_ifindex: r.dp_ifindex,
        port_no,
        vtype,
        name: name_attr(r, vport_attr::NAME, W)?,
        ifindex: r.get(vport_attr::IFINDEX).map(|a| a.u32(W)).transpose()?,
        upcall_pids,
        stats,
        dst_port,
    })
}

pub(crate) fn parse_flow(r: &Reply) -> Result<Flow, OdpError> {
    const W: &str = "flow";
    r.check_unique(W)?;
    let (packets, bytes) = match r.get(flow_attr::STATS) {
        Some(a) => {
            let b: [u8; 16] = a.array(W)?;
            (u64_at(&b, 0), u64_at(&b, 1))
        }
        None => (0, 0),
    };
    Ok(Flow {
        dp_ifindex: r.dp_ifindex,
        ufid: r.get(flow_attr::UFID).map(|a| a.payload.to_vec()),
        key_raw: r.get(flow_attr::KEY).map(|a| a.payload.to_vec()),
        mask_raw: r.get(flow_attr::MASK).map(|a| a.payload.to_vec()),
        actions_raw: r.get(flow_attr::ACTIONS).map(|a| a.payload.to_vec()),
        packets,
        bytes,
        used_ms: r.get(flow_attr::USED).map(|a| a.u64(W)).transpose()?.unwrap_or(0),
        tcp_flags: r.get(flow_attr::TCP_FLAGS).map(|a| a.u8(W)).transpose()?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_flags_print_as_ovs_letters() {
        assert_eq!(tcp_flag_letters(0x12), "S.");
        assert_eq!(tcp_flag_letters(0x11), "F.");
    }
}
