//! OpenFlow 1.3 actions (`ofp_action_*`): what `apply_actions`,
//! `write_actions`, packet-outs and group buckets carry.
//!
//! Each action is a TLV whose length is a multiple of 8 and at least 8.
//! A length that breaks that, or differs from the action's fixed size, is
//! `OFPBAC_BAD_LEN`; an unknown type `OFPBAC_BAD_TYPE`; a `set_field`
//! whose OXM is unknown, masked or out of range `OFPBAC_BAD_SET_TYPE`,
//! `OFPBAC_BAD_SET_ARGUMENT` or `OFPBAC_BAD_SET_LEN`. Whether the switch
//! can carry an action out (a port that exists, a group) is decided
//! later, by the rule converter.

use super::error::{BadAction, BadMatch, OfError};
use super::oxm::Oxm;
use super::wire::{Reader, Writer};

/// Reserved port numbers (`ofp_port_no`).
pub mod port {
    /// The highest number of a physical port.
    pub const MAX: u32 = 0xffff_ff00;
    pub const IN_PORT: u32 = 0xffff_fff8;
    pub const TABLE: u32 = 0xffff_fff9;
    pub const NORMAL: u32 = 0xffff_fffa;
    pub const FLOOD: u32 = 0xffff_fffb;
    pub const ALL: u32 = 0xffff_fffc;
    pub const CONTROLLER: u32 = 0xffff_fffd;
    pub const LOCAL: u32 = 0xffff_fffe;
    pub const ANY: u32 = 0xffff_ffff;
}

/// `max_len` that asks for the whole packet, unbuffered (`OFPCML_NO_BUFFER`).
pub const NO_BUFFER_LEN: u16 = 0xffff;

/// One action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `max_len` matters only for the CONTROLLER port.
    Output {
        port: u32,
        max_len: u16,
    },
    CopyTtlOut,
    CopyTtlIn,
    SetMplsTtl(u8),
    DecMplsTtl,
    PushVlan(u16),
    PopVlan,
    PushMpls(u16),
    /// The Ethertype of what lies under the popped label.
    PopMpls(u16),
    SetQueue(u32),
    Group(u32),
    SetNwTtl(u8),
    DecNwTtl,
    SetField(Oxm),
    PushPbb(u16),
    PopPbb,
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
}

mod kind {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const PUSH_PBB: u16 = 26;
    pub const POP_PBB: u16 = 27;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// The body an action carries after its 4-byte header.
enum Body {
    /// Nothing but padding (4 bytes).
    Empty,
    /// A u8 and 3 bytes of padding.
    Byte,
    /// A u16 and 2 bytes of padding.
    Short,
    /// A u32.
    Word,
}

impl Action {
    /// The wire type.
    pub fn kind(&self) -> u16 {
        use Action::*;
        match self {
            Output { .. } => kind::OUTPUT,
            CopyTtlOut => kind::COPY_TTL_OUT,
            CopyTtlIn => kind::COPY_TTL_IN,
            SetMplsTtl(_) => kind::SET_MPLS_TTL,
            DecMplsTtl => kind::DEC_MPLS_TTL,
            PushVlan(_) => kind::PUSH_VLAN,
            PopVlan => kind::POP_VLAN,
            PushMpls(_) => kind::PUSH_MPLS,
            PopMpls(_) => kind::POP_MPLS,
            SetQueue(_) => kind::SET_QUEUE,
            Group(_) => kind::GROUP,
            SetNwTtl(_) => kind::SET_NW_TTL,
            DecNwTtl => kind::DEC_NW_TTL,
            SetField(_) => kind::SET_FIELD,
            PushPbb(_) => kind::PUSH_PBB,
            PopPbb => kind::POP_PBB,
            Experimenter { .. } => kind::EXPERIMENTER,
        }
    }

