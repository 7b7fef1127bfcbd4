//! ODP text syntax: canonical lines round-trip byte for byte; other input
//! normalises to a fixed point; errors say where and what.

use odpx_classifier::odp::{self, actions, parse_flow_line, parse_key};
use proptest::prelude::*;

/// Lines in the canonical (ovs-dpctl non-verbose) form.
const CANONICAL: &[&str] = &[
    "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,frag=no)",
    "recirc_id(0),in_port(2),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=80,dst=8080),tcp_flags(syn|ack)",
    "recirc_id(0),in_port(1),eth(src=02:42:ac:00:00:00/ff:ff:ff:00:00:00),eth_type(0x0800),ipv4(src=10.0.0.0/255.0.0.0,proto=17,frag=no),udp(dst=4789)",
    "in_port(3),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0x8100),vlan(vid=10,pcp=3),encap(eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.2,op=1))",
    "eth(),eth_type(0x88a8),vlan(vid=100),encap(eth_type(0x8100),vlan(vid=10),encap(eth_type(0x0800),ipv4(frag=no)))",
    "tunnel(tun_id=0x2a,src=192.0.2.1,dst=192.0.2.2,ttl=64,tp_dst=4789,flags(-df+csum+key)),in_port(4),eth(),eth_type(0x0800),ipv4(frag=no)",
    "tunnel(tun_id=0x2a/0xff,ipv6_src=2001:db8::1,ipv6_dst=2001:db8::2,tos=0x10,flags(+key)),in_port(4),eth()",
    "in_port(1),eth(),eth_type(0x86dd),ipv6(src=2001:db8::/ffff:ffff::,proto=58,frag=no),icmpv6(type=135,code=0),nd(target=2001:db8::1)",
    "in_port(1),eth(),eth_type(0x86dd),ipv6(dst=fe80::1,label=0x12300/0xfff00,tclass=0x1,hlimit=255,frag=first)",
    "in_port(1),eth(),eth_type(0x8847),mpls(label=100,tc=0,ttl=64,bos=1)",
    "in_port(1),eth(),eth_type(0x8847),mpls(label=100/0xfffff,tc=1/7,ttl=0/0x0,bos=0/1,label=200/0xfffff,tc=0/7,ttl=64/0xff,bos=1/1)",
    "recirc_id(0x1),in_port(1),ct_state(+new+trk),ct_zone(0x5),ct_mark(0x1/0xff),eth(),eth_type(0x0800),ipv4(frag=no)",
    "in_port(1),eth(),eth_type(0x0800),ipv4(proto=1,frag=no),icmp(type=8,code=0)",
    "recirc_id(0x2),dp_hash(0xf/0xff),in_port(1),eth(),eth_type(0x0800),ipv4(frag=later)",
    "skb_priority(0x3),in_port(1),skb_mark(0x10/0xff),eth()",
    "in_port(1),eth(),eth_type(0x8100),vlan(vid=0,pcp=0,cfi=0),encap()",
    "in_port(1),eth(),eth_type(0x0806),arp(sip=10.0.0.0/255.0.0.0,op=1,sha=00:00:00:00:00:01)",
    "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp(dst=80/0xfff0),tcp_flags(+syn-ack)",
    "in_port(1),eth(),eth_type(0x0800),ipv4(proto=132,frag=no),sctp(src=1,dst=2)",
    "in_port(1/0xff),eth(),eth_type(0x0800/0xff00)",
    "in_port(1),eth(),key40(01 02 03/ff 00 ff)",
    "in_port(1),eth(),eth_type(0x86dd),ipv6(proto=58,frag=no),key32(00 00/00 00),icmpv6(type=135,code=0)",
    "in_port(1),ct_tuple4(0a 00 00 01 0a 00 00 02 06 00 00 00 00 00),eth(),eth_type(0x0800),ipv4(frag=no)",
];

#[test]
fn canonical_keys_round_trip() {
    for line in CANONICAL {
        let k = parse_key(line).unwrap_or_else(|e| panic!("{line}\n{e}"));
        assert_eq!(k.to_string(), *line);
    }
}

#[test]
fn flow_lines_round_trip() {
    for line in [
        "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,frag=no) actions:set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2",
        "recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4(frag=no), packets:10, bytes:640, used:0.532s, flags:S., actions:3",
        "ufid:1a2b3c4d-0000-1111-2222-333344445555, in_port(1),eth(), packets:0, bytes:0, used:never, actions:drop",
        "actions:push_vlan(vid=10,pcp=0),1,pop_vlan,2",
        "in_port(1),eth()",
    ] {
        let f = parse_flow_line(line).unwrap_or_else(|e| panic!("{line}\n{e}"));
        assert_eq!(f.to_string(), line);
    }
}

