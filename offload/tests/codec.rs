//! The netlink codec against the text model: every canonical flow must
//! encode to attributes that decode back to the same model (and print to
//! the same text), and the attributes the kernel insists on must be there.

use odpx_classifier::odp::{self, actions::parse_actions, parse_flow_line, parse_key};
use odpx_offload::actions::{decode_actions, encode_actions};
use odpx_offload::keys::{decode_match, decode_packet_key, encode_match, encode_packet_key};
use odpx_offload::nla;
use odpx_offload::uapi::key_attr;

const FLOWS: &[&str] = &[
    "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,frag=no) actions:set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2",
    "in_port(2),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=80,dst=8080),tcp_flags(syn) actions:3",
    "in_port(3),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0x8100),vlan(vid=10,pcp=3),encap(eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.2,op=1/0xff)) actions:pop_vlan,1",
    "in_port(4),eth(),eth_type(0x86dd),ipv6(src=2001:db8::/ffff:ffff::,proto=58,frag=no),key32(00 00/00 00),icmpv6(type=135,code=0),nd(target=2001:db8::1) actions:push_vlan(vid=10,pcp=0),2",
    "tunnel(tun_id=0x2a,src=192.0.2.1,dst=192.0.2.2,ttl=64,flags(-df+csum+key)),in_port(5),eth(),eth_type(0x0800),ipv4(frag=no) actions:1",
    "in_port(6),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=4789) actions:set(ipv4(src=10.9.9.9,ttl=63)),set(udp(dst=80)),2",
    "in_port(9),ct_state(+new+trk),eth(),eth_type(0x0800),ipv4(frag=no) actions:1",
    "in_port(10),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(src=53) actions:clone(set(eth(dst=00:00:00:00:00:02)),1),sample(sample=50.0%,actions(2))",
    "in_port(11),eth(),eth_type(0x88a8),vlan(vid=100),encap(eth_type(0x8100),vlan(vid=10),encap(eth_type(0x0800),ipv4(frag=no))) actions:pop_vlan,pop_vlan,1",
    "in_port(13),eth(),eth_type(0x0800),ipv4(proto=132,frag=no),sctp(src=1,dst=2) actions:trunc(100),1",
    "skb_priority(0x3),in_port(14),skb_mark(0x10/0xff),eth(),eth_type(0x0800),ipv4(dst=172.16.0.0/255.240.0.0,tos=0x10/0xfc,frag=first) actions:set(skb_mark(0x7)),1",
    "recirc_id(0x5),dp_hash(0x3/0xf),in_port(1),eth(),eth_type(0x8847),mpls(label=100,tc=0,ttl=64,bos=1) actions:pop_mpls(eth_type=0x800),userspace(pid=4,userdata(0102),actions),recirc(0x2),hash(l4(0))",
    "in_port(2),eth(),eth_type(0x0800),ipv4(proto=1,frag=no),icmp(type=8,code=0) actions:set(eth(src=00:00:00:00:00:03,dst=00:00:00:00:00:04)),push_mpls(label=5,tc=1,ttl=9,bos=1,eth_type=0x8847),meter(1),ct_clear",
    "in_port(3),eth(),eth_type(0x86dd),ipv6(src=2001:db8::1,dst=2001:db8::2,label=0x12345,proto=6,tclass=0x0,hlimit=64,frag=no),tcp(dst=22),tcp_flags(+syn-ack) actions:action99(01 02 03),2",
    "in_port(1),eth(src=00:00:00:00:00:01/ff:ff:ff:00:00:00),eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.0/255.0.0.0,op=2,sha=00:00:00:00:00:01,tha=00:00:00:00:00:00) actions:1,2,3",
    "in_port(1),eth(),eth_type(0x8100),vlan(vid=5,pcp=0),encap() actions:drop",
    "in_port(1),eth(),eth_type(0x0800),ipv4(frag=later) actions:drop",
    // The kernel's 802.2 form: no ETHERTYPE in the key, one in the mask.
    "in_port(1),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0/0x0000) actions:2",
    "in_port(1),eth(),eth_type(0/0xffff) actions:2",
];

fn split(line: &str) -> (odp::OdpKey, Vec<odp::OdpAction>) {
    let f = parse_flow_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    (f.key.unwrap(), f.actions.unwrap())
}

#[test]
fn canonical_flows_round_trip_through_netlink() {
    for line in FLOWS {
        let (key, acts) = split(line);
        // Not every listed line needs to be canonical text: compare with
        // the model's own canonical print.
        let canon_key = key.to_string();
        let enc = encode_match(&key).unwrap_or_else(|e| panic!("{line}: {e}"));
        let back = decode_match(&enc.key, Some(&enc.mask)).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(back.to_string(), canon_key, "key of {line}");
        assert_eq!(back.matched, key.matched, "model of {line}");
        // Encoding is deterministic: the decoded key re-encodes identically.
        assert_eq!(encode_match(&back).unwrap(), enc, "{line}");
        let abytes = encode_actions(&acts).unwrap();
        let aback = decode_actions(&abytes).unwrap();
        assert_eq!(
            odp::actions::format_actions(&aback),
            odp::actions::format_actions(&acts),
            "actions of {line}"
        );
        assert_eq!(encode_actions(&aback).unwrap(), abytes, "{line}");
    }
}

#[test]
fn mask_only_ethertype_lives_in_the_mask_alone() {
    let k = parse_key("in_port(1),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0/0x0000)").unwrap();
    let enc = encode_match(&k).unwrap();
    assert!(!top_types(&enc.key).contains(&key_attr::ETHERTYPE));
    assert!(top_types(&enc.mask).contains(&key_attr::ETHERTYPE));
    assert_eq!(
        k.to_string(),
        "in_port(1),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0/0x0000)"
    );
}

