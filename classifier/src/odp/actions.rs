//! Datapath actions: the model and their `ovs-dpctl` text.
//!
//! One list of [`OdpAction`] serves both datapaths: the userspace fast path
//! executes it directly (including `tnl_push`/`tnl_pop`, which the kernel
//! rejects), and the offload layer translates it to netlink (a userspace
//! VXLAN push becomes `set(tunnel(...))` + output to a vxlan vport).
//! An empty list is a drop and prints as `drop`, as OVS does.

use super::format::{attr_content, format_vlan_tci};
use super::parse::{hex_bytes, parse_key_at};
use crate::key::{attr, FlowKey, VLAN_CFI};
use crate::text::{fmt_ipv4, fmt_ipv6, fmt_mac, hexc, Cursor, PResult};
use crate::wire::{ethertype, ip_proto, EthernetFrame, TunnelIp, VxlanRepr};

/// `OVS_VPORT_TYPE_VXLAN`, the tunnel type in a `tnl_push` header.
pub const TNL_TYPE_VXLAN: u32 = 4;

/// A set action on one key attribute. `mask` is all-ones over the
/// attribute's fields for a plain `set`, partial for a masked set.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SetAction {
    /// The attribute bit ([`attr`]) being written.
    pub attr: u32,
    pub key: FlowKey,
    pub mask: FlowKey,
}

impl std::fmt::Debug for SetAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_actions(&[OdpAction::SetMasked(*self)]))
    }
}

/// A userspace tunnel push: the whole outer header, prebuilt.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TunnelPush {
    pub tnl_port: u32,
    pub out_port: u32,
    pub tnl_type: u32,
    /// Ethernet + IPv4/IPv6 + UDP + VXLAN, lengths and checksums left for the
    /// datapath to fill in per packet.
    pub header: Vec<u8>,
}

/// One datapath action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OdpAction {
    Output(u32),
    /// Plain set: every field of the attribute is written.
    Set(SetAction),
    /// Masked set: only the masked bits are written.
    SetMasked(SetAction),
    PushVlan {
        tpid: u16,
        tci: u16,
    },
    PopVlan,
    PushMpls {
        lse: u32,
        ethertype: u16,
    },
    PopMpls(u16),
    Recirc(u32),
    Hash {
        alg: u32,
        basis: u32,
    },
    Userspace {
        pid: u32,
        userdata: Option<Vec<u8>>,
        actions: bool,
        tunnel_out_port: Option<u32>,
    },
    TunnelPop(u32),
    TunnelPush(TunnelPush),
    Clone(Vec<OdpAction>),
    Sample {
        /// Out of `u32::MAX`.
        probability: u32,
        actions: Vec<OdpAction>,
    },
    Trunc(u32),
    Meter(u32),
    CtClear,
    /// An action odpx does not interpret, kept as its number and bytes.
    Opaque {
        attr: u16,
        data: Vec<u8>,
    },
}

/// Formats an action list; an empty list is `drop`.
pub fn format_actions(actions: &[OdpAction]) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    actions.iter().map(format_action).collect::<Vec<_>>().join(",")
}

fn attr_name(bit: u32) -> &'static str {
    match bit {
        attr::PRIORITY => "skb_priority",
        attr::SKB_MARK => "skb_mark",
        attr::TUNNEL => "tunnel",
        attr::ETHERNET => "eth",
        attr::VLAN => "vlan",
        attr::IPV4 => "ipv4",
        attr::IPV6 => "ipv6",
        attr::TCP => "tcp",
        attr::UDP => "udp",
        attr::SCTP => "sctp",
        attr::ICMP => "icmp",
        attr::ICMPV6 => "icmpv6",
        attr::ARP => "arp",
        attr::ND => "nd",
        attr::MPLS => "mpls",
        _ => "unknown",
    }
}

/// The attributes a set action may write.
pub const SETTABLE: u32 = attr::PRIORITY
    | attr::SKB_MARK
    | attr::TUNNEL
    | attr::ETHERNET
    | attr::VLAN
    | attr::IPV4
    | attr::IPV6
    | attr::TCP
    | attr::UDP
    | attr::SCTP
    | attr::ICMP
    | attr::ICMPV6
    | attr::ARP
    | attr::ND
    | attr::MPLS;

