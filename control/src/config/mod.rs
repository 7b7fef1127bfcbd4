//! `odpx run -c CONFIG.toml`: the switch's configuration, checked whole
//! before anything starts (a bad field is an error naming it, and the
//! daemon never starts half-configured).
//!
//! ```toml
//! [switch]
//! socket = "/run/odpx/odpx.sock"   # control socket (root-only)
//! rules = "rules.txt"              # ovs-ofctl syntax; default: NORMAL switching
//! datapath = "userspace"           # or "kernel": the Linux Open vSwitch datapath;
//!                                  # or "hybrid": PMDs, hot flows offloaded to the kernel
//! dp_name = "odpx0"                # the kernel datapath's name (kernel and hybrid modes)
//! xdp_mode = "auto"                # hybrid: the steering program in "native" or "generic" XDP;
//!                                  # auto: generic on veth/tap (no bus device), native on NICs
//!
//! [[port]]                         # numbered 1, 2, ... in this order
//! name = "veth1"                   # an interface: AF_XDP, or a vport in kernel mode
//!
//! [[port]]
//! name = "mem0"
//! type = "memory"                  # an in-memory port (tests, benchmarks)
//! # ingress_policing_rate = 1000   # kbit/s this port may receive; beyond, dropped (any port type)
//! # ingress_policing_burst = 100   # kbit beyond the rate (default 8000, as Open vSwitch)
//!
//! [[port]]                         # a VXLAN tunnel port (userspace datapath)
//! name = "vx0"
//! type = "vxlan"
//! remote_ip = "172.31.0.2"         # IPv4 or IPv6; or "flow" (set_field:...->tun_dst)
//! key = 42                         # the VNI; or "flow" (set_field:...->tun_id); default 0
//! # local_ip = "172.31.0.1"        # default: the route's source address
//! # dst_port = 4789
//! # ttl = 64
//! # tos = 0
//! # df = true                      # the outer IPv4 header's don't-fragment bit
//!
//! [[port]]                         # the AF_XDP interface that carries the
//! name = "u0"                      # tunnels; not switched: it only takes
//! type = "underlay"                # VXLAN for local VTEPs, the rest stays the kernel's
//!
//! [pmd]
//! cores = [1]                      # one PMD thread per core
//! # idle_sleep_us = 0              # idle PMDs wait for frames (or a message) this long at most
//!                                  # instead of spinning (0: busy-poll; default 0, hybrid 100000)
//!
//! [cache]
//! emc_entries = 8192               # a power of two
//! emc_insert_inv_prob = 100        # insert into the EMC with probability 1/N
//! emc_adaptive = true              # bypass the EMC while it costs more than it saves (measured per PMD)
//! megaflow_limit = 200000
//! idle_timeout_ms = 10000
//! upcall_queue = 4096              # userspace: bounded; misses beyond it are counted lost
//!
//! [offload]                        # hybrid mode
//! enabled = true                   # off: the PMDs carry everything (odpx ctl offload on|off)
//! min_pps = 1000                   # a megaflow moves into the kernel once it carries this many
//! min_duration_ms = 2000           # packets a second for this long
//! max_flows = 8192                 # offloaded megaflows at most (the steering table's size)
//!
//! [metrics]                        # off unless listen is given
//! listen = "127.0.0.1:9464"        # Prometheus text format at http://ADDR/metrics
//!
//! [openflow]                       # see [`openflow`]: controllers, ovs-ofctl's socket
//! controller = "tcp:127.0.0.1:6653"
//! listen = "punix:/run/odpx/odpx.mgmt"
//! ```

pub mod openflow;

pub use self::openflow::{FailMode, OpenflowSection, SslSection};
use odpx_classifier::wire::VXLAN_PORT;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub switch: SwitchSection,
    #[serde(rename = "port", default)]
    pub ports: Vec<PortConfig>,
    #[serde(default)]
    pub pmd: PmdSection,
    #[serde(default)]
    pub cache: CacheSection,
    #[serde(default)]
    pub offload: OffloadSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    /// OpenFlow controllers and passive sockets ([`openflow`]).
    pub openflow: Option<OpenflowSection>,
}

