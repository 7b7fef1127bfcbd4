//! go-odp's flow flags (`--in-port`, `--eth-src MAC&MASK`, `--tunnel-*`,
//! `--set-tunnel-*`, `--output=a,b`): their values and masks as go-odp
//! writes them, and the ODP key and actions they make.

use clap::Args;
use odpx_classifier::key::{attr, tun_flag, FlowKey, Match};
use odpx_classifier::odp::{self, OdpAction, OdpKey, SetAction};

/// A flow given with go-odp's flags (alternative to ODP text).
#[derive(Args, Default, Clone)]
pub struct FlowFlags {
    /// key: incoming vport (name or number).
    #[arg(long)]
    in_port: Option<String>,
    /// key: Ethernet source, MAC or MAC&MASK (also MAC/MASK, MAC:MASK).
    #[arg(long)]
    eth_src: Option<String>,
    /// key: Ethernet destination, MAC or MAC&MASK.
    #[arg(long)]
    eth_dst: Option<String>,
    #[arg(long)]
    tunnel_id: Option<String>,
    #[arg(long)]
    tunnel_ipv4_src: Option<String>,
    #[arg(long)]
    tunnel_ipv4_dst: Option<String>,
    #[arg(long)]
    tunnel_tos: Option<String>,
    #[arg(long)]
    tunnel_ttl: Option<String>,
    #[arg(long)]
    tunnel_df: Option<String>,
    #[arg(long)]
    tunnel_csum: Option<String>,
    #[arg(long)]
    tunnel_tp_src: Option<String>,
    #[arg(long)]
    tunnel_tp_dst: Option<String>,
    /// action: set the tunnel ID (16 hex digits, as go-odp, or 0xN).
    #[arg(long)]
    set_tunnel_id: Option<String>,
    #[arg(long)]
    set_tunnel_ipv4_src: Option<String>,
    #[arg(long)]
    set_tunnel_ipv4_dst: Option<String>,
    #[arg(long)]
    set_tunnel_tos: Option<String>,
    #[arg(long)]
    set_tunnel_ttl: Option<String>,
    #[arg(long)]
    set_tunnel_df: Option<String>,
    #[arg(long)]
    set_tunnel_csum: Option<String>,
    #[arg(long)]
    set_tunnel_tp_src: Option<String>,
    #[arg(long)]
    set_tunnel_tp_dst: Option<String>,
    /// action: output to these vports (names or numbers, comma-separated).
    #[arg(long, value_delimiter = ',')]
    output: Vec<String>,
}

fn parse_mac_masked(s: &str) -> Result<([u8; 6], [u8; 6]), String> {
    let parse = |m: &str| odpx_classifier::text::parse_mac(m).ok_or_else(|| format!("bad MAC address '{m}'"));
    let (k, m) = if let Some((k, m)) = s.split_once('&').or_else(|| s.split_once('/')) {
        (k, Some(m))
    } else if s.len() == 35 && s.as_bytes()[17] == b':' {
        (&s[..17], Some(&s[18..]))
    } else {
        (s, None)
    };
    let key = parse(k)?;
    let mask = match m {
        Some(m) => parse(m)?,
        None => [0xff; 6],
    };
    Ok((key, mask))
}

fn parse_num<T: TryFrom<u64>>(s: &str, what: &str) -> Result<T, String> {
    let v = odpx_classifier::text::parse_uint(s).ok_or_else(|| format!("{what}: bad number '{s}'"))?;
    T::try_from(v).map_err(|_| format!("{what}: {s} is out of range"))
}

/// `value` or `value&mask` (go-odp), also `value/mask`.
fn parse_num_masked<T: TryFrom<u64> + Copy>(s: &str, what: &str, full: T) -> Result<(T, T), String> {
    match s.split_once('&').or_else(|| s.split_once('/')) {
        Some((v, m)) => Ok((parse_num(v, what)?, parse_num(m, what)?)),
        None => Ok((parse_num(s, what)?, full)),
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("not a boolean: '{s}'")),
    }
}

fn parse_ipv4(s: &str) -> Result<u32, String> {
    odpx_classifier::text::parse_ipv4(s).ok_or_else(|| format!("bad IPv4 address '{s}'"))
}

