//! A fleet: three odpx switches in a Faucet stack, a ring, run by one
//! Faucet (the way sites with many switches run them: an existing
//! controller, nothing home-made). Faucet finds the stack links with
//! LLDP beacons it sends as packet-outs and hears back as packet-ins,
//! picks the paths to the root switch, and floods and learns across the
//! stack. Hosts on different switches reach each other; when a stack
//! link goes down, traffic takes the other way round the ring.
//!
//! ```text
//!        h1            h2            h3
//!        |1            |1            |1
//!     [sw1]2 ------ 2[sw2]3 ------ 3[sw3]
//!        3\___________________________/2
//! ```
//! All three switches, and Faucet, run in one namespace (Faucet listens
//! on its loopback); the stack links are veth pairs inside it.

mod common;

use common::faucet::{Faucet, OF_PORT};
use odpx_control::ctl::request_line as request;
use odpx_tools::sandbox::{self, echo_count, sh, udp_echo_server, veth_pair, Sandbox};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// The stack links' two ends: `lAB` is switch A's port toward switch B.
const LINKS: [(&str, &str); 3] = [("l12", "l21"), ("l23", "l32"), ("l13", "l31")];

/// Each switch's ports, in OpenFlow port order: its host, then its stack
/// links.
fn ports_of(sw: u8) -> [String; 3] {
    match sw {
        1 => ["s1".into(), "l12".into(), "l13".into()],
        2 => ["s2".into(), "l21".into(), "l23".into()],
        _ => ["s3".into(), "l31".into(), "l32".into()],
    }
}

/// Faucet's configuration: one VLAN on every host port, the ring as
/// stack ports, sw1 the root.
const STACK: &str = "
vlans:
    hosts:
        vid: 100
dps:
    sw1:
        dp_id: 0x1
        hardware: Open vSwitch
        stack:
            priority: 1
        interfaces:
            1:
                native_vlan: hosts
            2:
                stack: {dp: sw2, port: 2}
            3:
                stack: {dp: sw3, port: 2}
    sw2:
        dp_id: 0x2
        hardware: Open vSwitch
        interfaces:
            1:
                native_vlan: hosts
            2:
                stack: {dp: sw1, port: 2}
            3:
                stack: {dp: sw3, port: 3}
    sw3:
        dp_id: 0x3
        hardware: Open vSwitch
        interfaces:
            1:
                native_vlan: hosts
            2:
                stack: {dp: sw1, port: 3}
            3:
                stack: {dp: sw2, port: 3}
";

