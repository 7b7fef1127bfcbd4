//! Helpers for odpx's cross-crate integration tests: the harness of the
//! test files whose cases need root, namespaces, the VM or a peer
//! ([`harness`]: skipped, never passed, when those are missing; failed in
//! CI), the real-kernel test VM (`tools/vm.sh`), and the flow corpus both
//! kernel tests install.
//!
//! It imports `odpx-classifier` only (the other crates use it as a
//! dev-dependency for their tests; a cycle otherwise), and holds no I/O of
//! the switch's: only the tests' own.

pub mod harness;
pub mod pki;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// True when `tools/vm.sh provision` has run (qemu, ovs-dpctl, the kernel).
pub fn vm_ready() -> bool {
    let cache = std::env::var("ODPX_VM_CACHE").map(PathBuf::from).unwrap_or_else(|_| {
        let base = std::env::var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache"));
        base.join("odpx-vm")
    });
    let has = |cmd: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {cmd}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    cache.join("vmlinuz").exists() && has("qemu-system-x86_64") && has("ovs-dpctl") && has("cpio")
}

pub const VM_PREREQUISITE: &str = "the test VM (tools/vm.sh provision: qemu, ovs-dpctl, a 6.1 cloud kernel)";

/// Boots the test VM with `script` as its payload and `files` in
/// /payload; returns (success, stdout, stderr).
pub fn run_vm(script: &str, files: &[&Path]) -> (bool, String, String) {
    run_vm_smp(script, files, 1)
}

