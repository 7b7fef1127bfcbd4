//! odpx programmed by Faucet (the controller of Open vSwitch's Faucet
//! tutorial, `../shared/reference/faucet-tutorial.md`), on AF_XDP ports in
//! network namespaces, with real traffic: the tutorial's switching walk
//! (VLANs, MAC learning through packet-ins, flooding that skips the
//! ingress port), and the same rules seen through `ovs-ofctl`.
//!
//! Faucet runs in the switch's namespace (it listens on that loopback),
//! from the venv `tools/test.sh` makes (`target/faucet-venv`).

mod common;

use common::faucet::{Faucet, OF_PORT};
use common::Daemon;
use odpx_tests::pki::Pki;
use odpx_tools::sandbox::{echo_count, echo_count_with, sh, Echo};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

/// Faucet's TLS (os-ken's options): the key and certificate of `who`
/// (ctl, or rogue: signed by no CA), switches' certificates checked
/// against the switch CA.
fn tls_args(pki: &Pki, who: &str) -> Vec<String> {
    vec![
        format!("--ryu-ctl-privkey={}", pki.key(who).display()),
        format!("--ryu-ctl-cert={}", pki.cert(who).display()),
        format!("--ryu-ca-certs={}", pki.switch_ca().display()),
        format!("--ryu-ofp-ssl-listen-port={OF_PORT}"),
    ]
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

/// The tutorial's routing: a router IP on each VLAN, a router between.
/// `acl` adds port 1's ACL (`acl_in: 1`) and `vlan3` puts port 3 in
/// that VLAN.
fn routing(acl: &str, vlan3: u16) -> String {
    let acl_in = if acl.is_empty() {
        ""
    } else {
        "\n                acl_in: 1"
    };
    format!(
        "
dps:
    switch-1:
        dp_id: 0x1
        hardware: Open vSwitch
        timeout: 3600
        arp_neighbor_timeout: 1200
        interfaces:
            1:
                native_vlan: 100{acl_in}
            2:
                native_vlan: 100
            3:
                native_vlan: {vlan3}
            4:
                native_vlan: 200
            5:
                native_vlan: 200
vlans:
    100:
        faucet_vips: [\"10.100.0.254/24\"]
    200:
        faucet_vips: [\"10.200.0.254/24\"]
routers:
    router-1:
        vlans: [100, 200]
{acl}"
    )
}

/// Port 1's ACL: UDP to the echo port is dropped, the rest allowed.
const ACL: &str = "
acls:
    1:
        - rule:
            dl_type: 0x800
            nw_proto: 17
            udp_dst: 7
            actions:
                allow: 0
        - rule:
            actions:
                allow: 1
";

/// Moves host `i` into the routed addressing: 10.100.0.i/24 (VLAN 100)
/// or 10.200.0.i/24, its default route the VLAN's router IP.
fn readdress(d: &Daemon, i: usize, net: u8) {
    let h = d.host(i);
    sh(&["ip", "-n", h, "addr", "flush", "dev", "eth0"]).unwrap();
    let addr = format!("10.{net}.0.{i}/24");
    sh(&["ip", "-n", h, "addr", "add", &addr, "dev", "eth0"]).unwrap();
    let via = format!("10.{net}.0.254");
    sh(&["ip", "-n", h, "route", "replace", "default", "via", &via]).unwrap();
}

/// Echo answers within the deadline (the first few may go while Faucet
/// resolves next hops): at least one of a burst, tried until it comes.
fn reaches(kind: Echo, ns: &str, dst: &str) -> bool {
    let t = Instant::now();
    while t.elapsed() < DEADLINE {
        if echo_count_with(kind, ns, dst, 3) > 0 {
            return true;
        }
    }
    false
}

/// Routing between the VLANs through Faucet's router IPs (ARP for them
/// answered with packet-outs, next hops resolved by the controller),
/// then a port ACL loaded by a configuration reload (SIGHUP), a port
/// going down and up, and Faucet killed and started again with port 3
/// in the other VLAN: traffic follows, and no rule of the old
/// configuration stays.
fn faucet_routes_reloads_and_restarts() {
    let dir = std::env::temp_dir().join(format!("odpx-faucet-r-{}", std::process::id()));
    let mgmt_dir = dir.clone();
    let d = Daemon::start_with("fr", 5, "", move |_, _| openflow_section(&mgmt_dir, None));
    for (i, net) in [(1, 100), (2, 100), (3, 100), (4, 200), (5, 200)] {
        readdress(&d, i, net);
    }
    let mut faucet = Faucet::start(&d.sb.switch, &dir, &routing("", 100));
    flows_until(&d, &faucet, "Faucet's router", |f| {
        f.contains("arp_tpa=10.100.0.254 actions=CONTROLLER")
    });
    // The router IP answers ping (Faucet itself, by packet-out), and
    // routed traffic crosses the VLANs both ways.
    assert!(reaches(Echo::Icmp, d.host(1), "10.100.0.254"), "{}", faucet.log());
    assert!(
        reaches(Echo::Udp, d.host(1), "10.200.0.4"),
        "{}\n{}",
        d.ctl("dump-flows"),
        faucet.log()
    );
    assert!(reaches(Echo::Udp, d.host(5), "10.100.0.2"), "{}", faucet.log());
    // What Faucet installed is what the forwarding bench loads for its
    // hosts (tools/faucet-bench.sh, `odpx workload --faucet-hosts`).
    check_bench_rules(&d.ctl("dump-flows"));
    // The ACL, by a configuration reload.
    std::fs::write(dir.join("faucet.yaml"), routing(ACL, 100)).unwrap();
    sh(&["kill", "-HUP", &faucet.child.id().to_string()]).unwrap();
    flows_until(&d, &faucet, "the ACL", |f| {
        f.contains("udp,in_port=1,tp_dst=7 actions=drop")
    });
    assert_eq!(
        echo_count(d.host(1), "10.100.0.2", 3),
        0,
        "port 1's UDP echo is dropped"
    );
    assert!(reaches(Echo::Icmp, d.host(1), "10.100.0.2"), "ICMP still passes");
    assert!(
        reaches(Echo::Udp, d.host(2), "10.100.0.1"),
        "the answers to port 2 still pass"
    );
    // Port 2 goes down and comes back: Faucet hears it (PORT_STATUS) and
    // takes its ingress rule out, then puts it back.
    let port2_in = "in_port=2 actions=goto_table:1";
    sh(&["ip", "-n", &d.sb.switch, "link", "set", "s2", "down"]).unwrap();
    flows_until(&d, &faucet, "port 2's rules out", |f| !f.contains(port2_in));
    sh(&["ip", "-n", &d.sb.switch, "link", "set", "s2", "up"]).unwrap();
    flows_until(&d, &faucet, "port 2's rules back", |f| f.contains(port2_in));
    assert!(reaches(Echo::Udp, d.host(3), "10.100.0.2"), "{}", faucet.log());
    // Faucet dies; a new one with port 3 in VLAN 200 takes over.
    drop(faucet);
    readdress(&d, 3, 200);
    faucet = Faucet::start(&d.sb.switch, &dir, &routing("", 200));
    let old_port3 = "in_port=3,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,set_field:4196->vlan_vid";
    flows_until(&d, &faucet, "port 3 in VLAN 200", |f| {
        f.contains("in_port=3,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,set_field:4296->vlan_vid")
            && !f.contains(old_port3)
    });
    assert!(reaches(Echo::Udp, d.host(3), "10.200.0.4"), "{}", faucet.log());
    assert!(reaches(Echo::Udp, d.host(3), "10.100.0.1"), "routed to its old VLAN");
    drop(faucet);
    let _ = sh(&["rm", "-rf", dir.to_str().unwrap()]);
}

/// The Faucet workload of the forwarding bench, for this test's layout
/// and the hosts that Faucet learned (`priority=8191` eth_src rules) and
/// resolved (FIB entries), is the rule set in `dump`, line for line but
/// for the timeouts' jitter.
fn check_bench_rules(dump: &str) {
    let mut hosts = Vec::new();
    for line in dump.lines().filter(|l| l.contains("priority=8191,in_port=")) {
        let field = |name: &str| {
            let at = line.find(&format!(",{name}=")).unwrap() + name.len() + 2;
            line[at..].split([',', ' ']).next().unwrap().to_string()
        };
        let port: u32 = field("in_port").parse().unwrap();
        let vlan: u16 = field("dl_vlan").parse().unwrap();
        let ip = std::net::Ipv4Addr::new(10, vlan as u8, 0, port as u8);
        hosts.push(odpx_tools::faucet_workload::Host {
            port,
            vlan,
            mac: odpx_classifier::text::parse_mac(&field("dl_src")).unwrap(),
            ip,
            routed: dump.contains(&format!("nw_dst={ip} actions=dec_ttl")),
        });
    }
    assert!(hosts.len() >= 4, "the hosts of the routed echoes:\n{dump}");
    let vip = |vlan: u16| odpx_tools::faucet_workload::Vip {
        vlan,
        ip: std::net::Ipv4Addr::new(10, vlan as u8, 0, 254),
        prefix: 24,
    };
    let layout = odpx_tools::faucet_workload::Layout {
        ports: vec![(1, 100), (2, 100), (3, 100), (4, 200), (5, 200)],
        vips: vec![vip(100), vip(200)],
        hosts,
    };
    let jitterless = |lines: Vec<String>| -> Vec<String> {
        let mut v: Vec<String> = lines
            .iter()
            .map(|l| {
                l.split(", ")
                    .map(|p| match p.split_once('=') {
                        Some((k @ ("hard_timeout" | "idle_timeout"), _)) => format!("{k}=T"),
                        _ => p.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        jitterless(rule_lines(dump)),
        jitterless(layout.rules()),
        "Faucet's rules are the bench's"
    );
}

/// Waits for `pred` on `odpx ctl dump-flows`; returns the last dump.
fn flows_until(d: &Daemon, faucet: &Faucet, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        let f = d.ctl("dump-flows");
        if pred(&f) {
            return f;
        }
        assert!(
            t.elapsed() < DEADLINE,
            "{what} within {DEADLINE:?}:\n{f}\n{}\n{}",
            d.log(),
            faucet.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `[openflow]` for Faucet on this namespace's loopback (`ssl:` with
/// `pki`'s switch certificate, `tcp:` without); `ovs-ofctl`'s socket in
/// `dir`.
fn openflow_section(dir: &Path, pki: Option<&Pki>) -> String {
    let scheme = if pki.is_some() { "ssl" } else { "tcp" };
    format!(
        "[openflow]\ncontroller = \"{scheme}:127.0.0.1:{OF_PORT}\"\nlisten = \"punix:{}\"\ndatapath_id = \"0x1\"\nfail_mode = \"secure\"\nmax_backoff_ms = 200\n{}",
        dir.join("odpx.mgmt").display(),
        pki.map(Pki::switch_section).unwrap_or_default()
    )
}

/// The tutorial's switching section, over TLS with `ovs-pki`'s
/// certificates (`../shared/reference/ssl.md`): a controller whose
/// certificate no CA signed is refused, and the log says why; then hosts
/// in one VLAN reach each other (ARP flooded, then unicast on learned
/// rules), hosts in two do not; Faucet's learned-host rules appear;
/// `ovs-ofctl` reads the same rules.
fn faucet_switches_the_tutorials_vlans() {
    let dir = std::env::temp_dir().join(format!("odpx-faucet-{}", std::process::id()));
    let pki = Pki::make(&dir.join("pki"));
    let section = openflow_section(&dir, Some(&pki));
    let d = Daemon::start_with("fa", 5, "", move |_, _| section);
    let rogue = Faucet::start_with(&d.sb.switch, &dir, SWITCHING, &tls_args(&pki, "rogue"));
    let t = Instant::now();
    while !d.log().contains("invalid peer certificate") {
        assert!(
            t.elapsed() < DEADLINE,
            "the rogue refused:\n{}\n{}",
            d.log(),
            rogue.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!d.ctl("dump-flows").contains("actions="), "the rogue programmed odpx");
    drop(rogue);
    let faucet = Faucet::start_with(&d.sb.switch, &dir, SWITCHING, &tls_args(&pki, "ctl"));
    // Faucet's pipeline: the flood table's broadcast rules per VLAN.
    flows_until(&d, &faucet, "Faucet's rules", |f| {
        f.contains("dl_vlan=100,dl_dst=ff:ff:ff:ff:ff:ff actions=pop_vlan,output:1,output:2,output:3")
            && f.contains("dl_vlan=200,dl_dst=ff:ff:ff:ff:ff:ff actions=pop_vlan,output:4,output:5")
    });
    // The pipeline Faucet installs is the one the kernel-mode VM test
    // pushes back with ovs-ofctl (tools/tests/faucet_vm.rs).
    check_pipeline_fixture(&ofctl_dump(&dir));
    // Same VLAN: answers, once the first ones taught Faucet the hosts
    // (its packet-ins and rules take a moment on a loaded machine).
    assert!(reaches(Echo::Udp, d.host(1), "10.0.0.2"), "{}", faucet.log());
    assert!(
        echo_count(d.host(1), "10.0.0.2", 10) >= 8,
        "{}\n{}",
        d.log(),
        faucet.log()
    );
    assert!(echo_count(d.host(4), "10.0.0.5", 10) >= 8, "{}", faucet.log());
    // Two VLANs: nothing crosses.
    assert_eq!(echo_count(d.host(1), "10.0.0.4", 3), 0, "VLAN 100 to 200");
    // Faucet learned the hosts: eth_src and eth_dst rules with idle timeouts.
    let flows = flows_until(&d, &faucet, "learned hosts", |f| {
        f.lines()
            .filter(|l| l.contains("idle_timeout=") && l.contains("table=2"))
            .count()
            >= 4
    });
    assert!(flows.contains("cookie=0x5adc15c0"), "{flows}");
    // ovs-ofctl reads the same rules over the passive socket, and odpx
    // ctl prints them as ovs-ofctl does (but for the counters and ages,
    // read a moment apart).
    let ofctl = ofctl_dump(&dir);
    let flows = d.ctl("dump-flows");
    assert_eq!(
        rule_lines(&ofctl),
        rule_lines(&flows),
        "ovs-ofctl:\n{ofctl}\nodpx:\n{flows}"
    );
    drop(faucet);
    let _ = sh(&["rm", "-rf", dir.to_str().unwrap()]);
}

/// Faucet with `group_table: True` floods through OpenFlow groups: an
/// `all` group per VLAN (its GROUP_MODs) and flood rules that send to
/// them. Hosts of a VLAN reach each other through them (ARP floods), not
/// across VLANs; the groups count what they flooded; `ovs-ofctl
/// dump-groups` and `odpx ctl dump-groups` print the same lines.
fn faucet_floods_through_groups() {
    let dir = std::env::temp_dir().join(format!("odpx-faucet-g-{}", std::process::id()));
    let mgmt_dir = dir.clone();
    let d = Daemon::start_with("fg", 5, "", move |_, _| openflow_section(&mgmt_dir, None));
    let yaml = SWITCHING.replace(
        "        timeout: 3600\n",
        "        timeout: 3600\n        group_table: True\n",
    );
    let faucet = Faucet::start(&d.sb.switch, &dir, &yaml);
    flows_until(&d, &faucet, "Faucet's flood rules to groups", |f| {
        f.contains("dl_vlan=100,dl_dst=ff:ff:ff:ff:ff:ff actions=group:")
            && f.contains("dl_vlan=200,dl_dst=ff:ff:ff:ff:ff:ff actions=group:")
    });
    let groups = d.ctl("dump-groups");
    assert!(
        groups.contains("type=all,bucket=actions=pop_vlan,output:1"),
        "{groups}\n{}",
        faucet.log()
    );
    assert!(reaches(Echo::Udp, d.host(1), "10.0.0.2"), "{}", faucet.log());
    assert!(echo_count(d.host(1), "10.0.0.3", 10) >= 8, "{}", faucet.log());
    assert_eq!(echo_count(d.host(1), "10.0.0.4", 3), 0, "VLAN 100 to 200");
    let stats = d.ctl("dump-group-stats");
    assert!(
        stats.lines().any(|l| !l.contains("packet_count=0,")),
        "the flood groups counted the ARP broadcasts:\n{stats}"
    );
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "dump-groups"])
        .arg(format!("unix:{}", dir.join("odpx.mgmt").display()))
        .output()
        .unwrap();
    let ofctl = String::from_utf8_lossy(&out.stdout);
    let lines = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with(" group_id="))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(&ofctl), lines(&groups), "ovs-ofctl:\n{ofctl}\nodpx:\n{groups}");
    drop(faucet);
    let _ = sh(&["rm", "-rf", dir.to_str().unwrap()]);
}

/// `ovs-ofctl dump-flows` over the passive socket in `dir`.
fn ofctl_dump(dir: &Path) -> String {
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "--no-names", "dump-flows"])
        .arg(format!("unix:{}", dir.join("odpx.mgmt").display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Faucet's pipeline for the tutorial's switching, as `ovs-ofctl
/// dump-flows` prints it without ages and counters: the rules without
/// timeouts (those with are hosts it learned).
const PIPELINE_FIXTURE: &str = "tools/tests/data/faucet-switching.flows";

/// The pipeline in `dump` is the fixture's (`ODPX_BLESS=1` writes it
/// instead, when a new Faucet installs another).
fn check_pipeline_fixture(dump: &str) {
    let lines: Vec<String> = rule_lines(dump)
        .into_iter()
        .filter(|l| !l.contains("idle_timeout=") && !l.contains("hard_timeout="))
        .collect();
    let path = odpx_tests::repo().join(PIPELINE_FIXTURE);
    if std::env::var_os("ODPX_BLESS").is_some() {
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    let fixture = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        lines,
        fixture.lines().map(str::to_string).collect::<Vec<_>>(),
        "Faucet's pipeline is not {PIPELINE_FIXTURE} (ODPX_BLESS=1 writes it)"
    );
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
    [odpx_tests::harness::NETNS, odpx_tests::harness::FAUCET, odpx_tests::harness::OVS_OFCTL, odpx_tests::harness::OVS_PKI] => faucet_switches_the_tutorials_vlans;
    [odpx_tests::harness::NETNS, odpx_tests::harness::FAUCET] => faucet_routes_reloads_and_restarts;
    [odpx_tests::harness::NETNS, odpx_tests::harness::FAUCET, odpx_tests::harness::OVS_OFCTL] => faucet_floods_through_groups;
}