fn parse_ipv4_masked(s: &str) -> Result<(u32, u32), String> {
    match s.split_once('&').or_else(|| s.split_once('/')) {
        Some((a, m)) => Ok((
            parse_ipv4(a)?,
            odpx_classifier::text::parse_ipv4_mask(m).ok_or_else(|| format!("bad netmask or prefix length '{m}'"))?,
        )),
        None => Ok((parse_ipv4(s)?, u32::MAX)),
    }
}

fn parse_tun_id(s: &str) -> Result<(u64, u64), String> {
    let one = |x: &str| -> Result<u64, String> {
        if let Some(h) = x.strip_prefix("0x") {
            u64::from_str_radix(h, 16).map_err(|_| format!("bad tunnel ID '{x}'"))
        } else if x.len() == 16 {
            // go-odp: 8 bytes as 16 hex digits.
            u64::from_str_radix(x, 16).map_err(|_| format!("bad tunnel ID '{x}'"))
        } else {
            x.parse::<u64>().map_err(|_| format!("bad tunnel ID '{x}'"))
        }
    };
    match s.split_once('&') {
        Some((v, m)) => Ok((one(v)?, one(m)?)),
        None => Ok((one(s)?, u64::MAX)),
    }
}

struct TunnelSpec {
    key: FlowKey,
    mask: FlowKey,
    any: bool,
}

/// Tunnel fields from go-odp's `--tunnel-*` or `--set-tunnel-*` flags.
#[allow(clippy::too_many_arguments)]
fn tunnel_from_flags(
    id: &Option<String>,
    src: &Option<String>,
    dst: &Option<String>,
    tos: &Option<String>,
    ttl: &Option<String>,
    df: &Option<String>,
    csum: &Option<String>,
    tp_src: &Option<String>,
    tp_dst: &Option<String>,
) -> Result<TunnelSpec, String> {
    let (mut k, mut m) = (FlowKey::ZERO, FlowKey::ZERO);
    let mut any = false;
    if let Some(s) = id {
        (k.tun_id, m.tun_id) = parse_tun_id(s)?;
        k.tun_flags |= tun_flag::KEY;
        m.tun_flags |= tun_flag::KEY;
        any = true;
    }
    if let Some(s) = src {
        (k.tun_ipv4_src, m.tun_ipv4_src) = parse_ipv4_masked(s)?;
        any = true;
    }
    if let Some(s) = dst {
        (k.tun_ipv4_dst, m.tun_ipv4_dst) = parse_ipv4_masked(s)?;
        any = true;
    }
    if let Some(s) = tos {
        (k.tun_tos, m.tun_tos) = parse_num_masked(s, "tos", 0xffu8)?;
        any = true;
    }
    if let Some(s) = ttl {
        (k.tun_ttl, m.tun_ttl) = parse_num_masked(s, "ttl", 0xffu8)?;
        any = true;
    }
    for (v, bit) in [(df, tun_flag::DF), (csum, tun_flag::CSUM)] {
        if let Some(s) = v {
            if parse_bool(s)? {
                k.tun_flags |= bit;
            }
            m.tun_flags |= bit;
            any = true;
        }
    }
    if let Some(s) = tp_src {
        (k.tun_tp_src, m.tun_tp_src) = parse_num_masked(s, "tp-src", 0xffffu16)?;
        any = true;
    }
    if let Some(s) = tp_dst {
        (k.tun_tp_dst, m.tun_tp_dst) = parse_num_masked(s, "tp-dst", 0xffffu16)?;
        any = true;
    }
    Ok(TunnelSpec { key: k, mask: m, any })
}

impl FlowFlags {
    pub(crate) fn is_empty(&self) -> bool {
        self.in_port.is_none()
            && self.eth_src.is_none()
            && self.eth_dst.is_none()
            && !self.tunnel().map(|t| t.any).unwrap_or(true)
            && !self.set_tunnel().map(|t| t.any).unwrap_or(true)
            && self.output.is_empty()
    }

    fn tunnel(&self) -> Result<TunnelSpec, String> {
        tunnel_from_flags(
            &self.tunnel_id,
            &self.tunnel_ipv4_src,
            &self.tunnel_ipv4_dst,
            &self.tunnel_tos,
            &self.tunnel_ttl,
            &self.tunnel_df,
            &self.tunnel_csum,
            &self.tunnel_tp_src,
            &self.tunnel_tp_dst,
        )
    }

