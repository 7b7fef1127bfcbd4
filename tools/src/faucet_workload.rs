//! Faucet's pipeline as a benchmark workload: the rules Faucet installs
//! for a routed pair of VLANs with N learned and resolved hosts, and the
//! traffic those hosts send, bridged and routed.
//!
//! Why: the OpenFlow issue measures forwarding "under Faucet's pipeline,
//! 1k hosts on two VLANs, routed and bridged" side by side with Open
//! vSwitch. A live Faucet would learn the hosts one packet-in at a time
//! and resolve each next hop by ARP, which a frame generator cannot
//! answer; and the two switches would then run different rule sets
//! (learning jitters the timeouts). So the bench loads the rules Faucet
//! would have installed once it had learned every host, the same text into
//! both switches. That they are Faucet's is a test's job: the Faucet
//! routing test (`tools/tests/faucet_netns.rs`) rebuilds, from the hosts a
//! live Faucet learned there, this module's rules for the test's layout,
//! and requires the very lines Faucet installed.
//!
//! The tables, as Faucet 1.9 numbers them with routing on: 0 vlan (native
//! VLAN tagging per port), 1 eth_src (learned sources; routed packets to
//! the router's MAC leave for the FIB), 2 ipv4_fib (a /32 per resolved
//! host in every routed VLAN, the connected subnets to the VIP table),
//! 3 vip (ARP and ICMP for the router, to the controller), 4 eth_dst
//! (learned destinations), 5 flood.
//!
//! Pure data: no I/O, no state beyond the layout.

use odpx_classifier::text::fmt_mac;
use std::net::Ipv4Addr;

/// Faucet's router MAC (its default `faucet_mac`).
pub const FAUCET_MAC: [u8; 6] = [0x0e, 0, 0, 0, 0, 1];
/// The cookie on every rule Faucet installs.
const COOKIE: &str = "cookie=0x5adc15c0";
/// The eth_src rules' hard timeout and the eth_dst rules' idle timeout as
/// Faucet sets them for `timeout: 3600` (before its jitter).
pub const HOST_HARD_TIMEOUT: u32 = 3600;
pub const HOST_IDLE_TIMEOUT: u32 = 5400;

/// A learned host: where it is, and (if Faucet resolved it) its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub port: u32,
    pub vlan: u16,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    /// Faucet resolved its address: it has FIB entries.
    pub routed: bool,
}

/// A routed VLAN: Faucet's VIP on it and the connected prefix length.
#[derive(Clone, Debug)]
pub struct Vip {
    pub vlan: u16,
    pub ip: Ipv4Addr,
    pub prefix: u8,
}

/// Ports (each on a native VLAN), the routed VLANs and the hosts.
#[derive(Clone, Debug)]
pub struct Layout {
    pub ports: Vec<(u32, u16)>,
    pub vips: Vec<Vip>,
    pub hosts: Vec<Host>,
}

/// The port the bench's hosts send from, and the two they send to.
pub const BENCH_SOURCE_PORT: u32 = 1;
pub const BENCH_BRIDGED_PORT: u32 = 2;
pub const BENCH_ROUTED_PORT: u32 = 3;

impl Layout {
    /// The bench's layout: ports 1 and 2 on VLAN 100, port 3 on VLAN 200,
    /// routed through 10.100.0.254/16 and 10.200.0.254/16; `n` hosts, a
    /// quarter behind port 1 (the senders), a quarter behind port 2 (the
    /// bridged destinations), half behind port 3 (the routed ones).
    pub fn bench(n: usize) -> Layout {
        let n = n.max(4);
        let (senders, bridged) = (n / 4, n / 4);
        let mut hosts = Vec::with_capacity(n);
        for i in 0..n {
            // k: the host's number within its VLAN.
            let (port, vlan, k) = if i < senders + bridged {
                let port = if i < senders {
                    BENCH_SOURCE_PORT
                } else {
                    BENCH_BRIDGED_PORT
                };
                (port, 100, i)
            } else {
                (BENCH_ROUTED_PORT, 200, i - senders - bridged)
            };
            let k = k as u32;
            let net = if vlan == 100 { 100 } else { 200 };
            hosts.push(Host {
                port,
                vlan,
                // Locally administered, unicast: 02:fa:VLAN-ish:port:k.
                mac: [0x02, 0xfa, net, port as u8, (k >> 8) as u8, k as u8],
                ip: Ipv4Addr::new(10, net, (k / 250) as u8, (k % 250 + 1) as u8),
                routed: true,
            });
        }
        Layout {
            ports: vec![(1, 100), (2, 100), (3, 200)],
            vips: vec![
                Vip {
                    vlan: 100,
                    ip: Ipv4Addr::new(10, 100, 0, 254),
                    prefix: 16,
                },
                Vip {
                    vlan: 200,
                    ip: Ipv4Addr::new(10, 200, 0, 254),
                    prefix: 16,
                },
            ],
            hosts,
        }
    }

