//! odpx programmed by Faucet (the controller of Open vSwitch's Faucet
//! tutorial, `../shared/reference/faucet-tutorial.md`), on AF_XDP ports in
//! network namespaces, with real traffic: the tutorial's switching walk
//! (VLANs, MAC learning through packet-ins, flooding that skips the
//! ingress port), and the same rules seen through `ovs-ofctl`.
//!
//! Faucet runs in the switch's namespace (it listens on that loopback),
//! from the venv `tools/test.sh` makes (`target/faucet-venv`).

mod common;

use common::Daemon;
use odpx_tools::sandbox::{echo_count, sh};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);
const OF_PORT: u16 = 6653;

fn venv() -> PathBuf {
    odpx_tests::repo().join("target/faucet-venv")
}

/// Faucet with `yaml`, in namespace `ns`; killed when dropped.
struct Faucet {
    child: Child,
    dir: PathBuf,
}

impl Faucet {
    fn start(ns: &str, dir: &Path, yaml: &str) -> Faucet {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("faucet.yaml"), yaml).unwrap();
        let bin = venv().join("bin");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "env"])
            .arg(format!("PATH={path}"))
            .arg(format!("FAUCET_CONFIG={}", dir.join("faucet.yaml").display()))
            .arg(format!("FAUCET_LOG={}", dir.join("faucet.log").display()))
            .arg(format!("FAUCET_EXCEPTION_LOG={}", dir.join("faucet_exception.log").display()))
            .args(["FAUCET_PROMETHEUS_ADDR=127.0.0.1", "FAUCET_PROMETHEUS_PORT=9302"])
            .arg(bin.join("faucet"))
            .arg(format!("--ryu-ofp-tcp-listen-port={OF_PORT}"))
            .arg("--ryu-ofp-listen-host=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("faucet.stderr")).unwrap())
            .spawn()
            .expect("faucet");
        Faucet {
            child,
            dir: dir.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!(
            "faucet.log:\n{}\nexceptions:\n{}\nstderr:\n{}",
            read("faucet.log"),
            read("faucet_exception.log"),
            read("faucet.stderr")
        )
    }
}

impl Drop for Faucet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tutorial's switch: ports 1-3 in VLAN 100, 4-5 in VLAN 200.
const SWITCHING: &str = "
dps:
    switch-1:
        dp_id: 0x1
        hardware: Open vSwitch
        timeout: 3600
        arp_neighbor_timeout: 1200
        interfaces:
            1:
                native_vlan: 100
            2:
                native_vlan: 100
            3:
                native_vlan: 100
            4:
                native_vlan: 200
            5:
                native_vlan: 200
vlans:
    100:
    200:
";

/// Waits for `pred` on `odpx ctl dump-flows`; returns the last dump.
fn flows_until(d: &Daemon, faucet: &Faucet, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        let f = d.ctl("dump-flows");
        if pred(&f) {
            return f;
        }
        assert!(t.elapsed() < DEADLINE, "{what} within {DEADLINE:?}:\n{f}\n{}\n{}", d.log(), faucet.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn openflow_section(d_tag_dir: &Path) -> String {
    format!(
        "[openflow]\ncontroller = \"tcp:127.0.0.1:{OF_PORT}\"\nlisten = \"punix:{}\"\ndatapath_id = \"0x1\"\nfail_mode = \"secure\"\nmax_backoff_ms = 200\n",
        d_tag_dir.join("odpx.mgmt").display()
    )
}

/// The tutorial's switching section: hosts in one VLAN reach each other
/// (ARP flooded, then unicast on learned rules), hosts in two do not;
/// Faucet's learned-host rules appear; `ovs-ofctl` reads the same rules.
fn faucet_switches_the_tutorials_vlans() {
    let dir = std::env::temp_dir().join(format!("odpx-faucet-{}", std::process::id()));
    let mgmt_dir = dir.clone();
    let d = Daemon::start_with("fa", 5, "", move |_, _| openflow_section(&mgmt_dir));
    let faucet = Faucet::start(&d.sb.switch, &dir, SWITCHING);
    // Faucet's pipeline: the flood table's broadcast rules per VLAN.
    flows_until(&d, &faucet, "Faucet's rules", |f| {
        f.contains("dl_vlan=100,dl_dst=ff:ff:ff:ff:ff:ff actions=pop_vlan,output:1,output:2,output:3")
            && f.contains("dl_vlan=200,dl_dst=ff:ff:ff:ff:ff:ff actions=pop_vlan,output:4,output:5")
    });
    // Same VLAN: answers (the first ones teach Faucet the hosts).
    assert!(echo_count(d.host(1), "10.0.0.2", 10) >= 8, "{}\n{}", d.log(), faucet.log());
    assert!(echo_count(d.host(4), "10.0.0.5", 10) >= 8, "{}", faucet.log());
    // Two VLANs: nothing crosses.
    assert_eq!(echo_count(d.host(1), "10.0.0.4", 3), 0, "VLAN 100 to 200");
    // Faucet learned the hosts: eth_src and eth_dst rules with idle timeouts.
    let flows = flows_until(&d, &faucet, "learned hosts", |f| {
        f.lines().filter(|l| l.contains("idle_timeout=") && l.contains("table=2")).count() >= 4
    });
    assert!(flows.contains("cookie=0x5adc15c0"), "{flows}");
    // ovs-ofctl reads the same rules over the passive socket, and odpx
    // ctl prints them as ovs-ofctl does (but for the counters and ages,
    // read a moment apart).
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "dump-flows"])
        .arg(format!("unix:{}", dir.join("odpx.mgmt").display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ofctl = String::from_utf8_lossy(&out.stdout).into_owned();
    let flows = d.ctl("dump-flows");
    assert_eq!(rule_lines(&ofctl), rule_lines(&flows), "ovs-ofctl:\n{ofctl}\nodpx:\n{flows}");
    drop(faucet);
    let _ = sh(&["rm", "-rf", dir.to_str().unwrap()]);
}

/// The rule lines of a dump, without their ages and counters, sorted.
fn rule_lines(dump: &str) -> Vec<String> {
    let mut v: Vec<String> = dump
        .lines()
        .filter(|l| l.contains("actions="))
        .map(|l| {
            l.trim()
                .split(", ")
                .filter(|p| !p.starts_with("duration=") && !p.starts_with("n_packets=") && !p.starts_with("n_bytes="))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    v.sort();
    v
}

odpx_tests::cases! {
    [odpx_tests::harness::NETNS, odpx_tests::harness::FAUCET, odpx_tests::harness::OVS_OFCTL] => faucet_switches_the_tutorials_vlans;
}
