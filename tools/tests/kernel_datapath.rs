//! `odpx datapath | vport | flow | packet` against the real Open vSwitch
//! kernel datapath, in the test VM (`tools/vm.sh`: Debian's 6.1 cloud
//! kernel with openvswitch.ko, and Debian's `ovs-dpctl` 3.1 as an
//! independent client to cross-check with).
//!
//! One VM boot runs every scenario as a section of one script (a boot costs
//! seconds of TCG emulation); each `#[test]` below asserts on its section,
//! so each scenario passes or fails on its own.

use odpx_tests::{dumped, kernel_flows, vm_section, which, VmRun};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

const SCRIPT: &str = r#"
set -u
PATH=/payload:$PATH
sec() { echo "=== $1"; }
rx() { cat /sys/class/net/$1/statistics/rx_packets; }
port_of() { odpx vport list "$1" | awk -v n="$2" '$3 == n { print $4 }'; }
# busybox's shell runs its own `ip` applet whatever PATH says, and that
# one cannot name a veth peer: use iproute2's, shipped in /payload.
IP=/payload/ip
# No IPv6 autoconfiguration traffic on the test links: every packet that
# reaches b0 must have come through the datapath.
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
$IP link add a0 type veth peer name a1
$IP link add b0 type veth peer name b1
$IP link add c0 type veth peer name c1
$IP link add d0 type veth peer name d1
for i in a0 a1 b0 b1 c0 c1 d0 d1; do $IP link set $i up; done
$IP addr add 10.0.0.1/24 dev a0
$IP addr add 10.0.1.1/24 dev d0

sec datapaths
odpx datapath add dp0; echo "add rc=$?"
odpx datapath list
odpx datapath show dp0
odpx datapath set dp0 --masks-cache-size 32; echo "set rc=$?"
echo "-- dpctl"
ovs-dpctl show dp0 2>/dev/null
ovs-dpctl add-dp dp1 2>/dev/null
ovs-dpctl add-if dp1 c1 2>/dev/null
echo "-- odpx after dpctl"
odpx datapath list
odpx vport list dp1
odpx datapath show dp1

sec vports
odpx vport add netdev dp0 a1
odpx vport add netdev dp0 b1
odpx vport add vxlan dp0 vx0 --port 4790
odpx vport add geneve dp0 gnv0
odpx vport add gre dp0 gt0
odpx vp ad in dp0 int0
odpx v l dp0
echo "-- dpctl"
ovs-dpctl show dp0 2>/dev/null | grep 'port '
odpx vport delete int0; echo "delete rc=$?"
echo "-- dpctl after delete"
ovs-dpctl show dp0 2>/dev/null | grep 'port '

sec flows-from-odpx
while IFS='	' read -r key acts; do
  odpx flow add dp2 "$key" "$acts" || echo "ADD FAILED: $key"
done < /payload/flows.tsv
echo "-- dpctl"
ovs-dpctl dump-flows dp2 2>/dev/null
echo "-- odpx"
odpx flow list --stats dp2

sec flows-from-dpctl
while IFS='	' read -r key acts; do
  ovs-dpctl add-flow dp3 "$key" "$acts" 2>/dev/null || echo "DPCTL ADD FAILED: $key"
done < /payload/flows.tsv
echo "-- dpctl"
ovs-dpctl dump-flows dp3 2>/dev/null
echo "-- odpx"
odpx flow list --stats dp3

sec go-odp-flags
odpx flow add dp0 --in-port a1 --eth-dst ff:ff:ff:ff:ff:ff --set-tunnel-id 000000000000002a --set-tunnel-ipv4-dst 192.0.2.7 --set-tunnel-ttl 64 --output b1,vx0; echo "add rc=$?"
odpx flow add dp0 --in-port b1 --eth-src '02:00:00:00:00:01&ff:ff:ff:00:00:00' --tunnel-id 0x5 --tunnel-ipv4-dst 192.0.2.1 --output a1; echo "add rc=$?"
ovs-dpctl dump-flows dp0 2>/dev/null
odpx fl g dp0 --in-port a1 --eth-dst ff:ff:ff:ff:ff:ff
odpx flow delete dp0 --in-port a1 --eth-dst ff:ff:ff:ff:ff:ff; echo "delete rc=$?"
odpx flow get dp0 --in-port a1 --eth-dst ff:ff:ff:ff:ff:ff; echo "get rc=$?"
odpx flow clear dp0; echo "clear rc=$?"
ovs-dpctl dump-flows dp0 2>/dev/null | wc -l

