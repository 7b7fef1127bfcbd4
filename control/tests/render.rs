//! One snapshot rendered every way (`ctl show` and `pmd-stats-show` text,
//! JSON, Prometheus), with every counter of every set at a value of its
//! own: each counter must show that value, under its definition's name,
//! in each rendering.

use odpx_classifier::counters::{Def, Snapshot as CounterSet, Unit};
use odpx_control::core::counters::{OffloadSnapshot, OwnerSnapshot, TunnelSnapshot};
use odpx_control::openflow_counters::OpenflowSnapshot;
use odpx_control::render::{json, prometheus, text};
use odpx_control::snapshot::{
    AfxdpStatus, KernelCounters, KernelStatus, OffloadStatus, OpenflowStatus, PmdStatus, PolicingStatus, PortStatus,
    Snapshot, TunnelStatus, VportCounters, VportStatus,
};
use odpx_dataplane::pmd::PmdSnapshot;
use odpx_dataplane::port::PortCounters;
use std::collections::BTreeMap;

/// A set with each counter at a value no other counter has (flags at 1).
fn filled<T: CounterSet + Default>(next: &mut u64) -> T {
    let mut s = T::default();
    for d in T::DEFS {
        let v = if d.unit == Unit::Flag {
            1
        } else {
            *next += 7;
            *next
        };
        assert!(s.set(d.key, v));
    }
    s
}

fn snapshot() -> Snapshot {
    let mut n = 100_000;
    Snapshot {
        mode: "hybrid".into(),
        uptime_seconds: 42,
        ports: vec![PortStatus {
            no: 1,
            name: "p1".into(),
            kind: "afxdp".into(),
            steering: Some("generic".into()),
            up: true,
            queues: 1,
            counters: filled::<PortCounters>(&mut n),
            afxdp: Some(filled::<AfxdpStatus>(&mut n)),
            vxlan: None,
            policing: Some(PolicingStatus {
                rate_kbps: 1000,
                burst_kb: 100,
                packets: 777,
                dropped: 55,
            }),
        }],
        pmds: vec![PmdStatus {
            id: 0,
            core: Some(1),
            rx_queues: vec!["p1:0".into()],
            counters: filled::<PmdSnapshot>(&mut n),
        }],
        owner: filled::<OwnerSnapshot>(&mut n),
        kernel_refusals: BTreeMap::from([("errno 22 (Invalid argument)".to_string(), 3)]),
        kernel: Some(KernelStatus {
            datapath: "odpx0".into(),
            upcall_mode: "per-CPU dispatch".into(),
            error: None,
            counters: filled::<KernelCounters>(&mut n),
            masks_cache_size: Some(256),
            vports: vec![VportStatus {
                no: 1,
                name: "p1".into(),
                vtype: "netdev".into(),
                counters: filled::<VportCounters>(&mut n),
            }],
        }),
        offload: Some(OffloadStatus {
            min_pps: Some(1000),
            min_duration_ms: Some(2000),
            max_flows: Some(8192),
            counters: filled::<OffloadSnapshot>(&mut n),
            mask_slots: 16,
            refusals: BTreeMap::from([("the kernel does not run it".to_string(), 4)]),
            kernel_packets: Some(10),
            pmd_packets: 5,
        }),
        tunnels: Some(TunnelStatus {
            vteps: vec!["172.31.0.1:4789".into()],
            counters: filled::<TunnelSnapshot>(&mut n),
        }),
        openflow: Some(OpenflowStatus {
            targets: vec!["tcp:127.0.0.1:6653".into()],
            counters: filled::<OpenflowSnapshot>(&mut n),
        }),
    }
}

/// A set of the snapshot with where it sits: its JSON path, the
/// Prometheus labels of its context, its (definition, value) pairs.
type Placed = (Vec<String>, Vec<(&'static str, String)>, Vec<(&'static Def, u64)>);

