//! Tests of [`super`]: actions run on real frames, the fast form against
//! the list form.

use super::*;
use odpx_classifier::extract::extract;
use odpx_classifier::odp::{actions::parse_actions, format_exact_key};

pub(super) fn tcp_frame() -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1000, 80, 7, 1024);
    let mut f = Vec::new();
    b.write(&mut f, b"hello").unwrap();
    f
}

fn udp6_frame() -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(53, 5353);
    let mut f = Vec::new();
    b.write(&mut f, b"payload!").unwrap();
    f
}

/// Runs actions, returns (port, bytes) per output.
pub(super) fn run_on(frame: &[u8], actions: &str) -> (Vec<(u32, Vec<u8>)>, ExecResult) {
    let acts = parse_actions(actions).unwrap();
    let mut buf = vec![0u8; HEADROOM + frame.len()];
    buf[HEADROOM..].copy_from_slice(frame);
    let mut p = Packet::new(&mut buf, HEADROOM, frame.len());
    let mut out = Vec::new();
    let r = execute(&acts, &mut p, &mut |port: u32, d: &[u8]| out.push((port, d.to_vec())));
    (out, r)
}

/// Checksums verified from scratch by etherparse.
fn checksums_ok(f: &[u8]) {
    let p = etherparse::SlicedPacket::from_ethernet(f).unwrap();
    match (&p.net, &p.transport) {
        (Some(etherparse::NetSlice::Ipv4(ip)), Some(etherparse::TransportSlice::Tcp(t))) => {
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 header checksum");
            let th = t.to_header();
            assert_eq!(
                th.checksum,
                th.calc_checksum_ipv4(&h, t.payload()).unwrap(),
                "TCP checksum"
            );
        }
        (Some(etherparse::NetSlice::Ipv6(ip)), Some(etherparse::TransportSlice::Udp(u))) => {
            let h = ip.header().to_header();
            let uh = u.to_header();
            assert_eq!(
                uh.checksum,
                uh.calc_checksum_ipv6(&h, u.payload()).unwrap(),
                "UDP checksum"
            );
        }
        other => panic!("unexpected packet {other:?}"),
    }
}

#[test]
fn set_fields_write_headers_and_keep_checksums_valid() {
    let (out, r) = run_on(
        &tcp_frame(),
        "set(eth(src=02:00:00:00:00:0a,dst=02:00:00:00:00:0b)),set(ipv4(src=192.0.2.1,dst=192.0.2.2,tos=0x10,ttl=9)),set(tcp(src=4444,dst=8080)),3",
    );
    assert_eq!(r, ExecResult::default());
    let (port, f) = &out[0];
    assert_eq!(*port, 3);
    checksums_ok(f);
    let k = format_exact_key(&extract(f, 1));
    assert!(k.contains("eth(src=02:00:00:00:00:0a,dst=02:00:00:00:00:0b)"), "{k}");
    assert!(
        k.contains("ipv4(src=192.0.2.1,dst=192.0.2.2,proto=6,tos=0x10,ttl=9,frag=no),tcp(src=4444,dst=8080)"),
        "{k}"
    );
}

#[test]
fn masked_sets_keep_unmasked_bits() {
    let (out, _) = run_on(&tcp_frame(), "set(ipv4(src=192.168.0.0/255.255.0.0)),1");
    checksums_ok(&out[0].1);
    assert!(format_exact_key(&extract(&out[0].1, 1)).contains("ipv4(src=192.168.0.1,"));
}

#[test]
fn ipv6_and_udp_sets_keep_the_checksum_valid() {
    let (out, _) = run_on(&udp6_frame(), "set(ipv6(src=2001:db8::99,hlimit=3)),set(udp(dst=53)),2");
    checksums_ok(&out[0].1);
    let k = format_exact_key(&extract(&out[0].1, 1));
    assert!(
        k.contains(
            "ipv6(src=2001:db8::99,dst=2001:db8::2,label=0,proto=17,tclass=0,hlimit=3,frag=no),udp(src=53,dst=53)"
        ),
        "{k}"
    );
}

