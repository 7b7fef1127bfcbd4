//! Network namespaces for the demo and the tests: a switch namespace with
//! ports `s1..sN`, host namespaces with `eth0` at 10.0.0.i/24, removed
//! when the [`Sandbox`] is dropped; and UDP and ICMP echo to check round
//! trips through the switch without any outside tool.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A network namespace's file, as `ip netns add` made it (`/run/netns`;
/// `/var/run/netns` where `/var/run` is not a link to `/run`).
pub fn netns_file(ns: &str) -> std::io::Result<std::fs::File> {
    std::fs::File::open(format!("/run/netns/{ns}")).or_else(|_| std::fs::File::open(format!("/var/run/netns/{ns}")))
}

pub fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The demo's namespaces; deleted (with their veths) when dropped, so the
/// sandbox goes away on normal exit, Ctrl-C and errors alike.
pub struct Sandbox {
    pub namespaces: Vec<String>,
    pub switch: String,
    pub hosts: Vec<String>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Builds the namespaces (`odpx-sw-TAG`, `odpx-hI-TAG`) and veths.
pub fn build(tag: &str, hosts: usize) -> Result<Sandbox, String> {
    let sw = format!("odpx-sw-{tag}");
    let hosts: Vec<String> = (1..=hosts).map(|i| format!("odpx-h{i}-{tag}")).collect();
    let mut sb = Sandbox {
        namespaces: Vec::new(),
        switch: sw.clone(),
        hosts: hosts.clone(),
    };
    for ns in std::iter::once(&sw).chain(&hosts) {
        sh(&["ip", "netns", "add", ns])?;
        sb.namespaces.push(ns.clone());
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
    }
    for (i, h) in hosts.iter().enumerate() {
        let port = format!("s{}", i + 1);
        veth_pair(&sw, &port, h, "eth0")?;
        sh(&["ip", "-n", &sw, "link", "set", &port, "up"])?;
        sh(&[
            "ip",
            "-n",
            h,
            "addr",
            "add",
            &format!("10.0.0.{}/24", i + 1),
            "dev",
            "eth0",
        ])?;
        // The hosts' veths must finish their own checksums: AF_XDP copies
        // raw bytes, and a partial checksum would leave the switch as is.
        let f = netns_file(h).map_err(|e| format!("{h}: {e}"))?;
        let h2 = h.clone();
        std::thread::spawn(move || {
            odpx_dataplane::sys::fd::enter_netns(&f).map_err(|e| e.to_string())?;
            odpx_offload::ethtool::disable_tx_checksum("eth0").map_err(|e| format!("{h2}: eth0: {e}"))
        })
        .join()
        .map_err(|_| "ethtool thread panicked".to_string())??;
        sh(&["ip", "-n", h, "link", "set", "eth0", "up"])?;
    }
    Ok(sb)
}

/// The underlay's IP family in a [`vxlan_site`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// A remote site behind Linux's own VXLAN device, reached from the switch
/// namespace over an underlay veth.
#[derive(Clone, Debug)]
pub struct VxlanSite {
    /// The site's namespace (its `eth0` is the far end of the underlay).
    pub ns: String,
    /// The underlay interface in the switch namespace.
    pub underlay: String,
    /// The switch's VTEP address, and the site's.
    pub local: String,
    pub remote: String,
    /// The site's overlay address (on its vxlan device, in 10.0.0.0/24).
    pub host: String,
    /// The site's vxlan device.
    pub device: String,
}

/// Adds a VXLAN site to a sandbox: namespace `odpx-site-TAG`, a veth
/// `u0` (switch side, 172.31.0.1/24 or fd00:31::1/64) to the site's
/// `eth0` (.2), and in the site a Linux vxlan device with VNI `vni`
/// toward the switch's address, carrying 10.0.0.100/24.
pub fn vxlan_site(sb: &mut Sandbox, tag: &str, family: Family, vni: u32, dst_port: u16) -> Result<VxlanSite, String> {
    let ns = format!("odpx-site-{tag}");
    sh(&["ip", "netns", "add", &ns])?;
    sb.namespaces.push(ns.clone());
    sh(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
    veth_pair(&sb.switch, "u0", &ns, "eth0")?;
    let (local, remote, len) = match family {
        Family::V4 => ("172.31.0.1", "172.31.0.2", 24),
        Family::V6 => ("fd00:31::1", "fd00:31::2", 64),
    };
    for (n, dev, addr) in [(&sb.switch, "u0", local), (&ns, "eth0", remote)] {
        let cidr = format!("{addr}/{len}");
        let mut args = vec!["ip", "-n", n, "addr", "add", &cidr, "dev", dev];
        if family == Family::V6 {
            args.push("nodad");
        }
        sh(&args)?;
        sh(&["ip", "-n", n, "link", "set", dev, "up"])?;
    }
    // The site's frames carry finished checksums (AF_XDP copies raw bytes).
    let f = netns_file(&ns).map_err(|e| format!("{ns}: {e}"))?;
    std::thread::spawn(move || {
        odpx_dataplane::sys::fd::enter_netns(&f).map_err(|e| e.to_string())?;
        odpx_offload::ethtool::disable_tx_checksum("eth0").map_err(|e| format!("site eth0: {e}"))
    })
    .join()
    .map_err(|_| "ethtool thread panicked".to_string())??;
    let device = format!("vx{vni}");
    let id = vni.to_string();
    let port = dst_port.to_string();
    sh(&[
        "ip", "-n", &ns, "link", "add", &device, "type", "vxlan", "id", &id, "local", remote, "remote", local,
        "dstport", &port, "dev", "eth0",
    ])?;
    sh(&["ip", "-n", &ns, "addr", "add", "10.0.0.100/24", "dev", &device])?;
    sh(&["ip", "-n", &ns, "link", "set", &device, "up"])?;
    Ok(VxlanSite {
        ns,
        underlay: "u0".into(),
        local: local.into(),
        remote: remote.into(),
        host: "10.0.0.100".into(),
        device,
    })
}

/// A veth pair, `name` in namespace `ns` and `peer` in `peer_ns` (which may
/// be `ns`), with one queue per end: AF_XDP binds per queue, and veth would
/// otherwise make one per CPU.
pub fn veth_pair(ns: &str, name: &str, peer_ns: &str, peer: &str) -> Result<(), String> {
    sh(&[
        "ip",
        "-n",
        ns,
        "link",
        "add",
        name,
        "numrxqueues",
        "1",
        "numtxqueues",
        "1",
        "type",
        "veth",
        "peer",
        "name",
        peer,
        "netns",
        peer_ns,
        "numrxqueues",
        "1",
        "numtxqueues",
        "1",
    ])
}

/// Moves the calling thread into namespace `ns`.
pub fn enter(ns: &str) -> bool {
    netns_file(ns).is_ok_and(|f| odpx_dataplane::sys::fd::enter_netns(&f).is_ok())
}

pub const ECHO_PORT: u16 = 7;

/// Answers UDP echo requests in a host namespace until `stop`. Returns
/// once the server's socket is bound (or could not be), so a client started
/// right after never sends its first request to a closed port.
pub fn udp_echo_server(ns: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (bound_tx, bound) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let socket = enter(&ns)
            .then(|| std::net::UdpSocket::bind(("0.0.0.0", ECHO_PORT)).ok())
            .flatten();
        let _ = bound_tx.send(());
        let Some(s) = socket else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 1500];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        }
    });
    let _ = bound.recv();
    server
}

