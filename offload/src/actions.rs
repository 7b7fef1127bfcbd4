//! Datapath actions ↔ `OVS_ACTION_ATTR_*` netlink attributes.
//!
//! One [`OdpAction`] list serves the userspace fast path and the kernel; this
//! module is where the kernel's constraints show:
//! * `tnl_push`/`tnl_pop` are userspace-only (the kernel rejects them): the
//!   encoder refuses them with the kernel form to use instead
//!   (`set(tunnel(...))` + output to a VXLAN vport).
//! * A plain `set` carries one key attribute; a masked set carries the value
//!   and the mask back to back in one attribute; a tunnel set is never
//!   masked.
//! * Actions odpx does not interpret (conntrack, check_pkt_len, ...) decode
//!   to [`OdpAction::Opaque`] and encode back byte for byte.

use crate::error::{DecodeError, EncodeError};
use crate::keys::{field_bytes, read_fields, read_tunnel, write_tunnel};
use crate::nla::{self, Attr, Writer};
use crate::uapi::{action_attr as aa, key_attr, sample_attr, userspace_attr};
use odpx_classifier::key::{attr, FlowKey};
use odpx_classifier::odp::{attr_fields, OdpAction, SetAction};

const ACT: &str = "actions";

/// Encodes an action list as the contents of an ACTIONS attribute (an
/// empty list, a drop, encodes as nothing).
pub fn encode_actions(actions: &[OdpAction]) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new();
    put_actions(&mut w, actions)?;
    Ok(w.into_bytes())
}

fn settable_ty(bit: u32) -> Result<u16, EncodeError> {
    if bit.count_ones() != 1 || odpx_classifier::odp::actions::SETTABLE & bit == 0 {
        return Err(EncodeError(format!("set action on attribute bits {bit:#x}")));
    }
    Ok(bit.trailing_zeros() as u16)
}

