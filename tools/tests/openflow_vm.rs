//! OpenFlow in the kernel datapath's two modes (`datapath = "kernel"` and
//! `"hybrid"`), in the test VM (`tools/vm.sh`), with Debian's `ovs-ofctl`
//! as the controller and `ovs-dpctl` as the independent view of the
//! kernel's flows.
//!
//! One VM boot runs every scenario as a section of one script; each
//! `#[test]` asserts on its own section. For each mode:
//! * `ovs-ofctl show` on the passive socket;
//! * packet-ins from a rule's CONTROLLER action, seen by `ovs-ofctl
//!   monitor`: one per packet, cut to the action's max_len, also when the kernel flow carries the
//!   packets (its `userspace()` action sends them up to odpx's socket);
//!   the packets go on to their port as well;
//! * packet-outs: to a port, and to TABLE (through the pipeline, whose
//!   CONTROLLER action then sends a packet-in);
//! * MPLS: packets popped in table 0 and looked up again in table 1, which
//!   the datapath does by recirculation (in kernel mode, a kernel flow of
//!   `recirc_id(0x1)`);
//! * ports numbered by `ofport` (10 and 20): vports, rules, kernel flows
//!   and port counters under those numbers, after a run that had them at
//!   1 and 2;
//! * groups and meters on those ports;
//! * the advanced tutorial's learning switch (registers, `learn`) on
//!   them: what pings teach, kept by the kernel flows that carry them.

use odpx_tests::{number, vm_section, which, VmRun};
use std::path::Path;
use std::sync::OnceLock;

const SCRIPT: &str = r#"
set -u
PATH=/payload:$PATH
IP=/payload/ip
OF=unix:/tmp/of.mgmt
# A UDP frame from 10.0.0.1 to 10.0.0.2, port 9.
PKT=ffffffffffff02000000000108004500002c00000000401166bf0a0000010a00000203e80009001800006f647078207061636b65742d6f757421
sec() { echo "=== $1"; }
txa1() { cat /sys/class/net/a1/statistics/tx_packets; }
txa2() { cat /sys/class/net/a2/statistics/tx_packets; }
# gen ARGS...: h1 sends (odpx gen e1 ARGS); sets $sent.
gen() { $IP netns exec h1 odpx gen e1 "$@" > /tmp/gen.out 2>&1; sent=$(sed -n 's/^sent \([0-9]*\).*/\1/p' /tmp/gen.out); }
ofctl() { ovs-ofctl -O OpenFlow13 "$@"; }
packet_ins() { grep -c 'OFPT_PACKET_IN' /tmp/mon.out; }
connections() { ctl show | sed -n 's/.*connections: \([0-9]*\).*/\1/p'; }
# until_at_least CMD N: until CMD prints at least N, 10 s at most.
until_at_least() { for i in $(seq 50); do [ "$($1)" -ge "$2" ] && return; sleep 0.2; done; }
mkdir -p /run/odpx
. /payload/vm-hosts.sh
two_hosts

# config MODE [OFPORT1 OFPORT2]
config() {
  cat > /tmp/of.toml <<EOF
[switch]
socket = "/tmp/odpx.sock"
datapath = "$1"
[[port]]
name = "a1"
${2:+ofport = $2}
[[port]]
name = "a2"
${3:+ofport = $3}
[openflow]
listen = "punix:/tmp/of.mgmt"
datapath_id = "0x1"
fail_mode = "secure"
EOF
  [ "$1" = hybrid ] && cat >> /tmp/of.toml <<EOF
[pmd]
cores = [1]
[offload]
min_pps = 20
min_duration_ms = 500
EOF
  true
}

