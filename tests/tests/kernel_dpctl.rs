//! odpx's ODP text against the real kernel datapath, in a VM
//! (`tools/vm.sh`: Debian's 6.1 cloud kernel with openvswitch.ko, and
//! Debian's `ovs-dpctl` 3.1 as the independent client).
//!
//! 1. Flows odpx prints (hand-written and translator megaflows) are
//!    installed with `ovs-dpctl add-flow`; `ovs-dpctl dump-flows` must show
//!    each with the same key, mask and actions, except for normalisations
//!    the kernel itself makes, which are spelled out below.
//! 2. Every line `ovs-dpctl dump-flows` prints must pass through odpx's
//!    parser and printer unchanged.

use odpx_classifier::odp::parse_flow_line;
use odpx_tests::harness::VM;
use odpx_tests::{dumped, kernel_flows, run_vm};

fn kernel_accepts_and_dumps_what_odpx_prints() {
    let flows = kernel_flows();
    // Every line is canonical odpx output.
    for (line, _) in &flows {
        assert_eq!(parse_flow_line(line).unwrap().to_string(), *line);
    }
    let mut script = String::from("set -u\novs-dpctl add-dp dp0 || exit 1\n");
    for (line, _) in &flows {
        let (key, actions) = line.split_once(" actions:").unwrap();
        script += &format!("ovs-dpctl add-flow dp0 '{key}' '{actions}' 2>/dev/null || echo 'ADD FAILED: {key}'\n");
    }
    script += "echo DUMP-BEGIN\novs-dpctl dump-flows dp0\n";
    let (ok, stdout, stderr) = run_vm(&script, &[]);
    assert!(ok, "VM run failed: {stderr}\n{stdout}");
    assert!(
        !stdout.contains("ADD FAILED"),
        "the kernel refused flows odpx printed:\n{stdout}"
    );
    let dump: Vec<&str> = stdout
        .split("DUMP-BEGIN\n")
        .nth(1)
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains("actions:"))
        .collect();
    assert_eq!(dump.len(), flows.len(), "dump:\n{}", dump.join("\n"));
    for (line, kernel_form) in &flows {
        let want = dumped(kernel_form.as_deref().unwrap_or(line));
        assert!(
            dump.contains(&want.as_str()),
            "not dumped as\n{want}\ndump:\n{}",
            dump.join("\n")
        );
    }
    for l in &dump {
        let back = parse_flow_line(l).unwrap_or_else(|e| panic!("odpx cannot parse a kernel dump line: {e}\n{l}"));
        assert_eq!(
            back.to_string(),
            *l,
            "odpx does not reprint the kernel dump line unchanged"
        );
    }
}

odpx_tests::cases! {
    [VM] => kernel_accepts_and_dumps_what_odpx_prints;
}
