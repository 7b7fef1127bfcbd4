#!/usr/bin/env bash
# Side by side, in one run, on the same namespaces, veths, generator and
# rules: a bare AF_XDP forwarder (no lookup: the I/O ceiling), odpx, and
# Open vSwitch 3.1 (Debian package, userspace bridge, type=afxdp ports).
#
#   sudo tools/switch-bench.sh [SECONDS] [ROUNDS]   default 10 s per run, 3 rounds
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
secs=${1:-10}
rounds=${2:-3}
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces, XDP)" >&2; exit 2; }
command -v ovs-vswitchd >/dev/null || { echo "== installing openvswitch-switch"; DEBIAN_FRONTEND=noninteractive apt-get install -y -q openvswitch-switch >/dev/null; }
cargo build --release -q -p odpx-tools
odpx=$PWD/target/release/odpx
tag=$$
SW=odpx-bsw-$tag G=odpx-bgen-$tag K=odpx-bsink-$tag
work=$(mktemp -d)
cleanup() {
  set +e
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  sleep 0.5
  for ns in $SW $G $K; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
for ns in $SW $G $K; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n $SW link add s1 numrxqueues 1 numtxqueues 1 type veth peer name g0 netns $G numrxqueues 1 numtxqueues 1
ip -n $SW link add s2 numrxqueues 1 numtxqueues 1 type veth peer name k0 netns $K numrxqueues 1 numtxqueues 1
for i in s1 s2; do ip -n $SW link set $i up; done
ip -n $G link set g0 up; ip -n $K link set k0 up
"$odpx" workload --rules 1000 --out-port 2 > "$work/acl.rules"
echo "priority=0,in_port=1,actions=output:2" > "$work/p2p.rules"

rx() { ip netns exec $K cat /sys/class/net/k0/statistics/rx_packets; }

# measure LABEL WORKLOAD: runs the generator, prints offered/forwarded.
measure() {
  local label=$1 wl=$2 genargs
  case $wl in
    p2p) genargs="--workload p2p" ;;
    acl) genargs="--workload gateway --flows 10000 --zipf 1.0" ;;
  esac
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
  echo "RESULT $label $wl offered_pps=$pps_off forwarded_pps=$pps_fwd sent=$sent received=$((after - before))"
}

