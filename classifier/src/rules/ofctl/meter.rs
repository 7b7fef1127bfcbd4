//! Meters in `ovs-ofctl`'s syntax: what `add-meter` takes and
//! `dump-meters` and `meter-stats` print.
//!
//! `meter=N,kbps|pktps[,burst][,stats],bands=type=drop|dscp_remark,
//! rate=R[,burst_size=B][,prec_level=P][,type=...]...` (`band=` too). As
//! in Open vSwitch: a meter names its unit; a band's `burst_size` needs the
//! `burst` flag and the flag needs a burst size in every band; only a
//! `dscp_remark` band has a `prec_level`, and it must have one; a key
//! given twice in a band keeps the last value.

use super::super::meter::{Band, BandKind, Meter, MeterUnit, ALL_METERS, MAX_METER_ID};
use crate::text::{Cursor, PResult, ParseError};

/// Parses a meter (`add-meter`, `mod-meter`).
pub fn parse_meter(s: &str) -> PResult<Meter> {
    let fail = |pos: usize, msg: &str| {
        Err(ParseError {
            pos,
            msg: msg.to_string(),
        })
    };
    let Some(at) = s.find("band") else {
        return fail(0, "must specify bands");
    };
    let Some(eq) = s[at..].find('=') else {
        return fail(at, "must specify bands");
    };
    let (id, unit, burst, stats) = parse_head(&s[..at])?;
    let from = at + eq + 1;
    let bands = parse_bands(&s[from..]).map_err(|e| ParseError { pos: e.pos + from, ..e })?;
    for b in &bands {
        if burst && b.burst_size == 0 {
            return fail(at, "band must have 'burst_size' when 'burst' flag is set");
        }
        if !burst && b.burst_size != 0 {
            return fail(at, "band may have 'burst_size' only when 'burst' flag is set");
        }
    }
    Ok(Meter {
        id,
        unit,
        burst,
        stats,
        bands,
    })
}

/// The meter's number and flags, before `bands=`.
fn parse_head(s: &str) -> PResult<(u32, MeterUnit, bool, bool)> {
    let mut c = Cursor::new(s);
    let (mut id, mut unit, mut burst, mut stats) = (None, None, false, false);
    loop {
        c.take_while(|ch| ch == ',' || ch.is_whitespace());
        if c.at_end() {
            break;
        }
        let start = c.pos;
        match c.ident() {
            "kbps" => unit = Some(MeterUnit::Kbps),
            "pktps" => unit = Some(MeterUnit::Pktps),
            "burst" => burst = true,
            "stats" => stats = true,
            "meter" => {
                c.expect("=")?;
                id = Some(meter_number(&mut c)?);
            }
            other => return c.err_at(start, format!("unknown keyword {other}")),
        }
    }
    let Some(id) = id else {
        return c.err_at(0, "must specify 'meter'");
    };
    let Some(unit) = unit else {
        return c.err_at(0, "meter must specify either 'kbps' or 'pktps'");
    };
    Ok((id, unit, burst, stats))
}

/// A meter number of a change: 1 to `OFPM_MAX`.
fn meter_number(c: &mut Cursor) -> PResult<u32> {
    let at = c.pos;
    let id = c.uint(u32::MAX as u64)? as u32;
    if id == 0 || id > MAX_METER_ID {
        return c.err_at(at, "invalid value for meter");
    }
    Ok(id)
}