#[test]
fn icmp_and_arp_sets_write_their_fields() {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .icmpv4_echo_request(7, 1);
    let mut f = Vec::new();
    b.write(&mut f, b"ping").unwrap();
    let (out, r) = run_on(&f, "set(icmp(type=0,code=3)),1");
    assert_eq!(r, ExecResult::default());
    let p = etherparse::SlicedPacket::from_ethernet(&out[0].1).unwrap();
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &p.transport else {
        panic!("ICMP: {p:?}")
    };
    assert_eq!((icmp.type_u8(), icmp.code_u8()), (0, 3));
    let h = icmp.header();
    assert_eq!(h.checksum, h.icmp_type.calc_checksum(icmp.payload()), "ICMP checksum");
    let arp = [
        "ffffffffffff",
        "020000000001",
        "0806",
        "0001",
        "0800",
        "06",
        "04",
        "0001",
        "020000000001",
        "0a000001",
        "000000000000",
        "0a000002",
    ]
    .concat();
    let arp: Vec<u8> = (0..arp.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&arp[i..i + 2], 16).unwrap())
        .collect();
    let (out, _) = run_on(
        &arp,
        "set(arp(sip=10.0.0.9,tip=10.0.0.8,op=2,sha=02:00:00:00:00:0a,tha=02:00:00:00:00:0b)),1",
    );
    let k = format_exact_key(&extract(&out[0].1, 1));
    assert!(
        k.contains("arp(sip=10.0.0.9,tip=10.0.0.8,op=2,sha=02:00:00:00:00:0a,tha=02:00:00:00:00:0b)"),
        "{k}"
    );
}

