//! Nicira extension actions (experimenter `0x00002320`): the body of an
//! OpenFlow experimenter action that carries one, as `ovs-ofctl` and
//! Open vSwitch write them.
//!
//! odpx reads and writes the ones its rules have: `resubmit`
//! (`NXAST_RESUBMIT`, `NXAST_RESUBMIT_TABLE`), `load` (`NXAST_REG_LOAD`),
//! `move` (`NXAST_REG_MOVE`), `output:SUBFIELD` (`NXAST_OUTPUT_REG`) and
//! `learn` (`NXAST_LEARN`, its flow_mod specs until a zero header or the
//! end of the action).
//! Fields are NXM headers (class, field, has-mask, length in one 32-bit
//! word) and bit ranges; what a header names is the rule converter's
//! business. A subtype odpx does not know is `OFPBAC_BAD_EXP_TYPE`, a
//! body of the wrong length `OFPBAC_BAD_LEN`.

use super::error::{BadAction, OfError};
use super::wire::{Reader, Writer};

/// Nicira's experimenter id.
pub const NICIRA: u32 = 0x0000_2320;

mod subtype {
    pub const RESUBMIT: u16 = 1;
    pub const REG_MOVE: u16 = 6;
    pub const REG_LOAD: u16 = 7;
    pub const RESUBMIT_TABLE: u16 = 14;
    pub const OUTPUT_REG: u16 = 15;
    pub const LEARN: u16 = 16;
}

/// A learn spec's header: source and destination kinds, and width.
mod spec {
    pub const SRC_IMMEDIATE: u16 = 1 << 13;
    pub const DST_SHIFT: u16 = 11;
    pub const DST_MATCH: u16 = 0;
    pub const DST_LOAD: u16 = 1;
    pub const DST_OUTPUT: u16 = 2;
    pub const N_BITS: u16 = 0x7ff;
}

/// `resubmit`'s "the packet's own input port" (`OFPP_IN_PORT`, 16-bit).
pub const IN_PORT_16: u16 = 0xfff8;

/// One Nicira action (the experimenter body after the experimenter id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NxAction {
    /// `table` 255 (or `NXAST_RESUBMIT`): the current table.
    Resubmit {
        in_port: u16,
        table: u8,
    },
    /// Bits `ofs..ofs+n_bits` of the field `dst` get `value`.
    RegLoad {
        ofs: u16,
        n_bits: u16,
        dst: u32,
        value: u64,
    },
    RegMove {
        n_bits: u16,
        src_ofs: u16,
        dst_ofs: u16,
        src: u32,
        dst: u32,
    },
    OutputReg {
        ofs: u16,
        n_bits: u16,
        src: u32,
        max_len: u16,
    },
    Learn(NxLearn),
}

/// `NXAST_LEARN`: the rule to make, and how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NxLearn {
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub cookie: u64,
    pub flags: u16,
    pub table_id: u8,
    pub fin_idle_timeout: u16,
    pub fin_hard_timeout: u16,
    pub specs: Vec<NxLearnSpec>,
}