    /// Reads one action.
    pub fn decode(r: &mut Reader) -> Result<Action, OfError> {
        let bad = |c| OfError::BadAction(c);
        let kind = r.u16().map_err(|_| bad(BadAction::BadLen))?;
        let len = r.u16().map_err(|_| bad(BadAction::BadLen))? as usize;
        if len < 8 || !len.is_multiple_of(8) {
            return Err(bad(BadAction::BadLen));
        }
        let mut body = r.sub(len - 4, bad(BadAction::BadLen))?;
        let fixed = |len_ok: bool| if len_ok { Ok(()) } else { Err(bad(BadAction::BadLen)) };
        let action = match kind {
            kind::OUTPUT => {
                fixed(len == 16)?;
                let port = body.u32()?;
                let max_len = body.u16()?;
                Action::Output { port, max_len }
            }
            kind::SET_FIELD => decode_set_field(&mut body)?,
            kind::EXPERIMENTER => Action::Experimenter {
                experimenter: body.u32()?,
                data: body.rest().to_vec(),
            },
            _ => {
                fixed(len == 8)?;
                decode_fixed(kind, &mut body)?
            }
        };
        Ok(action)
    }

    /// Appends the action.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.kind());
        out.put_u16(0);
        match self {
            Action::Output { port, max_len } => {
                out.put_u32(*port);
                out.put_u16(*max_len);
                out.put_zeros(6);
            }
            Action::SetField(oxm) => {
                oxm.encode(out);
                out.pad8_from(start);
            }
            Action::Experimenter { experimenter, data } => {
                out.put_u32(*experimenter);
                out.extend_from_slice(data);
                out.pad8_from(start);
            }
            Action::SetMplsTtl(v) | Action::SetNwTtl(v) => {
                out.put_u8(*v);
                out.put_zeros(3);
            }
            Action::PushVlan(t) | Action::PushMpls(t) | Action::PopMpls(t) | Action::PushPbb(t) => {
                out.put_u16(*t);
                out.put_zeros(2);
            }
            Action::SetQueue(v) | Action::Group(v) => out.put_u32(*v),
            Action::CopyTtlOut
            | Action::CopyTtlIn
            | Action::DecMplsTtl
            | Action::PopVlan
            | Action::DecNwTtl
            | Action::PopPbb => out.put_zeros(4),
        }
        let len = out.len() - start;
        out.patch_u16(start + 2, len);
    }
}

/// The 8-byte actions, by type.
fn decode_fixed(kind: u16, body: &mut Reader) -> Result<Action, OfError> {
    let shape = match kind {
        kind::COPY_TTL_OUT
        | kind::COPY_TTL_IN
        | kind::DEC_MPLS_TTL
        | kind::POP_VLAN
        | kind::DEC_NW_TTL
        | kind::POP_PBB => Body::Empty,
        kind::SET_MPLS_TTL | kind::SET_NW_TTL => Body::Byte,
        kind::PUSH_VLAN | kind::PUSH_MPLS | kind::POP_MPLS | kind::PUSH_PBB => Body::Short,
        kind::SET_QUEUE | kind::GROUP => Body::Word,
        _ => return Err(OfError::BadAction(BadAction::BadType)),
    };
    let v = match shape {
        Body::Empty => 0,
        Body::Byte => u32::from(body.u8()?),
        Body::Short => u32::from(body.u16()?),
        Body::Word => body.u32()?,
    };
    Ok(match kind {
        kind::COPY_TTL_OUT => Action::CopyTtlOut,
        kind::COPY_TTL_IN => Action::CopyTtlIn,
        kind::DEC_MPLS_TTL => Action::DecMplsTtl,
        kind::POP_VLAN => Action::PopVlan,
        kind::DEC_NW_TTL => Action::DecNwTtl,
        kind::POP_PBB => Action::PopPbb,
        kind::SET_MPLS_TTL => Action::SetMplsTtl(v as u8),
        kind::SET_NW_TTL => Action::SetNwTtl(v as u8),
        kind::PUSH_VLAN => Action::PushVlan(v as u16),
        kind::PUSH_MPLS => Action::PushMpls(v as u16),
        kind::POP_MPLS => Action::PopMpls(v as u16),
        kind::PUSH_PBB => Action::PushPbb(v as u16),
        kind::SET_QUEUE => Action::SetQueue(v),
        _ => Action::Group(v),
    })
}

