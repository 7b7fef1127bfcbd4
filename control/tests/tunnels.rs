//! The VXLAN gateway on in-memory ports, PMD and translator threads, with
//! the underlay given as rtnetlink changes: encapsulation in one pass,
//! packets waiting for a next hop's MAC address and sent once it comes,
//! decapsulation to the VXLAN port with MAC learning across the tunnel,
//! route and neighbour changes followed, unknown VNIs and a flow-based
//! port.

use odpx_classifier::wire::{TunnelIp, VxlanRepr, IPV4_DF, VXLAN_FLAGS_VNI, VXLAN_OVER_IPV4, VXLAN_PORT};
use odpx_control::config::Config;
use odpx_control::ctl::command;
use odpx_control::start::UnderlaySource;
use odpx_control::switch::Switch;
use odpx_dataplane::port::Port;
use odpx_offload::rtnl::{nud, route_type, Address, Change, Link, Neighbour, Route, RT_TABLE_MAIN};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const ACCESS: usize = 1;
const VX: usize = 2;
const VXFLOW: usize = 3;
const UNDERLAY: usize = 4;
const U0_IFINDEX: u32 = 7;
const U0_MAC: [u8; 6] = [2, 0, 0, 0, 0xee, 1];
const VTEP_MAC: [u8; 6] = [2, 0, 0, 0, 0xee, 2];
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const SITE_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x64];
const W: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(300);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn route(dst: &str, len: u8, gw: Option<&str>) -> Route {
    Route {
        table: RT_TABLE_MAIN,
        kind: route_type::UNICAST,
        dst: ip(dst),
        prefix_len: len,
        oif: Some(U0_IFINDEX),
        gateway: gw.map(ip),
        prefsrc: None,
        metric: 0,
    }
}

fn neighbour(addr: &str, mac: [u8; 6]) -> Change {
    Change::Neighbour(Neighbour {
        ifindex: U0_IFINDEX,
        addr: ip(addr),
        mac: Some(mac),
        state: nud::REACHABLE,
    })
}

/// The underlay without neighbours: u0 at 172.31.0.1/24.
fn underlay() -> Vec<Change> {
    vec![
        Change::Link(Link {
            ifindex: U0_IFINDEX,
            name: "u0".into(),
            mac: Some(U0_MAC),
            mtu: 1500,
            up: true,
        }),
        Change::Address(Address {
            ifindex: U0_IFINDEX,
            addr: ip("172.31.0.1"),
            prefix_len: 24,
        }),
        Change::Route(route("172.31.0.0", 24, None)),
    ]
}

fn gateway(rules: &[&str]) -> Switch {
    let rules: Vec<String> = rules.iter().map(|r| format!("{r:?}")).collect();
    let cfg = Config::parse(
        &format!(
            r#"[switch]
rules_inline = [{}]
[[port]]
name = "a0"
type = "memory"
[[port]]
name = "vx0"
type = "vxlan"
remote_ip = "172.31.0.2"
key = 42
[[port]]
name = "vxf"
type = "vxlan"
remote_ip = "flow"
key = "flow"
dst_port = 8472
[[port]]
name = "u0"
type = "underlay"
[pmd]
cores = [0]
[cache]
emc_insert_inv_prob = 1
"#,
            rules.join(",")
        ),
        Path::new("/"),
    )
    .unwrap();
    let eps = cfg.vxlan_endpoints();
    let ports = vec![
        Port::memory(1, "a0", true),
        Port::vxlan(2, "vx0", eps[0].1),
        Port::vxlan(3, "vxf", eps[1].1),
        Port::memory(4, "u0", true),
    ];
    Switch::start_with_ports_on(&cfg, ports, UnderlaySource::Given(underlay())).unwrap()
}

fn change(sw: &Switch, changes: Vec<Change>) {
    sw.owner().underlay_changed(changes, false);
    sw.sync().unwrap();
}

fn push(sw: &Switch, no: usize, f: Vec<u8>) {
    sw.ports[no].as_ref().unwrap().mem().unwrap().push_rx(f);
}

fn sent(sw: &Switch, no: usize, want: usize, wait: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    loop {
        got.extend(sw.ports[no].as_ref().unwrap().mem().unwrap().take_tx());
        if got.len() >= want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn inner(src: [u8; 6], dst: [u8; 6], sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 0, 0, src[5]], [10, 0, 0, dst[5]], 64)
        .udp(sport, 7)
        .write(&mut f, &[0u8; 18])
        .unwrap();
    f
}

