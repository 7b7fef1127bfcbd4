//! Hybrid mode's steering program runs in the kernel's verifier and
//! interpreter/JIT through `BPF_PROG_TEST_RUN`, without attaching. Every
//! frame must get the verdict of a reference written without the program:
//! the kernel (`XDP_PASS`) exactly when the frame is of a shape the
//! program looks up and its flow key, by `classifier::extract`, falls in a
//! steering entry; AF_XDP otherwise. Needs root (bpf(2)); skips locally
//! without it and fails in CI.

use etherparse::PacketBuilder;
use odpx_classifier::extract::extract;
use odpx_classifier::odp::parse_key;
use odpx_classifier::wire::{
    ethertype, ip_proto, EthernetFrame, IcmpHeader, Ipv4Header, TcpHeader, ETHERNET_LEN, IPV4_FRAGMENT,
    IPV4_FRAG_OFFSET, UDP_LEN, VLAN_TAG_LEN,
};
use odpx_dataplane::bpf::xdp;
use odpx_dataplane::steer::{steer_match, SteerEntry, SteerRefusal, SteeringTable, MASK_SLOTS};
use odpx_dataplane::sys::bpf::{BpfMap, XdpProgram};
use odpx_dataplane::xdp::Steer;
use rand::{Rng, SeedableRng};

/// The verdict of a packet left to AF_XDP in these tests (in the real
/// program, a redirect to the port's socket).
const TO_XSK: u32 = xdp::TX as u32;
const TO_KERNEL: u32 = xdp::PASS as u32;
const PORT: u32 = 1;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// The megaflows the tests offload (port 1 unless said otherwise).
const MEGAFLOWS: [&str; 8] = [
    "recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0,frag=no),tcp(dst=80)",
    "in_port(1),eth(),eth_type(0x8100),vlan(vid=5,pcp=0),encap(eth_type(0x0800),ipv4(src=192.168.1.1,frag=no),udp(src=53))",
    "in_port(1),eth(dst=02:00:00:00:00:0b),eth_type(0x88b5)",
    "in_port(2),eth(),eth_type(0x0800),ipv4(frag=no),udp()",
    "in_port(1),eth(),eth_type(0x0800),ipv4(proto=1,frag=no),icmp(type=8,code=0)",
    "in_port(1),eth(),eth_type(0x0800),ipv4(src=172.16.0.1,frag=later)",
    "in_port(1),eth(src=02:00:00:00:00:01),eth_type(0x0800),ipv4(ttl=7,tos=0x10/0xfc,frag=first)",
    // Any input port (rules that never look at it).
    "eth(),eth_type(0x0800),ipv4(dst=10.5.0.0/255.255.0.0,frag=no),tcp(dst=443)",
];

fn entries() -> Vec<SteerEntry> {
    MEGAFLOWS
        .iter()
        .map(|t| steer_match(&parse_key(t).unwrap().matched).unwrap())
        .collect()
}

/// The steering tables with `entries`, and port 1's program over them,
/// loaded with a marker verdict for AF_XDP.
struct Steering {
    table: SteeringTable,
    prog: XdpProgram,
}

impl Steering {
    fn new(entries: &[SteerEntry]) -> Steering {
        let mut table = SteeringTable::new(64).expect("steering maps");
        for e in entries {
            table.insert(e).unwrap().unwrap();
        }
        let prog = XdpProgram::load(&table.program(PORT, Steer::Verdict(xdp::TX)), "odpx_test").expect("verifier");
        Steering { table, prog }
    }

    fn verdict(&self, frame: &[u8]) -> u32 {
        self.prog.test_run(frame).expect("BPF_PROG_TEST_RUN")
    }
}

