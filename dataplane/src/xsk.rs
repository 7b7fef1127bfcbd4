//! AF_XDP sockets, their UMEM and rings, and the `bpf()` syscall: the only
//! `unsafe` code of odpx (with one libc call beside them,
//! [`release_free_memory`], kept here so that the unsafe stays in one
//! room).
//!
//! # What
//! * [`XskSocket`]: an AF_XDP socket bound to one (interface, queue), with
//!   its UMEM (an anonymous, page-aligned area cut into [`FRAME_SIZE`]-byte
//!   frames) and its four rings (fill, completion, rx, tx) mapped into
//!   this process.
//! * [`BpfMap`], [`XdpProgram`], [`XdpLink`]: maps (XSKMAP, hash), loading
//!   a program (with the verifier's log on refusal), running it on a test
//!   frame (`BPF_PROG_TEST_RUN`) and attaching it through a bpf_link,
//!   which the kernel removes when the process exits. The programs
//!   themselves are bytes made by [`crate::xdp`].
//!
//! # Why raw syscalls
//! No C toolchain beyond gcc may be assumed (no clang, no libbpf, no
//! libxdp), and the programs are short, so they are assembled in Rust
//! ([`crate::bpf`]). The ring protocol is the kernel's (Documentation/networking/
//! af_xdp.rst): single producer, single consumer, free-running u32
//! indices, the producer publishes with a release store and the consumer
//! reads it with an acquire load.
//!
//! # Invariants (what the `unsafe` blocks rely on)
//! * Every ring pointer comes from a successful `mmap` of the size the
//!   kernel's `XDP_MMAP_OFFSETS` describe, and the mapping lives as long as
//!   the [`XskSocket`] (unmapped in `Drop`, after which nothing reads it).
//! * Ring sizes are powers of two; an index is masked before use, so every
//!   descriptor access is inside the mapping.
//! * A frame address handed to the kernel (fill or tx ring) is a multiple
//!   of [`FRAME_SIZE`] below the UMEM length, and the frame is not touched
//!   by this process until the kernel returns it (rx or completion ring).
//!   [`XskSocket`] owns the frame bookkeeping that enforces this.
//!
//! # Threads
//! An [`XskSocket`] is used by one thread at a time (the PMD that polls
//! it); it is `Send`, not `Sync`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes per UMEM frame (the kernel's minimum chunk size; a power of two).
pub const FRAME_SIZE: usize = 2048;
/// Frames per socket: half stay in the fill ring for reception, half are
/// for transmission. 4096 receive frames kept the kernel from running out
/// of fill descriptors on this machine's veths (shared notes).
pub const FRAMES: usize = 8192;
/// Ring sizes (descriptors).
pub const RING_SIZE: u32 = 4096;

const AF_XDP: i32 = 44;
const SOL_XDP: i32 = 283;
const XDP_MMAP_OFFSETS: i32 = 1;
const XDP_RX_RING: i32 = 2;
const XDP_TX_RING: i32 = 3;
const XDP_UMEM_REG: i32 = 4;
const XDP_UMEM_FILL_RING: i32 = 5;
const XDP_UMEM_COMPLETION_RING: i32 = 6;
const XDP_STATISTICS: i32 = 7;
const XDP_PGOFF_RX_RING: i64 = 0;
const XDP_PGOFF_TX_RING: i64 = 0x8000_0000;
const XDP_UMEM_PGOFF_FILL_RING: i64 = 0x1_0000_0000;
const XDP_UMEM_PGOFF_COMPLETION_RING: i64 = 0x1_8000_0000;
const XDP_COPY: u16 = 1 << 1;
const XDP_ZEROCOPY: u16 = 1 << 2;
const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
const XDP_RING_NEED_WAKEUP: u32 = 1;