fn format_action(a: &OdpAction) -> String {
    match a {
        OdpAction::Output(p) => p.to_string(),
        OdpAction::Set(s) => {
            let content = if s.attr == attr::VLAN {
                format_vlan_tci(s.key.vlan_tci, u16::MAX, true)
            } else {
                attr_content(s.attr, &s.key, &FlowKey::exact_mask(), true)
            };
            format!("set({}({content}))", attr_name(s.attr))
        }
        OdpAction::SetMasked(s) => {
            let content = if s.attr == attr::VLAN {
                format_vlan_tci(s.key.vlan_tci, s.mask.vlan_tci, false)
            } else {
                attr_content(s.attr, &s.key, &s.mask, false)
            };
            format!("set({}({content}))", attr_name(s.attr))
        }
        OdpAction::PushVlan { tpid, tci } => {
            let mut s = "push_vlan(".to_string();
            if *tpid != 0x8100 {
                s.push_str(&format!("tpid=0x{tpid:04x},"));
            }
            s.push_str(&format_vlan_tci(*tci, u16::MAX, false));
            s.push(')');
            s
        }
        OdpAction::PopVlan => "pop_vlan".into(),
        OdpAction::PushMpls { lse, ethertype } => format!(
            "push_mpls(label={},tc={},ttl={},bos={},eth_type=0x{ethertype:x})",
            lse >> 12,
            (lse >> 9) & 7,
            lse & 0xff,
            (lse >> 8) & 1
        ),
        OdpAction::PopMpls(et) => format!("pop_mpls(eth_type=0x{et:x})"),
        OdpAction::Recirc(id) => format!("recirc({})", hexc(*id as u64)),
        OdpAction::Hash { alg, basis } => match alg {
            0 => format!("hash(l4({basis}))"),
            1 => format!("hash(sym_l4({basis}))"),
            _ => format!("hash(Unknown hash algorithm({alg}))"),
        },
        OdpAction::Userspace {
            pid,
            userdata,
            actions,
            tunnel_out_port,
        } => {
            let mut s = format!("userspace(pid={pid}");
            if let Some(d) = userdata {
                s.push_str(",userdata(");
                for b in d {
                    s.push_str(&format!("{b:02x}"));
                }
                s.push(')');
            }
            if *actions {
                s.push_str(",actions");
            }
            if let Some(p) = tunnel_out_port {
                s.push_str(&format!(",tunnel_out_port={p}"));
            }
            s.push(')');
            s
        }
        OdpAction::TunnelPop(p) => format!("tnl_pop({p})"),
        OdpAction::TunnelPush(t) => format!(
            "tnl_push(tnl_port({}),{},out_port({}))",
            t.tnl_port,
            format_tnl_header(t.tnl_type, &t.header),
            t.out_port
        ),
        OdpAction::Clone(acts) => format!("clone({})", format_actions_inner(acts)),
        OdpAction::Sample { probability, actions } => format!(
            "sample(sample={:.1}%,actions({}))",
            100.0 * *probability as f64 / u32::MAX as f64,
            format_actions_inner(actions)
        ),
        OdpAction::Trunc(n) => format!("trunc({n})"),
        OdpAction::Meter(n) => format!("meter({n})"),
        OdpAction::CtClear => "ct_clear".into(),
        OdpAction::Opaque { attr, data } => {
            let mut s = format!("action{attr}");
            if !data.is_empty() {
                let hex: Vec<String> = data.iter().map(|b| format!("{b:02x}")).collect();
                s.push_str(&format!("({})", hex.join(" ")));
            }
            s
        }
    }
}

/// Nested lists print empty as nothing (`clone()`), as OVS does.
fn format_actions_inner(acts: &[OdpAction]) -> String {
    acts.iter().map(format_action).collect::<Vec<_>>().join(",")
}

