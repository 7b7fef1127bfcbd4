//! File-descriptor calls: interface indexes, the eventfd that wakes a
//! waiting PMD, `ppoll` on AF_XDP sockets, and entering a network
//! namespace.

use super::last_err;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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
        Ok(Waker {
            // SAFETY: the fd was just created and nobody else owns it.
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
