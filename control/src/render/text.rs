//! The snapshot and the control replies as text, for people: `odpx ctl
//! show`, `pmd-stats-show` (in the spirit of `ovs-appctl
//! dpif-netdev/pmd-stats-show` and `ovs-dpctl show`), and the lists.
//!
//! Counters are printed under the words their definitions give
//! ([`odpx_classifier::counters::Def::text`]), followed by `:` and their
//! value, or by their value alone in a list (`kept 3, fixed 1`); a flag
//! reads `on` or `off`.

use crate::api::{Megaflow, Reply};
use crate::core::underlay::{NeighbourRow, RouteRow};
use crate::owner::MacEntry;
use crate::snapshot::{KernelStatus, OffloadStatus, OpenflowStatus, PmdStatus, PortStatus, Snapshot, TunnelStatus};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `x / of`, or 0 when there is nothing to divide by (a fresh PMD).
fn ratio(x: u64, of: u64) -> f64 {
    if of > 0 {
        x as f64 / of as f64
    } else {
        0.0
    }
}

fn on_off(flag: u64) -> &'static str {
    if flag != 0 {
        "on"
    } else {
        "off"
    }
}

/// One line per reason: `{lead} {count}: {reason}`.
fn counted_reasons(m: &BTreeMap<String, u64>, lead: &str) -> String {
    m.iter().map(|(reason, n)| format!("{lead} {n}: {reason}\n")).collect()
}

/// `odpx ctl show`.
pub fn show(s: &Snapshot) -> String {
    if s.mode == "kernel" {
        let k = s.kernel.as_ref();
        let mut out = format!(
            "odpx switch, kernel datapath {}, up {} s\n",
            k.map_or("?", |k| k.datapath.as_str()),
            s.uptime_seconds
        );
        if let Some(k) = k {
            out += &kernel_section(s, k);
        }
        if let Some(o) = &s.openflow {
            out += &openflow(o);
        }
        return out;
    }
    let mut out = format!("odpx switch, up {} s\n", s.uptime_seconds);
    for p in &s.ports {
        out += &port(p);
    }
    if let Some(o) = &s.openflow {
        out += &openflow(o);
    }
    if let Some(t) = &s.tunnels {
        out += &tunnels(t);
    }
    for p in &s.pmds {
        let _ = writeln!(
            out,
            "  pmd {} core {}: rx queues {}",
            p.id,
            p.core.map_or("-".into(), |c| c.to_string()),
            p.rx_queues.join(" ")
        );
    }
    if let Some(k) = &s.kernel {
        let _ = writeln!(out, "kernel datapath {}:", k.datapath);
        out += &kernel_section(s, k);
    }
    if let (Some(o), Some(k)) = (&s.offload, &s.kernel) {
        out += &offload(o, k);
    }
    out
}

fn port(p: &PortStatus) -> String {
    let c = &p.counters;
    let mut s = String::new();
    if let Some(v) = &p.vxlan {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "flow".into());
        let _ = writeln!(
            s,
            "  port {}: {} (vxlan: remote_ip={} key={} dst_port={}{})\n    decap packets:{} bytes:{}\n    encap packets:{} bytes:{} dropped_mtu:{} failed:{}",
            p.no,
            p.name,
            opt(&v.remote_ip),
            v.key.map_or("flow".into(), |k| k.to_string()),
            v.dst_port,
            v.local_ip.as_ref().map_or(String::new(), |l| format!(" local_ip={l}")),
            c.rx_packets,
            c.rx_bytes,
            c.tx_packets,
            c.tx_bytes,
            c.encap_too_big,
            c.encap_failed
        );
        return s;
    }
    let kind = match (p.kind.as_str(), p.steering.as_deref()) {
        ("afxdp", Some(mode)) => format!("afxdp, steering in {mode} XDP"),
        (kind, _) => kind.to_string(),
    };
    let alive = if p.up { "" } else { " (interface gone)" };
    let _ = writeln!(
        s,
        "  port {}: {} ({kind}, {} queue(s)){alive}\n    rx packets:{} bytes:{} dropped_too_big:{}\n    tx packets:{} bytes:{} dropped_full:{}",
        p.no, p.name, p.queues, c.rx_packets, c.rx_bytes, c.rx_dropped_too_big, c.tx_packets, c.tx_bytes, c.tx_dropped_full
    );
    if c.encap_too_big + c.encap_failed > 0 {
        let _ = writeln!(
            s,
            "    encap dropped: dropped_mtu:{} failed:{}",
            c.encap_too_big, c.encap_failed
        );
    }
    if c.link_down + c.link_up + c.link_reopened > 0 {
        let _ = writeln!(
            s,
            "    link: down {} time(s), opened again {} time(s), up {} time(s)",
            c.link_down, c.link_reopened, c.link_up
        );
    }
    let decap_drops = c.decap_malformed + c.decap_bad_checksum + c.decap_bad_flags + c.decap_unknown_vni;
    if p.kind == "afxdp underlay" || decap_drops > 0 {
        let _ = writeln!(
            s,
            "    decap dropped: malformed:{} bad_checksum:{} bad_flags:{} unknown_vni:{}",
            c.decap_malformed, c.decap_bad_checksum, c.decap_bad_flags, c.decap_unknown_vni
        );
    }
    if let Some(k) = &p.afxdp {
        let _ = writeln!(
            s,
            "    kernel rx_dropped:{} rx_ring_full:{} fill_ring_empty:{} rx_invalid:{} tx_invalid:{}",
            k.rx_dropped, k.rx_ring_full, k.fill_ring_empty, k.rx_invalid, k.tx_invalid
        );
    }
    if let Some(q) = &p.policing {
        let _ = writeln!(
            s,
            "    ingress policing: {} kbit/s, burst {} kbit; policed {} packets, dropped {}",
            q.rate_kbps, q.burst_kb, q.packets, q.dropped
        );
    }
    s
}

