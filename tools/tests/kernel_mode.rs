//! Pure-kernel mode (`datapath = "kernel"`) against the real Open vSwitch
//! kernel datapath, in the test VM (`tools/vm.sh`), with Debian's
//! `ovs-dpctl` as the independent view of the kernel's flows.
//!
//! One VM boot runs every scenario as a section of one script; each
//! `#[test]` asserts on its own section:
//! * `odpx demo --datapath kernel`: ping and UDP echo between namespaces
//!   whose veths are vports;
//! * the case that opened the megaflow-owner work, in the kernel: a flow
//!   hit without pause for three idle timeouts, then a drop rule, which
//!   must stop it when `add-flow` returns (and `ovs-dpctl` must show the
//!   flow's new actions);
//! * idle flows leave the kernel;
//! * a restart adopts the flows of the previous run: an established flow
//!   loses nothing while the daemon is away;
//! * `kill -9`: installed flows go on forwarding, new flows' misses are
//!   counted as lost by the kernel, and a restart recovers;
//! * a rule the kernel cannot run is refused, with the reason.

use odpx_tests::{number, vm_section, which, VmRun};
use std::path::Path;
use std::sync::OnceLock;

const SCRIPT: &str = r#"
set -u
PATH=/payload:$PATH
IP=/payload/ip
sec() { echo "=== $1"; }
txa2() { cat /sys/class/net/a2/statistics/tx_packets; }
start() { odpx_start /tmp/k.toml "$@"; }
mkdir -p /run/odpx

sec demo
odpx demo --datapath kernel --duration 8
echo "demo rc=$?"
echo "datapaths left: $(ovs-dpctl show 2>/dev/null | grep -c '^system@')"

. /payload/vm-hosts.sh
two_hosts
cat > /tmp/k.toml <<EOF
[switch]
socket = "/tmp/odpx.sock"
datapath = "kernel"
rules_inline = ["priority=0,in_port=1,actions=output:2", "priority=0,in_port=2,actions=output:1"]
[[port]]
name = "a1"
[[port]]
name = "a2"
[cache]
idle_timeout_ms = 1000
EOF

sec refused
cat > /tmp/bad.toml <<EOF
[switch]
socket = "/tmp/bad.sock"
datapath = "kernel"
dp_name = "odpxbad"
rules_inline = ["priority=1,icmp,actions=set_field:3->icmp_type,output:2"]
[[port]]
name = "a1"
EOF
odpx run -c /tmp/bad.toml; echo "bad config rc=$?"
echo "odpxbad created: $(ovs-dpctl show 2>/dev/null | grep -c 'system@odpxbad')"

sec start
start
head -1 /tmp/run.log
ctl show
$IP netns exec h1 ping -c 3 -W 2 10.0.0.2 | grep 'packets transmitted'
ctl add-flow 'priority=5,icmp,actions=set_field:3->icmp_type,output:2'; echo "refused add rc=$?"

sec drop-rule
$IP netns exec h1 odpx gen e1 --rate 500 --duration 8 > /tmp/gen1.out 2>&1 &
GEN=$!
sleep 3.5
c1=$(txa2); sleep 1; c2=$(txa2)
echo "before the rule: $((c2 - c1)) in 1 s"
ctl add-flow 'priority=100,in_port=1,actions=drop'; echo "add rc=$?"
c3=$(txa2); sleep 1; c4=$(txa2)
echo "after the rule: $((c4 - c3)) in 1 s"
echo "-- dpctl"
ovs-dpctl dump-flows odpx0 | grep 'in_port(1)'
ctl add-flow 'priority=200,in_port=1,actions=output:2'; echo "add rc=$?"
c5=$(txa2); sleep 1; c6=$(txa2)
echo "after the override: $((c6 - c5)) in 1 s"
echo "-- dpctl again"
ovs-dpctl dump-flows odpx0 | grep 'in_port(1)'
wait $GEN
cat /tmp/gen1.out

sec idle
sleep 3
echo "kernel flows after 3 s idle: $(ovs-dpctl dump-flows odpx0 | grep -c actions)"
ctl pmd-stats-show | grep expired

