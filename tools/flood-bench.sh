#!/usr/bin/env bash
# Flow floods, side by side in one run on the same namespaces, veths,
# generators and rules: odpx and Open vSwitch 3.1 (userspace bridge, afxdp
# ports).
#
#   sudo tools/flood-bench.sh [SECONDS] [ROUNDS] [CHURN]
#
# Defaults: 10 s per measurement, 3 rounds (alternating the systems),
# CHURN="10000 100000" new flows a second.
#
# Topology: netns gen (g0) -> s1 [switch] s2 -> netns sink (k0), and
# netns quiet (q0) -> s3 [switch] s4 -> netns qsink (kq). From g0,
# `odpx gen --churn N` sends an established flow at ESTABLISHED pps (50k)
# and N new 5-tuples a second on top; from q0, 1,000 new flows a second
# (fairness: a quiet port's new flows while another port floods).
# Rules: established -> s2, the churn (UDP to port 9) dropped, q0 -> s4, and
# one exact dl_src entry that makes every new flow (each from its own MAC
# address) a megaflow of its own in both switches.
#
# Measured: the established flow's loss (k0's count against what was
# sent), the quiet port's new flows that got through (kq's count against
# what q0 sent), the control command's answer time while flooded (odpx ctl
# show; ovs-appctl dpif/show), upcalls lost, megaflows against the flow
# limit, and the switch's RSS before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
churns=${3:-10000 100000}
established=${ESTABLISHED:-50000}
tag=$$
SW=odpx-fsw-$tag G=odpx-fgen-$tag K=odpx-fsink-$tag Q=odpx-fq-$tag QK=odpx-fqk-$tag
. tools/bench-common.sh
bench_setup $SW $G $K $Q $QK
for ns in $SW $G $K $Q $QK; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
pair() { ip -n $SW link add "$1" numrxqueues 1 numtxqueues 1 type veth peer name "$2" netns "$3" numrxqueues 1 numtxqueues 1
  ip -n $SW link set "$1" up; ip -n "$3" link set "$2" up; }
pair s1 g0 $G; pair s2 k0 $K; pair s3 q0 $Q; pair s4 kq $QK
cat > "$work/flood.rules" <<EOF
priority=30,dl_src=02:00:00:00:00:99,actions=drop
priority=20,in_port=1,udp,tp_dst=9,actions=drop
priority=10,in_port=1,actions=output:2
priority=10,in_port=3,actions=output:4
EOF
count() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# measure SYSTEM CHURN PID ASK...: one flooded run; ASK is the control
# command whose answer time is sampled.
measure() {
  local sys=$1 churn=$2 pid=$3
  shift 3
  local k0a kqa rss0 k0b kqb rss1
  # Warm-up: the established flow's megaflow in, the caches warm.
  ip netns exec $G "$odpx" gen g0 --rate 1000 --duration 1 --core 0 >/dev/null
  k0a=$(count $K k0); kqa=$(count $QK kq); rss0=$(rss "$pid")
  ip netns exec $G "$odpx" gen g0 --rate "$established" --churn "$churn" --duration "$secs" --core 0 > "$work/gen.out" &
  local gp=$!
  ip netns exec $Q "$odpx" gen q0 --workload none --churn 1000 --duration "$secs" > "$work/q.out" &
  local qp=$!
  sleep 1
  local lat=()
  for _ in $(seq $(( (secs - 2) * 2 ))); do
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s%N)
    lat+=($(( (t1 - t0) / 1000 )))
    sleep 0.5
  done
  wait $gp $qp
  sleep 0.5
  k0b=$(count $K k0); kqb=$(count $QK kq); rss1=$(rss "$pid")
  local est_sent q_sent
  est_sent=$(awk '/^sent/ {print $2}' "$work/gen.out")
  q_sent=$(awk '/^new flows/ {print $3}' "$work/q.out")
  echo "RESULT $sys $churn est_sent=$est_sent est_recv=$((k0b - k0a)) q_sent=$q_sent q_recv=$((kqb - kqa)) rss0=$rss0 rss1=$rss1 ctl_us=$(IFS=,; echo "${lat[*]}") new=$(awk '/^new flows/ {print $3}' "$work/gen.out")"
}

for round in $(seq "$rounds"); do
  for churn in $churns; do
    cat > "$work/odpx.toml" <<EOF
