#!/usr/bin/env bash
# odpx's pure-kernel mode side by side with Open vSwitch 3.1's ovs-vswitchd,
# both driving the Linux kernel datapath, in one boot of the test VM
# (tools/vm.sh, qemu TCG with 2 vCPUs: absolute numbers are emulated;
# compare the two systems within one run, as ratios).
#
#   tools/kernel-bench.sh [ROUNDS] [NEW_FLOWS_PER_SECOND] [SECONDS]
#
# Topology: namespaces h1 and h2, each behind a veth whose root-side end
# (a1, a2) is a port of the switch under test. Rules, the same text for
# both: `priority=10,dl_src=02:ff:ff:ff:ff:ff,actions=drop` (matches no
# traffic, but makes every megaflow pin its source MAC) and in_port 1 <-> 2.
# Idle timeout 300 ms for both (odpx idle_timeout_ms, OVS max-idle).
#
# Per round and system, alternating:
# * flow setup: `odpx gen --workload macs` offers RATE new flows a second
#   for SECONDS (one frame per source MAC: every frame is a miss); the
#   rate is the first packets delivered divided by the time from the first
#   to the last delivery (the upcall path end to end: upcall, translation,
#   flow put, execute); misses the kernel could not queue are its `lost`.
# * first-packet round trip: 30 pings one second apart (after 3 not
#   counted); every flow expires in between, so each request and each
#   reply is a miss (the kernel's missed count is printed to show it).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
rate=${2:-4000}
secs=${3:-3}
flows=$((rate * secs))

cargo build --release -q -p odpx-tools
need=(ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl ovs-appctl ip)
files=(target/release/odpx tools/vm-hosts.sh /usr/share/openvswitch/vswitch.ovsschema)
for c in "${need[@]}"; do
  files+=("$(command -v "$c")")
done
tools/vm.sh provision

payload=$(mktemp)
out=$(mktemp)
trap 'cp "$out" /tmp/kernel-bench.last; rm -f "$payload" "$out"' EXIT
cat > "$payload" <<EOF
ROUNDS=$rounds RATE=$rate SECS=$secs FLOWS=$flows
EOF
cat >> "$payload" <<'EOF'
set -u
PATH=/payload:$PATH
IP=/payload/ip
mkdir -p /run/odpx
. /payload/vm-hosts.sh
two_hosts
RULES='priority=10,dl_src=02:ff:ff:ff:ff:ff,actions=drop
priority=0,in_port=1,actions=output:2
priority=0,in_port=2,actions=output:1'
printf '%s\n' "$RULES" > /tmp/rules.txt
cat > /tmp/k.toml <<CONF
[switch]
socket = "/tmp/odpx.sock"
datapath = "kernel"
rules = "/tmp/rules.txt"
[[port]]
name = "a1"
[[port]]
name = "a2"
[cache]
idle_timeout_ms = 300
CONF
up() { cut -d' ' -f1 /proc/uptime; }
txa2() { cat /sys/class/net/a2/statistics/tx_packets; }
dpstat() { ovs-dpctl show "$1" | sed -n "s/.*$2:\([0-9]*\).*/\1/p"; }

measure() { # SYSTEM DATAPATH ROUND
  sleep 2
  b0=$(txa2); l0=$(dpstat $2 lost)
  $IP netns exec h1 odpx gen e1 --workload macs --flows $FLOWS --rate $RATE --duration $SECS > /tmp/gen.out 2>&1 &
  gen=$!
  last=$b0; t0=""; tlast=""; quiet=0
  while [ $quiet -lt 12 ]; do
    sleep 0.25
    c=$(txa2)
    if [ "$c" != "$last" ]; then
      [ -z "$t0" ] && t0=$(up)
      last=$c; tlast=$(up); quiet=0
    else
      quiet=$((quiet + 1))
    fi
  done
  wait $gen
  echo "SETUP $1 $3 offered=$(sed -n 's/^sent \([0-9]*\).*/\1/p' /tmp/gen.out) delivered=$((last - b0)) first=$t0 last=$tlast lost=$(( $(dpstat $2 lost) - l0 ))"
  # Three pings not counted: the first execution of every code path costs
  # extra under TCG (translation), for either system.
  $IP netns exec h1 ping -c 3 -i 1 10.0.0.2 > /dev/null
  sleep 2
  m0=$(dpstat $2 missed)
  $IP netns exec h1 ping -c 30 -i 1 10.0.0.2 | sed -n "s/.*time=\([0-9.]*\) ms/RTT $1 $3 \1/p"
  echo "MISSED $1 $3 $(( $(dpstat $2 missed) - m0 ))"
}

