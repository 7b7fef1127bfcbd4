//! The `[openflow]` section: the controllers that program the switch,
//! and the passive sockets `ovs-ofctl` talks to.
//!
//! ```toml
//! [openflow]
//! controller = "tcp:127.0.0.1:6653"     # also "ssl:HOST:PORT", "unix:PATH"; a list for several
//! listen = "punix:/run/odpx/odpx.mgmt"  # passive, for ovs-ofctl; also "ptcp:PORT[:IP]"
//!                                       # (loopback unless an IP is given); a list for several
//! datapath_id = "0x1"                   # default: from the first port's name
//! fail_mode = "standalone"              # NORMAL after 3 probe intervals without a controller; or "secure"
//! # probe_interval_s = 5                # ECHO after this long idle; a second one closes
//! # max_backoff_ms = 1000               # redial at most this long after a failure
//! # packet_in_rate = 1000               # packet-ins per second per controller
//! # packet_in_burst = 250               #   and the burst beyond the rate
//!
//! [openflow.ssl]                        # for ssl: and pssl: targets
//! private_key = "sc-privkey.pem"
//! certificate = "sc-cert.pem"
//! ca_cert = "cacert.pem"
//! ```
//! Without `[openflow]`, odpx is programmed by its rule file and `odpx
//! ctl` only.

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// OpenFlow's registered port, the default of `tcp:HOST` and `ptcp:`.
pub const OPENFLOW_PORT: u16 = 6653;

/// A connection target, in Open vSwitch's syntax: `tcp:HOST[:PORT]`,
/// `ssl:HOST[:PORT]`, `unix:PATH`, and the passive `ptcp:[PORT][:IP]`,
/// `pssl:[PORT][:IP]`, `punix:PATH` (passive TCP on the loopback address
/// unless an address is given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Tcp { host: String, port: u16 },
    Ssl { host: String, port: u16 },
    Unix(PathBuf),
    PTcp { port: u16, ip: IpAddr },
    PSsl { port: u16, ip: IpAddr },
    PUnix(PathBuf),
}

impl Target {
    /// Whether odpx listens (true) or dials (false).
    pub fn is_passive(&self) -> bool {
        matches!(self, Target::PTcp { .. } | Target::PSsl { .. } | Target::PUnix(_))
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Target::Ssl { .. } | Target::PSsl { .. })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            Target::Ssl { host, port } => write!(f, "ssl:{host}:{port}"),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::PTcp { port, ip } => write!(f, "ptcp:{port}:{ip}"),
            Target::PSsl { port, ip } => write!(f, "pssl:{port}:{ip}"),
            Target::PUnix(p) => write!(f, "punix:{}", p.display()),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}': a target is tcp:HOST[:PORT], ssl:HOST[:PORT], unix:PATH, ptcp:[PORT][:IP], pssl:[PORT][:IP] or punix:PATH"))?;
        let port = |p: &str| -> Result<u16, String> {
            if p.is_empty() {
                return Ok(OPENFLOW_PORT);
            }
            p.parse().map_err(|_| format!("'{s}': '{p}' is not a port number"))
        };
        // HOST[:PORT], HOST an IPv6 address in brackets or not.
        let host_port = |r: &str| -> Result<(String, u16), String> {
            let (h, p) = match r.strip_prefix('[') {
                Some(v6) => {
                    let (h, after) = v6.split_once(']').ok_or_else(|| format!("'{s}': missing ']'"))?;
                    (h, after.strip_prefix(':').unwrap_or(""))
                }
                None => r.split_once(':').unwrap_or((r, "")),
            };
            if h.is_empty() {
                return Err(format!("'{s}': no host"));
            }
            Ok((h.to_string(), port(p)?))
        };
        let port_ip = |r: &str| -> Result<(u16, IpAddr), String> {
            let (p, ip) = r.split_once(':').unwrap_or((r, ""));
            let ip = if ip.is_empty() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                ip.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| format!("'{s}': '{ip}' is not an IP address"))?
            };
            Ok((port(p)?, ip))
        };
        let path = |r: &str| -> Result<PathBuf, String> {
            if r.is_empty() {
                return Err(format!("'{s}': no path"));
            }
            Ok(PathBuf::from(r))
        };
        Ok(match kind {
            "tcp" => host_port(rest).map(|(host, port)| Target::Tcp { host, port })?,
            "ssl" => host_port(rest).map(|(host, port)| Target::Ssl { host, port })?,
            "unix" => Target::Unix(path(rest)?),
            "ptcp" => port_ip(rest).map(|(port, ip)| Target::PTcp { port, ip })?,
            "pssl" => port_ip(rest).map(|(port, ip)| Target::PSsl { port, ip })?,
            "punix" => Target::PUnix(path(rest)?),
            other => return Err(format!("'{s}': unknown kind of target '{other}'")),
        })
    }
}

