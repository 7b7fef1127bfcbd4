#!/usr/bin/env bash
# Flow install and dump rates through netlink, odpx against Debian's
# ovs-dpctl 3.1, in the test VM (the real kernel datapath; see tools/vm.sh).
#
#   tools/odp-bench.sh [FLOWS] [ROUNDS]      default 10000 flows, 3 rounds
#
# The same file of FLOWS wildcarded flows (four masks: IPv4 /24 sources,
# TCP/80 to a host with a tunnel set, Ethernet destinations, IPv6 /64
# sources) is installed into an empty datapath by
#   ovs-dpctl add-flows DP FILE             (one transaction per flow)
#   odpx flow add DP --file FILE --no-batch (one transaction per flow)
#   odpx flow add DP --file FILE            (batched: 64 requests per send)
# and dumped by `ovs-dpctl dump-flows` and `odpx flow list --stats`, each
# ROUNDS times, alternating. Times are wall-clock in the VM (busybox time,
# 10 ms resolution) under qemu TCG: absolute numbers are emulated; compare
# the ratios, which come from one VM run. The TCP flows spell out
# tcp_flags(0/0): the kernel requires the attribute, ovs-dpctl only sends
# what the text says (without it: EINVAL, "Missing key"), odpx adds it.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
rounds=${2:-3}
cargo build --release -q -p odpx-tools
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$n" > "$work/flows.txt" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    a, b = (i >> 8) & 0xff, i & 0xff
    k = i % 4
    if k == 0:
        print(f"in_port(1),eth(),eth_type(0x0800),ipv4(src=10.{a}.{b}.0/255.255.255.0,frag=no) 2")
    elif k == 1:
        print(f"in_port(1),eth(),eth_type(0x0800),ipv4(dst=172.16.{a}.{b},proto=6,frag=no),tcp(dst=80),tcp_flags(0/0) set(tunnel(tun_id=0x{i:x},dst=192.0.2.9,ttl=64,flags(df|key))),3")
    elif k == 2:
        print(f"in_port(2),eth(dst=02:00:00:00:{a:02x}:{b:02x}),eth_type(0x0800),ipv4(frag=no) 1")
    else:
        print(f"in_port(2),eth(),eth_type(0x86dd),ipv6(src=2001:db8:{a:x}:{b:x}::/ffff:ffff:ffff:ffff::,frag=no) push_vlan(vid=10,pcp=0),1")
PY
cat > "$work/run.sh" <<VMSCRIPT
t() { # label, command...: prints "label seconds"
  label=\$1; shift
  /bin/busybox time -f "\$label %e" "\$@" 2>&1 >/dev/null | grep "^\$label "
}
for r in \$(seq $rounds); do
  ovs-dpctl add-dp d1 2>/dev/null
  t dpctl-install ovs-dpctl add-flows d1 flows.txt
  echo "dpctl-flows \$(ovs-dpctl dump-flows d1 2>/dev/null | wc -l)"
  t dpctl-dump ovs-dpctl dump-flows d1
  ovs-dpctl del-dp d1 2>/dev/null
  ./odpx datapath add d2
  t odpx-install-unbatched ./odpx flow add d2 --file flows.txt --no-batch
  ./odpx flow clear d2
  t odpx-install-batched ./odpx flow add d2 --file flows.txt
  echo "odpx-flows \$(./odpx flow list d2 | wc -l)"
  t odpx-dump ./odpx flow list --stats d2
  ./odpx datapath delete d2
done
VMSCRIPT
cp target/release/odpx "$work/odpx"
ODPX_VM_TIMEOUT=1800 tools/vm.sh run "$work/run.sh" "$work/odpx" "$work/flows.txt" | tee "$work/out"
python3 - "$work/out" "$n" <<'PY'
import sys, statistics
vals = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 2:
        try:
            vals.setdefault(parts[0], []).append(float(parts[1]))
        except ValueError:
            pass
n = int(sys.argv[2])
for k in ("dpctl-flows", "odpx-flows"):
    if any(v != n for v in vals.get(k, [])):
        sys.exit(f"{k}: expected {n} flows installed, got {vals[k]}")
med = {k: statistics.median(v) for k, v in vals.items()}
print(f"\n{n} flows, median of {len(vals.get('dpctl-install', []))} rounds (qemu TCG; compare ratios):")
print(f"{'':28}{'seconds':>9}{'flows/s':>10}")
for k in ["dpctl-install", "odpx-install-unbatched", "odpx-install-batched", "dpctl-dump", "odpx-dump"]:
    if k in med:
        print(f"{k:28}{med[k]:9.2f}{n / med[k] if med[k] else float('inf'):10.0f}")
def ratio(a, b):
    return med[a] / med[b] if med.get(b) else float("nan")
print(f"install, ovs-dpctl / odpx unbatched: {ratio('dpctl-install', 'odpx-install-unbatched'):.2f}x")
print(f"install, ovs-dpctl / odpx batched:   {ratio('dpctl-install', 'odpx-install-batched'):.2f}x")
print(f"dump,    ovs-dpctl / odpx:           {ratio('dpctl-dump', 'odpx-dump'):.2f}x")
PY
