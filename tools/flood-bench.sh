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
# show; ovs-appctl dpif/show), misses upcalled, upcalls lost (never
# translated: odpx's full queue; Open vSwitch's upcall errors), flow-limit
# hits (translated and executed, but no megaflow installed: odpx's
# translator; Open vSwitch's "miss with failed upcall", its
# upcall_flow_limit_hit), megaflows against the flow limit, and the
# switch's RSS before, every 0.5 s through the flood, and after. "RSS flat"
# compares the last sample with the one a third of the way in (the soak's
# rule: at most 10% + 8 MiB above it).
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
  local lat=() rsss=()
  for _ in $(seq $(( (secs - 2) * 2 ))); do
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s%N)
    lat+=($(( (t1 - t0) / 1000 )))
    rsss+=($(rss "$pid"))
    sleep 0.5
  done
  wait $gp $qp
  sleep 0.5
  k0b=$(count $K k0); kqb=$(count $QK kq); rss1=$(rss "$pid")
  local est_sent q_sent
  est_sent=$(awk '/^sent/ {print $2}' "$work/gen.out")
  q_sent=$(awk '/^new flows/ {print $3}' "$work/q.out")
  echo "RESULT $sys $churn est_sent=$est_sent est_recv=$((k0b - k0a)) q_sent=$q_sent q_recv=$((kqb - kqa)) rss0=$rss0 rss1=$rss1 rss_kib=$(IFS=,; echo "${rsss[*]}") ctl_us=$(IFS=,; echo "${lat[*]}") new=$(awk '/^new flows/ {print $3}' "$work/gen.out")"
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
d = json.load(sys.stdin); t = d["owner"]
print("upcalls=%d lost=%d limit_hits=%d megaflows=%d limit=%d" % (sum(p["upcalls"] for p in d["pmds"]), sum(p["upcalls_lost"] for p in d["pmds"]), t["flow_limit_hits"], t["megaflows"], t["flow_limit"]))')"
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
    cov=$(ovs-appctl -t "$ctl" coverage/show)
    # "miss with failed upcall" counts both upcall errors (the packet
    # dropped) and flow-limit refusals (the packet executed, no megaflow).
    sum_of() { echo "$pst" | sed -n "s/.*$1: \([0-9]*\).*/\1/p" | awk '{s+=$1} END {print s+0}'; }
    total_of() { echo "$cov" | awk -v e="$1" '$1 == e {print $NF}' | head -1 | grep -o '[0-9]*' || echo 0; }
    echo "STATS ovs $churn upcalls=$(( $(sum_of 'miss with success upcall') + $(sum_of 'miss with failed upcall') )) lost=$(total_of datapath_drop_upcall_error) limit_hits=$(total_of upcall_flow_limit_hit) megaflows=$(echo "$up" | sed -n 's/.*flows *: (current \([0-9]*\)).*/\1/p' | head -1) limit=$(echo "$up" | sed -n 's/.*(limit \([0-9]*\)).*/\1/p' | head -1)"
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
print(f"{'churn/s':>8} {'system':6} {'new flows/s':>11} {'est. loss':>9} {'quiet set up':>12} {'ctl ms med/max':>15} {'upcalls':>9} {'lost':>9} {'limit hits':>10} {'megaflows/limit':>16} {'RSS MiB before/at 1/3/after':>28} {'flat':>4}")
for (sys_, churn), v in sorted(res.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    loss = med([1 - int(x["est_recv"]) / max(1, int(x["est_sent"])) for x in v])
    quiet = med([int(x["q_recv"]) / max(1, int(x["q_sent"] or 1)) for x in v])
    new = med([int(x["new"] or 0) / float(sys.argv[2]) for x in v])
    lat = [int(u) for x in v for u in x["ctl_us"].split(",") if u]
    st = stats.get((sys_, churn), [])
    g = lambda k: med([int(s[k] or 0) for s in st]) if st else float("nan")
    rss0, rss1 = med([int(x["rss0"]) for x in v]) / 1024, med([int(x["rss1"]) for x in v]) / 1024
    curves = [[int(r) for r in x["rss_kib"].split(",") if r] for x in v]
    third = med([c[len(c) // 3] for c in curves]) / 1024
    # Flat in every round: the last sample within 10% + 8 MiB of the one a
    # third of the way in.
    flat = all(c[-1] <= c[len(c) // 3] * 1.1 + 8192 for c in curves)
    print(f"{churn:>8} {sys_:6} {new:11.0f} {100 * loss:8.2f}% {100 * quiet:11.1f}% "
          f"{med(lat) / 1000:7.1f}/{max(lat) / 1000:<7.1f} {g('upcalls'):9.0f} {g('lost'):9.0f} {g('limit_hits'):10.0f} "
          f"{g('megaflows'):>8.0f}/{g('limit'):<7.0f} {rss0:8.1f}/{third:.1f}/{rss1:<8.1f} {'yes' if flat else 'NO':>4}")
    for c in curves:
        print(f"{'':8} {sys_:6} RSS MiB every 0.5 s: " + " ".join(f"{r / 1024:.0f}" for r in c))
PY