for mode in kernel hybrid; do
  sec $mode-start
  config $mode
  : > /tmp/run.log
  odpx_start /tmp/of.toml
  ofctl show $OF | head -2
  echo "rules at start: $(ofctl dump-flows $OF | grep -c actions)"

  sec $mode-packet-in
  : > /tmp/mon.out
  ofctl monitor $OF 65534 > /tmp/mon.out 2>&1 &
  MON=$!
  until_at_least connections 1
  ofctl add-flow $OF 'priority=10,in_port=1,ip,actions=controller:32,output:2'
  ofctl add-flow $OF 'priority=10,in_port=2,actions=output:1'
  c0=$(txa2)
  $IP netns exec h1 odpx gen e1 --rate 50 --duration 4 > /tmp/gen.out 2>&1
  until_at_least packet_ins "$(sed -n 's/^sent \([0-9]*\).*/\1/p' /tmp/gen.out)"
  c1=$(txa2)
  cat /tmp/gen.out
  echo "packet-ins: $(packet_ins)"
  echo "forwarded: $((c1 - c0))"
  grep -m1 -A1 'OFPT_PACKET_IN' /tmp/mon.out
  echo "-- dpctl"
  ovs-dpctl dump-flows odpx0 | grep 'in_port(1)'
  echo "-- rules"
  ofctl dump-flows $OF
  ctl show
  ctl dump-megaflows

  sec $mode-packet-out
  c0=$(txa2)
  ofctl packet-out $OF "in_port=controller packet=$PKT actions=output:2"
  until_at_least txa2 $((c0 + 1))
  echo "out of port 2: $(($(txa2) - c0))"
  n0=$(packet_ins)
  c0=$(txa2)
  ofctl packet-out $OF "in_port=1 packet=$PKT actions=table"
  until_at_least packet_ins $((n0 + 1))
  until_at_least txa2 $((c0 + 1))
  echo "through the table: out of port 2 $(($(txa2) - c0)), packet-ins $(($(packet_ins) - n0))"
  tail -2 /tmp/mon.out

  sec $mode-mpls
  # The packet above inside one MPLS label (100, TTL 64). Table 0 pops it
  # and looks the IPv4 packet up in table 1: the kernel recirculates it,
  # and a kernel flow of recirc_id(0x1) forwards it.
  ofctl del-flows $OF
  ofctl add-flow $OF 'table=0,priority=10,mpls,actions=pop_mpls:0x0800,goto_table:1'
  ofctl add-flow $OF 'table=1,priority=10,udp,actions=output:2'
  MPLS_PKT=ffffffffffff020000000001884700064140${PKT#ffffffffffff0200000000010800}
  c0=$(txa2)
  for i in $(seq 20); do ofctl packet-out $OF "in_port=1 packet=$MPLS_PKT actions=table"; done
  until_at_least txa2 $((c0 + 20))
  echo "popped out of port 2: $(($(txa2) - c0))"
  echo "-- dpctl"
  ovs-dpctl dump-flows odpx0
  echo "-- megaflows"
  ctl dump-megaflows

  sec $mode-stop
  kill $MON
  ctl show | grep -A3 'openflow:'
  kill -TERM $ODPX; wait $ODPX; echo "stopped rc=$?"
  echo "-- log"
  cat /tmp/run.log

  sec $mode-ofport
  # The same ports as OpenFlow ports 10 and 20: the datapath's vports move
  # to those numbers, and rules, kernel flows and counters use them.
  config $mode 10 20
  : > /tmp/run.log
  odpx_start /tmp/of.toml
  ofctl show $OF | grep -E '^ [0-9]+\('
  ofctl add-flow $OF 'priority=10,in_port=10,ip,actions=output:20'
  c0=$(txa2)
  $IP netns exec h1 odpx gen e1 --rate 100 --duration 2 > /tmp/gen.out 2>&1
  sent=$(sed -n 's/^sent \([0-9]*\).*/\1/p' /tmp/gen.out)
  until_at_least txa2 $((c0 + sent))
  cat /tmp/gen.out
  echo "from 10 to 20: $(($(txa2) - c0)) of $sent"
  echo "-- dpctl"
  ovs-dpctl show odpx0 | grep 'port '
  ovs-dpctl dump-flows odpx0
  echo "-- ports"
  ofctl --no-names dump-ports $OF

  sec $mode-groups
  # An all group whose second bucket changes its copy (a datapath clone).
  ofctl del-flows $OF
  ofctl add-group $OF 'group_id=1,type=all,bucket=output:20,bucket=set_field:02:00:00:00:00:99->eth_dst,output:20'
  ofctl add-flow $OF 'priority=10,in_port=10,ip,actions=group:1'
  c0=$(txa2)
  gen --rate 100 --duration 2
  until_at_least txa2 $((c0 + 2 * sent))
  echo "all: $(($(txa2) - c0)) out of 20 for $sent"
  echo "-- dpctl"
  ovs-dpctl dump-flows odpx0 | grep 'in_port(10)'
  echo "-- stats"
  ofctl dump-group-stats $OF
  # More packets, and at once a rule that splits the group rule's
  # megaflow: the flow leaves the datapath before a dump read its last
  # packets (sweeps are 500 ms apart); the rule counts them all.
  first=$sent
  c0=$(txa2)
  gen --rate 100 --duration 1
  until_at_least txa2 $((c0 + 2 * sent))
  ofctl add-flow $OF 'priority=20,in_port=10,udp,tp_dst=7,actions=drop'
  echo "group rule after a split: $(ofctl dump-flows $OF | grep 'actions=group:1' | sed -n 's/.*n_packets=\([0-9]*\),.*/\1/p') for $((first + sent))"
  ofctl del-flows $OF 'udp,tp_dst=7'
  sent=$first
  # Fast failover: back out of the input port while port 20 is down.
  ofctl add-group $OF 'group_id=2,type=ff,bucket=watch_port:20,actions=output:20,bucket=watch_port:10,actions=in_port'
  ofctl mod-flows $OF 'in_port=10,ip,actions=group:2'
  ofctl dump-groups $OF
  ofctl dump-flows $OF
  for state in down up; do
    ofctl mod-port $OF 20 $state
    a0=$(txa1); c0=$(txa2)
    gen --rate 100 --duration 1
    until_at_least txa$([ $state = down ] && echo 1 || echo 2) $(( $([ $state = down ] && echo $a0 || echo $c0) + sent))
    echo "ff, port 20 $state: out of 10 $(($(txa1) - a0)), out of 20 $(($(txa2) - c0)) for $sent"
    ofctl dump-flows $OF
    ovs-dpctl dump-flows odpx0 | grep 'in_port(10)'
  done
  # Select: new flows spread over both buckets, each flow its own kernel flow.
  ofctl add-group $OF 'group_id=3,type=select,bucket=output:20,bucket=actions=in_port'
  ofctl mod-flows $OF 'in_port=10,ip,actions=group:3'
  a0=$(txa1); c0=$(txa2)
  gen --workload none --churn 200 --duration 2
  sent=$(sed -n 's/^new flows: \([0-9]*\).*/\1/p' /tmp/gen.out)
  for i in $(seq 50); do [ $(( $(txa1) - a0 + $(txa2) - c0 )) -ge $sent ] && break; sleep 0.2; done
  echo "select: out of 10 $(($(txa1) - a0)), out of 20 $(($(txa2) - c0)) for $sent"
  echo "kernel flows to 20: $(ovs-dpctl dump-flows odpx0 | grep -c 'actions:20$'), to 10: $(ovs-dpctl dump-flows odpx0 | grep -c 'actions:10$')"
  ofctl del-groups $OF
  echo "rules after del-groups: $(ofctl dump-flows $OF | grep -c actions)"

  sec $mode-meters
  # A 100 pps meter (no burst given: 5 packets) on port 10's traffic,
  # offered 1000 pps for 3 s: about 5 + 3 * 100 get through.
  ofctl add-meter $OF 'meter=1,pktps,stats,band=type=drop,rate=100'
  ofctl add-flow $OF 'priority=10,in_port=10,ip,actions=meter:1,output:20'
  c0=$(txa2)
  gen --rate 1000 --duration 3
  meter_in() { ofctl meter-stats $OF | sed -n 's/.*packet_in_count:\([0-9]*\).*/\1/p'; }
  until_at_least meter_in $sent
  echo "metered: $(($(txa2) - c0)) out of 20 for $sent"
  ofctl meter-stats $OF
  ofctl dump-meters $OF
  echo "-- dpctl"
  ovs-dpctl dump-flows odpx0 | grep 'in_port(10)'
  ofctl del-meters $OF
  echo "rules after del-meters: $(ofctl dump-flows $OF | grep -c actions)"

  sec $mode-learn
  # The advanced tutorial's learning switch on two access ports of VLAN
  # 20, its learned rules idle after 2 s (table 4 matches the VLAN its
  # pop_vlan needs: ovs-ofctl's OpenFlow 1.3 insists). Pings learn both hosts; then
  # 4 s of pings that kernel flows carry keep them; 4 s of silence ends
  # them.
  ofctl del-flows $OF
  ofctl add-flows $OF - <<'RULES'
table=0, dl_src=01:00:00:00:00:00/01:00:00:00:00:00, actions=drop
table=0, priority=0, actions=resubmit(,1)
table=1, priority=0, actions=drop
table=1, priority=99, in_port=10, vlan_tci=0, actions=mod_vlan_vid:20, resubmit(,2)
table=1, priority=99, in_port=20, vlan_tci=0, actions=mod_vlan_vid:20, resubmit(,2)
table=2 actions=learn(table=10, idle_timeout=2, NXM_OF_VLAN_TCI[0..11], NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[], load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]), resubmit(,3)
table=3 priority=50 actions=resubmit(,10), resubmit(,4)
table=3 priority=99 dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,4)
table=4 reg0=10 dl_vlan=20 actions=strip_vlan,10
table=4 reg0=20 dl_vlan=20 actions=strip_vlan,20
table=4 reg0=0 priority=99 dl_vlan=20 actions=strip_vlan,10,20
RULES
  echo "ping: $($IP netns exec h1 ping -c 3 -i 0.2 -W 2 10.0.0.2 | grep -o '[0-9]* packets received')"
  echo "learned: $(ofctl dump-flows $OF table=10 | grep -c 'actions=load')"
  ofctl dump-flows $OF table=10
  echo "ping on: $($IP netns exec h1 ping -c 20 -i 0.2 -W 2 10.0.0.2 | grep -o '[0-9]* packets received')"
  echo "learned after 4 s of pings: $(ofctl dump-flows $OF table=10 | grep -c 'actions=load')"
  echo "-- dpctl"
  ovs-dpctl dump-flows odpx0
  ctl pmd-stats-show | grep 'rules learned'
  sleep 4
  echo "learned after 4 s of silence: $(ofctl dump-flows $OF table=10 | grep -c 'actions=load')"
  kill -TERM $ODPX; wait $ODPX; echo "stopped rc=$?"
  cat /tmp/run.log
