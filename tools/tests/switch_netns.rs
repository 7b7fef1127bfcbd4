//! The switch daemon (`odpx run`) on AF_XDP ports, in network namespaces,
//! with real traffic (ping and UDP echo through the switch). Needs root;
//! skips locally without it and fails in CI.

mod common;

use common::Daemon;
use odpx_control::ctl::request_line as request;
use odpx_tools::sandbox::{self, echo_count, echo_count_with, sh, Echo};
use std::process::Command;
use std::time::{Duration, Instant};

fn learning_switch_forwards_and_stops_cleanly() {
    let mut d = Daemon::start("a", 3, "priority=0,actions=NORMAL");
    assert_eq!(echo_count(d.host(1), "10.0.0.2", 10), 10, "{}", d.log());
    assert_eq!(echo_count(d.host(3), "10.0.0.1", 5), 5);
    let macs = d.ctl("mac-table");
    assert_eq!(macs.lines().count(), 4, "three hosts learned:\n{macs}");
    let mf = d.ctl("dump-megaflows");
    assert!(
        mf.lines().any(|l| l.contains("packets:") && l.contains("actions:2")),
        "{mf}"
    );
    let stats = d.ctl("pmd-stats-show");
    assert!(stats.contains("lost upcalls: 0"), "{stats}");
    let show = d.ctl("show");
    assert!(show.contains("port 1: s1 (afxdp, 1 queue(s))"), "{show}");
    // The kernel's own AF_XDP counters, one line per port; nothing lost.
    let kernel: Vec<&str> = show.lines().filter(|l| l.trim_start().starts_with("kernel ")).collect();
    assert_eq!(kernel.len(), 3, "{show}");
    assert!(
        kernel.iter().all(|l| l.contains("rx_dropped:0 rx_ring_full:0")),
        "{show}"
    );
    assert!(show.contains("dropped_full:0"), "{show}");
    let status = d.stop();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}\n{}", d.log());
    assert!(!d.socket.exists(), "control socket removed");
    let link = Command::new("ip")
        .args(["-n", &d.sb.switch, "link", "show", "s1"])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(!link.contains("xdp"), "no XDP program left behind:\n{link}");
}

fn ping_crosses_the_switch_where_the_rules_let_icmp_through() {
    // Only ARP and ICMP pass: ping answers, UDP echo does not, and the
    // megaflows show the switch classified on the IP protocol.
    let rules = "priority=10,arp,actions=NORMAL\npriority=10,icmp,actions=NORMAL\npriority=0,actions=drop";
    let d = Daemon::start("p", 2, rules);
    assert_eq!(echo_count_with(Echo::Icmp, d.host(1), "10.0.0.2", 5), 5, "{}", d.log());
    assert_eq!(echo_count(d.host(1), "10.0.0.2", 2), 0, "UDP is dropped");
    let mf = d.ctl("dump-megaflows");
    assert!(
        mf.lines().any(|l| l.contains("proto=1") && l.contains("actions:")),
        "an ICMP megaflow:\n{mf}"
    );
    assert!(
        mf.lines()
            .any(|l| l.contains("proto=17") && l.ends_with("actions:drop")),
        "a UDP drop megaflow:\n{mf}"
    );
    // The real `ping` (iputils, installed by tools/test.sh) agrees.
    {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                d.host(2),
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "1",
                "10.0.0.1",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains(" 0% packet loss"), "{text}");
    }
}

fn rules_forward_drop_and_change_live() {
    let d = Daemon::start("b", 2, "priority=0,actions=NORMAL");
    assert_eq!(echo_count(d.host(1), "10.0.0.2", 5), 5);
    assert_eq!(d.ctl("add-flow priority=100,udp,tp_dst=7,actions=drop"), "");
    assert_eq!(
        echo_count(d.host(1), "10.0.0.2", 5),
        0,
        "the drop rule takes effect at once"
    );
    assert!(d.ctl("pmd-stats-show").contains("revalidated:"));
    assert_eq!(d.ctl("del-flows udp,tp_dst=7"), "1 rules deleted\n");
    assert_eq!(echo_count(d.host(1), "10.0.0.2", 5), 5, "and goes away at once");
    let bad = request(&d.socket, "add-flow priority=1,nw_dst=10.0.0.1,actions=drop");
    assert!(
        bad.is_err_and(|e| e.contains("no rule added")),
        "a bad rule is refused whole"
    );
}