/// The Prometheus endpoint ([`crate::metrics`]).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Address and port to serve `/metrics` on; none: no endpoint.
    pub listen: Option<std::net::SocketAddr>,
}

/// Hybrid mode's offload policy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OffloadSection {
    #[serde(default = "d_true")]
    pub enabled: bool,
    #[serde(default = "d_min_pps")]
    pub min_pps: u64,
    #[serde(default = "d_min_duration")]
    pub min_duration_ms: u64,
    #[serde(default = "d_max_offloaded")]
    pub max_flows: usize,
}

fn d_min_pps() -> u64 {
    1000
}
fn d_min_duration() -> u64 {
    2000
}
fn d_max_offloaded() -> usize {
    8192
}

/// The largest steering table hybrid mode makes.
pub const MAX_OFFLOADED: usize = 1 << 20;

impl Default for OffloadSection {
    fn default() -> Self {
        OffloadSection {
            enabled: true,
            min_pps: d_min_pps(),
            min_duration_ms: d_min_duration(),
            max_flows: d_max_offloaded(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwitchSection {
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Rule file (ovs-ofctl add-flow lines); relative to the config file.
    pub rules: Option<PathBuf>,
    /// Rules given inline, one per entry (used when `rules` is absent).
    pub rules_inline: Option<Vec<String>>,
    /// Which datapath forwards.
    #[serde(default)]
    pub datapath: DatapathKind,
    /// The kernel datapath's name (kernel mode).
    #[serde(default = "default_dp_name")]
    pub dp_name: String,
    /// Hybrid mode: where the steering program runs.
    #[serde(default)]
    pub xdp_mode: XdpModeSetting,
}

/// Where hybrid mode's steering program runs on a switched interface.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum XdpModeSetting {
    /// Generic on interfaces without a bus device (veth, tap), where
    /// native XDP passes packets through a copy; native on the others.
    #[default]
    Auto,
    Native,
    Generic,
}

/// Which datapath forwards.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DatapathKind {
    /// PMD threads on AF_XDP ports.
    #[default]
    Userspace,
    /// The Linux Open vSwitch kernel datapath (pure-kernel mode).
    Kernel,
    /// PMD threads on AF_XDP ports that are also vports of the kernel
    /// datapath; hot, stable megaflows move into the kernel.
    Hybrid,
}

impl Default for SwitchSection {
    fn default() -> Self {
        SwitchSection {
            socket: default_socket(),
            rules: None,
            rules_inline: None,
            datapath: DatapathKind::default(),
            dp_name: default_dp_name(),
            xdp_mode: XdpModeSetting::default(),
        }
    }
}

fn default_dp_name() -> String {
    "odpx0".to_string()
}

fn default_socket() -> PathBuf {
    PathBuf::from("/run/odpx/odpx.sock")
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PortType {
    #[default]
    Afxdp,
    Memory,
    /// A VXLAN tunnel port (no interface of its own).
    Vxlan,
    /// An AF_XDP interface that carries tunnels and is not switched.
    Underlay,
}

/// A value, or "flow": set per packet by the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowOr<T> {
    Value(T),
    Flow,
}

/// What TOML holds for a [`FlowOr`]: the value, or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum FlowOrText<T> {
    Value(T),
    Text(String),
}

fn flow_or<'de, D, T>(d: D) -> Result<Option<FlowOr<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + std::str::FromStr,
{
    use serde::de::Error;
    match Option::<FlowOrText<T>>::deserialize(d)? {
        None => Ok(None),
        Some(FlowOrText::Value(v)) => Ok(Some(FlowOr::Value(v))),
        Some(FlowOrText::Text(t)) if t == "flow" => Ok(Some(FlowOr::Flow)),
        Some(FlowOrText::Text(t)) => t
            .parse()
            .map(|v| Some(FlowOr::Value(v)))
            .map_err(|_| D::Error::custom(format!("'{t}' is neither a value nor \"flow\""))),
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: PortType,
    /// The port's number (OpenFlow's, the rules', the datapath's);
    /// default: its place among the `[[port]]`s, counted from 1.
    pub ofport: Option<u32>,
    /// VXLAN: the remote VTEP.
    #[serde(default, deserialize_with = "flow_or")]
    pub remote_ip: Option<FlowOr<IpAddr>>,
    /// VXLAN: the VNI (default 0).
    #[serde(default, deserialize_with = "flow_or")]
    pub key: Option<FlowOr<u32>>,
    /// VXLAN: the outer source address (default: the route's).
    pub local_ip: Option<IpAddr>,
    /// VXLAN: the UDP port (default 4789).
    pub dst_port: Option<u16>,
    /// VXLAN: outer TTL or hop limit (default 64).
    pub ttl: Option<u8>,
    /// VXLAN: outer TOS or traffic class (default 0).
    pub tos: Option<u8>,
    /// VXLAN: the outer IPv4 don't-fragment bit (default true).
    pub df: Option<bool>,
    /// Kbit/s this port may receive; what exceeds it is dropped (Open
    /// vSwitch's interface column of the same name; 0 or none: no limit).
    #[serde(default)]
    pub ingress_policing_rate: u32,
    /// Kbit the port may receive beyond the rate at once (0: 8000).
    #[serde(default)]
    pub ingress_policing_burst: u32,
}

/// A VXLAN port's settings, defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanSettings {
    pub remote: FlowOr<IpAddr>,
    pub key: FlowOr<u32>,
    pub local: Option<IpAddr>,
    pub dst_port: u16,
    pub ttl: u8,
    pub tos: u8,
    pub df: bool,
}

/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// The highest port number a `[[port]]` may take with `ofport` (the
/// datapath keeps per-number tables; OpenFlow allows up to 0xfeff).
pub const MAX_OFPORT: u32 = 4096;

impl PortConfig {
    /// A VXLAN port's settings (None for other types).
    pub fn vxlan(&self) -> Option<VxlanSettings> {
        (self.kind == PortType::Vxlan).then(|| VxlanSettings {
            remote: self.remote_ip.unwrap_or(FlowOr::Flow),
            key: self.key.unwrap_or(FlowOr::Value(0)),
            local: self.local_ip,
            dst_port: self.dst_port.unwrap_or(VXLAN_PORT),
            ttl: self.ttl.unwrap_or(64),
            tos: self.tos.unwrap_or(0),
            df: self.df.unwrap_or(true),
        })
    }

