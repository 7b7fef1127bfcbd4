//! The underlay filter runs in the kernel's verifier and interpreter/JIT
//! through `BPF_PROG_TEST_RUN`, without attaching: every frame gets the
//! verdict a reference model in Rust (over `classifier::wire` views) says
//! it should. Needs root (bpf(2)); skips locally without it and fails in CI.

use etherparse::PacketBuilder;
use odpx_classifier::wire::{
    ethertype, ip_proto, EthernetFrame, Ipv4Header, Ipv6Header, UdpHeader, ETHERNET_LEN, IPV4_FRAGMENT, IPV4_LEN,
    IPV6_LEN, UDP_LEN, VXLAN_PORT,
};
use odpx_dataplane::bpf::xdp;
use odpx_dataplane::sys::bpf::XdpProgram;
use odpx_dataplane::xdp::{Steer, VtepMaps};
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The verdict a steered packet gets in these tests (in the real program,
/// a redirect to the AF_XDP socket).
const STEERED: u32 = xdp::TX as u32;
const PASSED: u32 = xdp::PASS as u32;

const VTEP4: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);
const OTHER4: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 9);
const PEER4: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 2);
const VTEP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const VXLAN_PAYLOAD: [u8; 22] = [8, 0, 0, 0, 0, 0, 0x2a, 0, 2, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 4, 8, 0];

/// The filter with `vteps` accepted, loaded with a marker verdict.
struct Filter {
    maps: VtepMaps,
    prog: XdpProgram,
}

impl Filter {
    fn new(vteps: &[(IpAddr, u16)]) -> Filter {
        let maps = VtepMaps::new().expect("VTEP maps");
        for &(a, p) in vteps {
            maps.add(a, p).unwrap();
        }
        let prog = XdpProgram::load(&maps.program(Steer::Verdict(xdp::TX)), "odpx_test").expect("verifier");
        Filter { maps, prog }
    }

    fn verdict(&self, frame: &[u8]) -> u32 {
        self.prog.test_run(frame).expect("BPF_PROG_TEST_RUN")
    }
}

fn udp4(dst: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(PEER4.octets(), dst.octets(), 64)
        .udp(49152, port)
        .write(&mut v, &VXLAN_PAYLOAD)
        .unwrap();
    v
}

fn udp6(dst: Ipv6Addr, port: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(PEER6.octets(), dst.octets(), 64)
        .udp(49152, port)
        .write(&mut v, &VXLAN_PAYLOAD)
        .unwrap();
    v
}

/// What the filter must decide, written independently of the program:
/// steer exactly untagged IPv4 (no options, not a fragment) or IPv6
/// (next header UDP) UDP to a listed (address, port).
fn reference(frame: &[u8], vteps: &HashSet<(IpAddr, u16)>) -> u32 {
    let steer = (|| {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let l3 = &frame[ETHERNET_LEN..];
        let (dst, udp) = match eth.ethertype() {
            ethertype::IPV4 => {
                let ip = Ipv4Header::new_checked(l3).ok()?;
                let plain = ip.version() == 4 && ip.header_len() == IPV4_LEN;
                if !plain || ip.frag_field() & IPV4_FRAGMENT != 0 || ip.proto() != ip_proto::UDP {
                    return None;
                }
                (IpAddr::V4(Ipv4Addr::from(ip.dst())), &l3[IPV4_LEN..])
            }
            ethertype::IPV6 => {
                let ip = Ipv6Header::new_checked(l3).ok()?;
                if ip.next_header() != ip_proto::UDP {
                    return None;
                }
                (IpAddr::V6(Ipv6Addr::from(ip.dst())), &l3[IPV6_LEN..])
            }
            _ => return None,
        };
        let udp = UdpHeader::new_checked(udp).ok()?;
        vteps.contains(&(dst, udp.dst_port())).then_some(())
    })();
    if steer.is_some() {
        STEERED
    } else {
        PASSED
    }
}

