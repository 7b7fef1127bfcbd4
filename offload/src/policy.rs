//! The offload policy: which megaflows of the userspace datapath move
//! into the kernel datapath, and when.
//!
//! # What
//! Hybrid mode's fast path is the PMDs; the kernel datapath carries what
//! is worth carrying there: megaflows that are *hot* (at least
//! [`OffloadSettings::min_pps`] packets a second) and *stable* (hot for at
//! least [`OffloadSettings::min_duration`]), whose actions the kernel can
//! run ([`kernel_runs`]), up to [`OffloadSettings::max_flows`] at a time.
//! * [`HotFlows`] follows each megaflow's packet count as the owner's
//!   sweeps read it (about every half second, active flows only) and says
//!   which are due ([`HotFlows::due`]), hottest first.
//! * A flow whose offload was refused is not proposed again until it
//!   changes ([`HotFlows::forget`], on revalidation or removal).
//!
//! # Why rates from sweeps
//! The PMDs count packets per megaflow anyway, and the owner reads the
//! counts of active flows at every sweep: the policy costs no work on the
//! PMD threads and no extra messages. A flow that stops being reported
//! active for [`STALE_AFTER`] sweeps is no longer followed.
//!
//! # Time
//! Every call takes `now`: the policy reads no clock, so its tests drive a
//! fake one.
//!
//! # Threads
//! Owned by the megaflow owner (`odpx-control`), used under its lock.

use odpx_classifier::key::{attr, tun_flag, FlowKey};
use odpx_classifier::odp::actions::TNL_TYPE_VXLAN;
use odpx_classifier::odp::{OdpAction, SetAction, TunnelPush};
use odpx_classifier::wire::{TunnelIp, VxlanRepr};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// When a megaflow moves into the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffloadSettings {
    /// Packets a second a megaflow must carry...
    pub min_pps: u64,
    /// ...for at least this long.
    pub min_duration: Duration,
    /// Offloaded megaflows at most (the steering table's size).
    pub max_flows: usize,
    /// How often the counts are read (the owner's sweep interval).
    pub interval: Duration,
}

/// Sweeps without a report after which a flow is no longer followed.
pub const STALE_AFTER: u32 = 3;

/// Set actions the kernel datapath runs, by attribute.
const KERNEL_SETS: u32 =
    attr::ETHERNET | attr::IPV4 | attr::IPV6 | attr::TCP | attr::UDP | attr::SCTP | attr::SKB_MARK | attr::PRIORITY;

/// Which port numbers are vports of the kernel datapath, and which of
/// those are its VXLAN tunnel vports.
pub trait KernelPorts {
    fn is_vport(&self, port: u32) -> bool;
    fn is_tunnel_vport(&self, port: u32) -> bool;
}

/// Can the kernel datapath run `actions` ([`kernel_actions`])?
pub fn kernel_runs(actions: &[OdpAction], ports: &impl KernelPorts) -> Result<(), String> {
    kernel_actions(actions, ports).map(drop)
}

