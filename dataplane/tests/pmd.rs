//! A PMD on in-memory ports, driven step by step: the first packet of a
//! flow is upcalled, the translator's install makes the next ones hit, the
//! upcalled packet itself is forwarded, removals bring upcalls back, and a
//! full upcall queue is counted, not silent.

use odpx_classifier::key::Match;
use odpx_classifier::odp::{actions::parse_actions, parse_key};
use odpx_dataplane::pmd::{Pmd, PmdConfig, PmdCounters, PmdMsg, PortTable};
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

fn setup(
    upcall_queue: usize,
) -> (
    Pmd,
    PortTable,
    crossbeam_channel::Receiver<odpx_dataplane::pmd::Upcall>,
    crossbeam_channel::Sender<PmdMsg>,
    Arc<PmdCounters>,
) {
    let ports: PortTable = Arc::new(vec![
        None,
        Some(Arc::new(Port::memory(1, "p1", true))),
        Some(Arc::new(Port::memory(2, "p2", true))),
    ]);
    let (utx, urx) = crossbeam_channel::bounded(upcall_queue);
    let (mtx, mrx) = crossbeam_channel::unbounded();
    let counters = Arc::new(PmdCounters::default());
    let cfg = PmdConfig {
        id: 0,
        core: None,
        rxqs: vec![(1, 0)],
        emc_entries: 1024,
        emc_insert_inv_prob: 1,
        megaflow_limit: 1000,
        idle_timeout: Duration::from_secs(10),
    };
    (
        Pmd::new(cfg, ports.clone(), utx, mrx, counters.clone()),
        ports,
        urx,
        mtx,
        counters,
    )
}

fn megaflow(text: &str) -> Match {
    parse_key(text).unwrap().matched
}

#[test]
fn miss_upcall_install_then_hits() {
    let (mut pmd, ports, upcalls, ctl, counters) = setup(64);
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
    ctl.send(PmdMsg::Install {
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
    assert!(upcalls.try_recv().is_err(), "no more upcalls for this flow");
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
    assert!(upcalls.try_recv().is_ok());
    // Removing the megaflow brings upcalls back.
    ctl.send(PmdMsg::Remove(Box::new(|m: &Match, _: &[_]| m.key.tp_dst == 53)))
        .unwrap();
    pmd.poll_once();
    p1.push_rx(frame(53));
    pmd.poll_once();
    assert!(upcalls.try_recv().is_ok(), "after removal the flow misses again");
    let (tx, rx) = crossbeam_channel::bounded(1);
    ctl.send(PmdMsg::Dump(tx)).unwrap();
    pmd.poll_once();
    assert!(rx.recv().unwrap().is_empty());
}

#[test]
fn a_full_upcall_queue_is_counted_as_lost() {
    let (mut pmd, ports, _upcalls, _ctl, counters) = setup(2);
    let p1 = ports[1].as_ref().unwrap().mem().unwrap();
    for d in 0..10 {
        p1.push_rx(frame(1000 + d));
    }
    pmd.poll_once();
    let s = counters.snapshot();
    assert_eq!((s.upcalls, s.upcalls_lost), (10, 8));
}
