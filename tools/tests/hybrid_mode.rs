//! Hybrid mode (`datapath = "hybrid"`) against the real Open vSwitch
//! kernel datapath, in the test VM (`tools/vm.sh`, two CPUs: one for the
//! PMD), with Debian's `ovs-dpctl` as the independent view of the
//! kernel's flows.
//!
//! One VM boot runs every scenario as a section of one script; each
//! `#[test]` asserts on its own section:
//! * `odpx demo --datapath hybrid`: its flows move into the kernel, and
//!   ping and UDP echo are answered;
//! * start: the steering program passes the 6.1 kernel's verifier, the
//!   ports are AF_XDP ports and vports, a ping is switched;
//! * offload: a flow at 500 pps moves into the kernel after the threshold;
//!   then the kernel carries it (its `ovs-dpctl` count grows while the
//!   PMD's stays flat), and `dump-megaflows` marks it;
//! * rule changes: a drop rule fixes the offloaded flow in place before
//!   `add-flow` returns; a narrower rule brings it back to the PMDs;
//! * a restart and a `kill -9` under traffic: the kernel goes on
//!   forwarding the offloaded flow, the next run adopts and steers it
//!   again, and no packet is lost; then twenty `kill -9`s in a row;
//! * a steered port's interface deleted and re-created: the port is
//!   opened again and its kernel vport added back;
//! * `offload off` leaves no kernel flow and no steering entry;
//! * changing the mode to userspace removes the datapath;
//! * with a VXLAN port, encapsulation is offloaded as `set(tunnel(...))`
//!   to a kernel VXLAN vport, and Linux's vxlan device, the far VTEP,
//!   receives what the kernel sent;
//! * a randomized soak (`odpx-soak`): rule changes, MAC moves, flows
//!   starting and stopping and idle pauses on three ports while hot flows
//!   move into the kernel and back. Every frame must come out as a fresh
//!   translation decides, every kernel flow `ovs-dpctl` shows must give
//!   the same decision, and none may be left once traffic stops.

use odpx_tests::{number, vm_section, which, VmRun};
use std::path::Path;
use std::sync::OnceLock;

const SCRIPT: &str = r#"
set -u
PATH=/payload:$PATH
IP=/payload/ip
sec() { echo "=== $1"; }
txa2() { cat /sys/class/net/a2/statistics/tx_packets; }
pmdpkts() { ctl pmd-stats-show | sed -n 's/.*packets received: \([0-9]*\).*/\1/p' | head -1; }
kpkts() { ovs-dpctl dump-flows odpx0 | grep 'in_port(1)' | sed -n 's/.*packets:\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}'; }
kflows() { ovs-dpctl dump-flows odpx0 2>/dev/null | grep -c actions; }
start() { odpx_start /tmp/h.toml "$@"; }
gen() { $IP netns exec h1 odpx gen e1 --rate 500 --duration "$1" > /tmp/gen.out 2>&1 & GEN=$!; }
mkdir -p /run/odpx

sec demo
odpx demo --datapath hybrid --duration 12
echo "demo rc=$?"
echo "datapaths left: $(ovs-dpctl show 2>/dev/null | grep -c '^system@')"

. /payload/vm-hosts.sh
two_hosts
cat > /tmp/h.toml <<EOF
[switch]
socket = "/tmp/odpx.sock"
datapath = "hybrid"
rules_inline = ["priority=0,in_port=1,actions=output:2", "priority=0,in_port=2,actions=output:1"]
[[port]]
name = "a1"
[[port]]
name = "a2"
[pmd]
cores = [1]
[cache]
idle_timeout_ms = 4000
[offload]
min_pps = 100
min_duration_ms = 1000
EOF

sec start
start
grep 'odpx: hybrid' /tmp/run.log
ctl show
$IP netns exec h1 ping -c 3 -W 2 10.0.0.2 | grep 'packets transmitted'

sec offload
b0=$(txa2)
gen 16
sleep 6
echo "-- megaflows"
ctl dump-megaflows
echo "-- dpctl"
ovs-dpctl dump-flows odpx0
p1=$(pmdpkts); k1=$(kpkts); c1=$(txa2)
sleep 2
p2=$(pmdpkts); k2=$(kpkts); c2=$(txa2)
echo "pmd packets in 2 s: $((p2 - p1))"
echo "kernel flow packets in 2 s: $((k2 - k1))"
echo "forwarded in 2 s: $((c2 - c1))"
ctl show | sed -n '/^offload/,$p'

