//! `learn(...)` in `ovs-ofctl` syntax: parsed into a [`Learn`] and
//! printed back as `ovs-ofctl dump-flows` prints it.

use super::super::learn::{learn_flags, Learn, LearnSpec, LearnSrc};
use super::super::subfield::{ones, Subfield};
use super::DEFAULT_PRIORITY;
use crate::text::{hexc, Cursor, PResult};

/// Parses the part after `learn`: `(OPTION=N,...,SPEC,...)`.
pub(super) fn parse_learn(c: &mut Cursor) -> PResult<Learn> {
    c.expect("(")?;
    let mut l = Learn::default();
    loop {
        c.skip_ws();
        if c.eat(")") {
            break;
        }
        if c.at_end() {
            return c.err("expected ')' to end learn(...)");
        }
        parse_item(c, &mut l)?;
        c.skip_ws();
        if !c.eat(",") && !c.rest().starts_with(')') {
            return c.err("expected ',' or ')' in learn(...)");
        }
    }
    Ok(l)
}

/// One option or spec of a `learn`.
fn parse_item(c: &mut Cursor, l: &mut Learn) -> PResult<()> {
    let at = c.pos;
    let word = c.ident();
    let number = |c: &mut Cursor, max: u64| -> PResult<u64> {
        c.expect("=")?;
        c.uint(max)
    };
    match word {
        "table" => l.table = number(c, 254)? as u8,
        "priority" => l.priority = number(c, u16::MAX.into())? as u16,
        "idle_timeout" => l.idle_timeout = number(c, u16::MAX.into())? as u16,
        "hard_timeout" => l.hard_timeout = number(c, u16::MAX.into())? as u16,
        "fin_idle_timeout" => l.fin_idle_timeout = number(c, u16::MAX.into())? as u16,
        "fin_hard_timeout" => l.fin_hard_timeout = number(c, u16::MAX.into())? as u16,
        "cookie" => l.cookie = number(c, u64::MAX)?,
        "send_flow_rem" => l.flags |= learn_flags::SEND_FLOW_REM,
        "delete_learned" => l.flags |= learn_flags::DELETE_LEARNED,
        "load" => {
            c.expect(":")?;
            let src = parse_src(c)?;
            c.expect("->")?;
            let dst = Subfield::parse(c)?;
            check_widths(c, at, &src, &dst)?;
            l.specs.push(LearnSpec::Load { dst, src });
        }
        "output" => {
            c.expect(":")?;
            let src = Subfield::parse(c)?;
            l.specs.push(LearnSpec::Output { src });
        }
        _ => {
            c.pos = at;
            let dst = Subfield::parse(c)?;
            let src = if c.eat("=") {
                parse_match_value(c, &dst)?
            } else {
                LearnSrc::Field(dst)
            };
            check_widths(c, at, &src, &dst)?;
            l.specs.push(LearnSpec::Match { dst, src });
        }
    }
    Ok(())
}

/// A source: a constant or a subfield.
fn parse_src(c: &mut Cursor) -> PResult<LearnSrc> {
    if c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
        Ok(LearnSrc::Value(u128::from(c.uint(u64::MAX)?)))
    } else {
        Subfield::parse(c).map(LearnSrc::Field)
    }
}

/// The value of `DST=...`: a subfield, or a constant in the syntax of a
/// whole field (`dl_dst=00:00:00:00:00:01`) or a number.
fn parse_match_value(c: &mut Cursor, dst: &Subfield) -> PResult<LearnSrc> {
    let whole = dst.ofs == 0 && u32::from(dst.n_bits) == dst.field.bits();
    if !c.peek().is_some_and(|ch| ch.is_ascii_hexdigit()) {
        return Subfield::parse(c).map(LearnSrc::Field);
    }
    let at = c.pos;
    let (v, m) = if whole {
        dst.field.parse_value(c)?
    } else {
        let v = u128::from(c.uint(u64::MAX)?);
        (v, ones(dst.n_bits.into()))
    };
    if m != ones(dst.n_bits.into()) && !(whole && m == dst.field.full_mask()) {
        return c.err_at(at, "a learned match takes a value without a mask");
    }
    Ok(LearnSrc::Value(v))
}

/// A field source as wide as its destination; a constant that fits it.
fn check_widths(c: &Cursor, at: usize, src: &LearnSrc, dst: &Subfield) -> PResult<()> {
    match src {
        LearnSrc::Field(s) if s.n_bits != dst.n_bits => c.err_at(
            at,
            format!(
                "source field {s} is {} bits wide but destination {dst} is {} bits wide",
                s.n_bits, dst.n_bits
            ),
        ),
        LearnSrc::Value(v) if v & !ones(dst.n_bits.into()) != 0 => {
            c.err_at(at, format!("{dst}: value {v:#x} does not fit into {} bits", dst.n_bits))
        }
        _ => Ok(()),
    }
}

