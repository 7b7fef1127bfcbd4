//! The `odpx` commands of issue 2, run as a user would.

use etherparse::PacketBuilder;
use odpx_tools::pcap;
use std::io::Write;
use std::process::{Command, Stdio};

fn odpx(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_odpx"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run odpx");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn tmp(name: &str, data: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("odpx-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn normalize_prints_good_lines_and_reports_bad_ones() {
    let input = "in_port(1),eth(),eth_type(0x0800),ipv4(frag=no,src=10.0.0.7/24) actions:2\n\
                 # a comment\n\
                 in_port(1),ipv4(ttl=999)\n\
                 actions:set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2\n";
    let (code, out, err) = odpx(&["odp", "normalize"], input);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,frag=no) actions:2\n\
         actions:set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2\n"
    );
    assert_eq!(err.trim(), "line 3: column 21: value 999 is out of range (max 0xff)");
    // Canonical output is a fixed point.
    let (code, again, _) = odpx(&["odp", "normalize"], &out);
    assert_eq!((code, again), (0, out));
}

#[test]
fn parse_pcap_prints_one_key_per_packet() {
    let mut f = Vec::new();
    pcap::write_header(&mut f, 65535);
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 53)
        .write(&mut frame, b"hi")
        .unwrap();
    pcap::write_packet(&mut f, 0, 0, &frame);
    pcap::write_packet(&mut f, 0, 1, &frame[..20]);
    let path = tmp("two.pcap", &f);
    let (code, out, err) = odpx(&["parse-pcap", &path, "--in-port", "7"], "");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        "recirc_id(0),dp_hash(0),skb_priority(0),in_port(7),skb_mark(0),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1000,dst=53)"
    );
    assert!(
        lines[1].ends_with("eth_type(0x0800),ipv4(src=0.0.0.0,dst=0.0.0.0,proto=0,tos=0,ttl=0,frag=no)"),
        "{}",
        lines[1]
    );
    let bad = tmp("bad.pcap", b"not a capture file at all....");
    let (code, _, err) = odpx(&["parse-pcap", &bad], "");
    assert_eq!(code, 1);
    assert!(err.contains("not a pcap file"), "{err}");
}

#[test]
fn trace_shows_rules_actions_and_megaflow() {
    let rules =
        "table=0,priority=100,tcp,nw_dst=10.0.0.0/8,tp_dst=80,actions=mod_dl_dst:00:00:00:00:00:09,resubmit(,1)\n\
                 table=0,priority=1,actions=drop\n\
                 table=1,priority=5,actions=output:2\n";
    let path = tmp("rules.txt", rules.as_bytes());
    let key = "in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=192.168.0.1,dst=10.1.2.3,proto=6,tos=0,ttl=64,frag=no),tcp(src=5555,dst=80)";
    let (code, out, err) = odpx(&["trace", "--rules", &path, key], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("table 0: table=0, priority=100,tcp,nw_dst=10.0.0.0/8,tp_dst=80 actions=set_field:00:00:00:00:00:09->eth_dst,resubmit(,1)"), "{out}");
    assert!(
        out.contains("    table 1: table=1, priority=5 actions=output:2"),
        "{out}"
    );
    assert!(
        out.contains("Datapath actions: set(eth(dst=00:00:00:00:00:09)),2"),
        "{out}"
    );
    assert!(
        out.contains("Megaflow: in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0,proto=6),tcp(dst=80)"),
        "{out}"
    );

    let broken = tmp(
        "broken.txt",
        b"priority=1,actions=output:1\npriority=2,tp_dst=80,actions=drop\n",
    );
    let (code, out, err) = odpx(&["trace", "--rules", &broken, key], "");
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("broken.txt:2: column 1: tp_dst needs tcp, udp or sctp"),
        "{err}"
    );
    assert!(err.contains("no rules loaded"), "{err}");
}
