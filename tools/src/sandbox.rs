//! Network namespaces for the demo and the tests: a switch namespace with
//! ports `s1..sN`, host namespaces with `eth0` at 10.0.0.i/24, removed
//! when the [`Sandbox`] is dropped; and a UDP echo to check round trips
//! through the switch without any outside tool.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        // One queue per end (AF_XDP binds per queue; veth makes one per CPU).
        sh(&[
            "ip",
            "-n",
            &sw,
            "link",
            "add",
            &port,
            "numrxqueues",
            "1",
            "numtxqueues",
            "1",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            h,
            "numrxqueues",
            "1",
            "numtxqueues",
            "1",
        ])?;
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
        let f = std::fs::File::open(format!("/var/run/netns/{h}")).map_err(|e| format!("{h}: {e}"))?;
        let h2 = h.clone();
        std::thread::spawn(move || {
            odpx_dataplane::xsk::enter_netns(&f).map_err(|e| e.to_string())?;
            odpx_offload::ethtool::disable_tx_checksum("eth0").map_err(|e| format!("{h2}: eth0: {e}"))
        })
        .join()
        .map_err(|_| "ethtool thread panicked".to_string())??;
        sh(&["ip", "-n", h, "link", "set", "eth0", "up"])?;
    }
    Ok(sb)
}

/// Moves the calling thread into namespace `ns`.
pub fn enter(ns: &str) -> bool {
    std::fs::File::open(format!("/var/run/netns/{ns}")).is_ok_and(|f| odpx_dataplane::xsk::enter_netns(&f).is_ok())
}

pub const ECHO_PORT: u16 = 7;

/// Answers UDP echo requests in a host namespace until `stop`.
pub fn udp_echo_server(ns: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if !enter(&ns) {
            return;
        }
        let Ok(s) = std::net::UdpSocket::bind(("0.0.0.0", ECHO_PORT)) else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 1500];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        }
    })
}

/// Sends an echo request every 200 ms from a host namespace to `dst`;
/// returns (sent, answered, total round-trip time of the answered).
pub fn udp_echo_client(
    ns: String,
    dst: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, u64, Duration)> {
    std::thread::spawn(move || {
        if !enter(&ns) {
            return (0, 0, Duration::ZERO);
        }
        let Ok(s) = std::net::UdpSocket::bind("0.0.0.0:0") else {
            return (0, 0, Duration::ZERO);
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let (mut sent, mut got, mut rtt) = (0u64, 0u64, Duration::ZERO);
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            if s.send_to(&sent.to_be_bytes(), (dst.as_str(), ECHO_PORT)).is_err() {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            sent += 1;
            while t.elapsed() < Duration::from_millis(200) {
                match s.recv_from(&mut buf) {
                    Ok((8, _)) if buf[..8] == (sent - 1).to_be_bytes() => {
                        got += 1;
                        rtt += t.elapsed();
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
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
        let Ok(f) = std::fs::File::open(format!("/var/run/netns/{ns}")) else {
            return 0;
        };
        if odpx_dataplane::xsk::enter_netns(&f).is_err() {
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

/// Sends `n` echo requests from namespace `ns` to `dst` (200 ms apart at
/// most) and returns how many were answered.
pub fn echo_count(ns: &str, dst: &str, n: u64) -> u64 {
    let ns = ns.to_string();
    let dst = dst.to_string();
    std::thread::spawn(move || {
        if !enter(&ns) {
            return 0;
        }
        let Ok(s) = std::net::UdpSocket::bind("0.0.0.0:0") else {
            return 0;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
        let mut got = 0;
        let mut buf = [0u8; 64];
        for i in 0..n {
            let _ = s.send_to(&i.to_be_bytes(), (dst.as_str(), ECHO_PORT));
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(300) {
                match s.recv_from(&mut buf) {
                    Ok((8, _)) if buf[..8] == i.to_be_bytes() => {
                        got += 1;
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        got
    })
    .join()
    .unwrap_or(0)
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