/// Formats a tunnel header as OVS `format_odp_tnl_push_header` does.
pub fn format_tnl_header(tnl_type: u32, h: &[u8]) -> String {
    let mut s = format!("header(size={},type={tnl_type},", h.len());
    let r = match VxlanRepr::parse(h) {
        Ok(r) if tnl_type == TNL_TYPE_VXLAN => r,
        Ok(_) => return s + "unknown tunnel)",
        Err(_) => return s + "truncated header)",
    };
    let et = EthernetFrame::new_checked(h).map_or(0, |e| e.ethertype());
    s.push_str(&format!(
        "eth(dst={},src={},dl_type=0x{et:04x}),",
        fmt_mac(&r.eth_dst),
        fmt_mac(&r.eth_src)
    ));
    match r.ip {
        TunnelIp::V4 {
            src,
            dst,
            tos,
            ttl,
            frag,
        } => s.push_str(&format!(
            "ipv4(src={},dst={},proto={},tos={},ttl={ttl},frag=0x{frag:x}),",
            fmt_ipv4(src),
            fmt_ipv4(dst),
            ip_proto::UDP,
            hexc(tos as u64),
        )),
        TunnelIp::V6 {
            src,
            dst,
            class,
            label,
            hop_limit,
        } => s.push_str(&format!(
            "ipv6(src={},dst={},label={label},proto={},tclass=0x{class:x},hlimit={hop_limit}),",
            fmt_ipv6(&src),
            fmt_ipv6(&dst),
            ip_proto::UDP,
        )),
    }
    s.push_str(&format!(
        "udp(src={},dst={},csum=0x{:x}),vxlan(flags=0x{:x},vni=0x{:x}))",
        r.udp_src, r.udp_dst, r.udp_checksum, r.flags, r.vni
    ));
    s
}

/// Parses an action list (`drop`, or actions separated by commas).
pub fn parse_actions(s: &str) -> PResult<Vec<OdpAction>> {
    let mut c = Cursor::new(s);
    c.skip_ws();
    let a = parse_actions_at(&mut c)?;
    c.skip_ws();
    if !c.at_end() {
        return c.err(format!("unexpected text after the actions: '{}'", c.rest()));
    }
    Ok(a)
}

pub(crate) fn parse_actions_at(c: &mut Cursor) -> PResult<Vec<OdpAction>> {
    if c.eat("drop") {
        return Ok(Vec::new());
    }
    parse_list(c)
}

/// Actions separated by commas, up to `)` or the end.
fn parse_list(c: &mut Cursor) -> PResult<Vec<OdpAction>> {
    let mut out = Vec::new();
    if c.at_end() || c.peek() == Some(')') {
        return Ok(out);
    }
    loop {
        out.push(parse_action(c)?);
        if !c.eat(",") {
            return Ok(out);
        }
    }
}

fn paren_u32(c: &mut Cursor) -> PResult<u32> {
    c.expect("(")?;
    let v = c.uint(u32::MAX as u64)? as u32;
    c.expect(")")?;
    Ok(v)
}

fn parse_action(c: &mut Cursor) -> PResult<OdpAction> {
    let start = c.pos;
    if c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
        return Ok(OdpAction::Output(c.uint(u32::MAX as u64)? as u32));
    }
    let name = c.ident();
    Ok(match name {
        "pop_vlan" => OdpAction::PopVlan,
        "ct_clear" => OdpAction::CtClear,
        "recirc" => OdpAction::Recirc(paren_u32(c)?),
        "trunc" => OdpAction::Trunc(paren_u32(c)?),
        "meter" => OdpAction::Meter(paren_u32(c)?),
        "tnl_pop" => OdpAction::TunnelPop(paren_u32(c)?),
        "set" => {
            c.expect("(")?;
            let a = parse_set(c, start)?;
            c.expect(")")?;
            a
        }
        "push_vlan" => parse_push_vlan(c)?,
        "pop_mpls" => {
            c.expect("(eth_type=")?;
            let et = c.uint(0xffff)? as u16;
            c.expect(")")?;
            OdpAction::PopMpls(et)
        }
        "push_mpls" => parse_push_mpls(c)?,
        "hash" => {
            c.expect("(")?;
            let apos = c.pos;
            let alg = match c.ident() {
                "l4" => 0,
                "sym_l4" => 1,
                other => return c.err_at(apos, format!("unknown hash algorithm '{other}' (l4, sym_l4)")),
            };
            let basis = paren_u32(c)?;
            c.expect(")")?;
            OdpAction::Hash { alg, basis }
        }
        "userspace" => parse_userspace(c)?,
        "clone" => {
            c.expect("(")?;
            let acts = parse_list(c)?;
            c.expect(")")?;
            OdpAction::Clone(acts)
        }
        "sample" => parse_sample(c)?,
        "tnl_push" => parse_tnl_push(c)?,
        "drop" => return c.err_at(start, "'drop' must be the only action"),
        _ => {
            if let Some(n) = name.strip_prefix("action").and_then(|n| n.parse::<u16>().ok()) {
                let data = if c.eat("(") {
                    let d = hex_bytes(c)?;
                    c.expect(")")?;
                    d
                } else {
                    Vec::new()
                };
                OdpAction::Opaque { attr: n, data }
            } else if name.is_empty() {
                return c.err_at(start, "expected an action");
            } else {
                return c.err_at(start, format!("unknown action '{name}'"));
            }
        }
    })
}