/// [`run_vm`] with `cpus` virtual CPUs (a PMD thread busy-polls one).
pub fn run_vm_smp(script: &str, files: &[&Path], cpus: u32) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!(
        "odpx-vm-{}-{}",
        std::process::id(),
        std::thread::current().name().unwrap_or("t").replace("::", "-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let payload = dir.join("payload.sh");
    std::fs::write(&payload, script).unwrap();
    let out = Command::new(repo().join("tools/vm.sh"))
        .env("ODPX_VM_SMP", cpus.to_string())
        .arg("run")
        .arg(&payload)
        .args(files)
        .output()
        .expect("tools/vm.sh");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A VM run whose script printed `=== NAME` lines: one boot runs many
/// scenarios, and each test asserts on its own section.
pub struct VmRun {
    /// Each section's output (what comes before the first is "setup").
    pub sections: std::collections::BTreeMap<String, String>,
    pub all: String,
}

impl VmRun {
    /// Boots the VM with `script` and `files`; panics if the run fails.
    pub fn boot(script: &str, files: &[&Path]) -> VmRun {
        VmRun::boot_smp(script, files, 1)
    }

    /// [`VmRun::boot`] with `cpus` virtual CPUs.
    pub fn boot_smp(script: &str, files: &[&Path], cpus: u32) -> VmRun {
        let (ok, out, err) = run_vm_smp(script, files, cpus);
        assert!(ok, "VM run failed:\n{err}\n{out}");
        VmRun {
            sections: sections(&out),
            all: out,
        }
    }
}

/// Splits a VM run's output into its sections (see [`VmRun`]).
pub fn sections(out: &str) -> std::collections::BTreeMap<String, String> {
    let mut sections = std::collections::BTreeMap::new();
    let mut cur = String::from("setup");
    for l in out.lines() {
        if let Some(name) = l.strip_prefix("=== ") {
            cur = name.to_string();
            continue;
        }
        let e: &mut String = sections.entry(cur.clone()).or_default();
        e.push_str(l);
        e.push('\n');
    }
    sections
}

/// The output of section `name` of a test file's one VM run, booted by
/// `boot` on first use (the case needs [`harness::VM`]).
pub fn vm_section(run: &'static std::sync::OnceLock<VmRun>, boot: impl FnOnce() -> VmRun, name: &str) -> String {
    let run = run.get_or_init(boot);
    run.sections
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no section {name} in the VM output:\n{}", run.all))
}

/// The round trips of `odpx demo`'s summary: for each line of `kind`
/// (`ping`, `UDP echo`, `VXLAN ping`, ...), the line with (answered, sent).
pub fn demo_round_trips<'a>(summary: &'a str, kind: &str) -> Vec<(&'a str, u64, u64)> {
    summary
        .lines()
        .filter(|l| l.trim_start().starts_with(&format!("{kind} ")))
        .map(|l| {
            let counts = l
                .split(": ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_else(|| panic!("no counts in: {l}"));
            let (got, sent) = counts.split_once('/').unwrap_or_else(|| panic!("no counts in: {l}"));
            (l, got.parse().unwrap(), sent.parse().unwrap())
        })
        .collect()
}

/// Where a command is on this machine's PATH.
pub fn which(cmd: &str) -> Option<PathBuf> {
    let o = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (!p.is_empty()).then(|| PathBuf::from(p))
}

/// Flows (canonical odpx text, `KEY actions:ACTIONS`) that the kernel
/// tests install, with the line the kernel dumps back where the kernel
/// normalises something. Hand-written ones cover masks, tunnels, VLAN and
/// QinQ, ARP, ND, MPLS-free L4s, conntrack state and nested actions; the
/// rest are megaflows the translator generates.
pub fn kernel_flows() -> Vec<(String, Option<String>)> {
    let mut v: Vec<(String, Option<String>)> = vec![
        ("in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,frag=no) actions:set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2".into(), None),
        ("in_port(2),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=80,dst=8080),tcp_flags(syn) actions:3".into(), None),
        // The kernel keeps ARP opcodes in 8 bits: an exact op comes back /0xff.
        (
            "in_port(3),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0x8100),vlan(vid=10,pcp=3),encap(eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.2,op=1)) actions:pop_vlan,1".into(),
            Some("in_port(3),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0x8100),vlan(vid=10,pcp=3),encap(eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.2,op=1/0xff)) actions:pop_vlan,1".into()),
        ),
        // Kernel 6.1 adds its IPv6 extension-header attribute (32), wildcarded.
        (
            "in_port(4),eth(),eth_type(0x86dd),ipv6(src=2001:db8::/ffff:ffff::,proto=58,frag=no),icmpv6(type=135,code=0),nd(target=2001:db8::1) actions:push_vlan(vid=10,pcp=0),2".into(),
            Some("in_port(4),eth(),eth_type(0x86dd),ipv6(src=2001:db8::/ffff:ffff::,proto=58,frag=no),key32(00 00/00 00),icmpv6(type=135,code=0),nd(target=2001:db8::1) actions:push_vlan(vid=10,pcp=0),2".into()),
        ),
        ("tunnel(tun_id=0x2a,src=192.0.2.1,dst=192.0.2.2,ttl=64,flags(-df+csum+key)),in_port(5),eth(),eth_type(0x0800),ipv4(frag=no) actions:1".into(), None),
        ("in_port(6),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=4789) actions:set(ipv4(src=10.9.9.9,ttl=63)),set(udp(dst=80)),2".into(), None),
        ("in_port(9),ct_state(+new+trk),eth(),eth_type(0x0800),ipv4(frag=no) actions:1".into(), None),
        ("in_port(10),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(src=53) actions:clone(set(eth(dst=00:00:00:00:00:02)),1),sample(sample=50.0%,actions(2))".into(), None),
        ("in_port(11),eth(),eth_type(0x88a8),vlan(vid=100),encap(eth_type(0x8100),vlan(vid=10),encap(eth_type(0x0800),ipv4(frag=no))) actions:pop_vlan,pop_vlan,1".into(), None),
        ("in_port(13),eth(),eth_type(0x0800),ipv4(proto=132,frag=no),sctp(src=1,dst=2) actions:trunc(100),1".into(), None),
        ("skb_priority(0x3),in_port(14),skb_mark(0x10/0xff),eth(),eth_type(0x0800),ipv4(dst=172.16.0.0/255.240.0.0,tos=0x10/0xfc,frag=first) actions:set(skb_mark(0x7)),1".into(), None),
        // No Ethertype at all: the kernel's 802.2 form, masked to "any".
        ("in_port(15),eth(dst=ff:ff:ff:ff:ff:ff) actions:2".into(),
         Some("in_port(15),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0/0x0000) actions:2".into())),
        ("in_port(16),eth(),eth_type(0x0800),ipv4(proto=1,frag=no),icmp(type=8) actions:1".into(), None),
    ];
    // Megaflows the translator generates, with their datapath actions.
    let rules = "table=0,priority=50,udp,tp_dst=4789,actions=mod_dl_dst:00:00:00:00:00:09,output:3\n\
                 table=0,priority=40,ip,nw_dst=10.0.0.0/8,actions=set_tunnel:0x2a,set_field:192.0.2.9->tun_dst,output:2\n\
                 table=0,priority=10,ip,nw_src=172.16.0.0/12,actions=mod_vlan_vid:7,output:4\n\
                 table=0,priority=1,actions=drop\n";
    let packets: Vec<String> = [(20u32, [10, 1, 2, 3], 4789u16), (21, [10, 1, 2, 3], 53), (22, [192, 168, 0, 1], 53)]
        .iter()
        .map(|&(port, dst, dport)| {
            format!(
                "in_port({port}),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=172.16.5.5,dst={},proto=17,tos=0,ttl=64,frag=no),udp(src=1000,dst={dport})",
                std::net::Ipv4Addr::from(dst)
            )
        })
        .collect();
    v.extend(
        translated_flows(rules, &[1, 2, 3, 4], &packets)
            .into_iter()
            .map(|(line, _)| (line, None)),
    );
    v
}

/// A `KEY actions:ACTIONS` line as `ovs-dpctl dump-flows` prints it for a
/// flow that has seen no packets.
pub fn dumped(line: &str) -> String {
    let (key, actions) = line.split_once(" actions:").expect("KEY actions:ACTIONS");
    format!("{key}, packets:0, bytes:0, used:never, actions:{actions}")
}

/// Translates each packet (ODP key text) through the rules (ovs-ofctl text)
/// and returns, per packet, its megaflow and datapath actions as one
/// `MATCH actions:ACTIONS` line in odpx's canonical ODP text, plus the
/// packet's parsed key.
pub fn translated_flows(rules: &str, ports: &[u32], packets: &[String]) -> Vec<(String, odpx_classifier::FlowKey)> {
    use odpx_classifier::odp;
    let mut set = odpx_classifier::rules::RuleSet::new();
    for r in odpx_classifier::rules::ofctl::parse_rules(rules).expect("test rules parse") {
        set.add(r);
    }
    let mut env = odpx_classifier::xlate::FloodEnv { ports: ports.to_vec() };
    packets
        .iter()
        .map(|p| {
            let k = odp::parse_key(p).expect("test packet parses").matched.key;
            let t = odpx_classifier::xlate::translate(&set, &k, &mut env);
            (
                format!(
                    "{} actions:{}",
                    odp::format_match(&t.megaflow),
                    odp::actions::format_actions(&t.actions)
                ),
                k,
            )
        })
        .collect()
}

/// The number after `prefix` on the first line of `s` that has it (for
/// asserting on a VM section's output); panics with the text if none.
pub fn number(s: &str, prefix: &str) -> i64 {
    let l = s
        .lines()
        .find_map(|l| l.split_once(prefix).map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no '{prefix}' in:\n{s}"));
    let digits: String = l
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after '{prefix}' in:\n{s}"))
}
