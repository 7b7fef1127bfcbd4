#!/usr/bin/env bash
# The three modes of odpx compared, with ovs-vswitchd 3.1 driving the
# Linux kernel datapath as the anchor, in one boot of the test VM
# (tools/vm.sh: qemu TCG, 2 vCPUs, Debian's 6.1 kernel with
# openvswitch.ko). TCG emulates every instruction: absolute numbers are
# distorted (the kernel's work and userspace's alike, but not by the same
# factor); compare systems within one run, as ratios.
#
#   tools/mode-bench.sh [ROUNDS] [SECONDS] [LOADS] [CHURN]
#
# SYSTEMS (default "userspace kernel hybrid ovs") picks what runs;
# HYBRID_PPS hybrid mode's min_pps. Defaults: 3 rounds, 5 s per measurement, LOADS="2000 6000 12000" (pps
# offered by the generator), CHURN="1000 10000" (new flows a second).
# Rounds alternate the systems. Output: one table per workload, medians of
# the rounds, and ratios; the raw lines stay in /tmp/mode-bench.last.
#
# Systems: odpx userspace (PMD on core 1, busy-polling), odpx kernel,
# odpx hybrid (PMD on core 1, waiting when idle; offload after HYBRID_PPS
# pps for 1 s, default 100: the VM's rates are ~100x below a real
# machine's), ovs-vswitchd (kernel datapath, max-idle as odpx's idle
# timeout).
#
# Topology: namespaces h1, h2, h3 behind veths a1, a2, a3, the switch's
# ports 1-3. The generator (`odpx gen`, AF_XDP) sends from h1 on core 0.
# Workloads, the same rules and frames for every system:
# (a) one UDP flow, in_port=1 -> output:2;
# (b) the 1k-rule ACL + routing set (every route to port 2), 10k flows,
#     Zipf 1.0;
# (c) (b) at the middle load, plus CHURN new flows a second from h3: a
#     rule pins the source MAC in every megaflow, and each churn frame has
#     its own; in_port=3 goes to port 1, so port 2 counts only (b).
# Measured per run: forwarded pps (a2's transmit count); CPU per forwarded
# packet (/proc/stat, both CPUs, softirq and the generator included: the
# same generator for every system); upcalls (odpx's translator count,
# ovs-dpctl's misses for ovs-vswitchd); in hybrid mode the share of
# packets the kernel carried; for (c), new flows set up a second (churn
# frames delivered to port 1) and the first packets lost. First-packet
# latency: 20 pings 1 s apart with a 300 ms idle timeout (each one a new
# flow both ways).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-5}
loads=${3:-2000 6000 12000}
churn=${4:-1000 10000}
hybrid_pps=${HYBRID_PPS:-100}
systems=${SYSTEMS:-userspace kernel hybrid ovs}

cargo build --release -q -p odpx-tools
need=(ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl ovs-appctl ip)
files=(target/release/odpx tools/vm-hosts.sh /usr/share/openvswitch/vswitch.ovsschema)
for c in "${need[@]}"; do
  files+=("$(command -v "$c")")
done
tools/vm.sh provision >&2

payload=$(mktemp)
out=$(mktemp)
trap 'cp "$out" /tmp/mode-bench.last; rm -f "$payload" "$out"' EXIT
cat > "$payload" <<EOF
ROUNDS=$rounds SECS=$secs LOADS="$loads" CHURN="$churn" HYBRID_PPS=$hybrid_pps SYSTEMS="$systems"
EOF
cat >> "$payload" <<'EOF'
set -u
PATH=/payload:$PATH
IP=/payload/ip
mkdir -p /run/odpx
. /payload/vm-hosts.sh
two_hosts
$IP netns add h3
$IP netns exec h3 sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
$IP link add a3 type veth peer name e3
$IP link set e3 netns h3
$IP -n h3 link set e3 up
$IP link set a3 up