#[repr(C)]
#[derive(Default)]
struct UmemReg {
    addr: u64,
    len: u64,
    chunk_size: u32,
    headroom: u32,
    flags: u32,
    tx_metadata_len: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RingOffset {
    producer: u64,
    consumer: u64,
    desc: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct MmapOffsets {
    rx: RingOffset,
    tx: RingOffset,
    fr: RingOffset,
    cr: RingOffset,
}

#[repr(C)]
struct SockaddrXdp {
    family: u16,
    flags: u16,
    ifindex: u32,
    queue_id: u32,
    shared_umem_fd: u32,
}

/// One rx or tx descriptor (`struct xdp_desc`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub options: u32,
}

/// Kernel counters of one socket (`struct xdp_statistics`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

impl std::ops::AddAssign for XskStats {
    fn add_assign(&mut self, o: XskStats) {
        self.rx_dropped += o.rx_dropped;
        self.rx_invalid_descs += o.rx_invalid_descs;
        self.tx_invalid_descs += o.tx_invalid_descs;
        self.rx_ring_full += o.rx_ring_full;
        self.rx_fill_ring_empty_descs += o.rx_fill_ring_empty_descs;
        self.tx_ring_empty_descs += o.tx_ring_empty_descs;
    }
}

fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn setsockopt<T>(fd: RawFd, opt: i32, val: &T, what: &str) -> io::Result<()> {
    // SAFETY: `val` points to a live T of size_of::<T>() bytes for the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            SOL_XDP,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(last_err(what));
    }
    Ok(())
}

