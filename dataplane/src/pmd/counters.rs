//! A PMD's counters, each defined once ([`odpx_classifier::counters!`]):
//! written by the PMD alone (relaxed stores, no locked instructions), read
//! by control through snapshots.

odpx_classifier::counters! {
    /// Per-PMD counters (relaxed atomics, written by the PMD only;
    /// `pmd-stats-clear` reaches it as a message).
    pub struct PmdCounters => PmdSnapshot;
    /// Packets a PMD thread received.
    packets: Counter(Packets) "packets received" => "pmd_packets";
    /// Packets by how the PMD classified them: exact-match cache, megaflow cache, upcall, or upcall lost (the queue was full).
    emc_hits: Counter(Packets) "exact match hits" => "pmd_lookups" result "exact_match";
    /// Packets found in the megaflow cache.
    megaflow_hits: Counter(Packets) "megaflow hits" => "pmd_lookups" result "megaflow";
    /// Packets that missed both caches and went to the slow path.
    upcalls: Counter(Packets) "upcalls" => "pmd_lookups" result "upcall";
    /// Misses lost because their port's upcall queue was full.
    upcalls_lost: Counter(Packets) "lost upcalls" => "pmd_lookups" result "upcall_lost";
    /// Packets classified without probing the exact-match cache (it cost more than it saved).
    emc_bypassed: Counter(Packets) "packets classified without the EMC" => "pmd_emc_bypassed_packets";
    /// 1 while the PMD probes its exact-match cache.
    emc_on: Gauge(Flag) "exact match cache" => "pmd_emc_probed";
    /// Times the exact-match cache was turned on or off by its cost.
    emc_switches: Counter(Events) "EMC mode changes" => "pmd_emc_mode_changes";
    /// Classify cycles per packet with the exact-match cache, when its mode last changed.
    emc_cost_with: Gauge(Cycles) "classify cycles per packet with the EMC" => "pmd_emc_cost_cycles" with "on";
    /// Classify cycles per packet without the exact-match cache, when its mode last changed.
    emc_cost_without: Gauge(Cycles) "without the EMC" => "pmd_emc_cost_cycles" with "off";
    /// Subtables probed by megaflow lookups that hit.
    subtables_probed: Counter(Events) "subtables probed on megaflow hits" => "pmd_subtables_probed";
    /// Installs the cache refused at its hard flow limit (the packet still ran).
    flow_limit_hits: Counter(Events) "flow limit hits" => "pmd_flow_limit_hits";
    /// Packets a userspace action (an OpenFlow CONTROLLER output) handed to the control layer, or lost because its queue was full.
    to_controller: Counter(Packets) "sent to the controller" => "pmd_to_controller" result "queued";
    /// Packets for the controller lost because the queue was full.
    to_controller_lost: Counter(Packets) "lost on the way to the controller" => "pmd_to_controller" result "lost";
    /// Packets whose actions held one this datapath does not run (the list ended there).
    unsupported_actions: Counter(Packets) "unsupported actions" => "pmd_unsupported_actions";
    /// Packets dropped because a push found no headroom.
    drops_no_headroom: Counter(Packets) "dropped for want of headroom" => "pmd_dropped" reason "no_headroom";
    /// Packets a meter's drop band dropped.
    drops_meter: Counter(Packets) "dropped by meters" => "pmd_dropped" reason "meter";
    /// Packets dropped after too many passes through the classifier.
    drops_recirc_depth: Counter(Packets) "dropped at the recirculation limit" => "pmd_dropped" reason "recirculation_depth";
    /// Inner packets classified again after decapsulation.
    recirculations: Counter(Packets) "recirculations" => "pmd_recirculations";
    /// Time a PMD spent processing packets.
    busy_ns: Counter(Nanoseconds) "busy" => "pmd_busy_seconds";
    /// Time a PMD spent finding nothing to do (waits included).
    idle_ns: Counter(Nanoseconds) "idle" => "pmd_idle_seconds";
    /// TSC cycles of passes that processed packets.
    busy_cycles: Counter(Cycles) "processing cycles" => "pmd_cycles" state "busy";
    /// TSC cycles of passes that found nothing.
    idle_cycles: Counter(Cycles) "idle cycles" => "pmd_cycles" state "idle";
    /// Times an idle PMD waited for frames instead of spinning.
    idle_waits: Counter(Events) "idle waits for frames" => "pmd_idle_waits";
    /// Time an idle PMD spent waiting for frames (part of its idle time).
    waited_ns: Counter(Nanoseconds) "waited" => "pmd_waited_seconds";
    /// Busy cycles by stage: receiving (ring to batch buffers).
    rx_cycles: Counter(Cycles) "receive" => "pmd_stage_cycles" stage "receive";
    /// Busy cycles classifying (key extraction, EMC, megaflow lookup, upcalls).
    classify_cycles: Counter(Cycles) "classify" => "pmd_stage_cycles" stage "classify";
    /// Busy cycles running actions (statistics included).
    action_cycles: Counter(Cycles) "actions" => "pmd_stage_cycles" stage "actions";
    /// Busy cycles transmitting (staging, the kick, completions).
    tx_cycles: Counter(Cycles) "transmit" => "pmd_stage_cycles" stage "transmit";
    /// Megaflows in a PMD's cache.
    megaflows: Gauge(Events) "megaflows" => "pmd_megaflows";
    /// Megaflows a PMD expired for being idle.
    expired: Counter(Events) "expired megaflows" => "pmd_megaflows_expired";
}
