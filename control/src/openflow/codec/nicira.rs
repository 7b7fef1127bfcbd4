//! Nicira extension actions (experimenter `0x00002320`): the body of an
//! OpenFlow experimenter action that carries one, as `ovs-ofctl` and
//! Open vSwitch write them.
//!
//! odpx reads and writes the ones its rules have: `resubmit`
//! (`NXAST_RESUBMIT`, `NXAST_RESUBMIT_TABLE`), `load` (`NXAST_REG_LOAD`),
//! `move` (`NXAST_REG_MOVE`) and `output:SUBFIELD` (`NXAST_OUTPUT_REG`).
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
}

/// `resubmit`'s "the packet's own input port" (`OFPP_IN_PORT`, 16-bit).
pub const IN_PORT_16: u16 = 0xfff8;

/// One Nicira action (the experimenter body after the experimenter id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NxAction {
    /// `table` 255 (or `NXAST_RESUBMIT`): the current table.
    Resubmit { in_port: u16, table: u8 },
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
        }
        out
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