fn getsockopt<T: Default>(fd: RawFd, opt: i32, what: &str) -> io::Result<T> {
    let mut val = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` is a writable T and `len` says its size; the kernel
    // writes at most `len` bytes.
    let r = unsafe { libc::getsockopt(fd, SOL_XDP, opt, (&mut val as *mut T).cast(), &mut len) };
    if r < 0 {
        return Err(last_err(what));
    }
    Ok(val)
}

/// An anonymous mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn anonymous(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected. The result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(last_err("mmap UMEM"));
        }
        Ok(Mapping {
            ptr: NonNull::new(p.cast()).expect("mmap returned non-null"),
            len,
        })
    }

    fn ring(fd: RawFd, len: usize, pgoff: i64, what: &str) -> io::Result<Mapping> {
        // SAFETY: maps the kernel's ring of this socket at the offset the
        // uapi defines; `len` comes from XDP_MMAP_OFFSETS plus the ring size.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(last_err(what));
        }
        Ok(Mapping {
            ptr: NonNull::new(p.cast()).expect("mmap returned non-null"),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `anonymous`/`ring`;
        // no reference into it outlives `self` (rings and UMEM are owned
        // by the socket that owns this mapping).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A single-producer single-consumer ring shared with the kernel.
struct Ring {
    _map: Mapping,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    mask: u32,
    /// Local copies: what this side has produced/consumed, and the other
    /// side's index as last read.
    cached_prod: u32,
    cached_cons: u32,
}

impl Ring {
    fn new(map: Mapping, off: &RingOffset) -> Ring {
        let base = map.ptr.as_ptr();
        // SAFETY: the offsets come from XDP_MMAP_OFFSETS for this mapping,
        // which the kernel sized to hold all four fields and the
        // descriptor array; the index words are 4-byte aligned.
        unsafe {
            Ring {
                producer: base.add(off.producer as usize).cast(),
                consumer: base.add(off.consumer as usize).cast(),
                flags: base.add(off.flags as usize).cast(),
                desc: base.add(off.desc as usize),
                mask: RING_SIZE - 1,
                cached_prod: 0,
                cached_cons: 0,
                _map: map,
            }
        }
    }

    fn load(&self, p: *const AtomicU32, order: Ordering) -> u32 {
        // SAFETY: `p` points into the live ring mapping (see `new`); the
        // kernel updates it concurrently, hence the atomic access.
        unsafe { (*p).load(order) }
    }

    fn store(&self, p: *const AtomicU32, v: u32) {
        // SAFETY: as in `load`; this side is the only writer of its index.
        unsafe { (*p).store(v, Ordering::Release) }
    }

    fn needs_wakeup(&self) -> bool {
        self.load(self.flags, Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    /// Producer side: free slots, at least `wanted` if the ring has them.
    /// The cached consumer index goes stale as the kernel consumes; it is
    /// re-read whenever it promises fewer than `wanted` slots (re-reading
    /// only at zero would refuse a batch that straddles a stale count).
    fn free(&mut self, wanted: u32) -> u32 {
        let n = RING_SIZE - (self.cached_prod.wrapping_sub(self.cached_cons));
        if n >= wanted {
            return n;
        }
        self.cached_cons = self.load(self.consumer, Ordering::Acquire);
        RING_SIZE - (self.cached_prod.wrapping_sub(self.cached_cons))
    }

    /// Consumer side: entries ready.
    fn ready(&mut self) -> u32 {
        let n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n > 0 {
            return n;
        }
        self.cached_prod = self.load(self.producer, Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    fn addr_slot(&self, idx: u32) -> *mut u64 {
        // SAFETY: idx is masked to the ring size; the fill and completion
        // rings hold u64 addresses.
        unsafe { self.desc.cast::<u64>().add((idx & self.mask) as usize) }
    }

    fn desc_slot(&self, idx: u32) -> *mut Desc {
        // SAFETY: idx is masked; rx and tx rings hold `struct xdp_desc`.
        unsafe { self.desc.cast::<Desc>().add((idx & self.mask) as usize) }
    }
}

/// Which AF_XDP mode the socket got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    ZeroCopy,
    Copy,
}

/// An AF_XDP socket on one (interface, queue) with its own UMEM.
pub struct XskSocket {
    fd: OwnedFd,
    umem: Mapping,
    fill: Ring,
    comp: Ring,
    rx: Ring,
    tx: Ring,
    /// Frames owned by this process and free for transmission.
    free_tx: Vec<u64>,
    /// Receive frames not yet handed back to the fill ring.
    fill_stash: Vec<u64>,
    tx_outstanding: u32,
    pub mode: XdpMode,
    pub ifindex: u32,
    pub queue: u32,
}

// SAFETY: the raw pointers refer to mappings owned by the socket itself;
// moving the socket to another thread moves sole ownership with it.
unsafe impl Send for XskSocket {}

impl XskSocket {
    /// Creates the socket, its UMEM and rings, and binds it to
    /// (ifindex, queue): zero-copy when the driver offers it, copy mode
    /// otherwise (veth is copy-only).
    pub fn bind(ifindex: u32, queue: u32) -> io::Result<XskSocket> {
        match Self::bind_mode(ifindex, queue, XDP_ZEROCOPY) {
            Ok(s) => Ok(s),
            Err(_) => Self::bind_mode(ifindex, queue, XDP_COPY),
        }
    }

    fn bind_mode(ifindex: u32, queue: u32, mode_flag: u16) -> io::Result<XskSocket> {
        // SAFETY: plain socket(2); the fd is owned right away.
        let raw = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(last_err("socket(AF_XDP)"));
        }
        // SAFETY: `raw` is a fresh, valid fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem = Mapping::anonymous(FRAMES * FRAME_SIZE)?;
        let reg = UmemReg {
            addr: umem.ptr.as_ptr() as u64,
            len: (FRAMES * FRAME_SIZE) as u64,
            chunk_size: FRAME_SIZE as u32,
            ..Default::default()
        };
        setsockopt(fd.as_raw_fd(), XDP_UMEM_REG, &reg, "XDP_UMEM_REG")?;
        for (opt, what) in [
            (XDP_UMEM_FILL_RING, "XDP_UMEM_FILL_RING"),
            (XDP_UMEM_COMPLETION_RING, "XDP_UMEM_COMPLETION_RING"),
            (XDP_RX_RING, "XDP_RX_RING"),
            (XDP_TX_RING, "XDP_TX_RING"),
        ] {
            setsockopt(fd.as_raw_fd(), opt, &RING_SIZE, what)?;
        }
        let off: MmapOffsets = getsockopt(fd.as_raw_fd(), XDP_MMAP_OFFSETS, "XDP_MMAP_OFFSETS")?;
        let addr_ring = |o: &RingOffset| o.desc as usize + RING_SIZE as usize * 8;
        let desc_ring = |o: &RingOffset| o.desc as usize + RING_SIZE as usize * std::mem::size_of::<Desc>();
        let fd_raw = fd.as_raw_fd();
        let fill = Ring::new(
            Mapping::ring(fd_raw, addr_ring(&off.fr), XDP_UMEM_PGOFF_FILL_RING, "mmap fill ring")?,
            &off.fr,
        );
        let comp = Ring::new(
            Mapping::ring(
                fd_raw,
                addr_ring(&off.cr),
                XDP_UMEM_PGOFF_COMPLETION_RING,
                "mmap completion ring",
            )?,
            &off.cr,
        );
        let rx = Ring::new(
            Mapping::ring(fd_raw, desc_ring(&off.rx), XDP_PGOFF_RX_RING, "mmap rx ring")?,
            &off.rx,
        );
        let mut tx = Ring::new(
            Mapping::ring(fd_raw, desc_ring(&off.tx), XDP_PGOFF_TX_RING, "mmap tx ring")?,
            &off.tx,
        );
        tx.cached_cons = 0;
        let sa = SockaddrXdp {
            family: AF_XDP as u16,
            flags: mode_flag | XDP_USE_NEED_WAKEUP,
            ifindex,
            queue_id: queue,
            shared_umem_fd: 0,
        };
        // Re-binding right after a close can fail with EBUSY while the
        // kernel tears the old socket down (shared notes): retry a while.
        let mut tries = 0;
        loop {
            // SAFETY: `sa` is a valid sockaddr_xdp of the stated size.
            let r = unsafe {
                libc::bind(
                    fd_raw,
                    (&sa as *const SockaddrXdp).cast(),
                    std::mem::size_of::<SockaddrXdp>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EBUSY) && tries < 30 {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
            return Err(io::Error::new(
                e.kind(),
                format!("bind AF_XDP to ifindex {ifindex} queue {queue}: {e}"),
            ));
        }
        let half = FRAMES / 2;
        let mut s = XskSocket {
            fd,
            umem,
            fill,
            comp,
            rx,
            tx,
            free_tx: (half..FRAMES).map(|i| (i * FRAME_SIZE) as u64).collect(),
            fill_stash: (0..half).map(|i| (i * FRAME_SIZE) as u64).collect(),
            tx_outstanding: 0,
            mode: if mode_flag == XDP_ZEROCOPY {
                XdpMode::ZeroCopy
            } else {
                XdpMode::Copy
            },
            ifindex,
            queue,
        };
        s.refill();
        Ok(s)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Moves stashed receive frames into the fill ring.
    pub fn refill(&mut self) {
        let n = (self.fill.free(self.fill_stash.len() as u32) as usize).min(self.fill_stash.len());
        if n == 0 {
            return;
        }
        let prod = self.fill.cached_prod;
        for i in 0..n {
            let addr = self.fill_stash.pop().expect("n <= stash length");
            // SAFETY: slot inside the fill ring (masked index); the frame
            // address is frame-aligned and inside the UMEM.
            unsafe { self.fill.addr_slot(prod.wrapping_add(i as u32)).write(addr) };
        }
        self.fill.cached_prod = prod.wrapping_add(n as u32);
        self.fill.store(self.fill.producer, self.fill.cached_prod);
        if self.fill.needs_wakeup() {
            self.wake_rx();
        }
    }

    /// Receives up to `out.len()` descriptors. The frames stay owned by
    /// the caller until passed to [`XskSocket::release`].
    pub fn recv(&mut self, out: &mut [Desc]) -> usize {
        let n = (self.rx.ready() as usize).min(out.len());
        let cons = self.rx.cached_cons;
        for (i, d) in out.iter_mut().enumerate().take(n) {
            // SAFETY: slot inside the rx ring (masked); the kernel produced
            // it before publishing the producer index we read.
            *d = unsafe { self.rx.desc_slot(cons.wrapping_add(i as u32)).read() };
        }
        if n > 0 {
            self.rx.cached_cons = cons.wrapping_add(n as u32);
            self.rx.store(self.rx.consumer, self.rx.cached_cons);
        } else if self.fill.needs_wakeup() {
            self.wake_rx();
        }
        n
    }

    /// The bytes of a received or owned frame region.
    pub fn frame(&self, addr: u64, len: u32) -> &[u8] {
        let (off, len) = self.bounds(addr, len);
        // SAFETY: `bounds` keeps the range inside the UMEM; the frame is
        // owned by this process (received, or free for tx).
        unsafe { std::slice::from_raw_parts(self.umem.ptr.as_ptr().add(off), len) }
    }

    /// Mutable bytes of a frame region (received frames may be edited in
    /// place; addresses from 256 bytes into the frame leave headroom).
    pub fn frame_mut(&mut self, addr: u64, len: u32) -> &mut [u8] {
        let (off, len) = self.bounds(addr, len);
        // SAFETY: as in `frame`; `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.umem.ptr.as_ptr().add(off), len) }
    }

    /// The whole frame that holds `addr` (for headroom: pushes write in
    /// front of the received data).
    pub fn whole_frame_mut(&mut self, addr: u64) -> &mut [u8] {
        let start = addr & !(FRAME_SIZE as u64 - 1);
        self.frame_mut(start, FRAME_SIZE as u32)
    }

    fn bounds(&self, addr: u64, len: u32) -> (usize, usize) {
        let off = (addr as usize).min(self.umem.len);
        let frame_end = (off & !(FRAME_SIZE - 1)) + FRAME_SIZE;
        (off, (len as usize).min(frame_end.min(self.umem.len) - off))
    }

    /// Returns received frames to the fill ring (via the stash).
    pub fn release(&mut self, descs: &[Desc]) {
        for d in descs {
            // Copy-mode rx addresses are frame start + 256: recycle the frame.
            self.fill_stash.push(d.addr & !(FRAME_SIZE as u64 - 1));
        }
        self.refill();
    }

    /// A free tx frame to write a packet into, if any.
    pub fn tx_frame(&mut self) -> Option<u64> {
        if self.free_tx.is_empty() {
            self.reap_completions();
        }
        self.free_tx.pop()
    }

    /// Gives a tx frame back unused.
    pub fn tx_unused(&mut self, addr: u64) {
        self.free_tx.push(addr);
    }

    /// Queues written tx frames (address, length) and kicks the kernel.
    /// Returns how many were queued; the rest (tx ring full) are handed
    /// back as free frames and should be counted as drops by the caller.
    pub fn send(&mut self, frames: &[(u64, u32)]) -> usize {
        let n = (self.tx.free(frames.len() as u32) as usize).min(frames.len());
        let prod = self.tx.cached_prod;
        for (i, &(addr, len)) in frames.iter().enumerate().take(n) {
            // SAFETY: slot inside the tx ring (masked); the frame is ours and
            // stays untouched until the completion ring returns it.
            unsafe {
                self.tx
                    .desc_slot(prod.wrapping_add(i as u32))
                    .write(Desc { addr, len, options: 0 })
            };
        }
        for &(addr, _) in &frames[n..] {
            self.free_tx.push(addr);
        }
        if n > 0 {
            self.tx.cached_prod = prod.wrapping_add(n as u32);
            self.tx.store(self.tx.producer, self.tx.cached_prod);
            self.tx_outstanding += n as u32;
        }
        if self.tx_outstanding > 0 {
            self.kick_tx();
        }
        self.reap_completions();
        n
    }

    /// Collects frames the kernel finished sending, and kicks again while
    /// the tx ring still holds descriptors the kernel has not taken (one
    /// kick sends at most 32 frames in copy mode).
    pub fn reap_completions(&mut self) {
        if self.tx_outstanding > 0 && self.tx.load(self.tx.consumer, Ordering::Acquire) != self.tx.cached_prod {
            self.kick_tx();
        }
        let n = self.comp.ready();
        if n == 0 {
            return;
        }
        let cons = self.comp.cached_cons;
        for i in 0..n {
            // SAFETY: slot inside the completion ring, published by the kernel.
            let addr = unsafe { self.comp.addr_slot(cons.wrapping_add(i)).read() };
            self.free_tx.push(addr & !(FRAME_SIZE as u64 - 1));
        }
        self.comp.cached_cons = cons.wrapping_add(n);
        self.comp.store(self.comp.consumer, self.comp.cached_cons);
        self.tx_outstanding = self.tx_outstanding.saturating_sub(n);
    }

    /// TX needs a kick (a zero-length send) to start copy-mode transmission.
    fn kick_tx(&self) {
        // SAFETY: sendto with a null buffer of length 0 is the AF_XDP kick.
        unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            );
        }
    }

    fn wake_rx(&self) {
        // SAFETY: recvfrom with a null buffer of length 0 wakes the driver
        // to refill from the fill ring.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }

    /// The kernel's drop counters for this socket.
    pub fn stats(&self) -> io::Result<XskStats> {
        getsockopt(self.fd.as_raw_fd(), XDP_STATISTICS, "XDP_STATISTICS")
    }
}