/// Is `frame` of a shape the program looks up? Written from the module's
/// documentation, with the wire views: untagged or one 802.1Q tag, and
/// IPv4 with a complete header and L4 header (TCP, UDP, ICMP, or another
/// protocol, or a later fragment), or an Ethertype it does not parse.
fn looked_up(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let (mut ty, mut l3) = (eth.ethertype(), ETHERNET_LEN);
    if ty == ethertype::VLAN {
        if frame.len() < ETHERNET_LEN + VLAN_TAG_LEN {
            return false;
        }
        ty = u16::from_be_bytes([frame[16], frame[17]]);
        l3 += VLAN_TAG_LEN;
    }
    let unparsed = [
        ethertype::VLAN,
        ethertype::QINQ,
        ethertype::ARP,
        ethertype::RARP,
        ethertype::IPV6,
        ethertype::MPLS,
        ethertype::MPLS_MC,
    ];
    if ty < 0x600 || unparsed.contains(&ty) {
        return false;
    }
    if ty != ethertype::IPV4 {
        return true;
    }
    let Ok(ip) = Ipv4Header::new_checked(&frame[l3..]) else {
        return false;
    };
    let hlen = ip.header_len();
    if hlen < 20 || l3 + hlen > frame.len() {
        return false;
    }
    let frag = ip.frag_field();
    if frag & IPV4_FRAGMENT != 0 && frag & IPV4_FRAG_OFFSET != 0 {
        return true;
    }
    let l4 = &frame[l3 + hlen..];
    match ip.proto() {
        ip_proto::TCP => TcpHeader::new_checked(l4).is_ok_and(|t| t.header_len() >= 20 && t.header_len() <= l4.len()),
        ip_proto::UDP => l4.len() >= UDP_LEN,
        ip_proto::ICMP => IcmpHeader::new_checked(l4).is_ok(),
        ip_proto::SCTP => false,
        _ => true,
    }
}

fn reference(frame: &[u8], entries: &[SteerEntry]) -> u32 {
    let key = extract(frame, PORT);
    if looked_up(frame) && entries.iter().any(|e| e.matches(&key)) {
        TO_KERNEL
    } else {
        TO_XSK
    }
}

fn tcp(dst: [u8; 4], port: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 1, 1, 1], dst, 64)
        .tcp(40000, port, 1, 1000)
        .write(&mut v, &[0; 6])
        .unwrap();
    v
}

fn tagged_udp(vid: u16, src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(vid.try_into().unwrap())
        .ipv4(src, [10, 0, 0, 9], 64)
        .udp(sport, 9999)
        .write(&mut v, &[1; 18])
        .unwrap();
    v
}

fn icmp(ty: u8) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 1, 1, 1], [10, 0, 0, 2], 64)
        .icmpv4_raw(ty, 0, [0; 4])
        .write(&mut v, &[0; 8])
        .unwrap();
    v
}

fn l2(ty: u16, dst: [u8; 6]) -> Vec<u8> {
    let mut v = dst.to_vec();
    v.extend_from_slice(&MAC_A);
    v.extend_from_slice(&ty.to_be_bytes());
    v.resize(60, 0x5a);
    v
}

fn with_frag(mut f: Vec<u8>, field: u16) -> Vec<u8> {
    f[ETHERNET_LEN + 6..ETHERNET_LEN + 8].copy_from_slice(&field.to_be_bytes());
    f
}

/// Frames that match each megaflow, and near misses.
fn seeds() -> Vec<Vec<u8>> {
    let mut ttl7 = with_frag(tcp([10, 9, 9, 9], 22), 0x2000);
    ttl7[ETHERNET_LEN + 8] = 7;
    ttl7[ETHERNET_LEN + 1] = 0x11;
    let mut later = with_frag(tcp([10, 9, 9, 9], 22), 0x0010);
    later[ETHERNET_LEN + 12..ETHERNET_LEN + 16].copy_from_slice(&[172, 16, 0, 1]);
    vec![
        tcp([10, 2, 3, 4], 80),
        tcp([11, 2, 3, 4], 80),
        tagged_udp(5, [192, 168, 1, 1], 53),
        tagged_udp(6, [192, 168, 1, 1], 53),
        l2(0x88b5, [2, 0, 0, 0, 0, 0x0b]),
        icmp(8),
        icmp(0),
        later,
        ttl7,
        tcp([10, 5, 1, 1], 443),
    ]
}

