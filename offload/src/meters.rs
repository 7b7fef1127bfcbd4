//! The kernel datapath's meters: the `ovs_meter` generic-netlink family.
//!
//! # What
//! [`MeterClient`] sets, deletes and reads the meters of one datapath,
//! which its flows' `meter(N)` actions run through. The kernel's meter is
//! a token bucket per band, under a lock per meter, shared by every CPU:
//! the rate holds for the sum of what all CPUs carry.
//!
//! # What the kernel can do
//! One band per meter (`DP_MAX_BANDS`), of type drop, in kilobits or
//! packets per second, whose bucket holds the band's burst (since Linux
//! 5.14; older kernels added a second of rate to it). odpx asks for the
//! burst it enforces itself ([`Band::effective_burst`]: as configured with
//! the `burst` flag, else a twentieth of a second of rate; Open vSwitch
//! asks for a whole second). What
//! the kernel cannot do (several bands, DSCP remarking) the control layer
//! refuses before anything is set ([`KernelMeter::from_meter`]).
//!
//! [`Band::effective_burst`]: odpx_classifier::rules::meter::Band::effective_burst
//!
//! # Threads
//! A `MeterClient` is one socket, used by one thread at a time (the
//! owner's backend).

use crate::channel::{resolve_family, Channel, Request};
use crate::error::{OdpError, Op};
use crate::nla::{self, Writer};
use neli::consts::nl::NlmF;
use odpx_classifier::rules::meter::{BandKind, Meter, MeterUnit};

/// The family's name and version (`OVS_METER_FAMILY`, `OVS_METER_VERSION`).
pub const METER_FAMILY: &str = "ovs_meter";
const METER_VERSION: u8 = 1;

/// `ovs_meter_cmd`.
mod meter_cmd {
    pub const SET: u8 = 2;
    pub const DEL: u8 = 3;
    pub const GET: u8 = 4;
}

/// `ovs_meter_attr`.
mod meter_attr {
    pub const ID: u16 = 1;
    pub const KBPS: u16 = 2;
    pub const STATS: u16 = 3;
    pub const BANDS: u16 = 4;
}

/// `ovs_band_attr`.
mod band_attr {
    pub const UNSPEC: u16 = 0;
    pub const TYPE: u16 = 1;
    pub const RATE: u16 = 2;
    pub const BURST: u16 = 3;
    pub const STATS: u16 = 4;
}

/// `OVS_METER_BAND_TYPE_DROP`.
const BAND_TYPE_DROP: u32 = 1;

/// A meter as the kernel takes it: one drop band.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelMeter {
    pub kbps: bool,
    pub rate: u32,
    /// The bucket's size, in the rate's unit.
    pub burst: u32,
}

impl KernelMeter {
    /// The kernel's form of `m`, or why the kernel cannot run it.
    pub fn from_meter(m: &Meter) -> Result<KernelMeter, String> {
        let [b] = m.bands.as_slice() else {
            return Err(format!(
                "kernel mode: meter {} has {} bands; the kernel datapath's meters have one",
                m.id,
                m.bands.len()
            ));
        };
        if let BandKind::DscpRemark { .. } = b.kind {
            return Err(format!(
                "kernel mode: meter {}: the kernel datapath's meters only drop (no dscp_remark)",
                m.id
            ));
        }
        Ok(KernelMeter {
            kbps: m.unit == MeterUnit::Kbps,
            rate: b.rate,
            burst: b.effective_burst(m.unit, m.burst),
        })
    }
}

/// What a kernel meter counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelMeterStats {
    pub packets: u64,
    pub bytes: u64,
    /// Each band's packets and bytes.
    pub bands: Vec<(u64, u64)>,
}

/// One datapath's meters (see the module documentation).
pub struct MeterClient {
    ch: Channel,
    family: u16,
    dp_ifindex: i32,
}

impl MeterClient {
    /// A client of the meters of the datapath `dp_ifindex`; fails when the
    /// kernel has no meter family.
    pub fn connect(dp_ifindex: i32) -> Result<MeterClient, OdpError> {
        let mut ch = Channel::open()?;
        let family = resolve_family(&mut ch, METER_FAMILY)?.0;
        Ok(MeterClient { ch, family, dp_ifindex })
    }

    fn request(&self, cmd: u8, attrs: Vec<(u16, Vec<u8>)>) -> Request {
        Request {
            family: self.family,
            cmd,
            version: METER_VERSION,
            dp_ifindex: self.dp_ifindex,
            dump: false,
            flags: NlmF::empty(),
            attrs,
        }
    }