done
"#;

fn boot() -> VmRun {
    let odpx = Path::new(env!("CARGO_BIN_EXE_odpx"));
    let ip = which("ip").expect("iproute2's ip");
    let ofctl = which("ovs-ofctl").expect("ovs-ofctl");
    let hosts = odpx_tests::repo().join("tools/vm-hosts.sh");
    VmRun::boot_smp(SCRIPT, &[odpx, &ip, &ofctl, &hosts], 2)
}

/// The section's output (the VM booted on first use).
fn section(name: &str) -> String {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    vm_section(&RUN, boot, name)
}

fn starts_in_secure_mode_and_answers_ovs_ofctl(mode: &str) {
    let s = section(&format!("{mode}-start"));
    assert!(s.contains("OFPT_FEATURES_REPLY (OF1.3)"), "{s}");
    assert!(s.contains("dpid:0000000000000001"), "{s}");
    assert_eq!(number(&s, "rules at start:"), 0, "{s}");
}

fn a_controller_action_sends_every_packet_in_and_forwards_it(mode: &str) {
    let s = section(&format!("{mode}-packet-in"));
    let sent = number(&s, "sent ");
    assert!(sent >= 150, "{s}");
    assert_eq!(number(&s, "packet-ins:"), sent, "one packet-in per packet:\n{s}");
    assert!(number(&s, "forwarded:") >= sent, "{s}");
    assert!(
        s.contains("total_len=64 in_port=1 (via action) data_len=32 (unbuffered)"),
        "the packet cut to the action's max_len:\n{s}"
    );
    // The kernel flow sends the packet up to odpx's socket, and on to port 2.
    let flow = s
        .lines()
        .find(|l| l.contains("in_port(1)"))
        .unwrap_or_else(|| panic!("no kernel flow of port 1:\n{s}"));
    assert!(flow.contains("actions:userspace(pid="), "{flow}");
    assert!(flow.ends_with(",2"), "{flow}");
}

