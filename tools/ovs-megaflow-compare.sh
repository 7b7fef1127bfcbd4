#!/usr/bin/env bash
# Side-by-side megaflow width: the same 1k-rule ACL + routing rule set and
# the same flows through odpx's translator and through Open vSwitch 3.1
# (Debian package, dummy datapath, `ofproto/trace`, which prints the megaflow
# OVS would install). Reports how many distinct megaflows each needs.
# Usage: tools/ovs-megaflow-compare.sh [N_FLOWS]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
if ! command -v ovs-vswitchd >/dev/null; then
  apt-get install -y -q openvswitch-switch >/dev/null
fi
work=$(mktemp -d)
export OVS_RUNDIR=$work OVS_LOGDIR=$work OVS_DBDIR=$work
cleanup() {
  for p in ovs-vswitchd ovsdb-server; do
    [ -f "$work/$p.pid" ] && kill "$(cat "$work/$p.pid")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

cargo run -q --release -p odpx-benches --example megaflow_compare -- "$work" "$n"

ovsdb-tool create "$work/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server --remote="punix:$work/db.sock" --pidfile="$work/ovsdb-server.pid" --detach --log-file="$work/ovsdb.log" "$work/conf.db"
vsctl() { ovs-vsctl --db="unix:$work/db.sock" "$@"; }
vsctl --no-wait init
ovs-vswitchd "unix:$work/db.sock" --enable-dummy=override --disable-system --pidfile="$work/ovs-vswitchd.pid" \
  --detach --log-file="$work/vswitchd.log"
vsctl add-br br0 -- set bridge br0 datapath_type=dummy
for i in $(seq 1 9); do
  vsctl add-port br0 "p$i" -- set interface "p$i" type=dummy ofport_request="$i"
done
ovs-ofctl add-flows br0 "$work/rules.txt"
while read -r flow; do
  ovs-appctl ofproto/trace br0 "$flow" | sed -n 's/^Megaflow: //p'
done < "$work/flows.txt" > "$work/ovs-megaflows.txt"
echo "ovs-vswitchd $(ovs-vswitchd --version | head -1 | awk '{print $NF}'): $(wc -l < "$work/flows.txt") flows -> $(sort -u "$work/ovs-megaflows.txt" | wc -l) distinct megaflows"
echo "sample OVS megaflows:"
sort -u "$work/ovs-megaflows.txt" | head -3 | sed 's/^/  /'