fn openflow(o: &OpenflowStatus) -> String {
    let c = &o.counters;
    format!(
        "  openflow: {}\n    connections: {} messages received: {} errors sent: {}\n    packet-ins sent: {} (dropped by the rate limit: {}, dropped with the queue full: {}, heard by no controller: {})\n    flow removed messages: {} port status messages: {}\n    fail open: {} (times failed open: {})\n",
        o.targets.join(" "),
        c.connections,
        c.messages_received,
        c.errors_sent,
        c.packet_ins_sent,
        c.packet_ins_rate_limited,
        c.packet_ins_queue_full,
        c.packet_ins_unheard,
        c.flow_removed_sent,
        c.port_status_sent,
        on_off(c.fail_open),
        c.fail_open_entered,
    )
}

fn tunnels(t: &TunnelStatus) -> String {
    let c = &t.counters;
    format!(
        "  tunnels: VTEPs {}\n    encap not built: no_remote:{} no_route:{} no_source:{} not_underlay:{}\n    neighbours: waiting:{} parked:{} released:{} dropped:{} requests:{} request_errors:{}\n    underlay changes:{} reloads:{}\n",
        if t.vteps.is_empty() { "none".to_string() } else { t.vteps.join(" ") },
        c.encap_no_remote,
        c.encap_no_route,
        c.encap_no_source,
        c.encap_not_underlay,
        c.neigh_waiting,
        c.neigh_parked,
        c.neigh_released,
        c.neigh_dropped,
        c.neigh_requests,
        c.neigh_request_errors,
        c.underlay_changes,
        c.underlay_reloads,
    )
}

/// The kernel datapath as `ovs-dpctl show` gives it, the upcall handlers,
/// and what the owner did with the kernel.
fn kernel_section(s: &Snapshot, k: &KernelStatus) -> String {
    let mut out = String::new();
    match &k.error {
        Some(e) => {
            let _ = writeln!(out, "  datapath {}: {e}", k.datapath);
        }
        None => {
            let c = &k.counters;
            let _ = writeln!(
                out,
                "  lookups: hit:{} missed:{} lost:{}\n  flows: {}\n  masks: hit:{} total:{} hit/pkt:{:.2}",
                c.lookups_hit,
                c.lookups_missed,
                c.lookups_lost,
                c.flows,
                c.mask_hits,
                c.masks,
                ratio(c.mask_hits, c.lookups_hit + c.lookups_missed)
            );
            if let Some(m) = k.masks_cache_size {
                let _ = writeln!(out, "  masks cache: size:{m}");
            }
            for v in &k.vports {
                let c = &v.counters;
                let _ = writeln!(
                    out,
                    "  port {}: {} ({})\n    rx packets:{} bytes:{} errors:{} dropped:{}\n    tx packets:{} bytes:{} errors:{} dropped:{}",
                    v.no, v.name, v.vtype, c.rx_packets, c.rx_bytes, c.rx_errors, c.rx_dropped, c.tx_packets, c.tx_bytes, c.tx_errors, c.tx_dropped
                );
            }
        }
    }
    let o = &s.owner;
    let _ = writeln!(
        out,
        "  upcalls: {}; received {}, undecodable keys {}, malformed {}",
        k.upcall_mode, k.counters.upcalls_received, k.counters.upcalls_undecodable, k.counters.upcalls_malformed,
    );
    let _ = writeln!(
        out,
        "  adopted at start: kept {}, fixed {}, deleted {}\n  kernel flows: refused {}, already there {}, strays deleted {}, vanished {}; packets not run {}",
        o.adopted_kept,
        o.adopted_fixed,
        o.adopted_deleted,
        o.kernel_refused,
        o.kernel_flows_existing,
        o.kernel_strays,
        o.kernel_vanished,
        o.kernel_executes_failed,
    );
    out + &counted_reasons(&s.kernel_refusals, "    refused")
}

