//! Meters on the wire: METER_MOD (`ofp_meter_mod`), its bands
//! (`ofp_meter_band_drop`, `ofp_meter_band_dscp_remark`), and the meter
//! multipart replies (METER stats, METER_CONFIG, METER_FEATURES).
//!
//! Every band OpenFlow 1.3 defines is 16 bytes; a band of another length,
//! or bytes left over, is `OFPBRC_BAD_LEN`, and a band type other than
//! drop and dscp_remark is `OFPMMFC_BAD_BAND`, as Open vSwitch decodes
//! them. An unknown command is `OFPMMFC_BAD_COMMAND`, and both `KBPS` and
//! `PKTPS` are `OFPMMFC_BAD_FLAGS`. Whether the bands make sense (rates,
//! bursts, how many) is the meter table's to decide.

use super::error::{BadRequest, MeterModFailed, OfError};
use super::wire::{Reader, Writer};

/// `ofp_meter_mod_command`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterModCommand {
    Add = 0,
    Modify = 1,
    Delete = 2,
}

/// `ofp_meter_band_type` of a drop band.
pub const BAND_DROP: u16 = 1;
/// `ofp_meter_band_type` of a DSCP remark band.
pub const BAND_DSCP_REMARK: u16 = 2;
/// Every band's length.
const BAND_LEN: usize = 16;

/// One band as it travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireBand {
    /// [`BAND_DROP`] or [`BAND_DSCP_REMARK`].
    pub kind: u16,
    pub rate: u32,
    pub burst_size: u32,
    /// A DSCP remark band's; 0 for a drop band.
    pub prec_level: u8,
}

impl WireBand {
    fn decode(r: &mut Reader) -> Result<WireBand, OfError> {
        let kind = r.u16()?;
        if r.u16()? as usize != BAND_LEN {
            return Err(OfError::BadRequest(BadRequest::BadLen));
        }
        if kind != BAND_DROP && kind != BAND_DSCP_REMARK {
            return Err(OfError::MeterModFailed(MeterModFailed::BadBand));
        }
        let rate = r.u32()?;
        let burst_size = r.u32()?;
        let prec_level = r.u8()?;
        r.skip(3)?;
        Ok(WireBand {
            kind,
            rate,
            burst_size,
            prec_level: if kind == BAND_DSCP_REMARK { prec_level } else { 0 },
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.kind);
        out.put_u16(BAND_LEN as u16);
        out.put_u32(self.rate);
        out.put_u32(self.burst_size);
        out.put_u8(self.prec_level);
        out.put_zeros(3);
    }
}

fn decode_bands(r: &mut Reader) -> Result<Vec<WireBand>, OfError> {
    let mut out = Vec::new();
    while r.remaining() >= BAND_LEN {
        out.push(WireBand::decode(r)?);
    }
    if !r.is_empty() {
        return Err(OfError::BadRequest(BadRequest::BadLen));
    }
    Ok(out)
}

/// A METER_MOD's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterMod {
    pub command: MeterModCommand,
    /// `ofp_meter_flags`.
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<WireBand>,
}

/// `OFPMF_KBPS | OFPMF_PKTPS`.
const BOTH_UNITS: u16 = 0b11;

impl MeterMod {
    pub fn decode(r: &mut Reader) -> Result<MeterMod, OfError> {
        let command = match r.u16()? {
            0 => MeterModCommand::Add,
            1 => MeterModCommand::Modify,
            2 => MeterModCommand::Delete,
            _ => return Err(OfError::MeterModFailed(MeterModFailed::BadCommand)),
        };
        let flags = r.u16()?;
        let meter_id = r.u32()?;
        if command == MeterModCommand::Delete {
            // A delete's flags and bands mean nothing (as in Open vSwitch).
            r.rest();
            return Ok(MeterMod {
                command,
                flags: 0,
                meter_id,
                bands: Vec::new(),
            });
        }
        if flags & BOTH_UNITS == BOTH_UNITS {
            return Err(OfError::MeterModFailed(MeterModFailed::BadFlags));
        }
        Ok(MeterMod {
            command,
            flags,
            meter_id,
            bands: decode_bands(r)?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.command as u16);
        out.put_u16(self.flags);
        out.put_u32(self.meter_id);
        for b in &self.bands {
            b.encode(out);
        }
    }
}

/// A meter as METER_CONFIG describes it (`ofp_meter_config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterConfig {
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<WireBand>,
}

impl MeterConfig {
    pub fn decode(r: &mut Reader) -> Result<MeterConfig, OfError> {
        let len = r.u16()? as usize;
        let short = r.short();
        let mut d = r.sub(len.checked_sub(2).ok_or(short)?, short)?;
        let flags = d.u16()?;
        let meter_id = d.u32()?;
        Ok(MeterConfig {
            flags,
            meter_id,
            bands: decode_bands(&mut d)?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16((8 + BAND_LEN * self.bands.len()) as u16);
        out.put_u16(self.flags);
        out.put_u32(self.meter_id);
        for b in &self.bands {
            b.encode(out);
        }
    }
}

/// One meter's counters (`ofp_meter_stats`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterStats {
    pub meter_id: u32,
    pub flow_count: u32,
    pub packet_in_count: u64,
    pub byte_in_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// Each band's packets and bytes.
    pub bands: Vec<(u64, u64)>,
}

impl MeterStats {
    pub fn decode(r: &mut Reader) -> Result<MeterStats, OfError> {
        let meter_id = r.u32()?;
        let len = r.u16()? as usize;
        r.skip(6)?;
        let mut s = MeterStats {
            meter_id,
            flow_count: r.u32()?,
            packet_in_count: r.u64()?,
            byte_in_count: r.u64()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
            bands: Vec::new(),
        };
        for _ in 0..len.saturating_sub(40) / 16 {
            s.bands.push((r.u64()?, r.u64()?));
        }
        Ok(s)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.meter_id);
        out.put_u16((40 + 16 * self.bands.len()) as u16);
        out.put_zeros(6);
        out.put_u32(self.flow_count);
        out.put_u64(self.packet_in_count);
        out.put_u64(self.byte_in_count);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        for (p, b) in &self.bands {
            out.put_u64(*p);
            out.put_u64(*b);
        }
    }
}