sec rule-change
ctl add-flow 'priority=100,in_port=1,actions=drop'; echo "add rc=$?"
c3=$(txa2); sleep 1; c4=$(txa2)
echo "after the drop rule: $((c4 - c3)) in 1 s"
echo "-- dpctl"
ovs-dpctl dump-flows odpx0 | grep 'in_port(1)'
ctl add-flow 'priority=200,in_port=1,actions=output:2'; echo "add rc=$?"
c5=$(txa2); sleep 1; c6=$(txa2)
echo "after the override: $((c6 - c5)) in 1 s"
back0=$(ctl show | sed -n 's/.*brought back: \([0-9]*\).*/\1/p')
ctl add-flow 'priority=300,in_port=1,udp,actions=output:2'; echo "add rc=$?"
back1=$(ctl show | sed -n 's/.*brought back: \([0-9]*\).*/\1/p')
echo "brought back by the narrower rule: $((back1 - back0))"
echo "kernel flows of port 1 after it: $(ovs-dpctl dump-flows odpx0 | grep -c 'in_port(1)')"
sleep 4
echo "-- megaflows later"
ctl dump-megaflows | grep 'in_port(1)'
wait $GEN
cat /tmp/gen.out

sec restart
b0=$(txa2)
gen 12
sleep 5
kill -TERM $ODPX; wait $ODPX; echo "stopped rc=$?"
k1=$(kpkts); sleep 1; k2=$(kpkts)
echo "kernel forwarded while stopped: $((k2 - k1))"
start
grep 'odpx: hybrid' /tmp/run.log | tail -1
wait $GEN
sleep 0.5
b1=$(txa2)
cat /tmp/gen.out
echo "received $((b1 - b0))"

sec kill9
sleep 5
b0=$(txa2)
gen 12
sleep 5
kill -9 $ODPX; wait $ODPX 2>/dev/null
k1=$(kpkts); sleep 1.5; k2=$(kpkts)
echo "kernel forwarded while killed: $((k2 - k1))"
start
grep 'odpx: hybrid' /tmp/run.log | tail -1
wait $GEN
sleep 0.5
b1=$(txa2)
cat /tmp/gen.out
echo "received $((b1 - b0))"

sec kill9-twenty
# Twenty kill -9s at moments that differ, under traffic (the offloaded
# flow at 500 pps): after each, the restart answers, each port holds one
# XDP program (the steering program replaced, not piled up), there is one
# kernel datapath, and a ping through the PMDs is answered.
b0=$(txa2)
gen 60
sleep 3
slowest=0
pings=0
for i in $(seq 20); do
  sleep 0.$(( (i * 37) % 10 ))
  kill -9 $ODPX; wait $ODPX 2>/dev/null
  left=$($IP link show | grep -c 'prog/xdp')
  t0=$(cut -d' ' -f1 /proc/uptime)
  # Started by hand: odpx_start's 0.2 s polls would add up to 0.2 s.
  odpx run -c /tmp/h.toml >> /tmp/run.log 2>&1 &
  ODPX=$!
  for _ in $(seq 100); do ctl show >/dev/null 2>&1 && break; sleep 0.05; done
  t1=$(cut -d' ' -f1 /proc/uptime)
  ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%d", (b - a) * 1000}')
  [ "$ms" -gt "$slowest" ] && slowest=$ms
  progs=$($IP link show | grep -c 'prog/xdp')
  dps=$(ovs-dpctl show 2>/dev/null | grep -c '^system@')
  pong=lost
  $IP netns exec h1 ping -c 1 -W 2 10.0.0.2 >/dev/null 2>&1 && pong=ok && pings=$((pings + 1))
  echo "round $i: xdp left $left, restart $ms ms, xdp programs $progs, datapaths $dps, ping $pong"
done
echo "slowest restart: $slowest ms"
echo "pings answered: $pings"
wait $GEN
sleep 0.5
b1=$(txa2)
cat /tmp/gen.out
echo "received $((b1 - b0))"
echo "offloaded again: $(grep -c 'offloaded again' /tmp/run.log)"

