//! Packets between switch and controller: PACKET_IN and PACKET_OUT.

use super::action::{decode_actions, encode_actions, Action};
use super::error::{BadAction, OfError};
use super::oxm::{decode_match, encode_match, Oxm};
use super::wire::{Reader, Writer};

/// `ofp_packet_in_reason`.
pub mod reason {
    pub const NO_MATCH: u8 = 0;
    pub const ACTION: u8 = 1;
    pub const INVALID_TTL: u8 = 2;
}

/// PACKET_IN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    /// The packet's full length (`data` may be cut to a max_len).
    pub total_len: u16,
    /// [`reason`].
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    /// The packet's metadata: in_port, metadata, tunnel id.
    pub matched: Vec<Oxm>,
    pub data: Vec<u8>,
}

impl PacketIn {
    pub fn decode(r: &mut Reader) -> Result<PacketIn, OfError> {
        let buffer_id = r.u32()?;
        let total_len = r.u16()?;
        let reason = r.u8()?;
        let table_id = r.u8()?;
        let cookie = r.u64()?;
        let matched = decode_match(r)?;
        r.skip(2)?;
        Ok(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            matched,
            data: r.rest().to_vec(),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.buffer_id);
        out.put_u16(self.total_len);
        out.put_u8(self.reason);
        out.put_u8(self.table_id);
        out.put_u64(self.cookie);
        encode_match(out, &self.matched);
        out.put_zeros(2);
        out.extend_from_slice(&self.data);
    }
}

/// PACKET_OUT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

impl PacketOut {
    pub fn decode(r: &mut Reader) -> Result<PacketOut, OfError> {
        let buffer_id = r.u32()?;
        let in_port = r.u32()?;
        let actions_len = r.u16()? as usize;
        r.skip(6)?;
        let mut actions = r.sub(actions_len, OfError::BadAction(BadAction::BadLen))?;
        Ok(PacketOut {
            buffer_id,
            in_port,
            actions: decode_actions(&mut actions)?,
            data: r.rest().to_vec(),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.buffer_id);
        out.put_u32(self.in_port);
        let at = out.len();
        out.put_u16(0);
        out.put_zeros(6);
        let start = out.len();
        encode_actions(out, &self.actions);
        let len = out.len() - start;
        out.patch_u16(at, len);
        out.extend_from_slice(&self.data);
    }
}