    /// Sets meter `slot` (added, or replaced with its counters kept).
    pub fn set(&mut self, slot: u32, m: &KernelMeter) -> Result<(), OdpError> {
        let mut band = Writer::new();
        let at = band.begin_nested(band_attr::UNSPEC);
        band.put_u32(band_attr::TYPE, BAND_TYPE_DROP);
        band.put_u32(band_attr::RATE, m.rate);
        band.put_u32(band_attr::BURST, m.burst);
        band.end_nested(at);
        let mut attrs = vec![(meter_attr::ID, slot.to_ne_bytes().to_vec())];
        if m.kbps {
            attrs.push((meter_attr::KBPS, Vec::new()));
        }
        attrs.push((meter_attr::BANDS, band.into_bytes()));
        let r = self.request(meter_cmd::SET, attrs);
        self.ch.one(r, Op::Meter, || format!("meter {slot}"))?;
        Ok(())
    }

    /// Deletes meter `slot` (one that is not there is no error).
    pub fn delete(&mut self, slot: u32) -> Result<(), OdpError> {
        let r = self.request(meter_cmd::DEL, vec![(meter_attr::ID, slot.to_ne_bytes().to_vec())]);
        self.ch.one(r, Op::Meter, || format!("meter {slot}"))?;
        Ok(())
    }

    /// Meter `slot`'s counters.
    pub fn stats(&mut self, slot: u32) -> Result<KernelMeterStats, OdpError> {
        let r = self.request(meter_cmd::GET, vec![(meter_attr::ID, slot.to_ne_bytes().to_vec())]);
        let replies = self.ch.one(r, Op::Meter, || format!("meter {slot}"))?;
        let reply = replies
            .first()
            .ok_or_else(|| OdpError::NotFound(format!("meter {slot}: no reply")))?;
        parse_stats(&reply.attrs)
    }
}

/// Two u64 counters (`struct ovs_flow_stats`).
fn flow_stats(payload: &[u8], what: &'static str) -> Result<(u64, u64), OdpError> {
    let a = nla::Attr {
        ty: meter_attr::STATS,
        payload,
    };
    let b: [u8; 16] = a.array(what)?;
    let word = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    Ok((word(0), word(1)))
}

/// A GET reply's counters.
fn parse_stats(attrs: &[(u16, Vec<u8>)]) -> Result<KernelMeterStats, OdpError> {
    const W: &str = "meter";
    let mut out = KernelMeterStats::default();
    for (ty, payload) in attrs {
        match *ty {
            meter_attr::STATS => (out.packets, out.bytes) = flow_stats(payload, W)?,
            meter_attr::BANDS => {
                for band in nla::iter(payload, W) {
                    let band = band?;
                    let mut counts = (0, 0);
                    for a in nla::iter(band.payload, W) {
                        let a = a?;
                        if a.ty == band_attr::STATS {
                            counts = flow_stats(a.payload, W)?;
                        }
                    }
                    out.bands.push(counts);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::rules::ofctl::parse_meter;

    #[test]
    fn the_kernel_takes_one_drop_band_with_the_burst_odpx_enforces() {
        let m = parse_meter("meter=1,kbps,burst,band=type=drop,rate=1000,burst_size=1500").unwrap();
        assert_eq!(
            KernelMeter::from_meter(&m),
            Ok(KernelMeter {
                kbps: true,
                rate: 1000,
                burst: 1500
            })
        );
        let m = parse_meter("meter=1,pktps,band=type=drop,rate=100").unwrap();
        assert_eq!(KernelMeter::from_meter(&m).unwrap().burst, 5);
        let two = parse_meter("meter=1,pktps,bands=type=drop,rate=1,type=drop,rate=2").unwrap();
        assert!(KernelMeter::from_meter(&two).unwrap_err().contains("2 bands"));
        let remark = parse_meter("meter=1,pktps,band=type=dscp_remark,rate=1,prec_level=1").unwrap();
        assert!(KernelMeter::from_meter(&remark).unwrap_err().contains("only drop"));
    }

    #[test]
    fn a_get_reply_gives_the_meters_and_its_bands_counters() {
        let mut stats = Vec::new();
        stats.extend_from_slice(&10u64.to_ne_bytes());
        stats.extend_from_slice(&640u64.to_ne_bytes());
        let mut band_stats = Vec::new();
        band_stats.extend_from_slice(&4u64.to_ne_bytes());
        band_stats.extend_from_slice(&256u64.to_ne_bytes());
        let mut bands = Writer::new();
        let at = bands.begin_nested(band_attr::UNSPEC);
        bands.put(band_attr::STATS, &band_stats);
        bands.end_nested(at);
        let attrs = vec![
            (meter_attr::ID, 3u32.to_ne_bytes().to_vec()),
            (meter_attr::STATS, stats),
            (meter_attr::BANDS, bands.into_bytes()),
        ];
        assert_eq!(
            parse_stats(&attrs).unwrap(),
            KernelMeterStats {
                packets: 10,
                bytes: 640,
                bands: vec![(4, 256)]
            }
        );
        assert!(parse_stats(&[(meter_attr::STATS, vec![0; 8])]).is_err());
    }
}
