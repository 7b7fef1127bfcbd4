//! The owner core's counters, each defined once
//! ([`odpx_classifier::counters!`]), and the counts kept by reason.
//!
//! # Threads
//! Written by whoever holds the core (under its lock); read by snapshots
//! without it, so a busy owner never delays a scrape.

use std::collections::BTreeMap;
use std::sync::Mutex;

odpx_classifier::counters! {
    /// What the megaflow owner did.
    pub struct OwnerCounters => OwnerSnapshot;
    /// Upcalls the megaflow owner translated.
    upcalls: Counter(Events) "upcalls handled" => "upcalls_handled";
    /// Megaflows installed.
    installs: Counter(Events) "megaflows installed" => "megaflows_installed";
    /// Megaflows installed now, in every datapath.
    megaflows: Gauge(Events) "megaflows" => "megaflows";
    /// The dynamic flow limit.
    flow_limit: Gauge(Events) "flow limit" => "flow_limit";
    /// The current megaflow idle timeout.
    idle_timeout_ms: Gauge(Milliseconds) "idle timeout" => "idle_timeout_seconds";
    /// Upcalls only executed: the flow limit was reached.
    flow_limit_hits: Counter(Events) "flow limit hits" => "flow_limit_hits";
    /// Upcalls only executed: their UFID was already known for another match.
    ufid_collisions: Counter(Events) "UFID collisions" => "ufid_collisions";
    /// Rule changes applied.
    rule_changes: Counter(Events) "rule changes" => "rule_changes";
    /// Rules that `learn` actions added or gave new actions.
    rules_learned: Counter(Events) "rules learned" => "rules_learned";
    /// Megaflows translated again after a change.
    revalidated: Counter(Events) "revalidated" => "revalidations";
    /// Revalidated megaflows deleted or given new actions in place.
    revalidation_removals: Counter(Events) "removed" => "revalidation_verdicts" verdict "removed";
    /// Revalidated megaflows given new actions in place.
    revalidation_modifications: Counter(Events) "modified" => "revalidation_verdicts" verdict "modified";
    /// Sweeps of the datapaths for idle megaflows and statistics.
    sweeps: Counter(Events) "sweeps" => "sweeps";
    /// How long the last sweep took.
    last_sweep_ms: Gauge(Milliseconds) "last took" => "last_sweep_seconds";
    /// Megaflows deleted for being idle.
    expired: Counter(Events) "expired" => "megaflows_expired";
    /// MAC learning events: a new address, one that moved, one that aged out.
    mac_learned: Counter(Events) "MAC addresses learned" => "mac_events" event "learned";
    /// MAC addresses that moved to another port.
    mac_moves: Counter(Events) "moved" => "mac_events" event "moved";
    /// MAC addresses that aged out.
    mac_aged: Counter(Events) "aged" => "mac_events" event "aged";
    /// Kernel flow operations refused (their packets still ran), by reason in `kernel_refusals`.
    kernel_refused: Counter(Events) "refused" => "kernel_flows_refused";
    /// Kernel installs that found the flow there already (given the current actions).
    kernel_flows_existing: Counter(Events) "already there" => "kernel_flows_existing";
    /// Upcalled packets the kernel would not run.
    kernel_executes_failed: Counter(Packets) "packets not run" => "kernel_executes_failed";
    /// Kernel flows found that the owner did not install (deleted).
    kernel_strays: Counter(Events) "strays deleted" => "kernel_flows_odd" kind "stray";
    /// Registered flows the kernel no longer had (forgotten).
    kernel_vanished: Counter(Events) "vanished" => "kernel_flows_odd" kind "vanished";
    /// Flows a previous run left in the kernel: kept as they were.
    adopted_kept: Gauge(Events) "kept" => "adopted_flows" verdict "kept";
    /// Flows a previous run left in the kernel: given new actions.
    adopted_fixed: Gauge(Events) "fixed" => "adopted_flows" verdict "fixed";
    /// Flows a previous run left in the kernel: deleted.
    adopted_deleted: Gauge(Events) "deleted" => "adopted_flows" verdict "deleted";
}

odpx_classifier::counters! {
    /// Hybrid mode's offload.
    pub struct OffloadCounters => OffloadSnapshot;
    /// 1 while offload is on.
    enabled: Gauge(Flag) "offload" => "offload_enabled";
    /// Megaflows offloaded to the kernel now.
    offloaded: Gauge(Events) "offloaded" => "offloaded_megaflows";
    /// Steering masks in use.
    masks: Gauge(Events) "steering masks" => "offload_steering_masks";
    /// Megaflows the policy proposed.
    proposed: Counter(Events) "proposed" => "offload_proposed";
    /// Megaflows moved into the kernel.
    moved: Counter(Events) "moved" => "offload_moved";
    /// Offloaded megaflows brought back.
    brought_back: Counter(Events) "brought back" => "offload_brought_back";
}

odpx_classifier::counters! {
    /// The VXLAN tunnels' slow path.
    pub struct TunnelCounters => TunnelSnapshot;
    /// Tunnel outputs left out: no remote, no route, no source address, or a route through a non-underlay interface.
    encap_no_remote: Counter(Events) "no_remote" => "tunnel_outputs_not_built" reason "no_remote";
    /// Tunnel outputs left out: no route to the remote VTEP.
    encap_no_route: Counter(Events) "no_route" => "tunnel_outputs_not_built" reason "no_route";
    /// Tunnel outputs left out: no source address.
    encap_no_source: Counter(Events) "no_source" => "tunnel_outputs_not_built" reason "no_source";
    /// Tunnel outputs left out: the route goes through an interface that is not an underlay port.
    encap_not_underlay: Counter(Events) "not_underlay" => "tunnel_outputs_not_built" reason "not_underlay";
    /// Packets waiting for a next hop's MAC address now.
    neigh_waiting: Gauge(Packets) "waiting" => "neighbour_waiting_packets";
    /// Packets that waited for a next hop's MAC address, by what became of them.
    neigh_parked: Counter(Packets) "parked" => "neighbour_packets" event "parked";
    /// Parked packets sent once their next hop was resolved.
    neigh_released: Counter(Packets) "released" => "neighbour_packets" event "released";
    /// Parked packets dropped (too many, or waited too long).
    neigh_dropped: Counter(Packets) "dropped" => "neighbour_packets" event "dropped";
    /// Requests to the kernel to resolve a next hop.
    neigh_requests: Counter(Events) "requests" => "neighbour_requests";
    /// Requests to resolve a next hop the kernel refused.
    neigh_request_errors: Counter(Events) "request_errors" => "neighbour_request_errors";
    /// Changes of the kernel's interfaces, addresses, routes and neighbours taken in.
    underlay_changes: Counter(Events) "underlay changes" => "underlay_changes";
    /// Full reloads of the underlay view after lost notifications.
    underlay_reloads: Counter(Events) "reloads" => "underlay_reloads";
}

/// Counts by reason (the kernel's refusals, the offload's): written under
/// the core's lock, read by snapshots.
#[derive(Debug, Default)]
pub struct Reasons(Mutex<BTreeMap<String, u64>>);

impl Reasons {
    /// Counts one more for `reason`; true the first time it is seen.
    pub fn count(&self, reason: String) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let new = !m.contains_key(&reason);
        *m.entry(reason).or_default() += 1;
        new
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
