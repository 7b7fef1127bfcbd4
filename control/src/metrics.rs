//! The Prometheus endpoint: `[metrics] listen = "127.0.0.1:9464"` (off by
//! default) serves the switch's [`Status`] in the Prometheus text format
//! (version 0.0.4) at `GET /metrics`.
//!
//! # Names
//! By Prometheus conventions: an `odpx_` prefix, snake case, base units
//! (`_seconds`, `_bytes`), `_total` on counters; what differs by port,
//! PMD, reason or direction is a label, not a name (`port`, `pmd`,
//! `reason`, `result`). Every family has its `# HELP` and `# TYPE`, and
//! its samples are written together, as the format requires.
//!
//! # Threads
//! One thread serves the listener, one request at a time: a scrape is a
//! snapshot and a few kilobytes of text. Each connection gets a second to
//! send its request and to take the answer, so a client that stalls holds
//! up other scrapes by at most that, and the switch not at all: the
//! snapshot never takes the owner's lock.

use crate::status::Status;
use crate::switch::Switch;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Time a client gets to send its request, and to take the answer.
const CLIENT_TIME: Duration = Duration::from_secs(1);
/// The longest request read (a GET line and headers).
const MAX_REQUEST: usize = 8 << 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// Metric families in the order they were first written to.
#[derive(Default)]
struct Families {
    order: Vec<&'static str>,
    by_name: std::collections::HashMap<&'static str, (Kind, &'static str, String)>,
}

impl Families {
    fn add(&mut self, name: &'static str, kind: Kind, help: &'static str, labels: &[(&str, &str)], value: f64) {
        let entry = self.by_name.entry(name).or_insert_with(|| {
            self.order.push(name);
            (kind, help, String::new())
        });
        let _ = write!(entry.2, "{name}");
        if !labels.is_empty() {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = write!(entry.2, "{{{}}}", l.join(","));
        }
        let _ = writeln!(entry.2, " {value}");
    }

    fn counter(&mut self, name: &'static str, help: &'static str, labels: &[(&str, &str)], value: u64) {
        self.add(name, Kind::Counter, help, labels, value as f64);
    }

    /// One counter per item, told apart by label `key` on top of `labels`.
    fn counters_by(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        key: &str,
        items: &[(&str, u64)],
    ) {
        for (v, n) in items {
            let mut l = labels.to_vec();
            l.push((key, v));
            self.counter(name, help, &l, *n);
        }
    }

    fn gauge(&mut self, name: &'static str, help: &'static str, labels: &[(&str, &str)], value: f64) {
        self.add(name, Kind::Gauge, help, labels, value);
    }

