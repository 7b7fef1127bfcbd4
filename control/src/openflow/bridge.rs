//! What the OpenFlow agent asks of the switch, as one small interface
//! ([`Bridge`]), and its implementation over a running [`Switch`].
//!
//! The session logic ([`super::session`]) talks to a `Bridge` only, so it
//! is tested against a model; the switch's side turns each request into
//! the owner's decisions (rule ops, packet-outs, barriers) and reads of
//! its state (rules with counters, ports, tables).
//!
//! # Ports
//! OpenFlow port N is odpx's port N: the Nth `[[port]]`. Underlay ports
//! carry tunnels and are not switched, so OpenFlow does not see them.
//! PORT_MOD's configuration bits are kept here (the agent's own state):
//! `PORT_DOWN` takes the port out of the switch as a link going down
//! does, and puts it back when cleared.

use crate::config::{Config, PortType};
use crate::core::groups::{GroupOp, GroupStats};
use crate::core::meters::{MeterOp, MeterStats};
use crate::core::rules::{RuleOp, RuleOpError, RuleStats, N_TABLES};
use crate::core::Change;
use crate::openflow::codec::error::{OfError, PortModFailed};
use crate::openflow::codec::multipart::TableStats;
use crate::openflow::codec::port::{self as ofport, PortDesc, PortStats};
use crate::switch::Switch;
use odpx_classifier::counters::Snapshot as _;
use odpx_classifier::rules::group::{Group, GroupError};
use odpx_classifier::rules::meter::{Meter, MeterError};
use odpx_classifier::rules::ofctl::MeterCounts;
use odpx_classifier::rules::{Rule, RuleAction, Selector};
use odpx_offload::replies::VportStats;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the agent asks of the switch (see the module documentation).
pub trait Bridge: Send + Sync {
    /// The clock every duration and timeout is measured on.
    fn now(&self) -> Instant;
    fn datapath_id(&self) -> u64;
    /// The switch's OpenFlow ports.
    fn ports(&self) -> Vec<PortDesc>;
    /// Counters of one port (`None`: all).
    fn port_stats(&self, port: Option<u32>) -> Vec<PortStats>;
    /// Applies rule-table changes in order, each whole or not at all.
    fn rule_ops(&self, ops: Vec<RuleOp>) -> Vec<Result<usize, RuleOpError>>;
    /// Applies group-table changes in order, each whole or not at all.
    fn group_ops(&self, ops: Vec<GroupOp>) -> Vec<Result<usize, GroupError>>;
    /// The groups (`id`, or every one for `OFPG_ALL`) with their counters
    /// and how many rules send packets to each.
    fn groups(&self, id: u32) -> Vec<(Group, GroupStats, usize)>;
    /// Applies meter-table changes in order, each whole or not at all
    /// (`Err(None)`: the datapath cannot run that meter).
    fn meter_ops(&self, ops: Vec<MeterOp>) -> Vec<Result<usize, Option<MeterError>>>;
    /// The meters (`id`, or every one for `OFPM_ALL`) with their counters.
    fn meters(&self, id: u32) -> Vec<(Meter, MeterStats, MeterCounts)>;
    /// Returns once every datapath carries out everything decided before.
    fn barrier(&self) -> Result<(), String>;
    /// The rules `sel` names, with their counters.
    fn flows(&self, sel: &Selector) -> Vec<(Rule, RuleStats)>;
    fn tables(&self) -> Vec<TableStats>;
    /// Runs a controller's packet through `actions` from `in_port`.
    fn packet_out(&self, in_port: u32, actions: Vec<RuleAction>, data: Vec<u8>) -> Result<(), String>;
    /// PORT_MOD: sets `config` bits under `mask`; `hw_addr` must be the port's.
    fn port_mod(&self, port: u32, hw_addr: [u8; 6], config: u32, mask: u32) -> Result<(), OfError>;
    /// The configuration bits PORT_MOD set on a port.
    fn port_config(&self, port: u32) -> u32;
    /// Fail-open on (NORMAL switching in the rule tables' stead) or off;
    /// returns once every datapath agrees.
    fn fail_open(&self, open: bool) -> Result<(), String>;
}

/// The running switch as a [`Bridge`].
pub struct SwitchBridge {
    sw: Arc<Switch>,
    dpid: u64,
    /// OpenFlow's ports: number, name, kind.
    ports: Vec<(u32, String, PortType)>,
    config_bits: Mutex<HashMap<u32, u32>>,
}

impl SwitchBridge {
    pub fn new(sw: Arc<Switch>, cfg: &Config, dpid: u64) -> SwitchBridge {
        let ports = cfg
            .numbered_ports()
            .filter(|(_, p)| p.kind != PortType::Underlay)
            .map(|(no, p)| (no, p.name.clone(), p.kind))
            .collect();
        SwitchBridge {
            sw,
            dpid,
            ports,
            config_bits: Mutex::new(HashMap::new()),
        }
    }

