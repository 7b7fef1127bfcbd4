//! `odpx run -c CONFIG.toml`: the switch's configuration, checked whole
//! before anything starts (a bad field is an error naming it, and the
//! daemon never starts half-configured).
//!
//! ```toml
//! [switch]
//! socket = "/run/odpx/odpx.sock"   # control socket (root-only)
//! rules = "rules.txt"              # ovs-ofctl syntax; default: NORMAL switching
//! datapath = "userspace"           # or "kernel": the Linux Open vSwitch datapath
//! dp_name = "odpx0"                # the kernel datapath's name (kernel mode)
//!
//! [[port]]                         # numbered 1, 2, ... in this order
//! name = "veth1"                   # an interface: AF_XDP, or a vport in kernel mode
//!
//! [[port]]
//! name = "mem0"
//! type = "memory"                  # an in-memory port (tests, benchmarks)
//!
//! [pmd]
//! cores = [1]                      # one PMD thread per core
//!
//! [cache]
//! emc_entries = 8192               # a power of two
//! emc_insert_inv_prob = 100        # insert into the EMC with probability 1/N
//! megaflow_limit = 200000
//! idle_timeout_ms = 10000
//! upcall_queue = 4096              # userspace: bounded; misses beyond it are counted lost
//! ```

use serde::Deserialize;
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
}

impl Default for SwitchSection {
    fn default() -> Self {
        SwitchSection {
            socket: default_socket(),
            rules: None,
            rules_inline: None,
            datapath: DatapathKind::default(),
            dp_name: default_dp_name(),
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
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: PortType,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PmdSection {
    #[serde(default = "default_cores")]
    pub cores: Vec<usize>,
}

impl Default for PmdSection {
    fn default() -> Self {
        PmdSection { cores: default_cores() }
    }
}

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
        }
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
        if self.switch.datapath == DatapathKind::Kernel {
            for (i, p) in self.ports.iter().enumerate() {
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

    /// The rule text to load.
    pub fn rules_text(&self) -> Result<String, String> {
        match (&self.switch.rules, &self.switch.rules_inline) {
            (Some(f), _) => std::fs::read_to_string(f).map_err(|e| format!("switch.rules: {}: {e}", f.display())),
            (None, Some(lines)) => Ok(lines.join("\n")),
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
}
