//! A small cursor for the hand-written parsers (ODP syntax, ovs-ofctl rules).
//!
//! Every error carries the byte offset where parsing stopped, so the CLI can
//! say "column 37: expected ')'" instead of "parse error".

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A parse error: the byte offset in the input and what went wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.pos + 1, self.msg)
    }
}

impl std::error::Error for ParseError {}

pub type PResult<T> = Result<T, ParseError>;

/// Cursor over an input string.
pub struct Cursor<'a> {
    pub src: &'a str,
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a str) -> Self {
        Cursor { src, pos: 0 }
    }

    pub fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            pos: self.pos,
            msg: msg.into(),
        })
    }

    pub fn err_at<T>(&self, pos: usize, msg: impl Into<String>) -> PResult<T> {
        Err(ParseError { pos, msg: msg.into() })
    }

    pub fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    /// Consumes `s` if the input continues with it.
    pub fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, s: &str) -> PResult<()> {
        if self.eat(s) {
            Ok(())
        } else {
            let found = self
                .rest()
                .chars()
                .next()
                .map_or("end of input".to_string(), |c| format!("'{c}'"));
            self.err(format!("expected '{s}', found {found}"))
        }
    }

    /// Takes characters while `pred` holds (possibly none).
    pub fn take_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let end = rest.find(|c| !pred(c)).unwrap_or(rest.len());
        self.pos += end;
        &rest[..end]
    }

    /// An identifier: letters, digits, '_' (may be empty).
    pub fn ident(&mut self) -> &'a str {
        self.take_while(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    /// Parses an unsigned integer (decimal or 0x hex) that fits in `max`.
    pub fn uint(&mut self, max: u64) -> PResult<u64> {
        let start = self.pos;
        let tok = self.take_while(|c| c.is_ascii_alphanumeric());
        match parse_uint(tok) {
            Some(v) if v <= max => Ok(v),
            Some(_) => self.err_at(start, format!("value {tok} is out of range (max {max:#x})")),
            None => self.err_at(
                start,
                format!("expected a number, found '{}'", first_token(tok, self.rest())),
            ),
        }
    }

    /// `VALUE[/MASK]` for an integer field; mask defaults to `full`.
    pub fn uint_masked(&mut self, full: u64) -> PResult<(u64, u64)> {
        let v = self.uint(full)?;
        let m = if self.eat("/") { self.uint(full)? } else { full };
        Ok((v, m))
    }

    pub fn mac(&mut self) -> PResult<[u8; 6]> {
        let start = self.pos;
        let tok = self.take_while(|c| c.is_ascii_alphanumeric() || c == ':');
        parse_mac(tok).map_or_else(
            || self.err_at(start, format!("expected an Ethernet address, found '{tok}'")),
            Ok,
        )
    }

    pub fn mac_masked(&mut self) -> PResult<([u8; 6], [u8; 6])> {
        let v = self.mac()?;
        let m = if self.eat("/") { self.mac()? } else { [0xff; 6] };
        Ok((v, m))
    }

    pub fn ipv4(&mut self) -> PResult<u32> {
        let start = self.pos;
        let tok = self.take_while(|c| c.is_ascii_alphanumeric() || c == '.');
        match tok.parse::<Ipv4Addr>() {
            Ok(a) => Ok(u32::from(a)),
            Err(_) => self.err_at(
                start,
                format!("expected an IPv4 address, found '{}'", first_token(tok, self.rest())),
            ),
        }
    }

    /// `A.B.C.D[/M.M.M.M | /LEN]`.
    pub fn ipv4_masked(&mut self) -> PResult<(u32, u32)> {
        let v = self.ipv4()?;
        if !self.eat("/") {
            return Ok((v, u32::MAX));
        }
        let start = self.pos;
        let tok = self.take_while(|c| c.is_ascii_digit() || c == '.');
        match parse_ipv4_mask(tok) {
            Some(m) => Ok((v, m)),
            None => self.err_at(start, format!("expected a netmask or prefix length, found '{tok}'")),
        }
    }

    pub fn ipv6(&mut self) -> PResult<[u8; 16]> {
        let start = self.pos;
        let tok = self.take_while(|c| c.is_ascii_alphanumeric() || c == ':' || c == '.');
        match tok.parse::<Ipv6Addr>() {
            Ok(a) => Ok(a.octets()),
            Err(_) => self.err_at(start, format!("expected an IPv6 address, found '{tok}'")),
        }
    }

    /// `ADDR[/MASK | /LEN]`.
    pub fn ipv6_masked(&mut self) -> PResult<([u8; 16], [u8; 16])> {
        let v = self.ipv6()?;
        if !self.eat("/") {
            return Ok((v, [0xff; 16]));
        }
        let start = self.pos;
        let tok = self.take_while(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        if tok.contains(':') {
            if let Ok(a) = tok.parse::<Ipv6Addr>() {
                return Ok((v, a.octets()));
            }
        } else if let Ok(len) = tok.parse::<u32>() {
            if len <= 128 {
                return Ok((v, prefix_mask_u128(len).to_be_bytes()));
            }
        }
        self.err_at(start, format!("expected an IPv6 mask or prefix length, found '{tok}'"))
    }
}

fn first_token<'b>(tok: &'b str, rest: &'b str) -> &'b str {
    if tok.is_empty() {
        rest.split([',', ')', '(']).next().unwrap_or("")
    } else {
        tok
    }
}

/// Decimal or `0x` hexadecimal.
pub fn parse_uint(tok: &str) -> Option<u64> {
    if let Some(hex) = tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) {
        tok.parse().ok()
    } else {
        None
    }
}

pub fn parse_mac(tok: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = tok.split(':');
    for b in out.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

pub fn parse_ipv4(tok: &str) -> Option<u32> {
    tok.parse::<Ipv4Addr>().ok().map(u32::from)
}

/// An IPv4 netmask, dotted (`255.255.0.0`) or as a prefix length (`16`).
pub fn parse_ipv4_mask(tok: &str) -> Option<u32> {
    parse_ipv4(tok).or_else(|| tok.parse::<u32>().ok().filter(|&len| len <= 32).map(prefix_mask_u32))
}

pub fn prefix_mask_u32(len: u32) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

pub fn prefix_mask_u128(len: u32) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    }
}

/// C's `%#x`: `0` for zero, `0x..` otherwise.
pub fn hexc(v: impl Into<u128>) -> String {
    let v: u128 = v.into();
    if v == 0 {
        "0".to_string()
    } else {
        format!("{v:#x}")
    }
}

pub fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

pub fn fmt_ipv4(v: u32) -> String {
    Ipv4Addr::from(v).to_string()
}

pub fn fmt_ipv6(v: &[u8; 16]) -> String {
    Ipv6Addr::from(*v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_addresses() {
        assert_eq!(parse_uint("0x2a"), Some(42));
        assert_eq!(parse_uint("42"), Some(42));
        assert_eq!(parse_uint("4x2"), None);
        assert_eq!(parse_mac("00:11:22:33:44:5f"), Some([0, 0x11, 0x22, 0x33, 0x44, 0x5f]));
        assert_eq!(parse_mac("00:11:22:33:44"), None);
        let mut c = Cursor::new("10.0.0.0/8,");
        assert_eq!(c.ipv4_masked().unwrap(), (0x0a00_0000, 0xff00_0000));
        let mut c = Cursor::new("300");
        assert!(c.uint(255).unwrap_err().msg.contains("out of range"));
        assert_eq!(hexc(0u64), "0");
        assert_eq!(hexc(16u64), "0x10");
    }
}
