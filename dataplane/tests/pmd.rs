//! A PMD on in-memory ports, driven step by step: the first packet of a
//! flow is upcalled, the translator's install makes the next ones hit, the
//! upcalled packet itself is forwarded, deletions bring upcalls back,
//! modifications take effect in place, sweeps expire idle megaflows and
//! report active ones, barriers answer, and a full upcall queue is counted,
//! not silent.

use odpx_classifier::flow_op::{FlowOp, Holder, Ufid};
use odpx_classifier::key::Match;
use odpx_classifier::odp::{actions::parse_actions, parse_key};
use odpx_dataplane::pmd::{ManualClock, Pmd, PmdConfig, PmdCounters, PmdMsg, PmdReport, PortTable, SlowPath};
use odpx_dataplane::port::Port;
use std::sync::Arc;
use std::time::Duration;

fn frame(dport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, dport);
    let mut f = Vec::new();
    b.write(&mut f, &[0u8; 18]).unwrap();
    f
}

type Setup = (
    Pmd,
    PortTable,
    odpx_dataplane::upcalls::UpcallReceiver,
    crossbeam_channel::Sender<PmdMsg>,
    Arc<PmdCounters>,
    crossbeam_channel::Receiver<PmdReport>,
);

/// A PMD that probes its EMC for every packet (counts are exact).
fn setup(upcall_queue: usize) -> Setup {
    setup_with(upcall_queue, false)
}

fn setup_with(upcall_queue: usize, emc_adaptive: bool) -> Setup {
    setup_full(upcall_queue, emc_adaptive, 1000, clock())
}

/// The PMD's clock in these tests: it moves a microsecond at every
/// reading (so a background slice of 100 µs ends after about 50 steps),
/// and by hand.
fn clock() -> ManualClock {
    ManualClock::ticking(Duration::from_secs(1), Duration::from_micros(1))
}

fn setup_full(
    upcall_queue: usize,
    emc_adaptive: bool,
    megaflow_limit: usize,
    clock: ManualClock,
) -> (
    Pmd,
    PortTable,
    odpx_dataplane::upcalls::UpcallReceiver,
    crossbeam_channel::Sender<PmdMsg>,
    Arc<PmdCounters>,
    crossbeam_channel::Receiver<PmdReport>,
) {
    let ports: PortTable = Arc::new(vec![
        None,
        Some(Arc::new(Port::memory(1, "p1", true))),
        Some(Arc::new(Port::memory(2, "p2", true))),
    ]);
    let (utx, urx) = odpx_dataplane::upcalls::upcall_queues(3, upcall_queue);
    let (mtx, mrx) = crossbeam_channel::unbounded();
    let (rtx, rrx) = crossbeam_channel::unbounded();
    let counters = Arc::new(PmdCounters::default());
    let cfg = PmdConfig {
        id: 0,
        core: None,
        rxqs: vec![(1, 0)],
        emc_entries: 1024,
        emc_insert_inv_prob: 1,
        emc_adaptive,
        idle_wait: None,
        megaflow_limit,
    };
    let slow = SlowPath {
        upcalls: utx,
        reports: rtx,
        to_userspace: odpx_dataplane::upcalls::UserspaceSender::none(),
    };
    (
        Pmd::with_clock(cfg, ports.clone(), slow, mrx, counters.clone(), Box::new(clock)),
        ports,
        urx,
        mtx,
        counters,
        rrx,
    )
}

fn megaflow(text: &str) -> Match {
    parse_key(text).unwrap().matched
}

