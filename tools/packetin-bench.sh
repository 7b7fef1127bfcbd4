#!/usr/bin/env bash
# Packet-in round trips, side by side: odpx and Open vSwitch 3.1 (a netdev
# bridge with afxdp ports), each with the same controller: an os-ken
# application (tools/bench/packet_in_echo.py, from the Faucet venv) that
# answers every packet-in with a packet-out of the same bytes.
#
#   sudo tools/packetin-bench.sh [ROUNDS] [RATE...]
#
# Hosts h1 and h2 hang off the switch's ports 1 and 2. Every packet from
# port 1 goes to the controller, which sends it out of port 2; port 2's
# packets go to port 1 on a rule. So:
# * round trip: `ping` from h1 to h2 (400 echoes, 5 ms apart): each
#   request is a packet-in and a packet-out, each reply a forwarded
#   packet; median and 99th percentile of the echo times;
# * sustained rate: `odpx gen` offers RATE packets a second (default
#   20000 and 50000) for 5 s from h1; the rate that reached h2 is the
#   packet-in to packet-out rate the switch and controller sustain.
# Neither switch limits packet-ins here (odpx packet_in_rate, Open
# vSwitch controller_rate_limit: 1,000,000). ROUNDS (default 3) alternate
# the two switches, each started afresh; prints medians.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(20000 50000)
venv=$PWD/target/faucet-venv
[ -x "$venv/bin/osken-manager" ] || { echo "no $venv/bin/osken-manager: run tools/test.sh once (it makes the Faucet venv)" >&2; exit 2; }
tag=$$
NS=odpx-pib-$tag H1=odpx-pib1-$tag H2=odpx-pib2-$tag
. tools/bench-common.sh
bench_setup $NS $H1 $H2
for i in 1 2; do
  h=$([ $i = 1 ] && echo $H1 || echo $H2)
  ip -n $NS link add t$i numrxqueues 1 numtxqueues 1 type veth peer name eth0 netns $h numrxqueues 1 numtxqueues 1
  ip -n $NS link set t$i up
  ip netns exec $NS sysctl -qw net.ipv6.conf.t$i.disable_ipv6=1
  ip -n $h addr add 10.0.0.$i/24 dev eth0
  ip -n $h link set eth0 up
  ip netns exec $h sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
  ip netns exec $h ethtool -K eth0 tx off > /dev/null 2>&1 || true
done
mac() { ip -n "$1" -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
ip -n $H1 neigh replace 10.0.0.2 lladdr "$(mac $H2)" dev eth0
ip -n $H2 neigh replace 10.0.0.1 lladdr "$(mac $H1)" dev eth0
openflow_config "controller = \"tcp:127.0.0.1:6653\"" "max_backoff_ms = 200" "packet_in_rate = 1000000" "packet_in_burst = 100000"

start_controller() {
  ip netns exec $NS env PKTIN_COUNT_FILE="$work/packet-ins" "$venv/bin/osken-manager" \
    --ofp-tcp-listen-port 6653 --ofp-listen-host 127.0.0.1 tools/bench/packet_in_echo.py \
    > "$work/controller.log" 2>&1 &
  echo $! > "$work/controller.pid"
  sleep 2
}

stop_controller() {
  local pid; pid=$(cat "$work/controller.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$work/controller.pid"
}

start_system() {
  case $1 in
    odpx) odpx_start $NS ;;
    ovs)
      ovs_start $NS
      $vs add-br br0 -- set bridge br0 datapath_type=netdev protocols=OpenFlow13 fail_mode=secure \
        other-config:datapath-id=0000000000000001
      for i in 1 2; do $vs add-port br0 t$i -- set interface t$i type=afxdp ofport_request=$i; done
      $vs set-controller br0 tcp:127.0.0.1:6653 -- set controller br0 controller_rate_limit=1000000 \
        controller_burst_limit=100000 connection_mode=out-of-band ;;
  esac
  # Until the controller's rules are in and a ping makes it across.
  for _ in $(seq 100); do ip netns exec $H1 ping -c 1 -W 0.2 10.0.0.2 > /dev/null 2>&1 && return; done
  echo "$1: no ping across"; cat "$work/controller.log"; exit 1
}


rx_h2() { ip netns exec $H2 cat /sys/class/net/eth0/statistics/rx_packets; }
# percentile P of the numbers on stdin
pct() { sort -n | awk -v p="$1" '{v[NR] = $1} END {i = int((NR - 1) * p / 100) + 1; print v[i]}'; }

results=$work/results.txt
: > "$results"
for r in $(seq "$rounds"); do
  for sys in odpx ovs; do
    start_controller
    start_system $sys
    ip netns exec $H1 ping -c 400 -i 0.005 10.0.0.2 > "$work/ping.txt" 2>&1 || true
    times=$(sed -n 's/.*time=\([0-9.]*\) ms/\1/p' "$work/ping.txt")
    n=$(wc -l <<< "$times")
    p50=$(pct 50 <<< "$times"); p99=$(pct 99 <<< "$times")
    line="round $r $sys: echo $n/400 answered, median ${p50} ms, p99 ${p99} ms;"
    echo "$sys rtt $p50 $p99" >> "$results"
    for rate in "${rates[@]}"; do
      c0=$(rx_h2)
      ip netns exec $H1 "$odpx" gen eth0 --rate "$rate" --duration 5 > /dev/null 2>&1
      sleep 0.5
      got=$((($(rx_h2) - c0) / 5))
      line="$line $rate offered: $got/s through the controller;"
      echo "$sys rate$rate $got" >> "$results"
    done
    system_stop $sys
    stop_controller
    echo "$line packet-ins heard: $(cat "$work/packet-ins" 2>/dev/null || echo '?')"
  done
done

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -v s="$1" -v k="$2" -v c="$3" '$1 == s && $2 == k {print $c}' "$results" | median; }
echo
echo "medians over $rounds rounds:"
printf '%-34s %12s %12s %10s\n' "" odpx ovs ovs/odpx
for k in "rtt 3 echo round trip, median (ms)" "rtt 4 echo round trip, p99 (ms)"; do
  set -- $k
  a=$(col odpx "$1" "$2"); b=$(col ovs "$1" "$2")
  printf '%-34s %12s %12s %10s\n' "${*:3}" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}')"
done
for rate in "${rates[@]}"; do
  a=$(col odpx "rate$rate" 3); b=$(col ovs "rate$rate" 3)
  printf '%-34s %12s %12s %10s\n' "through the controller at $rate/s" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}')"
done