sec reopen
# The switched interface a2 deleted and made again under its name, its
# peer e2 back in h2 with its address and MAC: the link watch opens the
# port again and adds its kernel vport back at number 2; the offloaded
# flow from h1 then runs through the kernel again, and a ping through the
# PMDs is answered.
gen 20
sleep 4
mac2=$($IP -n h2 -br link show e2 | awk '{print $3}')
mac1=$($IP -n h1 -br link show e1 | awk '{print $3}')
$IP link del a2
sleep 1
echo "vports while a2 is gone: $(ovs-dpctl show odpx0 | grep -c 'port 2:')"
$IP link add a2 type veth peer name e2
$IP link set e2 netns h2
$IP -n h2 link set e2 address "$mac2"
$IP -n h2 addr add 10.0.0.2/24 dev e2
$IP -n h2 link set e2 up
$IP -n h2 neigh add 10.0.0.1 lladdr "$mac1" dev e2
$IP link set a2 up
for _ in $(seq 50); do grep -q 'port 2 (a2).*back in the switch' /tmp/run.log && break; sleep 0.2; done
grep 'port 2 (a2)' /tmp/run.log
ovs-dpctl show odpx0 | grep 'port 2:'
# Time to move into the kernel again (1 s at 100 pps, then a sweep).
sleep 3
k1=$(kpkts); c1=$(txa2); sleep 2; k2=$(kpkts); c2=$(txa2)
echo "kernel flow packets in 2 s after: $((k2 - k1))"
echo "forwarded in 2 s after: $((c2 - c1))"
echo "ping after: $($IP netns exec h1 ping -c 3 -W 2 10.0.0.2 | grep -o '[0-9]* packets received')"
ctl show | grep -A3 'port 2: a2' | grep 'link:'
echo "-- dpctl"
ovs-dpctl dump-flows odpx0
echo "-- megaflows"
ctl dump-megaflows
ctl show | sed -n '/^offload/,$p'
wait $GEN

sec offload-off
gen 8
sleep 5
echo "kernel flows before: $(kflows)"
ctl offload off
echo "kernel flows after: $(kflows)"
p1=$(pmdpkts); c1=$(txa2); sleep 1; p2=$(pmdpkts); c2=$(txa2)
echo "pmd packets in 1 s: $((p2 - p1))"
echo "forwarded in 1 s: $((c2 - c1))"
ctl show | grep 'offloaded:'
wait $GEN

sec mode-change
kill -TERM $ODPX; wait $ODPX
sed 's/^datapath = "hybrid"/datapath = "userspace"/' /tmp/h.toml > /tmp/u.toml
cp /tmp/u.toml /tmp/h.toml
start
grep 'removed kernel datapath' /tmp/run.log
echo "odpx0 datapaths: $(ovs-dpctl show 2>/dev/null | grep -c 'system@odpx0')"
$IP netns exec h1 ping -c 3 -W 2 10.0.0.2 | grep 'packets transmitted'
kill -TERM $ODPX; wait $ODPX; echo "stopped rc=$?"

sec vxlan
# The underlay: u0 here with the VTEP address, f0 in namespace far with
# Linux's vxlan device as the far VTEP (VNI 42).
$IP link add u0 type veth peer name f0
$IP netns add far
$IP link set f0 netns far
$IP addr add 172.31.0.1/24 dev u0
$IP link set u0 up
$IP -n far addr add 172.31.0.2/24 dev f0
$IP -n far link set f0 up
$IP -n far link add vx42 type vxlan id 42 local 172.31.0.2 remote 172.31.0.1 dstport 4789 dev f0
$IP -n far link set vx42 up
farrx() { $IP netns exec far cat /sys/class/net/vx42/statistics/rx_packets; }
cat > /tmp/h.toml <<EOF
[switch]
socket = "/tmp/odpx.sock"
datapath = "hybrid"
rules_inline = ["priority=0,in_port=1,actions=output:2", "priority=0,in_port=2,actions=output:1"]
[[port]]
name = "a1"
[[port]]
name = "vx0"
type = "vxlan"
remote_ip = "172.31.0.2"
key = 42
[[port]]
name = "u0"
type = "underlay"
[pmd]
cores = [1]
[offload]
min_pps = 100
min_duration_ms = 1000
EOF
start
grep 'odpx: hybrid' /tmp/run.log | tail -1
gen 12
sleep 6
echo "-- dpctl"
ovs-dpctl show odpx0 | grep 'port '
ovs-dpctl dump-flows odpx0
echo "-- megaflows"
ctl dump-megaflows | grep 'in_port(1)'
p1=$(pmdpkts); f1=$(farrx); k1=$(kpkts)
sleep 2
p2=$(pmdpkts); f2=$(farrx); k2=$(kpkts)
echo "pmd packets in 2 s: $((p2 - p1))"
echo "kernel flow packets in 2 s: $((k2 - k1))"
echo "far VTEP received in 2 s: $((f2 - f1))"
wait $GEN
kill -TERM $ODPX; wait $ODPX; echo "stopped rc=$?"

