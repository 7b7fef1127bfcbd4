//! VXLAN in a PMD on in-memory ports, driven step by step: a frame from
//! the underlay is decapsulated and its inner packet recirculated through
//! the same batch code with the tunnel metadata, to the VXLAN port that
//! claims it; `tnl_push` encapsulates onto the underlay; unknown VNIs,
//! malformed frames and frames over the underlay's MTU are counted on the
//! right port and never crash anything.

use odpx_classifier::flow_op::{Holder, Ufid};
use odpx_classifier::key::{tun_flag, Match};
use odpx_classifier::odp::{actions::parse_actions, parse_key, OdpAction, TunnelPush};
use odpx_classifier::wire::{TunnelIp, VxlanRepr, IPV4_DF, VXLAN_FLAGS_VNI, VXLAN_OVER_IPV4, VXLAN_PORT};
use odpx_dataplane::pmd::{Pmd, PmdConfig, PmdCounters, PmdMsg, PortTable, SlowPath};
use odpx_dataplane::port::Port;
use odpx_dataplane::tunnel::VxlanEndpoint;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const LOCAL: u32 = 0xac1f_0001; // 172.31.0.1
const REMOTE: u32 = 0xac1f_0002; // 172.31.0.2
const ACCESS: u32 = 1;
const UNDERLAY: u32 = 2;
const VX42: u32 = 3;
const VX_ANY: u32 = 4;

fn inner(dport: u16, payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, dport)
        .write(&mut f, &vec![0u8; payload])
        .unwrap();
    f
}

fn repr(vni: u32, src: u32, dst: u32) -> VxlanRepr {
    VxlanRepr {
        eth_dst: [2, 0, 0, 0, 0, 0xaa],
        eth_src: [2, 0, 0, 0, 0, 0xbb],
        ip: TunnelIp::V4 {
            src,
            dst,
            tos: 0,
            ttl: 64,
            frag: IPV4_DF,
        },
        udp_src: 50000,
        udp_dst: VXLAN_PORT,
        udp_checksum: 0,
        flags: VXLAN_FLAGS_VNI,
        vni,
    }
}

/// A VXLAN frame as a remote VTEP sends it.
fn outer(vni: u32, inner: &[u8]) -> Vec<u8> {
    repr(vni, REMOTE, LOCAL).encapsulate(inner)
}

struct Rig {
    pmd: Pmd,
    ports: PortTable,
    upcalls: odpx_dataplane::upcalls::UpcallReceiver,
    ctl: crossbeam_channel::Sender<PmdMsg>,
    counters: Arc<PmdCounters>,
}

impl Rig {
    fn new() -> Rig {
        let vx = |vni: Option<u32>| VxlanEndpoint {
            dst_port: VXLAN_PORT,
            vni,
            remote: Some(std::net::Ipv4Addr::from(REMOTE).into()),
            local: None,
        };
        let ports: PortTable = Arc::new(vec![
            None,
            Some(Arc::new(Port::memory(ACCESS, "a0", true))),
            Some(Arc::new(Port::memory(UNDERLAY, "u0", true))),
            Some(Arc::new(Port::vxlan(VX42, "vx42", vx(Some(42))))),
            Some(Arc::new(Port::vxlan(VX_ANY, "vxflow", vx(None)))),
        ]);
        let (utx, upcalls) = odpx_dataplane::upcalls::upcall_queues(ports.len(), 64);
        let (ctl, mrx) = crossbeam_channel::unbounded();
        // Reports (sweeps, barriers) are not looked at here.
        let (rtx, _) = crossbeam_channel::unbounded();
        let counters = Arc::new(PmdCounters::default());
        let cfg = PmdConfig {
            id: 0,
            core: None,
            rxqs: vec![(ACCESS, 0), (UNDERLAY, 0)],
            emc_entries: 1024,
            emc_insert_inv_prob: 1,
            emc_adaptive: true,
            idle_wait: None,
            megaflow_limit: 1000,
        };
        let slow = SlowPath {
            upcalls: utx,
            reports: rtx,
            to_userspace: odpx_dataplane::upcalls::UserspaceSender::none(),
        };
        Rig {
            pmd: Pmd::new(cfg, ports.clone(), slow, mrx, counters.clone()),
            ports,
            upcalls,
            ctl,
            counters,
        }
    }