#[test]
fn sctp_port_sets_make_the_crc32c_again() {
    // IPv4 + SCTP (common header, one 16-byte DATA chunk), then
    // Ethernet padding the CRC must not cover.
    let sctp_len = 12 + 16;
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + sctp_len) as u16;
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 132, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    let l4 = f.len();
    f.extend_from_slice(&[0x2b, 0x67, 0x00, 0x50, 0, 0, 0, 7, 0, 0, 0, 0]);
    f.extend_from_slice(&[0, 3, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    let crc = checksum::crc32c(&f[l4..]);
    f[l4 + 8..l4 + 12].copy_from_slice(&crc.to_le_bytes());
    f.extend_from_slice(&[0xee; 6]);
    let (out, r) = run_on(&f, "set(sctp(src=12345,dst=80)),2");
    assert_eq!(r, ExecResult::default());
    let g = &out[0].1;
    assert_eq!(&g[l4..l4 + 4], &[0x30, 0x39, 0x00, 0x50], "the ports");
    let mut zeroed = g[l4..l4 + sctp_len].to_vec();
    zeroed[8..12].fill(0);
    assert_eq!(g[l4 + 8..l4 + 12], checksum::crc32c(&zeroed).to_le_bytes(), "CRC32c");
    assert_ne!(g[l4 + 8..l4 + 12], f[l4 + 8..l4 + 12], "a new CRC for new ports");
    assert_eq!(&g[l4 + sctp_len..], &[0xee; 6], "the padding untouched");
}

#[test]
fn vlan_push_and_pop_round_trip_and_outputs_see_each_state() {
    let f = tcp_frame();
    let (out, r) = run_on(&f, "1,push_vlan(vid=10,pcp=3),2,set(vlan(vid=20)),3,pop_vlan,4");
    assert_eq!(r, ExecResult::default());
    assert_eq!(out[0].1, f);
    let k2 = format_exact_key(&extract(&out[1].1, 1));
    assert!(
        k2.contains("eth_type(0x8100),vlan(vid=10,pcp=3),encap(eth_type(0x0800)"),
        "{k2}"
    );
    let k3 = format_exact_key(&extract(&out[2].1, 1));
    assert!(k3.contains("vlan(vid=20,pcp=3)"), "{k3}");
    assert_eq!(out[3].1, f, "pop restores the frame");
}

#[test]
fn clone_works_on_a_copy_and_drop_outputs_nothing() {
    let f = tcp_frame();
    let (out, _) = run_on(&f, "clone(set(eth(dst=02:00:00:00:00:99)),5),6");
    assert_eq!(out.len(), 2);
    assert_eq!(&out[0].1[..6], &[2, 0, 0, 0, 0, 0x99]);
    assert_eq!(out[1].1, f);
    let (out, r) = run_on(&f, "drop");
    assert!(out.is_empty() && r == ExecResult::default());
}

#[test]
fn truncated_and_unsupported_are_reported_not_fatal() {
    // A frame cut inside the IPv4 header: the set finds no header, the
    // output still happens.
    let f = &tcp_frame()[..20];
    let (out, r) = run_on(f, "set(ipv4(ttl=1)),7");
    assert_eq!(out, vec![(7, f.to_vec())]);
    assert_eq!(r.skipped_sets, 1);
    let (out, r) = run_on(&tcp_frame(), "1,ct_clear,2");
    assert_eq!(out.len(), 1);
    assert!(r.unsupported);
    // A sink without meters lets a meter's packets pass.
    let (out, r) = run_on(&tcp_frame(), "1,meter(0),2");
    assert_eq!((out.len(), r.unsupported), (2, false));
    // recirc ends the list, for the packet to go round again.
    let (out, r) = run_on(&tcp_frame(), "1,recirc(0x1),2");
    assert_eq!(out.len(), 1);
    assert_eq!((r.recirc, r.unsupported), (Some(1), false));
}

#[test]
fn programs_run_exactly_as_their_lists_inline_or_not() {
    let lists = [
        "set(eth(src=02:00:00:00:00:0a,dst=02:00:00:00:00:0b)),set(ipv4(src=192.0.2.1,ttl=9)),set(tcp(dst=8080)),3",
        "set(ipv6(src=2001:db8::99)),1",
        "1,push_vlan(vid=10,pcp=3),2,set(vlan(vid=20)),3,pop_vlan,4",
        "set(skb_mark(7)),clone(set(eth(dst=02:00:00:00:00:99)),5),6,recirc(0x1),7",
        "set(ipv4(ttl=1)),set(udp(src=1)),9",
        "push_mpls(label=7,tc=1,ttl=9,bos=1,eth_type=0x8847),1,set(mpls(label=8/0xfffff,tc=0/0,ttl=0/0,bos=0/0)),2,pop_mpls(eth_type=0x800),3",
    ];
    for text in lists {
        let list: Arc<[OdpAction]> = parse_actions(text).unwrap().into();
        let program = Program::new(list.clone());
        assert_eq!(program.actions(), &list);
        assert_eq!(program.ops().len(), list.len(), "{text}");
        for frame in [tcp_frame(), udp6_frame(), tcp_frame()[..20].to_vec()] {
            let run = |by_program: bool| {
                let mut buf = vec![0u8; HEADROOM + frame.len()];
                buf[HEADROOM..].copy_from_slice(&frame);
                let mut p = Packet::new(&mut buf, HEADROOM, frame.len());
                let mut out = Vec::new();
                let mut sink = |port: u32, d: &[u8]| out.push((port, d.to_vec()));
                let r = if by_program {
                    program.run(&mut p, &mut sink)
                } else {
                    execute(&list, &mut p, &mut sink)
                };
                (out, r)
            };
            let (by_list, by_program) = (run(false), run(true));
            assert!(!by_list.0.is_empty(), "{text}");
            assert_eq!(by_list, by_program, "{text}");
        }
    }
}

#[test]
fn fast_forms_carry_the_written_bytes() {
    let a = parse_actions("set(eth(dst=02:00:00:00:00:0b)),set(ipv4(ttl=9)),set(skb_priority(3)),set(ipv6(hlimit=1))")
        .unwrap();
    let ops: Vec<Op> = a.iter().enumerate().map(|(i, a)| Op::of(a, i)).collect();
    assert_eq!(
        ops[0],
        Op::SetEthernet {
            dst: [2, 0, 0, 0, 0, 0xb],
            dst_mask: [0xff; 6],
            src: [0; 6],
            src_mask: [0; 6]
        }
    );
    assert!(matches!(
        ops[1],
        Op::SetIpv4 {
            ttl: 9,
            ttl_mask: 0xff,
            tos_mask: 0,
            ..
        }
    ));
    assert_eq!(ops[2], Op::Nothing);
    assert_eq!(ops[3], Op::FromList(3));
    assert!(std::mem::size_of::<Op>() <= 28, "{}", std::mem::size_of::<Op>());
}

#[test]
fn push_without_headroom_drops() {
    let f = tcp_frame();
    let mut buf = f.clone();
    let mut p = Packet::new(&mut buf, 0, f.len());
    let acts = parse_actions("push_vlan(vid=1,pcp=0),1").unwrap();
    let mut n = 0;
    let r = execute(&acts, &mut p, &mut |_: u32, _: &[u8]| n += 1);
    assert!(r.no_headroom);
    assert_eq!(n, 0);
}
