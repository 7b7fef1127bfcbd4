//! The running switch: its ports, its PMD threads, the owner and its
//! threads, and what control asks of them.
//!
//! # Start and stop
//! [`Switch::start`] ([`crate::start`]) parses the rules, opens every
//! port, makes the datapath's backend and the owner core, and starts the
//! threads; if anything fails, what was opened is closed again (ports
//! detach their XDP programs on drop) and the error names the part that
//! failed. [`Switch::stop`] stops the threads that feed the owner, then
//! the PMDs, then the owner thread; dropping the ports removes the XDP
//! programs. A kernel datapath, its vports and flows stay when the daemon
//! stops (they keep forwarding, and the next run adopts them); `odpx
//! datapath delete` removes them.
//!
//! # Threads
//! One thread per PMD (and, in kernel and hybrid modes, one upcall handler
//! per CPU and a dump thread), the owner thread, the underlay monitor when
//! tunnels are configured, and the caller's. The switch object is only
//! read after start and is shared with control threads behind an `Arc`.

use crate::config::DatapathKind;
use crate::core::Change;
use crate::owner::{Answer, Owner, Query};
use odpx_dataplane::pmd::{MegaflowEntry, PmdHandle, PmdMsg, PortTable};
use odpx_offload::kernel::{HandlerCounters, Handlers};
use odpx_offload::OdpClient;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long control waits for the datapaths to agree with a change.
pub const CHANGE_WAIT: Duration = Duration::from_secs(30);

/// A thread with its stop flag.
pub(crate) struct Stoppable {
    pub stop: Arc<AtomicBool>,
    pub join: std::thread::JoinHandle<()>,
}

impl Stoppable {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.join.join();
    }
}

/// What a kernel or hybrid switch knows of its datapath.
pub struct KernelInfo {
    pub dp_name: String,
    pub dp_ifindex: i32,
    /// How misses reach the handlers.
    pub upcall_mode: String,
    pub handlers: Arc<HandlerCounters>,
    /// A socket for reading the datapath (snapshots, `dump-megaflows`),
    /// opened at start: it stays in the datapath's network namespace
    /// whatever namespace the caller is in.
    pub(crate) client: Mutex<OdpClient>,
}

impl KernelInfo {
    fn client(&self) -> Result<std::sync::MutexGuard<'_, OdpClient>, String> {
        self.client.lock().map_err(|_| "datapath socket poisoned".to_string())
    }

    /// Hybrid mode: port `no`'s netdev vport added again if the kernel
    /// removed it with its interface; true if it was.
    pub fn ensure_vport(&self, no: u32, name: &str) -> Result<bool, String> {
        let mut c = self.client()?;
        odpx_offload::kernel::ensure_netdev_vport(&mut c, self.dp_ifindex, no, name)
            .map_err(|e| format!("datapath {}: vport {name}: {e}", self.dp_name))
    }

    /// The datapath's statistics and ports, and its vports with theirs.
    pub fn datapath(&self) -> Result<(odpx_offload::Datapath, Vec<odpx_offload::Vport>), String> {
        let mut c = self.client()?;
        let dp = c.get_datapath(&self.dp_name).map_err(|e| e.to_string())?;
        let vports = c.list_vports(dp.dp_ifindex).map_err(|e| e.to_string())?;
        Ok((dp, vports))
    }

    /// Every kernel flow, with statistics.
    pub fn flows(&self) -> Result<Vec<odpx_offload::Flow>, String> {
        self.client()?.dump_flows(self.dp_ifindex, 0).map_err(|e| e.to_string())
    }
}