    fn port(&self, no: u32) -> &Port {
        self.ports[no as usize].as_ref().unwrap()
    }

    fn install(&mut self, m: Match, actions: Vec<OdpAction>, packet: Option<(u32, Vec<u8>)>) {
        self.ctl
            .send(PmdMsg::Install {
                ufid: Ufid::of(&m, Holder::Pmd(0)),
                matched: Box::new(m),
                actions: actions.into(),
                packet,
            })
            .unwrap();
        self.pmd.poll_once();
    }

    /// The decap megaflow the translator gives the underlay.
    fn install_decap(&mut self, packet: Option<(u32, Vec<u8>)>) {
        let m = parse_key(&format!(
            "in_port({UNDERLAY}),eth(),eth_type(0x0800),ipv4(dst=172.31.0.1,proto=17,frag=no),udp(dst={VXLAN_PORT})"
        ))
        .unwrap()
        .matched;
        self.install(m, vec![OdpAction::TunnelPop(UNDERLAY)], packet);
    }
}

#[test]
fn decapsulated_packets_are_classified_again_on_their_vxlan_port() {
    let mut rig = Rig::new();
    let frame = outer(42, &inner(53, 18));
    rig.port(UNDERLAY).mem().unwrap().push_rx(frame.clone());
    rig.pmd.poll_once();
    let u = rig.upcalls.try_recv().expect("the outer packet misses");
    assert_eq!(u.in_port, UNDERLAY);
    // The decap megaflow, with the upcalled packet: it is popped and its
    // inner packet misses in turn, on the VXLAN port, with the metadata.
    rig.install_decap(Some((u.in_port, u.packet)));
    let u = rig.upcalls.try_recv().expect("the inner packet misses");
    assert_eq!(u.in_port, VX42);
    assert_eq!(u.packet, inner(53, 18), "the inner frame, outer headers gone");
    assert_eq!(u.key.tun_id, 42);
    assert_eq!((u.key.tun_ipv4_src, u.key.tun_ipv4_dst), (REMOTE, LOCAL));
    assert_eq!(u.key.tun_flags, tun_flag::KEY | tun_flag::DF);
    assert_eq!(
        (u.key.tun_tp_src, u.key.tun_tp_dst, u.key.tun_ttl),
        (50000, VXLAN_PORT, 64)
    );
    // The inner megaflow: to the access port.
    rig.install(
        Match::exact(&u.key),
        parse_actions("1").unwrap(),
        Some((u.in_port, u.packet)),
    );
    let ports = rig.ports.clone();
    let access = ports[ACCESS as usize].as_ref().unwrap().mem().unwrap();
    assert_eq!(access.take_tx(), vec![inner(53, 18)]);
    // From now on both passes hit, in one poll.
    for _ in 0..40 {
        rig.port(UNDERLAY).mem().unwrap().push_rx(frame.clone());
    }
    rig.pmd.poll_once();
    rig.pmd.poll_once();
    assert!(rig.upcalls.try_recv().is_none(), "no more upcalls");
    assert_eq!(access.take_tx(), vec![inner(53, 18); 40]);
    let s = rig.counters.snapshot();
    assert_eq!(s.packets, 41, "received packets count once");
    assert_eq!(s.recirculations, 41, "and each inner packet once more");
    let vx = rig.port(VX42).stats.snapshot();
    assert_eq!(vx.rx_packets, 41, "decapsulated, counted on the VXLAN port");
    assert_eq!(vx.rx_bytes, 41 * inner(53, 18).len() as u64);
}