sec vlan
$IP -n h2 link add link e2 name e2.10 type vlan id 10
$IP -n h2 addr add 10.0.10.2/24 dev e2.10
$IP -n h2 link set e2.10 up
$IP -n h1 addr add 10.0.10.1/24 dev e1
$IP -n h1 neigh add 10.0.10.2 lladdr $($IP -n h2 -br link show e2 | awk '{print $3}') dev e1
$IP -n h2 neigh add 10.0.10.1 lladdr $($IP -n h1 -br link show e1 | awk '{print $3}') dev e2.10
ctl add-flows "$(printf 'priority=300,in_port=1,ip,nw_dst=10.0.10.2,actions=mod_vlan_vid:10,output:2\npriority=300,in_port=2,dl_vlan=10,actions=strip_vlan,output:1')"
$IP netns exec h1 ping -c 3 -W 2 10.0.10.2 | grep 'packets transmitted'
echo "-- dpctl"
ovs-dpctl dump-flows odpx0 | grep -E 'vlan'
ctl del-flows 'ip,nw_dst=10.0.10.2'
ctl del-flows 'dl_vlan=10'

sec restart
b0=$(txa2)
$IP netns exec h1 odpx gen e1 --rate 500 --duration 8 > /tmp/gen2.out 2>&1 &
GEN=$!
sleep 2
kill -TERM $ODPX; wait $ODPX; echo "stopped rc=$?"
echo "flows while stopped: $(ovs-dpctl dump-flows odpx0 | grep -c actions)"
sleep 1
start
tail -1 /tmp/run.log
wait $GEN
sleep 0.5
b1=$(txa2)
cat /tmp/gen2.out
echo "received $((b1 - b0))"

sec kill9
b0=$(txa2)
$IP netns exec h1 odpx gen e1 --rate 500 --duration 8 > /tmp/gen3.out 2>&1 &
GEN=$!
sleep 2
kill -9 $ODPX; wait $ODPX 2>/dev/null
lost0=$(ovs-dpctl show odpx0 | sed -n 's/.*lost:\([0-9]*\).*/\1/p')
$IP netns exec h2 ping -c 2 -W 1 10.0.0.1 | grep 'packets transmitted'
lost1=$(ovs-dpctl show odpx0 | sed -n 's/.*lost:\([0-9]*\).*/\1/p')
echo "lost while down: $((lost1 - lost0))"
sleep 1
start
tail -1 /tmp/run.log
$IP netns exec h2 ping -c 3 -W 2 10.0.0.1 | grep 'packets transmitted'
wait $GEN
sleep 0.5
b1=$(txa2)
cat /tmp/gen3.out
echo "received $((b1 - b0))"

sec adopt-changes
$IP netns exec h1 odpx gen e1 --rate 200 --duration 12 > /dev/null 2>&1 &
GEN=$!
sleep 1.5
# Restarted with a drop rule for port 1: the flow's match still holds,
# its actions change in place.
kill -TERM $ODPX; wait $ODPX
sed 's/^rules_inline = .*/rules_inline = ["priority=50,in_port=1,actions=drop", "priority=0,in_port=2,actions=output:1"]/' /tmp/k.toml > /tmp/k-drop.toml
cp /tmp/k.toml /tmp/k-base.toml; cp /tmp/k-drop.toml /tmp/k.toml
start
tail -1 /tmp/run.log
c1=$(txa2); sleep 1; c2=$(txa2)
echo "forwarded after the restart with the drop rule: $((c2 - c1))"
ovs-dpctl dump-flows odpx0 | grep 'in_port(1)'
# Restarted with a rule on UDP ports: the flow's match is too wide for the
# new rules, so it goes; its next packet sets up the new decision.
kill -TERM $ODPX; wait $ODPX
sed 's/^rules_inline = .*/rules_inline = ["priority=50,in_port=1,udp,tp_dst=9,actions=drop", "priority=0,in_port=1,actions=output:2", "priority=0,in_port=2,actions=output:1"]/' /tmp/k-base.toml > /tmp/k.toml
start
tail -1 /tmp/run.log
sleep 1
c1=$(txa2); sleep 1; c2=$(txa2)
echo "forwarded after the restart with the port rule: $((c2 - c1))"
wait $GEN
cp /tmp/k-base.toml /tmp/k.toml

