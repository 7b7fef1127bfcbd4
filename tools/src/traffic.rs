//! Traffic for benchmarks: `odpx gen` (an AF_XDP frame generator) and
//! `odpx fwd` (a bare AF_XDP forwarder without lookup: the I/O ceiling an
//! AF_XDP switch on this machine can reach), plus the workloads shared with
//! Open vSwitch in side-by-side runs (`odpx workload`).

use odpx_dataplane::port::{Port, RxBatch, TxStage};
use odpx_dataplane::sys::fd::ifindex;
use odpx_dataplane::sys::time::cycles;
use odpx_dataplane::sys::xsk::XskSocket;
use odpx_dataplane::workload::{acl_routing_rules_text, flows, frame_of, rng, Zipf};
use odpx_dataplane::xdp::RedirectProgram;
use odpx_tools::faucet_workload::Layout;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

type R = Result<ExitCode, String>;

/// The frames of a workload: `p2p` is one UDP flow; `gateway` is `flows`
/// connections of the hit-rate bench mix, drawn with Zipf(`zipf`)
/// popularity into a replay loop of 64k frames; `macs` is `flows` frames
/// of one UDP flow, each from its own source MAC address (sent once each,
/// and with a rule that matches on `dl_src`, each a new megaflow: a flow
/// setup benchmark); `faucet` is `flows` flows of `hosts` hosts through
/// Faucet's pipeline ([`Layout::bench`]).
pub fn workload_frames(
    kind: &str,
    n_flows: usize,
    hosts: usize,
    zipf: f64,
    size: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let pad = |mut f: Vec<u8>| {
        if f.len() < size {
            f.resize(size, 0);
        }
        f
    };
    match kind {
        "p2p" => Ok(vec![pad(frame_of(&flows(1, 7)[0]))]),
        "gateway" => {
            let keys = flows(n_flows.max(1), 7);
            let z = Zipf::new(keys.len(), zipf);
            let mut r = rng(11);
            Ok((0..65536).map(|_| pad(frame_of(&keys[z.sample(&mut r)]))).collect())
        }
        "macs" => {
            let base = frame_of(&flows(1, 7)[0]);
            Ok((0..n_flows.max(1) as u32)
                .map(|i| {
                    let mut f = base.clone();
                    // Locally administered, unicast, numbered.
                    let mut mac = [0x02, 0xa0, 0, 0, 0, 0];
                    mac[2..].copy_from_slice(&i.to_be_bytes());
                    if let Ok(mut eth) = odpx_classifier::wire::EthernetFrame::new_checked(&mut f[..]) {
                        eth.set_src(mac);
                    }
                    pad(f)
                })
                .collect())
        }
        "faucet" => Layout::bench(hosts).frames(n_flows, zipf, size),
        other => Err(format!("unknown workload '{other}' (p2p, gateway, macs, faucet)")),
    }
}