/// Sends raw `frames` with AF_XDP from namespace `from` and returns the
/// frames with source MAC `src` that AF_XDP captures in namespace `to`.
fn exchange(from: &str, frames: &[Vec<u8>], to: &str, src: [u8; 6]) -> Vec<Vec<u8>> {
    use odpx_dataplane::sys::fd::ifindex;
    use odpx_dataplane::sys::xsk::XskSocket;
    use odpx_dataplane::xdp::RedirectProgram;
    let (to, from) = (to.to_string(), from.to_string());
    let want = frames.len();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let rx = std::thread::spawn(move || {
        assert!(sandbox::enter(&to));
        let i = ifindex("eth0").unwrap();
        let prog = RedirectProgram::attach(i, 1).unwrap();
        let mut s = XskSocket::bind(i, 0).unwrap();
        prog.register(0, &s).unwrap();
        ready_tx.send(()).unwrap();
        let mut got = Vec::new();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) && got.len() < want {
            s.receive(32, |f| {
                if f.len() >= 12 && f[6..12] == src {
                    got.push(f.to_vec());
                }
            });
            std::thread::sleep(Duration::from_millis(1));
        }
        got
    });
    ready_rx.recv().unwrap();
    let sent = frames.to_vec();
    std::thread::spawn(move || {
        assert!(sandbox::enter(&from));
        let i = ifindex("eth0").unwrap();
        let _prog = RedirectProgram::attach(i, 1).unwrap();
        let mut s = XskSocket::bind(i, 0).unwrap();
        s.transmit(sent.len(), |i, frame| {
            frame[..sent[i].len()].copy_from_slice(&sent[i]);
            Some(sent[i].len())
        });
        std::thread::sleep(Duration::from_millis(300));
        s.reap_completions();
    })
    .join()
    .unwrap();
    let mut got = rx.join().unwrap();
    got.sort();
    got
}

fn udp_frame(src: [u8; 6], vlan: Option<u16>) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(src, [0xff; 6]);
    let mut f = Vec::new();
    match vlan {
        Some(v) => b
            .single_vlan(etherparse::VlanId::try_new(v).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1234, 9)
            .write(&mut f, b"tagged?")
            .unwrap(),
        None => b
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1234, 9)
            .write(&mut f, b"tagged?")
            .unwrap(),
    }
    f
}

fn vlan_is_pushed_and_popped_on_the_far_side() {
    let rules = "priority=10,in_port=1,actions=mod_vlan_vid:10,output:2\npriority=10,in_port=2,dl_vlan=10,actions=strip_vlan,output:1";
    let d = Daemon::start("c", 2, rules);
    let (a, b) = ([2, 0, 0, 0, 0, 0x11], [2, 0, 0, 0, 0, 0x22]);
    // Untagged from h1 arrives at h2 tagged with VLAN 10.
    let got = exchange(d.host(1), &[udp_frame(a, None)], d.host(2), a);
    assert_eq!(got, vec![udp_frame(a, Some(10))], "{}", d.ctl("dump-megaflows"));
    // Tagged VLAN 10 from h2 arrives at h1 untagged.
    let got = exchange(d.host(2), &[udp_frame(b, Some(10))], d.host(1), b);
    assert_eq!(got, vec![udp_frame(b, None)], "{}", d.ctl("dump-megaflows"));
    let mf = d.ctl("dump-megaflows");
    assert!(mf.contains("push_vlan(vid=10,pcp=0),2"), "{mf}");
    assert!(mf.contains("pop_vlan,1"), "{mf}");
}

