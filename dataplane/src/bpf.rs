//! A small eBPF assembler, for the XDP programs of [`crate::xdp`].
//!
//! # Why an assembler here
//! `cargo build` must need no C toolchain (no clang, no bpf-linker on
//! stable Rust), and the programs are short. So they are written as eBPF
//! instructions, with named labels for jumps, and assembled to bytes
//! here; [`crate::xsk`] loads them with the raw `bpf()` syscall. Nothing
//! in this module is `unsafe`: it only makes bytes. Only the instructions
//! the programs use exist.

use std::collections::HashMap;

/// XDP verdicts.
pub mod xdp {
    pub const ABORTED: i32 = 0;
    pub const DROP: i32 = 1;
    pub const PASS: i32 = 2;
    pub const TX: i32 = 3;
    pub const REDIRECT: i32 = 4;
}

/// Helper function numbers.
pub mod helper {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const REDIRECT_MAP: i32 = 51;
}

/// `struct xdp_md` field offsets.
pub mod xdp_md {
    pub const DATA: i16 = 0;
    pub const DATA_END: i16 = 4;
    pub const RX_QUEUE_INDEX: i16 = 16;
}

/// Registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg(pub u8);
pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R8: Reg = Reg(8);
pub const R9: Reg = Reg(9);
pub const R10: Reg = Reg(10);

/// Load and store sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }
}

/// Jump conditions (64-bit compares).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq,
    Ne,
    /// Unsigned greater than.
    Gt,
    /// Unsigned greater than or equal.
    Ge,
    /// Unsigned less than.
    Lt,
    /// Any of the bits set.
    Set,
}

impl Cond {
    fn op(self) -> u8 {
        match self {
            Cond::Eq => 0x10,
            Cond::Gt => 0x20,
            Cond::Ge => 0x30,
            Cond::Set => 0x40,
            Cond::Lt => 0xa0,
            Cond::Ne => 0x50,
        }
    }
}

/// An assembler: instructions appended in order, forward or backward jumps
/// to named labels, resolved by [`Asm::assemble`].
#[derive(Default)]
pub struct Asm {
    insns: Vec<[u8; 8]>,
    labels: HashMap<String, usize>,
    /// (instruction index, label) of jumps to patch.
    fixups: Vec<(usize, String)>,
}

fn encode(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (dst & 0xf) | (src << 4);
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    b
}

