//! The snapshot in the Prometheus text format (version 0.0.4).
//!
//! # Names
//! By Prometheus conventions: an `odpx_` prefix, snake case, base units
//! (`_seconds`, `_bytes`), `_total` on counters; what differs by port,
//! PMD, reason or direction is a label, not a name. Every counter comes
//! from its set's definition ([`odpx_classifier::counters::Def`]): its
//! family, label, kind, help and unit (times are converted to seconds).
//! Every family has its `# HELP` and `# TYPE`, and its samples are written
//! together, as the format requires.

use crate::snapshot::Snapshot;
use odpx_classifier::counters::{Def, Kind, Snapshot as CounterSet};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Metric families in the order they were first written to.
#[derive(Default)]
struct Families {
    order: Vec<String>,
    by_name: HashMap<String, (Kind, String, String)>,
}

impl Families {
    fn sample(&mut self, name: &str, kind: Kind, help: &str, labels: &[(&str, &str)], value: f64) {
        if !self.by_name.contains_key(name) {
            self.order.push(name.to_string());
            self.by_name
                .insert(name.to_string(), (kind, help.to_string(), String::new()));
        }
        let samples = &mut self.by_name.get_mut(name).expect("inserted").2;
        let _ = write!(samples, "{name}");
        if !labels.is_empty() {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = write!(samples, "{{{}}}", l.join(","));
        }
        let _ = writeln!(samples, " {value}");
    }

    /// Every counter of a set, with `labels` (the port, the PMD) on each.
    fn set<T: CounterSet>(&mut self, s: &T, labels: &[(&str, &str)]) {
        for (d, v) in s.pairs() {
            self.def(d, labels, v);
        }
    }

    fn def(&mut self, d: &Def, labels: &[(&str, &str)], v: u64) {
        let mut l = labels.to_vec();
        if let Some(label) = d.label {
            l.push(label);
        }
        self.sample(&d.prometheus_name(), d.kind, d.help(), &l, v as f64 * d.unit.to_base());
    }

    /// Counts by reason.
    fn reasons(&mut self, name: &str, help: &str, m: &std::collections::BTreeMap<String, u64>) {
        for (reason, n) in m {
            self.sample(name, Kind::Counter, help, &[("reason", reason)], *n as f64);
        }
    }

    fn render(self) -> String {
        let mut out = String::new();
        for name in self.order {
            let (kind, help, samples) = &self.by_name[&name];
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

/// The snapshot in the Prometheus text format.
pub fn render(s: &Snapshot) -> String {
    let mut f = Families::default();
    f.sample(
        "odpx_up",
        Kind::Gauge,
        "1 while the switch runs.",
        &[("mode", &s.mode)],
        1.0,
    );
    f.sample(
        "odpx_uptime_seconds",
        Kind::Gauge,
        "Time since the switch started.",
        &[],
        s.uptime_seconds as f64,
    );
    ports(&mut f, s);
    for p in &s.pmds {
        let id = p.id.to_string();
        f.set(&p.counters, &[("pmd", &id)]);
    }
    f.set(&s.owner, &[]);
    f.reasons(
        "odpx_kernel_flow_refusals_total",
        "Kernel flow operations refused, by the kernel's reason.",
        &s.kernel_refusals,
    );
    kernel(&mut f, s);
    if let Some(o) = &s.offload {
        f.set(&o.counters, &[]);
        f.reasons(
            "odpx_offload_refusals_total",
            "Proposed megaflows not moved, by reason.",
            &o.refusals,
        );
    }
    if let Some(t) = &s.tunnels {
        f.set(&t.counters, &[]);
    }
    if let Some(o) = &s.openflow {
        f.set(&o.counters, &[]);
    }
    f.render()
}

fn ports(f: &mut Families, s: &Snapshot) {
    for p in &s.ports {
        let no = p.no.to_string();
        let l = [("port", p.name.as_str()), ("no", no.as_str())];
        f.sample(
            "odpx_port_up",
            Kind::Gauge,
            "1 while the port's interface exists.",
            &l,
            f64::from(u8::from(p.up)),
        );
        f.set(&p.counters, &l);
        if let Some(k) = &p.afxdp {
            f.set(k, &l);
        }
        if let Some(q) = &p.policing {
            f.sample(
                "odpx_port_policed_packets_total",
                Kind::Counter,
                "Packets the port received through its ingress policer.",
                &l,
                q.packets as f64,
            );
            f.sample(
                "odpx_port_policing_dropped_packets_total",
                Kind::Counter,
                "Packets the port's ingress policer dropped (beyond ingress_policing_rate).",
                &l,
                q.dropped as f64,
            );
        }
    }
}

fn kernel(f: &mut Families, s: &Snapshot) {
    let Some(k) = &s.kernel else { return };
    let l = [("datapath", k.datapath.as_str())];
    f.set(&k.counters, &l);
    f.sample(
        "odpx_kernel_stats_ok",
        Kind::Gauge,
        "1 if the kernel datapath answered for this scrape.",
        &l,
        f64::from(u8::from(k.error.is_none())),
    );
    for v in &k.vports {
        let no = v.no.to_string();
        f.set(&v.counters, &[l[0], ("vport", v.name.as_str()), ("no", no.as_str())]);
    }
}