sec ufid
odpx flow add dp0 --ufid 0123456789abcdef0123456789abcdef 'in_port(1),eth(),eth_type(0x0800),ipv4(frag=no)' 2; echo "add rc=$?"
odpx flow list --ufid dp0
odpx flow list --terse dp0
echo "-- dpctl get-flow"
ovs-dpctl get-flow dp0 ufid:01234567-89ab-cdef-0123-456789abcdef 2>/dev/null
echo "-- odpx get"
odpx flow get dp0 --ufid 01234567-89ab-cdef-0123-456789abcdef
odpx flow delete dp0 --ufid 0123456789abcdef0123456789abcdef; echo "delete rc=$?"
odpx flow list dp0 | wc -l

sec forward
A1=$(port_of dp0 a1); B1=$(port_of dp0 b1)
odpx flow add dp0 "in_port($A1),eth()" "$B1"; echo "add rc=$?"
before=$(rx b0)
arping -I a0 -c 3 -w 3 10.0.0.2 >/dev/null 2>&1
after=$(rx b0)
echo "b0 received $((after - before))"
odpx flow list --stats dp0
odpx flow clear dp0

sec listen
odpx datapath listen --keys --count 1 --timeout 20 --pcap /tmp/miss.pcap dp0 > /tmp/listen.out 2>&1 &
LPID=$!
sleep 2
arping -I a0 -c 2 -w 2 10.0.0.3 >/dev/null 2>&1
wait $LPID; echo "listen rc=$?"
cat /tmp/listen.out
odpx parse-pcap /tmp/miss.pcap --in-port 1
odpx datapath listen --count 1 --timeout 20 --pcap - dp0 > /tmp/stream.pcap 2>/dev/null &
LPID=$!
sleep 2
arping -I a0 -c 2 -w 2 10.0.0.4 >/dev/null 2>&1
wait $LPID; echo "stream rc=$?"
odpx parse-pcap /tmp/stream.pcap | head -1
odpx datapath listen --count 1 --timeout 3 dp2 > /dev/null 2>/tmp/to.err; echo "timeout rc=$?"
cat /tmp/to.err
echo "-- per-vport"
odpx datapath add dpv --no-per-cpu
odpx vport add netdev dpv d1 >/dev/null
odpx datapath show dpv | grep upcalls
odpx datapath listen --keys --raw --count 1 --timeout 20 dpv > /tmp/pv.out 2>&1 &
LPID=$!
sleep 2
arping -I d0 -c 2 -w 2 10.0.1.2 >/dev/null 2>&1
wait $LPID; echo "per-vport rc=$?"
cat /tmp/pv.out
echo "-- action"
odpx datapath listen --count 1 --timeout 20 dp0 > /tmp/act.out 2>&1 &
LPID=$!
sleep 2
PID=$(sed -n 's/.*-> pid \([0-9]*\))$/\1/p' /tmp/act.out)
A1=$(port_of dp0 a1)
odpx flow add dp0 "in_port($A1),eth()" "userspace(pid=$PID,userdata(0a0b0c0d))"; echo "flow rc=$?"
arping -I a0 -c 2 -w 2 10.0.0.5 >/dev/null 2>&1
wait $LPID; echo "action rc=$?"
cat /tmp/act.out
odpx flow clear dp0

sec execute
B1=$(port_of dp0 b1)
before=$(rx b0)
odpx packet execute dp0 --in-port a1 'ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002' "$B1"; echo "execute rc=$?"
after=$(rx b0)
echo "b0 received $((after - before))"

