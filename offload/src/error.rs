//! Errors of the ODP client: decoding (what the kernel sent does not parse),
//! encoding (a flow or action the kernel cannot take), and kernel replies
//! (an errno, explained for the operation that got it).

use std::fmt;

/// A netlink payload that does not decode. `what` names the structure
/// (e.g. "flow key", "tunnel key", "actions").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what}: attribute cut off at byte {offset}")]
    Truncated { what: &'static str, offset: usize },
    #[error("{what}: attribute {attr} has {len} bytes, expected {expected}")]
    Length {
        what: &'static str,
        attr: u16,
        len: usize,
        expected: usize,
    },
    #[error("{what}: duplicate attribute {attr}")]
    Duplicate { what: &'static str, attr: u16 },
    #[error("{what}: attribute {attr} is missing")]
    Missing { what: &'static str, attr: u16 },
    #[error("{what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

/// A flow or action list that cannot be expressed to the kernel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(pub String);

/// The operation a kernel error answered, to explain the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Family,
    Datapath,
    Vport,
    Flow,
    Packet,
    Meter,
}

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum OdpError {
    /// The kernel answered with an errno.
    #[error("{}", kernel_message(*.op, *.errno, .context, .ext_ack.as_deref()))]
    Kernel {
        op: Op,
        errno: i32,
        /// What was asked, e.g. "datapath dp0" or "flow in_port(1),...".
        context: String,
        /// The kernel's own explanation, when it gave one: an extended-ack
        /// message, or (EINVAL on flows and packets) its log lines.
        ext_ack: Option<String>,
    },
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed reply from the kernel: {0}")]
    Decode(#[from] DecodeError),
    #[error("cannot encode for the kernel: {0}")]
    Encode(#[from] EncodeError),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("{0}")]
    NotFound(String),
}

impl OdpError {
    /// The kernel errno, if this is a kernel reply.
    pub fn errno(&self) -> Option<i32> {
        match self {
            OdpError::Kernel { errno, .. } => Some(*errno),
            OdpError::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;
const EPERM: i32 = 1;
const EBUSY: i32 = 16;
const EFBIG: i32 = 27;
const EOPNOTSUPP: i32 = 95;
const EAFNOSUPPORT: i32 = 97;
const ENOMEM: i32 = 12;
const EMSGSIZE: i32 = 90;
const ENOSPC: i32 = 28;

fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    // "No such file or directory (os error 2)" -> "No such file or directory"
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

fn errno_name(errno: i32) -> &'static str {
    match errno {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        ENOMEM => "ENOMEM",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        EINVAL => "EINVAL",
        EFBIG => "EFBIG",
        ENOSPC => "ENOSPC",
        EMSGSIZE => "EMSGSIZE",
        EOPNOTSUPP => "EOPNOTSUPP",
        EAFNOSUPPORT => "EAFNOSUPPORT",
        _ => "",
    }
}

/// What an errno means for the operation that got it.
fn meaning(op: Op, errno: i32) -> &'static str {
    match (op, errno) {
        (Op::Family, ENOENT) => "the openvswitch kernel module is not loaded (modprobe openvswitch)",
        (_, EPERM) => "permission denied: ODP needs CAP_NET_ADMIN (run as root)",
        (Op::Datapath, ENODEV | ENOENT) => "no such datapath",
        (Op::Datapath, EEXIST) => "a datapath or network device with that name exists",
        (Op::Datapath, EOPNOTSUPP) => "not supported by this kernel",
        (Op::Vport, ENODEV) => "no such datapath, or no such network device for a netdev vport",
        (Op::Vport, ENOENT) => "no such vport",
        (Op::Vport, EEXIST) => "a vport with that name or number exists",
        (Op::Vport, EBUSY) => "the device is already attached to a datapath or bridge",
        (Op::Vport, EFBIG) => "the datapath has no free port numbers",
        (Op::Vport, EAFNOSUPPORT) => "this vport type is not supported by this kernel (is its module loaded?)",
        (Op::Vport, EOPNOTSUPP) => "this vport type is not supported by this kernel (is its module loaded?)",
        (Op::Flow, ENOENT) => "no such flow",
        (Op::Flow, ENODEV) => "no such datapath",
        (Op::Flow, EEXIST) => "a flow with that key (or UFID) exists",
        (Op::Flow, EINVAL) => "the kernel rejected a key, mask or action attribute",
        (Op::Flow, EOPNOTSUPP) => "an action or key attribute is not supported by this kernel",
        (Op::Flow, EMSGSIZE) => "the actions are too large for one netlink message",
        (Op::Packet, ENODEV) => "no such datapath",
        (Op::Meter, ENODEV) => "no such datapath",
        (Op::Meter, EINVAL) => "the kernel refused the meter (one drop band, a rate above 0)",
        (Op::Packet, EINVAL) => "the kernel rejected the packet, its key or its actions",
        (_, EOPNOTSUPP) => "not supported by this kernel",
        (_, ENOMEM | ENOSPC) => "the kernel is out of memory for this request",
        _ => "",
    }
}

fn kernel_message(op: Op, errno: i32, context: &str, ext_ack: Option<&str>) -> String {
    let mut s = String::new();
    if !context.is_empty() {
        s.push_str(context);
        s.push_str(": ");
    }
    let m = meaning(op, errno);
    if m.is_empty() {
        s.push_str(&strerror(errno));
    } else {
        s.push_str(m);
    }
    let name = errno_name(errno);
    if name.is_empty() {
        s.push_str(&format!(" (errno {errno})"));
    } else {
        s.push_str(&format!(" ({name})"));
    }
    match ext_ack {
        Some(x) => s.push_str(&format!("; kernel says: {x}")),
        // Without access to the kernel log, say where the reason is.
        None if errno == EINVAL && matches!(op, Op::Flow | Op::Packet) => {
            s.push_str("; the kernel log (dmesg) names which")
        }
        None => {}
    }
    s
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Family => "family",
            Op::Datapath => "datapath",
            Op::Vport => "vport",
            Op::Flow => "flow",
            Op::Packet => "packet",
            Op::Meter => "meter",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_errors_say_what_they_mean_here() {
        let e = OdpError::Kernel {
            op: Op::Datapath,
            errno: ENODEV,
            context: "datapath dp9".into(),
            ext_ack: None,
        };
        assert_eq!(e.to_string(), "datapath dp9: no such datapath (ENODEV)");
        let e = OdpError::Kernel {
            op: Op::Family,
            errno: ENOENT,
            context: "ovs_datapath".into(),
            ext_ack: None,
        };
        assert!(e.to_string().contains("module is not loaded"), "{e}");
        let e = OdpError::Kernel {
            op: Op::Flow,
            errno: 75,
            context: String::new(),
            ext_ack: Some("x".into()),
        };
        assert!(e.to_string().contains("errno 75"), "{e}");
        assert!(e.to_string().ends_with("kernel says: x"), "{e}");
    }
}
