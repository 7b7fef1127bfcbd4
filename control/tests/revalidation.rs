//! The megaflow owner against a reference model: random rule changes, MAC
//! moves and idle expiry while many flows run through two PMDs, driven
//! step by step (no threads, so every interleaving is the test's own).
//!
//! After each change has been answered (the answer comes only once every
//! PMD has applied what the change caused), every packet sent must come
//! out exactly as the reference decides: the rule tables translated afresh
//! for that packet, with a MAC table that learns from every packet that
//! runs NORMAL. A megaflow left with an old decision shows up as a wrong
//! output, a missing one or an extra one.

use crossbeam_channel::{Receiver, Sender};
use odpx_classifier::rules::meter::ALL_METERS;
use odpx_classifier::rules::{ofctl, RuleSet, Selector};
use odpx_classifier::wire::{Ipv4Header, ETHERNET_LEN};
use odpx_control::backend::userspace::Userspace;
use odpx_control::core::mac::MacTable;
use odpx_control::core::meters::MeterOp;
use odpx_control::core::{Change, Core, CoreConfig, Holders, Packet};
use odpx_control::owner::{Owner, UnderlayIo};
use odpx_control::reference::{decide, LearningEnv, RuleFamily};
use odpx_dataplane::pmd::{ManualClock, Pmd, PmdConfig, PmdCounters, PmdMsg, PmdReport, PortTable, SlowPath};
use odpx_dataplane::port::Port;
use odpx_dataplane::upcalls::{upcall_queues, UpcallReceiver};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PORTS: u32 = 3;
const HOSTS: u8 = 4;

/// Two PMDs (p1 and p3 on PMD 0, p2 on PMD 1), one owner, all driven by
/// hand, on one made-up clock.
struct Rig {
    ports: PortTable,
    pmds: Vec<Pmd>,
    msgs: Vec<Sender<PmdMsg>>,
    upcalls: UpcallReceiver,
    reports: Receiver<PmdReport>,
    owner: Arc<Owner>,
    /// The PMDs' clock and the owner's: they move together.
    pmd_clock: ManualClock,
    now: Instant,
}

impl Rig {
    fn new(rules: &str, idle: Duration) -> Rig {
        let pmd_clock = ManualClock::starting_at(Duration::from_secs(1));
        let ports: PortTable = Arc::new(
            std::iter::once(None)
                .chain((1..=PORTS).map(|i| Some(Arc::new(Port::memory(i, &format!("p{i}"), true)))))
                .collect(),
        );
        let (utx, upcalls) = upcall_queues(PORTS as usize + 1, 1 << 16);
        let (rtx, reports) = crossbeam_channel::unbounded();
        let mut pmds = Vec::new();
        let mut msgs = Vec::new();
        for id in 0..2 {
            let (mtx, mrx) = crossbeam_channel::unbounded();
            let cfg = PmdConfig {
                id,
                core: None,
                rxqs: (1..=PORTS)
                    .filter(|p| (*p as usize + 1) % 2 == id)
                    .map(|p| (p, 0))
                    .collect(),
                emc_entries: 1024,
                emc_insert_inv_prob: 1,
                emc_adaptive: true,
                idle_wait: None,
                megaflow_limit: 100_000,
            };
            let slow = SlowPath {
                upcalls: utx.clone(),
                reports: rtx.clone(),
                to_userspace: odpx_dataplane::upcalls::UserspaceSender::none(),
            };
            pmds.push(Pmd::with_clock(
                cfg,
                ports.clone(),
                slow,
                mrx,
                Arc::new(PmdCounters::default()),
                Box::new(pmd_clock.clone()),
            ));
            msgs.push(mtx);
        }
        let mut set = RuleSet::new();
        for r in ofctl::parse_rules(rules).unwrap() {
            set.add(r);
        }
        let now = Instant::now();
        let core = Core::new(
            CoreConfig {
                rules: set,
                ports: (1..=PORTS).collect(),
                holders: Holders { pmds: 2, kernel: false },
                megaflow_limit: 100_000,
                idle_timeout: idle,
                tunnels: Default::default(),
                offload: None,
            },
            now,
        );
        let owner = Owner::new(core, Box::new(Userspace::new(msgs.clone())), UnderlayIo::none());
        Rig {
            ports,
            pmds,
            msgs,
            upcalls,
            reports,
            owner,
            pmd_clock,
            now,
        }
    }