/// `learn(...)` as `ovs-ofctl` prints it: the table, the options that are
/// not defaults, then the specs.
pub fn format_learn(l: &Learn) -> String {
    let mut parts = vec![format!("table={}", l.table)];
    for (name, v) in [
        ("idle_timeout", l.idle_timeout),
        ("hard_timeout", l.hard_timeout),
        ("fin_idle_timeout", l.fin_idle_timeout),
        ("fin_hard_timeout", l.fin_hard_timeout),
    ] {
        if v != 0 {
            parts.push(format!("{name}={v}"));
        }
    }
    if l.priority != DEFAULT_PRIORITY {
        parts.push(format!("priority={}", l.priority));
    }
    if l.flags & learn_flags::SEND_FLOW_REM != 0 {
        parts.push("send_flow_rem".into());
    }
    if l.flags & learn_flags::DELETE_LEARNED != 0 {
        parts.push("delete_learned".into());
    }
    if l.cookie != 0 {
        parts.push(format!("cookie={:#x}", l.cookie));
    }
    for spec in &l.specs {
        parts.push(match spec {
            LearnSpec::Match {
                dst,
                src: LearnSrc::Field(s),
            } if s == dst => s.to_string(),
            LearnSpec::Match {
                dst,
                src: LearnSrc::Field(s),
            } => format!("{dst}={s}"),
            LearnSpec::Match {
                dst,
                src: LearnSrc::Value(v),
            } if dst.ofs == 0 && u32::from(dst.n_bits) == dst.field.bits() => {
                format!(
                    "{}={}",
                    dst.field.name(),
                    dst.field.format_value(*v, dst.field.full_mask())
                )
            }
            LearnSpec::Match {
                dst,
                src: LearnSrc::Value(v),
            } => format!("{dst}={}", hexc(*v)),
            LearnSpec::Load {
                dst,
                src: LearnSrc::Field(s),
            } => format!("load:{s}->{dst}"),
            LearnSpec::Load {
                dst,
                src: LearnSrc::Value(v),
            } => format!("load:{}->{dst}", hexc(*v)),
            LearnSpec::Output { src } => format!("output:{src}"),
        });
    }
    format!("learn({})", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::field::Field;

    fn parse(s: &str) -> Result<Learn, String> {
        let mut c = Cursor::new(s);
        let l = parse_learn(&mut c).map_err(|e| e.msg)?;
        assert!(c.at_end(), "{s}: left {}", c.rest());
        Ok(l)
    }

    #[test]
    fn the_tutorials_learn_reads_and_prints_as_ovs_ofctl() {
        let text = "(table=10, NXM_OF_VLAN_TCI[0..11], NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[], load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15])";
        let l = parse(text).unwrap();
        assert_eq!(l.table, 10);
        assert_eq!(l.specs.len(), 3);
        let printed = format_learn(&l);
        assert_eq!(
            printed,
            "learn(table=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15])"
        );
        assert_eq!(parse(printed.strip_prefix("learn").unwrap()).unwrap(), l);
    }

    #[test]
    fn options_constants_and_output_round_trip() {
        let text = "(table=2,idle_timeout=30,hard_timeout=60,fin_idle_timeout=5,fin_hard_timeout=10,priority=7,send_flow_rem,delete_learned,cookie=0x99,dl_type=0x800,dl_dst=00:00:00:00:00:09,NXM_NX_REG1[0..3]=0x5,load:0x2a->NXM_NX_REG2[],output:NXM_OF_IN_PORT[])";
        let l = parse(text).unwrap();
        assert_eq!(
            l.specs[1],
            LearnSpec::Match {
                dst: Subfield::whole(Field::DlDst),
                src: LearnSrc::Value(9),
            }
        );
        let printed = format_learn(&l);
        assert_eq!(printed, format!("learn{text}"));
    }

    #[test]
    fn bad_specs_say_why() {
        for (text, why) in [
            (
                "(table=10,NXM_OF_ETH_DST[]=NXM_OF_VLAN_TCI[0..11])",
                "12 bits wide but destination",
            ),
            ("(load:0x10000->NXM_NX_REG0[0..15])", "does not fit into 16 bits"),
            ("(table=300)", "out of range"),
            ("(NXM_NX_REG0[]", "expected ',' or ')'"),
            ("(nosuchfield[])", "unknown field"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