fn packet_outs_go_to_a_port_and_through_the_table(mode: &str) {
    let s = section(&format!("{mode}-packet-out"));
    assert_eq!(number(&s, "out of port 2:"), 1, "{s}");
    assert!(s.contains("through the table: out of port 2 1, packet-ins 1"), "{s}");
    assert!(
        s.contains("total_len=58 in_port=1 (via action) data_len=32 (unbuffered)"),
        "{s}"
    );
}

fn a_popped_packet_recirculates_to_the_next_table(mode: &str) {
    let s = section(&format!("{mode}-mpls"));
    let log = section(&format!("{mode}-stop"));
    assert_eq!(number(&s, "popped out of port 2:"), 20, "{s}\n{log}");
    if mode == "kernel" {
        let dpctl = s.split("-- dpctl").nth(1).unwrap_or_default();
        let flow = dpctl
            .lines()
            .find(|l| l.starts_with("recirc_id(0x1),"))
            .unwrap_or_else(|| panic!("no kernel flow after recirculation:\n{s}"));
        assert!(flow.ends_with("actions:2"), "{flow}");
        assert!(number(flow, "packets:") >= 19, "{flow}");
    }
}

fn ports_take_their_ofport_numbers(mode: &str) {
    let s = section(&format!("{mode}-ofport"));
    assert!(s.contains(" 10(a1): addr:") && s.contains(" 20(a2): addr:"), "{s}");
    let sent = number(&s, "sent ");
    assert!(sent >= 150, "{s}");
    assert!(s.contains(&format!("from 10 to 20: {sent} of {sent}")), "{s}");
    let dpctl = s.split("-- dpctl").nth(1).unwrap_or_default();
    assert!(dpctl.contains("port 10: a1") && dpctl.contains("port 20: a2"), "{s}");
    if mode == "kernel" {
        let flow = kernel_flow_of_port_10(dpctl, &s);
        assert!(flow.ends_with("actions:20"), "{flow}");
    }
    // Port counters are the vports' (the interfaces'), which count what
    // the kernel datapath carried.
    assert!(number(&s, "port 10: rx pkts=") >= sent, "{s}");
    let port20 = s
        .split("port 20: rx")
        .nth(1)
        .unwrap_or_else(|| panic!("no port 20:\n{s}"));
    assert!(number(port20, "tx pkts=") >= sent, "{s}");
    let after = section(&format!("{mode}-learn"));
    assert!(after.contains("stopped rc=0"), "{after}");
}

