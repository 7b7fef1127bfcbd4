//! `learn` between Nicira's `NXAST_LEARN` and odpx's [`Learn`]: each
//! flow_mod spec's fields through their NXM headers ([`super::nxm`]).

use super::nxm::{header, subfield};
use crate::openflow::codec::nicira::{NxLearn, NxLearnDst, NxLearnSpec, NxLearnSrc};
use odpx_classifier::rules::learn::{Learn, LearnSpec, LearnSrc};
use odpx_classifier::rules::subfield::{ones, Subfield};

/// The learn a Nicira action describes; `None` if a spec names a field
/// odpx does not have, bits beyond one, or a constant wider than its bits.
pub fn learn_from(l: &NxLearn) -> Option<Learn> {
    let specs = l.specs.iter().map(spec_from).collect::<Option<Vec<_>>>()?;
    Some(Learn {
        table: l.table_id,
        priority: l.priority,
        idle_timeout: l.idle_timeout,
        hard_timeout: l.hard_timeout,
        fin_idle_timeout: l.fin_idle_timeout,
        fin_hard_timeout: l.fin_hard_timeout,
        cookie: l.cookie,
        flags: l.flags,
        specs,
    })
}

fn spec_from(s: &NxLearnSpec) -> Option<LearnSpec> {
    let n = s.n_bits;
    let src = match s.src {
        NxLearnSrc::Field { header, ofs } => LearnSrc::Field(subfield(header, ofs, n)?),
        NxLearnSrc::Immediate(v) if v & !ones(u32::from(n)) == 0 => LearnSrc::Value(v),
        NxLearnSrc::Immediate(_) => return None,
    };
    Some(match s.dst {
        NxLearnDst::Match { header, ofs } => LearnSpec::Match {
            dst: subfield(header, ofs, n)?,
            src,
        },
        NxLearnDst::Load { header, ofs } => LearnSpec::Load {
            dst: subfield(header, ofs, n)?,
            src,
        },
        NxLearnDst::Output => match src {
            LearnSrc::Field(src) => LearnSpec::Output { src },
            LearnSrc::Value(_) => return None,
        },
    })
}

/// The Nicira action for a learn; `None` if a field has no NXM name.
pub fn learn_to(l: &Learn) -> Option<NxLearn> {
    let specs = l.specs.iter().map(spec_to).collect::<Option<Vec<_>>>()?;
    Some(NxLearn {
        idle_timeout: l.idle_timeout,
        hard_timeout: l.hard_timeout,
        priority: l.priority,
        cookie: l.cookie,
        flags: l.flags,
        table_id: l.table,
        fin_idle_timeout: l.fin_idle_timeout,
        fin_hard_timeout: l.fin_hard_timeout,
        specs,
    })
}

fn spec_to(s: &LearnSpec) -> Option<NxLearnSpec> {
    let field = |sf: &Subfield| -> Option<(u32, u16)> { Some((header(sf)?, sf.ofs.into())) };
    let src_of = |src: &LearnSrc| -> Option<NxLearnSrc> {
        Some(match src {
            LearnSrc::Field(sf) => {
                let (header, ofs) = field(sf)?;
                NxLearnSrc::Field { header, ofs }
            }
            LearnSrc::Value(v) => NxLearnSrc::Immediate(*v),
        })
    };
    Some(match s {
        LearnSpec::Match { dst, src } => {
            let (header, ofs) = field(dst)?;
            NxLearnSpec {
                n_bits: dst.n_bits.into(),
                src: src_of(src)?,
                dst: NxLearnDst::Match { header, ofs },
            }
        }
        LearnSpec::Load { dst, src } => {
            let (header, ofs) = field(dst)?;
            NxLearnSpec {
                n_bits: dst.n_bits.into(),
                src: src_of(src)?,
                dst: NxLearnDst::Load { header, ofs },
            }
        }
        LearnSpec::Output { src } => NxLearnSpec {
            n_bits: src.n_bits.into(),
            src: src_of(&LearnSrc::Field(*src))?,
            dst: NxLearnDst::Output,
        },
    })
}
