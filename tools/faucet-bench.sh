#!/usr/bin/env bash
# Forwarding under Faucet's pipeline, side by side in one run: odpx and
# Open vSwitch 3.1 (a netdev bridge with afxdp ports, its flow cache on),
# both loaded with the same rules by the same client (Debian's `ovs-ofctl`
# over OpenFlow 1.3 on a unix socket).
#
#   sudo tools/faucet-bench.sh [SECONDS] [ROUNDS] [HOSTS] [FLOWS] [RATES]
#
# Defaults: 5 s per measurement, 3 rounds, 1000 hosts, 10000 flows,
# RATES="200000 400000 0" (pps offered; 0: the generator's full speed).
#
# The rules: `odpx workload --faucet-hosts HOSTS`, Faucet's tables for two
# routed VLANs (ports 1 and 2 on VLAN 100, port 3 on VLAN 200, router IPs
# on both) once it has learned and resolved every host: per host an
# eth_src rule, an eth_dst rule and a FIB entry in each VLAN (the Faucet
# routing test in tools/tests/faucet_netns.rs requires that these are the
# lines a live Faucet installs). The traffic: `odpx gen --workload faucet`,
# FLOWS UDP flows (Zipf 1.0) from the hosts behind port 1, half bridged to
# hosts behind port 2, half routed (dec_ttl, new MACs, VLAN 100 -> 200) to
# hosts behind port 3.
#
# Topology: netns gen (g0) -> s1 [switch netns: s1 s2 s3] s2 -> netns b
# (k0), s3 -> netns r (k0). Generator on core 0, the switch's PMD on core
# 1. Forwarded = what the two sinks' k0 received. Megaflows: the
# datapath's flow count right after a measurement (odpx: dump-megaflows;
# OVS: dpctl/dump-flows). Rounds alternate the systems. FAUCET_BENCH_STATS=1
# also prints each PMD's statistics after each measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
hosts=${3:-1000}
nflows=${4:-10000}
rates=${5:-200000 400000 0}
tag=$$
SW=odpx-fbsw-$tag G=odpx-fbgen-$tag B=odpx-fbbr-$tag R=odpx-fbrt-$tag
. tools/bench-common.sh
bench_setup $SW $G $B $R
veth() { # SWITCH-END PEER-NS PEER-END
  ip -n $SW link add "$1" numrxqueues 1 numtxqueues 1 type veth peer name "$3" netns "$2" numrxqueues 1 numtxqueues 1
  ip netns exec $SW sysctl -qw net.ipv6.conf."$1".disable_ipv6=1
  ip netns exec "$2" sysctl -qw net.ipv6.conf."$3".disable_ipv6=1
  ip -n $SW link set "$1" up; ip -n "$2" link set "$3" up
}
veth s1 $G g0; veth s2 $B k0; veth s3 $R k0
"$odpx" workload --faucet-hosts "$hosts" > "$work/faucet.flows"
nrules=$(wc -l < "$work/faucet.flows")
switch_config s1 s2 s3
printf '[openflow]\nlisten = "punix:%s"\ndatapath_id = "0x1"\nfail_mode = "secure"\n' "$work/odpx.mgmt" >> "$work/odpx.toml"

ofctl() { ovs-ofctl -O OpenFlow13 "$@"; }
rx() { echo $(( $(ip netns exec $B cat /sys/class/net/k0/statistics/rx_packets) + $(ip netns exec $R cat /sys/class/net/k0/statistics/rx_packets) )); }

start_system() { # SYSTEM: starts it with the rules in; sets $target
  openflow_start "$1" $SW s1 s2 s3
  [ "$1" = odpx ] || sleep 2
  ofctl add-flows $target "$work/faucet.flows"
  local n; n=$(ofctl dump-flows $target | grep -c 'actions=' || true)
  [ "$n" = "$nrules" ] || { echo "$1 holds $n rules of $nrules"; exit 1; }
}

megaflows() { # SYSTEM
  case $1 in
    odpx) "$odpx" ctl -s "$work/odpx.sock" dump-megaflows | grep -c 'actions:' || true ;;
    ovs) ovs-appctl -t "$(ovs_ctl)" dpctl/dump-flows 2>/dev/null | grep -c 'actions:' || true ;;
  esac
}

