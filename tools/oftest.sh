#!/usr/bin/env bash
# OpenFlow 1.3 conformance: os-ken's switch test tool
# (os_ken/tests/switch/tester.py, from the Faucet venv tools/test.sh makes)
# against odpx, or against Open vSwitch 3.1 on the same harness.
#
#   sudo tools/oftest.sh [TARGET] [CATEGORY|FILE...]
#
# TARGET: odpx (default) or ovs (ovs-vswitchd, a netdev bridge with afxdp
# ports, its flow cache on). CATEGORY: match, action, group, meter (of13's
# folders; default: all four), each its own tester run; FILEs (e.g.
# of13/match/00_IN_PORT.json) run together in one more, named "files".
# ODPX_BIN=PATH runs that odpx build (default: a release build).
#
# Topology: one namespace; three veth pairs t1-x1, t2-x2, t3-x3. The
# target switch (dpid 1) has t1..t3 as ports 1..3, the tester switch (an
# odpx, dpid 2) x1..x3: the tester sends on its port 1 into the target's
# port 1 and receives what the target sends on its ports 2 and 3, as the
# tool's defaults want. The two switches' PMDs run on core 1 and core 0.
#
# Prints per category the tool's "OK(n) / ERROR(m)" and the failures, and
# a closing table; the logs stay in $OFTEST_OUT (default target/oftest).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-odpx}
shift || true
items=("$@")
[ ${#items[@]} -gt 0 ] || items=(match action group meter)
venv=$PWD/target/faucet-venv
[ -x "$venv/bin/osken-manager" ] || { echo "no $venv/bin/osken-manager: run tools/test.sh once (it makes the Faucet venv)" >&2; exit 2; }
switch_dir=$(ls -d "$venv"/lib/python3*/site-packages/os_ken/tests/switch)
out=${OFTEST_OUT:-$PWD/target/oftest}
mkdir -p "$out"
tag=$$
NS=odpx-oft-$tag
. tools/bench-common.sh
bench_setup $NS
for i in 1 2 3; do
  ip -n $NS link add t$i type veth peer name x$i
  ip -n $NS link set t$i up
  ip -n $NS link set x$i up
  # No IPv6 chatter: every frame the tester sees is one a test sent.
  ip netns exec $NS sysctl -qw net.ipv6.conf.t$i.disable_ipv6=1 net.ipv6.conf.x$i.disable_ipv6=1
done
OF_PORT=6653

# switch_config NAME DPID CORE PREFIX: an odpx config on ports PREFIX1..3.
switch_config() {
  cat > "$work/$1.toml" <<EOT
[switch]
socket = "$work/$1.sock"
[[port]]
name = "${4}1"
[[port]]
name = "${4}2"
[[port]]
name = "${4}3"
[pmd]
cores = [$3]
[openflow]
controller = "tcp:127.0.0.1:$OF_PORT"
datapath_id = "$2"
fail_mode = "secure"
max_backoff_ms = 200
EOT
}

start_odpx() { # NAME
  ip netns exec $NS "$odpx" run -c "$work/$1.toml" > "$out/$1.log" 2>&1 &
  echo $! > "$work/$1.pid"
  for _ in $(seq 100); do [ -S "$work/$1.sock" ] && return; sleep 0.1; done
  echo "odpx $1 did not start:"; cat "$out/$1.log"; exit 1
}

switch_config tester 0x2 0 x
start_odpx tester
if [ "$target" = ovs ]; then
  ovs_start $NS
  $vs add-br br0 -- set bridge br0 datapath_type=netdev protocols=OpenFlow13 \
    other-config:datapath-id=0000000000000001 fail_mode=secure
  for i in 1 2 3; do $vs add-port br0 t$i -- set interface t$i type=afxdp ofport_request=$i; done
  $vs set-controller br0 tcp:127.0.0.1:$OF_PORT
else
  switch_config target 0x1 1 t
  start_odpx target
fi

# Categories run one by one; the files given run together, as "files".
runs=()
for item in "${items[@]}"; do
  case $item in
    match|action|group|meter) runs+=("$item") ;;
    *) mkdir -p "$work/files"; cp "$switch_dir/$item" "$work/files/"
       [[ " ${runs[*]} " == *" files "* ]] || runs+=(files) ;;
  esac
done
declare -A ok err
for name in "${runs[@]}"; do
  if [ "$name" = files ]; then dir=$work/files; else dir=$switch_dir/of13/$name; fi
  log=$out/$target-$name.log
  ip netns exec $NS "$venv/bin/osken-manager" --ofp-tcp-listen-port=$OF_PORT --ofp-listen-host=127.0.0.1 \
    --test-switch-target 0000000000000001 --test-switch-tester 0000000000000002 \
    --test-switch-dir "$dir" "$switch_dir/tester.py" > "$log" 2>&1 || true
  line=$(grep -E '^OK\([0-9]+\) / ERROR\([0-9]+\)' "$log" | tail -1)
  ok[$name]=$(sed -n 's/^OK(\([0-9]*\)).*/\1/p' <<< "$line")
  err[$name]=$(sed -n 's/.*ERROR(\([0-9]*\)).*/\1/p' <<< "$line")
  echo "== $target $name: ${line:-no report (see $log)}"
  sed -n '/--- Test report ---/,/^OK(/p' "$log" | grep -v -e '--- Test report ---' -e '^OK(' | sed 's/^/   /'
done

echo
echo "target $target: passed / run, per category (os-ken $(ls -d "$venv"/lib/python3*/site-packages/os_ken-* | sed 's/.*os_ken-//; s/.dist-info//'))"
for name in "${runs[@]}"; do
  o=${ok[$name]:-0}; e=${err[$name]:-0}
  printf '%-28s %5s / %s\n' "$name" "$o" "$((o + e))"
done
