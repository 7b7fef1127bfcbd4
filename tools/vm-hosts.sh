# Shell functions for test-VM payloads (sourced from /payload, where
# tools/vm.sh puts the files it is given). iproute2's `ip` is in /payload:
# busybox's applet cannot make namespaces.

# two_hosts: namespaces h1 and h2 at 10.0.0.1/24 and 10.0.0.2/24 on e1 and
# e2, whose peers a1 and a2 stay in this namespace for a switch to take;
# no IPv6 chatter, and static neighbours, so that every frame a test counts
# is one it sent.
two_hosts() {
  local ip=/payload/ip
  hosts 2
  $ip -n h1 neigh add 10.0.0.2 lladdr "$($ip -n h2 -br link show e2 | awk '{print $3}')" dev e1
  $ip -n h2 neigh add 10.0.0.1 lladdr "$($ip -n h1 -br link show e1 | awk '{print $3}')" dev e2
}

# hosts N: namespaces h1..hN at 10.0.0.I/24 on eI, whose peers aI stay
# in this namespace for a switch to take; no IPv6 chatter.
hosts() {
  local ip=/payload/ip h
  sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  for h in $(seq "$1"); do
    $ip netns add h$h
    $ip netns exec h$h sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    $ip link add a$h type veth peer name e$h
    $ip link set e$h netns h$h
    $ip -n h$h addr add 10.0.0.$h/24 dev e$h
    $ip -n h$h link set e$h up
    $ip -n h$h link set lo up
    $ip link set a$h up
  done
}

# ovs_init: ovsdb-server on a fresh database in /tmp/ovs (the schema from
# /payload), for the ovs-vswitchd runs of the VM benchmarks; then
# `vswitchd` starts ovs-vswitchd (detached), `appctl` talks to it, and
# $VSCTL is ovs-vsctl on that database.
ovs_init() {
  export OVS_RUNDIR=/tmp/ovs OVS_LOGDIR=/tmp/ovs OVS_DBDIR=/tmp/ovs OVS_SYSCONFDIR=/tmp/ovs
  mkdir -p /tmp/ovs
  ovsdb-tool create /tmp/ovs/conf.db /payload/vswitch.ovsschema
  ovsdb-server --remote=punix:/tmp/ovs/db.sock --pidfile=/tmp/ovs/ovsdb-server.pid --detach --log-file=/tmp/ovs/ovsdb.log /tmp/ovs/conf.db
  VSCTL="ovs-vsctl --db=unix:/tmp/ovs/db.sock"
  $VSCTL --no-wait init
}
vswitchd() { ovs-vswitchd unix:/tmp/ovs/db.sock --pidfile=/tmp/ovs/ovs-vswitchd.pid --detach --log-file=/tmp/ovs/vswitchd.log; }
appctl() { ovs-appctl -t /tmp/ovs/ovs-vswitchd.$(cat /tmp/ovs/ovs-vswitchd.pid).ctl "$@"; }

# ctl ARGS: `odpx ctl` on the VM tests' control socket, /tmp/odpx.sock.
ctl() { odpx ctl -s /tmp/odpx.sock "$@"; }

# odpx_start CONFIG [ARGS]: `odpx run -c CONFIG ARGS` in the background
# (its pid in $ODPX, its log appended to /tmp/run.log), returning once its
# control socket answers; tries for TRIES x 0.2 s (default 100).
odpx_start() {
  local cfg=$1 i
  shift
  odpx run -c "$cfg" "$@" >> /tmp/run.log 2>&1 &
  ODPX=$!
  for i in $(seq ${TRIES:-100}); do
    grep -q 'control socket' /tmp/run.log 2>/dev/null && [ -S /tmp/odpx.sock ] && ctl show >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "odpx did not start:"; cat /tmp/run.log
}
