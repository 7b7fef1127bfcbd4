//! Groups on the wire: GROUP_MOD (`ofp_group_mod`), its buckets
//! (`ofp_bucket`), and the group multipart replies (GROUP stats,
//! GROUP_DESC, GROUP_FEATURES).
//!
//! A bucket's length covers its 16-byte header and its actions, and is a
//! multiple of 8; one that is shorter than its header, or longer than
//! what is left, is `OFPGMFC_BAD_BUCKET`. An unknown command is
//! `OFPGMFC_BAD_COMMAND`. Whether the group makes sense (its type, its
//! buckets' actions, the groups it names) is decided later, by the
//! converter and the group table.

use super::action::{decode_actions, encode_actions, Action};
use super::error::{GroupModFailed, OfError};
use super::wire::{Reader, Writer};

/// `ofp_group_mod_command`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupModCommand {
    Add = 0,
    Modify = 1,
    Delete = 2,
}

/// One bucket as it travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireBucket {
    pub weight: u16,
    /// `OFPP_ANY` when unused.
    pub watch_port: u32,
    /// `OFPG_ANY` when unused.
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

/// A GROUP_MOD's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMod {
    pub command: GroupModCommand,
    /// `ofp_group_type` (checked by the converter).
    pub kind: u8,
    pub group_id: u32,
    pub buckets: Vec<WireBucket>,
}

/// A group as GROUP_DESC describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDesc {
    pub kind: u8,
    pub group_id: u32,
    pub buckets: Vec<WireBucket>,
}

/// One group's counters (`ofp_group_stats`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStats {
    pub group_id: u32,
    pub ref_count: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// Each bucket's packets and bytes.
    pub buckets: Vec<(u64, u64)>,
}

/// What the switch's groups can do (`ofp_group_features`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupFeatures {
    /// Bit N: group type N.
    pub types: u32,
    pub capabilities: u32,
    /// Per type: groups at most.
    pub max_groups: [u32; 4],
    /// Per type: bit N for action type N.
    pub actions: [u32; 4],
}

fn bad_bucket() -> OfError {
    OfError::GroupModFailed(GroupModFailed::BadBucket)
}

impl WireBucket {
    fn decode(r: &mut Reader) -> Result<WireBucket, OfError> {
        let len = r.u16().map_err(|_| bad_bucket())? as usize;
        if len < 16 || !len.is_multiple_of(8) || len - 2 > r.remaining() {
            return Err(bad_bucket());
        }
        let mut b = r.sub(len - 2, bad_bucket())?;
        let weight = b.u16()?;
        let watch_port = b.u32()?;
        let watch_group = b.u32()?;
        b.skip(4)?;
        Ok(WireBucket {
            weight,
            watch_port,
            watch_group,
            actions: decode_actions(&mut b)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u16(self.weight);
        out.put_u32(self.watch_port);
        out.put_u32(self.watch_group);
        out.put_zeros(4);
        encode_actions(out, &self.actions);
        let len = out.len() - start;
        out.patch_u16(start, len);
    }
}

fn decode_buckets(r: &mut Reader) -> Result<Vec<WireBucket>, OfError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(WireBucket::decode(r)?);
    }
    Ok(out)
}