sec errors
odpx datapath delete nosuch; echo "rc=$?"
odpx vport add netdev dp0 nosuchdev; echo "rc=$?"
odpx flow add dp0 'in_port(2),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp(dst=80)' 1
odpx flow add dp0 'in_port(2),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp(dst=80)' 1; echo "rc=$?"
odpx flow add dp0 'in_port(2),eth(),eth_type(0x0800),ipv4(proto=6/0xf0,frag=no),tcp(dst=80)' 1; echo "rc=$?"
odpx flow add dp0 'in_port(2),eth(),eth_type(0x0800),ipv4(frag=no)' 'tnl_pop(3)'; echo "rc=$?"
odpx flow delete dp0 'in_port(7),eth()'; echo "rc=$?"
odpx flow add dp0 'in_port(2),eth(),eth_type(0x0800),ipv4(frag=no)' 'set(tcp(dst=81)),1'; echo "rc=$?"
odpx vport add g dp0 x; echo "rc=$?"

sec teardown
odpx datapath delete dp1; echo "rc=$?"
odpx datapath list
ovs-dpctl show 2>/dev/null | grep '^system@'
"#;

fn boot() -> VmRun {
    let dir = std::env::temp_dir().join(format!("odpx-kernel-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tsv = dir.join("flows.tsv");
    let mut t = String::new();
    for (line, _) in kernel_flows() {
        let (k, a) = line.split_once(" actions:").unwrap();
        t += &format!("{k}\t{a}\n");
    }
    std::fs::write(&tsv, t).unwrap();
    let odpx = Path::new(env!("CARGO_BIN_EXE_odpx"));
    let ip = which("ip").expect("iproute2's ip");
    // dp2/dp3 are created up front so the corpus sections stand alone.
    let script = SCRIPT.replacen(
        "sec datapaths",
        "odpx datapath add dp2 >/dev/null; ovs-dpctl add-dp dp3 2>/dev/null\nsec datapaths",
        1,
    );
    let run = VmRun::boot(&script, &[odpx, &ip, &tsv]);
    let _ = std::fs::remove_dir_all(&dir);
    run
}

/// The section's output (the VM booted on first use).
fn section(name: &str) -> String {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    vm_section(&RUN, boot, name)
}

/// The lines between `-- from` and the next `-- ` marker (or the end).
fn part<'a>(s: &'a str, from: &str) -> Vec<&'a str> {
    s.lines()
        .skip_while(|l| *l != from)
        .skip(1)
        .take_while(|l| !l.starts_with("-- "))
        .collect()
}

fn datapaths_created_by_either_tool_are_seen_by_both() {
    let s = section("datapaths");
    assert!(s.contains("add rc=0") && s.contains("set rc=0"), "{s}");
    assert!(s.lines().any(|l| l.ends_with(": dp0")), "odpx lists its datapath:\n{s}");
    assert!(s.contains("  upcalls: per-cpu"), "per-CPU upcall dispatch on 6.1:\n{s}");
    let dpctl = part(&s, "-- dpctl").join("\n");
    assert!(dpctl.contains("system@dp0:"), "ovs-dpctl sees odpx's datapath:\n{s}");
    assert!(
        dpctl.contains("masks-cache: size:32"),
        "the masks cache size was set:\n{s}"
    );
    let after = part(&s, "-- odpx after dpctl").join("\n");
    assert!(
        after.lines().any(|l| l.ends_with(": dp1")),
        "odpx sees ovs-dpctl's datapath:\n{s}"
    );
    assert!(after.contains("netdev dp1 c1 1"), "odpx lists ovs-dpctl's vport:\n{s}");
    assert!(after.contains("system@dp1:") && after.contains("port 1: c1"), "{s}");
}

