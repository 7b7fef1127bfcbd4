//! METER_MOD to a [`MeterOp`], and meters back to METER_CONFIG, METER
//! stats and METER_FEATURES.
//!
//! The wire's checks are the codec's; here: the meter number
//! (`OFPMMFC_INVALID_METER`: 0, or above `OFPM_MAX`; `OFPM_ALL` only in a
//! delete), the flags odpx knows (`OFPMMFC_BAD_FLAGS` for others), and the
//! meter table's refusals turned into METER_MOD_FAILED codes
//! ([`meter_error`]). A meter that names neither unit counts kilobits, as
//! Open vSwitch's does.

use super::duration;
use crate::core::meters::{MeterOp, MeterStats};
use crate::openflow::codec::error::{MeterModFailed, OfError};
use crate::openflow::codec::meter::{
    self as wire, MeterConfig, MeterFeatures, MeterMod, MeterModCommand, WireBand, BAND_DROP, BAND_DSCP_REMARK,
};
use odpx_classifier::rules::meter::{
    meter_flags, Band, BandKind, Meter, MeterError, MeterUnit, MAX_BANDS, MAX_METERS, MAX_METER_ID,
};
use odpx_classifier::rules::ofctl::MeterCounts;
use std::time::Instant;

/// Every `ofp_meter_flags` bit odpx takes.
const KNOWN_FLAGS: u16 = meter_flags::KBPS | meter_flags::PKTPS | meter_flags::BURST | meter_flags::STATS;

/// The meter-table change a METER_MOD asks for.
pub fn meter_mod(mm: &MeterMod) -> Result<MeterOp, OfError> {
    let failed = |c| Err(OfError::MeterModFailed(c));
    if mm.command == MeterModCommand::Delete {
        return Ok(MeterOp::Delete(mm.meter_id));
    }
    if mm.meter_id == 0 || mm.meter_id > MAX_METER_ID {
        return failed(MeterModFailed::InvalidMeter);
    }
    if mm.flags & !KNOWN_FLAGS != 0 {
        return failed(MeterModFailed::BadFlags);
    }
    let m = Meter {
        id: mm.meter_id,
        unit: if mm.flags & meter_flags::PKTPS != 0 {
            MeterUnit::Pktps
        } else {
            MeterUnit::Kbps
        },
        burst: mm.flags & meter_flags::BURST != 0,
        stats: mm.flags & meter_flags::STATS != 0,
        bands: mm.bands.iter().map(band_from).collect(),
    };
    Ok(match mm.command {
        MeterModCommand::Add => MeterOp::Add(m),
        _ => MeterOp::Modify(m),
    })
}

fn band_from(b: &WireBand) -> Band {
    Band {
        kind: if b.kind == BAND_DSCP_REMARK {
            BandKind::DscpRemark {
                prec_level: b.prec_level,
            }
        } else {
            BandKind::Drop
        },
        rate: b.rate,
        burst_size: b.burst_size,
    }
}

/// The METER_MOD_FAILED code of a refusal.
pub fn meter_error(e: &MeterError) -> OfError {
    OfError::MeterModFailed(match e {
        MeterError::Exists(_) => MeterModFailed::MeterExists,
        MeterError::Unknown(_) => MeterModFailed::UnknownMeter,
        MeterError::BadId(_) => MeterModFailed::InvalidMeter,
        MeterError::NoBands(_) => MeterModFailed::BadBand,
        MeterError::TooManyBands(..) => MeterModFailed::OutOfBands,
        MeterError::BadRate(_) => MeterModFailed::BadRate,
        MeterError::Full => MeterModFailed::OutOfMeters,
    })
}

/// A meter as METER_CONFIG describes it: flags and bands as they came.
pub fn meter_config(m: &Meter) -> MeterConfig {
    MeterConfig {
        flags: m.flags(),
        meter_id: m.id,
        bands: m
            .bands
            .iter()
            .map(|b| WireBand {
                kind: b.kind.wire_type(),
                rate: b.rate,
                burst_size: b.burst_size,
                prec_level: match b.kind {
                    BandKind::DscpRemark { prec_level } => prec_level,
                    BandKind::Drop => 0,
                },
            })
            .collect(),
    }
}

/// A meter's METER stats at `now`.
pub fn meter_stats(m: &Meter, s: &MeterStats, c: &MeterCounts, now: Instant) -> wire::MeterStats {
    let (duration_sec, duration_nsec) = duration(s.added, now);
    wire::MeterStats {
        meter_id: m.id,
        flow_count: c.flows as u32,
        packet_in_count: c.packets,
        byte_in_count: c.bytes,
        duration_sec,
        duration_nsec,
        bands: c.bands.clone(),
    }
}

/// What odpx's meters can do.
pub fn meter_features() -> MeterFeatures {
    MeterFeatures {
        max_meter: MAX_METERS as u32,
        band_types: (1 << BAND_DROP) | (1 << BAND_DSCP_REMARK),
        capabilities: u32::from(KNOWN_FLAGS),
        max_bands: MAX_BANDS as u8,
        max_color: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::rules::meter::ALL_METERS;

    fn add(id: u32, flags: u16, bands: Vec<WireBand>) -> MeterMod {
        MeterMod {
            command: MeterModCommand::Add,
            flags,
            meter_id: id,
            bands,
        }
    }

    fn drop(rate: u32, burst_size: u32) -> WireBand {
        WireBand {
            kind: BAND_DROP,
            rate,
            burst_size,
            prec_level: 0,
        }
    }

    #[test]
    fn meter_mods_become_meters_and_come_back_as_they_were() {
        // A burst size without the burst flag is kept (and echoed), not enforced.
        let mm = add(7, meter_flags::PKTPS | meter_flags::STATS, vec![drop(100, 10)]);
        let MeterOp::Add(m) = meter_mod(&mm).unwrap() else {
            panic!("an add")
        };
        assert_eq!((m.unit, m.burst, m.stats), (MeterUnit::Pktps, false, true));
        assert_eq!(m.bands[0].effective_burst(m.unit, m.burst), 5);
        let c = meter_config(&m);
        assert_eq!((c.flags, c.meter_id, c.bands.clone()), (mm.flags, 7, mm.bands.clone()));
    }

    #[test]
    fn bad_meter_mods_get_the_codes_open_vswitch_gives() {
        let code = |mm: &MeterMod| meter_mod(mm).err();
        let bad = |c| Some(OfError::MeterModFailed(c));
        assert_eq!(code(&add(0, 1, vec![drop(1, 0)])), bad(MeterModFailed::InvalidMeter));
        assert_eq!(
            code(&add(ALL_METERS, 1, vec![drop(1, 0)])),
            bad(MeterModFailed::InvalidMeter)
        );
        assert_eq!(code(&add(1, 1 << 4, vec![drop(1, 0)])), bad(MeterModFailed::BadFlags));
        assert_eq!(
            meter_error(&MeterError::TooManyBands(1, 9)),
            OfError::MeterModFailed(MeterModFailed::OutOfBands)
        );
        assert_eq!(
            meter_error(&MeterError::BadRate(1)),
            OfError::MeterModFailed(MeterModFailed::BadRate)
        );
        let del = MeterMod {
            command: MeterModCommand::Delete,
            ..add(ALL_METERS, 0, vec![])
        };
        assert!(matches!(meter_mod(&del), Ok(MeterOp::Delete(ALL_METERS))));
    }
}