ovs_init
$VSCTL --no-wait set Open_vSwitch . other_config:max-idle=300

for r in $(seq $ROUNDS); do
  odpx run -c /tmp/k.toml > /tmp/odpx.log 2>&1 &
  odpx=$!
  sleep 3
  measure odpx odpx0 $r
  kill -TERM $odpx; wait $odpx
  odpx datapath delete odpx0

  vswitchd
  $VSCTL add-br br0 -- add-port br0 a1 -- set interface a1 ofport_request=1 -- add-port br0 a2 -- set interface a2 ofport_request=2
  ovs-ofctl del-flows br0
  ovs-ofctl add-flows br0 /tmp/rules.txt
  # Restarted once the datapath exists: started on a fresh datapath in
  # this VM, ovs-vswitchd 3.1 sets its per-CPU upcall sockets before it
  # has any handler, and every miss is lost.
  appctl exit; sleep 1; vswitchd
  sleep 3
  measure ovs ovs-system $r
  $VSCTL del-br br0
  appctl exit; sleep 1
  ovs-dpctl del-dp ovs-system
done
EOF

echo "== $rounds round(s); flow setup: $flows new flows offered at $rate/s; first packet: 30 pings per round and system" >&2
ODPX_VM_SMP=${ODPX_VM_SMP:-2} ODPX_VM_TIMEOUT=3000 tools/vm.sh run "$payload" "${files[@]}" > "$out" || echo "(the VM payload ended with status $?)" >&2
grep -E '^(SETUP|RTT|MISSED) ' "$out" >&2 || { cat "$out" >&2; exit 1; }
python3 - "$out" <<'PY'
import sys, statistics as st
setup, rtt, missed = {}, {}, {}
for line in open(sys.argv[1]):
    w = line.split()
    if not w:
        continue
    if w[0] == "SETUP":
        kv = dict(x.split("=", 1) for x in w[3:])
        secs = float(kv["last"]) - float(kv["first"]) + 0.25
        setup.setdefault(w[1], []).append((int(kv["delivered"]) / secs, int(kv["offered"]), int(kv["delivered"]), int(kv["lost"])))
    elif w[0] == "RTT":
        rtt.setdefault(w[1], []).append(float(w[3]))
    elif w[0] == "MISSED":
        missed.setdefault(w[1], []).append(int(w[3]))
def p99(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))]
print("| system | setup rate, flows/s (median of rounds) | delivered / offered (lost) per round | first-packet RTT median / p99 (ms) | misses per 30 pings |")
print("|---|---:|---|---|---|")
for s in ("odpx", "ovs"):
    rates = [x[0] for x in setup.get(s, [])]
    rounds = ", ".join(f"{d}/{o} ({l})" for _, o, d, l in setup.get(s, []))
    r = rtt.get(s, [])
    print(f"| {s} | {st.median(rates):,.0f} | {rounds} | {st.median(r):.2f} / {p99(r):.2f} ({len(r)} samples) | {', '.join(map(str, missed.get(s, [])))} |")
o, v = setup.get("odpx"), setup.get("ovs")
if o and v:
    print(f"\nodpx / ovs-vswitchd: setup rate {st.median([x[0] for x in o]) / st.median([x[0] for x in v]):.2f}x, "
          f"first-packet RTT median {st.median(rtt['odpx']) / st.median(rtt['ovs']):.2f}x, p99 {p99(rtt['odpx']) / p99(rtt['ovs']):.2f}x")
PY