/// A VXLAN frame from the remote VTEP (172.31.0.2) to us.
fn from_vtep(vni: u32, udp_dst: u16, payload: &[u8]) -> Vec<u8> {
    let r = VxlanRepr {
        eth_dst: U0_MAC,
        eth_src: VTEP_MAC,
        ip: TunnelIp::V4 {
            src: 0xac1f_0002,
            dst: 0xac1f_0001,
            tos: 0,
            ttl: 64,
            frag: IPV4_DF,
        },
        udp_src: 51000,
        udp_dst,
        udp_checksum: 0,
        flags: VXLAN_FLAGS_VNI,
        vni,
    };
    r.encapsulate(payload)
}

fn show(sw: &Switch) -> String {
    command(sw, "show")
}

#[test]
fn encapsulation_waits_for_the_next_hop_then_runs_in_one_pass() {
    let mut sw = gateway(&["priority=0,actions=NORMAL"]);
    // Unknown destination: NORMAL floods to the tunnel; the remote VTEP's
    // MAC is not known yet, so the packet waits.
    push(&sw, ACCESS, inner(HOST_MAC, SITE_MAC, 1000));
    assert!(sent(&sw, UNDERLAY, 1, SHORT).is_empty(), "nothing before the neighbour");
    assert!(show(&sw).contains("waiting:1 parked:1"), "{}", show(&sw));
    change(&sw, vec![neighbour("172.31.0.2", VTEP_MAC)]);
    let out = sent(&sw, UNDERLAY, 1, W);
    assert_eq!(out.len(), 1, "the parked packet leaves once the neighbour is known");
    let r = VxlanRepr::parse(&out[0]).unwrap();
    assert_eq!(
        (r.eth_src, r.eth_dst, r.vni, r.udp_dst),
        (U0_MAC, VTEP_MAC, 42, VXLAN_PORT)
    );
    assert_eq!(
        r.ip,
        TunnelIp::V4 {
            src: 0xac1f_0001,
            dst: 0xac1f_0002,
            tos: 0,
            ttl: 64,
            frag: IPV4_DF
        }
    );
    assert_eq!(&out[0][VXLAN_OVER_IPV4..], &inner(HOST_MAC, SITE_MAC, 1000)[..]);
    // The next packets install the megaflow and hit it.
    for _ in 0..3 {
        push(&sw, ACCESS, inner(HOST_MAC, SITE_MAC, 1000));
    }
    assert_eq!(sent(&sw, UNDERLAY, 3, W).len(), 3);
    let mf = command(&sw, "dump-megaflows");
    assert!(mf.contains("tnl_push(tnl_port(2)"), "{mf}");
    assert!(mf.contains("out_port(4)"), "{mf}");
    assert!(show(&sw).contains("released:1 dropped:0"), "{}", show(&sw));
    let vx = sw.ports[VX].as_ref().unwrap().stats.snapshot();
    assert_eq!(vx.tx_packets, 4, "encapsulations are counted on the tunnel port");
    sw.stop();
}