#[test]
fn unknown_vnis_go_to_the_flow_port_or_are_counted() {
    let mut rig = Rig::new();
    rig.install_decap(None);
    // VNI 7: no fixed port, so the flow-key port (same remote) gets it.
    rig.port(UNDERLAY).mem().unwrap().push_rx(outer(7, &inner(53, 18)));
    rig.pmd.poll_once();
    let u = rig.upcalls.try_recv().unwrap();
    assert_eq!((u.in_port, u.key.tun_id), (VX_ANY, 7));
    // From another remote VTEP nobody claims it.
    let stranger = repr(7, 0xac1f_0009, LOCAL).encapsulate(&inner(53, 18));
    rig.port(UNDERLAY).mem().unwrap().push_rx(stranger);
    rig.pmd.poll_once();
    assert!(rig.upcalls.try_recv().is_none());
    let u0 = rig.port(UNDERLAY).stats.snapshot();
    assert_eq!(u0.decap_unknown_vni, 1);
}

#[test]
fn malformed_vxlan_is_counted_by_reason_and_dropped() {
    let mut rig = Rig::new();
    rig.install_decap(None);
    let good = outer(42, &inner(53, 18));
    let mut bad_flags = good.clone();
    bad_flags[VXLAN_OVER_IPV4 - 8] = 0x0c;
    let mut bad_csum = good.clone();
    bad_csum[22] ^= 1; // TTL without the checksum
    let mut short_udp = good.clone();
    short_udp[38..40].copy_from_slice(&20u16.to_be_bytes());
    let u = rig.port(UNDERLAY).mem().unwrap();
    for f in [bad_flags, bad_csum.clone(), short_udp] {
        u.push_rx(f);
    }
    rig.pmd.poll_once();
    let s = rig.port(UNDERLAY).stats.snapshot();
    assert_eq!(
        (s.decap_bad_flags, s.decap_bad_checksum, s.decap_malformed),
        (1, 1, 1),
        "{s:?}"
    );
    assert!(rig.port(ACCESS).mem().unwrap().take_tx().is_empty());
    assert_eq!(rig.counters.snapshot().recirculations, 0);
    // bad_csum only differs in the TTL: the megaflow matched it, the pop refused it.
    assert!(rig.upcalls.try_recv().is_none());
}

#[test]
fn tnl_push_encapsulates_onto_the_underlay_and_respects_its_mtu() {
    let mut rig = Rig::new();
    let r = repr(42, LOCAL, REMOTE);
    let mut header = vec![0u8; r.header_len()];
    r.emit(&mut header);
    let push = OdpAction::TunnelPush(TunnelPush {
        tnl_port: VX42,
        out_port: UNDERLAY,
        tnl_type: 4,
        header,
    });
    let m = parse_key(&format!("in_port({ACCESS}),eth(),eth_type(0x0800),ipv4(frag=no)"))
        .unwrap()
        .matched;
    rig.install(m, vec![push], None);
    let small = inner(53, 18);
    // A 1451-byte inner IP packet: 1501 bytes of outer IP, one too many.
    let big = inner(53, 1500 - 28 - 49);
    rig.port(ACCESS).mem().unwrap().push_rx(small.clone());
    rig.port(ACCESS).mem().unwrap().push_rx(big);
    rig.pmd.poll_once();
    let sent = rig.port(UNDERLAY).mem().unwrap().take_tx();
    assert_eq!(sent.len(), 1, "the big one exceeds the underlay's 1500-byte MTU");
    assert_eq!(&sent[0][VXLAN_OVER_IPV4..], &small[..]);
    let back = VxlanRepr::parse(&sent[0]).unwrap();
    assert_eq!(back.vni, 42);
    assert!(back.udp_src >= 49152);
    let vx = rig.port(VX42).stats.snapshot();
    assert_eq!((vx.tx_packets, vx.encap_too_big), (1, 1));
    assert_eq!(vx.tx_bytes, (small.len() + VXLAN_OVER_IPV4) as u64);
    // A larger underlay MTU lets it through.
    rig.port(UNDERLAY).mtu.store(9000, Ordering::Relaxed);
    rig.port(ACCESS).mem().unwrap().push_rx(inner(53, 1500 - 28 - 49));
    rig.pmd.poll_once();
    assert_eq!(rig.port(UNDERLAY).mem().unwrap().take_tx().len(), 1);
}