odpx workload --rules 1000 --out-port 2 > /tmp/b.rules
printf 'priority=0,in_port=1,actions=output:2\npriority=0,in_port=2,actions=output:1\n' > /tmp/a.rules
{ echo 'table=0,priority=4000,dl_src=02:ff:ff:ff:ff:ff,actions=drop'
  echo 'table=0,priority=3000,in_port=3,actions=output:1'
  cat /tmp/b.rules; } > /tmp/c.rules
# Latency: pings both ways between h1 and h2.
printf 'priority=0,in_port=1,actions=output:2\npriority=0,in_port=2,actions=output:1\n' > /tmp/l.rules

tx() { cat /sys/class/net/$1/statistics/tx_packets; }
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
dpstat() { ovs-dpctl show "$1" 2>/dev/null | sed -n "s/.*$2:\([0-9]*\).*/\1/p"; }
ovs_init

# start SYSTEM RULES IDLE_MS
start() {
  case $1 in
  ovs)
    $VSCTL --no-wait set Open_vSwitch . other_config:max-idle=$3
    vswitchd
    $VSCTL add-br br0 -- add-port br0 a1 -- set interface a1 ofport_request=1 \
      -- add-port br0 a2 -- set interface a2 ofport_request=2 -- add-port br0 a3 -- set interface a3 ofport_request=3
    # Restarted once the datapath exists: started on a fresh one in this
    # VM, ovs-vswitchd 3.1 sets its per-CPU upcall sockets before it has
    # any handler, and every miss is lost (see tools/kernel-bench.sh).
    appctl exit; sleep 1; vswitchd
    sleep 2
    ovs-ofctl del-flows br0
    ovs-ofctl add-flows br0 "$2"
    ;;
  *)
    cat > /tmp/odpx.toml <<CONF
[switch]
socket = "/tmp/odpx.sock"
datapath = "$1"
rules = "$2"
[[port]]
name = "a1"
[[port]]
name = "a2"
[[port]]
name = "a3"
[pmd]
cores = [1]
[cache]
idle_timeout_ms = $3
[offload]
min_pps = $HYBRID_PPS
min_duration_ms = 1000
CONF
    odpx run -c /tmp/odpx.toml > /tmp/odpx.log 2>&1 &
    ODPX=$!
    for i in $(seq 100); do ctl show > /dev/null 2>&1 && break; sleep 0.2; done
    ;;
  esac
}

stop() {
  case $1 in
  ovs) $VSCTL del-br br0; appctl exit; sleep 1; ovs-dpctl del-dp ovs-system 2>/dev/null ;;
  *) kill -TERM $ODPX; wait $ODPX; odpx datapath delete odpx0 2>/dev/null || true ;;
  esac
  sleep 1
}

# upcalls SYSTEM: misses handled so far
upcalls() {
  case $1 in
  ovs) echo $(( $(dpstat ovs-system missed) - $(dpstat ovs-system lost) )) ;;
  *) ctl pmd-stats-show | sed -n 's/.*upcalls handled: \([0-9]*\).*/\1/p' ;;
  esac
}
# carried SYSTEM: "kernel_packets pmd_packets" so far (hybrid)
carried() {
  case $1 in
  hybrid) ctl show | sed -n 's/.*packets carried: kernel \([0-9]*\) ([^)]*), PMDs \([0-9]*\).*/\1 \2/p' ;;
  *) echo "0 0" ;;
  esac
}

# lost SYSTEM: misses lost so far (the kernel's, the PMDs' full queues)
lost() {
  local k=0 p=0
  case $1 in
  ovs) k=$(dpstat ovs-system lost) ;;
  kernel) k=$(dpstat odpx0 lost) ;;
  hybrid) k=$(dpstat odpx0 lost) ;;
  esac
  case $1 in
  userspace|hybrid) p=$(ctl pmd-stats-show | sed -n 's/.*lost upcalls: \([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}') ;;
  esac
  echo $((${k:-0} + ${p:-0}))
}

