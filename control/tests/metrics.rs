//! The Prometheus endpoint and `ctl --json`, on a switch with in-memory
//! ports: the endpoint's text is read back by an independent parser of the
//! Prometheus format (PyPI's `prometheus_client`, installed by
//! `tools/test.sh`), and the JSON by serde_json.

use odpx_control::config::Config;
use odpx_control::ctl::command;
use odpx_control::metrics;
use odpx_control::switch::Switch;
use odpx_dataplane::port::Port;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A learning switch on two in-memory ports that has forwarded `frames`
/// frames from p1 to p2.
fn switch_with_traffic(frames: usize) -> Arc<Switch> {
    let cfg = Config::parse(
        "[switch]\nrules_inline = [\"priority=0,in_port=1,actions=output:2\"]\n[[port]]\nname = \"p1\"\ntype = \"memory\"\n[[port]]\nname = \"p2\"\ntype = \"memory\"\n[pmd]\ncores = [0]\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        Path::new("/"),
    )
    .unwrap();
    assert_eq!(cfg.metrics.listen, Some("127.0.0.1:0".parse().unwrap()));
    let ports = (1..=2).map(|i| Port::memory(i, &format!("p{i}"), true)).collect();
    let sw = Arc::new(Switch::start_with_ports(&cfg, ports).unwrap());
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 53);
    let mut f = Vec::new();
    b.write(&mut f, &[0u8; 18]).unwrap();
    // The first alone, so that one upcall installs the megaflow the
    // others hit.
    let mut out = 0;
    for (i, batch) in [1, frames - 1].into_iter().enumerate() {
        for _ in 0..batch {
            sw.ports[1].as_ref().unwrap().mem().unwrap().push_rx(f.clone());
        }
        let t = Instant::now();
        let want = if i == 0 { 1 } else { frames };
        while out < want && t.elapsed() < Duration::from_secs(5) {
            out += sw.ports[2].as_ref().unwrap().mem().unwrap().take_tx().len();
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert_eq!(out, frames);
    sw
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}

/// Samples as the Python library parses them: `(name, labels, value)`.
fn parsed_by_prometheus_client(text: &str) -> Vec<(String, String, f64)> {
    let script = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families\nfor fam in text_string_to_metric_families(sys.stdin.read()):\n    assert fam.type in ('counter', 'gauge'), fam\n    assert fam.documentation, fam.name\n    for s in fam.samples:\n        print(fam.type, s.name, ','.join(f'{k}={v}' for k, v in sorted(s.labels.items())), s.value)\n";
    let mut p = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejects the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut w = l.split(' ');
            let (kind, name, labels, value) = (
                w.next().unwrap(),
                w.next().unwrap(),
                w.next().unwrap(),
                w.next().unwrap(),
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "a counter named by convention: {name}");
            }
            (name.to_string(), labels.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn the_endpoint_serves_the_counters_in_the_prometheus_text_format() {
    let sw = switch_with_traffic(10);
    let addr = metrics::serve(&sw, "127.0.0.1:0".parse().unwrap()).unwrap();
    // A client that connects and sends nothing delays the next scrape by
    // its second at most.
    let _silent = TcpStream::connect(addr).unwrap();
    let t = Instant::now();
    let reply = get(addr, "/metrics");
    assert!(t.elapsed() < Duration::from_secs(3));
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    assert!(get(addr, "/other").starts_with("HTTP/1.1 404"));
    let samples = parsed_by_prometheus_client(body);
    let value = |name: &str, labels: &str| {
        samples
            .iter()
            .find(|s| s.0 == name && s.1 == labels)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in:\n{body}"))
            .2
    };
    assert_eq!(value("odpx_up", "mode=userspace"), 1.0);
    assert_eq!(value("odpx_port_rx_packets_total", "no=1,port=p1"), 10.0);
    assert_eq!(value("odpx_port_tx_packets_total", "no=2,port=p2"), 10.0);
    assert_eq!(
        value("odpx_port_dropped_total", "no=2,port=p2,reason=tx_ring_full"),
        0.0
    );
    assert_eq!(value("odpx_pmd_packets_total", "pmd=0"), 10.0);
    let lookups = value("odpx_pmd_lookups_total", "pmd=0,result=exact_match")
        + value("odpx_pmd_lookups_total", "pmd=0,result=megaflow")
        + value("odpx_pmd_lookups_total", "pmd=0,result=upcall");
    assert_eq!(lookups, 10.0);
    assert_eq!(value("odpx_upcalls_handled_total", ""), 1.0);
    assert_eq!(value("odpx_megaflows", ""), 1.0);
    assert!(value("odpx_pmd_busy_seconds_total", "pmd=0") > 0.0);
    assert!(value("odpx_flow_limit", "") > 0.0);
    drop(sw);
}

fn ctl_json_gives_show_pmd_stats_and_megaflows_as_data() {
    let sw = switch_with_traffic(5);
    let json = |cmd: &str| -> serde_json::Value {
        let r = command(&sw, &format!("--json {cmd}"));
        let body = r.strip_prefix("ok\n").unwrap_or_else(|| panic!("{r}"));
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    let show = json("show");
    assert_eq!(show["mode"], "userspace");
    assert_eq!(show["ports"][0]["name"], "p1");
    assert_eq!(show["ports"][0]["counters"]["rx_packets"], 5);
    assert_eq!(show["ports"][1]["counters"]["tx_packets"], 5);
    assert_eq!(show["owner"]["upcalls"], 1);
    assert!(show["kernel"].is_null() && show["offload"].is_null());
    let pmd = json("pmd-stats-show");
    assert_eq!(pmd["pmds"][0]["packets"], 5);
    assert_eq!(pmd["pmds"][0]["rx_queues"][0], "p1:0");
    assert_eq!(pmd["owner"]["megaflows"], 1);
    let flows = json("dump-megaflows");
    let flows = flows.as_array().unwrap();
    assert_eq!(flows.len(), 1, "{flows:?}");
    assert!(
        flows[0]["match"].as_str().unwrap().starts_with("in_port(1)"),
        "{flows:?}"
    );
    // The upcalled packet ran in the translator's answer, not through the
    // megaflow (as in Open vSwitch).
    assert_eq!(flows[0]["packets"], 4);
    assert_eq!(flows[0]["actions"], "2");
    assert_eq!(flows[0]["offloaded"], false);
    // Every reply is data: the MAC table too (empty: no rule runs NORMAL).
    let macs = json("mac-table");
    assert_eq!(macs, serde_json::json!([]));
    drop(sw);
}

odpx_tests::cases! {
    [odpx_tests::harness::PROMETHEUS_CLIENT] => the_endpoint_serves_the_counters_in_the_prometheus_text_format;
    [] => ctl_json_gives_show_pmd_stats_and_megaflows_as_data;
}