/// `push_vlan(tpid=..,vid=..,pcp=..,cfi=..)`, after its name.
fn parse_push_vlan(c: &mut Cursor) -> PResult<OdpAction> {
    c.expect("(")?;
    let (mut tpid, mut tci) = (0x8100u16, VLAN_CFI);
    loop {
        let fpos = c.pos;
        let f = c.ident();
        c.expect("=")?;
        match f {
            "tpid" => tpid = c.uint(0xffff)? as u16,
            "vid" => tci = (tci & !0x0fff) | c.uint(0x0fff)? as u16,
            "pcp" => tci = (tci & !0xe000) | ((c.uint(7)? as u16) << 13),
            "cfi" => tci = (tci & !VLAN_CFI) | ((c.uint(1)? as u16) << 12),
            _ => {
                return c.err_at(
                    fpos,
                    format!("push_vlan() has no field '{f}' (fields: tpid, vid, pcp, cfi)"),
                )
            }
        }
        if !c.eat(",") {
            break;
        }
    }
    c.expect(")")?;
    Ok(OdpAction::PushVlan { tpid, tci })
}

/// `push_mpls(label=..,tc=..,ttl=..,bos=..,eth_type=..)`, after its name.
fn parse_push_mpls(c: &mut Cursor) -> PResult<OdpAction> {
    c.expect("(")?;
    let (mut lse, mut et) = (0u32, 0x8847u16);
    loop {
        let fpos = c.pos;
        let f = c.ident();
        c.expect("=")?;
        match f {
            "label" => lse |= (c.uint(0xfffff)? as u32) << 12,
            "tc" => lse |= (c.uint(7)? as u32) << 9,
            "ttl" => lse |= c.uint(0xff)? as u32,
            "bos" => lse |= (c.uint(1)? as u32) << 8,
            "eth_type" => et = c.uint(0xffff)? as u16,
            _ => return c.err_at(fpos, format!("push_mpls() has no field '{f}'")),
        }
        if !c.eat(",") {
            break;
        }
    }
    c.expect(")")?;
    Ok(OdpAction::PushMpls { lse, ethertype: et })
}

/// `userspace(pid=N[,userdata(..)][,actions][,tunnel_out_port=N])`, after its name.
fn parse_userspace(c: &mut Cursor) -> PResult<OdpAction> {
    c.expect("(pid=")?;
    let pid = c.uint(u32::MAX as u64)? as u32;
    let (mut userdata, mut actions, mut tunnel_out_port) = (None, false, None);
    while c.eat(",") {
        if c.eat("userdata(") {
            userdata = Some(hex_bytes(c)?);
            c.expect(")")?;
        } else if c.eat("actions") {
            actions = true;
        } else if c.eat("tunnel_out_port=") {
            tunnel_out_port = Some(c.uint(u32::MAX as u64)? as u32);
        } else {
            return c.err("userspace() takes userdata(..), actions, tunnel_out_port=N");
        }
    }
    c.expect(")")?;
    Ok(OdpAction::Userspace {
        pid,
        userdata,
        actions,
        tunnel_out_port,
    })
}

/// `sample(sample=P%,actions(..))`, after its name.
fn parse_sample(c: &mut Cursor) -> PResult<OdpAction> {
    c.expect("(sample=")?;
    let ppos = c.pos;
    let pct = c.take_while(|ch| ch.is_ascii_digit() || ch == '.');
    let pct: f64 = match pct.parse() {
        Ok(p) if (0.0..=100.0).contains(&p) => p,
        _ => return c.err_at(ppos, format!("bad sample percentage '{pct}'")),
    };
    c.expect("%,actions(")?;
    let acts = parse_list(c)?;
    c.expect("))")?;
    Ok(OdpAction::Sample {
        probability: (pct / 100.0 * u32::MAX as f64).round() as u32,
        actions: acts,
    })
}