/// How a round trip through the switch is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// A datagram to [`ECHO_PORT`], answered by [`udp_echo_server`].
    Udp,
    /// An ICMP echo request (what `ping` sends), answered by the far
    /// host's kernel. Needs a raw socket, so root.
    Icmp,
}

/// One open echo "session" from inside a host namespace.
enum Asker {
    Udp(std::net::UdpSocket, std::net::SocketAddr),
    Icmp(socket2::Socket, socket2::SockAddr, u16),
}

impl Asker {
    fn open(kind: Echo, dst: &str) -> Option<Self> {
        let ip: std::net::Ipv4Addr = dst.parse().ok()?;
        match kind {
            Echo::Udp => {
                let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
                s.set_read_timeout(Some(Duration::from_millis(50))).ok()?;
                Some(Self::Udp(s, (ip, ECHO_PORT).into()))
            }
            Echo::Icmp => {
                use socket2::{Domain, Protocol, Socket, Type};
                let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).ok()?;
                s.set_read_timeout(Some(Duration::from_millis(50))).ok()?;
                // Distinct per asker so concurrent pingers ignore each
                // other's replies (a raw socket sees every ICMP packet).
                static NEXT_IDENT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0x0d00);
                let ident = NEXT_IDENT.fetch_add(1, Ordering::Relaxed) ^ std::process::id() as u16;
                let to = std::net::SocketAddr::from((ip, 0)).into();
                Some(Self::Icmp(s, to, ident))
            }
        }
    }

    /// Sends request `seq` and waits up to `timeout` for its answer.
    fn ask(&self, seq: u64, timeout: Duration) -> bool {
        let t = Instant::now();
        let mut buf = [0u8; 1500];
        match self {
            Self::Udp(s, to) => {
                if s.send_to(&seq.to_be_bytes(), to).is_err() {
                    return false;
                }
                while t.elapsed() < timeout {
                    if let Ok((8, _)) = s.recv_from(&mut buf) {
                        if buf[..8] == seq.to_be_bytes() {
                            return true;
                        }
                    }
                }
            }
            Self::Icmp(s, to, ident) => {
                if s.send_to(&icmp_echo_request(*ident, seq), to).is_err() {
                    return false;
                }
                while t.elapsed() < timeout {
                    use std::io::Read;
                    if let Ok(n) = (&*s).read(&mut buf) {
                        if is_icmp_echo_reply(&buf[..n], *ident, seq) {
                            return true;
                        }
                    }
                }
            }
        }
        false
    }
}