fn each_offloaded_megaflow_steers_its_packets_and_only_them() {
    let s = Steering::new(&entries());
    assert_eq!(s.verdict(&tcp([10, 2, 3, 4], 80)), TO_KERNEL, "TCP to 10/8 port 80");
    assert_eq!(s.verdict(&tcp([10, 2, 3, 4], 81)), TO_XSK, "another port");
    assert_eq!(s.verdict(&tcp([11, 2, 3, 4], 80)), TO_XSK, "outside 10/8");
    assert_eq!(s.verdict(&tagged_udp(5, [192, 168, 1, 1], 53)), TO_KERNEL, "VLAN 5");
    assert_eq!(s.verdict(&tagged_udp(6, [192, 168, 1, 1], 53)), TO_XSK, "VLAN 6");
    assert_eq!(
        s.verdict(&l2(0x88b5, [2, 0, 0, 0, 0, 0x0b])),
        TO_KERNEL,
        "an L2-only flow"
    );
    assert_eq!(s.verdict(&l2(0x88b5, [2, 0, 0, 0, 0, 0x0c])), TO_XSK, "another MAC");
    assert_eq!(s.verdict(&icmp(8)), TO_KERNEL, "echo request");
    assert_eq!(s.verdict(&icmp(0)), TO_XSK, "echo reply");
    let seeds = seeds();
    assert_eq!(s.verdict(&seeds[7]), TO_KERNEL, "a later fragment from 172.16.0.1");
    assert_eq!(
        s.verdict(&seeds[8]),
        TO_KERNEL,
        "a first fragment, TTL 7, TOS 0x11 under 0xfc"
    );
    assert_eq!(s.verdict(&seeds[9]), TO_KERNEL, "a megaflow of any input port");
    for f in seeds {
        assert_eq!(s.verdict(&f), reference(&f, &entries()), "seed {f:02x?}");
    }
    // Port 2's megaflow does not steer port 1's packets.
    let mut udp = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 1, 1, 1], [10, 0, 0, 2], 64)
        .udp(1, 2)
        .write(&mut udp, &[0; 8])
        .unwrap();
    assert_eq!(s.verdict(&udp), TO_XSK, "port 2's flow");
}

fn truncated_vlan_options_and_unparsed_frames_go_to_the_pmds() {
    let s = Steering::new(&entries());
    // Cut at every length: never read past the end, never steer a
    // frame whose headers are incomplete. (XDP never sees less than an
    // Ethernet header; BPF_PROG_TEST_RUN refuses shorter frames.)
    for f in seeds() {
        for len in ETHERNET_LEN..f.len() {
            assert_eq!(
                s.verdict(&f[..len]),
                reference(&f[..len], &entries()),
                "{len} bytes of {f:02x?}"
            );
        }
    }
    let full = tcp([10, 2, 3, 4], 80);
    let l4 = ETHERNET_LEN + 20;
    assert_eq!(s.verdict(&full[..l4 + 19]), TO_XSK, "TCP header cut short");
    assert_eq!(s.verdict(&full[..l4 + 20]), TO_KERNEL, "TCP header complete");
    // IPv4 options move the L4 header; the program follows the IHL.
    let mut opts = full.clone();
    opts[ETHERNET_LEN] = 0x46;
    opts.splice(l4..l4, [1, 1, 1, 0]);
    assert_eq!(s.verdict(&opts), TO_KERNEL, "IPv4 with options");
    assert_eq!(reference(&opts, &entries()), TO_KERNEL);
    // Two tags (802.1Q in 802.1Q, and 802.1ad outside): to the PMDs.
    let mut qinq = tagged_udp(5, [192, 168, 1, 1], 53);
    qinq.splice(16..16, [0x81, 0x00, 0x00, 0x05]);
    assert_eq!(s.verdict(&qinq), TO_XSK, "802.1Q twice");
    let mut ad = tagged_udp(5, [192, 168, 1, 1], 53);
    ad[12..14].copy_from_slice(&ethertype::QINQ.to_be_bytes());
    assert_eq!(s.verdict(&ad), TO_XSK, "802.1ad");
    assert_eq!(s.verdict(&l2(ethertype::ARP, [0xff; 6])), TO_XSK, "ARP");
    assert_eq!(s.verdict(&l2(0x0100, [2, 0, 0, 0, 0, 0x0b])), TO_XSK, "802.2");
}