/// `set(ATTR(...))`: plain when every field of the attribute is given
/// exactly (and always for tunnel), masked otherwise.
fn parse_set(c: &mut Cursor, start: usize) -> PResult<OdpAction> {
    let kpos = c.pos;
    if c.rest().starts_with("vlan(") {
        c.eat("vlan(");
        let (mut tci, mut mask) = (VLAN_CFI, VLAN_CFI);
        // A fully wildcarded masked set prints as `vlan()`.
        while c.peek() != Some(')') {
            let f = c.ident();
            c.expect("=")?;
            let (shift, width) = match f {
                "vid" => (0, 0x0fffu16),
                "pcp" => (13, 7),
                "cfi" => (12, 1),
                _ => return c.err(format!("vlan() has no field '{f}'")),
            };
            let (v, m) = c.uint_masked(width as u64)?;
            tci = (tci & !(width << shift)) | ((v as u16) << shift);
            mask = (mask & !(width << shift)) | ((m as u16) << shift);
            if !c.eat(",") {
                break;
            }
        }
        c.expect(")")?;
        let mut key = FlowKey::ZERO;
        let mut m = FlowKey::ZERO;
        key.vlan_tci = tci;
        m.vlan_tci = mask;
        let s = SetAction {
            attr: attr::VLAN,
            key: key.masked(&m),
            mask: m,
        };
        return Ok(if mask == u16::MAX {
            OdpAction::Set(s)
        } else {
            OdpAction::SetMasked(s)
        });
    }
    let parsed = parse_key_at(c)?;
    let k = parsed.matched;
    // The presence bits that name a settable attribute (parse adds helper bits).
    let bits = k.key.attrs & SETTABLE;
    if bits.count_ones() != 1 || !parsed.opaque.is_empty() {
        return c.err_at(kpos, "set() takes exactly one of: eth, ipv4, ipv6, tcp, udp, sctp, icmp, icmpv6, arp, nd, vlan, tunnel, mpls, skb_mark, skb_priority");
    }
    let fields = super::attr_fields(bits);
    let mut mask = k.mask.masked(&fields);
    mask.attrs = bits;
    let mut key = k.key.masked(&mask);
    key.attrs = bits;
    if bits == attr::MPLS {
        key.mpls_depth = k.key.mpls_depth;
    }
    let s = SetAction { attr: bits, key, mask };
    let _ = start;
    Ok(if bits == attr::TUNNEL || mask == fields_with_attrs(fields, bits) {
        OdpAction::Set(s)
    } else {
        OdpAction::SetMasked(s)
    })
}

fn fields_with_attrs(mut f: FlowKey, bits: u32) -> FlowKey {
    f.attrs = bits;
    f
}