/// One flow_mod spec of a learn: `n_bits` from `src` to `dst`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NxLearnSpec {
    pub n_bits: u16,
    pub src: NxLearnSrc,
    pub dst: NxLearnDst,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NxLearnSrc {
    /// Bits of the packet's field (NXM header, offset).
    Field { header: u32, ofs: u16 },
    /// A constant, right-aligned (at most 128 bits here).
    Immediate(u128),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NxLearnDst {
    Match { header: u32, ofs: u16 },
    Load { header: u32, ofs: u16 },
    Output,
}

/// `ofs_nbits`: the offset in the top ten bits, `n_bits - 1` in the low six.
fn split_ofs_nbits(v: u16) -> (u16, u16) {
    (v >> 6, (v & 0x3f) + 1)
}

fn join_ofs_nbits(ofs: u16, n_bits: u16) -> u16 {
    (ofs << 6) | (n_bits.saturating_sub(1) & 0x3f)
}

impl NxAction {
    /// Reads the body of an experimenter action whose experimenter is
    /// [`NICIRA`] (`data`: from the subtype on, padding included).
    pub fn decode(data: &[u8]) -> Result<NxAction, OfError> {
        let bad_len = OfError::BadAction(BadAction::BadLen);
        let mut r = Reader::new(data, bad_len);
        let sub = r.u16()?;
        // Every subtype here is 16 or 24 bytes in all, 8 or 16 of body.
        let body_len = |n: usize| if data.len() == n { Ok(()) } else { Err(bad_len) };
        Ok(match sub {
            subtype::RESUBMIT | subtype::RESUBMIT_TABLE => {
                body_len(8)?;
                let in_port = r.u16()?;
                let table = if sub == subtype::RESUBMIT { 255 } else { r.u8()? };
                NxAction::Resubmit { in_port, table }
            }
            subtype::REG_LOAD => {
                body_len(16)?;
                let (ofs, n_bits) = split_ofs_nbits(r.u16()?);
                let dst = r.u32()?;
                let value = r.u64()?;
                NxAction::RegLoad {
                    ofs,
                    n_bits,
                    dst,
                    value,
                }
            }
            subtype::REG_MOVE => {
                body_len(16)?;
                NxAction::RegMove {
                    n_bits: r.u16()?,
                    src_ofs: r.u16()?,
                    dst_ofs: r.u16()?,
                    src: r.u32()?,
                    dst: r.u32()?,
                }
            }
            subtype::OUTPUT_REG => {
                body_len(16)?;
                let (ofs, n_bits) = split_ofs_nbits(r.u16()?);
                let src = r.u32()?;
                let max_len = r.u16()?;
                NxAction::OutputReg {
                    ofs,
                    n_bits,
                    src,
                    max_len,
                }
            }
            subtype::LEARN => NxAction::Learn(decode_learn(&mut r)?),
            _ => return Err(OfError::BadAction(BadAction::BadExpType)),
        })
    }

    /// The body, from the subtype on, padded so that the whole action
    /// (with its 8-byte header) is a multiple of 8 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        match self {
            NxAction::Resubmit { in_port, table } => {
                out.put_u16(subtype::RESUBMIT_TABLE);
                out.put_u16(*in_port);
                out.put_u8(*table);
                out.put_zeros(3);
            }
            NxAction::RegLoad {
                ofs,
                n_bits,
                dst,
                value,
            } => {
                out.put_u16(subtype::REG_LOAD);
                out.put_u16(join_ofs_nbits(*ofs, *n_bits));
                out.put_u32(*dst);
                out.put_u64(*value);
            }
            NxAction::RegMove {
                n_bits,
                src_ofs,
                dst_ofs,
                src,
                dst,
            } => {
                out.put_u16(subtype::REG_MOVE);
                out.put_u16(*n_bits);
                out.put_u16(*src_ofs);
                out.put_u16(*dst_ofs);
                out.put_u32(*src);
                out.put_u32(*dst);
            }
            NxAction::OutputReg {
                ofs,
                n_bits,
                src,
                max_len,
            } => {
                out.put_u16(subtype::OUTPUT_REG);
                out.put_u16(join_ofs_nbits(*ofs, *n_bits));
                out.put_u32(*src);
                out.put_u16(*max_len);
                out.put_zeros(6);
            }
            NxAction::Learn(l) => encode_learn(l, &mut out),
        }
        out
    }
}

/// The bytes an immediate of `n_bits` takes: whole 16-bit units.
fn immediate_len(n_bits: u16) -> usize {
    usize::from(n_bits).div_ceil(16) * 2
}