    fn check_tunnel_fields(&self) -> Result<(), String> {
        let set = [
            ("remote_ip", self.remote_ip.is_some()),
            ("key", self.key.is_some()),
            ("local_ip", self.local_ip.is_some()),
            ("dst_port", self.dst_port.is_some()),
            ("ttl", self.ttl.is_some()),
            ("tos", self.tos.is_some()),
            ("df", self.df.is_some()),
        ];
        let Some(v) = self.vxlan() else {
            if let Some((f, _)) = set.iter().find(|(_, on)| *on) {
                return Err(format!("{f} is a setting of type \"vxlan\" ports"));
            }
            return Ok(());
        };
        if self.remote_ip.is_none() {
            return Err("remote_ip is required (an address, or \"flow\")".into());
        }
        if let FlowOr::Value(k) = v.key {
            if k > MAX_VNI {
                return Err(format!("key {k} is not a VNI (0 to {MAX_VNI})"));
            }
        }
        if v.dst_port == 0 || v.ttl == 0 {
            return Err("dst_port and ttl must be positive".into());
        }
        if let (FlowOr::Value(r), Some(l)) = (v.remote, v.local) {
            if r.is_ipv4() != l.is_ipv4() {
                return Err(format!("remote_ip {r} and local_ip {l} are of different families"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PmdSection {
    #[serde(default = "default_cores")]
    pub cores: Vec<usize>,
    /// An idle PMD waits this long at most for frames instead of
    /// spinning (the kernel wakes it when one arrives, and the owner when
    /// it sends a message); 0 busy-polls. Default: 0, and 100 ms in hybrid
    /// mode, where the kernel carries the hot flows and a spinning PMD
    /// would burn a core for the rest.
    pub idle_sleep_us: Option<u64>,
}

impl Default for PmdSection {
    fn default() -> Self {
        PmdSection {
            cores: default_cores(),
            idle_sleep_us: None,
        }
    }
}

/// Hybrid mode's default for [`PmdSection::idle_sleep_us`].
pub const HYBRID_IDLE_SLEEP_US: u64 = 100_000;

/// The last core: core 0 is left to the kernel's softirqs and the traffic.
fn default_cores() -> Vec<usize> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    vec![n - 1]
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    #[serde(default = "d_emc")]
    pub emc_entries: usize,
    #[serde(default = "d_emc_prob")]
    pub emc_insert_inv_prob: u32,
    #[serde(default = "d_true")]
    pub emc_adaptive: bool,
    #[serde(default = "d_mf")]
    pub megaflow_limit: usize,
    #[serde(default = "d_idle")]
    pub idle_timeout_ms: u64,
    #[serde(default = "d_upq")]
    pub upcall_queue: usize,
}

fn d_emc() -> usize {
    8192
}
fn d_emc_prob() -> u32 {
    100
}
fn d_true() -> bool {
    true
}
fn d_mf() -> usize {
    200_000
}
fn d_idle() -> u64 {
    10_000
}
fn d_upq() -> usize {
    4096
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            emc_entries: d_emc(),
            emc_insert_inv_prob: d_emc_prob(),
            emc_adaptive: true,
            megaflow_limit: d_mf(),
            idle_timeout_ms: d_idle(),
            upcall_queue: d_upq(),
        }
    }
}

/// The rules used when the configuration names none: plain learning switch.
pub const DEFAULT_RULES: &str = "priority=0,actions=NORMAL\n";

impl Config {
    /// Parses and checks a configuration text. `base` resolves relative
    /// file names.
    pub fn parse(text: &str, base: &Path) -> Result<Config, String> {
        let mut c: Config = toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))?;
        if let Some(r) = &c.switch.rules {
            if r.is_relative() {
                c.switch.rules = Some(base.join(r));
            }
        }
        c.check()?;
        if let Some(of) = c.openflow.as_mut() {
            of.check(base)?;
        }
        Ok(c)
    }

    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn check(&self) -> Result<(), String> {
        if self.ports.is_empty() {
            return Err("no [[port]] configured".into());
        }
        for (i, p) in self.ports.iter().enumerate() {
            if p.name.is_empty() || p.name.len() > 15 {
                return Err(format!("port {}: name '{}' must be 1 to 15 characters", i + 1, p.name));
            }
            if self.ports[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("port {}: name '{}' is configured twice", i + 1, p.name));
            }
            p.check_tunnel_fields()
                .map_err(|e| format!("port {} ({}): {e}", i + 1, p.name))?;
            if p.ingress_policing_burst != 0 && p.ingress_policing_rate == 0 {
                return Err(format!(
                    "port {} ({}): ingress_policing_burst needs an ingress_policing_rate",
                    i + 1,
                    p.name
                ));
            }
        }
        let numbers = self.port_numbers();
        for (i, (p, &no)) in self.ports.iter().zip(&numbers).enumerate() {
            if !(1..=MAX_OFPORT).contains(&no) {
                return Err(format!(
                    "port {} ({}): ofport {no} is not in 1 to {MAX_OFPORT}",
                    i + 1,
                    p.name
                ));
            }
            if let Some(j) = numbers[..i].iter().position(|&n| n == no) {
                return Err(format!(
                    "ports {} and {}: both would be port {no} (a port's number is its place among the [[port]]s unless it says ofport)",
                    self.ports[j].name, p.name
                ));
            }
        }
        let has = |k: PortType| self.ports.iter().any(|p| p.kind == k);
        if has(PortType::Vxlan) && !has(PortType::Underlay) {
            return Err("VXLAN ports need a port of type \"underlay\" to carry them".into());
        }
        // Two VXLAN ports must not claim the same packets.
        odpx_dataplane::tunnel::Receivers::new(self.vxlan_endpoints()).map_err(|(a, b)| {
            let name = |no: u32| self.port_by_number(no).map_or("?", |p| p.name.as_str());
            format!(
                "ports {} and {}: two VXLAN ports with the same dst_port, key, remote_ip and local_ip",
                name(a),
                name(b)
            )
        })?;
        if self.pmd.cores.is_empty() {
            return Err("pmd.cores: at least one core".into());
        }
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        for &c in &self.pmd.cores {
            if c >= ncpu {
                return Err(format!("pmd.cores: core {c} does not exist (this machine has {ncpu})"));
            }
        }
        let k = &self.cache;
        if !k.emc_entries.is_power_of_two() || k.emc_entries < 2 {
            return Err(format!("cache.emc_entries: {} is not a power of two", k.emc_entries));
        }
        if k.emc_insert_inv_prob == 0 {
            return Err("cache.emc_insert_inv_prob: must be at least 1".into());
        }
        if k.megaflow_limit == 0 || k.upcall_queue == 0 || k.idle_timeout_ms == 0 {
            return Err("cache: megaflow_limit, upcall_queue and idle_timeout_ms must be positive".into());
        }
        if self.switch.rules.is_some() && self.switch.rules_inline.is_some() {
            return Err("switch: give either rules (a file) or rules_inline, not both".into());
        }
        let dp = &self.switch.dp_name;
        if dp.is_empty() || dp.len() > 15 || dp.contains('/') || dp.contains(char::is_whitespace) {
            return Err(format!(
                "switch.dp_name: '{dp}' must be 1 to 15 characters, no '/' or spaces"
            ));
        }
        if self.offload.max_flows == 0 || self.offload.max_flows > MAX_OFFLOADED {
            return Err(format!(
                "offload.max_flows: {} (1 to {MAX_OFFLOADED})",
                self.offload.max_flows
            ));
        }
        if self.switch.datapath == DatapathKind::Hybrid {
            for (i, p) in self.ports.iter().enumerate() {
                if p.kind == PortType::Memory {
                    return Err(format!(
                        "port {} ({}): type \"memory\" has no interface to be a kernel vport; datapath = \"hybrid\" takes interfaces",
                        i + 1,
                        p.name
                    ));
                }
                if p.name == *dp {
                    return Err(format!("port {} ({}): that is the datapath's own name", i + 1, p.name));
                }
            }
        }
        if self.switch.datapath == DatapathKind::Kernel {
            for (i, p) in self.ports.iter().enumerate() {
                if matches!(p.kind, PortType::Vxlan | PortType::Underlay) {
                    return Err(format!(
                        "port {} ({}): VXLAN gateway ports are userspace tunnelling; datapath = \"kernel\" does not run them",
                        i + 1,
                        p.name
                    ));
                }
                if p.kind == PortType::Memory {
                    return Err(format!(
                        "port {} ({}): type \"memory\" is a userspace port; datapath = \"kernel\" takes interfaces only",
                        i + 1,
                        p.name
                    ));
                }
                if p.name == *dp {
                    return Err(format!("port {} ({}): that is the datapath's own name", i + 1, p.name));
                }
            }
        }
        Ok(())
    }

