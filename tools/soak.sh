#!/usr/bin/env bash
# The switch daemon under everything at once, for MINUTES (default 10):
#
#   sudo tools/soak.sh [MINUTES]
#
# In a namespace of its own, `odpx run` (userspace mode) switches four
# AF_XDP ports. Three carry `odpx-soak`: random rule changes, MAC moves,
# flows starting and stopping, idle pauses and link flaps, with every frame
# checked against a fresh translation (tools/src/soak.rs). The fourth
# carries a flood: `odpx gen` sending 20,000 frames a second from 60,000
# source addresses (a new megaflow each, under NORMAL, and with a 1 s idle
# timeout a steady stream of misses). Every 10 s (at most 12 samples) the
# daemon's RSS, megaflows and lost upcalls are recorded.
#
# Passes when: the soak saw no wrong, missing or stale decision, the
# daemon never crashed and stopped cleanly, and RSS was flat (the last
# sample within 10% + 8 MiB of the one at a third of the run).
# Needs root (namespaces, AF_XDP); without it, skips with the reason, or
# fails when CI=true. `tools/test.sh` runs one minute of it.
set -euo pipefail
cd "$(dirname "$0")/.."
mins=${1:-10}
secs=$(python3 -c "print(int(float('$mins') * 60))")
if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
  echo "SKIPPED soak: needs root and network namespaces"
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
cargo build --quiet -p odpx-tools --bins
odpx=$PWD/target/debug/odpx
soak=$PWD/target/debug/odpx-soak
tag=$$
SW=odpx-soak-sw-$tag G=odpx-soak-gen-$tag
work=$(mktemp -d)
cleanup() {
  [ -n "${gen_pid:-}" ] && kill "$gen_pid" 2>/dev/null || true
  [ -n "${odpx_pid:-}" ] && kill -9 "$odpx_pid" 2>/dev/null || true
  ip netns del "$SW" 2>/dev/null || true
  ip netns del "$G" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for ns in $SW $G; do
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
for i in 1 2 3; do
  ip -n "$SW" link add "sa$i" numrxqueues 1 numtxqueues 1 type veth peer name "se$i" numrxqueues 1 numtxqueues 1
  ip -n "$SW" link set "sa$i" up
  ip -n "$SW" link set "se$i" up
done
ip -n "$SW" link add sa4 numrxqueues 1 numtxqueues 1 type veth peer name fe4 netns "$G" numrxqueues 1 numtxqueues 1
ip -n "$SW" link set sa4 up
ip -n "$G" link set fe4 up
cat > "$work/odpx.toml" <<EOF
[switch]
socket = "$work/odpx.sock"
rules_inline = ["priority=0,actions=NORMAL"]
[[port]]
name = "sa1"
[[port]]
name = "sa2"
[[port]]
name = "sa3"
[[port]]
name = "sa4"
[pmd]
cores = [$(( $(nproc) - 1 ))]
[cache]
idle_timeout_ms = 1000
[metrics]
listen = "127.0.0.1:9464"
EOF
# Debug for the daemon's own lines: its memory trims are summed below.
ip netns exec "$SW" env ODPX_LOG="${ODPX_LOG:-info,odpx::daemon=debug}" "$odpx" run -c "$work/odpx.toml" 2> "$work/odpx.log" &
odpx_pid=$!
for _ in $(seq 100); do
  "$odpx" ctl -s "$work/odpx.sock" show >/dev/null 2>&1 && break
  sleep 0.1
done
ip netns exec "$G" "$odpx" gen fe4 --workload macs --flows 60000 --rate 20000 --duration "$secs" > "$work/gen.out" 2>&1 &
gen_pid=$!

# RSS, megaflows and lost upcalls every 10 s (12 samples at most).
interval=$(( secs / 12 > 10 ? secs / 12 : 10 ))
(
  t=0
  while kill -0 "$odpx_pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$odpx_pid/status" 2>/dev/null || echo 0)
    st=$("$odpx" ctl -s "$work/odpx.sock" --json pmd-stats-show 2>/dev/null || echo '{}')
    echo "$t $rss $(echo "$st" | python3 -c 'import json,sys
try:
    d = json.load(sys.stdin)
    print(d["owner"]["megaflows"], d["owner"]["flow_limit"], sum(p["upcalls_lost"] for p in d["pmds"]), sum(p["upcalls"] for p in d["pmds"]))
except Exception:
    print("- - - -")')"
    sleep "$interval"
    t=$(( t + interval ))
  done
) > "$work/samples" &
sampler=$!

set +e
ip netns exec "$SW" "$soak" -s "$work/odpx.sock" --port 1:se1 --port 2:se2 --port 3:se3 \
  --seed "${SEED:-$tag}" --steps 1000000 --duration "$secs" --phase 1 --idle-ms 1000 --flap | tee "$work/soak.out"
soak_rc=${PIPESTATUS[0]}
set -e
crashed=0
kill -0 "$odpx_pid" 2>/dev/null || crashed=1
wait "$gen_pid" 2>/dev/null || true
gen_pid=
metrics_ok=$(ip netns exec "$SW" python3 -c 'import urllib.request
t = urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5).read().decode()
print(sum(1 for l in t.splitlines() if l.startswith("odpx_")))' 2>/dev/null || echo 0)
kill -TERM "$odpx_pid" 2>/dev/null || true
stop_rc=0
wait "$odpx_pid" || stop_rc=$?
odpx_pid=
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true

echo
echo "flood: $(cat "$work/gen.out")"
echo "metrics samples at the end: $metrics_ok"
echo "  t(s)  RSS(MiB)  megaflows  flow limit  upcalls  lost upcalls"
awk '{ printf "%6d %9.1f %10s %11s %8s %13s\n", $1, $2 / 1024, $3, $4, $6, $5 }' "$work/samples"
# "memory trimmed: RSS A -> B MiB in T ms", every 30 s.
{ grep 'memory trimmed' "$work/odpx.log" || true; } | sed 's/.*RSS \([0-9.]*\) -> \([0-9.]*\) MiB in \([0-9.]*\) ms/\1 \2 \3/' |
  awk '{ n++; r = $1 - $2; if (r > rel) rel = r; if ($3 > ms) ms = $3 } END { printf "memory trims: %d, most released %.1f MiB, longest %.1f ms\n", n, rel, ms }'
python3 - "$work/samples" "$soak_rc" "$crashed" "$stop_rc" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rss = [int(r[1]) for r in rows if r[1].isdigit() and int(r[1]) > 0]
soak_rc, crashed, stop_rc = (int(x) for x in sys.argv[2:5])
flat = True
if len(rss) >= 3:
    base = rss[len(rss) // 3]
    flat = rss[-1] <= base * 1.10 + 8 * 1024
    print(f"RSS: {rss[0] / 1024:.1f} MiB at the start, {base / 1024:.1f} at a third, "
          f"{rss[-1] / 1024:.1f} at the end (max {max(rss) / 1024:.1f}): {'flat' if flat else 'GROWING'}")
print(f"soak rc {soak_rc}, crashes {crashed}, clean stop {'yes' if stop_rc == 0 else f'no (rc {stop_rc})'}")
ok = soak_rc == 0 and crashed == 0 and stop_rc == 0 and flat
print("soak.sh: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
