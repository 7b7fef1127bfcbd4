#!/usr/bin/env bash
# FLOW_MOD throughput, side by side: odpx and Open vSwitch 3.1 (a netdev
# bridge with afxdp ports, its flow cache on), programmed by the same
# client, Debian's `ovs-ofctl` 3.1 over OpenFlow 1.3 on a unix socket.
#
#   sudo tools/flowmod-bench.sh [ROUNDS] [RATE] [N...]
#
# ROUNDS (default 3) alternate the two switches, each started afresh. In
# each, for every N (default 10000 100000): N rules
# (`priority=100,ip,nw_dst=172.A.B.C,actions=output:2`, all different)
# go in with `ovs-ofctl add-flows`, which sends the FLOW_MODs back to back
# and then a BARRIER, and returns on its reply: the time is until the
# rules are in effect. Meanwhile `odpx gen` offers RATE packets a second
# (default 100000; p2p workload, which no added rule matches: a
# `priority=1` rule forwards it port 1 -> 2) and the packets that came out
# of port 2 during the add give the forwarding rate under the storm. Then
# `del-flows` takes the N rules out again (also timed, to its barrier).
#
# Prints one line per (round, system, N) and the medians; ratios are
# Open vSwitch's time over odpx's.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
rate=${2:-100000}
shift 2 || shift $#
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000)
NS=odpx-fmb-$$
. tools/bench-common.sh
bench_setup $NS
for i in 1 2; do
  ip -n $NS link add t$i type veth peer name x$i
  ip -n $NS link set t$i up
  ip -n $NS link set x$i up
  ip netns exec $NS sysctl -qw net.ipv6.conf.t$i.disable_ipv6=1 net.ipv6.conf.x$i.disable_ipv6=1
done
for n in "${sizes[@]}"; do
  awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "priority=100,ip,nw_dst=172.%d.%d.%d,actions=output:2\n", 16 + int(i / 62500), int(i / 250) % 250, i % 250 + 1 }' > "$work/rules-$n.txt"
done
openflow_config "listen = \"punix:$work/odpx.mgmt\""

ofctl() { ovs-ofctl -O OpenFlow13 "$@"; }
now_ns() { date +%s%N; }
rx2() { ip netns exec $NS cat /sys/class/net/x2/statistics/rx_packets; }

start_system() { # SYSTEM: starts it; sets $target
  openflow_start "$1" $NS t1 t2
  ofctl add-flow $target 'priority=1,actions=output:2'
}


results=$work/results.txt
: > "$results"
for r in $(seq "$rounds"); do
  for sys in odpx ovs; do
    start_system $sys
    for n in "${sizes[@]}"; do
      ip netns exec $NS "$odpx" gen x1 --rate "$rate" --duration 600 > /dev/null 2>&1 &
      gen=$!
      echo $gen > "$work/gen.pid"
      sleep 1
      c0=$(rx2); t0=$(now_ns)
      ofctl add-flows $target "$work/rules-$n.txt"
      t1=$(now_ns); c1=$(rx2)
      kill $gen; wait $gen 2>/dev/null || true
      rules=$(ofctl dump-flows $target | grep -c 'nw_dst=172.' || true)
      t2=$(now_ns)
      ofctl del-flows $target 'ip,nw_dst=172.16.0.0/12'
      t3=$(now_ns)
      add_ms=$(((t1 - t0) / 1000000)); del_ms=$(((t3 - t2) / 1000000))
      pps=$(((c1 - c0) * 1000000000 / (t1 - t0)))
      echo "round $r $sys n=$n: add $add_ms ms ($((n * 1000 / (add_ms + 1))) rules/s, $rules in the table), forwarding during the add $pps pps of $rate offered; del $del_ms ms"
      echo "$sys $n $add_ms $del_ms $pps" >> "$results"
    done
    system_stop $sys
  done
done

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
echo
echo "medians over $rounds rounds (add and del to the barrier reply, ms; forwarding pps during the add, $rate offered):"
printf '%-8s %-7s %10s %10s %12s\n' N system add del pps
for n in "${sizes[@]}"; do
  for sys in odpx ovs; do
    a=$(awk -v s=$sys -v n="$n" '$1 == s && $2 == n {print $3}' "$results" | median)
    d=$(awk -v s=$sys -v n="$n" '$1 == s && $2 == n {print $4}' "$results" | median)
    p=$(awk -v s=$sys -v n="$n" '$1 == s && $2 == n {print $5}' "$results" | median)
    printf '%-8s %-7s %10s %10s %12s\n' "$n" $sys "$a" "$d" "$p"
    eval "add_$sys=$a; del_$sys=$d"
  done
  echo "N=$n: Open vSwitch / odpx time: add $(awk -v a="$add_ovs" -v b="$add_odpx" 'BEGIN {printf "%.2f", a / b}'), del $(awk -v a="$del_ovs" -v b="$del_odpx" 'BEGIN {printf "%.2f", a / b}')"
done