    /// Each `[[port]]`'s number, in order: its `ofport`, or its place
    /// (from 1).
    pub fn port_numbers(&self) -> Vec<u32> {
        (1..).zip(&self.ports).map(|(i, p)| p.ofport.unwrap_or(i)).collect()
    }

    /// The ports with their numbers.
    pub fn numbered_ports(&self) -> impl Iterator<Item = (u32, &PortConfig)> + '_ {
        self.port_numbers().into_iter().zip(&self.ports)
    }

    /// The ingress policers of the ports that have one, as meters
    /// (`odpx_classifier::rules::meter::policer`).
    pub fn policers(&self) -> Vec<odpx_classifier::rules::meter::Meter> {
        self.numbered_ports()
            .filter(|(_, p)| p.ingress_policing_rate > 0)
            .map(|(no, p)| {
                odpx_classifier::rules::meter::policer(no, p.ingress_policing_rate, p.ingress_policing_burst)
            })
            .collect()
    }

    /// The port of number `no`.
    pub fn port_by_number(&self, no: u32) -> Option<&PortConfig> {
        self.numbered_ports().find(|(n, _)| *n == no).map(|(_, p)| p)
    }

    /// The VXLAN ports as the datapath sees them: (port number, endpoint).
    pub fn vxlan_endpoints(&self) -> Vec<(u32, odpx_dataplane::tunnel::VxlanEndpoint)> {
        self.numbered_ports()
            .filter_map(|(no, p)| {
                let v = p.vxlan()?;
                Some((
                    no,
                    odpx_dataplane::tunnel::VxlanEndpoint {
                        dst_port: v.dst_port,
                        vni: match v.key {
                            FlowOr::Value(k) => Some(k),
                            FlowOr::Flow => None,
                        },
                        remote: match v.remote {
                            FlowOr::Value(r) => Some(r),
                            FlowOr::Flow => None,
                        },
                        local: v.local,
                    },
                ))
            })
            .collect()
    }