sec stop
ctl dump-megaflows
kill -TERM $ODPX; wait $ODPX; echo "stopped rc=$?"
"#;

fn boot() -> VmRun {
    let odpx = Path::new(env!("CARGO_BIN_EXE_odpx"));
    let ip = which("ip").expect("iproute2's ip");
    let hosts = odpx_tests::repo().join("tools/vm-hosts.sh");
    VmRun::boot(SCRIPT, &[odpx, &ip, &hosts])
}

/// The section's output (the VM booted on first use).
fn section(name: &str) -> String {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    vm_section(&RUN, boot, name)
}

fn the_demo_forwards_ping_and_udp_through_the_kernel_datapath() {
    let s = section("demo");
    assert!(s.contains("demo rc=0"), "{s}");
    assert!(s.contains("the kernel datapath odpx0 with s1-s3 as vports"), "{s}");
    // The first second's flood of misses (TCG is slow) may cost a few
    // round trips; after that, every one is answered.
    for kind in ["ping", "UDP echo"] {
        let lines = odpx_tests::demo_round_trips(&s, kind);
        assert_eq!(lines.len(), 3, "{s}");
        for (l, got, sent) in lines {
            assert!(sent >= 20 && got + 8 >= sent, "{l}\n{s}");
        }
    }
    assert!(s.contains("sandbox removed"), "{s}");
    assert!(
        s.contains("datapaths left: 0"),
        "the namespace took its datapath along:\n{s}"
    );
}

fn rules_the_kernel_cannot_run_are_refused_with_the_reason() {
    let s = section("refused");
    assert!(s.contains("cannot rewrite ICMP fields"), "{s}");
    assert!(s.contains("bad config rc=1"), "{s}");
    assert!(
        s.contains("odpxbad created: 0"),
        "refused before anything is made:\n{s}"
    );
    let s = section("start");
    assert!(
        s.contains("cannot rewrite ICMP fields") && s.contains("refused add rc=1"),
        "add-flow refuses too:\n{s}"
    );
}

fn kernel_mode_starts_forwards_and_shows_the_datapath() {
    let s = section("start");
    assert!(
        s.contains("odpx: kernel datapath odpx0 with 2 port(s); per-CPU dispatch"),
        "{s}"
    );
    assert!(s.contains("0 kept, 0 given new actions, 0 deleted"), "{s}");
    assert!(s.contains("3 packets transmitted, 3 packets received"), "{s}");
    for want in [
        "lookups: hit:",
        "port 1: a1 (netdev)",
        "port 2: a2 (netdev)",
        "upcalls: per-CPU dispatch",
    ] {
        assert!(s.contains(want), "{want}:\n{s}");
    }
}

fn a_drop_rule_stops_a_long_lived_kernel_flow_when_add_flow_returns() {
    let s = section("drop-rule");
    let before = number(&s, "before the rule:");
    assert!(before >= 300, "the flow runs at about 500 pps:\n{s}");
    assert!(s.contains("add rc=0"), "{s}");
    assert_eq!(number(&s, "after the rule:"), 0, "the drop rule is enforced:\n{s}");
    // ovs-dpctl, the independent view: the same kernel flow, its actions
    // replaced in place (its packet count kept).
    let dpctl: Vec<&str> = s
        .lines()
        .skip_while(|l| *l != "-- dpctl")
        .skip(1)
        .take_while(|l| !l.starts_with("after the override"))
        .filter(|l| l.contains("in_port(1)"))
        .collect();
    assert_eq!(dpctl.len(), 1, "{s}");
    assert!(dpctl[0].ends_with("actions:drop"), "{s}");
    assert!(number(dpctl[0], "packets:") > 1000, "modified, not re-created:\n{s}");
    assert!(number(&s, "after the override:") >= 300, "{s}");
    assert!(
        s.lines()
            .skip_while(|l| *l != "-- dpctl again")
            .any(|l| l.contains("in_port(1)") && l.ends_with("actions:2")),
        "{s}"
    );
}

fn idle_flows_leave_the_kernel() {
    let s = section("idle");
    assert_eq!(number(&s, "kernel flows after 3 s idle:"), 0, "{s}");
    assert!(number(&s, "expired:") >= 1, "{s}");
}