    fn hw_addr(&self, no: u32, name: &str, kind: PortType) -> [u8; 6] {
        let from_sys = (kind == PortType::Afxdp)
            .then(|| std::fs::read_to_string(format!("/sys/class/net/{name}/address")).ok())
            .flatten()
            .and_then(|s| odpx_classifier::text::parse_mac(s.trim()));
        // A port without an interface of its own: a locally administered
        // address from its number.
        from_sys.unwrap_or([0x02, 0x00, 0x00, 0x00, (no >> 8) as u8, no as u8])
    }

    fn link_up(&self, no: u32) -> bool {
        self.sw
            .ports
            .get(no as usize)
            .and_then(|p| p.as_ref())
            .is_none_or(|p| p.link_up())
    }
}

/// What a 10 Gb/s copper port says of itself (as Open vSwitch's
/// internal and veth ports do).
const SPEED_KBPS: u32 = 10_000_000;

impl SwitchBridge {
    /// Statistics with every packet carried so far (OVS's are as fresh as
    /// its last revalidation; os-ken's switch tester reads table counters
    /// right after its packets). A datapath that does not answer in time
    /// leaves them as the last sweep made them.
    fn refresh(&self) {
        if let Err(e) = self.sw.change(Change::Refresh) {
            tracing::debug!("openflow: statistics not refreshed: {e}");
        }
    }
}

impl Bridge for SwitchBridge {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn datapath_id(&self) -> u64 {
        self.dpid
    }

    fn ports(&self) -> Vec<PortDesc> {
        self.ports
            .iter()
            .map(|(no, name, kind)| {
                let config = self.port_config(*no);
                let up = self.link_up(*no) && config & ofport::config::PORT_DOWN == 0;
                let features = ofport::features::GB_10_FD | ofport::features::COPPER;
                PortDesc {
                    port_no: *no,
                    hw_addr: self.hw_addr(*no, name, *kind),
                    name: name.clone(),
                    config,
                    state: if up {
                        ofport::state::LIVE
                    } else {
                        ofport::state::LINK_DOWN
                    },
                    curr: features,
                    advertised: 0,
                    supported: 0,
                    peer: 0,
                    curr_speed: SPEED_KBPS,
                    max_speed: 0,
                }
            })
            .collect()
    }

    fn port_stats(&self, port: Option<u32>) -> Vec<PortStats> {
        let up = self.sw.uptime();
        // Kernel and hybrid mode: a port's counters are its vport's, which
        // the kernel takes from the interface (as Open vSwitch's kernel
        // datapath reports them): every packet the interface carried,
        // the kernel datapath's and AF_XDP's alike.
        let vports = match &self.sw.kernel {
            Some(k) => k.datapath().map(|(_, v)| v).unwrap_or_else(|e| {
                tracing::debug!("openflow: port statistics without the kernel's: {e}");
                Vec::new()
            }),
            None => Vec::new(),
        };
        self.ports
            .iter()
            .filter(|(no, ..)| port.is_none_or(|p| p == *no))
            .map(|(no, ..)| {
                let c = self
                    .sw
                    .ports
                    .get(*no as usize)
                    .and_then(|p| p.as_ref())
                    .map(|p| p.stats.snapshot());
                let get = |k: &str| c.as_ref().and_then(|c| c.get(k)).unwrap_or(0);
                let own = VportStats {
                    rx_packets: get("rx_packets"),
                    tx_packets: get("tx_packets"),
                    rx_bytes: get("rx_bytes"),
                    tx_bytes: get("tx_bytes"),
                    rx_dropped: get("rx_dropped_too_big"),
                    tx_dropped: get("tx_dropped_full"),
                    ..VportStats::default()
                };
                let c = vports
                    .iter()
                    .find(|v| v.port_no == *no)
                    .and_then(|v| v.stats)
                    .unwrap_or(own);
                PortStats {
                    port_no: *no,
                    rx_packets: c.rx_packets,
                    tx_packets: c.tx_packets,
                    rx_bytes: c.rx_bytes,
                    tx_bytes: c.tx_bytes,
                    rx_dropped: c.rx_dropped,
                    tx_dropped: c.tx_dropped,
                    // Counters odpx does not keep are all ones (the spec's "unavailable").
                    rx_errors: u64::MAX,
                    tx_errors: u64::MAX,
                    rx_frame_err: u64::MAX,
                    rx_over_err: u64::MAX,
                    rx_crc_err: u64::MAX,
                    collisions: u64::MAX,
                    duration_sec: up.as_secs() as u32,
                    duration_nsec: up.subsec_nanos(),
                }
            })
            .collect()
    }