    /// How long an idle PMD waits for frames (`None`: it busy-polls).
    pub fn pmd_idle_wait(&self) -> Option<std::time::Duration> {
        let us = self.pmd.idle_sleep_us.unwrap_or(match self.switch.datapath {
            DatapathKind::Hybrid => HYBRID_IDLE_SLEEP_US,
            _ => 0,
        });
        (us > 0).then(|| std::time::Duration::from_micros(us))
    }

    /// The rule text to load.
    /// The rules the switch starts with: the rule file's, the inline
    /// ones, or NORMAL switching; none for an OpenFlow switch in
    /// `fail_mode = "secure"` (it forwards nothing until its controller
    /// says how).
    pub fn rules_text(&self) -> Result<String, String> {
        let secure = self.openflow.as_ref().is_some_and(|o| o.fail_mode == FailMode::Secure);
        match (&self.switch.rules, &self.switch.rules_inline) {
            (Some(f), _) => std::fs::read_to_string(f).map_err(|e| format!("switch.rules: {}: {e}", f.display())),
            (None, Some(lines)) => Ok(lines.join("\n")),
            (None, None) if secure => Ok(String::new()),
            (None, None) => Ok(DEFAULT_RULES.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_name_the_field() {
        let c = Config::parse(
            "[[port]]\nname = \"a\"\n[[port]]\nname = \"b\"\ntype = \"memory\"\n",
            Path::new("/etc"),
        )
        .unwrap();
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.ports[1].kind, PortType::Memory);
        assert_eq!(c.cache.emc_entries, 8192);
        assert_eq!(c.rules_text().unwrap(), DEFAULT_RULES);
        for (text, want) in [
            ("", "no [[port]]"),
            ("[[port]]\nname = \"a\"\nspeed = 3\n", "unknown field `speed`"),
            ("[[port]]\nname = \"a\"\ntype = \"dpdk\"\n", "unknown variant `dpdk`"),
            ("[[port]]\nname = \"a\"\n[[port]]\nname = \"a\"\n", "configured twice"),
            (
                "[[port]]\nname = \"a\"\n[cache]\nemc_entries = 1000\n",
                "cache.emc_entries: 1000",
            ),
            (
                "[[port]]\nname = \"a\"\n[pmd]\ncores = [999]\n",
                "core 999 does not exist",
            ),
            (
                "[[port]]\nname = \"a\"\n[switch]\nrules = \"x\"\nrules_inline = []\n",
                "not both",
            ),
            (
                "[switch]\ndatapath = \"kernel\"\n[[port]]\nname = \"a\"\ntype = \"memory\"\n",
                "takes interfaces only",
            ),
            (
                "[switch]\ndatapath = \"tc\"\n[[port]]\nname = \"a\"\n",
                "unknown variant `tc`",
            ),
            (
                "[switch]\ndatapath = \"hybrid\"\n[[port]]\nname = \"a\"\ntype = \"memory\"\n",
                "datapath = \"hybrid\" takes interfaces",
            ),
            (
                "[[port]]\nname = \"a\"\n[offload]\nmax_flows = 0\n",
                "offload.max_flows: 0",
            ),
            ("[[port]]\nname = \"a\"\n[offload]\nmin_pps = -1\n", "min_pps = -1"),
            (
                "[switch]\ndp_name = \"a very long datapath name\"\n[[port]]\nname = \"a\"\n",
                "switch.dp_name",
            ),
        ] {
            let e = Config::parse(text, Path::new("/")).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let c = Config::parse(
            "[switch]\nrules = \"r.txt\"\n[[port]]\nname = \"a\"\n",
            Path::new("/etc/odpx"),
        )
        .unwrap();
        assert_eq!(c.switch.rules.unwrap(), PathBuf::from("/etc/odpx/r.txt"));
    }

    #[test]
    fn vxlan_ports_parse_with_defaults_and_flow_values() {
        let c = Config::parse(
            r#"
[[port]]
name = "a0"
[[port]]
name = "vx0"
type = "vxlan"
remote_ip = "172.31.0.2"
key = 42
[[port]]
name = "vxf"
type = "vxlan"
remote_ip = "flow"
key = "flow"
ttl = 8
df = false
[[port]]
name = "u0"
type = "underlay"
"#,
            Path::new("/"),
        )
        .unwrap();
        let v = c.ports[1].vxlan().unwrap();
        assert_eq!(v.remote, FlowOr::Value("172.31.0.2".parse().unwrap()));
        assert_eq!(
            (v.key, v.dst_port, v.ttl, v.tos, v.df),
            (FlowOr::Value(42), 4789, 64, 0, true)
        );
        let f = c.ports[2].vxlan().unwrap();
        assert_eq!((f.remote, f.key, f.ttl, f.df), (FlowOr::Flow, FlowOr::Flow, 8, false));
        assert_eq!(c.vxlan_endpoints().len(), 2);
        let base = "[[port]]\nname = \"u0\"\ntype = \"underlay\"\n";
        let e = Config::parse(
            "[[port]]\nname = \"vx\"\ntype = \"vxlan\"\nremote_ip = \"1.2.3.4\"\n",
            Path::new("/"),
        )
        .unwrap_err();
        assert!(e.contains("need a port of type \"underlay\""), "{e}");
        for (text, want) in [
            ("[[port]]\nname = \"a\"\nkey = 5\n", "key is a setting of type \"vxlan\""),
            ("[[port]]\nname = \"vx\"\ntype = \"vxlan\"\n", "remote_ip is required"),
            ("[[port]]\nname = \"vx\"\ntype = \"vxlan\"\nremote_ip = \"1.2.3.4\"\nkey = 16777216\n", "is not a VNI"),
            ("[[port]]\nname = \"vx\"\ntype = \"vxlan\"\nremote_ip = \"1.2.3\"\n", "neither a value nor"),
            ("[[port]]\nname = \"vx\"\ntype = \"vxlan\"\nremote_ip = \"1.2.3.4\"\nlocal_ip = \"::1\"\n", "different families"),
            ("[[port]]\nname = \"v1\"\ntype = \"vxlan\"\nremote_ip = \"1.2.3.4\"\n[[port]]\nname = \"v2\"\ntype = \"vxlan\"\nremote_ip = \"1.2.3.4\"\n", "ports v1 and v2"),
        ] {
            let e = Config::parse(&format!("{text}{base}"), Path::new("/")).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let e = Config::parse(
            &format!("[switch]\ndatapath = \"kernel\"\n[[port]]\nname = \"vx\"\ntype = \"vxlan\"\nremote_ip = \"1.2.3.4\"\n{base}"),
            Path::new("/"),
        )
        .unwrap_err();
        assert!(e.contains("userspace tunnelling"), "{e}");
    }
}