/// Hybrid mode's offload: the policy, what moved, the share of packets
/// each path carried.
fn offload(o: &OffloadStatus, k: &KernelStatus) -> String {
    let c = &o.counters;
    let mut s = match (o.min_pps, o.min_duration_ms, o.max_flows) {
        (Some(pps), Some(ms), Some(max)) => format!(
            "offload: {}, megaflows of at least {pps} pps for {ms} ms, up to {max}\n",
            on_off(c.enabled)
        ),
        _ => format!("offload: {}\n", on_off(c.enabled)),
    };
    let _ = writeln!(
        s,
        "  offloaded: {} (steering masks: {} of {})\n  proposed: {}, moved: {}, brought back: {}",
        c.offloaded, c.masks, o.mask_slots, c.proposed, c.moved, c.brought_back,
    );
    s += &counted_reasons(&o.refusals, "  not offloaded");
    if let Some(hit) = o.kernel_packets {
        let all = hit + k.counters.lookups_missed + o.pmd_packets;
        let _ = writeln!(
            s,
            "  packets carried: kernel {hit} ({:.1}%), PMDs {}",
            100.0 * ratio(hit, all),
            o.pmd_packets
        );
    }
    s
}

/// `odpx ctl pmd-stats-show`.
pub fn pmd_stats(s: &Snapshot) -> String {
    let mut out = String::new();
    for p in &s.pmds {
        out += &pmd(p);
    }
    let o = &s.owner;
    let _ = write!(
        out,
        "owner:\n  upcalls handled: {}\n  megaflows installed: {}\n  megaflows: {} (flow limit: {}, idle timeout: {} ms)\n  flow limit hits: {}\n  UFID collisions: {}\n  rule changes: {} (rules learned: {})\n  revalidated: {} (removed: {}, modified: {})\n  expired: {} (sweeps: {}, last took {} ms)\n  MAC addresses learned: {} (moved: {}, aged: {})\n",
        o.upcalls,
        o.installs,
        o.megaflows,
        o.flow_limit,
        o.idle_timeout_ms,
        o.flow_limit_hits,
        o.ufid_collisions,
        o.rule_changes,
        o.rules_learned,
        o.revalidated,
        o.revalidation_removals,
        o.revalidation_modifications,
        o.expired,
        o.sweeps,
        o.last_sweep_ms,
        o.mac_learned,
        o.mac_moves,
        o.mac_aged,
    );
    out
}

fn pmd(p: &PmdStatus) -> String {
    let c = &p.counters;
    let per_packet = |x: u64| ratio(x, c.packets);
    let time = c.busy_ns + c.idle_ns;
    let mut s = String::new();
    let _ = write!(
        s,
        "pmd thread {} core {}:\n  packets received: {}\n  exact match hits: {} ({:.1}%)\n  megaflow hits: {} ({:.1}%)\n  subtables probed on megaflow hits: {} ({:.2} a hit)\n  upcalls: {} ({:.1}%)\n  lost upcalls: {}\n  packets for the controller: sent to the controller: {} (lost on the way to the controller: {})\n  flow limit hits: {}\n  unsupported actions: {}\n  dropped for want of headroom: {}\n  dropped by meters: {}\n  recirculations: {} (dropped at the recirculation limit: {})\n  megaflows: {}\n  expired megaflows: {}\n  processing: {:.1}% of {:.3} s; {:.0} ns per packet\n  avg processing cycles per packet: {:.0}\n",
        p.id,
        p.core.map_or("-".into(), |c| c.to_string()),
        c.packets,
        c.emc_hits,
        100.0 * per_packet(c.emc_hits),
        c.megaflow_hits,
        100.0 * per_packet(c.megaflow_hits),
        c.subtables_probed,
        ratio(c.subtables_probed, c.megaflow_hits),
        c.upcalls,
        100.0 * per_packet(c.upcalls),
        c.upcalls_lost,
        c.to_controller,
        c.to_controller_lost,
        c.flow_limit_hits,
        c.unsupported_actions,
        c.drops_no_headroom,
        c.drops_meter,
        c.recirculations,
        c.drops_recirc_depth,
        c.megaflows,
        c.expired,
        100.0 * ratio(c.busy_ns, time),
        time as f64 / 1e9,
        per_packet(c.busy_ns),
        per_packet(c.busy_cycles),
    );
    let _ = writeln!(
        s,
        "  exact match cache: {} (packets classified without the EMC: {}; EMC mode changes: {}; classify cycles per packet with the EMC: {}, without the EMC: {})",
        on_off(c.emc_on),
        c.emc_bypassed,
        c.emc_switches,
        c.emc_cost_with,
        c.emc_cost_without,
    );
    let _ = writeln!(
        s,
        "  time (ns): busy {}, idle {}, waited {}\n  idle waits for frames: {}",
        c.busy_ns, c.idle_ns, c.waited_ns, c.idle_waits
    );
    let all_cycles = c.idle_cycles + c.busy_cycles;
    let _ = writeln!(
        s,
        "  idle cycles: {} ({:.2}%)\n  processing cycles: {} ({:.2}%)",
        c.idle_cycles,
        100.0 * ratio(c.idle_cycles, all_cycles),
        c.busy_cycles,
        100.0 * ratio(c.busy_cycles, all_cycles),
    );
    let _ = writeln!(
        s,
        "  cycles per packet by stage: receive {:.0}, classify {:.0}, actions {:.0}, transmit {:.0}\n  cycles by stage: receive {}, classify {}, actions {}, transmit {}",
        per_packet(c.rx_cycles),
        per_packet(c.classify_cycles),
        per_packet(c.action_cycles),
        per_packet(c.tx_cycles),
        c.rx_cycles,
        c.classify_cycles,
        c.action_cycles,
        c.tx_cycles,
    );
    s
}