/// The bands, after `bands=`.
fn parse_bands(s: &str) -> PResult<Vec<Band>> {
    let mut c = Cursor::new(s);
    let mut bands: Vec<(Band, Option<u8>)> = Vec::new();
    loop {
        c.take_while(|ch| ch == ',' || ch.is_whitespace());
        if c.at_end() {
            break;
        }
        let start = c.pos;
        let key = c.ident();
        if !c.eat("=") {
            return c.err_at(start, format!("field {key} missing value"));
        }
        if key == "type" {
            let at = c.pos;
            let kind = match c.ident() {
                "drop" => BandKind::Drop,
                "dscp_remark" => BandKind::DscpRemark { prec_level: 0 },
                other => return c.err_at(at, format!("field type unknown value {other}")),
            };
            bands.push((
                Band {
                    kind,
                    rate: 0,
                    burst_size: 0,
                },
                None,
            ));
            continue;
        }
        let Some((band, prec)) = bands.last_mut() else {
            return c.err_at(start, "band must start with the 'type' keyword");
        };
        match key {
            "rate" => band.rate = c.uint(u32::MAX as u64)? as u32,
            "burst_size" => band.burst_size = c.uint(u32::MAX as u64)? as u32,
            "prec_level" => *prec = Some(c.uint(u8::MAX as u64)? as u8),
            other => return c.err_at(start, format!("unknown keyword {other}")),
        }
    }
    if bands.is_empty() {
        return c.err_at(0, "meter must have bands");
    }
    bands
        .into_iter()
        .map(|(mut b, prec)| {
            match (&mut b.kind, prec) {
                (BandKind::DscpRemark { prec_level }, Some(p)) if p != 0 => *prec_level = p,
                (BandKind::DscpRemark { .. }, _) => return c.err_at(0, "'dscp_remark' band must have 'prec_level'"),
                (BandKind::Drop, Some(p)) if p != 0 => {
                    return c.err_at(0, "Only 'dscp_remark' band may have 'prec_level'")
                }
                (BandKind::Drop, _) => {}
            }
            if b.rate == 0 {
                return c.err_at(0, "band must have 'rate'");
            }
            Ok(b)
        })
        .collect()
}

/// The meter a `del-meter`, `dump-meters` or `meter-stats` names: `""`
/// and `meter=all` mean every one ([`ALL_METERS`]).
pub fn parse_meter_id(s: &str) -> PResult<u32> {
    let mut c = Cursor::new(s.trim());
    if c.at_end() {
        return Ok(ALL_METERS);
    }
    let start = c.pos;
    if c.ident() != "meter" || !c.eat("=") {
        return c.err_at(start, "expected 'meter=N' or 'meter=all'");
    }
    let id = if c.eat("all") {
        ALL_METERS
    } else {
        meter_number(&mut c)?
    };
    c.skip_ws();
    if !c.at_end() {
        return c.err("expected the end after the meter");
    }
    Ok(id)
}

/// A meter as `ovs-ofctl dump-meters` prints it: `meter=N FLAGS bands=`,
/// then a line per band.
pub fn format_meter(m: &Meter) -> String {
    let mut s = format!("meter={} ", m.id);
    s.push_str(match m.unit {
        MeterUnit::Kbps => "kbps ",
        MeterUnit::Pktps => "pktps ",
    });
    if m.burst {
        s.push_str("burst ");
    }
    if m.stats {
        s.push_str("stats ");
    }
    s.push_str("bands=");
    for b in &m.bands {
        match b.kind {
            BandKind::Drop => s.push_str(&format!("\ntype=drop rate={}", b.rate)),
            BandKind::DscpRemark { .. } => s.push_str(&format!("\ntype=dscp_remark rate={}", b.rate)),
        }
        if m.burst {
            s.push_str(&format!(" burst_size={}", b.burst_size));
        }
        if let BandKind::DscpRemark { prec_level } = b.kind {
            s.push_str(&format!(" prec_level={prec_level}"));
        }
    }
    s
}

/// What a meter counted (`ovs-ofctl meter-stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeterCounts {
    /// Rules that send packets through the meter.
    pub flows: usize,
    pub packets: u64,
    pub bytes: u64,
    /// Each band's packets and bytes (those it handled).
    pub bands: Vec<(u64, u64)>,
}