/// Groups in the kernel's flows: an all group's modified copy is a
/// `clone`; a fast-failover group follows port 20 down and up with the
/// kernel flow of before revalidated; a select group spreads new flows
/// over both buckets (one kernel flow each, none collapsed onto one);
/// group counters include what the kernel carried; deleting the groups
/// deletes their rules.
fn groups_run_in_the_kernel(mode: &str) {
    let s = section(&format!("{mode}-groups"));
    let sent = number(&s, "out of 20 for ");
    assert_eq!(number(&s, "all: "), 2 * sent, "two copies of each: {s}");
    assert!(sent >= 150, "{s}");
    let dpctl = s.split("-- dpctl").nth(1).unwrap_or_default();
    if mode == "kernel" {
        let flow = kernel_flow_of_port_10(dpctl, &s);
        assert!(
            flow.ends_with("actions:20,clone(set(eth(dst=02:00:00:00:00:99)),20)"),
            "{flow}"
        );
    }
    let split = s
        .lines()
        .find(|l| l.starts_with("group rule after a split: "))
        .unwrap_or_else(|| panic!("{s}"));
    assert_eq!(number(split, "split: "), number(split, " for "), "{s}");
    let stats = s.split("-- stats").nth(1).unwrap_or_default();
    assert!(number(stats, "packet_count=") >= sent, "{s}");
    for (state, via10, via20) in [("down", true, false), ("up", false, true)] {
        let line = s
            .lines()
            .find(|l| l.starts_with(&format!("ff, port 20 {state}:")))
            .unwrap_or_else(|| panic!("no ff {state}:\n{s}"));
        let n = number(line, "for ");
        assert!(n >= 50, "{line}\n{s}");
        assert_eq!(number(line, "out of 10 ") >= n, via10, "{line}\n{s}");
        assert_eq!(number(line, "out of 20 ") >= n, via20, "{line}\n{s}");
    }
    let select = s
        .lines()
        .find(|l| l.starts_with("select:"))
        .unwrap_or_else(|| panic!("{s}"));
    let (to10, to20, n) = (
        number(select, "out of 10 "),
        number(select, "out of 20 "),
        number(select, "for "),
    );
    assert!(n >= 300 && to10 + to20 >= n, "{select}");
    assert!(to10 > n / 4 && to20 > n / 4, "both buckets: {select}");
    if mode == "kernel" {
        assert!(
            number(&s, "kernel flows to 20: ") > 10 && number(&s, "to 10: ") > 10,
            "{s}"
        );
    }
    assert_eq!(number(&s, "rules after del-groups: "), 0, "{s}");
}