/// A learn's body after its subtype.
fn decode_learn(r: &mut Reader) -> Result<NxLearn, OfError> {
    let bad_arg = OfError::BadAction(BadAction::BadArgument);
    let mut l = NxLearn {
        idle_timeout: r.u16()?,
        hard_timeout: r.u16()?,
        priority: r.u16()?,
        cookie: r.u64()?,
        flags: r.u16()?,
        table_id: r.u8()?,
        ..NxLearn::default()
    };
    r.skip(1)?;
    l.fin_idle_timeout = r.u16()?;
    l.fin_hard_timeout = r.u16()?;
    while r.remaining() >= 2 {
        let header = r.u16()?;
        if header == 0 {
            // The end; what follows is padding.
            break;
        }
        let n_bits = header & spec::N_BITS;
        if n_bits == 0 || n_bits > 128 || header & 0xc000 != 0 {
            return Err(bad_arg);
        }
        let src = if header & spec::SRC_IMMEDIATE != 0 {
            let bytes = r.bytes(immediate_len(n_bits))?;
            NxLearnSrc::Immediate(bytes.iter().fold(0u128, |a, &b| (a << 8) | u128::from(b)))
        } else {
            NxLearnSrc::Field {
                header: r.u32()?,
                ofs: r.u16()?,
            }
        };
        let dst = match (header >> spec::DST_SHIFT) & 3 {
            spec::DST_MATCH => NxLearnDst::Match {
                header: r.u32()?,
                ofs: r.u16()?,
            },
            spec::DST_LOAD => NxLearnDst::Load {
                header: r.u32()?,
                ofs: r.u16()?,
            },
            spec::DST_OUTPUT => NxLearnDst::Output,
            _ => return Err(bad_arg),
        };
        l.specs.push(NxLearnSpec { n_bits, src, dst });
    }
    Ok(l)
}

