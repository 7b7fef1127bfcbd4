//! Packet key extraction on byte vectors: well-formed frames built by an
//! independent library (etherparse), and hand-cut truncated/malformed ones,
//! checked against the key the ODP rules prescribe, in ODP text.

use etherparse::PacketBuilder;
use odpx_classifier::extract::extract;
use odpx_classifier::odp::format_exact_key;
use proptest::prelude::*;

const META: &str = "recirc_id(0),dp_hash(0),skb_priority(0),in_port(1),skb_mark(0)";
const MACS: [[u8; 6]; 2] = [[0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 2]];
const ETH: &str = "eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02)";

fn key_of(frame: &[u8]) -> String {
    let k = format_exact_key(&extract(frame, 1));
    k.strip_prefix(META)
        .map(|s| s.trim_start_matches(',').to_string())
        .unwrap_or(k)
}

fn tcp_frame() -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MACS[0], MACS[1])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1234, 80, 1, 1000)
        .syn();
    let mut v = Vec::new();
    b.write(&mut v, &[1, 2, 3]).unwrap();
    v
}

#[test]
fn ipv4_tcp() {
    assert_eq!(
        key_of(&tcp_frame()),
        format!("{ETH},eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=1234,dst=80),tcp_flags(syn)")
    );
}

#[test]
fn ipv6_udp_and_vlan() {
    let b = PacketBuilder::ethernet2(MACS[0], MACS[1])
        .single_vlan(10.try_into().unwrap())
        .ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            5,
        )
        .udp(53, 5353);
    let mut v = Vec::new();
    b.write(&mut v, &[0; 4]).unwrap();
    assert_eq!(
        key_of(&v),
        format!("{ETH},eth_type(0x8100),vlan(vid=10,pcp=0),encap(eth_type(0x86dd),ipv6(src=2001:db8::1,dst=2001:db8::2,label=0,proto=17,tclass=0,hlimit=5,frag=no),udp(src=53,dst=5353))")
    );
}

#[test]
fn arp_request() {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&MACS[0]);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&MACS[0]);
    f.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    assert_eq!(
        key_of(&f),
        "eth(src=00:00:00:00:00:01,dst=ff:ff:ff:ff:ff:ff),eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.2,op=1,sha=00:00:00:00:00:01,tha=00:00:00:00:00:00)"
    );
}

fn eth_header(ethertype: u16) -> Vec<u8> {
    let mut f = MACS[1].to_vec();
    f.extend_from_slice(&MACS[0]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

#[test]
fn tcp_truncated_after_ip_header_keeps_empty_tcp() {
    let full = tcp_frame();
    let cut = &full[..14 + 20];
    assert_eq!(
        key_of(cut),
        format!("{ETH},eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=0,dst=0),tcp_flags(0)")
    );
}

#[test]
fn vlan_truncated_after_tpid_has_empty_encap() {
    let f = eth_header(0x8100);
    assert_eq!(
        key_of(&f),
        format!("{ETH},eth_type(0x8100),vlan(vid=0,pcp=0,cfi=0),encap()")
    );
    // Two bytes of TCI but no inner Ethertype: still truncated.
    let mut f2 = f.clone();
    f2.extend_from_slice(&[0, 10]);
    assert_eq!(
        key_of(&f2),
        format!("{ETH},eth_type(0x8100),vlan(vid=0,pcp=0,cfi=0),encap()")
    );
}

#[test]
fn short_or_bogus_ipv4_header_gives_zero_ipv4() {
    let mut f = eth_header(0x0800);
    f.extend_from_slice(&[0x45, 0, 0, 20]);
    let zero = format!("{ETH},eth_type(0x0800),ipv4(src=0.0.0.0,dst=0.0.0.0,proto=0,tos=0,ttl=0,frag=no)");
    assert_eq!(key_of(&f), zero);
    // IHL of 15 words in a 20-byte header.
    let mut g = tcp_frame();
    g[14] = 0x4f;
    g.truncate(14 + 20);
    assert_eq!(key_of(&g), zero);
}

#[test]
fn ipv4_fragments() {
    let mut first = tcp_frame();
    first[14 + 6] = 0x20; // MF
    assert!(key_of(&first).contains("frag=first),tcp(src=1234,dst=80)"));
    let mut later = tcp_frame();
    later[14 + 6] = 0x00;
    later[14 + 7] = 0x10; // offset 16
    let k = key_of(&later);
    assert!(k.ends_with("proto=6,tos=0,ttl=64,frag=later)"), "{k}");
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    let mut f = eth_header(0x86dd);
    let mut ip6 = vec![0x60, 0, 0, 0, 0, 24, 0, 64];
    ip6.extend_from_slice(&[0; 32]);
    f.extend_from_slice(&ip6);
    // Hop-by-hop (next: fragment), 8 bytes.
    f.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]);
    // Fragment header, offset 0, M=1 (first), next: UDP.
    f.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 7]);
    f.extend_from_slice(&[0, 7, 0, 9, 0, 8, 0, 0]);
    let k = key_of(&f);
    assert!(
        k.ends_with("proto=17,tclass=0,hlimit=64,frag=first),udp(src=7,dst=9)"),
        "{k}"
    );
    // Later fragment: proto 44 and no L4.
    let n = f.len();
    f[n - 16 + 2] = 0x01; // offset 32 bytes
    let k = key_of(&f);
    assert!(k.ends_with("proto=44,tclass=0,hlimit=64,frag=later)"), "{k}");
    // Extension header cut short: proto 59 (no next header).
    let k = key_of(&f[..14 + 40 + 4]);
    assert!(k.ends_with("proto=59,tclass=0,hlimit=64,frag=no)"), "{k}");
}