// ------------------------------------------------------------------ BPF

const SYS_BPF: libc::c_long = 321;
const BPF_MAP_CREATE: i32 = 0;
const BPF_MAP_UPDATE_ELEM: i32 = 2;
const BPF_MAP_DELETE_ELEM: i32 = 3;
const BPF_PROG_LOAD: i32 = 5;
const BPF_PROG_TEST_RUN: i32 = 10;
const BPF_LINK_CREATE: i32 = 28;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// The kernel's limit on an object name, NUL included.
const BPF_OBJ_NAME_LEN: usize = 16;

/// Union bpf_attr, large enough for the commands used here.
#[repr(C, align(8))]
struct BpfAttr([u8; 128]);

impl BpfAttr {
    fn new() -> Self {
        BpfAttr([0; 128])
    }
    fn u32(&mut self, at: usize, v: u32) -> &mut Self {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, at: usize, v: u64) -> &mut Self {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn read_u32(&self, at: usize) -> u32 {
        u32::from_ne_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }
    fn name(&mut self, at: usize, name: &str) -> &mut Self {
        let n = name.len().min(BPF_OBJ_NAME_LEN - 1);
        self.0[at..at + n].copy_from_slice(&name.as_bytes()[..n]);
        self
    }
}

/// bpf(2) for the commands that answer 0 or a count.
fn bpf_call(cmd: i32, attr: &mut BpfAttr, what: &str) -> io::Result<i64> {
    // SAFETY: bpf(2) reads and writes at most `size_of(BpfAttr)` bytes of
    // `attr`, which lives for the call; pointers inside it (instructions,
    // license, log, keys, values, packet buffers) point to buffers the
    // callers below keep alive across the call, with the sizes they pass.
    let r = unsafe { libc::syscall(SYS_BPF, cmd, attr.0.as_mut_ptr(), std::mem::size_of::<BpfAttr>() as u32) };
    if r < 0 {
        return Err(last_err(what));
    }
    Ok(r)
}

/// bpf(2) for the commands that answer a new file descriptor.
fn bpf_fd(cmd: i32, attr: &mut BpfAttr, what: &str) -> io::Result<OwnedFd> {
    let r = bpf_call(cmd, attr, what)?;
    // SAFETY: MAP_CREATE, PROG_LOAD and LINK_CREATE return a new fd that
    // nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// A BPF map: an XSKMAP (queue -> AF_XDP socket) or a hash map of fixed
/// key and value sizes. Closed with its last fd (programs that use it hold
/// their own reference).
pub struct BpfMap {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

impl BpfMap {
    fn create(kind: u32, key_size: usize, value_size: usize, entries: u32, name: &str) -> io::Result<BpfMap> {
        let mut a = BpfAttr::new();
        a.u32(0, kind)
            .u32(4, key_size as u32)
            .u32(8, value_size as u32)
            .u32(12, entries.max(1))
            .name(28, name);
        let fd = bpf_fd(BPF_MAP_CREATE, &mut a, &format!("bpf(BPF_MAP_CREATE {name})"))?;
        Ok(BpfMap {
            fd,
            key_size,
            value_size,
        })
    }

    /// An XSKMAP of `queues` slots.
    pub fn xsk(queues: u32) -> io::Result<BpfMap> {
        BpfMap::create(BPF_MAP_TYPE_XSKMAP, 4, 4, queues, "odpx_xsks")
    }

    /// A hash map.
    pub fn hash(key_size: usize, value_size: usize, entries: u32, name: &str) -> io::Result<BpfMap> {
        BpfMap::create(BPF_MAP_TYPE_HASH, key_size, value_size, entries, name)
    }

    /// An array map (keys are `u32` indexes, every slot exists, zeroed).
    pub fn array(value_size: usize, entries: u32, name: &str) -> io::Result<BpfMap> {
        BpfMap::create(BPF_MAP_TYPE_ARRAY, 4, value_size, entries, name)
    }

    /// The fd programs refer to (an `ld_imm64` pseudo map fd).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn check_sizes(&self, key: &[u8], value: Option<&[u8]>) -> io::Result<()> {
        if key.len() != self.key_size || value.is_some_and(|v| v.len() != self.value_size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "bpf map entry of {}+{} bytes, the map holds {}+{}",
                    key.len(),
                    value.map_or(0, <[u8]>::len),
                    self.key_size,
                    self.value_size
                ),
            ));
        }
        Ok(())
    }

    /// Inserts or replaces an entry.
    pub fn update(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.check_sizes(key, Some(value))?;
        let mut a = BpfAttr::new();
        a.u32(0, self.fd() as u32)
            .u64(8, key.as_ptr() as u64)
            .u64(16, value.as_ptr() as u64)
            .u64(24, 0);
        bpf_call(BPF_MAP_UPDATE_ELEM, &mut a, "bpf(BPF_MAP_UPDATE_ELEM)").map(drop)
    }

    /// Removes an entry; `Ok(false)` when there was none.
    pub fn delete(&self, key: &[u8]) -> io::Result<bool> {
        self.check_sizes(key, None)?;
        let mut a = BpfAttr::new();
        a.u32(0, self.fd() as u32).u64(8, key.as_ptr() as u64);
        match bpf_call(BPF_MAP_DELETE_ELEM, &mut a, "bpf(BPF_MAP_DELETE_ELEM)") {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Points an XSKMAP's slot `queue` at a socket.
    pub fn set_socket(&self, queue: u32, sock: &XskSocket) -> io::Result<()> {
        self.update(&queue.to_ne_bytes(), &(sock.fd() as u32).to_ne_bytes())
    }
}

/// Where an XDP program runs: in the driver, before an skb exists
/// (native), or on the skb in the core receive path (generic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAttach {
    Native,
    Generic,
}