/// The running switch (see the module documentation).
pub struct Switch {
    /// The AF_XDP or in-memory ports (none in kernel mode).
    pub ports: PortTable,
    pub(crate) pmds: Vec<PmdHandle>,
    pub(crate) owner: Arc<Owner>,
    pub(crate) owner_thread: Option<(crossbeam_channel::Sender<()>, std::thread::JoinHandle<()>)>,
    pub(crate) handlers: Option<Handlers>,
    pub(crate) underlay_monitor: Option<Stoppable>,
    pub(crate) started: Instant,
    /// Kernel and hybrid modes: the datapath.
    pub kernel: Option<KernelInfo>,
    /// Hybrid mode: the offload policy's settings.
    pub(crate) offload_policy: Option<odpx_offload::policy::OffloadSettings>,
    pub mode: DatapathKind,
    /// Packets the datapaths' `userspace` actions hand up, until the
    /// OpenFlow agent takes them ([`Switch::take_packet_ins`]).
    pub(crate) packet_ins: Mutex<Option<crossbeam_channel::Receiver<odpx_dataplane::upcalls::FromDatapath>>>,
    /// The OpenFlow agent's targets and counters, once it runs (for the
    /// snapshots).
    pub(crate) openflow: std::sync::OnceLock<(Vec<String>, Arc<crate::openflow_counters::OpenflowCounters>)>,
}

impl Switch {
    /// The OpenFlow agent's targets and counters, for the snapshots
    /// (once).
    pub fn attach_openflow(&self, targets: Vec<String>, counters: Arc<crate::openflow_counters::OpenflowCounters>) {
        let _ = self.openflow.set((targets, counters));
    }

    /// The packets for the controllers (once: the OpenFlow agent's).
    pub fn take_packet_ins(&self) -> Option<crossbeam_channel::Receiver<odpx_dataplane::upcalls::FromDatapath>> {
        self.packet_ins.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub fn stop(&mut self) {
        if let Some(m) = self.underlay_monitor.take() {
            m.stop();
        }
        // The handlers call the owner: stop them before it.
        if let Some(h) = self.handlers.take() {
            h.stop();
        }
        for p in &mut self.pmds {
            p.stop();
        }
        if let Some((stop, join)) = self.owner_thread.take() {
            drop(stop);
            let _ = join.join();
        }
    }

    pub fn pmds(&self) -> &[PmdHandle] {
        &self.pmds
    }

    /// The owner (for those who drive it directly: tests, benchmarks).
    pub fn owner(&self) -> &Arc<Owner> {
        &self.owner
    }

    /// Time since the switch started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// A change; returns once every datapath agrees with it.
    pub fn change(&self, c: Change) -> Result<usize, String> {
        self.owner.change_and_wait(c, CHANGE_WAIT)
    }

    /// Returns once every datapath has applied everything the owner
    /// decided before the call.
    pub fn sync(&self) -> Result<(), String> {
        self.change(Change::Sync).map(|_| ())
    }

    /// Tells the owner a port's link went down or came back; returns once
    /// every datapath agrees.
    pub fn port_state(&self, port: u32, up: bool) -> Result<(), String> {
        self.change(Change::PortState { port, up }).map(|_| ())
    }

    pub fn query(&self, q: Query) -> Answer {
        self.owner.query(q)
    }

    pub fn clear_pmd_stats(&self) {
        for h in &self.pmds {
            let _ = h.tx.send(PmdMsg::ClearStats);
        }
    }

    /// Every PMD's megaflows, by PMD.
    pub fn pmd_megaflows(&self) -> Result<Vec<(usize, Vec<MegaflowEntry>)>, String> {
        let mut out = Vec::new();
        for h in &self.pmds {
            let (tx, rx) = crossbeam_channel::bounded(1);
            h.tx.send(PmdMsg::Dump(tx))
                .map_err(|_| format!("pmd {} stopped", h.id))?;
            let flows = rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| format!("pmd {} did not answer", h.id))?;
            out.push((h.id, flows));
        }
        Ok(out)
    }

    pub(crate) fn port_name(&self, no: u32) -> String {
        self.ports
            .get(no as usize)
            .and_then(|p| p.as_ref())
            .map_or(no.to_string(), |p| p.name.clone())
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop();
    }
}