    /// Time passes, for the PMDs and the owner alike.
    fn advance(&mut self, by: Duration) {
        self.pmd_clock.advance(by);
        self.now += by;
    }

    /// Runs PMDs and owner until nothing is left to do (upcalls are
    /// answered before reports are read).
    fn settle(&mut self) {
        let now = self.now;
        loop {
            let mut busy = false;
            for p in &mut self.pmds {
                busy |= p.poll_once() > 0 || p.has_backlog();
            }
            while let Some(u) = self.upcalls.try_recv() {
                let packet = Packet::Pmd {
                    pmd: u.pmd,
                    in_port: u.in_port,
                    bytes: u.packet,
                };
                self.owner.decide(|c| c.upcall(&u.key, packet, now));
                busy = true;
            }
            while let Ok(r) = self.reports.try_recv() {
                self.owner.decide(|c| c.pmd_report(r, now));
                busy = true;
            }
            let queued = self.msgs.iter().any(|m| !m.is_empty());
            let pending_rx = (1..=PORTS as usize).any(|p| self.ports[p].as_ref().unwrap().mem().unwrap().rx_len() > 0);
            if !busy && !queued && !pending_rx {
                return;
            }
        }
    }

    /// A change answered only once every PMD agrees: the answer must be
    /// there once everything settled, and not before, unless the change
    /// sent the PMDs nothing to apply (then at once).
    fn change(&mut self, c: Change) -> usize {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.owner.change(c, tx);
        if let Ok(answer) = rx.try_recv() {
            let sent = self.msgs.iter().map(|m| m.len()).sum::<usize>();
            assert_eq!(sent, 0, "answered before the PMDs applied the change");
            self.settle();
            return answer.expect("accepted");
        }
        self.settle();
        rx.try_recv().expect("answered once settled").expect("accepted")
    }

    /// Adds a group (`add-group` syntax), in force once the PMDs agree.
    fn add_group(&mut self, text: &str) {
        let g = ofctl::parse_group(text).unwrap();
        let now = self.now;
        let r = self
            .owner
            .decide(|c| c.group_ops(vec![odpx_control::core::groups::GroupOp::Add(g)], now));
        assert!(r.iter().all(Result::is_ok), "{r:?}");
        self.change(Change::Sync);
    }

    /// Adds one rule (`add-flow` syntax), in force once the PMDs agree.
    fn add_rule(&mut self, text: &str) {
        self.change(Change::AddRules(vec![ofctl::parse_rule(text).unwrap()]));
    }

    /// Sends one frame in on `port`; returns what came out, by port.
    fn send(&mut self, port: u32, frame: &[u8]) -> Vec<(u32, Vec<u8>)> {
        self.ports[port as usize]
            .as_ref()
            .unwrap()
            .mem()
            .unwrap()
            .push_rx(frame.to_vec());
        self.settle();
        let mut out = Vec::new();
        for p in 1..=PORTS {
            for f in self.ports[p as usize].as_ref().unwrap().mem().unwrap().take_tx() {
                out.push((p, f));
            }
        }
        out.sort();
        out
    }
}

fn mac(h: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, h]
}

/// A test flow: source host, destination (a host or broadcast), protocol
/// and destination port.
#[derive(Clone, Copy, Debug)]
struct Flow {
    src: u8,
    dst: Option<u8>,
    tcp: bool,
    dport: u16,
}

fn frame(f: &Flow) -> Vec<u8> {
    let dst_mac = f.dst.map_or([0xff; 6], mac);
    let dst_ip = f.dst.map_or(255, |d| d);
    let b = etherparse::PacketBuilder::ethernet2(mac(f.src), dst_mac).ipv4([10, 0, 0, f.src], [10, 0, 0, dst_ip], 64);
    let mut out = Vec::new();
    if f.tcp {
        b.tcp(1000 + f.src as u16, f.dport, 1, 1000)
            .write(&mut out, &[0u8; 8])
            .unwrap();
    } else {
        b.udp(1000 + f.src as u16, f.dport).write(&mut out, &[0u8; 8]).unwrap();
    }
    out
}

