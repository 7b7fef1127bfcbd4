#!/usr/bin/env bash
# The VXLAN gateway side by side, in one run, on the same namespaces,
# veths, generator, offered loads and forwarding rules:
#   odpx   - `odpx run`: access port s1 (AF_XDP), VXLAN port vx0, AF_XDP
#            underlay u0 (172.31.0.1) with the VTEP filter;
#   ovs    - Open vSwitch 3.1 (Debian) userspace tunnelling, as its
#            userspace-tunnelling guide sets it up: bridge br-int (netdev)
#            with s1 (afxdp) and a vxlan port, bridge br-phy (netdev) with
#            u0 (afxdp) and the VTEP address on br-phy;
#   linux  - the kernel: a bridge with s1 and a vxlan device over u0.
#
#   sudo tools/tunnel-bench.sh [SECONDS] [ROUNDS] [RATES]
#
# SYSTEMS="odpx ovs linux" and DIRECTIONS="encap decap" (the defaults)
# pick which systems and directions run.
# Defaults: 5 s per measurement, 3 rounds, RATES="200000 400000 600000 800000 0"
# (pps offered by `odpx gen`, the same for every system; 0 = full speed,
# which varies). Systems alternate within each round.
#
# Topology: netns gen (g0) -> s1 [switch netns] u0 -> netns site (e0,
# 172.31.0.2, the remote VTEP). Both directions:
#   encap: 64-byte UDP frames from g0 (one flow), forwarded = VXLAN frames
#          e0 received (its interface counter);
#   decap: the same frames inside VXLAN (VNI 42, 114 bytes) sent from e0
#          by `odpx gen --vxlan`, forwarded = frames g0 received.
# Rules: in_port=1 -> the tunnel, the tunnel -> port 1 (odpx, ovs); the
# bridge's learning for linux. The far VTEP's MAC is a static neighbour
# for every system, so no system waits for ARP. The generator runs on
# core 0, the PMDs (odpx, ovs) on core 1.
#
# CPU: "PMD cycles/pkt" is the switch's own count of TSC cycles in busy
# passes (odpx and OVS `pmd-stats-show`; linux has no PMD). "CPU ns/pkt"
# is the whole machine's non-idle CPU time (/proc/stat, both cores) per
# forwarded packet during the measurement, generator included: the same
# yardstick for all three, in which a busy-polling PMD counts whole.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
rates=${3:-200000 400000 600000 800000 0}
systems=${SYSTEMS:-odpx ovs linux}
directions=${DIRECTIONS:-encap decap}
want() { [[ " $systems " == *" $1 "* ]]; }
tag=$$
SW=odpx-tsw-$tag G=odpx-tgen-$tag S=odpx-tsite-$tag
log=${TMPDIR:-/tmp}/odpx-tunnel-bench.log
echo "== full log: $log"
. tools/bench-common.sh
bench_setup $SW $G $S
ip -n $SW link add s1 numrxqueues 1 numtxqueues 1 type veth peer name g0 netns $G numrxqueues 1 numtxqueues 1
ip -n $SW link add u0 numrxqueues 1 numtxqueues 1 type veth peer name e0 netns $S numrxqueues 1 numtxqueues 1
for i in s1 u0; do ip -n $SW link set $i up; done
ip -n $G link set g0 up; ip -n $S link set e0 up
ip -n $S addr add 172.31.0.2/24 dev e0
# The site's own VXLAN endpoint, so its kernel takes the gateway's VXLAN
# quietly (no ICMP port unreachable back into the underlay).
ip -n $S link add vx42 type vxlan id 42 local 172.31.0.2 remote 172.31.0.1 dstport 4789 dev e0
ip -n $S link set vx42 up
U0_MAC=$(ip netns exec $SW cat /sys/class/net/u0/address)
E0_MAC=$(ip netns exec $S cat /sys/class/net/e0/address)
ip -n $S neigh replace 172.31.0.1 lladdr "$U0_MAC" dev e0 nud permanent
# The generator's frames finish their own checksums.
for x in "$G g0" "$S e0"; do set -- $x; ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || true; done
echo "priority=0,in_port=1,actions=output:2
priority=0,in_port=2,actions=output:1" > "$work/rules"

underlay_ip() { ip -n $SW addr flush dev u0; ip -n $SW addr add 172.31.0.1/24 dev u0; ip -n $SW neigh replace 172.31.0.2 lladdr "$E0_MAC" dev u0 nud permanent; }