/// A loaded XDP program (its bytes from [`crate::bpf::Asm`]).
pub struct XdpProgram {
    fd: OwnedFd,
}

/// Where an XDP program is attached: the bpf_link, detached by the kernel
/// when its last fd closes (at the latest when the process exits).
pub struct XdpLink {
    _fd: OwnedFd,
    /// Driver (native) mode, or generic (skb) mode as a fallback.
    pub native: bool,
}

impl XdpProgram {
    /// Verifies and loads `code`; a refusal carries the verifier's log.
    pub fn load(code: &[u8], name: &str) -> io::Result<XdpProgram> {
        let license = b"GPL\0";
        let mut log = vec![0u8; 64 * 1024];
        let mut a = BpfAttr::new();
        a.u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, (code.len() / 8) as u32)
            .u64(8, code.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64)
            .name(48, name)
            .u32(68, BPF_XDP); // expected_attach_type
        let fd = bpf_fd(BPF_PROG_LOAD, &mut a, &format!("bpf(BPF_PROG_LOAD {name})")).map_err(|e| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let msg = String::from_utf8_lossy(&log[..end]).into_owned();
            io::Error::new(e.kind(), format!("{e}; verifier: {msg}"))
        })?;
        Ok(XdpProgram { fd })
    }

    /// Runs the program once on `frame` without attaching it
    /// (`BPF_PROG_TEST_RUN`) and answers its verdict.
    pub fn test_run(&self, frame: &[u8]) -> io::Result<u32> {
        let mut a = BpfAttr::new();
        a.u32(0, self.fd.as_raw_fd() as u32)
            .u32(8, frame.len() as u32)
            .u64(16, frame.as_ptr() as u64)
            .u32(32, 1); // repeat
        bpf_call(BPF_PROG_TEST_RUN, &mut a, "bpf(BPF_PROG_TEST_RUN)")?;
        Ok(a.read_u32(4))
    }

    /// Attaches to an interface, in driver mode when it has one.
    pub fn attach(&self, ifindex: u32) -> io::Result<XdpLink> {
        self.attach_in(ifindex, XdpAttach::Native)
    }

    /// Attaches to an interface in `mode` (native falls back to generic
    /// where the driver has no XDP).
    pub fn attach_in(&self, ifindex: u32, mode: XdpAttach) -> io::Result<XdpLink> {
        let link = |flags: u32| {
            let mut a = BpfAttr::new();
            a.u32(0, self.fd.as_raw_fd() as u32)
                .u32(4, ifindex)
                .u32(8, BPF_XDP)
                .u32(12, flags);
            bpf_fd(BPF_LINK_CREATE, &mut a, "bpf(BPF_LINK_CREATE xdp)")
        };
        if mode == XdpAttach::Generic {
            return Ok(XdpLink {
                _fd: link(XDP_FLAGS_SKB_MODE)?,
                native: false,
            });
        }
        match link(XDP_FLAGS_DRV_MODE) {
            Ok(fd) => Ok(XdpLink { _fd: fd, native: true }),
            Err(_) => Ok(XdpLink {
                _fd: link(XDP_FLAGS_SKB_MODE)?,
                native: false,
            }),
        }
    }
}