sec soak
# Three ports with their far ends here (no namespaces: the soak sends and
# receives on se1-se3 itself, with AF_XDP).
for i in 1 2 3; do
  $IP link add sa$i type veth peer name se$i
  $IP link set sa$i up
  $IP link set se$i up
done
cat > /tmp/s.toml <<EOF
[switch]
socket = "/tmp/odpx.sock"
datapath = "hybrid"
rules_inline = ["priority=0,actions=NORMAL"]
[[port]]
name = "sa1"
[[port]]
name = "sa2"
[[port]]
name = "sa3"
[pmd]
cores = [1]
[cache]
idle_timeout_ms = 2000
[offload]
min_pps = 50
min_duration_ms = 500
EOF
odpx_start /tmp/s.toml
odpx-soak -s /tmp/odpx.sock --port 1:se1 --port 2:se2 --port 3:se3 --seed 1 --steps 30 --phase 2 --pps 100 \
  --idle-ms 2000 --kernel-flows "ovs-dpctl dump-flows odpx0"
echo "soak rc=$?"
ctl show | sed -n '/^offload/,$p'
ctl pmd-stats-show | grep 'MAC addresses'
kill -TERM $ODPX; wait $ODPX; echo "stopped rc=$?"
"#;

fn boot() -> VmRun {
    let odpx = Path::new(env!("CARGO_BIN_EXE_odpx"));
    let ip = which("ip").expect("iproute2's ip");
    let soak = Path::new(env!("CARGO_BIN_EXE_odpx-soak"));
    let hosts = odpx_tests::repo().join("tools/vm-hosts.sh");
    VmRun::boot_smp(SCRIPT, &[odpx, soak, &ip, &hosts], 2)
}

/// The section's output (the VM booted on first use).
fn section(name: &str) -> String {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    vm_section(&RUN, boot, name)
}

fn the_demo_runs_in_hybrid_mode_and_offloads_its_flows() {
    let s = section("demo");
    assert!(s.contains("demo rc=0"), "{s}");
    assert!(s.contains("move into the kernel datapath odpx0"), "{s}");
    assert!(number(&s, "offloaded: ") >= 1, "the demo's flows moved:\n{s}");
    assert!(number(&s, "packets carried: kernel ") >= 100, "{s}");
    // The first seconds, before the flows move, the PMD under TCG's
    // emulation cannot take the demo's 25k pps and the rings overflow:
    // round trips of those seconds go unanswered (up to 12 of 60 seen);
    // then the kernel carries nearly everything.
    for kind in ["ping", "UDP echo"] {
        let lines = odpx_tests::demo_round_trips(&s, kind);
        assert!(lines.len() >= 3, "{s}");
        for (l, got, sent) in lines {
            assert!(sent >= 5 && got * 3 >= sent * 2, "{l}\n{s}");
        }
    }
    let last_second = s
        .lines()
        .take_while(|l| !l.starts_with("summary"))
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains("s "))
        .last()
        .unwrap_or_else(|| panic!("no live line:\n{s}"));
    let kernel_share: f64 = last_second
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no kernel share in: {last_second}"));
    assert!(kernel_share >= 95.0, "the kernel carries the traffic by the end:\n{s}");
    assert!(s.contains("sandbox removed"), "{s}");
    assert_eq!(number(&s, "datapaths left:"), 0, "{s}");
}