cycles() { # SYSTEM: average cycles per packet since the last clear
  case $1 in
    odpx) "$odpx" ctl -s "$work/odpx.sock" pmd-stats-show | sed -n 's/.*avg processing cycles per packet: \([0-9.]*\).*/\1/p' | head -1 ;;
    ovs) ovs-appctl -t "$(ovs_ctl)" dpif-netdev/pmd-stats-show | sed -n 's/.*avg processing cycles per packet: \([0-9.]*\).*/\1/p' | head -1 ;;
  esac
}

pmd_stats() { # SYSTEM: the PMD's own account (FAUCET_BENCH_STATS=1)
  case $1 in
    odpx) "$odpx" ctl -s "$work/odpx.sock" pmd-stats-show ;;
    ovs) ovs-appctl -t "$(ovs_ctl)" dpif-netdev/pmd-stats-show ;;
  esac | sed "s/^/STATS $1 /"
}

clear_stats() { # SYSTEM
  case $1 in
    odpx) "$odpx" ctl -s "$work/odpx.sock" pmd-stats-clear > /dev/null ;;
    ovs) ovs-appctl -t "$(ovs_ctl)" dpif-netdev/pmd-stats-clear > /dev/null ;;
  esac
}

genargs="--workload faucet --hosts $hosts --flows $nflows --zipf 1.0"
for round in $(seq "$rounds"); do
  for sys in odpx ovs; do
    start_system $sys
    for rate in $rates; do
      # Warm-up (the caches fill), then the measured run.
      ip netns exec $G "$odpx" gen g0 $genargs --rate "$rate" --duration 2 --core 0 > /dev/null
      clear_stats $sys
      before=$(rx)
      out=$(ip netns exec $G "$odpx" gen g0 $genargs --rate "$rate" --duration "$secs" --core 0)
      sleep 0.3
      after=$(rx)
      mf=$(megaflows $sys)
      pps_off=$(echo "$out" | sed -n 's/.*(\([0-9]*\) pps).*/\1/p')
      echo "RESULT $sys $rate offered_pps=$pps_off forwarded_pps=$(( (after - before) / secs )) megaflows=$mf cycles=$(cycles $sys)"
      [ -z "${FAUCET_BENCH_STATS:-}" ] || pmd_stats $sys
    done
    system_stop $sys
    sleep 1
  done
done | tee "$work/all"
python3 - "$work/all" "$secs" "$hosts" "$nflows" <<'PY'
import sys, statistics
res = {}
for line in open(sys.argv[1]):
    p = line.split()
    if not p or p[0] != "RESULT":
        continue
    kv = dict(x.split("=") for x in p[3:])
    res.setdefault((p[1], int(p[2])), []).append(kv)
med = lambda xs: statistics.median(xs) if xs else float("nan")
rounds = max(len(v) for v in res.values())
print(f"\nFaucet's pipeline, {sys.argv[3]} hosts, {sys.argv[4]} flows: medians over {rounds} round(s), {sys.argv[2]} s each; rate 0 = generator at full speed")
print(f"{'rate':>8} {'system':6}{'offered pps':>12}{'forwarded pps':>15}{'fwd min-max':>20}{'megaflows':>10}{'cycles/pkt':>11}")
m = {}
for (sut, rate), v in sorted(res.items(), key=lambda kv: (kv[0][1] or 1e12, kv[0][0])):
    num = lambda k: [float(x[k]) for x in v if x.get(k)]
    off, fwd, mf, cyc = med(num("offered_pps")), med(num("forwarded_pps")), med(num("megaflows")), med(num("cycles"))
    m[(sut, rate)] = (fwd, mf, cyc)
    print(f"{rate:>8} {sut:6}{off:12.0f}{fwd:15.0f}{min(num('forwarded_pps')):>10.0f}-{max(num('forwarded_pps')):<9.0f}{mf:10.0f}{cyc:11.0f}")
print()
for (sut, rate) in sorted(m):
    if sut == "odpx" and ("ovs", rate) in m:
        o, v = m[("odpx", rate)], m[("ovs", rate)]
        print(f"rate {rate}: forwarded odpx/ovs {o[0] / v[0]:.3f}, megaflows odpx/ovs {o[1] / v[1]:.2f}, cycles odpx/ovs {o[2] / v[2]:.2f}")
PY
