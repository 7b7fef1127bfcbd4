//! `odpx demo`, the README's first command: it forwards ping and UDP echo
//! round trips through the switch, prints live statistics and a summary,
//! and removes its sandbox on normal exit and on Ctrl-C. Needs root; skips
//! locally without it and fails in CI.

use odpx_tools::sandbox;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn demo(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_odpx"))
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("odpx demo")
}

/// The namespaces a demo with process id `pid` creates that still exist.
fn leftover_namespaces(pid: u32) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.starts_with("odpx-") && ns.ends_with(&format!("-{pid}")))
        .map(str::to_string)
        .collect()
}

/// Checks the summary's round-trip lines: every host pings and echoes its
/// neighbour, and all but at most the first request of each are answered.
fn check_round_trips(summary: &str) {
    for kind in ["ping", "UDP echo"] {
        let lines = odpx_tests::demo_round_trips(summary, kind);
        assert_eq!(lines.len(), 3, "one {kind} line per host:\n{summary}");
        for (l, got, sent) in lines {
            assert!(sent >= 5 && got + 1 >= sent, "{l}\n{summary}");
        }
    }
}

fn demo_forwards_round_trips_and_removes_its_sandbox() {
    let child = demo(&["--duration", "3"]);
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("rx pps"), "live statistics header:\n{stdout}");
    assert!(
        stdout.lines().any(|l| l.trim_start().starts_with("2s ")),
        "a live line per second:\n{stdout}"
    );
    check_round_trips(&stdout);
    // The VXLAN site: both ways across the tunnel, counted on vx0.
    let vxlan = odpx_tests::demo_round_trips(&stdout, "VXLAN ping")
        .into_iter()
        .chain(odpx_tests::demo_round_trips(&stdout, "VXLAN UDP echo"))
        .collect::<Vec<_>>();
    assert_eq!(vxlan.len(), 3, "three VXLAN round trips:\n{stdout}");
    for (l, got, sent) in vxlan {
        assert!(sent >= 5 && got + 1 >= sent, "{l}\n{stdout}");
    }
    let counts = stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("VXLAN: "))
        .unwrap_or_else(|| panic!("VXLAN totals:\n{stdout}"));
    let nums: Vec<u64> = counts.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(nums.len() == 2 && nums[0] > 1000 && nums[1] > 10, "{counts}");
    assert!(stdout.contains("encap pps"), "{stdout}");
    assert!(!stdout.contains("interface gone"), "{stdout}");
    assert!(stdout.contains("megaflow hits:"), "PMD statistics:\n{stdout}");
    assert!(stdout.trim_end().ends_with("sandbox removed"), "{stdout}");
    assert_eq!(leftover_namespaces(pid), Vec::<String>::new());
}

fn demo_stopped_by_ctrl_c_still_prints_its_summary_and_removes_its_sandbox() {
    let mut child = demo(&[]);
    let pid = child.id();
    // Wait for the second live line, so traffic has flowed for a while.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let t = Instant::now();
    while !seen.lines().any(|l| l.trim_start().starts_with("2s ")) {
        assert!(t.elapsed() < Duration::from_secs(30), "no live lines:\n{seen}");
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!("demo ended early:\n{seen}");
        }
        seen.push_str(&line);
    }
    assert!(!leftover_namespaces(pid).is_empty(), "the sandbox exists while it runs");
    sandbox::sh(&["kill", "-INT", &pid.to_string()]).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{seen}{rest}");
    check_round_trips(&rest);
    assert!(rest.trim_end().ends_with("sandbox removed"), "{rest}");
    assert_eq!(leftover_namespaces(pid), Vec::<String>::new());
}

odpx_tests::cases! {
    [odpx_tests::harness::NETNS] => demo_forwards_round_trips_and_removes_its_sandbox, demo_stopped_by_ctrl_c_still_prints_its_summary_and_removes_its_sandbox;
}