fn run(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let base = "table=0,priority=0,actions=NORMAL\ntable=1,priority=0,actions=NORMAL\n";
    let idle = Duration::from_millis(20);
    let mut rig = Rig::new(base, idle);
    let mut reference = RuleSet::new();
    for r in ofctl::parse_rules(base).unwrap() {
        reference.add(r);
    }
    let mut ref_macs = MacTable::new((1..=PORTS).collect(), Duration::from_secs(300), 65536);
    let mut at: Vec<u32> = (0..HOSTS).map(|h| h as u32 % PORTS + 1).collect();
    let flows: Vec<Flow> = (1..=HOSTS)
        .flat_map(|src| {
            (0..=HOSTS).filter(move |d| *d != src).flat_map(move |d| {
                [(false, 53), (true, 80), (false, 443), (true, 1000)]
                    .into_iter()
                    .map(move |(tcp, dport)| Flow {
                        src,
                        dst: (d > 0).then_some(d),
                        tcp,
                        dport,
                    })
            })
        })
        .collect();
    let family = RuleFamily {
        ports: (1..=PORTS).collect(),
        hosts: HOSTS,
        port_resubmit: true,
    };
    let mut checked = 0;
    for step in 0..steps {
        match rng.gen_range(0..10) {
            0..=3 => {
                let text = family.draw(&mut rng);
                let r = ofctl::parse_rule(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                reference.add(r.clone());
                assert_eq!(rig.change(Change::AddRules(vec![r])), 1);
            }
            4 | 5 => {
                let rules: Vec<_> = reference.iter().filter(|r| r.priority > 0).cloned().collect();
                // (No rule to delete yet: the step only sends traffic.)
                if let Some(victim) = rules.get(rng.gen_range(0..rules.len().max(1))) {
                    reference.delete(&Selector::matching(
                        Some(victim.table),
                        victim.matched,
                        Some(victim.priority),
                    ));
                    let (table, matched) = (Some(victim.table), Box::new(victim.matched));
                    // Non-strict delete by the victim's match: also takes
                    // the rules it covers, in both.
                    let n = rig.change(Change::DelRules {
                        table,
                        matched,
                        strict: None,
                    });
                    let more = reference.delete(&Selector::matching(table, victim.matched, None)).len();
                    assert_eq!(n, 1 + more);
                }
            }
            6 | 7 => {
                // A host moves to another port.
                let h = rng.gen_range(0..HOSTS as usize);
                at[h] = at[h] % PORTS + 1;
            }
            8 => {
                // Time passes: megaflows go idle and the owner sweeps. The
                // PMDs expire them, and the next packet of such a flow
                // reaches the owner before the sweep's report does.
                rig.advance(idle + Duration::from_millis(5));
                rig.advance(Duration::from_secs(1));
                let now = rig.now;
                rig.owner.decide(|c| c.tick(now));
                for p in &mut rig.pmds {
                    p.poll_once();
                }
            }
            _ => {}
        }
        let n = if step % 10 == 9 { flows.len() } else { 12 };
        for _ in 0..n {
            let f = flows[rng.gen_range(0..flows.len())];
            let port = at[f.src as usize - 1];
            let fr = frame(&f);
            let mut env = LearningEnv {
                macs: &mut ref_macs,
                now: rig.now,
            };
            let want = decide(&reference, &mut env, port, &fr);
            let got = rig.send(port, &fr);
            assert_eq!(
                got,
                want,
                "seed {seed} step {step}: {f:?} in on port {port}\nrules:\n{}",
                reference.iter().map(ofctl::format_rule).collect::<Vec<_>>().join("\n")
            );
            checked += 1;
        }
    }
    assert!(checked > steps * 10);
    assert!(rig.owner.read(|c| c.megaflows()) > 0);
}

#[test]
fn random_rule_changes_mac_moves_and_expiry_never_leave_a_stale_decision() {
    for seed in 1..=24 {
        run(seed, 150);
    }
}

/// A DNS query from host `src` to host `dst`.
fn dns(src: u8, dst: u8) -> Vec<u8> {
    frame(&Flow {
        src,
        dst: Some(dst),
        tcp: false,
        dport: 53,
    })
}

/// A rule's and a group's counters include every packet of a megaflow
/// that a rule change deleted from its PMD before a sweep read it: the
/// PMD reports the megaflow's final statistics with its next sweep.
#[test]
fn counters_keep_the_packets_of_megaflows_deleted_between_sweeps() {
    let mut rig = Rig::new("priority=0,actions=drop", Duration::from_secs(10));
    rig.add_group("group_id=1,type=all,bucket=output:2");
    rig.add_rule("priority=10,in_port=1,actions=group:1");
    let f = dns(1, 2);
    // The first through the owner, four more through the PMD's megaflow.
    for _ in 0..5 {
        assert_eq!(rig.send(1, &f).len(), 1);
    }
    // A rule that splits the megaflow: it is deleted, unread.
    rig.add_rule("priority=20,in_port=1,tcp,actions=drop");
    // Sweeps come and report.
    for _ in 0..3 {
        rig.advance(Duration::from_secs(1));
        rig.owner.decide(|c| c.tick(rig.now));
        rig.settle();
    }
    let rules = rig.owner.read(|c| c.select_rules(&Selector::all(None)));
    let grouped = rules.iter().find(|(r, _)| r.priority == 10).expect("the rule");
    assert_eq!(grouped.1.packets, 5, "{rules:?}");
    let groups = rig.owner.read(|c| c.groups(odpx_classifier::rules::group::ALL_GROUPS));
    assert_eq!((groups[0].1.packets, groups[0].1.buckets[0].0), (5, 5));
}

/// A fast-failover bucket that watches a group is live once that group
/// is: adding the watched group moves the traffic at once, even for the
/// flow whose megaflow was cached.
#[test]
fn a_watched_group_added_revives_the_bucket_that_watches_it() {
    let mut rig = Rig::new("priority=0,actions=drop", Duration::from_secs(10));
    rig.add_group("group_id=1,type=ff,bucket=watch_group:2,actions=output:2,bucket=watch_port:3,actions=output:3");
    rig.add_rule("priority=10,in_port=1,actions=group:1");
    let f = dns(1, 2);
    for _ in 0..3 {
        let out = rig.send(1, &f);
        assert_eq!(
            out.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![3],
            "group 2 does not exist yet"
        );
    }
    rig.add_group("group_id=2,type=indirect,bucket=output:1");
    let out = rig.send(1, &f);
    assert_eq!(
        out.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        vec![2],
        "group 2 is live now"
    );
}

/// Adds a meter (`add-meter` syntax), in force once the PMDs agree.
fn add_meter(rig: &mut Rig, text: &str) {
    let m = ofctl::parse_meter(text).unwrap();
    assert_eq!(rig.change(Change::Meter(MeterOp::Add(m))), 1);
}

/// How many of `n` DNS queries, sent in turn from hosts 1 (port 1, PMD 0)
/// and 2 (port 2, PMD 1) to host 3, came out.
fn passed_from_both_pmds(rig: &mut Rig, n: usize) -> usize {
    (0..n)
        .map(|i| rig.send(1 + (i % 2) as u32, &dns(1 + (i % 2) as u8, 3)).len())
        .sum()
}

/// One meter shared by two PMDs holds its rate for their sum: ten
/// packets of bucket, then ten a second, whichever PMD carries them. Its
/// counters say so, and deleting it deletes the rules that use it.
#[test]
fn a_meter_holds_its_rate_across_pmds_and_takes_its_rules_when_deleted() {
    let mut rig = Rig::new("priority=0,actions=drop", Duration::from_secs(10));
    add_meter(
        &mut rig,
        "meter=1,pktps,burst,stats,band=type=drop,rate=10,burst_size=10",
    );
    rig.add_rule("priority=10,in_port=1,actions=meter:1,output:3");
    rig.add_rule("priority=10,in_port=2,actions=meter:1,output:3");
    assert_eq!(passed_from_both_pmds(&mut rig, 16), 10, "the bucket: 10 packets");
    rig.advance(Duration::from_millis(500));
    assert_eq!(passed_from_both_pmds(&mut rig, 16), 5, "half a second: 5 more");
    // A sweep brings the counters back.
    rig.advance(Duration::from_secs(1));
    rig.owner.decide(|c| c.tick(rig.now));
    rig.settle();
    let meters = rig.owner.read(|c| c.meters(ALL_METERS));
    let (m, _, counts) = &meters[0];
    assert_eq!(m.id, 1);
    assert_eq!((counts.flows, counts.packets, counts.bands[0].0), (2, 32, 17));
    // Deleting the meter deletes both rules: the table-miss rule drops.
    assert_eq!(rig.change(Change::Meter(MeterOp::Delete(1))), 1);
    assert_eq!(rig.owner.read(|c| c.rules()).len(), 1);
    assert_eq!(passed_from_both_pmds(&mut rig, 4), 0);
    // A rule naming a meter that is not there is refused whole.
    let (tx, rx) = crossbeam_channel::bounded(1);
    let r = ofctl::parse_rule("priority=10,in_port=1,actions=meter:1,output:3").unwrap();
    rig.owner.change(Change::AddRules(vec![r]), tx);
    let e = rx.recv().unwrap().unwrap_err();
    assert!(e.contains("meter 1 does not exist"), "{e}");
}

/// A dscp_remark band raises the drop precedence of what exceeds it
/// (AF11 to AF12, the IPv4 checksum kept right) and lets it through;
/// what conforms keeps its DSCP.
#[test]
fn a_dscp_remark_band_raises_the_drop_precedence_of_what_exceeds_it() {
    let mut rig = Rig::new("priority=0,actions=drop", Duration::from_secs(10));
    add_meter(
        &mut rig,
        "meter=2,pktps,burst,band=type=dscp_remark,rate=1,burst_size=2,prec_level=1",
    );
    rig.add_rule("priority=10,in_port=1,actions=meter:2,output:3");
    let mut f = dns(1, 3);
    let af11 = 10u8 << 2;
    {
        let mut ip = Ipv4Header::new_checked(&mut f[ETHERNET_LEN..]).unwrap();
        ip.set_tos(af11);
        ip.fill_checksum();
    }
    let tos_out: Vec<u8> = (0..4)
        .map(|_| {
            let out = rig.send(1, &f);
            assert_eq!(out.len(), 1, "a remark band drops nothing");
            let ip = Ipv4Header::new_checked(&out[0].1[ETHERNET_LEN..]).unwrap();
            assert!(ip.checksum_ok());
            ip.tos()
        })
        .collect();
    assert_eq!(tos_out, vec![af11, af11, 12 << 2, 12 << 2]);
}

/// The advanced tutorial's pipeline on this rig's three ports: p1 the
/// trunk, p2 an access port of VLAN 20, p3 one of VLAN 30. The learned
/// rules idle out after `idle` seconds.
fn learning_switch(idle: u16) -> String {
    format!(
        "table=0, dl_src=01:00:00:00:00:00/01:00:00:00:00:00, actions=drop
table=0, priority=0, actions=resubmit(,1)
table=1, priority=0, actions=drop
table=1, priority=99, in_port=1, actions=resubmit(,2)
table=1, priority=99, in_port=2, vlan_tci=0, actions=mod_vlan_vid:20, resubmit(,2)
table=1, priority=99, in_port=3, vlan_tci=0, actions=mod_vlan_vid:30, resubmit(,2)
table=2 actions=learn(table=10, idle_timeout={idle}, NXM_OF_VLAN_TCI[0..11], NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[], load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]), resubmit(,3)
table=3 priority=50 actions=resubmit(,10), resubmit(,4)
table=3 priority=99 dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,4)
table=4 reg0=1 actions=1
table=4 reg0=2 actions=strip_vlan,2
table=4 reg0=3 actions=strip_vlan,3
table=4 reg0=0 priority=99 dl_vlan=20 actions=1,strip_vlan,2
table=4 reg0=0 priority=99 dl_vlan=30 actions=1,strip_vlan,3
"
    )
}