/// The actions the kernel datapath runs for `actions`, or why it cannot.
/// The offloadable actions are outputs to vports, plain and masked sets
/// of the fields the kernel rewrites, VLAN push and pop, and a userspace
/// VXLAN push toward a port that has a kernel VXLAN vport: that one
/// becomes `set(tunnel(...))` with the header's VNI, addresses, TOS, TTL,
/// DF bit and UDP port, then an output to the vport, which routes and
/// encapsulates in the kernel; and a `clone` (a group bucket's copy) of
/// such actions. Anything else (decapsulation, recirculation, meters,
/// MPLS) stays in the PMDs.
pub fn kernel_actions(actions: &[OdpAction], ports: &impl KernelPorts) -> Result<Vec<OdpAction>, String> {
    let mut out = Vec::with_capacity(actions.len() + 1);
    for a in actions {
        match a {
            OdpAction::Output(p) if ports.is_vport(*p) => out.push(a.clone()),
            OdpAction::Output(p) => return Err(format!("output to port {p}, which is not a kernel vport")),
            OdpAction::Set(s) | OdpAction::SetMasked(s) if s.attr & !KERNEL_SETS == 0 && s.attr != 0 => {
                out.push(a.clone())
            }
            // Already the kernel's form of a tunnel push.
            OdpAction::Set(s) if s.attr == attr::TUNNEL => out.push(a.clone()),
            OdpAction::Set(_) | OdpAction::SetMasked(_) => {
                return Err("a set action the kernel does not run".into());
            }
            OdpAction::PushVlan { .. } | OdpAction::PopVlan => out.push(a.clone()),
            // A group bucket's copy: the kernel runs it if it runs what is inside.
            OdpAction::Clone(inner) => out.push(OdpAction::Clone(kernel_actions(inner, ports)?)),
            OdpAction::TunnelPush(t) if ports.is_tunnel_vport(t.tnl_port) => {
                out.push(tunnel_set(t)?);
                out.push(OdpAction::Output(t.tnl_port));
            }
            OdpAction::TunnelPush(t) => {
                return Err(format!(
                    "a tunnel push to port {}, which has no kernel tunnel vport",
                    t.tnl_port
                ))
            }
            OdpAction::TunnelPop(_) => return Err("userspace decapsulation".into()),
            // A packet-in: the kernel sends the packet up to the socket the
            // datapath's backend names, whose handler gives it to the agent.
            OdpAction::Userspace { .. } => out.push(a.clone()),
            other => {
                let name = odpx_classifier::odp::actions::format_actions(std::slice::from_ref(other));
                let name = name.split('(').next().unwrap_or(&name).to_string();
                return Err(format!("action {name}"));
            }
        }
    }
    Ok(out)
}

/// The `set(tunnel(...))` a kernel VXLAN vport encapsulates with, from a
/// userspace push's prebuilt header.
fn tunnel_set(t: &TunnelPush) -> Result<OdpAction, String> {
    if t.tnl_type != TNL_TYPE_VXLAN {
        return Err(format!("tunnel type {}", t.tnl_type));
    }
    let h = VxlanRepr::parse(&t.header).map_err(|e| format!("a tunnel header odpx cannot read ({e:?})"))?;
    let mut k = FlowKey::ZERO;
    k.attrs = attr::TUNNEL;
    k.tun_id = h.vni as u64;
    k.tun_flags = tun_flag::KEY;
    k.tun_tp_dst = h.udp_dst;
    let (tos, ttl, df) = h.ip.tos_ttl_df();
    (k.tun_tos, k.tun_ttl) = (tos, ttl);
    if df {
        k.tun_flags |= tun_flag::DF;
    }
    match h.ip {
        TunnelIp::V4 { src, dst, .. } => (k.tun_ipv4_src, k.tun_ipv4_dst) = (src, dst),
        TunnelIp::V6 { src, dst, .. } => (k.tun_ipv6_src, k.tun_ipv6_dst) = (src, dst),
    }
    Ok(OdpAction::Set(SetAction {
        attr: attr::TUNNEL,
        key: k,
        mask: crate::actions::tunnel_fields_given(&k),
    }))
}

#[derive(Clone, Copy, Debug)]
struct Track {
    packets: u64,
    seen: Instant,
    /// Since when every reading showed at least the minimum rate.
    hot_since: Option<Instant>,
    /// Packets a second between the last two readings.
    rate: u64,
    refused: bool,
}

/// The megaflows the policy follows, by id (see the module documentation).
pub struct HotFlows<K> {
    pub settings: OffloadSettings,
    tracks: HashMap<K, Track>,
}

impl<K: Copy + Eq + Hash + Ord> HotFlows<K> {
    pub fn new(settings: OffloadSettings) -> HotFlows<K> {
        HotFlows {
            settings,
            tracks: HashMap::new(),
        }
    }

    /// Flows followed.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Takes in a reading: `packets` carried so far by flow `id`.
    pub fn observe(&mut self, id: K, packets: u64, now: Instant) {
        let min_pps = self.settings.min_pps;
        let t = self.tracks.entry(id).or_insert(Track {
            packets,
            seen: now,
            hot_since: None,
            rate: 0,
            refused: false,
        });
        let dt = now.saturating_duration_since(t.seen);
        if dt.is_zero() {
            t.packets = t.packets.max(packets);
            return;
        }
        // Counts only grow; a smaller one is a flow installed again.
        let delta = packets.saturating_sub(t.packets);
        t.rate = (delta as f64 / dt.as_secs_f64()) as u64;
        if t.rate >= min_pps {
            t.hot_since.get_or_insert(t.seen);
        } else {
            t.hot_since = None;
        }
        t.packets = packets;
        t.seen = now;
    }