fn mutated_frames_get_the_reference_verdict() {
    let s = Steering::new(&entries());
    let seeds = seeds();
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let (mut kernel, mut xsk) = (0, 0);
    for round in 0..6000 {
        let mut frame = seeds[round % seeds.len()].clone();
        // Flip a few header bytes (where decisions are made), sometimes
        // cut the frame short.
        for _ in 0..rng.gen_range(0..3) {
            let at = rng.gen_range(0..frame.len().min(ETHERNET_LEN + VLAN_TAG_LEN + 44));
            frame[at] = if rng.gen_bool(0.5) {
                rng.gen()
            } else {
                frame[at] ^ (1 << rng.gen_range(0..8))
            };
        }
        if rng.gen_bool(0.15) {
            frame.truncate(rng.gen_range(ETHERNET_LEN..=frame.len()));
        }
        let want = reference(&frame, &entries());
        assert_eq!(s.verdict(&frame), want, "round {round}: frame {frame:02x?}");
        if want == TO_KERNEL {
            kernel += 1;
        } else {
            xsk += 1;
        }
    }
    // Both decisions were exercised.
    assert!(kernel > 1000 && xsk > 1000, "kernel {kernel}, xsk {xsk}");
}

fn entries_added_and_removed_take_effect_and_mask_slots_are_reused() {
    let mut s = Steering::new(&[]);
    let frame = tcp([10, 2, 3, 4], 80);
    assert_eq!(s.verdict(&frame), TO_XSK, "nothing offloaded");
    let e = entries();
    s.table.insert(&e[0]).unwrap().unwrap();
    assert_eq!(s.verdict(&frame), TO_KERNEL, "offloaded");
    assert_eq!(s.table.masks(), 1);
    assert!(s.table.remove(&e[0]).unwrap());
    assert!(!s.table.remove(&e[0]).unwrap(), "second removal finds nothing");
    assert_eq!(s.verdict(&frame), TO_XSK, "brought back");
    assert_eq!(s.table.masks(), 0, "the unused mask is freed");

    // One distinct mask per destination prefix length: 16 fit, not 17;
    // freeing one makes room.
    let by_len = |bits: u32| {
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        let m = std::net::Ipv4Addr::from(mask);
        steer_match(
            &parse_key(&format!(
                "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/{m},frag=no),tcp(dst=80)"
            ))
            .unwrap()
            .matched,
        )
        .unwrap()
    };
    let many: Vec<SteerEntry> = (8..8 + MASK_SLOTS as u32).map(by_len).collect();
    for m in &many {
        s.table.insert(m).unwrap().unwrap();
    }
    assert_eq!(s.table.insert(&by_len(30)).unwrap(), Err(SteerRefusal::NoMaskSlot));
    // The last slot (a /23) still steers.
    assert_eq!(s.verdict(&frame), TO_KERNEL);
    s.table.clear().unwrap();
    assert_eq!(s.verdict(&frame), TO_XSK, "cleared");
    assert!(s.table.is_empty());
    s.table.insert(&by_len(30)).unwrap().unwrap();
    assert_eq!(s.table.masks(), 1);
}

fn the_redirecting_program_passes_the_verifier_and_without_a_socket_passes_to_the_kernel() {
    let table = SteeringTable::new(16).unwrap();
    let xsks = BpfMap::xsk(1).unwrap();
    let prog = XdpProgram::load(
        &table.program(PORT, Steer::Redirect { xskmap_fd: xsks.fd() }),
        "odpx_steer",
    )
    .expect("verifier");
    // bpf_redirect_map's fallback: no socket on queue 0, so to the stack.
    assert_eq!(prog.test_run(&tcp([10, 2, 3, 4], 80)).unwrap(), TO_KERNEL);
}

odpx_tests::cases! {
    [odpx_tests::harness::ROOT] => each_offloaded_megaflow_steers_its_packets_and_only_them, truncated_vlan_options_and_unparsed_frames_go_to_the_pmds, mutated_frames_get_the_reference_verdict, entries_added_and_removed_take_effect_and_mask_slots_are_reused, the_redirecting_program_passes_the_verifier_and_without_a_socket_passes_to_the_kernel;
}