/// With the adaptive EMC, one batch in eight is classified without it
/// (to measure what the EMC saves); those packets go exactly where the
/// others go.
#[test]
fn adaptive_emc_samples_batches_without_it_and_forwards_them_alike() {
    let (mut pmd, ports, mut upcalls, ctl, counters, _reports) = setup_with(64, true);
    let p1 = ports[1].as_ref().unwrap().mem().unwrap();
    let p2 = ports[2].as_ref().unwrap().mem().unwrap();
    let m = megaflow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53)");
    ctl.send(PmdMsg::Install {
        ufid: Ufid::of(&m, Holder::Pmd(0)),
        matched: Box::new(m),
        actions: parse_actions("2").unwrap().into(),
        packet: None,
    })
    .unwrap();
    pmd.poll_once();
    let batches = 8 * odpx_dataplane::emc_policy::SAMPLE_EVERY as usize;
    for _ in 0..batches {
        for _ in 0..32 {
            p1.push_rx(frame(53));
        }
        assert_eq!(pmd.poll_once(), 32);
    }
    assert_eq!(p2.take_tx(), vec![frame(53); batches * 32]);
    assert!(upcalls.try_recv().is_none());
    let s = counters.snapshot();
    assert_eq!(s.emc_bypassed, 8 * 32, "one batch in eight without the EMC: {s:?}");
    assert_eq!(s.emc_hits + s.megaflow_hits, (batches * 32) as u64, "{s:?}");
    assert_eq!(s.emc_on, 1, "the mode changes only once an epoch of samples closes");
}

#[test]
fn miss_upcall_install_then_hits() {
    let (mut pmd, ports, mut upcalls, ctl, counters, reports) = setup(64);
    let p1 = ports[1].as_ref().unwrap().mem().unwrap();
    let p2 = ports[2].as_ref().unwrap().mem().unwrap();
    p1.push_rx(frame(53));
    assert_eq!(pmd.poll_once(), 1);
    let u = upcalls.try_recv().expect("the miss is upcalled");
    assert_eq!((u.in_port, u.packet.clone()), (1, frame(53)));
    assert!(
        p2.take_tx().is_empty(),
        "nothing forwarded before the translator answers"
    );
    // The translator's answer: a megaflow on in_port and UDP dst, output 2.
    let m = megaflow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53)");
    let ufid = Ufid::of(&m, Holder::Pmd(0));
    ctl.send(PmdMsg::Install {
        ufid,
        matched: Box::new(m),
        actions: parse_actions("2").unwrap().into(),
        packet: Some((u.in_port, u.packet)),
    })
    .unwrap();
    pmd.poll_once();
    assert_eq!(
        p2.take_tx(),
        vec![frame(53)],
        "the upcalled packet is executed, not lost"
    );
    for _ in 0..40 {
        p1.push_rx(frame(53));
    }
    // Batches of 32: two passes.
    assert_eq!(pmd.poll_once(), 32);
    assert_eq!(pmd.poll_once(), 8);
    assert_eq!(p2.take_tx().len(), 40);
    assert!(upcalls.try_recv().is_none(), "no more upcalls for this flow");
    let s = counters.snapshot();
    assert_eq!(s.packets, 41);
    assert_eq!(s.upcalls, 1);
    // The first batch found the megaflow (and filled the exact-match
    // cache, insertion probability 1 here); the second hit the EMC.
    assert_eq!((s.megaflow_hits, s.emc_hits), (32, 8), "{s:?}");
    assert_eq!(s.subtables_probed, 32);
    assert_eq!(s.megaflows, 1);
    // Another UDP port misses the megaflow.
    p1.push_rx(frame(54));
    pmd.poll_once();
    assert!(upcalls.try_recv().is_some());
    // New actions in place: the EMC entry keeps pointing at the slot, and
    // the next packet runs them.
    ctl.send(PmdMsg::Ops(vec![FlowOp::Modify {
        ufid,
        matched: Box::new(m),
        actions: parse_actions("1").unwrap().into(),
    }]))
    .unwrap();
    pmd.poll_once();
    p1.push_rx(frame(53));
    pmd.poll_once();
    assert!(upcalls.try_recv().is_none(), "a modified megaflow still hits");
    assert!(p2.take_tx().is_empty());
    assert_eq!(p1.take_tx(), vec![frame(53)], "the new actions ran");
    // A barrier is answered after what was sent before it.
    ctl.send(PmdMsg::Barrier(7)).unwrap();
    pmd.poll_once();
    assert!(matches!(
        reports.try_recv(),
        Ok(PmdReport::Barrier { pmd: 0, token: 7 })
    ));
    // Deleting the megaflow brings upcalls back.
    ctl.send(PmdMsg::Ops(vec![FlowOp::Delete { ufid }])).unwrap();
    pmd.poll_once();
    p1.push_rx(frame(53));
    pmd.poll_once();
    assert!(upcalls.try_recv().is_some(), "after deletion the flow misses again");
    let (tx, rx) = crossbeam_channel::bounded(1);
    ctl.send(PmdMsg::Dump(tx)).unwrap();
    pmd.poll_once();
    assert!(rx.recv().unwrap().is_empty());
}