/// A UDP frame from host `src` to host `dst`, tagged with `vlan` if given.
fn tagged(src: u8, dst: u8, vlan: Option<u16>) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(mac(src), mac(dst));
    let mut out = Vec::new();
    match vlan {
        Some(v) => b
            .single_vlan(v.try_into().unwrap())
            .ipv4([10, 0, 0, src], [10, 0, 0, dst], 64)
            .udp(1000, 53)
            .write(&mut out, &[0u8; 8]),
        None => b
            .ipv4([10, 0, 0, src], [10, 0, 0, dst], 64)
            .udp(1000, 53)
            .write(&mut out, &[0u8; 8]),
    }
    .unwrap();
    out
}

/// Table 10, as `dump-flows` prints it.
fn learned(rig: &Rig) -> Vec<String> {
    rig.owner.read(|c| {
        c.rules()
            .iter()
            .filter(|r| r.table == 10)
            .map(ofctl::format_rule)
            .collect()
    })
}

/// Sweeps: time passes and the PMDs report.
fn sweep(rig: &mut Rig, by: Duration) {
    rig.advance(by);
    rig.owner.decide(|c| c.tick(rig.now));
    rig.settle();
}

fn upcalls(rig: &Rig) -> u64 {
    rig.owner
        .read(|c| c.counters().upcalls.load(std::sync::atomic::Ordering::Relaxed))
}

