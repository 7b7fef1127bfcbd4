#!/usr/bin/env bash
# A throwaway VM with the real Open vSwitch kernel datapath, for tests.
#
#   tools/vm.sh provision          install qemu, busybox-static and ovs-dpctl;
#                                  fetch a Debian cloud kernel carrying
#                                  openvswitch.ko (cached in $ODPX_VM_CACHE)
#   tools/vm.sh run PAYLOAD [FILE...]
#                                  boot that kernel (qemu TCG) with an initramfs
#                                  holding busybox, the openvswitch/vxlan/veth/8021q
#                                  modules (loaded at boot), ovs-dpctl, the
#                                  FILEs (in /payload/) and PAYLOAD (a shell
#                                  script, run as /payload/run.sh); print what
#                                  it prints; exit with its exit status.
#
# The host kernel has no openvswitch module, hence the VM. Timings inside TCG
# are emulated: compare inside one VM run only.
set -euo pipefail

cache=${ODPX_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/odpx-vm}
mkdir -p "$cache"

provision() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  [ -x /bin/busybox ] && /bin/busybox --list | grep -x insmod >/dev/null || need+=(busybox-static)
  command -v ovs-dpctl >/dev/null || need+=(openvswitch-switch)
  command -v cpio >/dev/null || need+=(cpio)
  command -v depmod >/dev/null || need+=(kmod)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
  fi
  if [ ! -f "$cache/vmlinuz" ] || [ ! -d "$cache/modules" ]; then
    local pkg
    pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' | awk '{print $1}' | sort -V | tail -1)
    [ -n "$pkg" ] || { apt-get update -qq; pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' | awk '{print $1}' | sort -V | tail -1); }
    [ -n "$pkg" ] || { echo "no linux-image-6.1.0-*-cloud-amd64 package found" >&2; exit 1; }
    echo "== fetching $pkg" >&2
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -q "$pkg" 2>/dev/null && dpkg -x ./*.deb root)
    local kver
    kver=$(ls "$tmp/root/lib/modules")
    rm -rf "$cache/modules"
    mkdir -p "$cache/modules"
    cp -a "$tmp/root/lib/modules/$kver" "$cache/modules/"
    depmod -b "$tmp/root" "$kver" 2>/dev/null || true
    cp "$tmp/root/lib/modules/$kver/modules.dep" "$cache/modules/$kver/" 2>/dev/null || true
    cp "$tmp/root/boot/vmlinuz-$kver" "$cache/vmlinuz"
    echo "$kver" > "$cache/kver"
    rm -rf "$tmp"
  fi
}

# Modules to load, dependencies first, from modules.dep.
module_order() {
  local kver=$1
  python3 - "$cache/modules/$kver/modules.dep" <<'EOF'
import sys
deps = {}
for line in open(sys.argv[1]):
    mod, _, rest = line.partition(":")
    deps[mod] = rest.split()
want = ["kernel/net/openvswitch/openvswitch.ko", "kernel/net/openvswitch/vport-vxlan.ko", "kernel/net/openvswitch/vport-geneve.ko", "kernel/net/openvswitch/vport-gre.ko", "kernel/drivers/net/veth.ko", "kernel/net/8021q/8021q.ko"]
order, seen = [], set()
def visit(m):
    if m in seen or m not in deps:
        return
    seen.add(m)
    for d in deps[m]:
        visit(d)
    order.append(m)
for w in want:
    visit(w)
print("\n".join(order))
EOF
}

copy_with_libs() {
  local bin=$1 root=$2
  mkdir -p "$root$(dirname "$bin")"
  cp -L "$bin" "$root$bin"
  copy_libs "$bin" "$root"
}

# copy_libs BIN ROOT: the shared libraries BIN needs, at their paths.
copy_libs() {
  local bin=$1 root=$2
  ldd "$bin" | grep -oE '/[^ ]+' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

run() {
  local payload=$1
  shift
  provision
  local kver root out
  kver=$(cat "$cache/kver")
  root=$(mktemp -d)
  out=$(mktemp)
  trap '[ -n "${ODPX_VM_KEEP:-}" ] && cp "$out" "$ODPX_VM_KEEP"; rm -rf "$root" "$out"' RETURN
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,payload,lib/modules,var/run/openvswitch}
  cp /bin/busybox "$root/bin/busybox"
  local m
  for m in $(module_order "$kver"); do
    mkdir -p "$root/lib/modules/$(dirname "$m")"
    cp "$cache/modules/$kver/$m" "$root/lib/modules/$m"
    echo "$m" >> "$root/lib/modules/load-order"
  done
  copy_with_libs "$(command -v ovs-dpctl)" "$root"
  local f
  for f in "$@"; do
    cp -L "$f" "$root/payload/"
    # Test builds are mostly debug info, which the VM does not need: the
    # initramfs is unpacked into the VM's memory.
    command -v strip >/dev/null && { strip --strip-debug "$root/payload/$(basename "$f")" 2>/dev/null || true; }
    [ -x "$f" ] && [ -f "$f" ] && ldd "$f" >/dev/null 2>&1 && copy_libs "$(readlink -f "$f")" "$root"
  done
  cp "$payload" "$root/payload/run.sh"
  cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in $(cat /lib/modules/load-order); do
  insmod /lib/modules/$m || echo "ODPX-VM: insmod $m failed"
done
ip link set lo up
cd /payload
echo "ODPX-VM-BEGIN"
sh /payload/run.sh
echo "ODPX-VM-EXIT $?"
poweroff -f
EOF
  chmod +x "$root/init"
  (cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$root.initrd.gz"
  timeout -k 10 "${ODPX_VM_TIMEOUT:-300}" qemu-system-x86_64 -accel tcg -cpu max -m 768 -smp "${ODPX_VM_SMP:-1}" -nographic -no-reboot \
    -kernel "$cache/vmlinuz" -initrd "$root.initrd.gz" \
    -append 'console=ttyS0 quiet panic=-1 loglevel=3' > "$out" 2>&1 || true
  rm -f "$root.initrd.gz"
  tr -d '\r' < "$out" | sed -n '/ODPX-VM-BEGIN$/,/^ODPX-VM-EXIT /p' | sed '1d;$d'
  local status
  status=$(tr -d '\r' < "$out" | sed -n 's/^ODPX-VM-EXIT \([0-9]*\)$/\1/p')
  if [ -z "$status" ]; then
    echo "odpx vm: the VM did not finish its payload; console tail:" >&2
    tr -d '\r' < "$out" | tail -20 >&2
    return 125
  fi
  return "$status"
}

case "${1:-}" in
  provision) provision ;;
  run) shift; run "$@" ;;
  *) echo "usage: tools/vm.sh provision | run PAYLOAD [FILE...]" >&2; exit 2 ;;
esac
