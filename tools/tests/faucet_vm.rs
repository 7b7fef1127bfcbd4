//! Faucet's pipeline in the kernel datapath's two modes, in the test VM:
//! the rules Faucet installs for the tutorial's switching
//! (`tools/tests/data/faucet-switching.flows`, as `ovs-ofctl dump-flows`
//! printed them from a userspace odpx that Faucet programmed; the Faucet
//! switching test checks that Faucet still installs exactly these) are
//! pushed back with `ovs-ofctl add-flows` into odpx with `datapath =
//! "kernel"` and `"hybrid"`, and pass the same traffic checks: hosts in
//! one VLAN reach each other (flooded, as the pipeline does for unknown
//! hosts with no controller to learn them), hosts in two do not.
//!
//! One VM boot runs both modes, each a section of one script.

use odpx_tests::{number, vm_section, which, VmRun};
use std::path::Path;
use std::sync::OnceLock;

const SCRIPT: &str = r#"
set -u
PATH=/payload:$PATH
IP=/payload/ip
OF=unix:/tmp/of.mgmt
sec() { echo "=== $1"; }
ofctl() { ovs-ofctl -O OpenFlow13 "$@"; }
mkdir -p /run/odpx
. /payload/vm-hosts.sh
# Five hosts, 10.0.0.N on eN, their peers aN the switch's ports 1-5:
# Faucet's tutorial has ports 1-3 in VLAN 100 and 4-5 in VLAN 200.
hosts 5
# pings FROM TO: echoes answered of 5
pings() { $IP netns exec h$1 ping -c 5 -i 0.2 -W 1 10.0.0.$2 | sed -n 's/.*transmitted, \([0-9]*\) .*received.*/\1/p'; }

for mode in kernel hybrid; do
  sec $mode
  cat > /tmp/of.toml <<EOF
[switch]
socket = "/tmp/odpx.sock"
datapath = "$mode"
[[port]]
name = "a1"
[[port]]
name = "a2"
[[port]]
name = "a3"
[[port]]
name = "a4"
[[port]]
name = "a5"
[openflow]
listen = "punix:/tmp/of.mgmt"
datapath_id = "0x1"
fail_mode = "secure"
EOF
  [ $mode = hybrid ] && printf '[pmd]\ncores = [1]\n[offload]\nmin_pps = 5\nmin_duration_ms = 300\n' >> /tmp/of.toml
  : > /tmp/run.log
  odpx_start /tmp/of.toml
  ofctl add-flows $OF /payload/faucet-switching.flows && echo "pushed back"
  echo "rules: $(ofctl dump-flows $OF | grep -c actions=)"
  echo "same VLAN 100, 1 -> 2: $(pings 1 2)"
  echo "same VLAN 100, 3 -> 1: $(pings 3 1)"
  echo "same VLAN 200, 4 -> 5: $(pings 4 5)"
  echo "VLAN 100 to 200, 1 -> 4: $(pings 1 4)"
  echo "VLAN 200 to 100, 5 -> 2: $(pings 5 2)"
  echo "-- dpctl"
  ovs-dpctl dump-flows odpx0
  echo "-- megaflows"
  ctl dump-megaflows
  kill -TERM $ODPX; wait $ODPX; echo "stopped rc=$?"
  echo "-- log"
  cat /tmp/run.log
done
"#;

fn flows_file() -> std::path::PathBuf {
    odpx_tests::repo().join("tools/tests/data/faucet-switching.flows")
}

fn boot() -> VmRun {
    let odpx = Path::new(env!("CARGO_BIN_EXE_odpx"));
    let ip = which("ip").expect("iproute2's ip");
    let ofctl = which("ovs-ofctl").expect("ovs-ofctl");
    let hosts = odpx_tests::repo().join("tools/vm-hosts.sh");
    let flows = flows_file();
    VmRun::boot_smp(SCRIPT, &[odpx, &ip, &ofctl, &hosts, &flows], 2)
}

fn section(name: &str) -> String {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    vm_section(&RUN, boot, name)
}

fn faucets_pipeline_switches_within_vlans_and_not_across(mode: &str) {
    let s = section(mode);
    assert!(s.contains("pushed back"), "{s}");
    let want = std::fs::read_to_string(flows_file())
        .unwrap()
        .lines()
        .filter(|l| l.contains("actions="))
        .count();
    assert_eq!(number(&s, "rules:") as usize, want, "{s}");
    for within in ["1 -> 2:", "3 -> 1:", "4 -> 5:"] {
        assert!(number(&s, within) >= 4, "{within}\n{s}");
    }
    for across in ["1 -> 4:", "5 -> 2:"] {
        assert_eq!(number(&s, across), 0, "{across}\n{s}");
    }
    // The kernel datapath carried them (in kernel mode, every packet).
    let dpctl = s.split("-- dpctl").nth(1).unwrap_or_default();
    let dpctl = dpctl.split("-- megaflows").next().unwrap_or_default();
    if mode == "kernel" {
        assert!(
            dpctl
                .lines()
                .any(|l| l.contains("in_port(1)") && l.contains("actions:")),
            "{s}"
        );
    }
    assert!(s.contains("stopped rc=0"), "{s}");
}

fn kernel_mode_runs_faucets_pipeline() {
    faucets_pipeline_switches_within_vlans_and_not_across("kernel");
}
fn hybrid_mode_runs_faucets_pipeline() {
    faucets_pipeline_switches_within_vlans_and_not_across("hybrid");
}

odpx_tests::cases! {
    [odpx_tests::harness::VM, odpx_tests::harness::OVS_OFCTL] => kernel_mode_runs_faucets_pipeline, hybrid_mode_runs_faucets_pipeline;
}