/// Every set of the snapshot, placed.
fn sets(s: &Snapshot) -> Vec<Placed> {
    vec![
        (
            vec!["ports".into(), "0".into(), "counters".into()],
            vec![("port", "p1".into()), ("no", "1".into())],
            s.ports[0].counters.pairs(),
        ),
        (
            vec!["pmds".into(), "0".into()],
            vec![("pmd", "0".into())],
            s.pmds[0].counters.pairs(),
        ),
        (vec!["owner".into()], vec![], s.owner.pairs()),
        (
            vec!["ports".into(), "0".into(), "afxdp".into()],
            vec![("port", "p1".into()), ("no", "1".into())],
            s.ports[0].afxdp.unwrap().pairs(),
        ),
        (
            vec!["kernel".into()],
            vec![("datapath", "odpx0".into())],
            s.kernel.as_ref().unwrap().counters.pairs(),
        ),
        (
            vec!["kernel".into(), "vports".into(), "0".into()],
            vec![("datapath", "odpx0".into()), ("vport", "p1".into()), ("no", "1".into())],
            s.kernel.as_ref().unwrap().vports[0].counters.pairs(),
        ),
        (
            vec!["offload".into()],
            vec![],
            s.offload.as_ref().unwrap().counters.pairs(),
        ),
        (
            vec!["tunnels".into()],
            vec![],
            s.tunnels.as_ref().unwrap().counters.pairs(),
        ),
        (
            vec!["openflow".into()],
            vec![],
            s.openflow.as_ref().unwrap().counters.pairs(),
        ),
    ]
}

#[test]
fn json_has_every_counter_under_its_key() {
    let s = snapshot();
    let v: serde_json::Value = serde_json::from_str(&json::to_text(&s).unwrap()).unwrap();
    for (path, _, pairs) in sets(&s) {
        let mut at = &v;
        for p in &path {
            at = match p.parse::<usize>() {
                Ok(i) => &at[i],
                Err(_) => &at[p.as_str()],
            };
        }
        for (d, value) in pairs {
            assert_eq!(at[d.key], value, "{}/{}", path.join("/"), d.key);
        }
    }
    // And it reads back as the same snapshot.
    let back: Snapshot = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}

/// The samples of a Prometheus text: (name, labels, value).
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (head, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = match head.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (head, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap();
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            (name.to_string(), labels, value.parse().unwrap())
        })
        .collect()
}

#[test]
fn prometheus_has_every_counter_in_its_family_with_its_help_and_unit() {
    let s = snapshot();
    let out = prometheus::render(&s);
    let all = samples(&out);
    for (_, context, pairs) in sets(&s) {
        for (d, value) in pairs {
            let name = d.prometheus_name();
            let mut want: BTreeMap<String, String> = context.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            if let Some((k, v)) = d.label {
                want.insert(k.into(), v.into());
            }
            let got = all
                .iter()
                .find(|(n, l, _)| *n == name && *l == want)
                .unwrap_or_else(|| panic!("no {name}{want:?} for {}", d.key));
            assert_eq!(got.2, value as f64 * d.unit.to_base(), "{name}{want:?}");
            assert!(
                out.contains(&format!("# HELP {name} ")) && out.contains(&format!("# TYPE {name} ")),
                "{name} has its HELP and TYPE"
            );
            match d.unit {
                Unit::Nanoseconds | Unit::Milliseconds => assert!(name.contains("_seconds"), "{name}: in seconds"),
                Unit::Bytes => assert!(name.contains("_bytes"), "{name}: in bytes"),
                _ => {}
            }
        }
    }
}

#[test]
fn the_text_shows_every_counter_under_its_words() {
    let s = snapshot();
    let out = text::show(&s) + &text::pmd_stats(&s);
    for (_, _, pairs) in sets(&s) {
        for (d, value) in pairs {
            let shown = if d.unit == Unit::Flag {
                let word = if value != 0 { "on" } else { "off" };
                out.contains(&format!("{}: {word}", d.text))
            } else {
                [": ", ":", " "]
                    .iter()
                    .any(|sep| out.contains(&format!("{}{sep}{value}", d.text)))
            };
            assert!(shown, "'{}' ({}) = {value} is not in the text:\n{out}", d.text, d.key);
        }
    }
    assert!(
        out.contains("ingress policing: 1000 kbit/s, burst 100 kbit; policed 777 packets, dropped 55"),
        "{out}"
    );
    let metrics = prometheus::render(&s);
    assert!(
        metrics.contains("odpx_port_policing_dropped_packets_total{port=\"p1\",no=\"1\"} 55"),
        "{metrics}"
    );
}