#[test]
fn llc_and_runts() {
    let mut f = eth_header(0x0026);
    f.extend_from_slice(&[0x42, 0x42, 0x03, 0, 0, 0]);
    assert_eq!(key_of(&f), ETH);
    let k = key_of(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(k, "eth(src=07:08:00:00:00:00,dst=01:02:03:04:05:06)");
    assert_eq!(key_of(&[]), "eth(src=00:00:00:00:00:00,dst=00:00:00:00:00:00)");
}

#[test]
fn neighbour_solicitation() {
    let mut f = eth_header(0x86dd);
    let mut ip6 = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
    ip6.extend_from_slice(&[0; 32]);
    f.extend_from_slice(&ip6);
    f.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    f.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0xaa]);
    let k = key_of(&f);
    assert!(
        k.ends_with("icmpv6(type=135,code=0),nd(target=2001:db8::9,sll=00:00:00:00:00:aa,tll=00:00:00:00:00:00)"),
        "{k}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes: no panic, and the printed key parses back to the same key.
    #[test]
    fn extraction_never_panics_and_prints_parsably(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let k = extract(&bytes, 3);
        let text = format_exact_key(&k);
        let back = odpx_classifier::odp::parse_key(&text).unwrap();
        prop_assert_eq!(format_exact_key(&back.matched.key), text);
    }

    /// Extraction and the layout walk the datapath's writers use
    /// (`odpx_classifier::layout`) see the same headers in any frame, or
    /// any prefix of a real one: the tags, the Ethertype, the IP protocol
    /// and fragment kind, and whether a transport header is there.
    #[test]
    fn extraction_and_the_layout_walk_agree(
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
        head in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x8100), Just(0x0806), Just(0x0026)],
        cut in 0usize..80,
    ) {
        use odpx_classifier::key::attr;
        let mut random = eth_header(head);
        random.extend_from_slice(&bytes);
        let f = tcp_frame();
        for frame in [&bytes[..], &random[..], &f[..cut.min(f.len())]] {
            let k = extract(frame, 1);
            let l = odpx_classifier::layout::layout(frame);
            let tags = u8::from(k.has(attr::VLAN)) + u8::from(k.has(attr::CVLAN));
            let cut_tag = u8::from(l.cut_tag.is_some());
            prop_assert_eq!(tags, l.vlan_tags + cut_tag);
            if k.has(attr::ETHERTYPE) {
                prop_assert_eq!(Some(k.eth_type), l.ethertype_at.map(|_| l.eth_type));
            }
            let l4_attr = k.attrs & (attr::TCP | attr::UDP | attr::SCTP | attr::ICMP | attr::ICMPV6) != 0;
            match l.ip {
                Some(ip) => {
                    prop_assert_eq!((k.ip_proto, k.ip_frag), (ip.proto, ip.frag));
                    prop_assert!(!l4_attr || ip.l4.is_some() || ip.frag == odpx_classifier::key::frag::LATER);
                }
                None => prop_assert!(!l4_attr),
            }
        }
    }

    /// Every prefix of a valid frame extracts without panic.
    #[test]
    fn truncations_never_panic(cut in 0usize..80) {
        let f = tcp_frame();
        let _ = extract(&f[..cut.min(f.len())], 1);
    }
}
