//! The benchmark tools on a veth pair in a namespace: `odpx gen` sends at a
//! fixed rate and `odpx sink` counts every frame it sent. Needs root;
//! skips locally without it and fails in CI.

use odpx_tools::sandbox::{self, sh};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sink_counts_every_frame_the_generator_sends() {
    let ns = format!("odpx-gs-{}", std::process::id());
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = sh(&["ip", "netns", "del", &self.0]);
        }
    }
    sh(&["ip", "netns", "add", &ns]).unwrap();
    let _c = Cleanup(ns.clone());
    // No IPv6 autoconfiguration chatter: the sink counts every frame.
    for conf in ["all", "default"] {
        let key = format!("net.ipv6.conf.{conf}.disable_ipv6=1");
        sh(&["ip", "netns", "exec", &ns, "sysctl", "-qw", &key]).unwrap();
    }
    sandbox::veth_pair(&ns, "ga", &ns, "gb").unwrap();
    sh(&["ip", "-n", &ns, "link", "set", "ga", "up"]).unwrap();
    sh(&["ip", "-n", &ns, "link", "set", "gb", "up"]).unwrap();
    let odpx = env!("CARGO_BIN_EXE_odpx");
    let sink = Command::new("ip")
        .args(["netns", "exec", &ns, odpx, "sink", "gb", "--duration", "4", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The sink is ready once its XDP program is on gb.
    let t = Instant::now();
    loop {
        let out = Command::new("ip")
            .args(["-n", &ns, "link", "show", "gb"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("xdp") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "the sink did not attach");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gen = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            odpx,
            "gen",
            "ga",
            "--workload",
            "gateway",
            "--flows",
            "100",
        ])
        .args(["--rate", "20000", "--duration", "1"])
        .output()
        .unwrap();
    let gen_out = String::from_utf8_lossy(&gen.stdout);
    assert!(
        gen.status.success(),
        "{gen_out}{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let sent: u64 = gen_out.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap();
    assert!(
        (19_000..=21_000).contains(&sent),
        "about 20k frames at 20 kpps for 1 s: {gen_out}"
    );
    let sink = sink.wait_with_output().unwrap();
    let sink_out = String::from_utf8_lossy(&sink.stdout);
    assert!(
        sink.status.success(),
        "{sink_out}{}",
        String::from_utf8_lossy(&sink.stderr)
    );
    let got: u64 = sink_out
        .strip_prefix("received ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{sink_out}"));
    assert_eq!(got, sent, "gen: {gen_out}sink: {sink_out}");
    let bytes: u64 = sink_out.split_whitespace().nth(3).and_then(|n| n.parse().ok()).unwrap();
    assert_eq!(bytes, sent * 64, "64-byte frames: {sink_out}");
}

odpx_tests::cases! {
    [odpx_tests::harness::NETNS] => sink_counts_every_frame_the_generator_sends;
}