/// A `set_field`: one unmasked OXM, then padding.
fn decode_set_field(body: &mut Reader) -> Result<Action, OfError> {
    let oxm = Oxm::decode(body).map_err(|e| {
        OfError::BadAction(match e {
            OfError::BadMatch(BadMatch::BadField) => BadAction::BadSetType,
            OfError::BadMatch(BadMatch::BadLen) | OfError::BadAction(BadAction::BadLen) => BadAction::BadSetLen,
            _ => BadAction::BadSetArgument,
        })
    })?;
    if oxm.mask.is_some() {
        return Err(OfError::BadAction(BadAction::BadSetArgument));
    }
    if body.remaining() >= 8 || body.rest().iter().any(|&b| b != 0) {
        return Err(OfError::BadAction(BadAction::BadSetLen));
    }
    Ok(Action::SetField(oxm))
}

/// Reads actions until `r` is empty.
pub fn decode_actions(r: &mut Reader) -> Result<Vec<Action>, OfError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(Action::decode(r)?);
    }
    Ok(out)
}

/// Appends `actions`.
pub fn encode_actions(out: &mut Vec<u8>, actions: &[Action]) {
    for a in actions {
        a.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::hex;
    use super::super::oxm::OxmField;
    use super::*;

    fn decode(s: &str) -> Result<Vec<Action>, OfError> {
        let bytes = hex(s);
        let actions = decode_actions(&mut Reader::new(&bytes, OfError::BadAction(BadAction::BadLen)))?;
        let mut again = Vec::new();
        encode_actions(&mut again, &actions);
        assert_eq!(again, bytes, "re-encoded");
        Ok(actions)
    }

    #[test]
    fn ovs_ofctls_actions_decode_and_encode_back() {
        // push_vlan:0x8100 (type 17, length 8), set_field:4196->vlan_vid
        // (type 25, length 16: OXM 0x80000c02 0x1064 and 6 bytes of padding).
        assert_eq!(
            decode(concat!(
                "0011000881000000",
                "00190010",
                "80000c02",
                "1064",
                "000000000000"
            )),
            Ok(vec![
                Action::PushVlan(0x8100),
                Action::SetField(Oxm::exact(OxmField::VlanVid, 0x1064))
            ])
        );
        // output:2 (type 0, length 16, max_len 0), CONTROLLER:128.
        assert_eq!(
            decode("0000001000000002000000000000000000000010fffffffd0080000000000000"),
            Ok(vec![
                Action::Output { port: 2, max_len: 0 },
                Action::Output {
                    port: port::CONTROLLER,
                    max_len: 128
                }
            ])
        );
        for a in [
            Action::CopyTtlOut,
            Action::SetMplsTtl(9),
            Action::PopMpls(0x0800),
            Action::SetQueue(3),
            Action::Group(7),
            Action::DecNwTtl,
            Action::PopPbb,
            Action::Experimenter {
                experimenter: 0x2320,
                data: vec![0, 1, 2, 3, 4, 5, 6, 7],
            },
        ] {
            let mut b = Vec::new();
            a.encode(&mut b);
            assert_eq!(b.len() % 8, 0);
            let back = decode_actions(&mut Reader::new(&b, OfError::BadAction(BadAction::BadLen)));
            assert_eq!(back, Ok(vec![a]));
        }
    }

    #[test]
    fn malformed_actions_name_their_fault() {
        let err = |c| Err(OfError::BadAction(c));
        assert_eq!(decode("00000008ffffffff"), err(BadAction::BadLen));
        assert_eq!(decode("0011000c810000000000000000000000"), err(BadAction::BadLen));
        assert_eq!(decode("00110010"), err(BadAction::BadLen));
        assert_eq!(decode("0063000800000000"), err(BadAction::BadType));
        // set_field of an unknown field, of a masked field, of VID 0x2000.
        assert_eq!(decode("00190010800078020000000000000000"), err(BadAction::BadSetType));
        assert_eq!(decode("001900108000070c0100000000000100"), err(BadAction::BadSetLen));
        assert_eq!(
            decode("0019001080000c022000000000000000"),
            err(BadAction::BadSetArgument)
        );
    }
}