/// A meter's counters as `ovs-ofctl meter-stats` prints them.
pub fn format_meter_stats(id: u32, age: std::time::Duration, c: &MeterCounts) -> String {
    let mut s = format!(
        "meter:{id} flow_count:{} packet_in_count:{} byte_in_count:{} duration:{}.{:03}s bands:",
        c.flows,
        c.packets,
        c.bytes,
        age.as_secs(),
        age.subsec_millis()
    );
    for (i, (p, b)) in c.bands.iter().enumerate() {
        s.push_str(&format!("\n{i}: packet_count:{p} byte_count:{b}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tutorials_meters_parse_and_print_as_ovs_ofctl_does() {
        let m = parse_meter("meter=1,kbps,band=type=drop,rate=5000").unwrap();
        assert_eq!(m.unit, MeterUnit::Kbps);
        assert_eq!(
            m.bands,
            vec![Band {
                kind: BandKind::Drop,
                rate: 5000,
                burst_size: 0
            }]
        );
        assert_eq!(format_meter(&m), "meter=1 kbps bands=\ntype=drop rate=5000");
        // A key given twice keeps the last value (the tutorial's "rate=5000,rate=12000").
        let twice = parse_meter("meter=1,kbps,band=type=drop,rate=5000,rate=12000").unwrap();
        assert_eq!(twice.bands[0].rate, 12000);
        let burst = parse_meter("meter=3,kbps,burst,band=type=drop,rate=5000,burst_size=5000").unwrap();
        assert_eq!(
            format_meter(&burst),
            "meter=3 kbps burst bands=\ntype=drop rate=5000 burst_size=5000"
        );
        let two =
            parse_meter("meter=2,pktps,stats,bands=type=dscp_remark,rate=100,prec_level=1,type=drop,rate=200").unwrap();
        assert_eq!(
            format_meter(&two),
            "meter=2 pktps stats bands=\ntype=dscp_remark rate=100 prec_level=1\ntype=drop rate=200"
        );
        assert_eq!(parse_meter(&format_meter(&two).replace(['\n', ' '], ",")).unwrap(), two);
    }

    #[test]
    fn bad_meters_say_why() {
        let err = |s: &str| parse_meter(s).unwrap_err().to_string();
        assert!(err("meter=1,kbps").contains("must specify bands"));
        assert!(err("kbps,band=type=drop,rate=1").contains("must specify 'meter'"));
        assert!(err("meter=1,band=type=drop,rate=1").contains("either 'kbps' or 'pktps'"));
        assert!(err("meter=0,kbps,band=type=drop,rate=1").contains("invalid value for meter"));
        assert!(err("meter=1,kbps,band=rate=1").contains("must start with the 'type'"));
        assert!(err("meter=1,kbps,band=type=drop").contains("must have 'rate'"));
        assert!(err("meter=1,kbps,band=type=drop,rate=1,prec_level=1").contains("Only 'dscp_remark'"));
        assert!(err("meter=1,kbps,band=type=dscp_remark,rate=1").contains("must have 'prec_level'"));
        assert!(err("meter=1,kbps,burst,band=type=drop,rate=1").contains("'burst_size' when 'burst'"));
        assert!(err("meter=1,kbps,band=type=drop,rate=1,burst_size=2").contains("only when 'burst'"));
        assert!(err("meter=1,kbps,band=type=color,rate=1").contains("unknown value color"));
        assert_eq!(parse_meter_id("").unwrap(), ALL_METERS);
        assert_eq!(parse_meter_id("meter=all").unwrap(), ALL_METERS);
        assert_eq!(parse_meter_id("meter=7").unwrap(), 7);
        assert!(parse_meter_id("meter=0").is_err());
    }

    #[test]
    fn meter_stats_print_as_ovs_ofctl_does() {
        let c = MeterCounts {
            flows: 1,
            packets: 10,
            bytes: 1000,
            bands: vec![(3, 300)],
        };
        assert_eq!(
            format_meter_stats(1, std::time::Duration::from_millis(2500), &c),
            "meter:1 flow_count:1 packet_in_count:10 byte_in_count:1000 duration:2.500s bands:\n0: packet_count:3 byte_count:300"
        );
    }
}
