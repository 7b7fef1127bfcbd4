#!/usr/bin/env bash
# Fast-failover time, side by side: odpx and Open vSwitch 3.1 (a netdev
# bridge with afxdp ports), each with the same fast-failover group:
#
#   group_id=1,type=ff,bucket=watch_port:2,actions=output:2,bucket=watch_port:3,actions=output:3
#   in_port=1,actions=group:1
#
#   sudo tools/failover-bench.sh [ROUNDS] [RATE]
#
# h1 sends RATE (default 20000) UDP packets a second for 3 s through the
# switch's port 1; h2 (port 2) and h3 (port 3) count what arrives with
# `odpx sink`. One second in, port 2's link goes down (`ip link set t2
# down` on the switch's side): no controller is involved. The packets
# that reached neither host, divided by the rate, are the time traffic
# had nowhere to go: the failover time. ROUNDS (default 3) alternate the
# two switches, each started afresh; prints each round and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
rate=${2:-20000}
tag=$$
NS=odpx-fo-$tag H1=odpx-fo1-$tag H2=odpx-fo2-$tag H3=odpx-fo3-$tag
. tools/bench-common.sh
bench_setup $NS $H1 $H2 $H3
hosts=($H1 $H2 $H3)
wire() {
  for i in 1 2 3; do
    local h=${hosts[$((i - 1))]}
    ip -n $NS link del t$i 2>/dev/null || true
    ip -n $NS link add t$i numrxqueues 1 numtxqueues 1 type veth peer name eth0 netns $h numrxqueues 1 numtxqueues 1
    ip -n $NS link set t$i up
    ip netns exec $NS sysctl -qw net.ipv6.conf.t$i.disable_ipv6=1
    ip netns exec $h sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
    ip -n $h link set eth0 up
  done
}
switch_config t1 t2 t3
printf '[openflow]\nlisten = "punix:%s"\ndatapath_id = "0x1"\nfail_mode = "secure"\n' "$work/odpx.mgmt" >> "$work/odpx.toml"

# round SYSTEM: one measurement; prints "SYSTEM sent N h2 N h3 N lost N gap_ms X".
round() {
  local sys=$1
  wire
  openflow_start "$sys" $NS t1 t2 t3
  ovs-ofctl -O OpenFlow13 add-group "$target" 'group_id=1,type=ff,bucket=watch_port:2,actions=output:2,bucket=watch_port:3,actions=output:3'
  ovs-ofctl -O OpenFlow13 add-flow "$target" 'in_port=1,actions=group:1'
  local sinks=()
  for i in 2 3; do
    ip netns exec ${hosts[$((i - 1))]} "$odpx" sink eth0 --core 0 --duration 4.5 --quiet > "$work/sink$i" 2>&1 &
    sinks+=($!)
  done
  sleep 0.5
  ip netns exec $H1 "$odpx" gen eth0 --rate "$rate" --duration 3 --core 0 > "$work/gen" 2>&1 &
  local gen=$!
  sleep 1
  ip -n $NS link set t2 down
  wait $gen "${sinks[@]}"
  local sent rx2 rx3 lost
  sent=$(sed -n 's/^sent \([0-9]*\).*/\1/p' "$work/gen")
  rx2=$(sed -n 's/^received \([0-9]*\).*/\1/p' "$work/sink2")
  rx3=$(sed -n 's/^received \([0-9]*\).*/\1/p' "$work/sink3")
  lost=$((sent - rx2 - rx3))
  echo "$sys sent $sent h2 $rx2 h3 $rx3 lost $lost gap_ms $(awk -v l=$lost -v r=$rate 'BEGIN{printf "%.1f", l / r * 1000}')"
  system_stop "$sys"
}

results=()
for r in $(seq "$rounds"); do
  for sys in odpx ovs; do
    line=$(round $sys)
    echo "round $r: $line"
    results+=("$line")
  done
done
echo "== median failover time (ms), $rounds rounds at $rate pps"
for sys in odpx ovs; do
  printf '%s\n' "${results[@]}" | awk -v s=$sys '$1 == s {print $NF}' | sort -n |
    awk -v s=$sys '{v[NR]=$1} END {printf "%s %s (min %s, max %s)\n", s, v[int((NR+1)/2)], v[1], v[NR]}'
done