impl GroupMod {
    pub fn decode(r: &mut Reader) -> Result<GroupMod, OfError> {
        let command = match r.u16()? {
            0 => GroupModCommand::Add,
            1 => GroupModCommand::Modify,
            2 => GroupModCommand::Delete,
            _ => return Err(OfError::GroupModFailed(GroupModFailed::BadCommand)),
        };
        let kind = r.u8()?;
        r.skip(1)?;
        let group_id = r.u32()?;
        Ok(GroupMod {
            command,
            kind,
            group_id,
            buckets: decode_buckets(r)?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.command as u16);
        out.put_u8(self.kind);
        out.put_zeros(1);
        out.put_u32(self.group_id);
        for b in &self.buckets {
            b.encode(out);
        }
    }
}

impl GroupDesc {
    pub fn decode(r: &mut Reader) -> Result<GroupDesc, OfError> {
        let len = r.u16()? as usize;
        let short = r.short();
        let mut d = r.sub(len.checked_sub(2).ok_or_else(|| r.short())?, short)?;
        let kind = d.u8()?;
        d.skip(1)?;
        let group_id = d.u32()?;
        Ok(GroupDesc {
            kind,
            group_id,
            buckets: decode_buckets(&mut d)?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.kind);
        out.put_zeros(1);
        out.put_u32(self.group_id);
        for b in &self.buckets {
            b.encode(out);
        }
        let len = out.len() - start;
        out.patch_u16(start, len);
    }
}

impl GroupStats {
    pub fn decode(r: &mut Reader) -> Result<GroupStats, OfError> {
        let len = r.u16()? as usize;
        r.skip(2)?;
        let group_id = r.u32()?;
        let ref_count = r.u32()?;
        r.skip(4)?;
        let mut s = GroupStats {
            group_id,
            ref_count,
            packet_count: r.u64()?,
            byte_count: r.u64()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
            buckets: Vec::new(),
        };
        for _ in 0..len.saturating_sub(40) / 16 {
            s.buckets.push((r.u64()?, r.u64()?));
        }
        Ok(s)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16((40 + 16 * self.buckets.len()) as u16);
        out.put_zeros(2);
        out.put_u32(self.group_id);
        out.put_u32(self.ref_count);
        out.put_zeros(4);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        for (p, b) in &self.buckets {
            out.put_u64(*p);
            out.put_u64(*b);
        }
    }
}

impl GroupFeatures {
    pub fn decode(r: &mut Reader) -> Result<GroupFeatures, OfError> {
        let types = r.u32()?;
        let capabilities = r.u32()?;
        let mut max_groups = [0; 4];
        for v in &mut max_groups {
            *v = r.u32()?;
        }
        let mut actions = [0; 4];
        for v in &mut actions {
            *v = r.u32()?;
        }
        Ok(GroupFeatures {
            types,
            capabilities,
            max_groups,
            actions,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.types);
        out.put_u32(self.capabilities);
        for v in self.max_groups.iter().chain(&self.actions) {
            out.put_u32(*v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::hex;
    use super::*;

    #[test]
    fn os_kens_group_mod_decodes_and_encodes_back() {
        // OFPGC_ADD, type select, group 0; buckets of weight 1 and 2,
        // output:2 and output:3, watch port and group ANY.
        let body = hex(concat!(
            "0000010000000000",
            "00200001ffffffffffffffff00000000",
            "0000001000000002ffe5000000000000",
            "00200002ffffffffffffffff00000000",
            "0000001000000003ffe5000000000000",
        ));
        let gm = GroupMod::decode(&mut Reader::new(&body, bad_bucket())).unwrap();
        assert_eq!((gm.command, gm.kind, gm.group_id), (GroupModCommand::Add, 1, 0));
        assert_eq!(gm.buckets.len(), 2);
        assert_eq!(gm.buckets[1].weight, 2);
        assert_eq!(
            gm.buckets[1].actions,
            vec![Action::Output {
                port: 3,
                max_len: 0xffe5
            }]
        );
        let mut again = Vec::new();
        gm.encode(&mut again);
        assert_eq!(again, body);
    }

    #[test]
    fn malformed_group_mods_name_their_fault() {
        let err = |s: &str| GroupMod::decode(&mut Reader::new(&hex(s), bad_bucket())).unwrap_err();
        let bad = |c| OfError::GroupModFailed(c);
        assert_eq!(err("0007000000000001"), bad(GroupModFailed::BadCommand));
        // A bucket shorter than its header, and one longer than the message.
        assert_eq!(
            err("0000000000000001000800000000000000000000"),
            bad(GroupModFailed::BadBucket)
        );
        assert_eq!(
            err("000000000000000100400001ffffffffffffffff00000000"),
            bad(GroupModFailed::BadBucket)
        );
    }

    #[test]
    fn stats_desc_and_features_round_trip() {
        let s = GroupStats {
            group_id: 4,
            ref_count: 2,
            packet_count: 10,
            byte_count: 1000,
            duration_sec: 3,
            duration_nsec: 5,
            buckets: vec![(4, 400), (6, 600)],
        };
        let mut b = Vec::new();
        s.encode(&mut b);
        assert_eq!(b.len(), 72);
        assert_eq!(GroupStats::decode(&mut Reader::new(&b, bad_bucket())).unwrap(), s);
        let d = GroupDesc {
            kind: 3,
            group_id: 9,
            buckets: vec![WireBucket {
                weight: 0,
                watch_port: 2,
                watch_group: 0xffff_ffff,
                actions: vec![Action::Output { port: 2, max_len: 0 }],
            }],
        };
        let mut b = Vec::new();
        d.encode(&mut b);
        assert_eq!(GroupDesc::decode(&mut Reader::new(&b, bad_bucket())).unwrap(), d);
        let f = GroupFeatures {
            types: 0xf,
            capabilities: 7,
            max_groups: [1, 2, 3, 4],
            actions: [5, 6, 7, 8],
        };
        let mut b = Vec::new();
        f.encode(&mut b);
        assert_eq!(GroupFeatures::decode(&mut Reader::new(&b, bad_bucket())).unwrap(), f);
    }
}