/// What a switch does without a controller.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Start with the rule file's rules (NORMAL switching by default)
    /// until a controller changes them; with controllers to dial, switch
    /// on its own (NORMAL) while none has been connected for three probe
    /// intervals ([`crate::openflow::fail_open`]).
    #[default]
    Standalone,
    /// Start with no rule but the rule file's: nothing is forwarded
    /// until a controller says how.
    Secure,
}

/// A string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// `[openflow]` (see the module documentation).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenflowSection {
    #[serde(default, deserialize_with = "one_or_many")]
    pub controller: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub listen: Vec<String>,
    pub datapath_id: Option<String>,
    #[serde(default)]
    pub fail_mode: FailMode,
    #[serde(default = "d_probe")]
    pub probe_interval_s: u64,
    #[serde(default = "d_backoff")]
    pub max_backoff_ms: u64,
    #[serde(default = "d_rate")]
    pub packet_in_rate: u32,
    #[serde(default = "d_burst")]
    pub packet_in_burst: u32,
    pub ssl: Option<SslSection>,
}

fn d_probe() -> u64 {
    5
}
fn d_backoff() -> u64 {
    1000
}
fn d_rate() -> u32 {
    1000
}
fn d_burst() -> u32 {
    250
}

/// `[openflow.ssl]`: files in PEM.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SslSection {
    pub private_key: PathBuf,
    pub certificate: PathBuf,
    pub ca_cert: PathBuf,
}

impl OpenflowSection {
    /// Every target, checked: controllers are active, listeners passive.
    pub fn targets(&self) -> Result<Vec<Target>, String> {
        let mut out = Vec::new();
        for (list, passive, what) in [(&self.controller, false, "controller"), (&self.listen, true, "listen")] {
            for s in list {
                let t: Target = s.parse().map_err(|e| format!("openflow.{what}: {e}"))?;
                if t.is_passive() != passive {
                    let want = if passive { "a passive (p...)" } else { "an active" };
                    return Err(format!("openflow.{what}: '{s}' is not {want} target"));
                }
                out.push(t);
            }
        }
        Ok(out)
    }

    /// The datapath id given, if any.
    pub fn dpid(&self) -> Result<Option<u64>, String> {
        let Some(s) = &self.datapath_id else { return Ok(None) };
        let t = s.trim_start_matches("0x");
        u64::from_str_radix(t, 16)
            .map(Some)
            .map_err(|_| format!("openflow.datapath_id: '{s}' is not a 64-bit hexadecimal number"))
    }

    /// Checks the section whole; relative SSL file names are resolved
    /// against `base`.
    pub(super) fn check(&mut self, base: &Path) -> Result<(), String> {
        let targets = self.targets()?;
        self.dpid()?;
        if targets.is_empty() {
            return Err("openflow: give a controller or a listen target (or leave [openflow] out)".into());
        }
        if self.probe_interval_s == 0 || self.max_backoff_ms == 0 || self.packet_in_rate == 0 {
            return Err("openflow: probe_interval_s, max_backoff_ms and packet_in_rate must be positive".into());
        }
        match &mut self.ssl {
            Some(ssl) => {
                for f in [&mut ssl.private_key, &mut ssl.certificate, &mut ssl.ca_cert] {
                    if f.is_relative() {
                        *f = base.join(&*f);
                    }
                }
            }
            None if targets.iter().any(Target::is_tls) => {
                return Err("openflow: ssl targets need [openflow.ssl] (private_key, certificate, ca_cert)".into())
            }
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_ovs_writes_them() {
        let t = |s: &str| s.parse::<Target>();
        assert_eq!(
            t("tcp:127.0.0.1:6653"),
            Ok(Target::Tcp {
                host: "127.0.0.1".into(),
                port: 6653
            })
        );
        assert_eq!(
            t("tcp:ctl.example"),
            Ok(Target::Tcp {
                host: "ctl.example".into(),
                port: 6653
            })
        );
        assert_eq!(
            t("ssl:[::1]:6654"),
            Ok(Target::Ssl {
                host: "::1".into(),
                port: 6654
            })
        );
        assert_eq!(
            t("ptcp:6634"),
            Ok(Target::PTcp {
                port: 6634,
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST)
            })
        );
        assert_eq!(
            t("ptcp:6634:0.0.0.0"),
            Ok(Target::PTcp {
                port: 6634,
                ip: "0.0.0.0".parse().unwrap()
            })
        );
        assert_eq!(
            t("punix:/run/odpx/odpx.mgmt"),
            Ok(Target::PUnix("/run/odpx/odpx.mgmt".into()))
        );
        assert!(t("punix:/x").unwrap().is_passive());
        for bad in ["tcp:", "tcp:h:70000", "udp:1.2.3.4", "punix:", "ptcp:1:notanip", "6653"] {
            assert!(t(bad).is_err(), "{bad}");
        }
        assert_eq!(t("tcp:h:1").unwrap().to_string(), "tcp:h:1");
    }
}
