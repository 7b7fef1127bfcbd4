# Shared by the side-by-side bench scripts (tools/switch-bench.sh,
# tools/tunnel-bench.sh); source it, do not run it.
#
#   bench_setup NS...    root check, Open vSwitch installed if missing, odpx
#                        built ($odpx; ODPX_BIN=PATH: that one), a work directory ($work) and the
#                        namespaces NS... made, all removed on exit along
#                        with every process whose pid is in $work/*.pid
#   ovs_start NS         ovsdb-server + ovs-vswitchd in namespace NS, PMD
#                        on core 1: sets $vs (ovs-vsctl) and, once bridges
#                        exist, ovs_ctl gives the ovs-appctl target
#   ovs_stop             stops both (waiting for ovs-vswitchd to exit) and
#                        removes their state
#   system_stop SYSTEM   odpx_stop or ovs_stop
#   switch_config PORT.. $work/odpx.toml with these ports, PMD on core 1
#   openflow_config ...  an OpenFlow odpx's $work/odpx.toml (ports t1, t2)
#   openflow_start SYS NS PORT...  odpx or an OVS bridge of these ports,
#                        programmable with ovs-ofctl at $target
#   odpx_start NS [BIN]  `odpx run -c $work/odpx.toml` in namespace NS (with
#                        BIN, another odpx build, instead of $odpx), once
#                        its control socket $work/odpx.sock answers
#
# A/B runs: ODPX_B=PATH (another build of odpx, e.g. a worktree's
# target/release/odpx) adds a system `odpxB` that the scripts measure beside
# `odpx`, in the same rounds, with the same generator ($odpx's `gen`).
#   odpx_stop            SIGTERM, and waits for it to exit

bench_setup() {
  [ "$(id -u)" = 0 ] || { echo "needs root (namespaces, XDP)" >&2; exit 2; }
  command -v ovs-vswitchd >/dev/null || { echo "== installing openvswitch-switch"; DEBIAN_FRONTEND=noninteractive apt-get install -y -q openvswitch-switch >/dev/null; }
  if [ -n "${ODPX_BIN:-}" ]; then
    odpx=$ODPX_BIN   # a build the caller made (the tests': their own)
  else
    cargo build --release -q -p odpx-tools
    odpx=$PWD/target/release/odpx
  fi
  work=$(mktemp -d)
  bench_namespaces=("$@")
  trap bench_cleanup EXIT
  for ns in "${bench_namespaces[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
}

bench_cleanup() {
  set +e
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  sleep 0.5
  for ns in "${bench_namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$work"
}

ovs_start() {
  o=$work/ovs; mkdir -p "$o"
  export OVS_RUNDIR=$o OVS_LOGDIR=$o OVS_DBDIR=$o
  ovsdb-tool create "$o/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ip netns exec "$1" ovsdb-server --remote=punix:"$o/db.sock" --pidfile="$o/ovsdb-server.pid" --detach --log-file="$o/ovsdb.log" "$o/conf.db"
  cp "$o/ovsdb-server.pid" "$work/ovsdb.pid"
  vs="ovs-vsctl --db=unix:$o/db.sock"
  $vs --no-wait init
  $vs --no-wait set Open_vSwitch . other_config:pmd-cpu-mask=0x2
  ip netns exec "$1" ovs-vswitchd unix:"$o/db.sock" --pidfile="$o/ovs-vswitchd.pid" --detach --log-file="$o/vswitchd.log"
  cp "$o/ovs-vswitchd.pid" "$work/vswitchd.pid"
}

ovs_ctl() { echo "$o/ovs-vswitchd.$(cat "$o/ovs-vswitchd.pid").ctl"; }

ovs_stop() {
  local pid; pid=$(cat "$work/vswitchd.pid")
  ovs-appctl -t "$(ovs_ctl)" exit >/dev/null 2>&1 || kill "$pid"
  kill "$(cat "$work/ovsdb.pid")" 2>/dev/null || true
  # Its AF_XDP sockets go with the process: wait for it.
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$work/vswitchd.pid" "$work/ovsdb.pid"; rm -rf "$o"
}

# system_stop SYSTEM: odpx_stop or ovs_stop.
system_stop() { if [ "$1" = ovs ]; then ovs_stop; else odpx_stop; fi; }

# switch_config PORT...: $work/odpx.toml with these ports (1, 2, ... in
# order), the control socket $work/odpx.sock and the PMD on core 1.
switch_config() {
  { printf '[switch]\nsocket = "%s"\n' "$work/odpx.sock"
    printf '[[port]]\nname = "%s"\n' "$@"
    printf '[pmd]\ncores = [1]\n'; } > "$work/odpx.toml"
}

# openflow_config [OPENFLOW...]: switch_config for ports t1 and t2, and an
# [openflow] section of datapath 0x1 in secure mode with these lines too.
openflow_config() {
  switch_config t1 t2
  { printf '[openflow]\ndatapath_id = "0x1"\nfail_mode = "secure"\n'
    printf '%s\n' "$@"; } >> "$work/odpx.toml"
}

# openflow_start SYSTEM NS PORT...: odpx (as $work/odpx.toml says, which
# must listen on punix:$work/odpx.mgmt) or Open vSwitch (a netdev bridge in
# secure mode, OpenFlow 1.3, these afxdp ports as OpenFlow ports 1, 2, ...)
# in namespace NS; sets $target, the socket ovs-ofctl reaches it on.
openflow_start() {
  local sys=$1 ns=$2 i=1 p
  shift 2
  case $sys in
    odpx)
      odpx_start "$ns"
      target=unix:$work/odpx.mgmt
      for _ in $(seq 100); do [ -S "$work/odpx.mgmt" ] && break; sleep 0.1; done
      [ -S "$work/odpx.mgmt" ] || { echo "odpx did not start:"; cat "$work/odpx.err"; exit 1; } ;;
    ovs)
      ovs_start "$ns"
      $vs add-br br0 -- set bridge br0 datapath_type=netdev protocols=OpenFlow13 fail_mode=secure
      for p in "$@"; do
        $vs add-port br0 "$p" -- set interface "$p" type=afxdp ofport_request=$i
        i=$((i + 1))
      done
      target=unix:$o/br0.mgmt ;;
  esac
}

odpx_start() {
  ip netns exec "$1" "${2:-$odpx}" run -c "$work/odpx.toml" 2> "$work/odpx.err" &
  echo $! > "$work/odpx.pid"
  for _ in $(seq 50); do [ -S "$work/odpx.sock" ] && break; sleep 0.1; done
}

odpx_stop() {
  kill -TERM "$(cat "$work/odpx.pid")"; wait "$(cat "$work/odpx.pid")" 2>/dev/null || true; rm -f "$work/odpx.pid"
}

# The odpx systems to measure: `odpx`, and `odpxB` when ODPX_B is set.
odpx_systems() { echo "odpx${ODPX_B:+ odpxB}"; }
# The binary of an odpx system.
odpx_bin() { if [ "$1" = odpxB ]; then echo "$ODPX_B"; else echo "$odpx"; fi; }