fn a_deleted_interface_is_reported_and_a_re_created_one_or_a_link_back_up_rejoins_by_itself() {
    let d = Daemon::start("d", 3, "priority=0,actions=NORMAL");
    assert_eq!(echo_count(d.host(1), "10.0.0.2", 3), 3);
    sh(&["ip", "-n", &d.sb.switch, "link", "del", "s3"]).unwrap();
    let t = Instant::now();
    while !d.log().contains("port 3 (s3): the interface is gone") {
        assert!(t.elapsed() < Duration::from_secs(5), "{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(d
        .ctl("show")
        .contains("port 3: s3 (afxdp, 1 queue(s)) (interface gone)"));
    assert_eq!(echo_count(d.host(1), "10.0.0.2", 5), 5, "the rest still switches");
    // The interface re-created under the same name (with host 3 behind
    // it again): the port is opened again by itself and switches.
    odpx_tools::sandbox::veth_pair(&d.sb.switch, "s3", d.host(3), "eth0").unwrap();
    let h3 = d.host(3).to_string();
    std::thread::spawn(move || {
        assert!(odpx_tools::sandbox::enter(&h3));
        odpx_offload::ethtool::disable_tx_checksum("eth0").unwrap();
    })
    .join()
    .unwrap();
    sh(&["ip", "-n", d.host(3), "addr", "add", "10.0.0.3/24", "dev", "eth0"]).unwrap();
    sh(&["ip", "-n", d.host(3), "link", "set", "eth0", "up"]).unwrap();
    sh(&["ip", "-n", &d.sb.switch, "link", "set", "s3", "up"]).unwrap();
    // Back in the switch: at once if the watch saw it up, or once its link
    // comes up if the kernel's notice came while it was still down.
    let t = Instant::now();
    while !(d
        .log()
        .contains("port 3 (s3): the interface is back: opened again, back in the switch")
        || d.log().contains("port 3 (s3): link up; back in the switch"))
    {
        assert!(t.elapsed() < Duration::from_secs(10), "port 3 not back:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(echo_count(d.host(3), "10.0.0.1", 3), 3, "{}", d.log());
    let show = d.ctl("show");
    assert!(show.contains("link: down 1 time(s), opened again 1 time(s)"), "{show}");
    // A link that goes down and comes back up.
    sh(&["ip", "-n", &d.sb.switch, "link", "set", "s2", "down"]).unwrap();
    wait_for_log(&d, "port 2 (s2): link down; out of the switch until it is up");
    sh(&["ip", "-n", &d.sb.switch, "link", "set", "s2", "up"]).unwrap();
    wait_for_log(&d, "port 2 (s2): link up; back in the switch");
    assert_eq!(echo_count(d.host(1), "10.0.0.2", 3), 3, "{}", d.log());
    let json = d.ctl("--json show");
    assert!(json.contains("\"link_down\": 1"), "{json}");
}

/// A fast-failover group follows a real link: port 2 while its link is
/// up, port 3 once it goes down (the kernel's notice, no controller), and
/// port 2 again once it is back; megaflows of before are revalidated.
fn a_fast_failover_group_follows_a_link_down_and_up() {
    let d = Daemon::start("g", 3, "priority=0,actions=NORMAL");
    assert_eq!(
        d.ctl("add-group group_id=1,type=ff,bucket=watch_port:2,actions=output:2,bucket=watch_port:3,actions=output:3"),
        ""
    );
    assert_eq!(
        d.ctl("add-flow priority=100,in_port=1,udp,tp_dst=9,actions=group:1"),
        ""
    );
    let a = [2, 0, 0, 0, 0, 0x31];
    let f = udp_frame(a, None);
    assert_eq!(
        exchange(d.host(1), std::slice::from_ref(&f), d.host(2), a),
        vec![f.clone()]
    );
    sh(&["ip", "-n", &d.sb.switch, "link", "set", "s2", "down"]).unwrap();
    wait_for_log(&d, "port 2 (s2): link down; out of the switch until it is up");
    assert_eq!(
        exchange(d.host(1), std::slice::from_ref(&f), d.host(3), a),
        vec![f.clone()],
        "{}",
        d.ctl("dump-megaflows")
    );
    sh(&["ip", "-n", &d.sb.switch, "link", "set", "s2", "up"]).unwrap();
    wait_for_log(&d, "port 2 (s2): link up; back in the switch");
    assert_eq!(
        exchange(d.host(1), std::slice::from_ref(&f), d.host(2), a),
        vec![f.clone()]
    );
    // The group counted the three. Which bucket a packet that a megaflow
    // carried is credited to is that megaflow's decision when the next
    // sweep read it (port 2's again, if the link came back first), so the
    // buckets are not checked here.
    let stats = d.ctl("dump-group-stats");
    assert!(stats.contains("packet_count=3,"), "{stats}");
}

fn wait_for_log(d: &Daemon, line: &str) {
    let t = Instant::now();
    while !d.log().contains(line) {
        assert!(t.elapsed() < Duration::from_secs(10), "no '{line}' in:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn truncated_and_malformed_frames_are_forwarded_by_a_catch_all_rule() {
    let d = Daemon::start("e", 2, "priority=0,in_port=1,actions=output:2");
    let src = [2, 0, 0, 0, 0, 0x11];
    let hdr = |rest: &[u8]| [&[0xffu8; 6][..], &src, rest].concat();
    let frames = vec![
        hdr(&[0x08, 0x00, 0x45, 0x00]),       // IPv4 cut after two bytes
        hdr(&[0x81, 0x00, 0x00]),             // 802.1Q tag cut in half
        hdr(&[0x00, 0x05]),                   // 802.3 length 5, no payload
        hdr(&[0x86, 0xdd, 0x60, 0, 0, 0, 0]), // IPv6 cut inside the header
    ];
    // (A frame shorter than 14 bytes cannot cross a veth at all; the
    // in-memory switch test covers those.)
    let got = exchange(d.host(1), &frames, d.host(2), src);
    let mut want = frames;
    want.sort();
    assert_eq!(
        got,
        want,
        "every malformed frame crossed the switch unchanged\n{}",
        d.ctl("pmd-stats-show")
    );
}

/// The randomized soak (`odpx-soak`) against the daemon in userspace mode:
/// rule changes, MAC moves, flows starting and stopping and idle pauses,
/// with every frame checked against a fresh translation. Its three ports'
/// far ends are in the switch's namespace, where the soak runs.
fn a_randomized_soak_gets_no_old_decision() {
    let extend = |sb: &mut odpx_tools::sandbox::Sandbox, _: &str| {
        let mut ports = String::new();
        sh(&[
            "ip",
            "netns",
            "exec",
            &sb.switch,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ])
        .unwrap();
        for i in 1..=3 {
            let (port, far) = (format!("sa{i}"), format!("se{i}"));
            sh(&[
                "ip", "-n", &sb.switch, "link", "add", &port, "type", "veth", "peer", "name", &far,
            ])
            .unwrap();
            for dev in [&port, &far] {
                sh(&["ip", "-n", &sb.switch, "link", "set", dev, "up"]).unwrap();
            }
            ports += &format!("[[port]]\nname = \"{port}\"\n");
        }
        ports
    };
    let d = Daemon::start_idle("k", 0, "priority=0,actions=NORMAL", Duration::from_millis(1000), extend);
    let out = Command::new("ip")
        .args(["netns", "exec", &d.sb.switch, env!("CARGO_BIN_EXE_odpx-soak"), "-s"])
        .arg(&d.socket)
        .args(["--port", "1:se1", "--port", "2:se2", "--port", "3:se3"])
        .args(["--seed", "3", "--steps", "25", "--phase", "1", "--idle-ms", "1000"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{}", d.log());
    assert!(text.contains(" 0 wrong, 0 missing"), "{text}");
    assert!(odpx_tests::number(&text, "soak: ") >= 10_000, "{text}");
    let stats = d.ctl("pmd-stats-show");
    assert!(
        odpx_tests::number(&stats, "(moved: ") >= 1,
        "the switch learned a move:\n{stats}\n{text}"
    );
}

/// Twenty `kill -9`s at random moments under traffic (userspace mode):
/// after each, no XDP program is left on the ports, nothing (socket file,
/// lock) blocks the restart, the restart answers within 2 s, and traffic
/// resumes. Hybrid mode's kill -9 runs in the VM (`hybrid_mode.rs`).
fn twenty_kill_9s_under_traffic_leave_nothing_that_blocks_a_restart() {
    let mut d = Daemon::start("n", 2, "priority=0,actions=NORMAL");
    let xdp_left = |d: &Daemon| {
        let out = Command::new("ip")
            .args(["-n", &d.sb.switch, "link", "show"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("xdp")
    };
    assert_eq!(echo_count(d.host(1), "10.0.0.2", 3), 3, "{}", d.log());
    let mut slowest = Duration::ZERO;
    for i in 0..20u64 {
        // Traffic while it dies: a UDP stream, killed at a moment that
        // differs per round (0-190 ms in).
        let stream = {
            let host = d.host(1).to_string();
            std::thread::spawn(move || echo_count(&host, "10.0.0.2", 4))
        };
        std::thread::sleep(Duration::from_millis((i * 37) % 200));
        d.kill9();
        let _ = stream.join();
        assert!(!xdp_left(&d), "round {i}: an XDP program outlived the process");
        let took = d.restart(Duration::from_secs(2));
        slowest = slowest.max(took);
        assert_eq!(
            echo_count(d.host(1), "10.0.0.2", 3),
            3,
            "round {i}: traffic resumes\n{}",
            d.log()
        );
    }
    eprintln!("slowest restart after kill -9: {slowest:?}");
    let status = d.stop();
    assert!(status.success(), "{}", d.log());
    assert!(!xdp_left(&d));
}

odpx_tests::cases! {
    [odpx_tests::harness::NETNS, odpx_tests::harness::PING] => ping_crosses_the_switch_where_the_rules_let_icmp_through;
    [odpx_tests::harness::NETNS] => learning_switch_forwards_and_stops_cleanly, rules_forward_drop_and_change_live, vlan_is_pushed_and_popped_on_the_far_side, a_deleted_interface_is_reported_and_a_re_created_one_or_a_link_back_up_rejoins_by_itself, truncated_and_malformed_frames_are_forwarded_by_a_catch_all_rule, a_fast_failover_group_follows_a_link_down_and_up, a_randomized_soak_gets_no_old_decision, twenty_kill_9s_under_traffic_leave_nothing_that_blocks_a_restart;
}
