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
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn vm_ready() -> bool {
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

/// (line to install, the line the kernel dumps back when it differs).
fn flows() -> Vec<(String, Option<String>)> {
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
        odpx_tests::translated_flows(rules, &[1, 2, 3, 4], &packets)
            .into_iter()
            .map(|(line, _)| (line, None)),
    );
    v
}

fn dumped(line: &str) -> String {
    let (key, actions) = line.split_once(" actions:").unwrap();
    format!("{key}, packets:0, bytes:0, used:never, actions:{actions}")
}

#[test]
fn kernel_accepts_and_dumps_what_odpx_prints() {
    if !odpx_tests::prerequisite(
        vm_ready(),
        "the test VM (tools/vm.sh provision: qemu, ovs-dpctl, a 6.1 cloud kernel)",
    ) {
        return;
    }
    let flows = flows();
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
    let dir = std::env::temp_dir().join(format!("odpx-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let payload = dir.join("payload.sh");
    std::fs::write(&payload, script).unwrap();
    let out = Command::new(repo().join("tools/vm.sh"))
        .arg("run")
        .arg(&payload)
        .output()
        .expect("tools/vm.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "VM run failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
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