fn top_types(buf: &[u8]) -> Vec<u16> {
    nla::iter(buf, "t").map(|a| a.unwrap().ty).collect()
}

#[test]
fn encoder_adds_the_attributes_the_kernel_expects() {
    // The canonical text drops wildcarded tcp()/tcp_flags(); the kernel
    // refuses a proto=6 key without them.
    let k = parse_key("in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no)").unwrap();
    let enc = encode_match(&k).unwrap();
    let t = top_types(&enc.key);
    assert!(t.contains(&key_attr::TCP) && t.contains(&key_attr::TCP_FLAGS), "{t:?}");
    // ...with an all-zero mask, which the kernel ignores.
    let tcp_mask = nla::iter(&enc.mask, "m")
        .map(|a| a.unwrap())
        .find(|a| a.ty == key_attr::TCP)
        .unwrap();
    assert!(tcp_mask.payload.iter().all(|&b| b == 0));
    // eth_type 0x86dd alone implies an ipv6 attribute.
    let k = parse_key("in_port(1),eth(),eth_type(0x86dd)").unwrap();
    assert!(top_types(&encode_match(&k).unwrap().key).contains(&key_attr::IPV6));
    // Decoding drops the added wildcards again.
    let back = decode_match(&enc.key, Some(&enc.mask)).unwrap();
    assert_eq!(
        back.to_string(),
        "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no)"
    );
}

#[test]
fn encoder_refuses_what_the_kernel_would_reject_or_change() {
    for (text, why) in [
        ("in_port(1/0xff),eth()", "in_port"),
        (
            "in_port(1),eth(),eth_type(0x0800/0xff00),ipv4(src=1.2.3.4)",
            "eth_type is not matched exactly",
        ),
        (
            "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6/0xf0),tcp(dst=80)",
            "IP protocol",
        ),
    ] {
        let k = parse_key(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let e = encode_match(&k).unwrap_err();
        assert!(e.to_string().contains(why), "{text}: {e}");
    }
    let tnl = parse_actions("tnl_pop(4)").unwrap();
    assert!(encode_actions(&tnl).unwrap_err().to_string().contains("userspace-only"));
}

#[test]
fn decoder_rejects_duplicates_and_bad_lengths() {
    let k = parse_key("in_port(1),eth(),eth_type(0x0800),ipv4(frag=no)").unwrap();
    let enc = encode_match(&k).unwrap();
    let mut dup = enc.key.clone();
    let mut w = nla::Writer::new();
    w.put_u32(key_attr::IN_PORT, 2);
    dup.extend_from_slice(w.as_bytes());
    let e = decode_match(&dup, None).unwrap_err();
    assert!(e.to_string().contains("duplicate attribute 3"), "{e}");
    let mut w = nla::Writer::new();
    w.put(key_attr::IPV4, &[0; 10]);
    let e = decode_match(w.as_bytes(), None).unwrap_err();
    assert!(e.to_string().contains("10 bytes, expected 12"), "{e}");
    // A duplicate across encapsulation levels is a duplicate too.
    let mut w = nla::Writer::new();
    w.put_be16(key_attr::ETHERTYPE, 0x8100);
    w.put_be16(key_attr::VLAN, 0x1005);
    let at = w.begin_nested(key_attr::ENCAP);
    w.put_u32(key_attr::IN_PORT, 1);
    w.end_nested(at);
    w.put_u32(key_attr::IN_PORT, 1);
    assert!(decode_match(w.as_bytes(), None).is_err());
}

#[test]
fn unknown_attributes_round_trip_byte_for_byte() {
    let mut w = nla::Writer::new();
    w.put_u32(key_attr::IN_PORT, 7);
    w.put(40, &[1, 2, 3, 4, 5]);
    w.put(key_attr::ETHERNET, &[0; 12]);
    let key = w.into_bytes();
    let (k, opaque) = decode_packet_key(&key).unwrap();
    assert_eq!(opaque.len(), 1);
    assert_eq!(opaque[0].attr, 40);
    assert_eq!(opaque[0].key, vec![1, 2, 3, 4, 5]);
    let again = encode_packet_key(&k, &opaque);
    let (k2, o2) = decode_packet_key(&again).unwrap();
    assert_eq!((k2, o2), (k, opaque));
}

#[test]
fn extracted_packet_keys_round_trip() {
    // Keys the fast path extracts from real frames.
    let frames: Vec<Vec<u8>> = {
        use etherparse::PacketBuilder;
        let mut v = Vec::new();
        let b = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1000, 80, 1, 1000)
            .syn();
        let mut f = Vec::new();
        b.write(&mut f, &[1, 2, 3]).unwrap();
        v.push(f);
        let b = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
            .single_vlan(etherparse::VlanId::try_new(42).unwrap())
            .ipv6([1; 16], [2; 16], 9)
            .udp(53, 53);
        let mut f = Vec::new();
        b.write(&mut f, &[0; 8]).unwrap();
        v.push(f);
        v.push(vec![0xff; 14]);
        v
    };
    for f in frames {
        let k = odpx_classifier::extract::extract(&f, 3);
        let bytes = encode_packet_key(&k, &[]);
        let (back, opaque) = decode_packet_key(&bytes).unwrap();
        assert!(opaque.is_empty());
        assert_eq!(
            odp::format_exact_key(&back),
            odp::format_exact_key(&k),
            "frame {f:02x?}"
        );
    }
}