fn vlan_tags_are_pushed_and_popped_by_the_kernel() {
    let s = section("vlan");
    assert!(s.contains("2 rules added"), "{s}");
    assert!(s.contains("3 packets transmitted, 3 packets received"), "{s}");
    let dpctl: Vec<&str> = s.lines().skip_while(|l| *l != "-- dpctl").skip(1).collect();
    assert!(
        dpctl
            .iter()
            .any(|l| l.starts_with("recirc_id(0),in_port(1)") && l.contains("actions:push_vlan(vid=10,pcp=0),2")),
        "{s}"
    );
    assert!(
        dpctl.iter().any(|l| l.starts_with("recirc_id(0),in_port(2)")
            && l.contains("vlan(vid=10")
            && l.ends_with("actions:pop_vlan,1")),
        "{s}"
    );
    assert!(s.contains("1 rules deleted"), "{s}");
}

fn a_restart_adopts_the_kernel_flows_and_loses_no_packet() {
    let s = section("restart");
    assert!(s.contains("stopped rc=0"), "{s}");
    assert!(number(&s, "flows while stopped:") >= 1, "{s}");
    assert!(
        number(&s, "flows of a previous run:") >= 1,
        "the flow was adopted:\n{s}"
    );
    let sent = number(&s, "sent ");
    assert!(sent >= 3000, "{s}");
    assert_eq!(number(&s, "received "), sent, "nothing lost across the restart:\n{s}");
}

fn after_kill_9_installed_flows_forward_misses_are_lost_and_a_restart_recovers() {
    let s = section("kill9");
    assert!(
        s.contains("2 packets transmitted, 0 packets received"),
        "a new flow cannot be set up while the daemon is gone:\n{s}"
    );
    assert!(
        number(&s, "lost while down:") >= 1,
        "the kernel counts the misses as lost:\n{s}"
    );
    assert!(s.contains("flows of a previous run:"), "{s}");
    assert!(
        s.contains("3 packets transmitted, 3 packets received"),
        "recovered:\n{s}"
    );
    let sent = number(&s, "sent ");
    assert!(sent >= 3000, "{s}");
    // Every generated frame, and the three echo replies of the ping after
    // the restart (the hosts' neighbours are static: no ARP).
    assert_eq!(
        number(&s, "received "),
        sent + 3,
        "the installed flow went on forwarding:\n{s}"
    );
}

fn adoption_gives_new_actions_or_deletes_what_the_new_rules_decide_otherwise() {
    let s = section("adopt-changes");
    assert!(
        s.contains("flows of a previous run: 0 kept, 1 given new actions, 0 deleted"),
        "{s}"
    );
    assert_eq!(number(&s, "forwarded after the restart with the drop rule:"), 0, "{s}");
    assert!(
        s.lines()
            .any(|l| l.contains("in_port(1),eth()") && l.ends_with("actions:drop")),
        "the adopted flow, its actions replaced:\n{s}"
    );
    assert!(
        s.contains("flows of a previous run: 0 kept, 0 given new actions, 1 deleted"),
        "{s}"
    );
    assert!(
        number(&s, "forwarded after the restart with the port rule:") >= 100,
        "{s}"
    );
}

fn the_daemon_stops_cleanly_and_dumps_its_kernel_flows() {
    let s = section("stop");
    assert!(s.contains("actions:"), "{s}");
    assert!(s.contains("stopped rc=0"), "{s}");
}

odpx_tests::cases! {
    [odpx_tests::harness::VM] => the_demo_forwards_ping_and_udp_through_the_kernel_datapath, rules_the_kernel_cannot_run_are_refused_with_the_reason, kernel_mode_starts_forwards_and_shows_the_datapath, a_drop_rule_stops_a_long_lived_kernel_flow_when_add_flow_returns, idle_flows_leave_the_kernel, vlan_tags_are_pushed_and_popped_by_the_kernel, a_restart_adopts_the_kernel_flows_and_loses_no_packet, after_kill_9_installed_flows_forward_misses_are_lost_and_a_restart_recovers, adoption_gives_new_actions_or_deletes_what_the_new_rules_decide_otherwise, the_daemon_stops_cleanly_and_dumps_its_kernel_flows;
}