/// An ICMP echo request (type 8) with identifier `ident`, sequence number
/// `seq` (low 16 bits) and the whole `seq` as payload, checksummed.
fn icmp_echo_request(ident: u16, seq: u64) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[0] = 8;
    m[4..6].copy_from_slice(&ident.to_be_bytes());
    m[6..8].copy_from_slice(&(seq as u16).to_be_bytes());
    m[8..].copy_from_slice(&seq.to_be_bytes());
    let sum = m
        .chunks(2)
        .fold(0u32, |acc, w| acc + u32::from(u16::from_be_bytes([w[0], w[1]])));
    let folded = (sum & 0xffff) + (sum >> 16);
    let folded = (folded & 0xffff) + (folded >> 16);
    m[2..4].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    m
}

/// True when `packet` (an IPv4 datagram as a raw socket reads it) is the
/// echo reply (type 0) to [`icmp_echo_request`]`(ident, seq)`.
fn is_icmp_echo_reply(packet: &[u8], ident: u16, seq: u64) -> bool {
    let Some(&first) = packet.first() else {
        return false;
    };
    let icmp = &packet[(usize::from(first & 0x0f) * 4).min(packet.len())..];
    icmp.len() >= 16 && icmp[0] == 0 && icmp[4..6] == ident.to_be_bytes() && icmp[8..16] == seq.to_be_bytes()
}

/// Sends an echo request of `kind` every 200 ms from a host namespace to
/// `dst`; returns (sent, answered, total round-trip time of the answered).
pub fn echo_client(
    ns: String,
    dst: String,
    kind: Echo,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, u64, Duration)> {
    std::thread::spawn(move || {
        let Some(asker) = enter(&ns).then(|| Asker::open(kind, &dst)).flatten() else {
            return (0, 0, Duration::ZERO);
        };
        let (mut sent, mut got, mut rtt) = (0u64, 0u64, Duration::ZERO);
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            sent += 1;
            if asker.ask(sent, Duration::from_millis(200)) {
                got += 1;
                rtt += t.elapsed();
            }
            if let Some(rest) = Duration::from_millis(200).checked_sub(t.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        (sent, got, rtt)
    })
}

/// UDP datagrams from a host namespace to `dst`, over `flows` destination
/// ports, at up to `pps`, until `stop`.
pub fn udp_traffic(
    ns: String,
    dst: &'static str,
    flows: u16,
    pps: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let Ok(f) = netns_file(&ns) else {
            return 0;
        };
        if odpx_dataplane::sys::fd::enter_netns(&f).is_err() {
            return 0;
        }
        let Ok(s) = std::net::UdpSocket::bind("0.0.0.0:0") else {
            return 0;
        };
        let payload = [0u8; 64];
        let mut sent = 0u64;
        let start = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..64 {
                let port = 20000 + (sent % flows as u64) as u16;
                if s.send_to(&payload, (dst, port)).is_ok() {
                    sent += 1;
                }
            }
            // Pace to `pps`.
            let due = Duration::from_secs_f64(sent as f64 / pps as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        sent
    })
}

/// Sends `n` echo requests of `kind` from namespace `ns` to `dst`, each
/// waited for up to 300 ms, and returns how many were answered.
pub fn echo_count_with(kind: Echo, ns: &str, dst: &str, n: u64) -> u64 {
    let ns = ns.to_string();
    let dst = dst.to_string();
    std::thread::spawn(move || {
        let Some(asker) = enter(&ns).then(|| Asker::open(kind, &dst)).flatten() else {
            return 0;
        };
        (1..=n)
            .filter(|&seq| asker.ask(seq, Duration::from_millis(300)))
            .count() as u64
    })
    .join()
    .unwrap_or(0)
}

/// [`echo_count_with`] over UDP echo.
pub fn echo_count(ns: &str, dst: &str, n: u64) -> u64 {
    echo_count_with(Echo::Udp, ns, dst, n)
}

/// True when this process can build sandboxes (root, `ip netns`).
pub fn available() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    root && Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_echo_request_checksums_to_zero_and_its_reply_is_recognised() {
        let req = icmp_echo_request(0x1234, 0x0102_0304_0506_0708);
        let sum = req
            .chunks(2)
            .fold(0u32, |a, w| a + u32::from(u16::from_be_bytes([w[0], w[1]])));
        assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff, "{req:02x?}");
        assert_eq!(&req[..2], &[8, 0]);
        // The far kernel's reply: the request with type 0, behind a
        // 24-byte IPv4 header (IHL 6, with options).
        let mut packet = vec![0x46u8];
        packet.resize(24, 0);
        packet.extend_from_slice(&req);
        packet[24] = 0;
        assert!(is_icmp_echo_reply(&packet, 0x1234, 0x0102_0304_0506_0708));
        assert!(!is_icmp_echo_reply(&packet, 0x1235, 0x0102_0304_0506_0708));
        assert!(!is_icmp_echo_reply(&packet, 0x1234, 7));
        packet[24] = 8;
        assert!(
            !is_icmp_echo_reply(&packet, 0x1234, 0x0102_0304_0506_0708),
            "a request is no reply"
        );
        assert!(!is_icmp_echo_reply(&packet[..30], 0x1234, 0x0102_0304_0506_0708));
        assert!(!is_icmp_echo_reply(&[], 0x1234, 0));
    }
}