    fn render(self) -> String {
        let mut out = String::new();
        for name in self.order {
            let (kind, help, samples) = &self.by_name[name];
            let kind = if *kind == Kind::Counter { "counter" } else { "gauge" };
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{samples}");
        }
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The status in the Prometheus text format.
pub fn render(s: &Status) -> String {
    let mut f = Families::default();
    f.gauge("odpx_up", "1 while the switch runs.", &[("mode", s.mode)], 1.0);
    f.gauge(
        "odpx_uptime_seconds",
        "Time since the switch started.",
        &[],
        s.uptime_seconds as f64,
    );
    for p in &s.ports {
        let no = p.no.to_string();
        let l = [("port", p.name.as_str()), ("no", no.as_str())];
        let c = &p.counters;
        f.gauge(
            "odpx_port_up",
            "1 while the port's interface exists.",
            &l,
            f64::from(u8::from(p.up)),
        );
        f.counter(
            "odpx_port_rx_packets_total",
            "Packets received (VXLAN ports: decapsulated).",
            &l,
            c.rx_packets,
        );
        f.counter(
            "odpx_port_rx_bytes_total",
            "Bytes received, Ethernet header included.",
            &l,
            c.rx_bytes,
        );
        f.counter(
            "odpx_port_tx_packets_total",
            "Packets sent (VXLAN ports: encapsulated).",
            &l,
            c.tx_packets,
        );
        f.counter(
            "odpx_port_tx_bytes_total",
            "Bytes sent, Ethernet header included.",
            &l,
            c.tx_bytes,
        );
        f.counters_by(
            "odpx_port_dropped_total",
            "Packets the port dropped, by reason.",
            &l,
            "reason",
            &[
                ("tx_ring_full", c.tx_dropped_full),
                ("rx_too_big", c.rx_dropped_too_big),
                ("encap_too_big", c.encap_too_big),
                ("encap_failed", c.encap_failed),
                ("decap_malformed", c.decap_malformed),
                ("decap_bad_checksum", c.decap_bad_checksum),
                ("decap_bad_flags", c.decap_bad_flags),
                ("decap_unknown_vni", c.decap_unknown_vni),
            ],
        );
        f.counters_by(
            "odpx_port_link_events_total",
            "Times the port's link went down (or its interface away), came back, and its re-created interface was opened again.",
            &l,
            "event",
            &[("down", c.link_down), ("up", c.link_up), ("reopened", c.link_reopened)],
        );
        if let Some(k) = &p.afxdp {
            f.counters_by(
                "odpx_port_afxdp_events_total",
                "The kernel's AF_XDP socket counters (XDP_STATISTICS), summed over queues.",
                &l,
                "event",
                &[
                    ("rx_dropped", k.rx_dropped),
                    ("rx_ring_full", k.rx_ring_full),
                    ("fill_ring_empty", k.fill_ring_empty),
                    ("rx_invalid", k.rx_invalid),
                    ("tx_invalid", k.tx_invalid),
                ],
            );
        }
    }
    for p in &s.pmds {
        let id = p.id.to_string();
        let l = [("pmd", id.as_str())];
        let c = &p.counters;
        f.counter(
            "odpx_pmd_packets_total",
            "Packets a PMD thread received.",
            &l,
            c.packets,
        );
        f.counters_by(
            "odpx_pmd_lookups_total",
            "Packets by how the PMD classified them: exact-match cache, megaflow cache, upcall, or upcall lost (the queue was full).",
            &l,
            "result",
            &[
                ("exact_match", c.emc_hits),
                ("megaflow", c.megaflow_hits),
                ("upcall", c.upcalls),
                ("upcall_lost", c.upcalls_lost),
            ],
        );
        f.counter(
            "odpx_pmd_flow_limit_hits_total",
            "Upcalls only executed: the flow limit was reached.",
            &l,
            c.flow_limit_hits,
        );
        f.add(
            "odpx_pmd_busy_seconds_total",
            Kind::Counter,
            "Time a PMD spent processing packets.",
            &l,
            c.busy_ns as f64 / 1e9,
        );
        f.gauge(
            "odpx_pmd_megaflows",
            "Megaflows in a PMD's cache.",
            &l,
            c.megaflows as f64,
        );
        f.counter(
            "odpx_pmd_megaflows_expired_total",
            "Megaflows a PMD expired.",
            &l,
            c.expired,
        );
        f.counter(
            "odpx_pmd_idle_waits_total",
            "Times an idle PMD waited for frames.",
            &l,
            c.idle_waits,
        );
    }
    let t = &s.translator;
    f.counter(
        "odpx_upcalls_handled_total",
        "Upcalls the megaflow owner translated.",
        &[],
        t.upcalls,
    );
    f.counter(
        "odpx_megaflows_installed_total",
        "Megaflows installed.",
        &[],
        t.installs,
    );
    f.gauge(
        "odpx_megaflows",
        "Megaflows installed now, in every datapath.",
        &[],
        t.megaflows as f64,
    );
    f.gauge("odpx_flow_limit", "The dynamic flow limit.", &[], t.flow_limit as f64);
    f.gauge(
        "odpx_idle_timeout_seconds",
        "The current megaflow idle timeout.",
        &[],
        t.idle_timeout_ms as f64 / 1e3,
    );
    f.counter(
        "odpx_flow_limit_hits_total",
        "Upcalls only executed: the flow limit was reached.",
        &[],
        t.flow_limit_hits,
    );
    f.counter("odpx_rule_changes_total", "Rule changes applied.", &[], t.rule_changes);
    f.counter(
        "odpx_revalidations_total",
        "Megaflows translated again after a change.",
        &[],
        t.revalidated,
    );
    f.counters_by(
        "odpx_revalidation_verdicts_total",
        "Revalidated megaflows deleted or given new actions in place.",
        &[],
        "verdict",
        &[
            ("removed", t.revalidation_removals),
            ("modified", t.revalidation_modifications),
        ],
    );
    f.counter(
        "odpx_sweeps_total",
        "Sweeps of the datapaths for idle megaflows and statistics.",
        &[],
        t.sweeps,
    );
    f.gauge(
        "odpx_last_sweep_seconds",
        "How long the last sweep took.",
        &[],
        t.last_sweep_ms as f64 / 1e3,
    );
    f.counter(
        "odpx_megaflows_expired_total",
        "Megaflows deleted for being idle.",
        &[],
        t.expired,
    );
    f.counters_by(
        "odpx_mac_events_total",
        "MAC learning events.",
        &[],
        "event",
        &[("learned", t.mac_learned), ("moved", t.mac_moves), ("aged", t.mac_aged)],
    );
    for (reason, n) in &t.kernel_refusals {
        f.counter(
            "odpx_kernel_flow_refusals_total",
            "Flows the kernel datapath refused, by its reason.",
            &[("reason", reason)],
            *n,
        );
    }
    if let Some(k) = &s.kernel {
        let l = [("datapath", k.datapath.as_str())];
        f.counters_by(
            "odpx_kernel_lookups_total",
            "Kernel datapath lookups: hit a flow, missed (upcalled), or lost.",
            &l,
            "result",
            &[
                ("hit", k.lookups_hit),
                ("missed", k.lookups_missed),
                ("lost", k.lookups_lost),
            ],
        );
        f.gauge("odpx_kernel_flows", "Flows in the kernel datapath.", &l, k.flows as f64);
        f.gauge(
            "odpx_kernel_stats_ok",
            "1 if the kernel datapath answered for this scrape.",
            &l,
            f64::from(u8::from(k.error.is_none())),
        );
        f.counter(
            "odpx_kernel_upcalls_received_total",
            "Upcalls the handlers received from the kernel.",
            &l,
            k.upcalls_received,
        );
        for v in &k.vports {
            let no = v.no.to_string();
            let vl = [l[0], ("vport", v.name.as_str()), ("no", no.as_str())];
            f.counter(
                "odpx_kernel_vport_rx_packets_total",
                "Packets a kernel vport received.",
                &vl,
                v.rx_packets,
            );
            f.counter(
                "odpx_kernel_vport_tx_packets_total",
                "Packets a kernel vport sent.",
                &vl,
                v.tx_packets,
            );
            f.counter(
                "odpx_kernel_vport_rx_bytes_total",
                "Bytes a kernel vport received.",
                &vl,
                v.rx_bytes,
            );
            f.counter(
                "odpx_kernel_vport_tx_bytes_total",
                "Bytes a kernel vport sent.",
                &vl,
                v.tx_bytes,
            );
        }
    }
    if let Some(o) = &s.offload {
        f.gauge(
            "odpx_offload_enabled",
            "1 while offload is on.",
            &[],
            f64::from(u8::from(o.enabled)),
        );
        f.gauge(
            "odpx_offloaded_megaflows",
            "Megaflows offloaded to the kernel now.",
            &[],
            o.offloaded as f64,
        );
        f.gauge(
            "odpx_offload_steering_masks",
            "Steering masks in use.",
            &[],
            o.masks as f64,
        );
        f.counter(
            "odpx_offload_proposed_total",
            "Megaflows the policy proposed.",
            &[],
            o.proposed,
        );
        f.counter(
            "odpx_offload_moved_total",
            "Megaflows moved into the kernel.",
            &[],
            o.moved,
        );
        f.counter(
            "odpx_offload_brought_back_total",
            "Offloaded megaflows brought back.",
            &[],
            o.brought_back,
        );
        for (reason, n) in &o.refusals {
            f.counter(
                "odpx_offload_refusals_total",
                "Proposed megaflows not moved, by reason.",
                &[("reason", reason)],
                *n,
            );
        }
    }
    f.render()
}

/// Serves the endpoint on `addr` until the switch is dropped; returns the
/// address bound (port 0 picks one).
pub fn serve(sw: &Arc<Switch>, addr: SocketAddr) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("metrics: {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| format!("metrics: {addr}: {e}"))?;
    let weak: Weak<Switch> = Arc::downgrade(sw);
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for c in listener.incoming() {
                let Ok(mut c) = c else { continue };
                let Some(sw) = weak.upgrade() else { return };
                answer(&sw, &mut c);
            }
        })
        .map_err(|e| format!("metrics thread: {e}"))?;
    Ok(bound)
}

/// Reads one HTTP request and answers it.
fn answer(sw: &Switch, c: &mut TcpStream) {
    let deadline = Instant::now() + CLIENT_TIME;
    let mut req = Vec::new();
    let mut buf = [0u8; 2048];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && !req.windows(2).any(|w| w == b"\n\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || req.len() > MAX_REQUEST || c.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
            Err(_) => return,
        }
    }
    let line = String::from_utf8_lossy(&req);
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, kind, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(&sw.status()),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "odpx: metrics are at /metrics\n".to_string(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "odpx: only GET\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = c.set_write_timeout(Some(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100)),
    ));
    let _ = c.write_all(head.as_bytes()).and_then(|()| c.write_all(body.as_bytes()));
}
