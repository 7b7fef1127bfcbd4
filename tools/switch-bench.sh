#!/usr/bin/env bash
# Side by side, in one run, on the same namespaces, veths, generator and
# rules: a bare AF_XDP forwarder (no lookup: the I/O ceiling), odpx, and
# Open vSwitch 3.1 (Debian package, userspace bridge, type=afxdp ports).
#
#   sudo tools/switch-bench.sh [SECONDS] [ROUNDS] [RATES]
#
# Defaults: 5 s per measurement, 3 rounds, RATES="200000 400000 600000 0":
# the offered loads in pps, the same for all three systems (`odpx gen
# --rate`); 0 is the generator's full speed, which varies from run to run.
# Rounds alternate the systems, so drift on this shared machine hits all
# three alike.
#
# Topology: netns gen (g0) -> s1 [switch netns] s2 -> netns sink (k0).
# The generator (`odpx gen`, AF_XDP) runs on core 0 at full rate; the
# switch's PMD on core 1. Forwarded = packets k0 received (its interface
# counter). Workloads: (a) one UDP flow, rule in_port=1 -> output:2;
# (b) 10k gateway flows, Zipf(1.0), through the 1k-rule ACL + routing set
# (every route goes to port 2; a third of the ACL entries drop).
# Cycles per packet: OVS's own pmd-stats-show, odpx's pmd-stats-show, and
# the bare forwarder's count, all from TSC cycles of busy passes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
rates=${3:-200000 400000 600000 0}
tag=$$
SW=odpx-bsw-$tag G=odpx-bgen-$tag K=odpx-bsink-$tag
. tools/bench-common.sh
bench_setup $SW $G $K
ip -n $SW link add s1 numrxqueues 1 numtxqueues 1 type veth peer name g0 netns $G numrxqueues 1 numtxqueues 1
ip -n $SW link add s2 numrxqueues 1 numtxqueues 1 type veth peer name k0 netns $K numrxqueues 1 numtxqueues 1
for i in s1 s2; do ip -n $SW link set $i up; done
ip -n $G link set g0 up; ip -n $K link set k0 up
"$odpx" workload --rules 1000 --out-port 2 > "$work/acl.rules"
echo "priority=0,in_port=1,actions=output:2" > "$work/p2p.rules"

rx() { ip netns exec $K cat /sys/class/net/k0/statistics/rx_packets; }

# measure LABEL WORKLOAD RATE: runs the generator, prints offered/forwarded.
measure() {
  local label=$1 wl=$2 rate=$3 genargs
  case $wl in
    p2p) genargs="--workload p2p" ;;
    acl) genargs="--workload gateway --flows 10000 --zipf 1.0" ;;
  esac
  genargs="$genargs --rate $rate"
  # Warm-up (fills caches, learns), then the measured run.
  ip netns exec $G "$odpx" gen g0 $genargs --duration 2 --core 0 >/dev/null
  local before after out
  before=$(rx)
  out=$(ip netns exec $G "$odpx" gen g0 $genargs --duration "$secs" --core 0)
  sleep 0.3
  after=$(rx)
  local sent pps_off pps_fwd
  sent=$(echo "$out" | awk '{print $2}')
  pps_off=$(echo "$out" | sed -n 's/.*(\([0-9]*\) pps).*/\1/p')
  pps_fwd=$(( (after - before) / secs ))
  echo "RESULT $label $wl $rate offered_pps=$pps_off forwarded_pps=$pps_fwd sent=$sent received=$((after - before))"
}

for round in $(seq "$rounds"); do
for wl in p2p acl; do
  # 1. Bare forwarder (it counts its cycles until stopped: one per rate).
  for rate in $rates; do
  ip netns exec $SW "$odpx" fwd s1 s2 --core 1 > "$work/fwd.out" 2>&1 &
  echo $! > "$work/fwd.pid"; sleep 1
  measure bare $wl "$rate"
  kill -INT "$(cat "$work/fwd.pid")"; wait "$(cat "$work/fwd.pid")" 2>/dev/null || true; rm -f "$work/fwd.pid"
  echo "CYCLES bare $wl $rate $(sed -n 's/.*cycles per packet: \([0-9]*\).*/\1/p' "$work/fwd.out")"
  sleep 0.5
  done

  # 2. odpx (and odpxB, another build, with ODPX_B).
  for sut in $(odpx_systems); do
  bin=$(odpx_bin $sut)
  cat > "$work/odpx.toml" <<EOF
