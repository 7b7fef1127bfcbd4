//! The whole switch on in-memory ports: PMD and translator threads, NORMAL
//! switching with MAC learning, live rule changes, control commands.

use odpx_control::config::Config;
use odpx_control::ctl::command;
use odpx_control::switch::Switch;
use odpx_dataplane::port::Port;
use std::path::Path;
use std::time::{Duration, Instant};

fn frame(src: u8, dst: [u8; 6], dport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, src], dst)
        .ipv4([10, 0, 0, src], [10, 0, 0, dst[5]], 64)
        .udp(1000, dport);
    let mut f = Vec::new();
    b.write(&mut f, &[0u8; 18]).unwrap();
    f
}

const MAC2: [u8; 6] = [2, 0, 0, 0, 0, 2];
const MAC1: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn switch(rules: &str) -> Switch {
    switch_on_cores(rules, "0")
}

/// The switch with one PMD per listed core (`"0, 1"`); the receive queues
/// of p1, p2, p3 are dealt to the PMDs in turn.
fn switch_on_cores(rules: &str, cores: &str) -> Switch {
    let cfg = Config::parse(
        &format!(
            "[switch]\nrules_inline = [{}]\n[[port]]\nname = \"p1\"\ntype = \"memory\"\n[[port]]\nname = \"p2\"\ntype = \"memory\"\n[[port]]\nname = \"p3\"\ntype = \"memory\"\n[pmd]\ncores = [{cores}]\n[cache]\nemc_insert_inv_prob = 1\n",
            rules.lines().map(|l| format!("{l:?}")).collect::<Vec<_>>().join(",")
        ),
        Path::new("/"),
    )
    .unwrap();
    let ports = (1..=3).map(|i| Port::memory(i, &format!("p{i}"), true)).collect();
    Switch::start_with_ports(&cfg, ports).unwrap()
}

