//! Port links: a port whose link goes down, or whose interface goes away,
//! is taken out of the switch; when it comes back, it is put back, opened
//! again first if its interface was re-created.
//!
//! # What
//! The daemon calls [`LinkWatch::check`] a few times a second. For each
//! AF_XDP port it reads whether the interface is still the one the port
//! opened (same name, same index) and whether its link is up (operstate):
//! * link down, or interface gone: the owner is told the port is down
//!   (out of flooding, its MAC addresses forgotten, every megaflow
//!   revalidated: nothing is sent into a dead port), and the port's
//!   `link_down` counter goes up;
//! * link up again: the owner is told the port is up;
//! * the interface re-created under the same name (a veth deleted and
//!   added again, a container restarted): the port is opened on it
//!   ([`Port::reopen`]: new sockets under the old queues' locks, so the
//!   PMDs go on polling without a restart; `link_reopened` counts it),
//!   then it is up as above. In hybrid mode the kernel removed the port's
//!   netdev vport with the old interface: it is added again at the same
//!   number, so the kernel's flows, which name ports by number, carry
//!   traffic again through it.
//!
//! Each state change is one log line; a port that cannot be opened again
//! says why once, and is tried again at every check.
//!
//! # Threads
//! The watch belongs to the daemon's main thread; it only reads interfaces
//! and asks the owner through [`Switch::port_state`].

use crate::switch::Switch;
use odpx_dataplane::port::{Backend, Port};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Down {
    /// The interface is there, its link is not up.
    Link,
    /// The interface went away (the last reopen error, once one happened).
    Gone(Option<String>),
}

/// The ports the watch has taken out, and why.
#[derive(Default)]
pub struct LinkWatch {
    down: HashMap<u32, Down>,
}

impl LinkWatch {
    /// Looks at every AF_XDP port once; returns a log line per change.
    pub fn check(&mut self, sw: &Switch) -> Vec<String> {
        let mut log = Vec::new();
        for p in sw.ports.iter().flatten() {
            if !matches!(p.backend, Backend::Xdp { .. }) {
                continue;
            }
            let say = |what: &str| format!("port {} ({}): {what}", p.no, p.name);
            let alive = p.is_alive();
            match (self.down.get(&p.no).cloned(), alive, alive && p.link_up()) {
                (None, false, _) => {
                    self.take_out(sw, p, Down::Gone(None), &mut log);
                    log.push(say(
                        "the interface is gone; the switch goes on without it, and opens it again when it is back",
                    ));
                }
                (None, true, false) => {
                    self.take_out(sw, p, Down::Link, &mut log);
                    log.push(say("link down; out of the switch until it is up"));
                }
                (Some(Down::Link), true, true) => {
                    self.put_back(sw, p, &mut log);
                    log.push(say("link up; back in the switch"));
                }
                (Some(Down::Link), false, _) => {
                    self.down.insert(p.no, Down::Gone(None));
                    log.push(say("the interface is gone"));
                }
                (Some(Down::Gone(last)), false, _) if odpx_dataplane::sys::fd::ifindex(&p.name).is_ok() => {
                    match p.reopen().map(|()| kernel_vport_back(sw, p, &mut log)) {
                        Ok(()) if p.link_up() => {
                            self.put_back(sw, p, &mut log);
                            log.push(say("the interface is back: opened again, back in the switch"));
                        }
                        Ok(()) => {
                            self.down.insert(p.no, Down::Link);
                            log.push(say("the interface is back and opened again; its link is down"));
                        }
                        Err(e) => {
                            let e = e.to_string();
                            if last.as_deref() != Some(e.as_str()) {
                                log.push(say(&format!("the interface is back, but opening it again failed: {e}")));
                            }
                            self.down.insert(p.no, Down::Gone(Some(e)));
                        }
                    }
                }
                _ => {}
            }
        }
        log
    }

    fn take_out(&mut self, sw: &Switch, p: &Port, why: Down, log: &mut Vec<String>) {
        p.stats.link_down.fetch_add(1, Ordering::Relaxed);
        self.down.insert(p.no, why);
        if let Err(e) = sw.port_state(p.no, false) {
            log.push(format!("port {}: {e}", p.no));
        }
    }

    /// Back in the switch; `link_up` counts it once the owner agrees (a
    /// soak waits for that count before it sends again).
    fn put_back(&mut self, sw: &Switch, p: &Port, log: &mut Vec<String>) {
        self.down.remove(&p.no);
        match sw.port_state(p.no, true) {
            Ok(()) => {
                p.stats.link_up.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => log.push(format!("port {}: {e}", p.no)),
        }
    }
}

/// Hybrid mode, after a steered port was opened again: its kernel vport
/// back. A failure is said, and the port still goes back into the switch
/// (its PMDs carry it; the kernel's flows through it do not run until a
/// restart adds the vport).
fn kernel_vport_back(sw: &Switch, p: &Port, log: &mut Vec<String>) {
    let (Some(_), Some(k)) = (p.steering_native(), &sw.kernel) else {
        return;
    };
    match k.ensure_vport(p.no, &p.name) {
        Ok(true) => log.push(format!("port {} ({}): its kernel vport added again", p.no, p.name)),
        Ok(false) => {}
        Err(e) => log.push(format!("port {} ({}): {e}", p.no, p.name)),
    }
}
