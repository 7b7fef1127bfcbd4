//! AF_XDP sockets: one socket per (interface, queue), with its UMEM (an
//! anonymous, page-aligned area cut into [`FRAME_SIZE`]-byte frames) and
//! its four rings (fill, completion, rx, tx) mapped into this process.
//!
//! # The ring protocol
//! The kernel's (Documentation/networking/af_xdp.rst): single producer,
//! single consumer, free-running u32 indices; the producer publishes with
//! a release store and the consumer reads it with an acquire load.
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
//! * Frames are reached only inside [`XskSocket::receive`] (the frames the
//!   rx ring returned, read in the closure, then given back to the fill
//!   ring) and [`XskSocket::transmit`] (free frames, written in the
//!   closure, then queued on the tx ring): no reference to a frame leaves
//!   those calls, so safe code never sees a frame the kernel owns.
//!
//! # Threads
//! An [`XskSocket`] is used by one thread at a time (the PMD that polls
//! it); it is `Send`, not `Sync`.

use super::last_err;
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
/// Frames one [`XskSocket::receive`] call takes, and one kick sends, at
/// most.
pub const MAX_BURST: usize = 128;

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
struct Desc {
    addr: u64,
    len: u32,
    options: u32,
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

    /// Receives up to `max` frames (at most [`MAX_BURST`] a call): hands
    /// each one's bytes to `take`, in order, then gives the frames back to
    /// the kernel's fill ring. Returns how many were received.
    pub fn receive(&mut self, max: usize, mut take: impl FnMut(&[u8])) -> usize {
        let mut descs = [Desc::default(); MAX_BURST];
        let n = (self.rx.ready() as usize).min(max).min(MAX_BURST);
        let cons = self.rx.cached_cons;
        for (i, d) in descs.iter_mut().enumerate().take(n) {
            // SAFETY: slot inside the rx ring (masked); the kernel produced
            // it before publishing the producer index we read.
            *d = unsafe { self.rx.desc_slot(cons.wrapping_add(i as u32)).read() };
        }
        if n == 0 {
            if self.fill.needs_wakeup() {
                self.wake_rx();
            }
            return 0;
        }
        self.rx.cached_cons = cons.wrapping_add(n as u32);
        self.rx.store(self.rx.consumer, self.rx.cached_cons);
        for d in &descs[..n] {
            take(self.frame(d.addr, d.len as usize));
            // Copy-mode rx addresses are frame start + 256: recycle the frame.
            self.fill_stash.push(d.addr & !(FRAME_SIZE as u64 - 1));
        }
        self.refill();
        n
    }

    /// Bytes `addr..addr + len` of a frame this socket owns (received and
    /// not yet given back, or free for transmission), cut to the frame.
    fn frame(&self, addr: u64, len: usize) -> &[u8] {
        let (off, len) = self.bounds(addr, len);
        // SAFETY: `bounds` keeps the range inside the UMEM; the callers
        // pass only frames the kernel handed back (rx ring) or that are
        // free (never queued, or returned by the completion ring).
        unsafe { std::slice::from_raw_parts(self.umem.ptr.as_ptr().add(off), len) }
    }

    /// The whole free transmit frame at `addr`.
    fn free_frame_mut(&mut self, addr: u64) -> &mut [u8] {
        let (off, len) = self.bounds(addr, FRAME_SIZE);
        // SAFETY: as in `frame`, for a free frame; `&mut self` makes this
        // the only access while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(self.umem.ptr.as_ptr().add(off), len) }
    }

    fn bounds(&self, addr: u64, len: usize) -> (usize, usize) {
        let off = (addr as usize).min(self.umem.len);
        let frame_end = (off & !(FRAME_SIZE - 1)) + FRAME_SIZE;
        (off, len.min(frame_end.min(self.umem.len) - off))
    }

    /// Sends up to `max` frames with one kick per [`MAX_BURST`]: for each,
    /// a free frame ([`FRAME_SIZE`] bytes) is handed to `fill` with its
    /// number, and `fill` writes the packet and answers its length (`None`:
    /// nothing more to send). Returns how many frames were queued; it stops
    /// early when no frame is free or the tx ring is full (the caller
    /// counts the rest as dropped).
    pub fn transmit(&mut self, max: usize, mut fill: impl FnMut(usize, &mut [u8]) -> Option<usize>) -> usize {
        let mut queued = 0;
        let mut frames = [(0u64, 0u32); MAX_BURST];
        let mut done = false;
        while queued < max && !done {
            let mut k = 0;
            while k < MAX_BURST && queued + k < max {
                let Some(addr) = self.take_free_tx() else {
                    done = true;
                    break;
                };
                match fill(queued + k, self.free_frame_mut(addr)) {
                    Some(len) => {
                        frames[k] = (addr, len.min(FRAME_SIZE) as u32);
                        k += 1;
                    }
                    None => {
                        self.free_tx.push(addr);
                        done = true;
                        break;
                    }
                }
            }
            let sent = self.queue_tx(&frames[..k]);
            queued += sent;
            done |= sent < k || k == 0;
        }
        queued
    }

    /// A free tx frame, reaping completions when none is left.
    fn take_free_tx(&mut self) -> Option<u64> {
        if self.free_tx.is_empty() {
            self.reap_completions();
        }
        self.free_tx.pop()
    }

    /// Queues written tx frames (address, length) and kicks the kernel.
    /// Returns how many were queued; the rest (tx ring full) go back to
    /// the free frames.
    fn queue_tx(&mut self, frames: &[(u64, u32)]) -> usize {
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