/// A meter holds its rate whichever datapath carries the flow: the
/// kernel's meter in kernel mode (its flow runs `meter(0)`), the PMDs'
/// in hybrid mode (a metered megaflow is never offloaded); its counters
/// add up; deleting it deletes its rule.
fn meters_hold_their_rate(mode: &str) {
    let s = section(&format!("{mode}-meters"));
    let line = s
        .lines()
        .find(|l| l.starts_with("metered: "))
        .unwrap_or_else(|| panic!("{s}"));
    let (passed, sent) = (number(line, "metered: "), number(line, " for "));
    assert!(sent >= 1500, "{line}");
    assert!(
        (250..=400).contains(&passed),
        "a burst of 5, then 100 a second: {line}\n{s}"
    );
    let stats = s.split("meter:1 ").nth(1).unwrap_or_else(|| panic!("{s}"));
    assert_eq!(number(stats, "packet_in_count:"), sent, "{s}");
    assert_eq!(number(stats, "0: packet_count:") + passed, sent, "{s}");
    assert!(s.contains("meter=1 pktps stats bands=\ntype=drop rate=100"), "{s}");
    let dpctl = s.split("-- dpctl").nth(1).unwrap_or_default();
    if mode == "kernel" {
        let flow = kernel_flow_of_port_10(dpctl, &s);
        assert!(flow.ends_with("actions:meter(0),20"), "{flow}");
    } else {
        assert!(!dpctl.contains("meter("), "a metered megaflow stays in the PMDs: {s}");
    }
    assert_eq!(number(&s, "rules after del-meters: "), 0, "{s}");
}

/// The kernel flow of port 10 in a dpctl dump (`s`: the section, to show).
fn learn_follows_the_kernel_flows(mode: &str) {
    let s = section(&format!("{mode}-learn"));
    assert_eq!(number(&s, "ping: "), 3, "{s}");
    assert_eq!(number(&s, "learned: "), 2, "both hosts: {s}");
    for port in ["0xa", "0x14"] {
        assert!(
            s.lines().any(|l| l.contains("vlan_tci=0x0014/0x0fff,dl_dst=")
                && l.ends_with(&format!("actions=load:{port}->NXM_NX_REG0[0..15]"))),
            "a host on port {port}: {s}"
        );
    }
    assert_eq!(number(&s, "ping on: "), 20, "{s}");
    assert_eq!(
        number(&s, "learned after 4 s of pings: "),
        2,
        "kept by the traffic: {s}"
    );
    assert_eq!(number(&s, "learned after 4 s of silence: "), 0, "idled out: {s}");
    // What the pings' megaflows learned was taught again from them.
    assert!(number(&s, "rules learned: ") >= 2, "{s}");
}