# measure SYSTEM WORKLOAD LOAD [CHURN]
measure() {
  local sys=$1 wl=$2 load=$3 ch=${4:-0} args
  case $wl in
    a) args="--workload p2p" ;;
    *) args="--workload gateway --flows 10000 --zipf 1.0" ;;
  esac
  # Warm-up: caches filled, hot flows offloaded in hybrid mode.
  $IP netns exec h1 odpx gen e1 $args --rate $load --duration 3 --core 0 > /dev/null 2>&1
  local f0 d0 c0 u0 k0 p0 l0
  f0=$(tx a2); d0=$(tx a1); c0=$(busy); u0=$(upcalls $sys); l0=$(lost $sys)
  set -- $(carried $sys); k0=$1; p0=$2
  if [ "$ch" -gt 0 ]; then
    $IP netns exec h3 odpx gen e3 --workload macs --flows $((ch * SECS)) --rate $ch --duration $SECS --core 0 > /tmp/churn.out 2>&1 &
    CH=$!
  fi
  $IP netns exec h1 odpx gen e1 $args --rate $load --duration $SECS --core 0 > /tmp/gen.out 2>&1
  [ "$ch" -gt 0 ] && wait $CH
  sleep 0.5
  local f1 d1 c1 u1 k1 p1 l1
  f1=$(tx a2); d1=$(tx a1); c1=$(busy); u1=$(upcalls $sys); l1=$(lost $sys)
  set -- $(carried $sys); k1=$1; p1=$2
  [ $sys = hybrid ] && echo "OFFLOAD $wl $load $ch $(ctl show | sed -n '/^offload/,/packets carried/p' | tr -s ' ' | tr '\n' ';')"
  echo "RESULT $sys $wl $load $ch sent=$(sed -n 's/^sent \([0-9]*\).*/\1/p' /tmp/gen.out) fwd=$((f1 - f0)) busy=$((c1 - c0)) upcalls=$((u1 - u0)) kernel=$((k1 - k0)) pmd=$((p1 - p0)) churn_sent=$( [ "$ch" -gt 0 ] && sed -n 's/^sent \([0-9]*\).*/\1/p' /tmp/churn.out || echo 0) churn_fwd=$((d1 - d0)) lost=$((l1 - l0)) secs=$SECS"
}

for r in $(seq $ROUNDS); do
  for sys in $SYSTEMS; do
    start $sys /tmp/a.rules 10000
    for load in $LOADS; do measure $sys a $load; done
    stop $sys
    start $sys /tmp/b.rules 10000
    for load in $LOADS; do measure $sys b $load; done
    stop $sys
    start $sys /tmp/c.rules 10000
    mid=$(echo $LOADS | awk '{print $(int((NF + 1) / 2))}')
    for ch in $CHURN; do measure $sys c $mid $ch; done
    stop $sys
    start $sys /tmp/l.rules 300
    $IP netns exec h1 ping -c 3 -i 1 10.0.0.2 > /dev/null
    sleep 1
    $IP netns exec h1 ping -c 20 -i 1 10.0.0.2 | sed -n "s/.*time=\([0-9.]*\) ms/RTT $sys $r \1/p"
    stop $sys
  done
done
EOF

echo "== $rounds round(s) of $secs s; loads: $loads pps; churn: $churn new flows/s; hybrid offloads at $hybrid_pps pps" >&2
ODPX_VM_SMP=2 ODPX_VM_TIMEOUT=7200 tools/vm.sh run "$payload" "${files[@]}" > "$out" || echo "(the VM payload ended with status $?)" >&2
grep -E '^(RESULT|RTT) ' "$out" > /dev/null || { cat "$out" >&2; exit 1; }
grep '^OFFLOAD ' "$out" | sort -u -k2,4 | head -12 >&2
python3 - "$out" <<'PY'
import sys, statistics as st
res, rtt = {}, {}
for line in open(sys.argv[1]):
    w = line.split()
    if not w:
        continue
    if w[0] == "RESULT":
        kv = dict(x.split("=", 1) for x in w[5:])
        kv = {k: float(v or 0) for k, v in kv.items()}
        res.setdefault((w[1], w[2], int(w[3]), int(w[4])), []).append(kv)
    elif w[0] == "RTT":
        rtt.setdefault(w[1], []).append(float(w[3]))