for round in $(seq "$rounds"); do
for wl in p2p acl; do
  # 1. Bare forwarder.
  ip netns exec $SW "$odpx" fwd s1 s2 --core 1 > "$work/fwd.out" 2>&1 &
  echo $! > "$work/fwd.pid"; sleep 1
  measure bare $wl
  kill -INT "$(cat "$work/fwd.pid")"; wait "$(cat "$work/fwd.pid")" 2>/dev/null || true; rm -f "$work/fwd.pid"
  echo "CYCLES bare $wl $(sed -n 's/.*cycles per packet: \([0-9]*\).*/\1/p' "$work/fwd.out")"
  sleep 1

  # 2. odpx.
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
  ip netns exec $SW "$odpx" run -c "$work/odpx.toml" 2> "$work/odpx.err" &
  echo $! > "$work/odpx.pid"
  for _ in $(seq 50); do [ -S "$work/odpx.sock" ] && break; sleep 0.1; done
  "$odpx" ctl -s "$work/odpx.sock" pmd-stats-clear >/dev/null
  measure odpx $wl
  "$odpx" ctl -s "$work/odpx.sock" pmd-stats-show > "$work/odpx.stats"
  echo "CYCLES odpx $wl $(sed -n 's/.*avg processing cycles per packet: \([0-9]*\).*/\1/p' "$work/odpx.stats" | head -1)"
  echo "STATS odpx $wl $(grep -E 'exact match hits|megaflow hits|megaflows:|lost upcalls' "$work/odpx.stats" | tr -s ' ' | tr '\n' ';')"
  kill -TERM "$(cat "$work/odpx.pid")"; wait "$(cat "$work/odpx.pid")" 2>/dev/null || true; rm -f "$work/odpx.pid"
  sleep 1

  # 3. Open vSwitch 3.1, userspace datapath, AF_XDP ports.
  o=$work/ovs; mkdir -p "$o"
  export OVS_RUNDIR=$o OVS_LOGDIR=$o OVS_DBDIR=$o
  ovsdb-tool create "$o/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ip netns exec $SW ovsdb-server --remote=punix:"$o/db.sock" --pidfile="$o/ovsdb-server.pid" --detach --log-file="$o/ovsdb.log" "$o/conf.db"
  cp "$o/ovsdb-server.pid" "$work/ovsdb.pid"
  vs="ovs-vsctl --db=unix:$o/db.sock"
  $vs --no-wait init
  $vs --no-wait set Open_vSwitch . other_config:pmd-cpu-mask=0x2
  ip netns exec $SW ovs-vswitchd unix:"$o/db.sock" --pidfile="$o/ovs-vswitchd.pid" --detach --log-file="$o/vswitchd.log"
  cp "$o/ovs-vswitchd.pid" "$work/vswitchd.pid"
  $vs add-br br0 -- set bridge br0 datapath_type=netdev
  $vs add-port br0 s1 -- set interface s1 type=afxdp options:xdp-mode=native ofport_request=1
  $vs add-port br0 s2 -- set interface s2 type=afxdp options:xdp-mode=native ofport_request=2
  sleep 2
  ovs-ofctl del-flows br0
  ovs-ofctl add-flows br0 "$work/$wl.rules"
  ovs-appctl -t "$o/ovs-vswitchd.$(cat "$o/ovs-vswitchd.pid").ctl" dpif-netdev/pmd-stats-clear >/dev/null
  measure ovs $wl
  ctl="$o/ovs-vswitchd.$(cat "$o/ovs-vswitchd.pid").ctl"
  ovs-appctl -t "$ctl" dpif-netdev/pmd-stats-show > "$work/ovs.stats"
  echo "CYCLES ovs $wl $(sed -n 's/.*avg processing cycles per packet: \([0-9.]*\).*/\1/p' "$work/ovs.stats" | head -1)"
  echo "STATS ovs $wl $(grep -E 'emc hits|smc hits|megaflow hits|miss with success|miss with failure' "$work/ovs.stats" | tr -s ' ' | tr '\n' ';') megaflows=$(ovs-appctl -t "$ctl" dpctl/dump-flows 2>/dev/null | wc -l)"
  ovs-appctl -t "$ctl" exit >/dev/null 2>&1 || kill "$(cat "$work/vswitchd.pid")"
  kill "$(cat "$work/ovsdb.pid")" 2>/dev/null || true
  rm -f "$work/vswitchd.pid" "$work/ovsdb.pid"; rm -rf "$o"
  sleep 2
done
done 2>&1 | grep -E '^(RESULT|CYCLES|STATS) ' | tee "$work/all"
python3 - "$work/all" "$secs" <<'PY'
import sys, statistics, re
res, cyc = {}, {}
for line in open(sys.argv[1]):
    p = line.split()
    if p[0] == "RESULT":
        kv = dict(x.split("=") for x in p[3:])
        res.setdefault((p[1], p[2]), []).append((int(kv["offered_pps"]), int(kv["forwarded_pps"])))
    elif p[0] == "CYCLES" and len(p) > 3 and p[3]:
        cyc.setdefault((p[1], p[2]), []).append(float(p[3]))
print(f"\nmedians over {max(len(v) for v in res.values())} round(s), {sys.argv[2]} s each:")
print(f"{'':14}{'offered pps':>12}{'forwarded pps':>15}{'loss':>7}{'cycles/pkt':>12}")
med = {}
for wl in ("p2p", "acl"):
    for sut in ("bare", "odpx", "ovs"):
        v = res.get((sut, wl))
        if not v:
            continue
        off = statistics.median(o for o, _ in v)
        fwd = statistics.median(f for _, f in v)
        c = statistics.median(cyc.get((sut, wl), [0]))
        med[(sut, wl)] = (off, fwd, c)
        print(f"{wl + ' ' + sut:14}{off:12.0f}{fwd:15.0f}{100 * (1 - fwd / off):6.1f}%{c:12.0f}")
for wl in ("p2p", "acl"):
    try:
        o, b, v = med[("odpx", wl)], med[("bare", wl)], med[("ovs", wl)]
        print(f"{wl}: odpx/ovs forwarded {o[1] / v[1]:.3f}, odpx/bare forwarded {o[1] / b[1]:.3f}, "
              f"cycles odpx/ovs {o[2] / v[2]:.2f}, odpx/bare {o[2] / b[2]:.2f}")
    except KeyError:
        pass
PY