fn put_actions(w: &mut Writer, actions: &[OdpAction]) -> Result<(), EncodeError> {
    for a in actions {
        match a {
            OdpAction::Output(p) => w.put_u32(aa::OUTPUT, *p),
            OdpAction::Set(s) => {
                let ty = settable_ty(s.attr)?;
                let at = w.begin_nested(aa::SET);
                match s.attr {
                    attr::TUNNEL => {
                        let t = w.begin_nested(key_attr::TUNNEL);
                        write_tunnel(w, &s.key);
                        w.end_nested(t);
                    }
                    attr::VLAN => w.put_be16(ty, s.key.vlan_tci),
                    bit => w.put(ty, &field_bytes(bit, &s.key, s.key.mpls_depth)),
                }
                w.end_nested(at);
            }
            OdpAction::SetMasked(s) => {
                let ty = settable_ty(s.attr)?;
                let (mut key, mut mask) = match s.attr {
                    attr::TUNNEL => {
                        return Err(EncodeError(
                            "a masked set of tunnel fields: the kernel only takes a whole set(tunnel(...))".into(),
                        ))
                    }
                    attr::VLAN => (s.key.vlan_tci.to_be_bytes().to_vec(), s.mask.vlan_tci.to_be_bytes().to_vec()),
                    bit => (
                        field_bytes(bit, &s.key, s.key.mpls_depth),
                        field_bytes(bit, &s.mask, s.key.mpls_depth),
                    ),
                };
                key.append(&mut mask);
                let at = w.begin_nested(aa::SET_MASKED);
                w.put(ty, &key);
                w.end_nested(at);
            }
            OdpAction::PushVlan { tpid, tci } => {
                let mut b = tpid.to_be_bytes().to_vec();
                b.extend_from_slice(&tci.to_be_bytes());
                w.put(aa::PUSH_VLAN, &b);
            }
            OdpAction::PopVlan => w.put_flag(aa::POP_VLAN),
            OdpAction::PushMpls { lse, ethertype } => {
                let mut b = lse.to_be_bytes().to_vec();
                b.extend_from_slice(&ethertype.to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                w.put(aa::PUSH_MPLS, &b);
            }
            OdpAction::PopMpls(et) => w.put_be16(aa::POP_MPLS, *et),
            OdpAction::Recirc(id) => w.put_u32(aa::RECIRC, *id),
            OdpAction::Hash { alg, basis } => {
                let mut b = alg.to_ne_bytes().to_vec();
                b.extend_from_slice(&basis.to_ne_bytes());
                w.put(aa::HASH, &b);
            }
            OdpAction::Userspace {
                pid,
                userdata,
                actions,
                tunnel_out_port,
            } => {
                let at = w.begin_nested(aa::USERSPACE);
                w.put_u32(userspace_attr::PID, *pid);
                if let Some(d) = userdata {
                    w.put(userspace_attr::USERDATA, d);
                }
                if let Some(p) = tunnel_out_port {
                    w.put_u32(userspace_attr::EGRESS_TUN_PORT, *p);
                }
                if *actions {
                    w.put_flag(userspace_attr::ACTIONS);
                }
                w.end_nested(at);
            }
            OdpAction::TunnelPush(_) | OdpAction::TunnelPop(_) => {
                return Err(EncodeError(
                    "tnl_push/tnl_pop are userspace-only actions; in the kernel use set(tunnel(...)) and output to a vxlan vport (push), or match tunnel() on packets from a vxlan vport (pop)"
                        .into(),
                ))
            }
            OdpAction::Clone(inner) => {
                let at = w.begin_nested(aa::CLONE);
                put_actions(w, inner)?;
                w.end_nested(at);
            }
            OdpAction::Sample { probability, actions } => {
                let at = w.begin_nested(aa::SAMPLE);
                w.put_u32(sample_attr::PROBABILITY, *probability);
                let inner = w.begin_nested(sample_attr::ACTIONS);
                put_actions(w, actions)?;
                w.end_nested(inner);
                w.end_nested(at);
            }
            OdpAction::Trunc(n) => w.put_u32(aa::TRUNC, *n),
            OdpAction::Meter(n) => w.put_u32(aa::METER, *n),
            OdpAction::CtClear => w.put_flag(aa::CT_CLEAR),
            OdpAction::Opaque { attr, data } => w.put(*attr, data),
        }
    }
    Ok(())
}

/// Decodes the contents of an ACTIONS attribute.
pub fn decode_actions(buf: &[u8]) -> Result<Vec<OdpAction>, DecodeError> {
    let mut out = Vec::new();
    for a in nla::iter(buf, ACT) {
        out.push(decode_action(&a?)?);
    }
    Ok(out)
}

fn empty(a: &Attr) -> Result<(), DecodeError> {
    a.array::<0>(ACT).map(|_| ())
}

fn decode_action(a: &Attr) -> Result<OdpAction, DecodeError> {
    Ok(match a.ty {
        aa::OUTPUT => OdpAction::Output(a.u32(ACT)?),
        aa::SET => decode_set(a.payload, false)?,
        aa::SET_MASKED => decode_set(a.payload, true)?,
        aa::PUSH_VLAN => {
            let b: [u8; 4] = a.array(ACT)?;
            OdpAction::PushVlan {
                tpid: u16::from_be_bytes([b[0], b[1]]),
                tci: u16::from_be_bytes([b[2], b[3]]),
            }
        }
        aa::POP_VLAN => {
            empty(a)?;
            OdpAction::PopVlan
        }
        aa::PUSH_MPLS => {
            if a.payload.len() != 8 && a.payload.len() != 6 {
                return Err(DecodeError::Length {
                    what: ACT,
                    attr: a.ty,
                    len: a.payload.len(),
                    expected: 8,
                });
            }
            let b = a.payload;
            OdpAction::PushMpls {
                lse: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                ethertype: u16::from_be_bytes([b[4], b[5]]),
            }
        }
        aa::POP_MPLS => OdpAction::PopMpls(a.be16(ACT)?),
        aa::RECIRC => OdpAction::Recirc(a.u32(ACT)?),
        aa::HASH => {
            let b: [u8; 8] = a.array(ACT)?;
            OdpAction::Hash {
                alg: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                basis: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            }
        }
        aa::USERSPACE => {
            let attrs = nla::unique(a.payload, "userspace action")?;
            let pid = nla::find(&attrs, userspace_attr::PID)
                .ok_or(DecodeError::Missing {
                    what: "userspace action",
                    attr: userspace_attr::PID,
                })?
                .u32(ACT)?;
            OdpAction::Userspace {
                pid,
                userdata: nla::find(&attrs, userspace_attr::USERDATA).map(|u| u.payload.to_vec()),
                actions: nla::find(&attrs, userspace_attr::ACTIONS).is_some(),
                tunnel_out_port: nla::find(&attrs, userspace_attr::EGRESS_TUN_PORT)
                    .map(|p| p.u32(ACT))
                    .transpose()?,
            }
        }
        aa::CLONE => OdpAction::Clone(decode_actions(a.payload)?),
        aa::SAMPLE => {
            let attrs = nla::unique(a.payload, "sample action")?;
            let probability = nla::find(&attrs, sample_attr::PROBABILITY)
                .ok_or(DecodeError::Missing {
                    what: "sample action",
                    attr: sample_attr::PROBABILITY,
                })?
                .u32(ACT)?;
            let actions = match nla::find(&attrs, sample_attr::ACTIONS) {
                Some(x) => decode_actions(x.payload)?,
                None => Vec::new(),
            };
            OdpAction::Sample { probability, actions }
        }
        aa::TRUNC => OdpAction::Trunc(a.u32(ACT)?),
        aa::METER => OdpAction::Meter(a.u32(ACT)?),
        aa::CT_CLEAR => {
            empty(a)?;
            OdpAction::CtClear
        }
        other => OdpAction::Opaque {
            attr: other,
            data: a.payload.to_vec(),
        },
    })
}

/// A set action: one key attribute (masked: value then mask, same length).
fn decode_set(payload: &[u8], masked: bool) -> Result<OdpAction, DecodeError> {
    const SET: &str = "set action";
    let attrs = nla::unique(payload, SET)?;
    let [inner] = attrs.as_slice() else {
        return Err(DecodeError::Invalid {
            what: SET,
            detail: format!("{} key attributes, expected exactly one", attrs.len()),
        });
    };
    let bit = if inner.ty < 32 { 1u32 << inner.ty } else { 0 };
    let opaque = || OdpAction::Opaque {
        attr: if masked { aa::SET_MASKED } else { aa::SET },
        data: payload.to_vec(),
    };
    if bit & odpx_classifier::odp::actions::SETTABLE == 0 {
        // e.g. set(ct_mark) or an attribute odpx does not model: keep it.
        return Ok(opaque());
    }
    let (mut key, mut mask) = (FlowKey::ZERO, FlowKey::ZERO);
    if bit == attr::TUNNEL {
        if masked {
            return Ok(opaque());
        }
        read_tunnel(inner.payload, &mut key)?;
        key.attrs = attr::TUNNEL;
        mask = tunnel_fields_given(&key);
        return Ok(OdpAction::Set(SetAction {
            attr: attr::TUNNEL,
            key,
            mask,
        }));
    }
    let (kv, mv) = if masked {
        let n = inner.payload.len();
        if n % 2 != 0 {
            return Err(DecodeError::Invalid {
                what: SET,
                detail: format!("masked set attribute {} has an odd length {n}", inner.ty),
            });
        }
        (&inner.payload[..n / 2], Some(&inner.payload[n / 2..]))
    } else {
        (inner.payload, None)
    };
    if bit == attr::VLAN {
        let v = Attr {
            ty: inner.ty,
            payload: kv,
        }
        .be16(SET)?;
        let m = match mv {
            Some(mv) => Attr {
                ty: inner.ty,
                payload: mv,
            }
            .be16(SET)?,
            None => u16::MAX,
        };
        key.vlan_tci = v & m;
        mask.vlan_tci = m;
        let s = SetAction { attr: bit, key, mask };
        return Ok(if masked {
            OdpAction::SetMasked(s)
        } else {
            OdpAction::Set(s)
        });
    }
    read_one(bit, kv, &mut key, false)?;
    let fields = attr_fields(bit);
    match mv {
        Some(mv) => {
            read_one(bit, mv, &mut mask, true)?;
            mask = mask.masked(&fields);
        }
        None => mask = fields,
    }
    mask.attrs = bit;
    let depth = key.mpls_depth;
    key = key.masked(&mask);
    key.attrs = bit;
    if bit == attr::MPLS {
        key.mpls_depth = depth;
    }
    let s = SetAction { attr: bit, key, mask };
    Ok(if masked {
        OdpAction::SetMasked(s)
    } else {
        OdpAction::Set(s)
    })
}

fn read_one(bit: u32, payload: &[u8], k: &mut FlowKey, is_mask: bool) -> Result<(), DecodeError> {
    let a = Attr {
        ty: bit.trailing_zeros() as u16,
        payload,
    };
    read_fields(bit, &a, k, is_mask)
}

/// The mask the text parser gives a `set(tunnel(...))`: the fields present.
pub fn tunnel_fields_given(k: &FlowKey) -> FlowKey {
    use odpx_classifier::key::tun_flag;
    let mut m = FlowKey::ZERO;
    if k.tun_flags & tun_flag::KEY != 0 {
        m.tun_id = u64::MAX;
    }
    if k.tun_ipv4_src != 0 {
        m.tun_ipv4_src = u32::MAX;
    }
    if k.tun_ipv4_dst != 0 {
        m.tun_ipv4_dst = u32::MAX;
    }
    if k.tun_ipv6_src != [0; 16] {
        m.tun_ipv6_src = [0xff; 16];
    }
    if k.tun_ipv6_dst != [0; 16] {
        m.tun_ipv6_dst = [0xff; 16];
    }
    if k.tun_tos != 0 {
        m.tun_tos = 0xff;
    }
    m.tun_ttl = 0xff;
    if k.tun_tp_src != 0 {
        m.tun_tp_src = u16::MAX;
    }
    if k.tun_tp_dst != 0 {
        m.tun_tp_dst = u16::MAX;
    }
    m.tun_flags = tun_flag::ALL;
    m.attrs = attr::TUNNEL;
    m
}
