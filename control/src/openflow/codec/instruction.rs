//! OpenFlow 1.3 instructions (`ofp_instruction_*`): what a flow entry
//! does with a packet it matched.
//!
//! Lengths are multiples of 8 (`OFPBIC_BAD_LEN` otherwise); an unknown
//! type is `OFPBIC_UNKNOWN_INST`. The actions inside `apply_actions` and
//! `write_actions` keep their own errors (`OFPBAC_*`). Which
//! combinations a table accepts (one of each kind, a goto to a later
//! table) the rule converter checks.

use super::action::{decode_actions, encode_actions, Action};
use super::error::{BadInstruction, OfError};
use super::wire::{Reader, Writer};

/// One instruction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata { metadata: u64, mask: u64 },
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
    Meter(u32),
    Experimenter { experimenter: u32, data: Vec<u8> },
}

mod kind {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
    pub const EXPERIMENTER: u16 = 0xffff;
}

impl Instruction {
    /// The wire type.
    pub fn kind(&self) -> u16 {
        match self {
            Instruction::GotoTable(_) => kind::GOTO_TABLE,
            Instruction::WriteMetadata { .. } => kind::WRITE_METADATA,
            Instruction::WriteActions(_) => kind::WRITE_ACTIONS,
            Instruction::ApplyActions(_) => kind::APPLY_ACTIONS,
            Instruction::ClearActions => kind::CLEAR_ACTIONS,
            Instruction::Meter(_) => kind::METER,
            Instruction::Experimenter { .. } => kind::EXPERIMENTER,
        }
    }

    /// Reads one instruction.
    pub fn decode(r: &mut Reader) -> Result<Instruction, OfError> {
        let bad = OfError::BadInstruction(BadInstruction::BadLen);
        let kind = r.u16().map_err(|_| bad)?;
        let len = r.u16().map_err(|_| bad)? as usize;
        if len < 8 || !len.is_multiple_of(8) {
            return Err(bad);
        }
        let mut body = r.sub(len - 4, bad)?;
        let fixed = |want: usize| if len == want { Ok(()) } else { Err(bad) };
        Ok(match kind {
            kind::GOTO_TABLE => {
                fixed(8)?;
                Instruction::GotoTable(body.u8()?)
            }
            kind::WRITE_METADATA => {
                fixed(24)?;
                body.skip(4)?;
                Instruction::WriteMetadata {
                    metadata: body.u64()?,
                    mask: body.u64()?,
                }
            }
            kind::WRITE_ACTIONS | kind::APPLY_ACTIONS => {
                body.skip(4)?;
                let actions = decode_actions(&mut body)?;
                if kind == kind::WRITE_ACTIONS {
                    Instruction::WriteActions(actions)
                } else {
                    Instruction::ApplyActions(actions)
                }
            }
            kind::CLEAR_ACTIONS => {
                fixed(8)?;
                Instruction::ClearActions
            }
            kind::METER => {
                fixed(8)?;
                Instruction::Meter(body.u32()?)
            }
            kind::EXPERIMENTER => Instruction::Experimenter {
                experimenter: body.u32()?,
                data: body.rest().to_vec(),
            },
            _ => return Err(OfError::BadInstruction(BadInstruction::UnknownInst)),
        })
    }

    /// Appends the instruction.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.kind());
        out.put_u16(0);
        match self {
            Instruction::GotoTable(t) => {
                out.put_u8(*t);
                out.put_zeros(3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                out.put_zeros(4);
                out.put_u64(*metadata);
                out.put_u64(*mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                out.put_zeros(4);
                encode_actions(out, a);
            }
            Instruction::ClearActions => out.put_zeros(4),
            Instruction::Meter(m) => out.put_u32(*m),
            Instruction::Experimenter { experimenter, data } => {
                out.put_u32(*experimenter);
                out.extend_from_slice(data);
                out.pad8_from(start);
            }
        }
        let len = out.len() - start;
        out.patch_u16(start + 2, len);
    }
}

/// Reads instructions until `r` is empty.
pub fn decode_instructions(r: &mut Reader) -> Result<Vec<Instruction>, OfError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(Instruction::decode(r)?);
    }
    Ok(out)
}

/// Appends `instructions`.
pub fn encode_instructions(out: &mut Vec<u8>, instructions: &[Instruction]) {
    for i in instructions {
        i.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::hex;
    use super::*;

    fn decode(s: &str) -> Result<Vec<Instruction>, OfError> {
        let bytes = hex(s);
        let out = decode_instructions(&mut Reader::new(
            &bytes,
            OfError::BadInstruction(BadInstruction::BadLen),
        ))?;
        let mut again = Vec::new();
        encode_instructions(&mut again, &out);
        assert_eq!(again, bytes);
        Ok(out)
    }

    #[test]
    fn ovs_ofctls_instructions_decode_and_encode_back() {
        // write_metadata:0x5/0xff (type 2, length 24), goto_table:2 (type 1, length 8).
        assert_eq!(
            decode(concat!(
                "00020018",
                "00000000",
                "0000000000000005",
                "00000000000000ff",
                "00010008",
                "02000000"
            )),
            Ok(vec![
                Instruction::WriteMetadata {
                    metadata: 5,
                    mask: 0xff
                },
                Instruction::GotoTable(2)
            ])
        );
        for i in [
            Instruction::ClearActions,
            Instruction::Meter(4),
            Instruction::WriteActions(vec![Action::Output { port: 3, max_len: 0 }]),
            Instruction::ApplyActions(vec![]),
            Instruction::Experimenter {
                experimenter: 0x2320,
                data: vec![1, 2, 3, 4, 5, 6, 7, 8],
            },
        ] {
            let mut b = Vec::new();
            i.encode(&mut b);
            assert_eq!(b.len() % 8, 0);
            let back = decode_instructions(&mut Reader::new(&b, OfError::BadInstruction(BadInstruction::BadLen)));
            assert_eq!(back, Ok(vec![i]));
        }
    }

    #[test]
    fn malformed_instructions_name_their_fault() {
        let err = |c| Err(OfError::BadInstruction(c));
        assert_eq!(decode("0001000402000000"), err(BadInstruction::BadLen));
        assert_eq!(decode("0002001000000000"), err(BadInstruction::BadLen));
        assert_eq!(decode("0009000800000000"), err(BadInstruction::UnknownInst));
        // An action inside keeps its own error.
        assert_eq!(
            decode("00040010000000000063000800000000"),
            Err(OfError::BadAction(super::super::error::BadAction::BadType))
        );
    }
}