fn kernel_flow_of_port_10<'a>(dpctl: &'a str, s: &str) -> &'a str {
    dpctl
        .lines()
        .find(|l| l.contains("in_port(10)"))
        .unwrap_or_else(|| panic!("no kernel flow of port 10:\n{s}"))
}

fn stops_cleanly(mode: &str) {
    let s = section(&format!("{mode}-stop"));
    assert!(s.contains("stopped rc=0"), "{s}");
}

fn kernel_mode_starts_in_secure_mode_and_answers_ovs_ofctl() {
    starts_in_secure_mode_and_answers_ovs_ofctl("kernel");
}
fn kernel_mode_sends_a_packet_in_per_packet_of_a_kernel_flow() {
    a_controller_action_sends_every_packet_in_and_forwards_it("kernel");
}
fn kernel_mode_carries_packet_outs_to_a_port_and_through_the_table() {
    packet_outs_go_to_a_port_and_through_the_table("kernel");
}
fn kernel_mode_recirculates_a_popped_mpls_packet() {
    a_popped_packet_recirculates_to_the_next_table("kernel");
}
fn hybrid_mode_recirculates_a_popped_mpls_packet() {
    a_popped_packet_recirculates_to_the_next_table("hybrid");
}
fn kernel_mode_numbers_ports_by_ofport() {
    ports_take_their_ofport_numbers("kernel");
}
fn hybrid_mode_numbers_ports_by_ofport() {
    ports_take_their_ofport_numbers("hybrid");
}
fn kernel_mode_runs_groups() {
    groups_run_in_the_kernel("kernel");
}
fn hybrid_mode_runs_groups() {
    groups_run_in_the_kernel("hybrid");
}
fn kernel_mode_runs_meters() {
    meters_hold_their_rate("kernel");
}
fn hybrid_mode_runs_meters() {
    meters_hold_their_rate("hybrid");
}
fn kernel_mode_learns_from_kernel_flows() {
    learn_follows_the_kernel_flows("kernel");
}
fn hybrid_mode_learns_from_kernel_flows() {
    learn_follows_the_kernel_flows("hybrid");
}
fn kernel_mode_stops_cleanly() {
    stops_cleanly("kernel");
}
fn hybrid_mode_starts_in_secure_mode_and_answers_ovs_ofctl() {
    starts_in_secure_mode_and_answers_ovs_ofctl("hybrid");
}
fn hybrid_mode_sends_a_packet_in_per_packet_of_an_offloaded_flow() {
    a_controller_action_sends_every_packet_in_and_forwards_it("hybrid");
}
fn hybrid_mode_carries_packet_outs_to_a_port_and_through_the_table() {
    packet_outs_go_to_a_port_and_through_the_table("hybrid");
}
fn hybrid_mode_stops_cleanly() {
    stops_cleanly("hybrid");
}

odpx_tests::cases! {
    [odpx_tests::harness::VM, odpx_tests::harness::OVS_OFCTL] => kernel_mode_starts_in_secure_mode_and_answers_ovs_ofctl, kernel_mode_sends_a_packet_in_per_packet_of_a_kernel_flow, kernel_mode_carries_packet_outs_to_a_port_and_through_the_table, kernel_mode_recirculates_a_popped_mpls_packet, kernel_mode_stops_cleanly, kernel_mode_numbers_ports_by_ofport, hybrid_mode_starts_in_secure_mode_and_answers_ovs_ofctl, hybrid_mode_sends_a_packet_in_per_packet_of_an_offloaded_flow, hybrid_mode_carries_packet_outs_to_a_port_and_through_the_table, hybrid_mode_recirculates_a_popped_mpls_packet, hybrid_mode_stops_cleanly, hybrid_mode_numbers_ports_by_ofport, kernel_mode_runs_groups, hybrid_mode_runs_groups, kernel_mode_runs_meters, hybrid_mode_runs_meters, kernel_mode_learns_from_kernel_flows, hybrid_mode_learns_from_kernel_flows;
}