fn hybrid_mode_starts_with_the_steering_program_and_switches() {
    let s = section("start");
    assert!(
        s.contains("odpx: hybrid: 2 port(s) with 1 PMD thread(s), offloading to kernel datapath odpx0"),
        "the steering program passed the verifier and the ports opened:\n{s}"
    );
    assert!(s.contains("offload on"), "{s}");
    for want in [
        "(afxdp, steering in generic XDP, 1 queue(s))",
        "kernel datapath odpx0:",
        "port 1: a1 (netdev)",
        "offload: on",
    ] {
        assert!(s.contains(want), "{want}:\n{s}");
    }
    assert!(s.contains("3 packets transmitted, 3 packets received"), "{s}");
}

fn a_hot_flow_moves_into_the_kernel_which_then_carries_it() {
    let s = section("offload");
    let megaflows: Vec<&str> = s
        .lines()
        .skip_while(|l| *l != "-- megaflows")
        .take_while(|l| *l != "-- dpctl")
        .filter(|l| l.contains("in_port(1)"))
        .collect();
    assert!(
        megaflows.iter().any(|l| l.contains("offloaded:yes, dp:kernel")),
        "dump-megaflows marks the offloaded flow:\n{s}"
    );
    let dpctl: Vec<&str> = s
        .lines()
        .skip_while(|l| *l != "-- dpctl")
        .skip(1)
        .take_while(|l| !l.starts_with("pmd packets"))
        .filter(|l| l.contains("in_port(1)"))
        .collect();
    assert_eq!(dpctl.len(), 1, "ovs-dpctl sees the flow in the kernel:\n{s}");
    assert!(dpctl[0].ends_with("actions:2"), "{s}");
    let kernel = number(&s, "kernel flow packets in 2 s:");
    assert!(kernel >= 600, "the kernel carries the flow (500 pps):\n{s}");
    assert!(
        number(&s, "pmd packets in 2 s:") <= 10,
        "the PMD no longer sees its packets:\n{s}"
    );
    assert!(number(&s, "forwarded in 2 s:") >= 600, "{s}");
    assert!(number(&s, "offloaded: ") >= 1, "{s}");
    assert!(number(&s, "packets carried: kernel ") >= 600, "{s}");
}

fn rule_changes_fix_an_offloaded_flow_in_place_or_bring_it_back() {
    let s = section("rule-change");
    assert!(s.contains("add rc=0"), "{s}");
    assert_eq!(
        number(&s, "after the drop rule:"),
        0,
        "the drop rule is in force in the kernel when add-flow returns:\n{s}"
    );
    let dpctl: Vec<&str> = s
        .lines()
        .skip_while(|l| *l != "-- dpctl")
        .skip(1)
        .take_while(|l| !l.starts_with("add rc"))
        .collect();
    assert_eq!(dpctl.len(), 1, "{s}");
    assert!(dpctl[0].ends_with("actions:drop"), "fixed in place:\n{s}");
    assert!(
        number(dpctl[0], "packets:") > 1000,
        "the same flow, its count kept:\n{s}"
    );
    assert!(number(&s, "after the override:") >= 300, "{s}");
    assert_eq!(number(&s, "brought back by the narrower rule:"), 1, "{s}");
    assert_eq!(number(&s, "kernel flows of port 1 after it:"), 0, "{s}");
    let later: Vec<&str> = s.lines().skip_while(|l| *l != "-- megaflows later").skip(1).collect();
    assert!(
        later
            .iter()
            .any(|l| l.contains("eth_type(0x0800),ipv4(proto=") && l.contains("offloaded:yes")),
        "hot again under the new rules: offloaded again, with the narrower match:\n{s}"
    );
}

fn a_restart_under_traffic_keeps_the_offloaded_flow_and_loses_nothing() {
    let s = section("restart");
    assert!(s.contains("stopped rc=0"), "{s}");
    assert!(
        number(&s, "kernel forwarded while stopped:") >= 300,
        "with the XDP program gone, the kernel takes every packet:\n{s}"
    );
    assert!(number(&s, "deleted, ") >= 0 && s.contains("1 offloaded again"), "{s}");
    let sent = number(&s, "sent ");
    assert!(sent >= 4000, "{s}");
    assert_eq!(number(&s, "received "), sent, "nothing lost:\n{s}");
}