/// The interface index of a network device, by name.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface '{name}'"),
        ));
    }
    Ok(i)
}

/// An eventfd that wakes a thread waiting in [`wait_readable`]: whoever
/// sends the thread a message rings it.
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        // SAFETY: eventfd(2) with valid flags returns a new fd or -1.
        let r = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if r < 0 {
            return Err(last_err("eventfd"));
        }
        // SAFETY: the fd was just created and nobody else owns it.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(r) },
        })
    }

    /// Makes the fd readable (until [`Waker::clear`]).
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd; a
        // full counter (EAGAIN) is still readable, which is all we need.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Takes the wake-up (the fd is no longer readable).
    pub fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking
        // eventfd; EAGAIN (nothing to take) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Waits until one of `fds` (AF_XDP sockets) has received frames, or
/// `timeout`; answers whether one had. A PMD with nothing to do waits
/// here instead of spinning: the kernel wakes it when a frame arrives.
pub fn wait_readable(fds: &[RawFd], timeout: std::time::Duration) -> io::Result<bool> {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `polls` is a valid array of `polls.len()` pollfd structs and
    // `ts` a valid timespec, both alive for the call; no signal mask.
    let r = unsafe { libc::ppoll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, &ts, std::ptr::null()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

/// Moves the calling thread into a network namespace (an open
/// `/var/run/netns/NAME` file). For tests and the demo sandbox.
pub fn enter_netns(f: &std::fs::File) -> io::Result<()> {
    // SAFETY: setns on a valid namespace fd affects only this thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r < 0 {
        return Err(last_err("setns"));
    }
    Ok(())
}

/// The CPU's time-stamp counter (cycles at the nominal frequency), for
/// "cycles per packet" as OVS reports it.
#[inline(always)]
pub fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC has no preconditions and touches no memory.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos() as u64)
    }
}

/// Gives the memory the allocator holds free back to the system: glibc's
/// `malloc_trim(0)`, which returns the free pages inside its heaps, not
/// only at their tops. Without it, one burst of allocation (a flood's
/// upcalls and installs) stays in RSS for the life of the process.
/// Returns whether any memory was released. It holds each heap's lock
/// while it walks that heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointers and only walks the allocator's
    // own structures under their locks.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other C libraries: nothing to do (musl returns freed pages itself).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}
