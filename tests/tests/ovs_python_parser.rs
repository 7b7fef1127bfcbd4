//! Cross-check of odpx's ODP text against an independent parser: the
//! Open vSwitch Python library's `ovs.flow.odp.ODPFlow` (PyPI `ovs[flow]`).
//! Every line odpx prints must parse there, and the values that parser reads
//! back (addresses with masks, ports, Ethertype, in_port, actions) must be
//! the ones odpx meant.

use odpx_classifier::odp::{self, parse_flow_line};
use std::io::Write;
use std::process::{Command, Stdio};

const SCRIPT: &str = r#"
import json, sys
from ovs.flow.odp import ODPFlow

def flat(prefix, v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            flat(prefix + "." + k if prefix else k, x, out)
    else:
        out[prefix] = str(v)

for line in sys.stdin:
    line = line.rstrip("\n")
    try:
        f = ODPFlow(line)
        m, a = {}, []
        for kv in f.match_kv:
            flat(kv.key, kv.value, m)
        for kv in f.actions_kv:
            d = {}
            flat(kv.key, kv.value, d)
            a.append(d)
        print(json.dumps({"ok": True, "match": m, "actions": a}))
    except Exception as e:
        print(json.dumps({"ok": False, "error": repr(e)}))
"#;

fn parse_with_ovs(lines: &[String]) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let input = lines.join("\n") + "\n";
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Lines printed by odpx: canonical forms of hand-written flows, and the
/// megaflows + actions the translator produces for a rule set.
fn odpx_lines() -> Vec<String> {
    let mut lines: Vec<String> = [
        "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,frag=no) actions:set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2",
        "tunnel(tun_id=0x2a,src=192.0.2.1,dst=192.0.2.2,ttl=64,tp_dst=4789,flags(-df+csum+key)),in_port(4),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x8100),vlan(vid=10,pcp=3),encap(eth_type(0x0800),ipv4(src=10.0.0.1,proto=6,frag=no),tcp(dst=80/0xfff0)) actions:pop_vlan,tnl_pop(4)",
        "in_port(1),eth(),eth_type(0x86dd),ipv6(src=2001:db8::/ffff:ffff::,proto=58,frag=no),icmpv6(type=135,code=0),nd(target=2001:db8::1) actions:userspace(pid=42),push_vlan(vid=10,pcp=0),3",
        "recirc_id(0),in_port(2),eth(),eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.2,op=1) actions:clone(set(eth(dst=00:00:00:00:00:02)),1),2",
        "in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=4789) actions:tnl_push(tnl_port(4),header(size=50,type=4,eth(dst=00:00:00:00:00:02,src=00:00:00:00:00:01,dl_type=0x0800),ipv4(src=192.0.2.1,dst=192.0.2.9,proto=17,tos=0,ttl=64,frag=0x4000),udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,vni=0x2a)),out_port(1))",
        "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp_flags(+syn-ack), packets:3, bytes:180, used:0.100s, actions:drop",
    ]
    .iter()
    .map(|l| parse_flow_line(l).unwrap().to_string())
    .collect();
    let rules = "table=0,priority=100,tcp,nw_dst=10.0.0.0/8,tp_dst=80,actions=mod_dl_dst:00:00:00:00:00:09,mod_nw_src:192.0.2.1,resubmit(,1)\n\
                 table=0,priority=50,udp,actions=set_tunnel:0x2a,set_field:192.0.2.9->tun_dst,output:3\n\
                 table=0,priority=10,ip,nw_src=172.16.0.0/12,actions=mod_vlan_vid:7,output:2\n\
                 table=0,priority=1,actions=NORMAL\n\
                 table=1,priority=5,actions=output:2\n";
    let packets: Vec<String> = [(6u8, [10, 1, 2, 3], 80u16), (17, [10, 1, 2, 3], 53), (6, [192, 168, 0, 1], 22), (1, [172, 17, 0, 1], 0)]
        .iter()
        .map(|&(proto, dst, sport)| {
            format!(
                "in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=172.16.5.5,dst={},proto={proto},tos=0,ttl=64,frag=no),{}",
                std::net::Ipv4Addr::from(dst),
                match proto {
                    6 => format!("tcp(src=1000,dst={sport})"),
                    17 => format!("udp(src=1000,dst={sport})"),
                    _ => "icmp(type=8,code=0)".into(),
                }
            )
        })
        .collect();
    for (line, k) in odpx_tests::translated_flows(rules, &[1, 2, 3], &packets) {
        lines.push(line);
        lines.push(format!("{} actions:drop", odp::format_exact_key(&k)));
    }
    lines
}

fn ovs_python_parser_reads_what_odpx_prints() {
    let lines = odpx_lines();
    let results = parse_with_ovs(&lines);
    assert_eq!(results.len(), lines.len());
    for (line, res) in lines.iter().zip(&results) {
        assert!(
            res.contains("\"ok\": true"),
            "OVS's parser rejected odpx output:\n{line}\n{res}"
        );
    }
    // Spot values as the other parser reads them.
    let expect = [
        (0, "\"ipv4.src\": \"10.0.0.0/24\""),
        (0, "\"set.tunnel.tun_id\": \"42\""),
        (0, "\"set.tunnel.dst\": \"192.0.2.9/32\""),
        (0, "\"set.tunnel.flags\": \"df|key\""),
        (0, "\"output.port\": \"2\""),
        (1, "\"encap.tcp.dst\": \"0x50/0xfff0\""),
        (1, "\"tunnel.flags\": \"-df+csum+key\""),
        (1, "\"vlan.vid\": \"10\""),
        (1, "\"tnl_pop\": \"4\""),
        (2, "\"ipv6.src\": \"2001:db8::/32\""),
        (2, "\"nd.target\": \"2001:db8::1/128\""),
        (4, "\"tnl_push.header.vxlan.vni\": \"42\""),
        (4, "\"tnl_push.header.ipv4.frag\": \"16384\""),
        (5, "\"tcp_flags\": \"+syn-ack\""),
    ];
    for (i, needle) in expect {
        assert!(
            results[i].contains(needle),
            "line {i}: expected {needle} in {}\nfor {}",
            results[i],
            lines[i]
        );
    }
}

odpx_tests::cases! {
    [odpx_tests::harness::OVS_PYTHON] => ovs_python_parser_reads_what_odpx_prints;
}