fn after_kill_9_the_kernel_forwards_the_offloaded_flow_and_a_restart_adopts_it() {
    let s = section("kill9");
    assert!(number(&s, "kernel forwarded while killed:") >= 400, "{s}");
    assert!(s.contains("1 offloaded again"), "{s}");
    let sent = number(&s, "sent ");
    assert!(sent >= 4000, "{s}");
    assert_eq!(number(&s, "received "), sent, "nothing lost:\n{s}");
}

/// Issue 13's twenty `kill -9`s, in hybrid mode: no XDP program outlives
/// the process (the bpf_links go with it; the kernel datapath and its
/// flows stay on purpose, and carry the offloaded flow meanwhile), the
/// restart takes them over instead of piling new ones up and answers
/// within 2 s, and traffic resumes.
fn twenty_kill_9s_in_hybrid_mode_restart_within_2_s_and_lose_nothing_offloaded() {
    let s = section("kill9-twenty");
    let rounds: Vec<&str> = s.lines().filter(|l| l.starts_with("round ")).collect();
    assert_eq!(rounds.len(), 20, "{s}");
    for l in rounds {
        assert!(
            l.contains("xdp left 0,")
                && l.contains("xdp programs 2,")
                && l.contains("datapaths 1,")
                && l.ends_with("ping ok"),
            "{l}\n{s}"
        );
        assert!(number(l, "restart ") < 2000, "{l}\n{s}");
    }
    let sent = number(&s, "sent ");
    assert!(sent >= 20_000, "{s}");
    // a2 also sent the pings' requests on to h2.
    eprintln!(
        "{}",
        s.lines().find(|l| l.starts_with("slowest restart")).unwrap_or_default()
    );
    let pings = number(&s, "pings answered: ");
    assert_eq!(pings, 20, "{s}");
    assert_eq!(
        number(&s, "received "),
        sent + pings,
        "the offloaded flow lost nothing:\n{s}"
    );
}

/// Issue 13's port flaps in hybrid mode: a steered port whose interface
/// is re-created is opened again, its kernel vport is back at its number,
/// and both paths carry traffic through it again.
fn a_re_created_interface_in_hybrid_mode_comes_back_with_its_kernel_vport() {
    let s = section("reopen");
    assert_eq!(
        number(&s, "vports while a2 is gone: "),
        0,
        "the kernel removed it:\n{s}"
    );
    assert!(
        s.contains("port 2 (a2): the interface is back") && s.contains("back in the switch"),
        "{s}"
    );
    assert!(s.contains("its kernel vport added again"), "{s}");
    assert!(s.contains("port 2: a2"), "{s}");
    assert!(
        number(&s, "kernel flow packets in 2 s after: ") >= 500,
        "the kernel carries it again:\n{s}"
    );
    assert!(number(&s, "forwarded in 2 s after: ") >= 900, "{s}");
    assert_eq!(number(&s, "ping after: "), 3, "{s}");
    assert!(s.contains("opened again 1 time"), "{s}");
}

fn offload_off_leaves_no_kernel_flow_and_no_steering_entry() {
    let s = section("offload-off");
    assert!(number(&s, "kernel flows before:") >= 1, "{s}");
    assert!(s.contains("offload off; "), "{s}");
    assert_eq!(number(&s, "kernel flows after:"), 0, "{s}");
    let pmd = number(&s, "pmd packets in 1 s:");
    let fwd = number(&s, "forwarded in 1 s:");
    assert!(fwd >= 300, "{s}");
    assert!(
        pmd >= fwd - 20,
        "every packet reaches the PMD again (nothing steered):\n{s}"
    );
    assert!(s.contains("offloaded: 0 (steering masks: 0"), "{s}");
}