/// Frames that left port `no` within `wait`.
fn sent(sw: &Switch, no: usize, want: usize, wait: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    loop {
        got.extend(sw.ports[no].as_ref().unwrap().mem().unwrap().take_tx());
        if got.len() >= want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `done` until it holds; false if `limit` passed first.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

fn push(sw: &Switch, no: usize, f: Vec<u8>) {
    sw.ports[no].as_ref().unwrap().mem().unwrap().push_rx(f);
}

const W: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(300);

#[test]
fn normal_floods_learns_and_then_unicasts() {
    let sw = switch("priority=0,actions=NORMAL");
    // 1 -> 2's MAC, unknown: flooded to 2 and 3.
    push(&sw, 1, frame(1, MAC2, 53));
    assert_eq!(sent(&sw, 2, 1, W).len(), 1);
    assert_eq!(sent(&sw, 3, 1, W).len(), 1);
    // 2 answers from port 2: learned; 1's MAC was learned already.
    push(&sw, 2, frame(2, MAC1, 53));
    assert_eq!(sent(&sw, 1, 1, W).len(), 1);
    assert!(sent(&sw, 3, 1, SHORT).is_empty(), "1 is known: no flood to 3");
    // Now 1 -> 2 is unicast: the flooding megaflow was removed on learning.
    for _ in 0..10 {
        push(&sw, 1, frame(1, MAC2, 53));
    }
    assert_eq!(sent(&sw, 2, 10, W).len(), 10);
    assert!(sent(&sw, 3, 1, SHORT).is_empty(), "2 is known: no more flooding");
    let stats = command(&sw, "pmd-stats-show");
    assert!(stats.contains("packets received: 12"), "{stats}");
    assert!(stats.contains("MAC addresses learned: 2"), "{stats}");
    // Every stage of the batches took time.
    let stages = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("cycles per packet by stage: "))
        .unwrap_or_else(|| panic!("{stats}"));
    for (name, cycles) in stages.split(", ").map(|kv| kv.split_once(' ').unwrap()) {
        assert!(cycles.parse::<u64>().unwrap() > 0, "{name}: {stats}");
    }
    let macs = command(&sw, "mac-table");
    assert!(macs.contains("02:00:00:00:00:02"), "{macs}");
    let mf = command(&sw, "dump-megaflows");
    assert!(mf.starts_with("ok\n") && mf.contains("actions:2"), "{mf}");
}

#[test]
fn a_live_rule_change_takes_effect_and_stale_megaflows_go() {
    let sw = switch("priority=10,udp,actions=output:2\npriority=0,actions=drop");
    push(&sw, 1, frame(1, MAC2, 53));
    assert_eq!(sent(&sw, 2, 1, W).len(), 1);
    push(&sw, 1, frame(1, MAC2, 53));
    assert_eq!(sent(&sw, 2, 1, W).len(), 1, "megaflow hit");
    // A higher-priority rule sends UDP/53 to port 3 from now on.
    // In force when add-flow returns: the very next packet gets it.
    let r = command(&sw, "add-flow priority=20,udp,tp_dst=53,actions=output:3");
    assert_eq!(r, "ok\n");
    push(&sw, 1, frame(1, MAC2, 53));
    assert_eq!(sent(&sw, 3, 1, W).len(), 1, "the new rule decides");
    assert!(sent(&sw, 2, 1, SHORT).is_empty(), "the stale megaflow is gone");
    let stats = command(&sw, "pmd-stats-show");
    assert!(stats.contains("revalidated: 1 (removed: 1, modified: 0)"), "{stats}");
    // Deleting it restores the old decision.
    assert_eq!(command(&sw, "del-flows udp,tp_dst=53"), "ok\n1 rules deleted\n");
    push(&sw, 1, frame(1, MAC2, 53));
    assert_eq!(sent(&sw, 2, 1, W).len(), 1);
    let flows = command(&sw, "dump-flows");
    assert!(flows.contains("priority=10,udp actions=output:2"), "{flows}");
    // --strict deletes only the rule of exactly this match and priority.
    assert_eq!(command(&sw, "add-flow priority=7,udp,actions=output:3"), "ok\n");
    assert_eq!(
        command(&sw, "del-flows --strict priority=8,udp"),
        "ok\n0 rules deleted\n"
    );
    assert_eq!(
        command(&sw, "del-flows --strict priority=7,udp"),
        "ok\n1 rules deleted\n"
    );
    assert!(command(&sw, "dump-flows").contains("priority=10,udp actions=output:2"));
    assert!(command(&sw, "add-flow priority=5,bogus=1,actions=drop").starts_with("error: "));
    assert!(command(&sw, "frobnicate").starts_with("error: unknown command"));
    let t = command(&sw, "trace in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=1000,dst=53)");
    assert!(t.contains("Datapath actions: 2"), "{t}");
}

#[test]
fn malformed_frames_are_forwarded_by_a_catch_all_rule() {
    let sw = switch("priority=0,actions=output:2");
    let mut cut = frame(1, MAC2, 53);
    cut.truncate(20); // cut inside the IPv4 header
    push(&sw, 1, cut.clone());
    push(&sw, 1, vec![0xff; 9]); // shorter than an Ethernet header
    let got = sent(&sw, 2, 2, W);
    assert_eq!(got, vec![cut, vec![0xff; 9]]);
}

#[test]
fn two_pmds_each_serve_their_queues_with_their_own_megaflows() {
    // p1 and p3 go to PMD 0, p2 to PMD 1; both learn through one translator.
    let sw = switch_on_cores("priority=0,actions=NORMAL", "0, 1");
    let show = command(&sw, "show");
    assert!(show.contains("pmd 0 core 0: rx queues p1:0 p3:0"), "{show}");
    assert!(show.contains("pmd 1 core 1: rx queues p2:0"), "{show}");
    push(&sw, 1, frame(1, MAC2, 53));
    assert_eq!(sent(&sw, 2, 1, W).len(), 1, "flooded to 2");
    push(&sw, 2, frame(2, MAC1, 53));
    assert_eq!(sent(&sw, 1, 1, W).len(), 1, "answered to 1 (learned)");
    assert_eq!(sent(&sw, 3, 2, SHORT).len(), 1, "only the first frame was flooded to 3");
    for _ in 0..5 {
        push(&sw, 1, frame(1, MAC2, 53));
        push(&sw, 2, frame(2, MAC1, 53));
    }
    assert_eq!(sent(&sw, 2, 5, W).len(), 5);
    assert_eq!(sent(&sw, 1, 5, W).len(), 5);
    let stats = command(&sw, "pmd-stats-show");
    let received: Vec<&str> = stats.lines().filter(|l| l.contains("packets received: 6")).collect();
    assert_eq!(received.len(), 2, "6 packets on each PMD:\n{stats}");
    // Each PMD holds the megaflow of its own direction.
    let mf = command(&sw, "dump-megaflows");
    assert!(
        mf.lines().any(|l| l.contains("in_port(1)") && l.contains("actions:2")),
        "{mf}"
    );
    assert!(
        mf.lines().any(|l| l.contains("in_port(2)") && l.contains("actions:1")),
        "{mf}"
    );
}

/// The case that opened the megaflow-owner work: a flow hit without pause
/// for longer than twice the idle timeout, then a drop rule. The rule
/// must be in force when `add-flow` returns, however long the megaflow
/// has lived; and once the flow stops, its megaflow expires.
#[test]
fn a_drop_rule_stops_a_long_lived_flow_at_once_and_idle_megaflows_expire() {
    let cfg = Config::parse(
        "[switch]\nrules_inline = [\"priority=0,in_port=1,actions=output:2\"]\n[[port]]\nname = \"p1\"\ntype = \"memory\"\n[[port]]\nname = \"p2\"\ntype = \"memory\"\n[pmd]\ncores = [0]\n[cache]\nidle_timeout_ms = 1000\n",
        Path::new("/"),
    )
    .unwrap();
    let ports = (1..=2).map(|i| Port::memory(i, &format!("p{i}"), true)).collect();
    let sw = Switch::start_with_ports(&cfg, ports).unwrap();
    let start = Instant::now();
    let mut sent_count = 0;
    while start.elapsed() < Duration::from_millis(3600) {
        push(&sw, 1, frame(1, MAC2, 53));
        sent_count += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sent(&sw, 2, sent_count, W).len(), sent_count, "all forwarded");
    let stats = command(&sw, "pmd-stats-show");
    // One megaflow, never expired while the flow ran (a second packet
    // may miss while the first one's install is on its way, under load).
    assert!(
        stats.contains("megaflows installed: 1\n") && stats.contains("expired: 0 "),
        "one megaflow served the whole flow:\n{stats}"
    );
    assert_eq!(command(&sw, "add-flow priority=100,in_port=1,actions=drop"), "ok\n");
    for _ in 0..20 {
        push(&sw, 1, frame(1, MAC2, 53));
    }
    // Modified in place: the same megaflow, its statistics kept (the
    // upcalled first packet ran outside it); once it counted the 20 new
    // packets, none of them went out.
    let line = format!("in_port(1),eth(), packets:{},", sent_count - 1 + 20);
    let mut mf = String::new();
    assert!(
        wait_until(W, || {
            mf = command(&sw, "dump-megaflows");
            mf.contains(&line)
        }),
        "{line}\n{mf}"
    );
    assert!(mf.contains("actions:drop"), "{mf}");
    assert!(sent(&sw, 2, 1, Duration::ZERO).is_empty(), "the drop rule is enforced");
    // Stopped: gone after the idle timeout and a sweep.
    assert!(
        wait_until(W, || command(&sw, "dump-megaflows") == "ok\n"),
        "the idle megaflow expired"
    );
    let stats = command(&sw, "pmd-stats-show");
    assert!(stats.contains("expired: 1 "), "{stats}");
    assert!(stats.contains("revalidated: 1 (removed: 0, modified: 1)"), "{stats}");
}

/// A port whose link went: it leaves flooding, the addresses learned on it
/// are forgotten, and megaflows that sent there are revalidated, all before
/// `port_state` returns; when it comes back it floods again.
#[test]
fn a_port_that_goes_leaves_flooding_and_its_addresses_are_forgotten() {
    let sw = switch("priority=0,actions=NORMAL");
    const MAC3: [u8; 6] = [2, 0, 0, 0, 0, 3];
    // 3 speaks: learned on port 3; 1 -> 3 is then unicast to 3.
    push(&sw, 3, frame(3, MAC1, 53));
    assert_eq!(sent(&sw, 1, 1, W).len(), 1);
    assert_eq!(sent(&sw, 2, 1, W).len(), 1, "1 was unknown: flooded");
    push(&sw, 1, frame(1, MAC3, 53));
    assert_eq!(sent(&sw, 3, 1, W).len(), 1);
    assert!(sent(&sw, 2, 1, SHORT).is_empty(), "unicast");
    sw.port_state(3, false).unwrap();
    assert!(!command(&sw, "mac-table").contains("02:00:00:00:00:03"));
    // Unknown again, and port 3 is out of flooding: only port 2 gets it.
    push(&sw, 1, frame(1, MAC3, 53));
    assert_eq!(sent(&sw, 2, 1, W).len(), 1, "flooded");
    assert!(sent(&sw, 3, 1, SHORT).is_empty(), "not to the port that went");
    sw.port_state(3, true).unwrap();
    push(&sw, 1, frame(1, MAC3, 53));
    assert_eq!(sent(&sw, 3, 1, W).len(), 1, "back in flooding");
}

/// At the flow limit a new flow's packets are still forwarded, one by one
/// through the slow path, and counted as flow-limit hits; nothing beyond
/// the limit is installed.
#[test]
fn past_the_flow_limit_packets_are_executed_not_installed() {
    let cfg = Config::parse(
        "[switch]\nrules_inline = [\"priority=10,udp,tp_dst=1,actions=drop\", \"priority=0,actions=output:2\"]\n[[port]]\nname = \"p1\"\ntype = \"memory\"\n[[port]]\nname = \"p2\"\ntype = \"memory\"\n[pmd]\ncores = [0]\n[cache]\nmegaflow_limit = 2\n",
        Path::new("/"),
    )
    .unwrap();
    let ports = (1..=2).map(|i| Port::memory(i, &format!("p{i}"), true)).collect();
    let sw = Switch::start_with_ports(&cfg, ports).unwrap();
    // The drop rule pins tp_dst: each destination port is a megaflow.
    for dport in [53, 54, 55, 55] {
        push(&sw, 1, frame(1, MAC2, dport));
        assert_eq!(sent(&sw, 2, 1, W).len(), 1, "port {dport} forwarded");
    }
    let stats = command(&sw, "pmd-stats-show");
    assert!(stats.contains("megaflows: 2 (flow limit: 2,"), "{stats}");
    assert!(stats.contains("flow limit hits: 2\n"), "{stats}");
    assert!(stats.contains("upcalls handled: 4\n"), "{stats}");
}

/// A broadcast frame from source MAC `02:0p:nn:nn:nn:nn` (a new megaflow
/// for each address under NORMAL).
fn from_mac(port: u8, n: u32) -> Vec<u8> {
    let mut mac = [2, port, 0, 0, 0, 0];
    mac[2..].copy_from_slice(&n.to_be_bytes());
    let b = etherparse::PacketBuilder::ethernet2(mac, [0xff; 6])
        .ipv4([10, 0, 0, port], [10, 0, 0, 255], 64)
        .udp(1000, 53);
    let mut f = Vec::new();
    b.write(&mut f, &[0u8; 18]).unwrap();
    f
}

#[test]
fn a_flood_of_new_flows_on_one_port_does_not_starve_new_flows_on_another() {
    // Small upcall queues, so the flood overflows its own.
    let cfg = Config::parse(
        "[switch]\nrules_inline = [\"priority=0,actions=NORMAL\"]\n[[port]]\nname = \"p1\"\ntype = \"memory\"\n[[port]]\nname = \"p2\"\ntype = \"memory\"\n[[port]]\nname = \"p3\"\ntype = \"memory\"\n[pmd]\ncores = [0]\n[cache]\nupcall_queue = 128\n",
        Path::new("/"),
    )
    .unwrap();
    let ports = (1..=3).map(|i| Port::memory(i, &format!("p{i}"), true)).collect();
    let sw = Switch::start_with_ports(&cfg, ports).unwrap();
    // 20,000 new source addresses on port 1 and 100 on port 2, at once.
    for n in 0..20_000 {
        push(&sw, 1, from_mac(1, n));
        if n % 200 == 0 {
            push(&sw, 2, from_mac(2, n / 200));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut quiet, mut flood) = (0, 0);
    while quiet < 100 && Instant::now() < deadline {
        for f in sw.ports[3].as_ref().unwrap().mem().unwrap().take_tx() {
            match f[7] {
                2 => quiet += 1,
                _ => flood += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = command(&sw, "pmd-stats-show");
    assert!(
        odpx_tests::number(&stats, "lost upcalls:") > 1000,
        "the flood overflowed its queue:\n{stats}"
    );
    assert_eq!(
        quiet, 100,
        "every new flow of the quiet port was set up ({flood} of the flood were)\n{stats}"
    );
}

/// `f` (an Ethernet frame) inside one MPLS label (label 100, TTL 64).
fn in_mpls(f: &[u8]) -> Vec<u8> {
    let mut m = f[..12].to_vec();
    m.extend_from_slice(&[0x88, 0x47, 0x00, 0x06, 0x41, 0x40]);
    m.extend_from_slice(&f[14..]);
    m
}

#[test]
fn a_lookup_after_pop_mpls_recirculates_through_the_pmd() {
    let sw = switch(
        "table=0,mpls,actions=pop_mpls:0x0800,goto_table:1\n\
         table=1,udp,tp_dst=53,actions=output:2\n\
         table=1,priority=0,actions=output:3",
    );
    for round in 0..3 {
        push(&sw, 1, in_mpls(&frame(1, MAC2, 53)));
        push(&sw, 1, in_mpls(&frame(1, MAC2, 80)));
        assert_eq!(sent(&sw, 2, 1, W), vec![frame(1, MAC2, 53)], "round {round}");
        assert_eq!(sent(&sw, 3, 1, W), vec![frame(1, MAC2, 80)], "round {round}");
    }
    // One megaflow before recirculation, one for each inner flow after.
    let mf = command(&sw, "dump-megaflows");
    assert!(mf.contains("actions:pop_mpls(eth_type=0x800),recirc(0x1)"), "{mf}");
    assert_eq!(mf.matches("recirc_id(0x1),").count(), 2, "{mf}");
    let stats = command(&sw, "pmd-stats-show");
    assert!(stats.contains("unsupported actions: 0"), "{stats}");
}

/// `dump-flows` counts every packet carried so far, those the caches
/// carried too, at once (not as of the last sweep): as OpenFlow's FLOW
/// stats do.
#[test]
fn dump_flows_counts_what_the_caches_carried_at_once() {
    let sw = switch("priority=10,udp,actions=output:2\npriority=0,actions=drop");
    // The first through the translator; once its megaflow is in, the rest
    // through the caches.
    push(&sw, 1, frame(1, MAC2, 53));
    assert_eq!(sent(&sw, 2, 1, W).len(), 1);
    sw.sync().unwrap();
    for _ in 0..9 {
        push(&sw, 1, frame(1, MAC2, 53));
    }
    assert_eq!(sent(&sw, 2, 9, W).len(), 9);
    let flows = command(&sw, "dump-flows");
    assert!(
        flows.contains("n_packets=10, n_bytes=600, priority=10,udp actions=output:2"),
        "{flows}"
    );
}

/// The packets the PMDs' meters dropped so far (`pmd-stats-show`).
fn meter_drops(sw: &Switch) -> usize {
    command(sw, "pmd-stats-show")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("dropped by meters: "))
        .map(|n| n.trim().parse::<usize>().unwrap())
        .sum()
}

/// `ingress_policing_rate` and `_burst`, as the QoS how-to sets them on
/// Open vSwitch's interfaces: what a port receives beyond its rate (48
/// kbit/s: a hundred 60-byte frames a second, after a burst of 5 kbit:
/// ten) is dropped; another port is not limited.
#[test]
fn a_ports_ingress_policer_drops_what_exceeds_its_rate() {
    let cfg = Config::parse(
        "[switch]\nrules_inline = [\"in_port=1,actions=output:3\", \"in_port=2,actions=output:3\"]\n[[port]]\nname = \"p1\"\ntype = \"memory\"\ningress_policing_rate = 48\ningress_policing_burst = 5\n[[port]]\nname = \"p2\"\ntype = \"memory\"\n[[port]]\nname = \"p3\"\ntype = \"memory\"\n[pmd]\ncores = [0]\n",
        Path::new("/"),
    )
    .unwrap();
    let ports = (1..=3).map(|i| Port::memory(i, &format!("p{i}"), true)).collect();
    let sw = Switch::start_with_ports(&cfg, ports).unwrap();
    for _ in 0..100 {
        push(&sw, 1, frame(1, MAC2, 53));
    }
    let mut out = 0;
    assert!(
        wait_until(W, || {
            out += sent(&sw, 3, 0, Duration::ZERO).len();
            out + meter_drops(&sw) >= 100
        }),
        "every frame forwarded or dropped"
    );
    assert!(
        (10..=30).contains(&out),
        "the burst and what the rate earned meanwhile: {out}"
    );
    for _ in 0..100 {
        push(&sw, 2, frame(2, MAC1, 53));
    }
    assert_eq!(sent(&sw, 3, 100, W).len(), 100, "port 2 has no policer");
    assert!(Config::parse(
        "[[port]]\nname = \"p1\"\ntype = \"memory\"\ningress_policing_burst = 5\n",
        Path::new("/")
    )
    .unwrap_err()
    .contains("needs an ingress_policing_rate"));
}

/// The advanced tutorial through `odpx ctl`, on three ports (p1 the
/// trunk, p2 an access port of VLAN 20, p3 one of VLAN 30): its tables
/// added as it adds them, its traces in its own flow syntax (`-generate`
/// adds what `learn` makes), and then real frames.
#[test]
fn the_advanced_tutorials_pipeline_through_odpx_ctl() {
    let sw = switch("priority=0,actions=drop");
    let add = |rule: &str| {
        let out = command(&sw, &format!("add-flow {rule}"));
        assert!(!out.contains("rror"), "{rule}: {out}");
    };
    let trace = |flow: &str| command(&sw, &format!("trace {flow}"));
    command(&sw, "del-flows");
    add("table=0, dl_src=01:00:00:00:00:00/01:00:00:00:00:00, actions=drop");
    add("table=0, dl_dst=01:80:c2:00:00:00/ff:ff:ff:ff:ff:f0, actions=drop");
    add("table=0, priority=0, actions=resubmit(,1)");
    assert!(trace("in_port=1,dl_dst=01:80:c2:00:00:05").contains("Datapath actions: drop"));
    add("table=1, priority=0, actions=drop");
    add("table=1, priority=99, in_port=1, actions=resubmit(,2)");
    add("table=1, priority=99, in_port=2, vlan_tci=0, actions=mod_vlan_vid:20, resubmit(,2)");
    add("table=1, priority=99, in_port=3, vlan_tci=0, actions=mod_vlan_vid:30, resubmit(,2)");
    add("table=2 actions=learn(table=10, NXM_OF_VLAN_TCI[0..11], NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[], load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]), resubmit(,3)");
    let t = trace("in_port=1,vlan_tci=20,dl_src=50:00:00:00:00:01 -generate");
    assert!(
        t.contains("learn(table=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]) -> table=10, priority=32768,vlan_tci=0x0014/0x0fff,dl_dst=50:00:00:00:00:01 actions=load:0x1->NXM_NX_REG0[0..15]"),
        "{t}"
    );
    let learned = command(&sw, "dump-flows table=10");
    assert!(
        learned.contains("table=10, n_packets=0, n_bytes=0, vlan_tci=0x0014/0x0fff,dl_dst=50:00:00:00:00:01 actions=load:0x1->NXM_NX_REG0[0..15]"),
        "{learned}"
    );
    add("table=3 priority=50 actions=resubmit(,10), resubmit(,4)");
    add("table=3 priority=99 dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,4)");
    add("table=4 reg0=1 actions=1");
    add("table=4 reg0=2 actions=strip_vlan,2");
    add("table=4 reg0=3 actions=strip_vlan,3");
    add("table=4 reg0=0 priority=99 dl_vlan=20 actions=1,strip_vlan,2");
    add("table=4 reg0=0 priority=99 dl_vlan=30 actions=1,strip_vlan,3");
    add("table=4 reg0=0 priority=50 actions=1");
    for (flow, actions) in [
        ("in_port=1,dl_dst=ff:ff:ff:ff:ff:ff,dl_vlan=30", "pop_vlan,3"),
        ("in_port=3,dl_dst=ff:ff:ff:ff:ff:ff", "push_vlan(vid=30,pcp=0),1"),
        ("in_port=1,dl_dst=ff:ff:ff:ff:ff:ff", "drop"),
        ("in_port=1,dl_dst=ff:ff:ff:ff:ff:ff,dl_vlan=55", "drop"),
        (
            "in_port=1,dl_vlan=20,dl_src=10:00:00:00:00:01,dl_dst=20:00:00:00:00:01 -generate",
            "pop_vlan,2",
        ),
        (
            "in_port=2,dl_src=20:00:00:00:00:01,dl_dst=10:00:00:00:00:01 -generate",
            "push_vlan(vid=20,pcp=0),1",
        ),
    ] {
        let t = trace(flow);
        assert!(t.contains(&format!("Datapath actions: {actions}\n")), "{flow}: {t}");
    }
    // The first again: now to the learned destination, through table 10.
    let t = trace("in_port=1,dl_vlan=20,dl_src=10:00:00:00:00:01,dl_dst=20:00:00:00:00:01");
    assert!(
        t.contains("dl_dst=20:00:00:00:00:01 actions=load:0x2->NXM_NX_REG0[0..15]"),
        "{t}"
    );
    // Real frames: host 1 (02:..:01) on the trunk in VLAN 20 to host 2,
    // then host 2 on p2 back to it, tagged on the way out.
    let tagged = {
        let b = etherparse::PacketBuilder::ethernet2(MAC1, MAC2).single_vlan(20.try_into().unwrap());
        let mut f = Vec::new();
        b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 53)
            .write(&mut f, &[0u8; 18])
            .unwrap();
        f
    };
    push(&sw, 1, tagged);
    assert_eq!(sent(&sw, 2, 1, W).len(), 1, "flooded to VLAN 20's access port");
    push(&sw, 2, frame(2, MAC1, 53));
    let back = sent(&sw, 1, 1, W);
    assert_eq!(back.len(), 1);
    let parsed = etherparse::SlicedPacket::from_ethernet(&back[0]).unwrap();
    let vlan = match parsed.vlan {
        Some(etherparse::VlanSlice::SingleVlan(v)) => Some(v.vlan_identifier().value()),
        _ => None,
    };
    assert_eq!(vlan, Some(20), "tagged for VLAN 20");
    assert!(sent(&sw, 3, 1, SHORT).is_empty());
    let flows = command(&sw, "dump-flows table=10");
    assert!(flows.contains("dl_dst=02:00:00:00:00:02 actions=load:0x2"), "{flows}");
}
