//! OpenFlow 1.3 conformance in CI: a subset of os-ken's switch test tool
//! (`os_ken/tests/switch/tester.py`, from the Faucet venv
//! `tools/test.sh` makes), run by `tools/oftest.sh` with this build of
//! odpx as the target switch and as the tester switch. The subset takes
//! a file from each kind of case that odpx passes in full: a match, the
//! output, VLAN push and pop, Ethernet, VLAN and tunnel-id set_field, MPLS
//! push, pop and TTL; a weighted select group (three 30-second throughput
//! cases: IPv4, IPv6 and ARP flows spread 1:2 over two buckets); a
//! meter's dscp_remark band (three more: 200 packets a second into a 100
//! pps band, what exceeds it remarked from AF21 to AF22); so
//! a regression in the flow-stats replies, the barrier or the datapath's
//! actions shows here. The full run, with pass counts per category next
//! to Open vSwitch 3.1's, is `tools/oftest.sh` (BENCHMARKS.md).

use std::process::Command;

const SUBSET: &[&str] = &[
    "of13/match/00_IN_PORT.json",
    "of13/action/00_OUTPUT.json",
    "of13/action/17_PUSH_VLAN.json",
    "of13/action/18_POP_VLAN.json",
    "of13/action/25_SET_FIELD/03_ETH_DST.json",
    "of13/action/25_SET_FIELD/06_VLAN_VID.json",
    "of13/action/25_SET_FIELD/38_TUNNEL_ID.json",
    "of13/action/15_SET_MPLS_TTL.json",
    "of13/action/16_DEC_MPLS_TTL.json",
    "of13/action/19_PUSH_MPLS.json",
    "of13/action/20_POP_MPLS.json",
    "of13/group/01_SELECT_Weight_IP.json",
    "of13/meter/02_DSCP_REMARK_01_PKTPS_00_100.json",
];

fn the_switch_testers_subset_passes() {
    let out_dir = std::env::temp_dir().join(format!("odpx-oftest-{}", std::process::id()));
    let out = Command::new("bash")
        .arg(odpx_tests::repo().join("tools/oftest.sh"))
        .arg("odpx")
        .args(SUBSET)
        .env("ODPX_BIN", env!("CARGO_BIN_EXE_odpx"))
        .env("OFTEST_OUT", &out_dir)
        .output()
        .expect("tools/oftest.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let logs = std::fs::read_dir(&out_dir)
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    // The closing table's row: "files   N / M".
    let row = text.lines().find(|l| l.starts_with("files ")).unwrap_or_else(|| {
        panic!(
            "no result row:\n{text}\n{}\n{logs}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let nums: Vec<u32> = row
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 2, "{row}");
    assert_eq!(nums[1], 45, "the subset's cases all ran: {row}\n{text}");
    assert_eq!(nums[0], nums[1], "every case passes:\n{text}\n{logs}");
    let _ = std::fs::remove_dir_all(&out_dir);
}

odpx_tests::cases! {
    [odpx_tests::harness::NETNS, odpx_tests::harness::FAUCET] => the_switch_testers_subset_passes;
}