fn vxlan_encapsulation_is_offloaded_to_a_kernel_vxlan_vport() {
    let s = section("vxlan");
    assert!(s.contains("odpx: hybrid: 3 port(s)"), "{s}");
    assert!(
        s.lines().any(|l| l.contains("port 2: vx0 (vxlan")),
        "the VXLAN port is a kernel VXLAN vport:\n{s}"
    );
    let dpctl: Vec<&str> = s
        .lines()
        .skip_while(|l| *l != "-- dpctl")
        .take_while(|l| *l != "-- megaflows")
        .filter(|l| l.contains("in_port(1)"))
        .collect();
    assert_eq!(dpctl.len(), 1, "{s}");
    assert!(
        dpctl[0].contains("actions:set(tunnel(tun_id=0x2a,src=172.31.0.1,dst=172.31.0.2,")
            && dpctl[0].contains("flags(df|key))),2"),
        "the push, in the kernel's form:\n{s}"
    );
    assert!(s.contains("offloaded:yes, dp:kernel"), "{s}");
    assert!(number(&s, "kernel flow packets in 2 s:") >= 600, "{s}");
    assert!(number(&s, "pmd packets in 2 s:") <= 10, "{s}");
    assert!(
        number(&s, "far VTEP received in 2 s:") >= 600,
        "Linux's VTEP decapsulates what the kernel encapsulated:\n{s}"
    );
    assert!(s.contains("stopped rc=0"), "{s}");
}

fn changing_the_mode_to_userspace_removes_the_kernel_datapath() {
    let s = section("mode-change");
    assert!(s.contains("removed kernel datapath odpx0"), "{s}");
    assert_eq!(number(&s, "odpx0 datapaths:"), 0, "{s}");
    assert!(s.contains("3 packets transmitted, 3 packets received"), "{s}");
    assert!(s.contains("stopped rc=0"), "{s}");
}

fn a_randomized_soak_gets_no_old_decision_on_any_path_and_leaves_no_stale_kernel_flow() {
    let s = section("soak");
    assert!(s.contains("soak rc=0"), "{s}");
    assert!(number(&s, "soak: ") >= 20_000, "frames checked:\n{s}");
    assert!(s.contains(" 0 wrong, 0 missing"), "{s}");
    // Every kind of change happened (seed 1 draws each at least once).
    for what in [
        "rules added, ",
        "deletes, ",
        "MAC moves, ",
        "flow starts/stops, ",
        "idle pauses",
    ] {
        let n: i64 = s
            .lines()
            .find(|l| l.starts_with("changes:"))
            .and_then(|l| l.split(what).next())
            .and_then(|head| head.trim_end().rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count of '{what}':\n{s}"));
        assert!(n >= 1, "{what}:\n{s}");
    }
    assert!(number(&s, "kernel: ") >= 20, "ovs-dpctl showed flows to check:\n{s}");
    assert!(s.contains(", 0 stale; 0 flows left after idle"), "{s}");
    assert!(number(&s, "moved: ") >= 10, "hot flows moved into the kernel:\n{s}");
    assert!(number(&s, "brought back: ") >= 10, "{s}");
    assert!(number(&s, "packets carried: kernel ") >= 10_000, "{s}");
    assert!(number(&s, "(moved: ") >= 1, "the switch learned the moves:\n{s}");
    assert!(s.contains("stopped rc=0"), "{s}");
}

odpx_tests::cases! {
    [odpx_tests::harness::VM] => the_demo_runs_in_hybrid_mode_and_offloads_its_flows, hybrid_mode_starts_with_the_steering_program_and_switches, a_hot_flow_moves_into_the_kernel_which_then_carries_it, rule_changes_fix_an_offloaded_flow_in_place_or_bring_it_back, a_restart_under_traffic_keeps_the_offloaded_flow_and_loses_nothing, after_kill_9_the_kernel_forwards_the_offloaded_flow_and_a_restart_adopts_it, twenty_kill_9s_in_hybrid_mode_restart_within_2_s_and_lose_nothing_offloaded, a_re_created_interface_in_hybrid_mode_comes_back_with_its_kernel_vport, offload_off_leaves_no_kernel_flow_and_no_steering_entry, vxlan_encapsulation_is_offloaded_to_a_kernel_vxlan_vport, changing_the_mode_to_userspace_removes_the_kernel_datapath, a_randomized_soak_gets_no_old_decision_on_any_path_and_leaves_no_stale_kernel_flow;
}