/// What the switch's meters can do (`ofp_meter_features`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterFeatures {
    pub max_meter: u32,
    /// Bit N: band type N.
    pub band_types: u32,
    /// `ofp_meter_flags` the switch takes.
    pub capabilities: u32,
    pub max_bands: u8,
    pub max_color: u8,
}

impl MeterFeatures {
    pub fn decode(r: &mut Reader) -> Result<MeterFeatures, OfError> {
        let f = MeterFeatures {
            max_meter: r.u32()?,
            band_types: r.u32()?,
            capabilities: r.u32()?,
            max_bands: r.u8()?,
            max_color: r.u8()?,
        };
        r.skip(2)?;
        Ok(f)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.max_meter);
        out.put_u32(self.band_types);
        out.put_u32(self.capabilities);
        out.put_u8(self.max_bands);
        out.put_u8(self.max_color);
        out.put_zeros(2);
    }
}

#[cfg(test)]
mod tests {
    use super::super::hex;
    use super::*;

    fn short() -> OfError {
        OfError::BadRequest(BadRequest::BadLen)
    }

    #[test]
    fn os_kens_meter_mod_decodes_and_encodes_back() {
        // OFPMC_ADD, KBPS|BURST|STATS, meter 1; a drop band of 1000 kbps
        // with a burst of 100, a dscp_remark band of 2000 at level 1.
        let body = hex(concat!(
            "0000000d00000001",
            "00010010000003e80000006400000000",
            "00020010000007d00000000001000000",
        ));
        let mm = MeterMod::decode(&mut Reader::new(&body, short())).unwrap();
        assert_eq!((mm.command, mm.flags, mm.meter_id), (MeterModCommand::Add, 0xd, 1));
        assert_eq!(
            mm.bands,
            vec![
                WireBand {
                    kind: BAND_DROP,
                    rate: 1000,
                    burst_size: 100,
                    prec_level: 0
                },
                WireBand {
                    kind: BAND_DSCP_REMARK,
                    rate: 2000,
                    burst_size: 0,
                    prec_level: 1
                }
            ]
        );
        let mut again = Vec::new();
        mm.encode(&mut again);
        assert_eq!(again, body);
    }

    #[test]
    fn malformed_meter_mods_name_their_fault() {
        let err = |s: &str| MeterMod::decode(&mut Reader::new(&hex(s), short())).unwrap_err();
        let bad = OfError::MeterModFailed;
        assert_eq!(err("0009000100000001"), bad(MeterModFailed::BadCommand));
        assert_eq!(err("0000000300000001"), bad(MeterModFailed::BadFlags));
        assert_eq!(
            err("000000010000000100030010000003e80000000000000000"),
            bad(MeterModFailed::BadBand)
        );
        assert_eq!(
            err("000000010000000100010018000003e80000000000000000"),
            OfError::BadRequest(BadRequest::BadLen)
        );
        assert_eq!(
            err("000000010000000100010010000003e8000000000000000000"),
            OfError::BadRequest(BadRequest::BadLen)
        );
        // A delete needs nothing but the number.
        let del = MeterMod::decode(&mut Reader::new(&hex("00020003ffffffff"), short())).unwrap();
        assert_eq!((del.command, del.meter_id), (MeterModCommand::Delete, 0xffff_ffff));
    }

    #[test]
    fn config_stats_and_features_round_trip() {
        let c = MeterConfig {
            flags: 1,
            meter_id: 3,
            bands: vec![WireBand {
                kind: BAND_DROP,
                rate: 5,
                burst_size: 0,
                prec_level: 0,
            }],
        };
        let mut b = Vec::new();
        c.encode(&mut b);
        assert_eq!(b.len(), 24);
        assert_eq!(MeterConfig::decode(&mut Reader::new(&b, short())).unwrap(), c);
        let s = MeterStats {
            meter_id: 3,
            flow_count: 2,
            packet_in_count: 10,
            byte_in_count: 1000,
            duration_sec: 4,
            duration_nsec: 5,
            bands: vec![(1, 100)],
        };
        let mut b = Vec::new();
        s.encode(&mut b);
        assert_eq!(b.len(), 56);
        assert_eq!(MeterStats::decode(&mut Reader::new(&b, short())).unwrap(), s);
        let f = MeterFeatures {
            max_meter: 65536,
            band_types: 6,
            capabilities: 0xf,
            max_bands: 8,
            max_color: 0,
        };
        let mut b = Vec::new();
        f.encode(&mut b);
        assert_eq!(b.len(), 16);
        assert_eq!(MeterFeatures::decode(&mut Reader::new(&b, short())).unwrap(), f);
    }
}