systems = ["userspace", "kernel", "hybrid", "ovs"]
med = lambda xs: st.median(xs) if xs else float("nan")
def row(key):
    runs = res.get(key, [])
    if not runs:
        return None
    secs = runs[0]["secs"]
    fwd = [r["fwd"] / secs for r in runs]
    off = [r["sent"] / secs for r in runs]
    # /proc/stat ticks are 10 ms; microseconds of CPU per forwarded packet.
    cpu = [r["busy"] * 10_000 / max(r["fwd"] + r["churn_fwd"], 1) for r in runs]
    up = [r["upcalls"] / secs for r in runs]
    share = [r["kernel"] / max(r["kernel"] + r["pmd"], 1) for r in runs]
    setup = [r["churn_fwd"] / secs for r in runs]
    lost = [r["lost"] for r in runs]
    return dict(off=med(off), fwd=med(fwd), lo=min(fwd), hi=max(fwd), cpu=med(cpu), up=med(up),
                share=med(share), setup=med(setup), lost=med(lost), n=len(runs))
for wl, title in (("a", "(a) 1 flow, port to port"), ("b", "(b) 1k-rule ACL + routing, 10k flows, Zipf 1.0")):
    print(f"\n{title}: medians of rounds")
    print("| offered pps | system | forwarded pps (min-max) | CPU us/pkt | upcalls/s | kernel share | fwd vs ovs | CPU vs ovs |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    loads = sorted({k[2] for k in res if k[1] == wl})
    for load in loads:
        base = row(("ovs", wl, load, 0))
        for s in systems:
            x = row((s, wl, load, 0))
            if not x:
                continue
            share = f"{100 * x['share']:.0f}%" if s == "hybrid" else "-"
            vs = f"{x['fwd'] / base['fwd']:.2f}" if base and base["fwd"] else "-"
            cvs = f"{x['cpu'] / base['cpu']:.2f}" if base and base["cpu"] else "-"
            print(f"| {x['off']:,.0f} | {s} | {x['fwd']:,.0f} ({x['lo']:,.0f}-{x['hi']:,.0f}) | {x['cpu']:.1f} | {x['up']:,.0f} | {share} | {vs} | {cvs} |")
print("\n(c) churn on top of (b): medians of rounds")
print("| new flows/s offered | system | new flows set up /s | first packets lost | established fwd pps | CPU us/pkt | upcalls/s | kernel share |")
print("|---:|---|---:|---:|---:|---:|---:|---:|")
for ch in sorted({k[3] for k in res if k[1] == "c"}):
    for s in systems:
        keys = [k for k in res if k[0] == s and k[1] == "c" and k[3] == ch]
        if not keys:
            continue
        x = row(keys[0])
        share = f"{100 * x['share']:.0f}%" if s == "hybrid" else "-"
        print(f"| {ch:,} | {s} | {x['setup']:,.0f} | {x['lost']:,.0f} | {x['fwd']:,.0f} | {x['cpu']:.1f} | {x['up']:,.0f} | {share} |")
print("\nfirst-packet round trip (ms), 20 pings a round, each a new flow both ways:")
print("| system | median | p90 | vs ovs (median) |")
print("|---|---:|---:|---:|")
for s in systems:
    v = sorted(rtt.get(s, []))
    if not v:
        continue
    p90 = v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]
    base = med(rtt.get("ovs", []))
    print(f"| {s} | {med(v):.2f} | {p90:.2f} | {med(v) / base:.2f} |")
PY