fn parse_tnl_push(c: &mut Cursor) -> PResult<OdpAction> {
    c.expect("(tnl_port(")?;
    let tnl_port = c.uint(u32::MAX as u64)? as u32;
    c.expect("),header(size=")?;
    let size_pos = c.pos;
    let size = c.uint(512)? as usize;
    c.expect(",type=")?;
    let tpos = c.pos;
    let tnl_type = c.uint(u32::MAX as u64)? as u32;
    if tnl_type != TNL_TYPE_VXLAN {
        return c.err_at(tpos, "odpx builds only VXLAN tunnel headers (type=4)");
    }
    c.expect(",eth(dst=")?;
    let eth_dst = c.mac()?;
    c.expect(",src=")?;
    let eth_src = c.mac()?;
    c.expect(",dl_type=")?;
    let et_pos = c.pos;
    let et = c.uint(0xffff)? as u16;
    c.expect("),")?;
    let udp_proto = |c: &mut Cursor| -> PResult<()> {
        let at = c.pos;
        if c.uint(0xff)? != ip_proto::UDP as u64 {
            return c.err_at(at, "a VXLAN header's IP protocol is UDP (17)");
        }
        Ok(())
    };
    let ip = match et {
        ethertype::IPV4 => {
            c.expect("ipv4(src=")?;
            let src = c.ipv4()?;
            c.expect(",dst=")?;
            let dst = c.ipv4()?;
            c.expect(",proto=")?;
            udp_proto(c)?;
            c.expect(",tos=")?;
            let tos = c.uint(0xff)? as u8;
            c.expect(",ttl=")?;
            let ttl = c.uint(0xff)? as u8;
            c.expect(",frag=")?;
            let frag = c.uint(0xffff)? as u16;
            c.expect("),")?;
            TunnelIp::V4 {
                src,
                dst,
                tos,
                ttl,
                frag,
            }
        }
        ethertype::IPV6 => {
            c.expect("ipv6(src=")?;
            let src = c.ipv6()?;
            c.expect(",dst=")?;
            let dst = c.ipv6()?;
            c.expect(",label=")?;
            let label = c.uint(0xfffff)? as u32;
            c.expect(",proto=")?;
            udp_proto(c)?;
            c.expect(",tclass=")?;
            let class = c.uint(0xff)? as u8;
            c.expect(",hlimit=")?;
            let hop_limit = c.uint(0xff)? as u8;
            c.expect("),")?;
            TunnelIp::V6 {
                src,
                dst,
                class,
                label,
                hop_limit,
            }
        }
        _ => {
            return c.err_at(
                et_pos,
                format!("tunnel header dl_type must be 0x0800 or 0x86dd, not 0x{et:04x}"),
            )
        }
    };
    c.expect("udp(src=")?;
    let udp_src = c.uint(0xffff)? as u16;
    c.expect(",dst=")?;
    let udp_dst = c.uint(0xffff)? as u16;
    c.expect(",csum=")?;
    let udp_checksum = c.uint(0xffff)? as u16;
    c.expect("),vxlan(flags=")?;
    let flags = c.uint(u32::MAX as u64)? as u32;
    c.expect(",vni=")?;
    let vni = c.uint(0x00ff_ffff)? as u32;
    c.expect(")),out_port(")?;
    let out_port = c.uint(u32::MAX as u64)? as u32;
    c.expect("))")?;
    let r = VxlanRepr {
        eth_dst,
        eth_src,
        ip,
        udp_src,
        udp_dst,
        udp_checksum,
        flags,
        vni,
    };
    if r.header_len() != size {
        return c.err_at(
            size_pos,
            format!("header size={size} but the fields given make {} bytes", r.header_len()),
        );
    }
    let mut header = vec![0u8; r.header_len()];
    r.emit(&mut header);
    Ok(OdpAction::TunnelPush(TunnelPush {
        tnl_port,
        out_port,
        tnl_type,
        header,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) {
        let a = parse_actions(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(format_actions(&a), s);
    }

    #[test]
    fn canonical_actions_round_trip() {
        rt("drop");
        rt("2,3");
        rt("set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2");
        rt("set(eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02))");
        rt("set(ipv4(src=10.0.0.1,ttl=63))");
        rt("set(ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no))");
        rt("set(tcp(dst=8080))");
        rt("push_vlan(vid=10,pcp=0),3");
        rt("push_vlan(tpid=0x88a8,vid=100,pcp=3),pop_vlan");
        rt("recirc(0x1),hash(l4(0))");
        rt("userspace(pid=4294967295,userdata(0102),actions,tunnel_out_port=3)");
        rt("tnl_pop(4)");
        rt("clone(set(eth(dst=00:00:00:00:00:02)),1),2");
        rt("sample(sample=50.0%,actions(userspace(pid=1)))");
        rt("trunc(100),meter(3),ct_clear,action99(01 02)");
        rt("tnl_push(tnl_port(4),header(size=50,type=4,eth(dst=00:00:00:00:00:02,src=00:00:00:00:00:01,dl_type=0x0800),ipv4(src=192.0.2.1,dst=192.0.2.9,proto=17,tos=0,ttl=64,frag=0x4000),udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,vni=0x2a)),out_port(1))");
        rt("tnl_push(tnl_port(4),header(size=70,type=4,eth(dst=00:00:00:00:00:02,src=00:00:00:00:00:01,dl_type=0x86dd),ipv6(src=2001:db8::1,dst=2001:db8::2,label=0,proto=17,tclass=0x0,hlimit=64),udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,vni=0x2a)),out_port(1))");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse_actions("2,frobnicate").unwrap_err();
        assert_eq!(e.pos, 2);
        assert!(e.msg.contains("unknown action 'frobnicate'"));
        let e = parse_actions("set(ipv4(src=10.0.0.1),tcp(dst=1))").unwrap_err();
        assert!(e.msg.contains("exactly one"), "{e}");
        assert!(parse_actions("drop,2").is_err());
    }

    #[test]
    fn set_kind_follows_mask() {
        let a = parse_actions("set(tcp(src=1,dst=2))").unwrap();
        assert!(matches!(a[0], OdpAction::Set(_)));
        let a = parse_actions("set(tcp(dst=2))").unwrap();
        assert!(matches!(a[0], OdpAction::SetMasked(_)));
    }
}