#[test]
fn sweeps_expire_idle_megaflows_and_report_active_ones() {
    let time = clock();
    let (mut pmd, ports, _upcalls, ctl, counters, reports) = setup_full(64, false, 1000, time.clone());
    let p1 = ports[1].as_ref().unwrap().mem().unwrap();
    let hot = megaflow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53)");
    let cold = megaflow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=54)");
    let (uh, uc) = (Ufid::of(&hot, Holder::Pmd(0)), Ufid::of(&cold, Holder::Pmd(0)));
    ctl.send(PmdMsg::Ops(
        [(uh, hot), (uc, cold)]
            .into_iter()
            .map(|(ufid, m)| FlowOp::Install {
                ufid,
                matched: Box::new(m),
                actions: parse_actions("2").unwrap().into(),
            })
            .collect(),
    ))
    .unwrap();
    pmd.poll_once();
    time.advance(Duration::from_millis(30));
    for _ in 0..3 {
        p1.push_rx(frame(53));
    }
    pmd.poll_once();
    // Idle for 20 ms or more: the cold one (never hit, installed 30 ms ago).
    ctl.send(PmdMsg::Sweep {
        token: 1,
        max_idle: Duration::from_millis(20),
    })
    .unwrap();
    pmd.poll_once();
    let Ok(PmdReport::Swept {
        token: 1,
        expired,
        active,
        ..
    }) = reports.try_recv()
    else {
        panic!("a sweep report");
    };
    assert_eq!(expired.iter().map(|u| u.ufid).collect::<Vec<_>>(), vec![uc]);
    assert_eq!(active.len(), 1);
    assert_eq!((active[0].ufid, active[0].stats.packets), (uh, 3));
    assert_eq!(counters.snapshot().megaflows, 1);
    assert_eq!(counters.snapshot().expired, 1);
    // Nothing used since: the next sweep reports no active megaflow.
    ctl.send(PmdMsg::Sweep {
        token: 2,
        max_idle: Duration::from_secs(60),
    })
    .unwrap();
    pmd.poll_once();
    let Ok(PmdReport::Swept { expired, active, .. }) = reports.try_recv() else {
        panic!("a sweep report");
    };
    assert!(expired.is_empty() && active.is_empty(), "{expired:?} {active:?}");
}

#[test]
fn an_install_beyond_the_hard_limit_runs_the_packet_and_is_reported() {
    let (mut pmd, ports, _upcalls, ctl, counters, reports) = setup(64);
    let p2 = ports[2].as_ref().unwrap().mem().unwrap();
    for d in 0..1001u16 {
        let m = megaflow(&format!(
            "in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst={d})"
        ));
        ctl.send(PmdMsg::Install {
            ufid: Ufid::of(&m, Holder::Pmd(0)),
            matched: Box::new(m),
            actions: parse_actions("2").unwrap().into(),
            packet: (d == 1000).then(|| (1, frame(d))),
        })
        .unwrap();
    }
    settle(&mut pmd);
    assert_eq!(p2.take_tx(), vec![frame(1000)]);
    assert_eq!(counters.snapshot().flow_limit_hits, 1);
    assert!(matches!(reports.try_recv(), Ok(PmdReport::NotInstalled { .. })));
}

#[test]
fn a_full_upcall_queue_is_counted_as_lost() {
    let (mut pmd, ports, _upcalls, _ctl, counters, _reports) = setup(2);
    let p1 = ports[1].as_ref().unwrap().mem().unwrap();
    for d in 0..10 {
        p1.push_rx(frame(1000 + d));
    }
    pmd.poll_once();
    let s = counters.snapshot();
    assert_eq!((s.upcalls, s.upcalls_lost), (10, 8));
}