counter() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }
busy_jiffies() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }

# measure SYSTEM DIRECTION RATE: prints offered/forwarded/CPU.
measure() {
  local sys=$1 dir=$2 rate=$3 gen_ns gen_if gen_extra sink_ns sink_if
  if [ "$dir" = encap ]; then
    gen_ns=$G gen_if=g0 gen_extra="" sink_ns=$S sink_if=e0
  else
    gen_ns=$S gen_if=e0 gen_extra="--vxlan $U0_MAC,172.31.0.2,172.31.0.1,42" sink_ns=$G sink_if=g0
  fi
  # shellcheck disable=SC2086
  ip netns exec "$gen_ns" "$odpx" gen $gen_if --workload p2p --rate "$rate" --duration 2 --core 0 $gen_extra >/dev/null
  local before after j0 j1 out
  before=$(counter "$sink_ns" "$sink_if"); j0=$(busy_jiffies)
  # shellcheck disable=SC2086
  out=$(ip netns exec "$gen_ns" "$odpx" gen $gen_if --workload p2p --rate "$rate" --duration "$secs" --core 0 $gen_extra)
  sleep 0.3
  after=$(counter "$sink_ns" "$sink_if"); j1=$(busy_jiffies)
  local sent pps_off fwd
  sent=$(echo "$out" | awk '{print $2}')
  pps_off=$(echo "$out" | sed -n 's/.*(\([0-9]*\) pps).*/\1/p')
  fwd=$((after - before))
  local hz; hz=$(getconf CLK_TCK)
  local cpu_ns=$(( fwd > 0 ? (j1 - j0) * 1000000000 / hz / fwd : 0 ))
  echo "RESULT $sys $dir $rate offered_pps=$pps_off forwarded_pps=$((fwd / secs)) sent=$sent received=$fwd cpu_ns=$cpu_ns"
}

for round in $(seq "$rounds"); do
  if want odpx; then
  # 1. odpx (and odpxB, another build, with ODPX_B).
  for sut in $(odpx_systems); do
  bin=$(odpx_bin $sut)
  underlay_ip
  cat > "$work/odpx.toml" <<EOF
[switch]
socket = "$work/odpx.sock"
rules = "$work/rules"
[[port]]
name = "s1"
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
EOF
  odpx_start $SW "$bin"
  for dir in $directions; do for rate in $rates; do
    "$bin" ctl -s "$work/odpx.sock" pmd-stats-clear >/dev/null
    measure $sut $dir "$rate"
    "$bin" ctl -s "$work/odpx.sock" pmd-stats-show > "$work/odpx.stats"
    cat "$work/odpx.stats"
    echo "CYCLES $sut $dir $rate $(sed -n 's/.*avg processing cycles per packet: \([0-9]*\).*/\1/p' "$work/odpx.stats" | head -1)"
    echo "STATS $sut $dir $rate $("$bin" ctl -s "$work/odpx.sock" show | grep -E 'encap|decap|kernel' | tr -s ' ' | tr '\n' ';')"
  done; done
  odpx_stop
  sleep 1
  done
  fi

  if want ovs; then
  # 2. Open vSwitch 3.1 userspace tunnelling.
  ovs_start $SW
  ip -n $SW addr flush dev u0
  $vs add-br br-phy -- set bridge br-phy datapath_type=netdev other_config:hwaddr="$U0_MAC"
  $vs add-port br-phy u0 -- set interface u0 type=afxdp options:xdp-mode=native
  ip -n $SW addr add 172.31.0.1/24 dev br-phy
  ip -n $SW link set br-phy up
  $vs add-br br-int -- set bridge br-int datapath_type=netdev
  $vs add-port br-int s1 -- set interface s1 type=afxdp options:xdp-mode=native ofport_request=1
  $vs add-port br-int vx0 -- set interface vx0 type=vxlan options:remote_ip=172.31.0.2 options:key=42 ofport_request=2
  sleep 2
  ctl=$(ovs_ctl)
  ovs-appctl -t "$ctl" tnl/arp/set br-phy 172.31.0.2 "$E0_MAC" >/dev/null
  ovs-ofctl del-flows br-int
  ovs-ofctl add-flows br-int "$work/rules"
  echo "OVSROUTE $(ovs-appctl -t "$ctl" ovs/route/show | grep 172.31 | tr '\n' ';')"
  for dir in $directions; do for rate in $rates; do
    ovs-appctl -t "$ctl" dpif-netdev/pmd-stats-clear >/dev/null
    measure ovs $dir "$rate"
    ovs-appctl -t "$ctl" dpif-netdev/pmd-stats-show > "$work/ovs.stats"
    echo "CYCLES ovs $dir $rate $(sed -n 's/.*avg processing cycles per packet: \([0-9.]*\).*/\1/p' "$work/ovs.stats" | head -1)"
    echo "STATS ovs $dir $rate $(grep -E 'emc hits|megaflow hits|miss with|recirc' "$work/ovs.stats" | tr -s ' ' | tr '\n' ';') flows: $(ovs-appctl -t "$ctl" dpctl/dump-flows 2>/dev/null | sed -n 's/.*actions://p' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
  done; done
  ovs_stop
  ip -n $SW link del br-phy 2>/dev/null || true
  sleep 2
  fi

  if want linux; then
  # 3. Linux: bridge + vxlan device.
  underlay_ip
  ip -n $SW link add br0 type bridge
  ip -n $SW link add vxl42 type vxlan id 42 local 172.31.0.1 remote 172.31.0.2 dstport 4789 dev u0
  ip -n $SW link set s1 master br0; ip -n $SW link set vxl42 master br0
  for i in br0 vxl42; do ip -n $SW link set $i up; done
  for dir in $directions; do for rate in $rates; do
    measure linux $dir "$rate"
  done; done
  ip -n $SW link del vxl42; ip -n $SW link del br0
  sleep 1
  fi