    fn rule_ops(&self, ops: Vec<RuleOp>) -> Vec<Result<usize, RuleOpError>> {
        let now = self.now();
        self.sw.owner().decide(|c| c.rule_ops(ops, now))
    }

    fn group_ops(&self, ops: Vec<GroupOp>) -> Vec<Result<usize, GroupError>> {
        let now = self.now();
        self.sw.owner().decide(|c| c.group_ops(ops, now))
    }

    fn groups(&self, id: u32) -> Vec<(Group, GroupStats, usize)> {
        self.refresh();
        self.sw.owner().read(|c| {
            c.groups(id)
                .into_iter()
                .map(|(g, s)| {
                    let refs = c.group_references(g.id);
                    (g, s, refs)
                })
                .collect()
        })
    }

    fn meter_ops(&self, ops: Vec<MeterOp>) -> Vec<Result<usize, Option<MeterError>>> {
        let now = self.now();
        let owner = self.sw.owner();
        ops.into_iter()
            .map(|op| {
                if let MeterOp::Add(m) | MeterOp::Modify(m) = &op {
                    if let Some(why) = owner.refuses_meter(m) {
                        tracing::info!("openflow: meter {} refused: {why}", m.id);
                        return Err(None);
                    }
                }
                owner.decide(|c| c.meter_ops(vec![op], now)).remove(0).map_err(Some)
            })
            .collect()
    }

    fn meters(&self, id: u32) -> Vec<(Meter, MeterStats, MeterCounts)> {
        self.refresh();
        self.sw.owner().read(|c| c.meters(id))
    }

    fn barrier(&self) -> Result<(), String> {
        self.sw.sync()
    }

    fn flows(&self, sel: &Selector) -> Vec<(Rule, RuleStats)> {
        self.refresh();
        self.sw.owner().read(|c| c.select_rules(sel))
    }

    fn tables(&self) -> Vec<TableStats> {
        self.refresh();
        self.sw.owner().read(|c| {
            (0..N_TABLES)
                .map(|t| {
                    let (count, active) = c.table_stats(t);
                    TableStats {
                        table_id: t,
                        active_count: active as u32,
                        lookup_count: count.lookups,
                        matched_count: count.matched,
                    }
                })
                .collect()
        })
    }

    fn packet_out(&self, in_port: u32, actions: Vec<RuleAction>, data: Vec<u8>) -> Result<(), String> {
        let now = self.now();
        self.sw.owner().decide(|c| c.packet_out(in_port, data, &actions, now))
    }

    fn port_mod(&self, port: u32, hw_addr: [u8; 6], config: u32, mask: u32) -> Result<(), OfError> {
        let Some((no, name, kind)) = self.ports.iter().find(|(no, ..)| *no == port) else {
            return Err(OfError::PortModFailed(PortModFailed::BadPort));
        };
        if hw_addr != self.hw_addr(*no, name, *kind) {
            return Err(OfError::PortModFailed(PortModFailed::BadHwAddr));
        }
        if mask & !ofport::config::ALL != 0 {
            return Err(OfError::PortModFailed(PortModFailed::BadConfig));
        }
        let (before, after) = {
            let mut bits = self.config_bits.lock().unwrap_or_else(|p| p.into_inner());
            let before = bits.get(no).copied().unwrap_or(0);
            let after = (before & !mask) | (config & mask);
            bits.insert(*no, after);
            (before, after)
        };
        let bit = |b: u32, f: u32| b & f != 0;
        let (no_recv, no_fwd) = (ofport::config::NO_RECV, ofport::config::NO_FWD);
        if bit(before, no_recv) != bit(after, no_recv) || bit(before, no_fwd) != bit(after, no_fwd) {
            self.sw
                .change(Change::PortConfig {
                    port: *no,
                    no_recv: bit(after, no_recv),
                    no_fwd: bit(after, no_fwd),
                })
                .map_err(|_| OfError::PortModFailed(PortModFailed::BadConfig))?;
        }
        let down = |b: u32| b & ofport::config::PORT_DOWN != 0;
        if down(before) != down(after) {
            let up = !down(after) && self.link_up(*no);
            self.sw
                .change(Change::PortState { port: *no, up })
                .map_err(|_| OfError::PortModFailed(PortModFailed::BadConfig))?;
        }
        Ok(())
    }

    fn port_config(&self, port: u32) -> u32 {
        let bits = self.config_bits.lock().unwrap_or_else(|p| p.into_inner());
        bits.get(&port).copied().unwrap_or(0)
    }

    fn fail_open(&self, open: bool) -> Result<(), String> {
        self.sw.change(Change::FailOpen(open)).map(|_| ())
    }
}