/// Polls until no background work is left.
fn settle(pmd: &mut Pmd) {
    pmd.poll_once();
    while pmd.has_backlog() {
        pmd.poll_once();
    }
}

fn install(ctl: &crossbeam_channel::Sender<PmdMsg>, m: Match, out: &str) -> Ufid {
    let ufid = Ufid::of(&m, Holder::Pmd(0));
    ctl.send(PmdMsg::Ops(vec![FlowOp::Install {
        ufid,
        matched: Box::new(m),
        actions: parse_actions(out).unwrap().into(),
    }]))
    .unwrap();
    ufid
}

fn by_source(port: u16) -> Match {
    megaflow(&format!(
        "in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(src={port},dst=9)"
    ))
}

/// Thousands of installs waiting do not keep a PMD from its queues: a
/// pass forwards the received batch and takes one slice of the installs;
/// the rest wait for the next passes (and keep the PMD from sleeping).
#[test]
fn installs_wait_their_slice_while_received_batches_go_first() {
    let (mut pmd, ports, _upcalls, ctl, counters, _reports) = setup_full(64, false, 20_000, clock());
    let p1 = ports[1].as_ref().unwrap().mem().unwrap();
    let p2 = ports[2].as_ref().unwrap().mem().unwrap();
    install(
        &ctl,
        megaflow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53)"),
        "2",
    );
    settle(&mut pmd);
    for sport in 0..5000 {
        install(&ctl, by_source(sport), "drop");
    }
    for _ in 0..32 {
        p1.push_rx(frame(53));
    }
    assert_eq!(pmd.poll_once(), 32);
    assert_eq!(p2.take_tx().len(), 32, "the received batch went first");
    assert!(pmd.has_backlog(), "5,000 installs are more than one slice");
    let partly = counters.snapshot().megaflows;
    assert!((1..5001).contains(&partly), "{partly}");
    settle(&mut pmd);
    assert_eq!(counters.snapshot().megaflows, 5001);
}

/// A sweep walks the cache in steps between passes over the queues, and
/// reports once, with everything its walk expired.
#[test]
fn a_sweep_walks_in_slices_and_reports_once_at_the_end() {
    let time = clock();
    let (mut pmd, ports, _upcalls, ctl, counters, reports) = setup_full(64, false, 20_000, time.clone());
    let p1 = ports[1].as_ref().unwrap().mem().unwrap();
    let p2 = ports[2].as_ref().unwrap().mem().unwrap();
    let hot = install(
        &ctl,
        megaflow("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53)"),
        "2",
    );
    let cold: Vec<Ufid> = (0..19_000)
        .map(|sport| install(&ctl, by_source(sport), "drop"))
        .collect();
    settle(&mut pmd);
    time.advance(Duration::from_millis(30));
    p1.push_rx(frame(53));
    settle(&mut pmd);
    ctl.send(PmdMsg::Sweep {
        token: 9,
        max_idle: Duration::from_millis(20),
    })
    .unwrap();
    for _ in 0..32 {
        p1.push_rx(frame(53));
    }
    assert_eq!(pmd.poll_once(), 32);
    assert!(pmd.has_backlog(), "19,000 expirations are more than one slice");
    assert!(reports.try_recv().is_err(), "no report before the walk's end");
    assert_eq!(p2.take_tx().len(), 33, "received batches keep going during the sweep");
    settle(&mut pmd);
    let Ok(PmdReport::Swept {
        token: 9,
        expired,
        active,
        ..
    }) = reports.try_recv()
    else {
        panic!("one sweep report");
    };
    let mut expired: Vec<Ufid> = expired.iter().map(|u| u.ufid).collect();
    expired.sort();
    let mut want = cold.clone();
    want.sort();
    assert!(
        expired == want,
        "exactly the cold megaflows expired ({} of {})",
        expired.len(),
        want.len()
    );
    assert_eq!(active.iter().map(|u| u.ufid).collect::<Vec<_>>(), vec![hot]);
    assert_eq!(counters.snapshot().megaflows, 1);
    assert!(reports.try_recv().is_err(), "one report");
}