fn vports_of_every_type_match_ovs_dpctl() {
    let s = section("vports");
    for want in [
        "netdev dp0 a1 1",
        "netdev dp0 b1 2",
        "vxlan dp0 vx0 3 --port=4790",
        "geneve dp0 gnv0 4 --port=6081",
        "gre dp0 gt0 5",
        "internal dp0 int0 6",
    ] {
        assert!(s.lines().any(|l| l == want), "odpx vport list lacks '{want}':\n{s}");
    }
    let dpctl = part(&s, "-- dpctl").join("\n");
    for want in [
        "port 1: a1",
        "port 2: b1",
        "port 3: vx0 (vxlan",
        "port 4: gnv0 (geneve",
        "port 5: gt0 (gre",
        "port 6: int0 (internal)",
    ] {
        assert!(dpctl.contains(want), "ovs-dpctl show lacks '{want}':\n{s}");
    }
    assert!(s.contains("delete rc=0"), "{s}");
    assert!(!part(&s, "-- dpctl after delete").join("\n").contains("int0"), "{s}");
}

fn dump_set(lines: Vec<&str>) -> BTreeSet<String> {
    lines
        .into_iter()
        .filter(|l| l.contains("actions:"))
        .map(str::to_string)
        .collect()
}

fn flows_odpx_installs_dump_identically_in_ovs_dpctl() {
    let s = section("flows-from-odpx");
    assert!(!s.contains("ADD FAILED"), "the kernel refused odpx's flows:\n{s}");
    let dpctl = dump_set(part(&s, "-- dpctl"));
    let odpx = dump_set(part(&s, "-- odpx"));
    let flows = kernel_flows();
    assert_eq!(dpctl.len(), flows.len(), "{s}");
    for (line, kernel_form) in &flows {
        let want = dumped(kernel_form.as_deref().unwrap_or(line));
        assert!(dpctl.contains(&want), "ovs-dpctl does not show\n{want}\n{s}");
    }
    assert_eq!(odpx, dpctl, "odpx flow list --stats differs from ovs-dpctl dump-flows");
}

fn flows_ovs_dpctl_installs_are_listed_identically_by_odpx() {
    let s = section("flows-from-dpctl");
    assert!(!s.contains("DPCTL ADD FAILED"), "{s}");
    let dpctl = dump_set(part(&s, "-- dpctl"));
    let odpx = dump_set(part(&s, "-- odpx"));
    assert_eq!(dpctl.len(), kernel_flows().len(), "{s}");
    assert_eq!(odpx, dpctl, "odpx flow list --stats differs from ovs-dpctl dump-flows");
}

fn go_odp_flags_make_the_same_flows_and_delete_them() {
    let s = section("go-odp-flags");
    assert_eq!(s.matches("add rc=0").count(), 2, "{s}");
    assert!(
        s.contains("in_port(1),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0/0x0000), packets:0, bytes:0, used:never, actions:set(tunnel(tun_id=0x2a,dst=192.0.2.7,ttl=64,flags(key))),2,3"),
        "{s}"
    );
    assert!(
        s.contains("tunnel(tun_id=0x5,dst=192.0.2.1,flags(+key)),in_port(2),eth(src=02:00:00:00:00:00/ff:ff:ff:00:00:00),eth_type(0/0x0000), packets:0, bytes:0, used:never, actions:1"),
        "{s}"
    );
    assert!(s.contains("delete rc=0"), "{s}");
    assert!(s.contains("no such flow (ENOENT)") && s.contains("get rc=1"), "{s}");
    assert!(s.contains("clear rc=0") && s.trim_end().ends_with('0'), "{s}");
}

fn flows_with_ufids_are_found_by_ufid() {
    let s = section("ufid");
    assert!(s.contains("add rc=0") && s.contains("delete rc=0"), "{s}");
    let flow = "in_port(1),eth(),eth_type(0x0800),ipv4(frag=no)";
    let ufid = "ufid:01234567-89ab-cdef-0123-456789abcdef";
    assert!(s.lines().any(|l| l == format!("{ufid}, {flow} actions:2")), "{s}");
    // --terse: the kernel omitted the key.
    assert!(s.lines().any(|l| l == format!("{ufid} actions:2")), "{s}");
    let dpctl = part(&s, "-- dpctl get-flow").join("\n");
    assert!(
        dpctl.contains(&format!("{flow}, packets:0")),
        "ovs-dpctl get-flow finds it:\n{s}"
    );
    let get = part(&s, "-- odpx get").join("\n");
    assert!(get.contains(&format!("{ufid}, {flow}, packets:0")), "{s}");
    assert!(s.trim_end().ends_with('0'), "{s}");
}