/// A learn's body after its subtype (the caller pads the action).
fn encode_learn(l: &NxLearn, out: &mut Vec<u8>) {
    out.put_u16(subtype::LEARN);
    out.put_u16(l.idle_timeout);
    out.put_u16(l.hard_timeout);
    out.put_u16(l.priority);
    out.put_u64(l.cookie);
    out.put_u16(l.flags);
    out.put_u8(l.table_id);
    out.put_u8(0);
    out.put_u16(l.fin_idle_timeout);
    out.put_u16(l.fin_hard_timeout);
    for s in &l.specs {
        let (dst_kind, dst) = match &s.dst {
            NxLearnDst::Match { header, ofs } => (spec::DST_MATCH, Some((*header, *ofs))),
            NxLearnDst::Load { header, ofs } => (spec::DST_LOAD, Some((*header, *ofs))),
            NxLearnDst::Output => (spec::DST_OUTPUT, None),
        };
        let imm = matches!(s.src, NxLearnSrc::Immediate(_));
        out.put_u16(
            (if imm { spec::SRC_IMMEDIATE } else { 0 }) | (dst_kind << spec::DST_SHIFT) | (s.n_bits & spec::N_BITS),
        );
        match &s.src {
            NxLearnSrc::Field { header, ofs } => {
                out.put_u32(*header);
                out.put_u16(*ofs);
            }
            NxLearnSrc::Immediate(v) => {
                let n = immediate_len(s.n_bits);
                out.extend_from_slice(&v.to_be_bytes()[16 - n..]);
            }
        }
        if let Some((header, ofs)) = dst {
            out.put_u32(header);
            out.put_u16(ofs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::codec::hex;

    #[test]
    fn nicira_actions_decode_and_encode_back() {
        for (body, action) in [
            // load:0x1->NXM_NX_REG0[0..15]: ofs 0, 16 bits (0x000f), NXM_NX_REG0.
            (
                "0007000f000100040000000000000001",
                NxAction::RegLoad {
                    ofs: 0,
                    n_bits: 16,
                    dst: 0x0001_0004,
                    value: 1,
                },
            ),
            // move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]: 48 bits.
            (
                "00060030000000000000040600000206",
                NxAction::RegMove {
                    n_bits: 48,
                    src_ofs: 0,
                    dst_ofs: 0,
                    src: 0x0000_0406,
                    dst: 0x0000_0206,
                },
            ),
            // output:NXM_NX_REG0[0..15].
            (
                "000f000f000100040000000000000000",
                NxAction::OutputReg {
                    ofs: 0,
                    n_bits: 16,
                    src: 0x0001_0004,
                    max_len: 0,
                },
            ),
            // resubmit(,10).
            (
                "000efff80a000000",
                NxAction::Resubmit {
                    in_port: 0xfff8,
                    table: 10,
                },
            ),
        ] {
            let bytes = hex(body);
            assert_eq!(NxAction::decode(&bytes), Ok(action.clone()), "{body}");
            assert_eq!(action.encode(), bytes, "{body}");
        }
    }

    #[test]
    fn the_tutorials_learn_decodes_and_encodes_back() {
        // learn(table=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],
        // load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]), as the experimenter
        // body (subtype on), padded so the action is 80 bytes.
        let body = hex(concat!(
            "0010",
            "0000",
            "0000",
            "8000",
            "0000000000000000",
            "0000",
            "0a",
            "00",
            "0000",
            "0000",
            "000c",
            "00000802",
            "0000",
            "00000802",
            "0000",
            "0030",
            "00000406",
            "0000",
            "00000206",
            "0000",
            "0810",
            "00000002",
            "0000",
            "00010004",
            "0000",
            "000000000000"
        ));
        let learn = NxLearn {
            priority: 0x8000,
            table_id: 10,
            specs: vec![
                NxLearnSpec {
                    n_bits: 12,
                    src: NxLearnSrc::Field { header: 0x802, ofs: 0 },
                    dst: NxLearnDst::Match { header: 0x802, ofs: 0 },
                },
                NxLearnSpec {
                    n_bits: 48,
                    src: NxLearnSrc::Field { header: 0x406, ofs: 0 },
                    dst: NxLearnDst::Match { header: 0x206, ofs: 0 },
                },
                NxLearnSpec {
                    n_bits: 16,
                    src: NxLearnSrc::Field { header: 0x2, ofs: 0 },
                    dst: NxLearnDst::Load {
                        header: 0x0001_0004,
                        ofs: 0,
                    },
                },
            ],
            ..NxLearn::default()
        };
        assert_eq!(NxAction::decode(&body), Ok(NxAction::Learn(learn.clone())));
        let mut again = NxAction::Learn(learn).encode();
        again.resize(body.len(), 0);
        assert_eq!(again, body);
        // An immediate: 0x2a into reg2, 32 bits (two 16-bit units).
        let imm = NxLearnSpec {
            n_bits: 32,
            src: NxLearnSrc::Immediate(0x2a),
            dst: NxLearnDst::Load {
                header: 0x0001_0404,
                ofs: 0,
            },
        };
        let l = NxAction::Learn(NxLearn {
            specs: vec![
                imm,
                NxLearnSpec {
                    n_bits: 16,
                    src: NxLearnSrc::Field { header: 0x2, ofs: 0 },
                    dst: NxLearnDst::Output,
                },
            ],
            ..NxLearn::default()
        });
        assert_eq!(NxAction::decode(&l.encode()), Ok(l));
    }

    #[test]
    fn unknown_subtypes_and_bad_lengths_are_refused() {
        assert_eq!(
            NxAction::decode(&hex("00ff000000000000")),
            Err(OfError::BadAction(BadAction::BadExpType))
        );
        assert_eq!(
            NxAction::decode(&hex("0007000f00010004")),
            Err(OfError::BadAction(BadAction::BadLen))
        );
        // Plain resubmit (subtype 1) reads as resubmit to the current table.
        assert_eq!(
            NxAction::decode(&hex("0001000300000000")),
            Ok(NxAction::Resubmit { in_port: 3, table: 255 })
        );
    }
}
