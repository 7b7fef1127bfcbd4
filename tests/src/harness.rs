//! The test harness of the test files whose cases need something this
//! machine may lack (root, network namespaces, the test VM, a peer).
//!
//! # Why a harness of its own
//! libtest has no "skipped": a test that returns early when its
//! prerequisite is missing is counted as passed. Here each case names what
//! it needs ([`Need`]); before anything runs, a case whose needs are
//! missing is reported as *ignored* by the harness (libtest's word; `cargo
//! test` prints it as such and counts it apart), with a `SKIPPED` line
//! that says why, and never runs. Under `CI=true` nothing is skipped: such
//! a case runs and fails at once, naming what is missing.
//!
//! Everything else is libtest's behaviour (through libtest-mimic): name
//! filters, `--exact`, `--skip`, `--list`, `--test-threads`, a panicking
//! case fails with its message.
//!
//! The `SKIPPED` lines also go to the file `ODPX_SKIP_LOG` names, if any
//! (`tools/test.sh` prints them and counts them in its closing line).

use libtest_mimic::{Arguments, Trial};
use std::process::{Command, ExitCode};

/// Something a test needs: what it is (for people), and whether this
/// machine has it.
#[derive(Clone, Copy)]
pub struct Need {
    pub what: &'static str,
    pub here: fn() -> bool,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn has(cmd: &str) -> bool {
    crate::which(cmd).is_some()
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Root, for `bpf(2)` and XDP programs.
pub const ROOT: Need = Need {
    what: "root, for bpf(2)",
    here: is_root,
};

/// Root and `ip netns`: namespaces, veths, AF_XDP.
pub const NETNS: Need = Need {
    what: "root and network namespaces (ip netns)",
    here: || is_root() && has("ip"),
};

/// The test VM with the real kernel datapath (`tools/vm.sh provision`).
pub const VM: Need = Need {
    what: crate::VM_PREREQUISITE,
    here: crate::vm_ready,
};

/// The `ping` command (iputils-ping).
pub const PING: Need = Need {
    what: "the ping command (iputils-ping)",
    here: || has("ping"),
};

/// PyPI's `prometheus_client` parser (`tools/test.sh` installs it).
pub const PROMETHEUS_CLIENT: Need = Need {
    what: "python3 with prometheus_client (tools/test.sh installs it)",
    here: || python_has("prometheus_client.parser"),
};

/// PyPI's `ovs` flow parser (`tools/test.sh` installs it).
pub const OVS_PYTHON: Need = Need {
    what: "python3 with the ovs flow parser (pip: ovs[flow]; tools/test.sh installs it)",
    here: || python_has("ovs.flow.odp"),
};

/// Open vSwitch's `ovs-ofctl` (Debian's openvswitch-common;
/// `tools/test.sh` installs it).
pub const OVS_OFCTL: Need = Need {
    what: "ovs-ofctl (Debian openvswitch-common; tools/test.sh installs it)",
    here: || has("ovs-ofctl"),
};

/// Open vSwitch's `ovs-pki` and `openssl` (Debian's openvswitch-common;
/// `tools/test.sh` installs it).
pub const OVS_PKI: Need = Need {
    what: "ovs-pki and openssl (Debian openvswitch-common; tools/test.sh installs it)",
    here: || has("ovs-pki") && has("openssl"),
};

/// Faucet 1.10.12 in `target/faucet-venv` (`tools/test.sh` installs it).
pub const FAUCET: Need = Need {
    what: "Faucet in target/faucet-venv (tools/test.sh installs it)",
    here: || crate::repo().join("target/faucet-venv/bin/faucet").exists(),
};

/// One case of a test file.
pub struct Case {
    pub name: &'static str,
    pub needs: Vec<Need>,
    pub body: fn(),
}

/// Cases that need the same things.
pub fn group(needs: &[Need], cases: &[(&'static str, fn())]) -> Vec<Case> {
    cases
        .iter()
        .map(|&(name, body)| Case {
            name,
            needs: needs.to_vec(),
            body,
        })
        .collect()
}

/// The cases of a test file, as `fn main` of a `harness = false` test:
/// `odpx_tests::cases! { [NETNS] => a, b; [] => c; }`.
#[macro_export]
macro_rules! cases {
    ($( [$($need:expr),*] => $($case:ident),+ $(,)? ;)+) => {
        fn main() -> std::process::ExitCode {
            let mut all = Vec::new();
            $( all.extend($crate::harness::group(&[$($need),*], &[$((stringify!($case), $case as fn())),+])); )+
            $crate::harness::run(all)
        }
    };
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether the arguments select `name` (libtest's rules).
fn selected(args: &Arguments, name: &str) -> bool {
    let by_filter = match &args.filter {
        None => true,
        Some(f) if args.exact => name == f,
        Some(f) => name.contains(f.as_str()),
    };
    let skipped = args.skip.iter().any(|s| {
        if args.exact {
            name == s
        } else {
            name.contains(s.as_str())
        }
    });
    by_filter && !skipped
}

/// Says that `name` is skipped, and why.
fn say_skipped(name: &str, missing: &[&str]) {
    let msg = format!(
        "SKIPPED {name} (prerequisite missing: {}); this test runs in CI",
        missing.join(", ")
    );
    eprintln!("{msg}");
    if let Ok(path) = std::env::var("ODPX_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{msg}");
        }
    }
}

/// Runs the cases (see the module documentation).
pub fn run(cases: Vec<Case>) -> ExitCode {
    let args = Arguments::from_args();
    let ci = in_ci();
    let trials = cases
        .into_iter()
        .map(|c| {
            let missing: Vec<&'static str> = c.needs.iter().filter(|n| !(n.here)()).map(|n| n.what).collect();
            let skip = !missing.is_empty() && !ci;
            if skip && !args.list && selected(&args, c.name) {
                say_skipped(c.name, &missing);
            }
            let body = c.body;
            Trial::test(c.name, move || {
                if !missing.is_empty() {
                    return Err(format!("prerequisite missing: {}", missing.join(", ")).into());
                }
                body();
                Ok(())
            })
            .with_ignored_flag(skip)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