/// `odpx workload --rules N --out-port P`: the ACL + routing rule set
/// with every output going to port P; `--faucet-hosts N`: Faucet's
/// pipeline with N hosts ([`Layout::bench`]) instead. Both switches of a
/// side-by-side run load the same text.
pub fn rules(n: usize, out_port: u32, faucet_hosts: Option<usize>) -> R {
    use std::io::Write;
    let out = std::io::stdout();
    let mut out = out.lock();
    if let Some(hosts) = faucet_hosts {
        for line in Layout::bench(hosts).rules() {
            if writeln!(out, "{line}").is_err() {
                break;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    for line in acl_routing_rules_text(n, 3) {
        let l = match line.find("output:") {
            Some(i) => format!("{}output:{out_port}", &line[..i]),
            None => line,
        };
        if writeln!(out, "{l}").is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `odpx gen` sends.
pub struct GenArgs<'a> {
    pub iface: &'a str,
    /// `p2p`, `gateway`, `macs` or `faucet` (see [`workload_frames`]).
    pub workload: &'a str,
    pub flows: usize,
    /// The `faucet` workload's hosts.
    pub hosts: usize,
    pub zipf: f64,
    /// Packets per second; 0: as fast as possible.
    pub rate: u64,
    pub size: usize,
    pub duration: f64,
    pub core: Option<usize>,
    /// `DST_MAC,SRC_IP,DST_IP,VNI`: send every frame inside VXLAN, as a
    /// remote VTEP would (outer source MAC: the interface's; UDP source
    /// port: a hash of the inner flow).
    pub vxlan: Option<&'a str>,
    /// New flows a second on top of the workload ([`ChurnFrames`]).
    pub churn: u64,
}

/// The UDP destination port of churn frames (rules tell them apart by it).
pub const CHURN_PORT: u16 = 9;

/// Frames of new flows, one new 5-tuple each: UDP to [`CHURN_PORT`] from
/// a source address in 10.128.0.0/9 and a source port that no earlier
/// frame of the run had together (8 million addresses, then the ports
/// move on), as a port scan or a SYN flood brings them; each from its own
/// source MAC address too (`02:c0:` and the flow's number), so that a
/// rule on `dl_src` makes each a megaflow of its own in any switch (Open
/// vSwitch's prefix tries keep address and port rules from doing that).
pub struct ChurnFrames {
    template: Vec<u8>,
    next: u64,
}

impl ChurnFrames {
    pub fn new() -> ChurnFrames {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 128, 0, 0], [10, 1, 0, 1], 64)
            .udp(1024, CHURN_PORT);
        let mut template = Vec::new();
        b.write(&mut template, &[0u8; 18]).expect("a fixed frame");
        ChurnFrames { template, next: 0 }
    }

    /// The bytes of each frame.
    pub fn frame_len(&self) -> usize {
        self.template.len()
    }

    /// Writes the next new flow's frame into `out` (`frame_len()` bytes).
    pub fn write_next(&mut self, out: &mut [u8]) {
        use odpx_classifier::wire::{Ipv4Header, UdpHeader, ETHERNET_LEN};
        let i = self.next;
        self.next += 1;
        out.copy_from_slice(&self.template);
        use odpx_classifier::wire::EthernetFrame;
        if let Ok(mut e) = EthernetFrame::new_checked(&mut *out) {
            let n = (i as u32).to_be_bytes();
            e.set_src([0x02, 0xc0, n[0], n[1], n[2], n[3]]);
        }
        // A multiplicative hash spreads consecutive flows over the /9.
        let host = (i as u32).wrapping_mul(2_654_435_761) & 0x007f_ffff;
        let sport = 1024 + ((i >> 23) % 60_000) as u16;
        let ip = &mut out[ETHERNET_LEN..];
        if let Ok(mut h) = Ipv4Header::new_checked(&mut *ip) {
            h.set_src(0x0a80_0000 | host);
            h.fill_checksum();
        }
        if let Ok(mut u) = UdpHeader::new_checked(&mut ip[Ipv4Header::<&[u8]>::LEN..]) {
            u.set_src_port(sport);
            // IPv4 UDP may go without a checksum.
            u.set_checksum(0);
        }
    }
}

impl Default for ChurnFrames {
    fn default() -> Self {
        ChurnFrames::new()
    }
}

/// Wraps `frames` in VXLAN as `--vxlan DST_MAC,SRC_IP,DST_IP,VNI` says,
/// from an interface with MAC `src_mac`.
pub fn vxlan_wrap(frames: Vec<Vec<u8>>, spec: &str, src_mac: [u8; 6]) -> Result<Vec<Vec<u8>>, String> {
    use odpx_classifier::wire::{TunnelIp, VxlanRepr, IPV4_DF, VXLAN_FLAGS_VNI, VXLAN_PORT};
    let bad = || format!("--vxlan {spec}: expected DST_MAC,SRC_IP,DST_IP,VNI");
    let parts: Vec<&str> = spec.split(',').collect();
    let [mac, src, dst, vni] = parts[..] else {
        return Err(bad());
    };
    let eth_dst = odpx_classifier::text::parse_mac(mac).ok_or_else(bad)?;
    let vni: u32 = vni.parse().map_err(|_| bad())?;
    let ip = match (src.parse().map_err(|_| bad())?, dst.parse().map_err(|_| bad())?) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => TunnelIp::V4 {
            src: s.into(),
            dst: d.into(),
            tos: 0,
            ttl: 64,
            frag: IPV4_DF,
        },
        (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => TunnelIp::V6 {
            src: s.octets(),
            dst: d.octets(),
            class: 0,
            label: 0,
            hop_limit: 64,
        },
        _ => return Err(format!("--vxlan {spec}: the addresses are of different families")),
    };
    Ok(frames
        .into_iter()
        .map(|inner| {
            VxlanRepr {
                eth_dst,
                eth_src: src_mac,
                ip,
                udp_src: odpx_dataplane::tunnel::source_port(&inner),
                udp_dst: VXLAN_PORT,
                udp_checksum: 0,
                flags: VXLAN_FLAGS_VNI,
                vni,
            }
            .encapsulate(&inner)
        })
        .collect())
}

/// `odpx gen IFACE`: sends frames with AF_XDP as fast as `rate` allows
/// for `duration` seconds, plus `churn` frames of new flows a second,
/// then prints `sent N packets in S s (R pps)` (and the new flows).
pub fn gen(a: &GenArgs) -> R {
    let (iface, rate, core) = (a.iface, a.rate, a.core);
    // `none`: no workload, only the churn.
    let mut frames = match a.workload {
        "none" if a.churn > 0 => Vec::new(),
        _ => workload_frames(a.workload, a.flows, a.hosts, a.zipf, a.size)?,
    };
    if let Some(spec) = a.vxlan {
        let mac = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
            .map_err(|e| format!("{iface}: {e}"))
            .and_then(|m| odpx_classifier::text::parse_mac(m.trim()).ok_or(format!("{iface}: no MAC address")))?;
        frames = vxlan_wrap(frames, spec, mac)?;
    }
    let duration = a.duration;
    let stop = odpx_tools::stop_flag()?;
    if let Some(c) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    let i = ifindex(iface).map_err(|e| e.to_string())?;
    // An XDP program on the sending veth too: copy-mode TX into a veth is
    // delivered reliably only then (shared notes).
    let _prog = RedirectProgram::attach(i, 1).map_err(|e| format!("{iface}: {e}"))?;
    let mut s = XskSocket::bind(i, 0).map_err(|e| format!("{iface}: {e}"))?;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(duration);
    let mut sent = 0u64;
    let mut next = 0usize;
    let mut churn = ChurnFrames::new();
    let mut churned = 0u64;
    // Paced, frames leave in chunks of a millisecond's worth (at least
    // one): a generator that woke for every frame would spend more CPU on
    // waking than on sending, and in a small VM that CPU is the switch's.
    let chunk = (rate / 1000).clamp(1, 64);
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        if a.churn > 0 {
            let due = (start.elapsed().as_secs_f64() * a.churn as f64) as u64;
            let len = churn.frame_len();
            churned += s.transmit((due - churned).min(64) as usize, |_, frame| {
                churn.write_next(&mut frame[..len]);
                Some(len)
            }) as u64;
            if frames.is_empty() {
                s.reap_completions();
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
        }
        let mut room = 64;
        if rate > 0 {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            if sent + chunk > due {
                s.reap_completions();
                // Sleep until the next chunk is due unless that is very
                // soon, so a paced generator leaves the CPU to the switch.
                let next = Duration::from_secs_f64((sent + chunk) as f64 / rate as f64);
                match next.checked_sub(start.elapsed()) {
                    Some(wait) if wait > Duration::from_micros(200) => std::thread::sleep(wait),
                    _ => std::hint::spin_loop(),
                }
                continue;
            }
            room = (due - sent).min(64) as usize;
        }
        let queued = s.transmit(room, |i, frame| {
            let f = &frames[(next + i) % frames.len()];
            frame[..f.len()].copy_from_slice(f);
            Some(f.len())
        });
        next += queued;
        sent += queued as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("sent {sent} packets in {secs:.3} s ({:.0} pps)", sent as f64 / secs);
    if a.churn > 0 {
        println!(
            "new flows: {churned} in {secs:.3} s ({:.0} a second)",
            churned as f64 / secs
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `odpx sink IFACE`: receives every frame arriving on IFACE through
/// AF_XDP (the same port code as the switch) and counts packets and bytes;
/// prints the rates of each second unless `quiet`, then
/// `received N packets, B bytes in S s (R pps)`.
pub fn sink(iface: &str, core: Option<usize>, duration: Option<f64>, quiet: bool) -> R {
    let stop = odpx_tools::stop_flag()?;
    if let Some(c) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    let port = Port::open_xdp(1, iface).map_err(|e| format!("{iface}: {e}"))?;
    let mut batch = RxBatch::default();
    let start = Instant::now();
    let mut tick = (start, 0u64);
    let (mut packets, mut bytes) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) && duration.is_none_or(|d| start.elapsed().as_secs_f64() < d) {
        let n = port.recv(0, &mut batch);
        packets += n as u64;
        bytes += batch.lens[..n].iter().map(|&l| l as u64).sum::<u64>();
        if n == 0 {
            std::hint::spin_loop();
        }
        if !quiet && tick.0.elapsed() >= Duration::from_secs(1) {
            let dt = tick.0.elapsed().as_secs_f64();
            println!(
                "{:>5.1} s  {:>10.0} pps",
                start.elapsed().as_secs_f64(),
                (packets - tick.1) as f64 / dt
            );
            tick = (Instant::now(), packets);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "received {packets} packets, {bytes} bytes in {secs:.3} s ({:.0} pps)",
        packets as f64 / secs
    );
    Ok(ExitCode::SUCCESS)
}

/// `odpx fwd IN OUT`: forwards every frame from IN to OUT through the same
/// AF_XDP port code and batching as the switch, with no lookup and no
/// actions: the ceiling of an AF_XDP switch here. Prints packets and
/// cycles per packet when stopped.
pub fn fwd(inp: &str, out: &str, core: Option<usize>, duration: Option<f64>) -> R {
    let stop = odpx_tools::stop_flag()?;
    if let Some(c) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    let a = Port::open_xdp(1, inp).map_err(|e| format!("{inp}: {e}"))?;
    let b = Port::open_xdp(2, out).map_err(|e| format!("{out}: {e}"))?;
    let mut batch = RxBatch::default();
    let mut stage = TxStage::default();
    let (mut packets, mut busy) = (0u64, 0u64);
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) && duration.is_none_or(|d| start.elapsed().as_secs_f64() < d) {
        let c0 = cycles();
        let n = a.recv(0, &mut batch);
        if n > 0 {
            for i in 0..n {
                stage.push(batch.data(i));
            }
            b.send(0, &stage);
            stage.clear();
            packets += n as u64;
            busy += cycles().wrapping_sub(c0);
        }
        b.poll_tx(0);
    }
    println!(
        "forwarded {packets} packets; avg processing cycles per packet: {:.0}",
        if packets > 0 { busy as f64 / packets as f64 } else { 0.0 }
    );
    Ok(ExitCode::SUCCESS)
}