[switch]
socket = "$work/odpx.sock"
rules = "$work/flood.rules"
[[port]]
name = "s1"
[[port]]
name = "s2"
[[port]]
name = "s3"
[[port]]
name = "s4"
[pmd]
cores = [1]
EOF
    odpx_start $SW
    measure odpx "$churn" "$(cat "$work/odpx.pid")" "$odpx" ctl -s "$work/odpx.sock" show
    st=$("$odpx" ctl -s "$work/odpx.sock" --json pmd-stats-show)
    echo "STATS odpx $churn $(echo "$st" | python3 -c 'import json,sys
d = json.load(sys.stdin); t = d["translator"]
print("upcalls=%d lost=%d megaflows=%d limit=%d" % (sum(p["upcalls"] for p in d["pmds"]), sum(p["upcalls_lost"] for p in d["pmds"]), t["megaflows"], t["flow_limit"]))')"
    odpx_stop
    sleep 1

    ovs_start $SW
    $vs add-br br0 -- set bridge br0 datapath_type=netdev
    for i in 1 2 3 4; do
      $vs add-port br0 s$i -- set interface s$i type=afxdp options:xdp-mode=native ofport_request=$i
    done
    sleep 2
    ovs-ofctl del-flows br0
    ovs-ofctl add-flows br0 "$work/flood.rules"
    ctl=$(ovs_ctl)
    ovs-appctl -t "$ctl" dpif-netdev/pmd-stats-clear >/dev/null
    measure ovs "$churn" "$(cat "$work/vswitchd.pid")" ovs-appctl -t "$ctl" dpif/show
    pst=$(ovs-appctl -t "$ctl" dpif-netdev/pmd-stats-show)
    up=$(ovs-appctl -t "$ctl" upcall/show)
    echo "STATS ovs $churn upcalls=$(echo "$pst" | sed -n 's/.*miss with success upcall: \([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}') lost=$(echo "$pst" | sed -n 's/.*miss with failure upcall: \([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}') megaflows=$(echo "$up" | sed -n 's/.*flows *: (current \([0-9]*\)).*/\1/p' | head -1) limit=$(echo "$up" | sed -n 's/.*(limit \([0-9]*\)).*/\1/p' | head -1)"
    ovs_stop
    sleep 2
  done
done 2>&1 | grep -E '^(RESULT|STATS) ' | tee "$work/all"
cp "$work/all" /tmp/flood-bench.last
python3 - "$work/all" "$secs" <<'PY'
import sys, statistics
res, stats = {}, {}
for line in open(sys.argv[1]):
    p = line.split()
    key = (p[1], int(p[2]))
    kv = dict(x.split("=", 1) for x in p[3:])
    (res if p[0] == "RESULT" else stats).setdefault(key, []).append(kv)
med = statistics.median
print(f"\nmedians over {max(len(v) for v in res.values())} round(s), {sys.argv[2]} s each")
print(f"{'churn/s':>8} {'system':6} {'new flows/s':>11} {'est. loss':>9} {'quiet set up':>12} {'ctl ms med/max':>15} {'upcalls':>9} {'lost':>9} {'megaflows/limit':>16} {'RSS MiB before/after':>21}")
for (sys_, churn), v in sorted(res.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    loss = med([1 - int(x["est_recv"]) / max(1, int(x["est_sent"])) for x in v])
    quiet = med([int(x["q_recv"]) / max(1, int(x["q_sent"] or 1)) for x in v])
    new = med([int(x["new"] or 0) / float(sys.argv[2]) for x in v])
    lat = [int(u) for x in v for u in x["ctl_us"].split(",") if u]
    st = stats.get((sys_, churn), [])
    g = lambda k: med([int(s[k] or 0) for s in st]) if st else float("nan")
    rss0, rss1 = med([int(x["rss0"]) for x in v]) / 1024, med([int(x["rss1"]) for x in v]) / 1024
    print(f"{churn:>8} {sys_:6} {new:11.0f} {100 * loss:8.2f}% {100 * quiet:11.1f}% "
          f"{med(lat) / 1000:7.1f}/{max(lat) / 1000:<7.1f} {g('upcalls'):9.0f} {g('lost'):9.0f} "
          f"{g('megaflows'):>8.0f}/{g('limit'):<7.0f} {rss0:10.1f}/{rss1:<10.1f}")
PY