#[test]
fn decapsulated_frames_are_switched_and_teach_the_mac_table() {
    let mut sw = gateway(&["priority=0,actions=NORMAL"]);
    change(&sw, vec![neighbour("172.31.0.2", VTEP_MAC)]);
    // The site's host talks first: learned behind vx0, flooded to a0.
    push(&sw, UNDERLAY, from_vtep(42, VXLAN_PORT, &inner(SITE_MAC, HOST_MAC, 7)));
    let got = sent(&sw, ACCESS, 1, W);
    assert_eq!(got, vec![inner(SITE_MAC, HOST_MAC, 7)]);
    let macs = command(&sw, "mac-table");
    assert!(
        macs.contains("02:00:00:00:00:64") && macs.lines().any(|l| l.trim_start().starts_with("2 ")),
        "{macs}"
    );
    // The answer goes straight to the tunnel, no flood, no waiting.
    push(&sw, ACCESS, inner(HOST_MAC, SITE_MAC, 7));
    let out = sent(&sw, UNDERLAY, 1, W);
    assert_eq!(out.len(), 1);
    assert_eq!(VxlanRepr::parse(&out[0]).unwrap().vni, 42);
    let vx = sw.ports[VX].as_ref().unwrap().stats.snapshot();
    assert_eq!((vx.rx_packets, vx.tx_packets), (1, 1));
    // A VNI nobody has and a flow-based port's UDP port: the flow port
    // takes any VNI on 8472; 4789 with VNI 7 is nobody's.
    push(&sw, UNDERLAY, from_vtep(7, VXLAN_PORT, &inner(SITE_MAC, HOST_MAC, 8)));
    push(&sw, UNDERLAY, from_vtep(7, 8472, &inner(SITE_MAC, HOST_MAC, 9)));
    let counted = || {
        let u0 = sw.ports[UNDERLAY].as_ref().unwrap().stats.snapshot();
        let vxf = sw.ports[VXFLOW].as_ref().unwrap().stats.snapshot();
        (u0.decap_unknown_vni, vxf.rx_packets)
    };
    let t = Instant::now();
    while counted().0 + counted().1 < 2 && t.elapsed() < W {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(counted(), (1, 1), "{}", show(&sw));
    // Something that is not VXLAN for us on the underlay is not switched.
    push(&sw, UNDERLAY, inner(SITE_MAC, HOST_MAC, 10));
    assert!(
        sent(&sw, ACCESS, 3, SHORT).len() <= 2,
        "underlay traffic is not switched"
    );
    sw.stop();
}

#[test]
fn route_and_neighbour_changes_reach_installed_megaflows() {
    let mut sw = gateway(&["priority=0,in_port=1,actions=output:2"]);
    change(&sw, vec![neighbour("172.31.0.2", VTEP_MAC)]);
    push(&sw, ACCESS, inner(HOST_MAC, SITE_MAC, 1));
    assert_eq!(sent(&sw, UNDERLAY, 1, W).len(), 1);
    // The far VTEP moves to another MAC: the installed megaflow is given
    // the new header in place.
    let moved = [2, 0, 0, 0, 0xee, 3];
    change(&sw, vec![neighbour("172.31.0.2", moved)]);
    push(&sw, ACCESS, inner(HOST_MAC, SITE_MAC, 1));
    let out = sent(&sw, UNDERLAY, 1, W);
    assert_eq!(VxlanRepr::parse(&out[0]).unwrap().eth_dst, moved);
    // The remote now lies behind a gateway (a /32 via 172.31.0.254).
    change(
        &sw,
        vec![
            Change::Route(route("172.31.0.2", 32, Some("172.31.0.254"))),
            neighbour("172.31.0.254", [2, 0, 0, 0, 0xee, 0xfe]),
        ],
    );
    push(&sw, ACCESS, inner(HOST_MAC, SITE_MAC, 1));
    let out = sent(&sw, UNDERLAY, 1, W);
    assert_eq!(VxlanRepr::parse(&out[0]).unwrap().eth_dst, [2, 0, 0, 0, 0xee, 0xfe]);
    // No route at all: the tunnel output is left out and counted.
    change(
        &sw,
        vec![
            Change::RouteGone(route("172.31.0.2", 32, Some("172.31.0.254"))),
            Change::RouteGone(route("172.31.0.0", 24, None)),
        ],
    );
    push(&sw, ACCESS, inner(HOST_MAC, SITE_MAC, 1));
    assert!(sent(&sw, UNDERLAY, 1, SHORT).is_empty());
    assert!(show(&sw).contains("no_route:"), "{}", show(&sw));
    assert!(!show(&sw).contains("no_route:0"), "{}", show(&sw));
    sw.stop();
}

#[test]
fn a_flow_based_port_takes_remote_and_vni_from_the_rules() {
    let mut sw = gateway(&[
        "priority=1,in_port=1,actions=set_field:172.31.0.9->tun_dst,set_tunnel:77,output:3",
        "priority=1,in_port=3,tun_id=77,actions=output:1",
    ]);
    change(&sw, vec![neighbour("172.31.0.9", [2, 0, 0, 0, 0xee, 9])]);
    push(&sw, ACCESS, inner(HOST_MAC, SITE_MAC, 1));
    let out = sent(&sw, UNDERLAY, 1, W);
    assert_eq!(out.len(), 1, "{}", show(&sw));
    let r = VxlanRepr::parse(&out[0]).unwrap();
    assert_eq!((r.vni, r.udp_dst, r.eth_dst), (77, 8472, [2, 0, 0, 0, 0xee, 9]));
    let TunnelIp::V4 { dst, .. } = r.ip else { panic!("IPv4") };
    assert_eq!(dst, 0xac1f_0009);
    // Back in: only VNI 77 matches the rule on the flow port.
    push(&sw, UNDERLAY, from_vtep(77, 8472, &inner(SITE_MAC, HOST_MAC, 2)));
    push(&sw, UNDERLAY, from_vtep(78, 8472, &inner(SITE_MAC, HOST_MAC, 3)));
    let got = sent(&sw, ACCESS, 2, SHORT);
    assert_eq!(got, vec![inner(SITE_MAC, HOST_MAC, 2)]);
    sw.stop();
}