    fn vlans(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.ports.iter().map(|&(_, v)| v).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The rules, in `ovs-ofctl add-flows` syntax (as `dump-flows` prints
    /// them, without ages and counters), table by table.
    pub fn rules(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rule = |table: u8, text: String| out.push(format!("{COOKIE}, table={table}, {text}"));
        let faucet = fmt_mac(&FAUCET_MAC);
        let vlans = self.vlans();
        let flood = |vlan: u16| {
            let outs: Vec<String> = self
                .ports
                .iter()
                .filter(|&&(_, v)| v == vlan)
                .map(|(p, _)| format!("output:{p}"))
                .collect();
            format!("pop_vlan,{}", outs.join(","))
        };
        // 0: vlan.
        for &(port, vlan) in &self.ports {
            rule(0, format!("priority=4096,in_port={port},vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,set_field:{}->vlan_vid,goto_table:1", 4096 + u32::from(vlan)));
        }
        rule(0, "priority=0 actions=drop".into());
        // 1: eth_src.
        rule(1, "priority=20490,dl_type=0x9000 actions=drop".into());
        rule(1, "priority=20480,dl_src=ff:ff:ff:ff:ff:ff actions=drop".into());
        rule(1, format!("priority=20480,dl_src={faucet} actions=drop"));
        for vip in &self.vips {
            rule(
                1,
                format!("priority=16384,arp,dl_vlan={} actions=goto_table:3", vip.vlan),
            );
            rule(
                1,
                format!(
                    "priority=16384,ip,dl_vlan={},dl_dst={faucet} actions=goto_table:2",
                    vip.vlan
                ),
            );
        }
        for h in &self.hosts {
            rule(1, format!("hard_timeout={HOST_HARD_TIMEOUT}, priority=8191,in_port={},dl_vlan={},dl_src={} actions=goto_table:4", h.port, h.vlan, fmt_mac(&h.mac)));
        }
        for &vlan in &vlans {
            rule(
                1,
                format!("priority=4096,dl_vlan={vlan} actions=CONTROLLER:96,goto_table:4"),
            );
        }
        rule(1, "priority=0 actions=goto_table:4".into());
        // 2: ipv4_fib.
        for vip in &self.vips {
            rule(
                2,
                format!(
                    "priority=12320,ip,dl_vlan={},nw_dst={} actions=goto_table:3",
                    vip.vlan, vip.ip
                ),
            );
        }
        for h in self.hosts.iter().filter(|h| h.routed) {
            for vip in &self.vips {
                rule(2, format!("priority=12320,ip,dl_vlan={},nw_dst={} actions=dec_ttl,set_field:{}->vlan_vid,set_field:{faucet}->eth_src,set_field:{}->eth_dst,goto_table:4", vip.vlan, h.ip, 4096 + u32::from(h.vlan), fmt_mac(&h.mac)));
            }
        }
        for from in &self.vips {
            for to in &self.vips {
                let net = u32::from(to.ip) & (!0u32).checked_shl(32 - u32::from(to.prefix)).unwrap_or(0);
                rule(
                    2,
                    format!(
                        "priority={},ip,dl_vlan={},nw_dst={}/{} actions=goto_table:3",
                        12288 + u32::from(to.prefix),
                        from.vlan,
                        Ipv4Addr::from(net),
                        to.prefix
                    ),
                );
            }
        }
        rule(2, "priority=0 actions=drop".into());
        // 3: vip.
        for vip in &self.vips {
            rule(
                3,
                format!(
                    "priority=12320,arp,dl_dst=ff:ff:ff:ff:ff:ff,arp_tpa={} actions=CONTROLLER:64",
                    vip.ip
                ),
            );
        }
        rule(3, format!("priority=12320,arp,dl_dst={faucet} actions=CONTROLLER:64"));
        rule(3, "priority=12319,arp actions=goto_table:4".into());
        rule(3, format!("priority=12319,icmp,dl_dst={faucet} actions=CONTROLLER:174"));
        rule(3, "priority=12318,icmp actions=CONTROLLER:194,goto_table:4".into());
        rule(3, format!("priority=12317,ip,dl_dst={faucet} actions=CONTROLLER:194"));
        rule(3, "priority=12316,ip actions=CONTROLLER:194,goto_table:4".into());
        rule(3, "priority=0 actions=drop".into());
        // 4: eth_dst.
        for h in &self.hosts {
            rule(
                4,
                format!(
                    "idle_timeout={HOST_IDLE_TIMEOUT}, priority=8192,dl_vlan={},dl_dst={} actions=pop_vlan,output:{}",
                    h.vlan,
                    fmt_mac(&h.mac),
                    h.port
                ),
            );
        }
        rule(4, "priority=0 actions=goto_table:5".into());
        // 5: flood.
        rule(5, "priority=8240,dl_dst=01:00:0c:cc:cc:cc actions=drop".into());
        rule(5, "priority=8240,dl_dst=01:00:0c:cc:cc:cd actions=drop".into());
        rule(
            5,
            "priority=8236,dl_dst=01:80:c2:00:00:00/ff:ff:ff:ff:ff:f0 actions=drop".into(),
        );
        for &vlan in &vlans {
            let f = flood(vlan);
            rule(
                5,
                format!("priority=8240,dl_vlan={vlan},dl_dst=ff:ff:ff:ff:ff:ff actions={f}"),
            );
            rule(
                5,
                format!("priority=8216,dl_vlan={vlan},dl_dst=01:80:c2:00:00:00/ff:ff:ff:00:00:00 actions={f}"),
            );
            rule(
                5,
                format!("priority=8216,dl_vlan={vlan},dl_dst=01:00:5e:00:00:00/ff:ff:ff:00:00:00 actions={f}"),
            );
            rule(
                5,
                format!("priority=8208,dl_vlan={vlan},dl_dst=33:33:00:00:00:00/ff:ff:00:00:00:00 actions={f}"),
            );
            rule(5, format!("priority=8192,dl_vlan={vlan} actions={f}"));
        }
        rule(5, "priority=0 actions=drop".into());
        out
    }

    /// `n_flows` UDP flows from the hosts behind [`BENCH_SOURCE_PORT`]
    /// (untagged, as on a native-VLAN port), half bridged to a host behind
    /// [`BENCH_BRIDGED_PORT`] and half routed (to Faucet's MAC) to one
    /// behind [`BENCH_ROUTED_PORT`]; each flow a random pair and source
    /// port, drawn with Zipf(`zipf`) popularity into a replay loop of 64k
    /// frames of `size` bytes.
    pub fn frames(&self, n_flows: usize, zipf: f64, size: usize) -> Result<Vec<Vec<u8>>, String> {
        use rand::Rng;
        let at = |port: u32| -> Vec<&Host> { self.hosts.iter().filter(|h| h.port == port).collect() };
        let (senders, bridged, routed) = (at(BENCH_SOURCE_PORT), at(BENCH_BRIDGED_PORT), at(BENCH_ROUTED_PORT));
        if senders.is_empty() || bridged.is_empty() || routed.is_empty() {
            return Err("the layout has no host behind a bench port".into());
        }
        let mut r = odpx_dataplane::workload::rng(13);
        let flows: Vec<Vec<u8>> = (0..n_flows.max(1))
            .map(|i| {
                let src = senders[r.gen_range(0..senders.len())];
                let (dst_mac, dst) = if i % 2 == 0 {
                    let d = bridged[r.gen_range(0..bridged.len())];
                    (d.mac, d)
                } else {
                    (FAUCET_MAC, routed[r.gen_range(0..routed.len())])
                };
                let sport = r.gen_range(1024..65535u16);
                let mut f = Vec::new();
                etherparse::PacketBuilder::ethernet2(src.mac, dst_mac)
                    .ipv4(src.ip.octets(), dst.ip.octets(), 64)
                    .udp(sport, 7)
                    .write(&mut f, &[0u8; 6])
                    .map_err(|e| e.to_string())?;
                if f.len() < size {
                    f.resize(size, 0);
                }
                Ok(f)
            })
            .collect::<Result<_, String>>()?;
        let z = odpx_dataplane::workload::Zipf::new(flows.len(), zipf);
        Ok((0..65536).map(|_| flows[z.sample(&mut r)].clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_layout_has_its_hosts_and_their_rules() {
        let l = Layout::bench(1000);
        assert_eq!(l.hosts.len(), 1000);
        let rules = l.rules();
        // Per host: an eth_src and an eth_dst rule, and a FIB entry in
        // each of the two routed VLANs.
        let per_host = |needle: &str| rules.iter().filter(|r| r.contains(needle)).count();
        assert_eq!(per_host("priority=8191,"), 1000);
        assert_eq!(per_host("idle_timeout="), 1000);
        assert_eq!(per_host("dec_ttl"), 2000);
        assert!(rules.contains(
            &"cookie=0x5adc15c0, table=2, priority=12304,ip,dl_vlan=100,nw_dst=10.200.0.0/16 actions=goto_table:3"
                .to_string()
        ));
        let macs: std::collections::HashSet<_> = l.hosts.iter().map(|h| h.mac).collect();
        let ips: std::collections::HashSet<_> = l.hosts.iter().map(|h| (h.vlan, h.ip)).collect();
        assert_eq!((macs.len(), ips.len()), (1000, 1000), "hosts are distinct");
    }

    #[test]
    fn frames_are_bridged_and_routed_from_the_senders() {
        let l = Layout::bench(1000);
        let frames = l.frames(100, 1.0, 64).unwrap();
        assert_eq!(frames.len(), 65536);
        fn eth(f: &[u8]) -> odpx_classifier::wire::EthernetFrame<&[u8]> {
            odpx_classifier::wire::EthernetFrame::new_checked(f).unwrap()
        }
        let routed = frames.iter().filter(|f| eth(f).dst() == FAUCET_MAC).count();
        assert!(
            routed > 0 && routed < frames.len(),
            "{routed} of {} routed",
            frames.len()
        );
        for f in &frames {
            assert_eq!(f.len(), 64);
            let src = eth(f).src();
            assert!(l.hosts.iter().any(|h| h.port == BENCH_SOURCE_PORT && h.mac == src));
        }
    }
}