#[test]
fn non_canonical_input_normalises() {
    let cases = [
        // Fields in any order, attributes in any order, wildcarded attributes dropped.
        (
            "eth_type(0x0800),in_port(1),ipv4(frag=no,src=10.0.0.1),eth(),tcp()",
            "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.1,frag=no)",
        ),
        // Full masks are not printed; /len prefixes become netmasks.
        (
            "in_port(1/0xffffffff),eth(),eth_type(0x0800),ipv4(src=10.1.2.3/8)",
            "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.0.0.0)",
        ),
        // Decimal and hex are both accepted.
        ("recirc_id(16),in_port(0x2),eth()", "recirc_id(0x10),in_port(2),eth()"),
        // Flags spelled either way.
        (
            "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp_flags(0x12)",
            "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp_flags(syn|ack)",
        ),
    ];
    for (input, want) in cases {
        let k = parse_key(input).unwrap_or_else(|e| panic!("{input}\n{e}"));
        assert_eq!(k.to_string(), want, "from {input}");
    }
}

#[test]
fn errors_say_where_and_what() {
    let cases = [
        (
            "in_port(1),eth(src=00:00:00:00:00:0g)",
            19,
            "expected an Ethernet address",
        ),
        ("in_port(1),ipv4(srcc=1.2.3.4)", 16, "ipv4() has no field 'srcc'"),
        ("in_port(1),in_port(2)", 19, "duplicate attribute in_port()"),
        ("in_port(1),vlan(vid=5)", 22, "vlan() needs eth_type"),
        (
            "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(src=1),icmp(type=3)",
            64,
            "tcp() and icmp() cannot appear together",
        ),
        ("in_port(1),foo(1)", 11, "unknown attribute 'foo'"),
        ("in_port(1),ipv4(ttl=300)", 20, "out of range"),
        ("in_port(1),ipv4(frag=maybe)", 21, "frag must be no, first or later"),
        ("in_port(1", 9, "expected ')'"),
    ];
    for (input, pos, msg) in cases {
        let e = parse_key(input).unwrap_err();
        assert!(e.msg.contains(msg), "{input}: got '{e}'");
        assert_eq!(e.pos, pos, "{input}: {e}");
    }
    let e = actions::parse_actions("1,set(ipv4(ttl=1)),bogus(3)").unwrap_err();
    assert_eq!((e.pos, e.msg.as_str()), (19, "unknown action 'bogus'"));
}

#[test]
fn exact_keys_print_every_field() {
    let k = parse_key("in_port(7),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=1.2.3.4,dst=5.6.7.8,proto=17,tos=0,ttl=9,frag=no),udp(src=1,dst=2)").unwrap();
    assert_eq!(
        odp::format_exact_key(&k.matched.key),
        "in_port(7),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(src=1.2.3.4,dst=5.6.7.8,proto=17,tos=0,ttl=9,frag=no),udp(src=1,dst=2)"
    );
}

/// A random key text built from pieces the syntax allows.
fn key_text() -> impl Strategy<Value = String> {
    let ip = (any::<u32>(), 0u32..=32).prop_map(|(a, l)| format!("{}/{l}", std::net::Ipv4Addr::from(a)));
    let l4 = prop_oneof![
        (any::<u16>(), any::<u16>())
            .prop_map(|(s, d)| format!("ipv4(proto=6,frag=no),tcp(src={s},dst={d}/{:#x})", d | 1)),
        any::<u16>().prop_map(|d| format!("ipv4(proto=17,frag=first),udp(dst={d})")),
        (any::<u8>(), any::<u8>()).prop_map(|(t, c)| format!("ipv4(proto=1,frag=no),icmp(type={t},code={c})")),
    ];
    (any::<u16>(), ip.clone(), ip, l4, any::<bool>(), 0u16..4096).prop_map(|(port, s, d, l4, vlan, vid)| {
        // One ipv4(): the addresses, then the L4 piece's own fields.
        let rest = l4.strip_prefix("ipv4(").expect("each L4 piece starts with ipv4(");
        let inner = format!("eth_type(0x0800),ipv4(src={s},dst={d},{rest}");
        if vlan {
            format!("in_port({port}),eth(),eth_type(0x8100),vlan(vid={vid}),encap({inner})")
        } else {
            format!("in_port({port}),eth(),{inner}")
        }
    })
}

proptest! {
    #[test]
    fn normalising_is_idempotent(text in key_text()) {
        let k = parse_key(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let once = k.to_string();
        let again = parse_key(&once).unwrap().to_string();
        prop_assert_eq!(once, again);
    }

    #[test]
    fn printed_keys_parse_to_the_same_match(text in key_text()) {
        let k = parse_key(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let back = parse_key(&k.to_string()).unwrap();
        prop_assert_eq!(back.matched, k.matched);
    }

    #[test]
    fn parser_never_panics(s in "[a-z_()=,0-9./:x-]{0,60}") {
        let _ = parse_key(&s);
        let _ = actions::parse_actions(&s);
        let _ = parse_flow_line(&s);
    }
}
