//! The OpenFlow agent's counters, each defined once
//! ([`odpx_classifier::counters!`]): written by the agent's connection
//! threads and dispatcher ([`crate::openflow`]), read by snapshots. A room
//! of their own, below both, so that the switch can hold them for its
//! snapshots without knowing the agent.

odpx_classifier::counters! {
    /// The OpenFlow agent's counters (relaxed atomics).
    pub struct OpenflowCounters => OpenflowSnapshot;
    /// Controller connections open now.
    connections: Gauge(Events) "connections" => "openflow_connections";
    /// Messages received from controllers.
    messages_received: Counter(Events) "messages received" => "openflow_messages_received";
    /// Errors sent to controllers (each answers a message odpx refused).
    errors_sent: Counter(Events) "errors sent" => "openflow_errors_sent";
    /// Packet-ins by what became of them: sent to a controller, dropped by its rate limit, dropped because its queue was full.
    packet_ins_sent: Counter(Packets) "packet-ins sent" => "openflow_packet_ins" result "sent";
    /// Packet-ins a controller's rate limit dropped.
    packet_ins_rate_limited: Counter(Packets) "dropped by the rate limit" => "openflow_packet_ins" result "rate_limited";
    /// Packet-ins dropped because the connection's queue was full.
    packet_ins_queue_full: Counter(Packets) "dropped with the queue full" => "openflow_packet_ins" result "queue_full";
    /// Packets for the controller that no connected controller was to hear (none connected, or none asked for the reason).
    packet_ins_unheard: Counter(Packets) "heard by no controller" => "openflow_packet_ins" result "unheard";
    /// FLOW_REMOVED messages sent.
    flow_removed_sent: Counter(Events) "flow removed messages" => "openflow_flow_removed_sent";
    /// PORT_STATUS messages sent.
    port_status_sent: Counter(Events) "port status messages" => "openflow_port_status_sent";
    /// 1 while fail-open holds (standalone, no controller for three probe intervals: NORMAL switching).
    fail_open: Gauge(Flag) "fail open" => "openflow_fail_open";
    /// Times the switch failed open.
    fail_open_entered: Counter(Events) "times failed open" => "openflow_fail_open_entered";
}