/// `dump-megaflows`: `ovs-dpctl dump-flows` lines, with the datapath marks
/// where Open vSwitch puts them (before the actions).
pub fn megaflows(flows: &[Megaflow]) -> String {
    let mut s = String::new();
    for f in flows {
        if let Some(u) = &f.ufid {
            let _ = write!(s, "ufid:{u}, ");
        }
        let _ = write!(
            s,
            "{}, packets:{}, bytes:{}, used:{}",
            f.matched, f.packets, f.bytes, f.used
        );
        if let Some(fl) = &f.flags {
            let _ = write!(s, ", flags:{fl}");
        }
        if f.offloaded {
            s += ", offloaded:yes";
        }
        if let Some(dp) = &f.dp {
            let _ = write!(s, ", dp:{dp}");
        }
        let _ = writeln!(s, ", actions:{}", f.actions);
    }
    s
}

/// `mac-table`.
pub fn mac_table(entries: &[MacEntry]) -> String {
    let mut s = String::from(" port  VLAN  MAC                Age\n");
    for e in entries {
        let _ = writeln!(s, "{:>5}  {:>4}  {}  {}", e.port, e.vlan, e.mac, e.age_seconds);
    }
    s
}

/// `tnl-routes`: the main table as odpx routes with it.
pub fn routes(rows: &[RouteRow]) -> String {
    let mut s = String::from(
        "Route                                     Dev          Gateway                  Src                      Metric\n",
    );
    let opt = |a: &Option<std::net::IpAddr>| a.map_or("-".to_string(), |a| a.to_string());
    for r in rows {
        let _ = writeln!(
            s,
            "{:<41} {:<12} {:<24} {:<24} {}",
            r.prefix,
            r.dev.as_deref().unwrap_or("-"),
            opt(&r.gateway),
            opt(&r.src),
            r.metric
        );
    }
    s
}

/// `tnl-neigh`: the neighbours and their states.
pub fn neighbours(rows: &[NeighbourRow]) -> String {
    let mut s = String::from("IP                                        Dev          MAC                State\n");
    for n in rows {
        let _ = writeln!(
            s,
            "{:<41} {:<12} {:<18} {}",
            n.addr.to_string(),
            n.dev,
            n.mac.as_deref().unwrap_or("-"),
            n.state
        );
    }
    s
}

/// A reply for people.
pub fn reply(r: &Reply) -> String {
    match r {
        Reply::Snapshot {
            snapshot,
            pmd_stats: false,
        } => show(snapshot),
        Reply::Snapshot {
            snapshot,
            pmd_stats: true,
        } => pmd_stats(snapshot),
        Reply::Done => String::new(),
        Reply::Rules(lines) | Reply::Groups(lines) => lines.iter().map(|r| format!(" {r}\n")).collect(),
        Reply::Meters(lines) => lines.iter().map(|r| format!("{r}\n")).collect(),
        Reply::Added(n) => format!("{n} rules added\n"),
        Reply::Deleted(n) => format!("{n} rules deleted\n"),
        Reply::Megaflows(flows) => megaflows(flows),
        Reply::MacTable(entries) => mac_table(entries),
        Reply::Offload { on, brought_back } => format!(
            "offload {}; {brought_back} megaflows brought back from the kernel\n",
            if *on { "on" } else { "off" }
        ),
        Reply::Routes(rows) => routes(rows),
        Reply::Neighbours(rows) => neighbours(rows),
        Reply::Trace(t) => t.text.clone(),
    }
}