fn a_flow_forwards_packets_between_veth_vports() {
    let s = section("forward");
    assert!(s.contains("add rc=0"), "{s}");
    let got: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("b0 received "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{s}"));
    assert!(got >= 3, "3 ARP requests sent into a0 must come out of b0:\n{s}");
    let stats = s
        .lines()
        .find(|l| l.contains("packets:"))
        .unwrap_or_else(|| panic!("{s}"));
    let n: u64 = stats
        .split("packets:")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= 3, "the flow counted the packets:\n{s}");
}

fn listen_reports_a_miss_with_its_key_and_as_pcap() {
    let s = section("listen");
    assert!(s.contains("listen rc=0"), "{s}");
    let miss = s
        .lines()
        .find(|l| l.starts_with("dp0: miss, "))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        miss.contains("in_port(1),") && miss.contains("eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.3,op=1"),
        "the kernel's key of the ARP request:\n{s}"
    );
    // The pcap file holds the same ARP request.
    assert!(
        s.lines()
            .any(|l| l.starts_with("recirc_id(0)") && l.contains("arp(sip=10.0.0.1,tip=10.0.0.3,op=1")),
        "{s}"
    );
    assert!(s.contains("stream rc=0"), "{s}");
    assert!(
        s.contains("arp(sip=10.0.0.1,tip=10.0.0.4,op=1"),
        "pcap stream on stdout:\n{s}"
    );
    assert!(
        s.contains("timeout rc=1") && s.contains("timed out after 0 of 1 upcalls"),
        "{s}"
    );
}

fn execute_sends_a_packet_out_a_vport() {
    let s = section("execute");
    assert!(s.contains("execute rc=0"), "{s}");
    assert!(s.contains("b0 received 1"), "{s}");
}

fn errors_are_one_line_reasons_with_the_kernel_errno() {
    let s = section("errors");
    for want in [
        "odpx: datapath nosuch: no such datapath (ENODEV)",
        "odpx: vport nosuchdev (netdev): no such datapath, or no such network device for a netdev vport (ENODEV)",
        "a flow with that key (or UFID) exists (EEXIST)",
        "tcp fields are matched but the IP protocol is not matched exactly",
        "tnl_push/tnl_pop are userspace-only actions",
        "odpx: flow: no such flow (ENOENT)",
        // EINVAL, explained by the kernel's own log line.
        "the kernel rejected a key, mask or action attribute (EINVAL); kernel says: Flow actions may not be safe on all matching packets.",
    ] {
        assert!(s.contains(want), "missing '{want}':\n{s}");
    }
    assert_eq!(s.matches("rc=1").count(), 7, "{s}");
    assert!(s.contains("rc=2"), "an ambiguous abbreviation is a usage error:\n{s}");
}

fn deleting_a_datapath_removes_it_for_both_tools() {
    let s = section("teardown");
    assert!(s.contains("rc=0"), "{s}");
    assert!(!s.contains("dp1"), "{s}");
    assert!(s.contains("system@dp0:"), "{s}");
}

odpx_tests::cases! {
    [odpx_tests::harness::VM] => datapaths_created_by_either_tool_are_seen_by_both, vports_of_every_type_match_ovs_dpctl, flows_odpx_installs_dump_identically_in_ovs_dpctl, flows_ovs_dpctl_installs_are_listed_identically_by_odpx, go_odp_flags_make_the_same_flows_and_delete_them, flows_with_ufids_are_found_by_ufid, a_flow_forwards_packets_between_veth_vports, listen_reports_a_miss_with_its_key_and_as_pcap, execute_sends_a_packet_out_a_vport, errors_are_one_line_reasons_with_the_kernel_errno, deleting_a_datapath_removes_it_for_both_tools;
}