fn ports_of(out: &[(u32, Vec<u8>)]) -> Vec<u32> {
    out.iter().map(|(p, _)| *p).collect()
}

/// `learn` as the tutorial uses it, through two PMDs: a rule learned at
/// the first packet, the learned destination used, the same rule taught
/// again in place by packets that never reach the owner (their megaflow
/// is cached), which keeps it from idling out, and a MAC that moves back
/// while its old megaflow is cached learned again within one sweep.
#[test]
fn learn_teaches_from_cached_megaflows_and_follows_a_moving_mac() {
    let mut rig = Rig::new(&learning_switch(2), Duration::from_secs(60));
    // Host 1 on p2 (VLAN 20) to host 2, unknown: flooded to the trunk.
    assert_eq!(ports_of(&rig.send(2, &tagged(1, 2, None))), [1]);
    let on_p2 = "table=10, idle_timeout=2, priority=32768,vlan_tci=0x0014/0x0fff,dl_dst=02:00:00:00:00:01 actions=load:0x2->NXM_NX_REG0[0..15]";
    assert_eq!(learned(&rig), [on_p2]);
    // Host 2 answers on the trunk: host 1 is known, on p2 only.
    let out = rig.send(1, &tagged(2, 1, Some(20)));
    assert_eq!(ports_of(&out), [2]);
    assert_eq!(learned(&rig).len(), 2);
    // Host 1 keeps sending for 4 s, past the 2-s idle timeout of what it
    // taught; only its cached megaflow carries it (once host 2's rule made
    // it anew: it now pins host 2's address).
    assert_eq!(ports_of(&rig.send(2, &tagged(1, 2, None))), [1]);
    let before = upcalls(&rig);
    for _ in 0..8 {
        // (A packet in the very nanosecond of the last sweep would count
        // for that one: on this made-up clock, time passes first.)
        rig.advance(Duration::from_millis(100));
        assert_eq!(ports_of(&rig.send(2, &tagged(1, 2, None))), [1]);
        sweep(&mut rig, Duration::from_millis(400));
    }
    assert_eq!(upcalls(&rig), before, "the megaflow carried them");
    assert!(learned(&rig).contains(&on_p2.to_string()), "{:?}", learned(&rig));
    // Host 1 shows up on the trunk: learned there, in place.
    rig.send(1, &tagged(1, 2, Some(20)));
    let on_p1 = on_p2.replace("load:0x2", "load:0x1");
    assert!(learned(&rig).contains(&on_p1), "{:?}", learned(&rig));
    assert_eq!(learned(&rig).len(), 2, "in place: {:?}", learned(&rig));
    // And back on p2, whose megaflow is still cached: no upcall, yet one
    // sweep later host 1 is on p2 again, and traffic to it goes there.
    let before = upcalls(&rig);
    rig.advance(Duration::from_millis(100));
    rig.send(2, &tagged(1, 2, None));
    assert_eq!(upcalls(&rig), before, "the old megaflow carried it");
    sweep(&mut rig, Duration::from_millis(500));
    assert!(learned(&rig).contains(&on_p2.to_string()), "{:?}", learned(&rig));
    assert_eq!(ports_of(&rig.send(1, &tagged(2, 1, Some(20)))), [2]);
    // Silence: what host 1 taught idles out.
    for _ in 0..6 {
        sweep(&mut rig, Duration::from_millis(500));
    }
    assert!(learned(&rig).is_empty(), "{:?}", learned(&rig));
}