/// One odpx of the fleet; stopped when dropped.
struct Switch {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Switch {
    fn start(ns: &str, dir: &Path, sw: u8) -> Switch {
        let dir = dir.join(format!("sw{sw}"));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("ctl.sock");
        let ports: String = ports_of(sw)
            .iter()
            .map(|p| format!("[[port]]\nname = \"{p}\"\n"))
            .collect();
        let cfg = format!(
            "[switch]\nsocket = {socket:?}\n{ports}[pmd]\ncores = [{}]\n[openflow]\ncontroller = \"tcp:127.0.0.1:{OF_PORT}\"\ndatapath_id = \"{sw:#x}\"\nfail_mode = \"secure\"\nmax_backoff_ms = 200\n",
            sw % 2
        );
        std::fs::write(dir.join("odpx.toml"), cfg).unwrap();
        let log = dir.join("stderr");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_odpx"), "run", "-c"])
            .arg(dir.join("odpx.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("odpx run");
        let s = Switch { child, socket, log };
        let t = Instant::now();
        while request(&s.socket, "show").is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "sw{sw} did not start: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn ctl(&self, cmd: &str) -> String {
        request(&self.socket, cmd).unwrap_or_else(|e| format!("ctl {cmd}: {e}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = sh(&["kill", "-TERM", &self.child.id().to_string()]);
        let _ = self.child.wait();
    }
}

/// Packets sent on `port` of the switch namespace so far.
fn tx_packets(ns: &str, port: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat"])
        .arg(format!("/sys/class/net/{port}/statistics/tx_packets"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// Everything the switches and Faucet say, for a failure's message.
fn story(switches: &[Switch], faucet: &Faucet) -> String {
    let mut s = String::new();
    for (i, sw) in switches.iter().enumerate() {
        s += &format!("== sw{}\n{}\n{}\n", i + 1, sw.ctl("dump-flows"), sw.log());
    }
    s + &faucet.log()
}

/// Echo answers from `dst` to `ns` within the deadline: at least one of a
/// burst, tried until it comes (the first ones go while Faucet learns).
fn reaches(ns: &str, dst: &str) -> bool {
    let t = Instant::now();
    while t.elapsed() < DEADLINE {
        if echo_count(ns, dst, 3) > 0 {
            return true;
        }
    }
    false
}

fn a_faucet_stack_of_three_switches_reroutes_round_the_ring() {
    let tag = format!("st{}", std::process::id() % 100000);
    let sb: Sandbox = sandbox::build(&tag, 3).expect("sandbox");
    let ns = sb.switch.clone();
    for (a, b) in LINKS {
        veth_pair(&ns, a, &ns, b).unwrap();
        for end in [a, b] {
            sh(&["ip", "-n", &ns, "link", "set", end, "up"]).unwrap();
            sh(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{end}.disable_ipv6=1"),
            ])
            .unwrap();
        }
    }
    let stop_echo = Arc::new(AtomicBool::new(false));
    for h in &sb.hosts {
        udp_echo_server(h.clone(), stop_echo.clone());
    }
    let dir = std::env::temp_dir().join(format!("odpx-stack-{tag}"));
    let switches: Vec<Switch> = (1..=3).map(|sw| Switch::start(&ns, &dir, sw)).collect();
    let faucet = Faucet::start(&ns, &dir, STACK);
    // Hosts on the two ends of the ring, and the middle one.
    assert!(
        reaches(&sb.hosts[0], "10.0.0.3"),
        "h1 -> h3:\n{}",
        story(&switches, &faucet)
    );
    assert!(
        reaches(&sb.hosts[1], "10.0.0.1"),
        "h2 -> h1:\n{}",
        story(&switches, &faucet)
    );
    // Learned by now: the echoes take the direct stack link, sw1-sw3.
    let direct = tx_packets(&ns, "l13") + tx_packets(&ns, "l31");
    assert!(
        echo_count(&sb.hosts[0], "10.0.0.3", 10) >= 8,
        "{}",
        story(&switches, &faucet)
    );
    let crossed = tx_packets(&ns, "l13") + tx_packets(&ns, "l31") - direct;
    assert!(crossed >= 16, "the echoes crossed sw1-sw3 ({crossed} packets)");
    // The direct link sw1-sw3 goes down: odpx reports it (PORT_STATUS),
    // Faucet takes it out of the stack, and h1 reaches h3 through sw2.
    sh(&["ip", "-n", &ns, "link", "set", "l13", "down"]).unwrap();
    let through_sw2 = tx_packets(&ns, "l23") + tx_packets(&ns, "l32");
    let t = Instant::now();
    while echo_count(&sb.hosts[0], "10.0.0.3", 3) < 3 {
        assert!(
            t.elapsed() < DEADLINE,
            "h1 -> h3 round the ring:\n{}",
            story(&switches, &faucet)
        );
    }
    assert!(
        echo_count(&sb.hosts[0], "10.0.0.3", 10) >= 8,
        "{}",
        story(&switches, &faucet)
    );
    let crossed = tx_packets(&ns, "l23") + tx_packets(&ns, "l32") - through_sw2;
    assert!(crossed >= 20, "the echoes crossed sw2's stack link ({crossed} packets)");
    stop_echo.store(true, Ordering::Relaxed);
    drop(faucet);
    drop(switches);
    let _ = sh(&["rm", "-rf", dir.to_str().unwrap()]);
}

odpx_tests::cases! {
    [odpx_tests::harness::NETNS, odpx_tests::harness::FAUCET] => a_faucet_stack_of_three_switches_reroutes_round_the_ring;
}