    fn set_tunnel(&self) -> Result<TunnelSpec, String> {
        tunnel_from_flags(
            &self.set_tunnel_id,
            &self.set_tunnel_ipv4_src,
            &self.set_tunnel_ipv4_dst,
            &self.set_tunnel_tos,
            &self.set_tunnel_ttl,
            &self.set_tunnel_df,
            &self.set_tunnel_csum,
            &self.set_tunnel_tp_src,
            &self.set_tunnel_tp_dst,
        )
    }

    /// The key (always with `eth()`, as go-odp) and actions these flags
    /// say; `port` names a vport's number.
    pub(crate) fn to_flow(
        &self,
        port: &mut dyn FnMut(&str) -> Result<u32, String>,
    ) -> Result<(OdpKey, Vec<OdpAction>), String> {
        let (mut k, mut m) = (FlowKey::ZERO, FlowKey::ZERO);
        if let Some(p) = &self.in_port {
            k.in_port = port(p)?;
            m.in_port = u32::MAX;
            k.attrs |= attr::IN_PORT;
        }
        k.attrs |= attr::ETHERNET;
        if let Some(s) = &self.eth_src {
            (k.eth_src, m.eth_src) = parse_mac_masked(s)?;
        }
        if let Some(s) = &self.eth_dst {
            (k.eth_dst, m.eth_dst) = parse_mac_masked(s)?;
        }
        let t = self.tunnel()?;
        if t.any {
            k.attrs |= attr::TUNNEL;
            k.or_assign(&t.key);
            m.or_assign(&t.mask);
        }
        m.attrs = k.attrs;
        let key = OdpKey::from_match(odp::canonicalize(&Match::new(k, m)));
        let mut actions = Vec::new();
        let st = self.set_tunnel()?;
        if st.any {
            if st.mask.tun_ipv4_src != 0 && st.mask.tun_ipv4_src != u32::MAX
                || st.mask.tun_ipv4_dst != 0 && st.mask.tun_ipv4_dst != u32::MAX
                || st.mask.tun_id != 0 && st.mask.tun_id != u64::MAX
            {
                return Err("--set-tunnel option includes a mask".into());
            }
            let mut sk = st.key;
            sk.attrs = attr::TUNNEL;
            let mut sm = st.mask;
            sm.attrs = attr::TUNNEL;
            actions.push(OdpAction::Set(SetAction {
                attr: attr::TUNNEL,
                key: sk,
                mask: sm,
            }));
        }
        for o in &self.output {
            actions.push(OdpAction::Output(port(o)?));
        }
        Ok((key, actions))
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn go_odp_values_and_masks_parse_as_go_odp_writes_them() {
        let mac = [2, 0, 0, 0, 0, 1];
        let oui = [0xff, 0xff, 0xff, 0, 0, 0];
        assert_eq!(parse_mac_masked("02:00:00:00:00:01"), Ok((mac, [0xff; 6])));
        assert_eq!(parse_mac_masked("02:00:00:00:00:01&ff:ff:ff:00:00:00"), Ok((mac, oui)));
        assert_eq!(parse_mac_masked("02:00:00:00:00:01/ff:ff:ff:00:00:00"), Ok((mac, oui)));
        assert_eq!(parse_mac_masked("02:00:00:00:00:01:ff:ff:ff:00:00:00"), Ok((mac, oui)));
        assert!(parse_mac_masked("02:00:00:00:01").is_err());
        assert_eq!(parse_num::<u16>("0x800", "type"), Ok(0x800));
        assert_eq!(parse_num::<u16>("2048", "type"), Ok(2048));
        assert!(parse_num::<u8>("256", "ttl").unwrap_err().contains("out of range"));
        assert!(parse_num::<u8>("ten", "ttl").unwrap_err().contains("bad number"));
        assert_eq!(parse_ipv4_masked("10.0.0.0/8"), Ok((0x0a00_0000, 0xff00_0000)));
        assert_eq!(
            parse_ipv4_masked("10.0.0.0&255.255.0.0"),
            Ok((0x0a00_0000, 0xffff_0000))
        );
        assert_eq!(parse_ipv4_masked("10.0.0.1/0"), Ok((0x0a00_0001, 0)));
        assert!(parse_ipv4_masked("10.0.0.0/33").is_err());
    }
}