fn vxlan_for_a_local_vtep_is_steered_and_everything_else_passes() {
    let vteps = [(IpAddr::V4(VTEP4), VXLAN_PORT), (IpAddr::V6(VTEP6), VXLAN_PORT)];
    let f = Filter::new(&vteps);
    assert_eq!(f.verdict(&udp4(VTEP4, VXLAN_PORT)), STEERED, "IPv4 VXLAN to the VTEP");
    assert_eq!(f.verdict(&udp6(VTEP6, VXLAN_PORT)), STEERED, "IPv6 VXLAN to the VTEP");
    assert_eq!(f.verdict(&udp4(VTEP4, 53)), PASSED, "DNS to the host");
    assert_eq!(
        f.verdict(&udp4(OTHER4, VXLAN_PORT)),
        PASSED,
        "VXLAN for another address"
    );
    assert_eq!(
        f.verdict(&udp6(PEER6, VXLAN_PORT)),
        PASSED,
        "IPv6 VXLAN for another address"
    );

    let mut tcp = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(PEER4.octets(), VTEP4.octets(), 64)
        .tcp(40000, VXLAN_PORT, 1, 1000)
        .write(&mut tcp, &[])
        .unwrap();
    assert_eq!(f.verdict(&tcp), PASSED, "TCP to port 4789");

    let mut tagged = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(10.try_into().unwrap())
        .ipv4(PEER4.octets(), VTEP4.octets(), 64)
        .udp(49152, VXLAN_PORT)
        .write(&mut tagged, &VXLAN_PAYLOAD)
        .unwrap();
    assert_eq!(f.verdict(&tagged), PASSED, "VLAN-tagged VXLAN");

    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&MAC_A);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&MAC_A);
    arp.extend_from_slice(&[172, 31, 0, 2, 0, 0, 0, 0, 0, 0, 172, 31, 0, 1]);
    arp.resize(60, 0);
    assert_eq!(f.verdict(&arp), PASSED, "ARP for the VTEP address");

    // IPv4 with options: the UDP header is not where the program looks.
    let mut opts = udp4(VTEP4, VXLAN_PORT);
    opts[ETHERNET_LEN] = 0x46;
    assert_eq!(f.verdict(&opts), PASSED, "IPv4 with options");
    for frag in [0x2000u16, 0x0001, 0x2000 | 0x4000] {
        let mut fr = udp4(VTEP4, VXLAN_PORT);
        fr[ETHERNET_LEN + 6..ETHERNET_LEN + 8].copy_from_slice(&frag.to_be_bytes());
        assert_eq!(f.verdict(&fr), PASSED, "IPv4 fragment {frag:#x}");
    }
    let mut df = udp4(VTEP4, VXLAN_PORT);
    df[ETHERNET_LEN + 6] = 0x40;
    assert_eq!(f.verdict(&df), STEERED, "DF alone is not a fragment");

    // IPv6 with a hop-by-hop header before UDP.
    let mut ext = udp6(VTEP6, VXLAN_PORT);
    ext[ETHERNET_LEN + 6] = 0;
    assert_eq!(f.verdict(&ext), PASSED, "IPv6 extension header");

    // Truncated inside UDP, for either family: never read past the end.
    let v4 = udp4(VTEP4, VXLAN_PORT);
    assert_eq!(f.verdict(&v4[..ETHERNET_LEN + IPV4_LEN + UDP_LEN - 1]), PASSED);
    assert_eq!(f.verdict(&v4[..ETHERNET_LEN + IPV4_LEN + UDP_LEN]), STEERED);
    let v6 = udp6(VTEP6, VXLAN_PORT);
    assert_eq!(f.verdict(&v6[..ETHERNET_LEN + IPV6_LEN + UDP_LEN - 1]), PASSED);
    assert_eq!(f.verdict(&v6[..ETHERNET_LEN]), PASSED);
}

fn vteps_added_and_removed_take_effect_on_the_loaded_program() {
    let f = Filter::new(&[]);
    let frame = udp4(VTEP4, 8472);
    assert_eq!(f.verdict(&frame), PASSED, "no VTEP yet");
    f.maps.add(IpAddr::V4(VTEP4), 8472).unwrap();
    assert_eq!(f.verdict(&frame), STEERED, "VTEP on port 8472 added");
    assert_eq!(f.verdict(&udp4(VTEP4, VXLAN_PORT)), PASSED, "only the port added");
    assert!(f.maps.remove(IpAddr::V4(VTEP4), 8472).unwrap());
    assert!(
        !f.maps.remove(IpAddr::V4(VTEP4), 8472).unwrap(),
        "second removal finds nothing"
    );
    assert_eq!(f.verdict(&frame), PASSED, "VTEP removed");
}

fn mutated_frames_get_the_reference_verdict() {
    let listed = [
        (IpAddr::V4(VTEP4), VXLAN_PORT),
        (IpAddr::V6(VTEP6), VXLAN_PORT),
        (IpAddr::V4(OTHER4), 8472),
    ];
    let f = Filter::new(&listed);
    let vteps: HashSet<_> = listed.into_iter().collect();
    let seeds = [udp4(VTEP4, VXLAN_PORT), udp6(VTEP6, VXLAN_PORT), udp4(OTHER4, 8472)];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut steered, mut passed) = (0, 0);
    for round in 0..4000 {
        let mut frame = seeds[round % seeds.len()].clone();
        // Flip a few bytes in the headers (where decisions are made) and
        // sometimes cut the frame short.
        for _ in 0..rng.gen_range(0..3) {
            let at = rng.gen_range(0..(ETHERNET_LEN + IPV6_LEN + UDP_LEN).min(frame.len()));
            frame[at] = rng.gen();
        }
        if rng.gen_bool(0.2) {
            frame.truncate(rng.gen_range(ETHERNET_LEN..=frame.len()));
        }
        let want = reference(&frame, &vteps);
        assert_eq!(f.verdict(&frame), want, "round {round}: frame {frame:02x?}");
        if want == STEERED {
            steered += 1;
        } else {
            passed += 1;
        }
    }
    // Both decisions were exercised.
    assert!(steered > 500 && passed > 500, "steered {steered}, passed {passed}");
}

fn the_redirecting_program_passes_the_verifier_and_without_a_socket_passes_to_the_kernel() {
    let maps = VtepMaps::new().unwrap();
    maps.add(IpAddr::V4(VTEP4), VXLAN_PORT).unwrap();
    let xsks = odpx_dataplane::sys::bpf::BpfMap::xsk(1).unwrap();
    let prog =
        XdpProgram::load(&maps.program(Steer::Redirect { xskmap_fd: xsks.fd() }), "odpx_underlay").expect("verifier");
    // bpf_redirect_map's fallback: no socket on queue 0, so to the stack.
    assert_eq!(prog.test_run(&udp4(VTEP4, VXLAN_PORT)).unwrap(), PASSED);
}

odpx_tests::cases! {
    [odpx_tests::harness::ROOT] => vxlan_for_a_local_vtep_is_steered_and_everything_else_passes, vteps_added_and_removed_take_effect_on_the_loaded_program, mutated_frames_get_the_reference_verdict, the_redirecting_program_passes_the_verifier_and_without_a_socket_passes_to_the_kernel;
}