done 2>&1 | tee "$log" | grep -E '^(RESULT|CYCLES|STATS|OVSROUTE) ' | tee "$work/all"
python3 - "$work/all" "$secs" <<'PY'
import sys, statistics
res, cyc = {}, {}
for line in open(sys.argv[1]):
    p = line.split()
    if p[0] not in ("RESULT", "CYCLES"):
        continue
    key = (p[1], p[2], int(p[3]))
    if p[0] == "RESULT":
        kv = dict(x.split("=") for x in p[4:])
        res.setdefault(key, []).append((int(kv["offered_pps"]), int(kv["forwarded_pps"]), int(kv["cpu_ns"])))
    elif len(p) > 4 and p[4]:
        cyc.setdefault(key, []).append(float(p[4]))
med = lambda xs: statistics.median(xs) if xs else float("nan")
rounds = max(len(v) for v in res.values())
print(f"\nmedians over {rounds} round(s), {sys.argv[2]} s each; rate 0 = generator at full speed")
print(f"{'direction':10}{'rate':>8} {'system':7}{'offered pps':>12}{'forwarded pps':>15}{'loss':>8}"
      f"{'fwd min-max':>20}{'PMD cyc/pkt':>12}{'CPU ns/pkt':>11}")
m = {}
order = ["odpx", "odpxB", "ovs", "linux"]
for (sut, d, rate), v in sorted(res.items(), key=lambda kv: (kv[0][1], kv[0][2] or 1e12, order.index(kv[0][0]))):
    off, fwd, cpu = med([x[0] for x in v]), med([x[1] for x in v]), med([x[2] for x in v])
    c = med(cyc.get((sut, d, rate), []))
    m[(sut, d, rate)] = (off, fwd, c, cpu)
    lo, hi = min(x[1] for x in v), max(x[1] for x in v)
    print(f"{d:10}{rate:>8} {sut:7}{off:12.0f}{fwd:15.0f}{100 * (1 - fwd / max(off, 1)):7.2f}%{lo:>10}-{hi:<9}{c:12.0f}{cpu:11.0f}")
print()
for (sut, d, rate) in sorted(m):
    if sut != "odpx":
        continue
    o = m[(sut, d, rate)]
    parts = []
    for other in ("ovs", "linux"):
        if (other, d, rate) in m:
            x = m[(other, d, rate)]
            parts.append(f"forwarded odpx/{other} {o[1] / max(x[1], 1):.3f}, CPU odpx/{other} {o[3] / max(x[3], 1):.2f}")
    if ("ovs", d, rate) in m:
        parts.append(f"PMD cycles odpx/ovs {o[2] / m[('ovs', d, rate)][2]:.2f}")
    print(f"{d} rate {rate}: " + "; ".join(parts))
PY