    /// Stops following `id` (removed, or changed: a refusal no longer holds).
    pub fn forget(&mut self, id: &K) {
        self.tracks.remove(id);
    }

    /// Its offload was refused: not proposed again until forgotten.
    pub fn refuse(&mut self, id: &K) {
        if let Some(t) = self.tracks.get_mut(id) {
            t.refused = true;
        }
    }

    /// The flows due for offload, hottest first, at most `room` of them;
    /// drops the flows no longer reported.
    pub fn due(&mut self, now: Instant, room: usize) -> Vec<K> {
        let stale = self.settings.interval * STALE_AFTER;
        self.tracks
            .retain(|_, t| now.saturating_duration_since(t.seen) <= stale);
        let min = self.settings.min_duration;
        let mut due: Vec<(u64, K)> = self
            .tracks
            .iter()
            .filter(|(_, t)| !t.refused && t.hot_since.is_some_and(|h| t.seen.saturating_duration_since(h) >= min))
            .map(|(k, t)| (t.rate, *k))
            .collect();
        due.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        due.into_iter().take(room).map(|(_, k)| k).collect()
    }

    /// The rate last measured for `id`, packets a second.
    pub fn rate(&self, id: &K) -> Option<u64> {
        self.tracks.get(id).map(|t| t.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::odp::actions::parse_actions;

    fn settings() -> OffloadSettings {
        OffloadSettings {
            min_pps: 1000,
            min_duration: Duration::from_secs(2),
            max_flows: 10,
            interval: Duration::from_millis(500),
        }
    }

    /// Readings every half second of flows at the given rates.
    fn run(h: &mut HotFlows<u32>, t0: Instant, rates: &[(u32, u64)], from: u32, to: u32, totals: &mut [u64]) {
        for step in from..=to {
            let now = t0 + Duration::from_millis(500 * step as u64);
            for &(id, pps) in rates {
                if step > 0 {
                    totals[id as usize] += pps / 2;
                }
                h.observe(id, totals[id as usize], now);
            }
        }
    }

    /// Vports 1 and 2, no tunnel vport.
    struct TwoVports;

    impl KernelPorts for TwoVports {
        fn is_vport(&self, port: u32) -> bool {
            matches!(port, 1 | 2)
        }
        fn is_tunnel_vport(&self, _port: u32) -> bool {
            false
        }
    }

    #[test]
    fn a_group_buckets_clone_runs_in_the_kernel_when_its_inside_does() {
        let fmt = |a: &[OdpAction]| odpx_classifier::odp::actions::format_actions(a);
        let acts = parse_actions("1,clone(set(eth(dst=00:00:00:00:00:09)),2)").unwrap();
        assert_eq!(fmt(&kernel_actions(&acts, &TwoVports).unwrap()), fmt(&acts));
        let to_pmd = parse_actions("clone(set(eth(dst=00:00:00:00:00:09)),3)").unwrap();
        assert!(kernel_runs(&to_pmd, &TwoVports).is_err());
    }

    #[test]
    fn a_flow_is_due_once_hot_for_the_minimum_duration_hottest_first() {
        let mut h = HotFlows::new(settings());
        let t0 = Instant::now();
        let mut totals = [0u64; 4];
        let rates = [(0, 5000), (1, 999), (2, 20_000), (3, 1000)];
        // After 1.5 s of readings: hot, but not for 2 s yet.
        run(&mut h, t0, &rates, 0, 3, &mut totals);
        assert!(h.due(t0 + Duration::from_millis(1500), 10).is_empty());
        // After 2 s: the three at or above 1000 pps, hottest first.
        run(&mut h, t0, &rates, 4, 4, &mut totals);
        assert_eq!(h.due(t0 + Duration::from_secs(2), 10), vec![2, 0, 3]);
        assert_eq!(h.due(t0 + Duration::from_secs(2), 2), vec![2, 0], "room for two");
        assert_eq!(h.rate(&1), Some(998), "999 pps read in half-second steps");
    }

    #[test]
    fn a_dip_below_the_rate_starts_the_clock_again_and_silence_forgets() {
        let mut h = HotFlows::new(settings());
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        h.observe(7u32, 0, at(0));
        h.observe(7, 1000, at(500));
        h.observe(7, 2000, at(1000));
        h.observe(7, 2100, at(1500)); // 200 pps: cooled down
        h.observe(7, 3100, at(2000));
        h.observe(7, 4100, at(2500));
        assert!(h.due(at(2500), 10).is_empty(), "hot again for 1 s only");
        h.observe(7, 5100, at(3000));
        h.observe(7, 6100, at(3500));
        h.observe(7, 7100, at(4000));
        assert_eq!(h.due(at(4000), 10), vec![7]);
        // Not reported for three sweeps: no longer followed.
        assert_eq!(h.due(at(5600), 10), Vec::<u32>::new());
        assert!(h.is_empty());
    }

    #[test]
    fn a_refused_flow_waits_until_it_is_forgotten() {
        let mut h = HotFlows::new(settings());
        let t0 = Instant::now();
        let mut totals = [0u64; 1];
        run(&mut h, t0, &[(0, 4000)], 0, 5, &mut totals);
        let now = t0 + Duration::from_millis(2500);
        assert_eq!(h.due(now, 10), vec![0]);
        h.refuse(&0);
        assert!(h.due(now, 10).is_empty());
        h.forget(&0);
        run(&mut h, t0, &[(0, 4000)], 6, 11, &mut totals);
        assert_eq!(h.due(t0 + Duration::from_millis(5500), 10), vec![0]);
    }

    #[test]
    fn a_count_that_goes_down_is_a_new_install_not_a_huge_rate() {
        let mut h = HotFlows::new(settings());
        let t0 = Instant::now();
        h.observe(1u32, 1_000_000, t0);
        h.observe(1, 10, t0 + Duration::from_millis(500));
        assert_eq!(h.rate(&1), Some(0));
    }

    /// Ports 1-3 are vports; 5 is a VXLAN vport; 6 a tunnel port without one.
    struct Ports;
    impl KernelPorts for Ports {
        fn is_vport(&self, p: u32) -> bool {
            (1..=3).contains(&p) || p == 5
        }
        fn is_tunnel_vport(&self, p: u32) -> bool {
            p == 5
        }
    }

    #[test]
    fn a_vxlan_push_becomes_set_tunnel_and_an_output_to_the_kernel_vport() {
        let push = |port: u32| {
            format!("tnl_push(tnl_port({port}),header(size=50,type=4,eth(dst=02:00:00:00:00:09,src=02:00:00:00:00:08,dl_type=0x0800),ipv4(src=172.31.0.1,dst=172.31.0.2,proto=17,tos=0x8,ttl=64,frag=0x4000),udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,vni=0x2a)),out_port(4))")
        };
        let got = kernel_actions(&parse_actions(&push(5)).unwrap(), &Ports).unwrap();
        let text = odpx_classifier::odp::actions::format_actions(&got);
        assert_eq!(
            text,
            "set(tunnel(tun_id=0x2a,src=172.31.0.1,dst=172.31.0.2,tos=0x8,ttl=64,tp_dst=4789,flags(df|key))),5"
        );
        let e = kernel_runs(&parse_actions(&push(6)).unwrap(), &Ports).unwrap_err();
        assert!(e.contains("no kernel tunnel vport"), "{e}");
        assert!(kernel_runs(&parse_actions("tnl_pop(4)").unwrap(), &Ports)
            .unwrap_err()
            .contains("decapsulation"));
    }

    #[test]
    fn only_actions_the_kernel_runs_are_offloadable() {
        let ok = |t: &str| kernel_runs(&parse_actions(t).unwrap(), &Ports);
        assert!(ok("2").is_ok());
        assert!(ok("drop").is_ok());
        assert!(ok("set(eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02)),push_vlan(vid=5,pcp=0),1,3").is_ok());
        assert!(ok("set(ipv4(dst=10.0.0.1/255.255.255.255)),set(tcp(dst=80)),pop_vlan,2").is_ok());
        assert!(ok("7").unwrap_err().contains("port 7"));
        assert!(
            ok("recirc(0x5)").unwrap_err().contains("recirc"),
            "{:?}",
            ok("recirc(0x5)")
        );
        // A packet-in: sent up to the handler's socket by the kernel.
        assert!(ok("userspace(pid=1),2").is_ok());
        assert!(ok("tnl_pop(4)").unwrap_err().contains("decapsulation"));
    }
}