const BPF_LDX_MEM: u8 = 0x61; // class LDX | mode MEM, plus the size bits
const BPF_STX_MEM: u8 = 0x63;
const BPF_ST_MEM: u8 = 0x62;
const BPF_ALU64_K: u8 = 0x07;
const BPF_ALU64_X: u8 = 0x0f;
const BPF_JMP_K: u8 = 0x05;
const BPF_JMP_X: u8 = 0x0d;
const OP_ADD: u8 = 0x00;
const OP_OR: u8 = 0x40;
const OP_AND: u8 = 0x50;
const OP_LSH: u8 = 0x60;
const OP_RSH: u8 = 0x70;
const OP_MOV: u8 = 0xb0;

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    fn push(&mut self, i: [u8; 8]) -> &mut Self {
        self.insns.push(i);
        self
    }

    /// Marks the next instruction with `name`.
    pub fn label(&mut self, name: &str) -> &mut Self {
        let prev = self.labels.insert(name.to_string(), self.insns.len());
        assert!(prev.is_none(), "label {name} defined twice");
        self
    }

    /// `dst = *(size *)(src + off)`.
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.push(encode(BPF_LDX_MEM | size.bits(), dst.0, src.0, off, 0))
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.push(encode(BPF_STX_MEM | size.bits(), dst.0, src.0, off, 0))
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn store_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Self {
        self.push(encode(BPF_ST_MEM | size.bits(), dst.0, 0, off, imm))
    }

    pub fn mov(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.push(encode(BPF_ALU64_X | OP_MOV, dst.0, src.0, 0, 0))
    }

    pub fn mov_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(encode(BPF_ALU64_K | OP_MOV, dst.0, 0, 0, imm))
    }

    pub fn add_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(encode(BPF_ALU64_K | OP_ADD, dst.0, 0, 0, imm))
    }

    pub fn and_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(encode(BPF_ALU64_K | OP_AND, dst.0, 0, 0, imm))
    }

    /// `dst &= src`.
    pub fn and_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.push(encode(BPF_ALU64_X | OP_AND, dst.0, src.0, 0, 0))
    }

    /// `dst += src`.
    pub fn add_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.push(encode(BPF_ALU64_X | OP_ADD, dst.0, src.0, 0, 0))
    }

    /// `dst |= src`.
    pub fn or_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.push(encode(BPF_ALU64_X | OP_OR, dst.0, src.0, 0, 0))
    }

    pub fn or_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(encode(BPF_ALU64_K | OP_OR, dst.0, 0, 0, imm))
    }

    /// `dst <<= imm`.
    pub fn lsh_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(encode(BPF_ALU64_K | OP_LSH, dst.0, 0, 0, imm))
    }

    /// `dst >>= imm` (logical).
    pub fn rsh_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(encode(BPF_ALU64_K | OP_RSH, dst.0, 0, 0, imm))
    }

    /// `dst = map` (the 16-byte `ld_imm64` with a map fd).
    pub fn load_map(&mut self, dst: Reg, map_fd: i32) -> &mut Self {
        self.push(encode(0x18, dst.0, 1, 0, map_fd));
        self.push(encode(0, 0, 0, 0, 0))
    }

    /// `if dst <cond> imm goto label`.
    pub fn jump_imm(&mut self, cond: Cond, dst: Reg, imm: i32, label: &str) -> &mut Self {
        self.fixups.push((self.insns.len(), label.to_string()));
        self.push(encode(BPF_JMP_K | cond.op(), dst.0, 0, 0, imm))
    }

    /// `if dst <cond> src goto label`.
    pub fn jump_reg(&mut self, cond: Cond, dst: Reg, src: Reg, label: &str) -> &mut Self {
        self.fixups.push((self.insns.len(), label.to_string()));
        self.push(encode(BPF_JMP_X | cond.op(), dst.0, src.0, 0, 0))
    }

    /// `goto label`.
    pub fn goto(&mut self, label: &str) -> &mut Self {
        self.fixups.push((self.insns.len(), label.to_string()));
        self.push(encode(BPF_JMP_K, 0, 0, 0, 0))
    }

    pub fn call(&mut self, helper: i32) -> &mut Self {
        self.push(encode(0x85, 0, 0, 0, helper))
    }

    pub fn exit(&mut self) -> &mut Self {
        self.push(encode(0x95, 0, 0, 0, 0))
    }

    /// `r0 = verdict; exit`.
    pub fn ret(&mut self, verdict: i32) -> &mut Self {
        self.mov_imm(R0, verdict).exit()
    }

    /// The program's bytes, jumps resolved.
    pub fn assemble(&self) -> Result<Vec<u8>, String> {
        let mut insns = self.insns.clone();
        for (at, label) in &self.fixups {
            let at = *at;
            let to = *self
                .labels
                .get(label.as_str())
                .ok_or(format!("jump to undefined label {label}"))?;
            let off = to as i64 - at as i64 - 1;
            let off = i16::try_from(off).map_err(|_| format!("jump to {label} too far"))?;
            insns[at][2..4].copy_from_slice(&off.to_le_bytes());
        }
        Ok(insns.concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_resolve_to_their_labels_both_ways() {
        let mut a = Asm::new();
        a.label("top")
            .jump_imm(Cond::Eq, R0, 1, "end") // 0 -> 3: off 2
            .mov_imm(R0, 1)
            .jump_imm(Cond::Ne, R0, 0, "top") // 2 -> 0: off -3
            .label("end")
            .exit();
        let code = a.assemble().unwrap();
        assert_eq!(i16::from_le_bytes([code[2], code[3]]), 2);
        assert_eq!(i16::from_le_bytes([code[18], code[19]]), -3);
        let mut b = Asm::new();
        b.jump_imm(Cond::Eq, R0, 0, "nowhere");
        assert!(b.assemble().unwrap_err().contains("nowhere"));
    }
}
