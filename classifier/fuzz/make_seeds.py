#!/usr/bin/env python3
"""Writes the named seed inputs of the fuzz corpus (run from this folder).

Inputs named regression-* are crash inputs found by fuzzing, kept as they
were found; libFuzzer's own discoveries (40-hex-digit names) stay local.
"""
import os

def write(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(f"corpus/{target}/{name}", mode) as f:
        f.write(data)

mac = bytes([0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1])
ip = bytes([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
tcp = bytes([0x04, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0])
frames = {
    "ipv4_tcp": mac + b"\x08\x00" + ip + tcp,
    "ipv4_tcp_cut_l4": mac + b"\x08\x00" + ip,
    "vlan_ipv4_tcp": mac + b"\x81\x00\x00\x0a\x08\x00" + ip + tcp,
    "qinq": mac + b"\x88\xa8\x00\x64\x81\x00\x00\x0a\x08\x00" + ip + tcp,
    "vlan_cut": mac + b"\x81\x00",
    "arp": b"\xff" * 6 + mac[6:] + b"\x08\x06" + bytes([0, 1, 8, 0, 6, 4, 0, 1]) + mac[6:]
    + bytes([10, 0, 0, 1]) + bytes(6) + bytes([10, 0, 0, 2]),
    "ipv6_frag_udp": mac + b"\x86\xdd" + bytes([0x60, 0, 0, 0, 0, 24, 0, 64]) + bytes(32)
    + bytes([44, 0, 0, 0, 0, 0, 0, 0]) + bytes([17, 0, 0, 1, 0, 0, 0, 7]) + bytes([0, 7, 0, 9, 0, 8, 0, 0]),
    "ipv6_ns": mac + b"\x86\xdd" + bytes([0x60, 0, 0, 0, 0, 32, 58, 255]) + bytes(32)
    + bytes([135, 0, 0, 0, 0, 0, 0, 0]) + bytes(15) + b"\x09" + bytes([1, 1, 0, 0, 0, 0, 0, 0xAA]),
    "mpls": mac + b"\x88\x47" + bytes([0, 0x64, 0x01, 64]),
    "llc_snap": mac + b"\x00\x26" + bytes([0xAA, 0xAA, 3, 0, 0, 0, 8, 0]) + ip,
    "runt": bytes([1, 2, 3, 4, 5, 6, 7, 8]),
}
for name, data in frames.items():
    write("extract_frame", name, data)

flows = [
    "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,frag=no) actions:set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2",
    "tunnel(tun_id=0x2a,src=192.0.2.1,dst=192.0.2.2,ttl=64,tp_dst=4789,flags(-df+csum+key)),in_port(4),eth(),eth_type(0x8100),vlan(vid=10,pcp=3),encap(eth_type(0x0800),ipv4(src=10.0.0.1,proto=6,frag=no),tcp(dst=80/0xfff0))",
    "recirc_id(0x1),in_port(1),ct_state(+new+trk),ct_zone(0x5),eth(),eth_type(0x86dd),ipv6(src=2001:db8::/ffff:ffff::,proto=58,frag=no),icmpv6(type=135,code=0),nd(target=2001:db8::1), packets:3, bytes:180, used:0.100s, actions:userspace(pid=1,userdata(0102)),push_vlan(vid=10,pcp=0),3",
    "in_port(1),eth(),eth_type(0x8847),mpls(label=100,tc=0,ttl=64,bos=1),key40(01 02) actions:clone(pop_mpls(eth_type=0x800),1),sample(sample=50.0%,actions(2)),recirc(0x2),hash(l4(0))",
    "actions:tnl_push(tnl_port(4),header(size=50,type=4,eth(dst=00:00:00:00:00:02,src=00:00:00:00:00:01,dl_type=0x0800),ipv4(src=192.0.2.1,dst=192.0.2.9,proto=17,tos=0,ttl=64,frag=0x4000),udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,vni=0x2a)),out_port(1))",
    "eth(),eth_type(0x0806),arp(sip=10.0.0.0/255.0.0.0,op=1),tcp_flags(syn|ack)",
]
for i, line in enumerate(flows):
    write("odp_text", f"seed{i}", line)

rules = [
    "table=0,priority=100,tcp,nw_src=10.0.0.0/8,tp_dst=80,actions=mod_dl_dst:00:00:00:00:00:09,resubmit(,1)",
    "priority=5,in_port=3,dl_vlan=10,actions=strip_vlan,NORMAL\npriority=1,dl_vlan=0xffff,actions=mod_vlan_vid:20,output:4",
    "icmp6,icmp_type=135,icmp_code=0,nd_target=2001:db8::1,actions=drop",
    "udp,tp_dst=0x400/0xfc00,actions=set_tunnel:0x2a,set_field:192.0.2.9->tun_dst,output:5,goto_table:2",
    "arp,arp_tpa=10.0.0.1,actions=FLOOD",
]
for i, line in enumerate(rules):
    write("rule_text", f"seed{i}", line)