[switch]
socket = "$work/odpx.sock"
rules = "$work/$wl.rules"
[[port]]
name = "s1"
[[port]]
name = "s2"
[pmd]
cores = [1]
EOF
  odpx_start $SW "$bin"
  for rate in $rates; do
  "$bin" ctl -s "$work/odpx.sock" pmd-stats-clear >/dev/null
  measure $sut $wl "$rate"
  "$bin" ctl -s "$work/odpx.sock" pmd-stats-show > "$work/odpx.stats"
  echo "CYCLES $sut $wl $rate $(sed -n 's/.*avg processing cycles per packet: \([0-9]*\).*/\1/p' "$work/odpx.stats" | head -1)"
  echo "STATS $sut $wl $rate $(grep -E 'exact match hits|megaflow hits|megaflows:|lost upcalls|by stage' "$work/odpx.stats" | tr -s ' ' | tr '\n' ';') $("$bin" ctl -s "$work/odpx.sock" show | grep -E 'dropped|kernel' | tr -s ' ' | tr '\n' ';')"
  done
  odpx_stop
  sleep 1
  done

  # 3. Open vSwitch 3.1, userspace datapath, AF_XDP ports.
  ovs_start $SW
  $vs add-br br0 -- set bridge br0 datapath_type=netdev
  $vs add-port br0 s1 -- set interface s1 type=afxdp options:xdp-mode=native ofport_request=1
  $vs add-port br0 s2 -- set interface s2 type=afxdp options:xdp-mode=native ofport_request=2
  sleep 2
  ovs-ofctl del-flows br0
  ovs-ofctl add-flows br0 "$work/$wl.rules"
  ctl=$(ovs_ctl)
  for rate in $rates; do
  ovs-appctl -t "$ctl" dpif-netdev/pmd-stats-clear >/dev/null
  measure ovs $wl "$rate"
  ovs-appctl -t "$ctl" dpif-netdev/pmd-stats-show > "$work/ovs.stats"
  echo "CYCLES ovs $wl $rate $(sed -n 's/.*avg processing cycles per packet: \([0-9.]*\).*/\1/p' "$work/ovs.stats" | head -1)"
  echo "STATS ovs $wl $rate $(grep -E 'simple match hits|emc hits|smc hits|megaflow hits|miss with success|miss with failure' "$work/ovs.stats" | tr -s ' ' | tr '\n' ';') megaflows=$(ovs-appctl -t "$ctl" dpctl/dump-flows 2>/dev/null | wc -l)"
  done
  ovs_stop
  sleep 2
done
done 2>&1 | grep -E '^(RESULT|CYCLES|STATS) ' | tee "$work/all"
python3 - "$work/all" "$secs" <<'PY'
import sys, statistics
res, cyc = {}, {}
for line in open(sys.argv[1]):
    p = line.split()
    key = (p[1], p[2], int(p[3]))
    if p[0] == "RESULT":
        kv = dict(x.split("=") for x in p[4:])
        res.setdefault(key, []).append((int(kv["offered_pps"]), int(kv["forwarded_pps"])))
    elif p[0] == "CYCLES" and len(p) > 4 and p[4]:
        cyc.setdefault(key, []).append(float(p[4]))
med = lambda xs: statistics.median(xs) if xs else float("nan")
rounds = max(len(v) for v in res.values())
print(f"\nmedians over {rounds} round(s), {sys.argv[2]} s each; rate 0 = generator at full speed")
print(f"{'workload':9}{'rate':>8} {'system':6}{'offered pps':>12}{'forwarded pps':>15}{'loss':>7}"
      f"{'fwd min-max':>18}{'cycles/pkt':>11}")
m = {}
for (sut, wl, rate), v in sorted(res.items(), key=lambda kv: (kv[0][1] != "p2p", kv[0][2] or 1e12, ["bare", "odpx", "odpxB", "ovs"].index(kv[0][0]))):
    off, fwd = med([o for o, _ in v]), med([f for _, f in v])
    c = med(cyc.get((sut, wl, rate), []))
    m[(sut, wl, rate)] = (off, fwd, c)
    lo, hi = min(f for _, f in v), max(f for _, f in v)
    print(f"{wl:9}{rate:>8} {sut:6}{off:12.0f}{fwd:15.0f}{100 * (1 - fwd / off):6.2f}%{lo:>9}-{hi:<8}{c:11.0f}")
print()
for (sut, wl, rate) in sorted(m):
    if sut != "odpx" or ("ovs", wl, rate) not in m or ("bare", wl, rate) not in m:
        continue
    o, v, b = m[("odpx", wl, rate)], m[("ovs", wl, rate)], m[("bare", wl, rate)]
    print(f"{wl} rate {rate}: forwarded odpx/ovs {o[1] / v[1]:.3f}, odpx/bare {o[1] / b[1]:.3f}; "
          f"cycles odpx/ovs {o[2] / v[2]:.2f}, odpx/bare {o[2] / b[2]:.2f}")
    # The same ratios taken within each round (the systems run minutes
    # apart there), then their median: drift between rounds cancels.
    paired = []
    for other in ("bare", "ovs"):
        r = [x / y for x, y in zip(cyc.get(("odpx", wl, rate), []), cyc.get((other, wl, rate), []))]
        if r:
            paired.append(f"odpx/{other} {med(r):.2f} ({min(r):.2f}-{max(r):.2f})")
    print(f"  cycles paired by round, median (min-max): {', '.join(paired)}")
PY
