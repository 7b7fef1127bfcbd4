//! The OpenFlow agent on a switch with in-memory ports: driven by a
//! controller written here with odpx's codec (packet-in, packet-out,
//! barriers, errors, reconnects), and by `ovs-ofctl`, Open vSwitch's own
//! client (show, add-flow, dump-flows, del-flows, dump-ports,
//! dump-tables, mod-port), against the passive socket.

use odpx_control::config::Config;
use odpx_control::openflow::codec::action::{port, Action};
use odpx_control::openflow::codec::flow::{FlowMod, FlowModCommand, GROUP_ANY, NO_BUFFER};
use odpx_control::openflow::codec::instruction::Instruction;
use odpx_control::openflow::codec::message::{decode, encode, frame_len, Header, Message};
use odpx_control::openflow::codec::oxm::{Oxm, OxmField};
use odpx_control::openflow::codec::packet::PacketOut;
use odpx_control::openflow::Agent;
use odpx_control::switch::Switch;
use odpx_dataplane::port::Port;
use odpx_tests::pki::Pki;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

/// A switch on in-memory ports p1..pN with an `[openflow]` section.
fn switch(ports: u32, openflow: &str) -> (Arc<Switch>, Agent, Config) {
    let mut text = String::from("[switch]\nrules_inline = [\"priority=0,actions=NORMAL\"]\n");
    for i in 1..=ports {
        text += &format!("[[port]]\nname = \"p{i}\"\ntype = \"memory\"\n");
    }
    text += "[pmd]\ncores = [0]\nidle_sleep_us = 1000\n[openflow]\n";
    text += openflow;
    let cfg = Config::parse(&text, Path::new("/")).unwrap();
    let mem = (1..=ports).map(|i| Port::memory(i, &format!("p{i}"), true)).collect();
    let sw = Arc::new(Switch::start_with_ports(&cfg, mem).unwrap());
    let agent = Agent::start(&sw, &cfg).unwrap().expect("an agent");
    (sw, agent, cfg)
}

fn frame(src: [u8; 6], dst: [u8; 6], udp_dst: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, udp_dst);
    let mut f = Vec::new();
    b.write(&mut f, &[7u8; 18]).unwrap();
    f
}

fn push(sw: &Switch, port: usize, f: Vec<u8>) {
    sw.ports[port].as_ref().unwrap().mem().unwrap().push_rx(f);
}

/// Frames sent on `port` within the deadline, until `want` came.
fn taken(sw: &Switch, port: usize, want: usize) -> Vec<Vec<u8>> {
    let t = Instant::now();
    let mut out = Vec::new();
    while out.len() < want && t.elapsed() < DEADLINE {
        out.extend(sw.ports[port].as_ref().unwrap().mem().unwrap().take_tx());
        std::thread::sleep(Duration::from_millis(2));
    }
    out
}

/// What `port` has sent so far, without waiting: after a frame came out
/// of another port, what the same action list would have sent here
/// before it (a flood outputs in port order).
fn sent_already(sw: &Switch, port: usize) -> Vec<Vec<u8>> {
    sw.ports[port].as_ref().unwrap().mem().unwrap().take_tx()
}

/// A controller made of odpx's codec: one accepted connection.
struct Controller {
    s: TcpStream,
    buf: Vec<u8>,
    xid: u32,
}

impl Controller {
    fn accept(l: &TcpListener) -> Controller {
        l.set_nonblocking(false).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut c = Controller {
            s,
            buf: Vec::new(),
            xid: 100,
        };
        let (_, hello) = c.recv();
        assert_eq!(hello, Message::Hello { bitmap: vec![1 << 4] });
        c.send(Message::Hello { bitmap: vec![1 << 4] });
        c
    }

    fn send(&mut self, m: Message) -> u32 {
        self.xid += 1;
        self.s.write_all(&encode(self.xid, &m)).unwrap();
        self.xid
    }

    fn recv(&mut self) -> (Header, Message) {
        loop {
            if let Ok(Some(n)) = frame_len(&self.buf) {
                if self.buf.len() >= n {
                    let raw: Vec<u8> = self.buf.drain(..n).collect();
                    return decode(&raw).unwrap_or_else(|e| panic!("the switch sent a bad message: {e:?}"));
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("a message within the deadline");
            assert!(n > 0, "the switch closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next message that is not an ECHO_REQUEST or a PORT_STATUS.
    fn recv_reply(&mut self) -> (Header, Message) {
        loop {
            match self.recv() {
                (h, Message::EchoRequest(d)) => {
                    self.s.write_all(&encode(h.xid, &Message::EchoReply(d))).unwrap();
                }
                (_, Message::PortStatus { .. }) => {}
                other => return other,
            }
        }
    }

    fn barrier(&mut self) {
        let xid = self.send(Message::BarrierRequest);
        let (h, m) = self.recv_reply();
        assert_eq!((h.xid, m), (xid, Message::BarrierReply));
    }
}

fn flow_mod(table: u8, priority: u16, matched: Vec<Oxm>, instructions: Vec<Instruction>) -> Message {
    Message::FlowMod(FlowMod {
        cookie: 0x1234,
        cookie_mask: 0,
        table_id: table,
        command: FlowModCommand::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority,
        buffer_id: NO_BUFFER,
        out_port: port::ANY,
        out_group: GROUP_ANY,
        flags: 0,
        matched,
        instructions,
    })
}

fn apply(actions: Vec<Action>) -> Vec<Instruction> {
    vec![Instruction::ApplyActions(actions)]
}

/// A controller sends the unknown to itself, answers each packet-in with
/// a packet-out, installs a rule behind a barrier, and hears its refusals
/// as errors with the spec's codes.
fn a_controller_gets_packet_ins_and_sends_packet_outs() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (sw, agent, _) = switch(3, &format!("controller = \"tcp:{addr}\"\nmax_backoff_ms = 100\n"));
    let mut c = Controller::accept(&l);
    // Table 0: everything to the controller (the rule file's NORMAL goes).
    c.send(Message::FlowMod(FlowMod {
        command: FlowModCommand::Delete,
        table_id: 0xff,
        ..match flow_mod(0, 0, vec![], vec![]) {
            Message::FlowMod(f) => f,
            _ => unreachable!(),
        }
    }));
    c.send(flow_mod(
        0,
        0,
        vec![],
        apply(vec![Action::Output {
            port: port::CONTROLLER,
            max_len: 0xffff,
        }]),
    ));
    c.barrier();
    let f = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 3], 53);
    push(&sw, 1, f.clone());
    let (_, pi) = c.recv_reply();
    let Message::PacketIn(pi) = pi else {
        panic!("a packet-in: {pi:?}")
    };
    assert_eq!(pi.data, f);
    assert_eq!(
        (pi.reason, pi.table_id, pi.cookie, pi.buffer_id),
        (0, 0, 0x1234, NO_BUFFER),
        "a table-miss entry's"
    );
    assert_eq!(pi.matched, vec![Oxm::exact(OxmField::InPort, 1)]);
    // The packet-out goes where the controller says.
    c.send(Message::PacketOut(PacketOut {
        buffer_id: NO_BUFFER,
        in_port: 1,
        actions: vec![Action::Output { port: 3, max_len: 0 }],
        data: pi.data,
    }));
    assert_eq!(taken(&sw, 3, 1), vec![f.clone()]);
    // A rule for port 3's traffic, in force once the barrier is answered.
    c.send(flow_mod(
        0,
        10,
        vec![Oxm::exact(OxmField::InPort, 1)],
        apply(vec![Action::Output { port: 3, max_len: 0 }]),
    ));
    c.barrier();
    push(&sw, 1, f.clone());
    assert_eq!(taken(&sw, 3, 1), vec![f.clone()]);
    // Refusals: a TCP port without ip_proto; a goto backwards.
    let bad_match = c.send(flow_mod(1, 1, vec![Oxm::exact(OxmField::TcpDst, 80)], vec![]));
    let bad_goto = c.send(flow_mod(2, 1, vec![], vec![Instruction::GotoTable(1)]));
    for (want_xid, want) in [(bad_match, "OFPBMC_BAD_PREREQ"), (bad_goto, "OFPBIC_BAD_TABLE_ID")] {
        let (h, m) = c.recv_reply();
        let Message::Error { error, .. } = m else {
            panic!("an error: {m:?}")
        };
        assert_eq!((h.xid, error.to_string()), (want_xid, want.to_string()));
    }
    // An unknown message type: an error, and the session goes on.
    c.s.write_all(&[4, 99, 0, 8, 0, 0, 0, 9]).unwrap();
    let (h, m) = c.recv_reply();
    assert!(matches!(m, Message::Error { .. }) && h.xid == 9, "{m:?}");
    c.barrier();
    // The controller goes away and comes back: the switch dials again.
    drop(c);
    let mut c = Controller::accept(&l);
    c.barrier();
    assert!(
        agent
            .counters()
            .packet_ins_sent
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    drop(agent);
}

/// A controller that stops reading: the packet-ins that cannot wait are
/// dropped and counted, and what is queued for it stays bounded (1 MiB
/// in the switch, beyond the socket's own buffers), not a backlog of
/// everything that came; once it reads again the session goes on.
fn a_controller_that_stops_reading_gets_no_backlog() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (sw, agent, _) = switch(
        2,
        &format!("controller = \"tcp:{addr}\"\npacket_in_rate = 1000000\npacket_in_burst = 1000000\n"),
    );
    let mut c = Controller::accept(&l);
    c.send(flow_mod(
        0,
        100,
        vec![Oxm::exact(OxmField::InPort, 1)],
        apply(vec![Action::Output {
            port: port::CONTROLLER,
            max_len: 0xffff,
        }]),
    ));
    c.barrier();
    // 20,000 packet-ins of 1.4 kB (28 MB) while the controller reads nothing.
    let mut big = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 53);
    big.resize(1400, 0);
    // In chunks the datapath's queue toward the agent always holds.
    const N: u64 = 20_000;
    const CHUNK: u64 = 500;
    let counters = agent.counters().clone();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    for pushed in (CHUNK..=N).step_by(CHUNK as usize) {
        for _ in 0..CHUNK {
            push(&sw, 1, big.clone());
        }
        until("the chunk's packet-ins sent or dropped", || {
            load(&counters.packet_ins_sent) + load(&counters.packet_ins_queue_full) == pushed
        });
    }
    let sent = load(&counters.packet_ins_sent);
    assert!(load(&counters.packet_ins_queue_full) > 0, "some were dropped");
    // Loopback sockets buffer at most a few MB each way (tcp_wmem,
    // tcp_rmem); with the switch's 1 MiB, well under 16 MiB.
    assert!(sent * 1400 < 16 << 20, "{sent} packet-ins queued or sent");
    // It reads again: packet-ins, then the barrier's answer.
    let (_, m) = c.recv_reply();
    assert!(matches!(m, Message::PacketIn(_)), "{m:?}");
    let xid = c.send(Message::BarrierRequest);
    loop {
        match c.recv_reply() {
            (_, Message::PacketIn(_)) => {}
            (h, m) => {
                assert_eq!((h.xid, m), (xid, Message::BarrierReply));
                break;
            }
        }
    }
    drop(agent);
}

/// Ports that say `ofport`: OpenFlow, the rules and the datapath all use
/// those numbers (`ovs-ofctl show` lists them; a rule from 10 to 20 moves
/// a packet from the first port to the third); a port without one keeps
/// its place; two ports on one number are refused.
fn ports_numbered_by_ofport() {
    let text = "[switch]\nrules_inline = [\"priority=0,actions=drop\"]\n\
        [[port]]\nname = \"p1\"\ntype = \"memory\"\nofport = 10\n\
        [[port]]\nname = \"p2\"\ntype = \"memory\"\n\
        [[port]]\nname = \"p3\"\ntype = \"memory\"\nofport = 20\n\
        [pmd]\ncores = [0]\nidle_sleep_us = 1000\n[openflow]\nlisten = \"ptcp:0:127.0.0.1\"\nfail_mode = \"secure\"\n";
    let cfg = Config::parse(text, Path::new("/")).unwrap();
    assert_eq!(cfg.port_numbers(), vec![10, 2, 20]);
    let clash = text.replace("ofport = 20", "ofport = 2");
    let e = Config::parse(&clash, Path::new("/")).unwrap_err();
    assert!(e.contains("ports p2 and p3: both would be port 2"), "{e}");
    let mem = cfg
        .numbered_ports()
        .map(|(no, p)| Port::memory(no, &p.name, true))
        .collect();
    let sw = Arc::new(Switch::start_with_ports(&cfg, mem).unwrap());
    let agent = Agent::start(&sw, &cfg).unwrap().expect("an agent");
    let t = format!("tcp:127.0.0.1:{}", agent.tcp_ports()[0]);
    let show = ofctl(&t, &["show"]);
    for port in [" 10(p1): addr:", " 2(p2): addr:", " 20(p3): addr:"] {
        assert!(show.contains(port), "{port}: {show}");
    }
    ofctl(&t, &["add-flow", "priority=100,in_port=10,actions=output:20"]);
    let f = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 53);
    push(&sw, 10, f.clone());
    assert_eq!(taken(&sw, 20, 1), vec![f]);
    assert!(sent_already(&sw, 2).is_empty());
    let ports = ofctl(&t, &["dump-ports"]);
    assert!(
        ports.contains("port 10: rx pkts=1") && ports.contains("port 20: rx pkts=0"),
        "{ports}"
    );
    drop(agent);
}

/// Frames sent on `port` up to and including `marker` (within the
/// deadline): what came before it, in order.
fn until_marker(sw: &Switch, port: usize, marker: &[u8]) -> Vec<Vec<u8>> {
    let t = Instant::now();
    let mut out = Vec::new();
    while !out.iter().any(|f: &Vec<u8>| f == marker) {
        assert!(
            t.elapsed() < DEADLINE,
            "the marker out of port {port}: {} frames",
            out.len()
        );
        out.extend(sent_already(sw, port));
        std::thread::sleep(Duration::from_millis(2));
    }
    out
}

/// PORT_MOD's NO_FWD and NO_RECV with the caches on: once `ovs-ofctl
/// mod-port` returns (its barrier answered), a port that says no-forward
/// gets nothing, one that says no-receive passes nothing on, and both
/// come back; the megaflow of before does not outlive the change.
fn port_mod_no_forward_and_no_receive() {
    let (sw, agent, _) = switch(3, "listen = \"ptcp:0:127.0.0.1\"\nfail_mode = \"secure\"\n");
    let t = format!("tcp:127.0.0.1:{}", agent.tcp_ports()[0]);
    ofctl(&t, &["add-flow", "priority=100,in_port=1,actions=output:2,output:3"]);
    let f = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 53);
    let marker = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 54);
    // Through the translator, then its megaflow in the caches.
    push(&sw, 1, f.clone());
    assert_eq!(until_marker(&sw, 2, &f), vec![f.clone()]);
    assert_eq!(until_marker(&sw, 3, &f), vec![f.clone()]);
    sw.sync().unwrap();
    ofctl(&t, &["mod-port", "3", "no-forward"]);
    push(&sw, 1, f.clone());
    push(&sw, 1, marker.clone());
    assert_eq!(until_marker(&sw, 2, &marker), vec![f.clone(), marker.clone()]);
    assert!(sent_already(&sw, 3).is_empty(), "port 3 says no-forward");
    ofctl(&t, &["mod-port", "1", "no-receive"]);
    push(&sw, 1, f.clone());
    let show = ofctl(&t, &["show"]);
    assert!(show.contains("NO_RECV") && show.contains("NO_FWD"), "{show}");
    ofctl(&t, &["mod-port", "1", "receive"]);
    ofctl(&t, &["mod-port", "3", "forward"]);
    // The frame sent while port 1 said no-receive never came out; the
    // marker after it did, on both ports.
    push(&sw, 1, marker.clone());
    assert_eq!(until_marker(&sw, 2, &marker), vec![marker.clone()]);
    assert_eq!(until_marker(&sw, 3, &marker), vec![marker.clone()]);
    drop(agent);
}

/// Until `what` holds, within the deadline.
fn until(what: &str, pred: impl Fn() -> bool) {
    let t = Instant::now();
    while !pred() {
        assert!(t.elapsed() < DEADLINE, "not within {DEADLINE:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Standalone, as Open vSwitch: the controller's rules decide while it is
/// connected; three probe intervals after it went, the switch fails open
/// (NORMAL, the controller's rules kept but overridden); when it dials
/// back, its rules decide again.
fn a_standalone_switch_fails_open_without_its_controller_and_recovers() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (sw, agent, _) = switch(
        3,
        &format!(
            "controller = \"tcp:{addr}\"\nmax_backoff_ms = 100\nprobe_interval_s = 1\nfail_mode = \"standalone\"\n"
        ),
    );
    let fail_open = || agent.counters().fail_open.load(std::sync::atomic::Ordering::Relaxed);
    let mut c = Controller::accept(&l);
    // Port 1's traffic to port 3 only.
    c.send(flow_mod(
        0,
        100,
        vec![Oxm::exact(OxmField::InPort, 1)],
        apply(vec![Action::Output { port: 3, max_len: 0 }]),
    ));
    c.barrier();
    let f = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 9], 53);
    push(&sw, 1, f.clone());
    assert_eq!(taken(&sw, 3, 1), vec![f.clone()]);
    assert!(sent_already(&sw, 2).is_empty(), "the controller's rule, not NORMAL");
    // The controller goes, and cannot be dialed: after three probe
    // intervals (3 s), NORMAL floods the unknown destination.
    drop(c);
    drop(l);
    until("fail-open", || fail_open() == 1);
    push(&sw, 1, f.clone());
    assert_eq!(taken(&sw, 3, 1), vec![f.clone()]);
    assert_eq!(sent_already(&sw, 2), vec![f.clone()], "flooded by NORMAL");
    // The controller's rule is still there.
    let kept = sw.query(odpx_control::owner::Query::Rules);
    assert!(format!("{kept:?}").contains("priority: 100"), "{kept:?}");
    // It comes back: its rule decides again.
    let l = TcpListener::bind(addr).unwrap();
    let mut c = Controller::accept(&l);
    c.barrier();
    until("the end of fail-open", || fail_open() == 0);
    push(&sw, 1, f.clone());
    assert_eq!(taken(&sw, 3, 1), vec![f.clone()]);
    assert!(sent_already(&sw, 2).is_empty(), "the controller's rule again");
    assert_eq!(
        agent
            .counters()
            .fail_open_entered
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// `ovs-ofctl` over TLS to a `pssl:` socket, with the certificates
/// `ovs-pki` makes (`../shared/reference/ssl.md`): odpx shows the switch
/// CA's certificate and takes the controller CA's; a client whose
/// certificate no CA signed is refused and changes nothing.
fn ovs_ofctl_over_tls_and_a_rogue_certificate_refused() {
    let pki = Pki::make(&std::env::temp_dir().join(format!("odpx-of-pki-{}", std::process::id())));
    let (sw, agent, _) = switch(
        2,
        &format!(
            "listen = \"pssl:0:127.0.0.1\"\nfail_mode = \"secure\"\n{}",
            pki.switch_section()
        ),
    );
    let target = format!("ssl:127.0.0.1:{}", agent.tcp_ports()[0]);
    let tls = |who: &str, args: &[&str]| {
        Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13"])
            .arg(format!("--private-key={}", pki.key(who).display()))
            .arg(format!("--certificate={}", pki.cert(who).display()))
            .arg(format!("--ca-cert={}", pki.switch_ca().display()))
            .args(args.iter().take(1))
            .arg(&target)
            .args(args.iter().skip(1))
            .output()
            .unwrap()
    };
    let out = tls("ctl", &["add-flow", "priority=5,in_port=1,actions=output:2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tls("ctl", &["dump-flows"]);
    let flows = String::from_utf8_lossy(&out.stdout);
    assert!(flows.contains("priority=5,in_port=1 actions=output:2"), "{flows}");
    // The rule is in force.
    let f = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 53);
    push(&sw, 1, f.clone());
    assert_eq!(taken(&sw, 2, 1), vec![f]);
    // A rogue: its certificate is its own.
    let out = tls("rogue", &["add-flow", "priority=6,actions=drop"]);
    assert!(!out.status.success(), "the rogue was let in");
    let out = tls("ctl", &["dump-flows"]);
    let flows = String::from_utf8_lossy(&out.stdout);
    assert!(!flows.contains("priority=6"), "{flows}");
    let _ = std::fs::remove_dir_all(&pki.dir);
}

/// `ovs-ofctl -O OpenFlow13 COMMAND TARGET ARGS...`.
fn ofctl_run(target: &str, args: &[&str]) -> std::process::Output {
    Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13"])
        .args(args.iter().take(1))
        .arg(target)
        .args(args.iter().skip(1))
        .output()
        .unwrap()
}

fn ofctl(target: &str, args: &[&str]) -> String {
    let out = ofctl_run(target, args);
    assert!(
        out.status.success(),
        "ovs-ofctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ovs-ofctl ARGS` that must fail: what it printed on stderr.
fn ofctl_refused(target: &str, args: &[&str]) -> String {
    let out = ofctl_run(target, args);
    assert!(!out.status.success(), "ovs-ofctl {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits until `ovs-ofctl ARGS` prints something `pred` accepts.
fn ofctl_until(target: &str, args: &[&str], pred: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        let out = ofctl(target, args);
        if pred(&out) || t.elapsed() > DEADLINE {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn socket_path() -> PathBuf {
    std::env::temp_dir()
        .join(format!("odpx-of-test-{}", std::process::id()))
        .join("odpx.mgmt")
}

/// ovs-ofctl sees the ports and tables, adds, dumps and deletes rules,
/// reads counters that include the packets the caches carried, and takes
/// a port down.
fn ovs_ofctl_shows_adds_dumps_and_deletes() {
    let path = socket_path();
    let (sw, agent, _) = switch(2, &format!("listen = \"punix:{}\"\n", path.display()));
    let target = format!("unix:{}", path.display());
    let t = target.as_str();
    let show = ofctl(t, &["show"]);
    assert!(show.contains("n_tables:254"), "{show}");
    assert!(
        show.contains(" 1(p1): addr:") && show.contains(" 2(p2): addr:"),
        "{show}"
    );
    ofctl(t, &["add-flow", "table=0,priority=100,in_port=1,udp,actions=output:2"]);
    let flows = ofctl(t, &["dump-flows"]);
    assert!(flows.contains("priority=100,udp,in_port=1 actions=output:2"), "{flows}");
    assert!(flows.contains("priority=0 actions=NORMAL"), "{flows}");
    // Five packets: the first through the translator, then, once its
    // megaflow is in, four through the caches (counted by the sweeps).
    let f = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 53);
    push(&sw, 1, f.clone());
    assert_eq!(taken(&sw, 2, 1).len(), 1);
    sw.sync().unwrap();
    for _ in 0..4 {
        push(&sw, 1, f.clone());
    }
    assert_eq!(taken(&sw, 2, 4).len(), 4);
    let flows = ofctl_until(t, &["dump-flows"], |f| f.contains("n_packets=5,"));
    assert!(flows.contains("n_packets=5, n_bytes=300,"), "{flows}");
    let ports = ofctl(t, &["dump-ports"]);
    assert!(ports.contains("port  1: rx pkts=5"), "{ports}");
    let tables = ofctl(t, &["dump-tables"]);
    assert!(tables.contains("table 0:") && tables.contains("active=2"), "{tables}");
    ofctl(t, &["del-flows", "in_port=1,udp"]);
    let flows = ofctl(t, &["dump-flows"]);
    assert!(!flows.contains("priority=100"), "{flows}");
    assert!(flows.contains("priority=0 actions=NORMAL"), "{flows}");
    ofctl(t, &["mod-port", "1", "down"]);
    let show = ofctl(t, &["show"]);
    assert!(show.contains("PORT_DOWN"), "{show}");
    drop(agent);
    drop(sw);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Groups through ovs-ofctl, with the caches on: an all group copies
/// (a bucket's change stays in its copy), counters include what the
/// caches carried, a fast-failover group moves to its backup when its
/// port goes down and back when it comes up, a select group keeps each
/// flow on one port and uses both, and deleting a group deletes the
/// rules that send packets to it. `odpx ctl` prints the same lines.
fn groups_through_ovs_ofctl() {
    let (sw, agent, _) = switch(3, "listen = \"ptcp:0:127.0.0.1\"\nfail_mode = \"secure\"\n");
    let t = format!("tcp:127.0.0.1:{}", agent.tcp_ports()[0]);
    let t = t.as_str();
    let all =
        "group_id=1,type=all,bucket=actions=output:2,bucket=actions=set_field:02:00:00:00:00:09->eth_dst,output:3";
    ofctl(t, &["add-group", all]);
    assert!(ofctl_refused(t, &["add-group", all]).contains("OFPGMFC_GROUP_EXISTS"));
    assert!(ofctl_refused(t, &["add-flow", "in_port=1,actions=group:9"]).contains("OFPBAC_BAD_OUT_GROUP"));
    ofctl(t, &["add-flow", "priority=100,in_port=1,actions=group:1"]);
    assert_eq!(
        ofctl(t, &["dump-groups"]).lines().nth(1),
        Some(format!(" {all}").as_str())
    );
    let ctl = |line: &str| odpx_control::ctl::handle(&sw, &odpx_control::api::Request::parse(line).unwrap());
    assert_eq!(
        ctl("dump-groups"),
        Ok(odpx_control::api::Reply::Groups(vec![all.to_string()]))
    );
    let f = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 53);
    let mut copy = f.clone();
    copy[..6].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
    push(&sw, 1, f.clone());
    assert_eq!(taken(&sw, 2, 1), vec![f.clone()]);
    assert_eq!(taken(&sw, 3, 1), vec![copy.clone()]);
    sw.sync().unwrap();
    for _ in 0..3 {
        push(&sw, 1, f.clone());
    }
    assert_eq!(taken(&sw, 2, 3), vec![f.clone(); 3]);
    assert_eq!(taken(&sw, 3, 3), vec![copy; 3]);
    let stats = ofctl_until(t, &["dump-group-stats"], |s| s.contains("packet_count=4,"));
    assert!(
        stats.contains(
            "ref_count=1,packet_count=4,byte_count=240,bucket0:packet_count=4,byte_count=240,bucket1:packet_count=4,byte_count=240"
        ),
        "{stats}"
    );

    // Fast failover: port 2 while it is up, port 3 while it is down.
    ofctl(
        t,
        &[
            "add-group",
            "group_id=2,type=ff,bucket=watch_port:2,actions=output:2,bucket=watch_port:3,actions=output:3",
        ],
    );
    ofctl(t, &["mod-flows", "in_port=1,actions=group:2"]);
    for (state, to, other) in [(None, 2, 3), (Some("down"), 3, 2), (Some("up"), 2, 3)] {
        if let Some(s) = state {
            ofctl(t, &["mod-port", "2", s]);
        }
        push(&sw, 1, f.clone());
        assert_eq!(taken(&sw, to, 1), vec![f.clone()], "port 2 {state:?}");
        assert!(sent_already(&sw, other).is_empty(), "port 2 {state:?}");
    }

    // Select: each flow keeps its port; the flows use both.
    ofctl(
        t,
        &["add-group", "group_id=3,type=select,bucket=output:2,bucket=output:3"],
    );
    ofctl(t, &["mod-flows", "in_port=1,actions=group:3"]);
    let mut chose = Vec::new();
    for udp in 100..140 {
        let g = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], udp);
        for _ in 0..2 {
            push(&sw, 1, g.clone());
            let t0 = Instant::now();
            let port = loop {
                let (on2, on3) = (sent_already(&sw, 2), sent_already(&sw, 3));
                match (on2.len(), on3.len()) {
                    (0, 0) if t0.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(1)),
                    (1, 0) => break 2,
                    (0, 1) => break 3,
                    other => panic!("udp {udp}: {other:?} frames out of ports 2 and 3"),
                }
            };
            chose.push((udp, port));
        }
    }
    for pair in chose.chunks(2) {
        assert_eq!(pair[0], pair[1], "a flow changed ports");
    }
    let to2 = chose.iter().filter(|(_, p)| *p == 2).count();
    assert!((10..70).contains(&to2), "{to2} of 80 to port 2");

    // Deleting a group deletes the rules that use it.
    assert!(ofctl_refused(t, &["mod-group", "group_id=9,type=all,bucket=output:2"]).contains("OFPGMFC_UNKNOWN_GROUP"));
    ofctl(t, &["del-groups", "group_id=3"]);
    let flows = ofctl(t, &["dump-flows"]);
    assert!(!flows.contains("group:3"), "{flows}");
    push(&sw, 1, f.clone());
    sw.sync().unwrap();
    assert!(sent_already(&sw, 2).is_empty() && sent_already(&sw, 3).is_empty());
    drop(agent);
}

/// Meters through `ovs-ofctl`: added, dumped as OVS prints them (odpx's
/// own `dump-meters` prints the same lines), run (a burst of 3, then 2
/// packets a second), counted, modified and deleted with their rules.
fn meters_through_ovs_ofctl() {
    let (sw, agent, _) = switch(3, "listen = \"ptcp:0:127.0.0.1\"\nfail_mode = \"secure\"\n");
    let t = format!("tcp:127.0.0.1:{}", agent.tcp_ports()[0]);
    let t = t.as_str();
    let meter = "meter=1,pktps,burst,stats,bands=type=drop,rate=2,burst_size=3";
    ofctl(t, &["add-meter", meter]);
    assert!(ofctl_refused(t, &["add-meter", meter]).contains("OFPMMFC_METER_EXISTS"));
    assert!(ofctl_refused(t, &["add-flow", "in_port=1,actions=meter:9,output:2"]).contains("OFPMMFC_INVALID_METER"));
    ofctl(t, &["add-flow", "priority=100,in_port=1,actions=meter:1,output:2"]);
    assert!(ofctl(t, &["dump-flows"]).contains("actions=meter:1,output:2"));
    let dumped = ofctl(t, &["dump-meters"]);
    let lines: Vec<&str> = dumped.lines().skip(1).filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        ["meter=1 pktps burst stats bands=", "type=drop rate=2 burst_size=3"]
    );
    let ctl = |line: &str| odpx_control::ctl::handle(&sw, &odpx_control::api::Request::parse(line).unwrap());
    assert_eq!(
        ctl("dump-meters"),
        Ok(odpx_control::api::Reply::Meters(vec![lines.join("\n")]))
    );
    assert!(ofctl(t, &["meter-features"]).contains("max_meter:65536 max_bands:8"));

    let f = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 53);
    for _ in 0..10 {
        push(&sw, 1, f.clone());
    }
    let stats = ofctl_until(t, &["meter-stats"], |s| s.contains("packet_in_count:10 "));
    assert!(
        stats.contains("meter:1 flow_count:1 packet_in_count:10 byte_in_count:600 "),
        "{stats}"
    );
    // Sent within a second or so: the burst of 3, and 2 a second after it.
    let dropped: usize = stats
        .split("0: packet_count:")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stats}"));
    let sent = taken(&sw, 2, 10 - dropped).len();
    assert!((3..=5).contains(&sent), "{sent} of 10 sent");
    assert_eq!(sent + dropped, 10);

    ofctl(t, &["mod-meter", "meter=1,pktps,bands=type=drop,rate=100"]);
    assert!(ofctl(t, &["dump-meters"]).contains("meter=1 pktps bands=\ntype=drop rate=100"));
    assert!(ofctl_refused(t, &["mod-meter", "meter=7,pktps,bands=type=drop,rate=1"]).contains("OFPMMFC_UNKNOWN_METER"));
    // Deleting a meter deletes the rules that use it.
    ofctl(t, &["del-meter", "meter=1"]);
    assert!(!ofctl(t, &["dump-flows"]).contains("meter:1"));
    assert_eq!(
        ofctl(t, &["dump-meters"])
            .lines()
            .filter(|l| l.starts_with("meter="))
            .count(),
        0
    );
    drop(agent);
}

/// Registers and `learn` through OpenFlow as `ovs-ofctl` sends them
/// (NXM_1 match fields; Nicira `move`, `load`, `resubmit`,
/// `output:SUBFIELD` and `learn`), dumped back as it prints them, frames
/// going where they say, and the rule one teaches.
fn registers_and_learn_through_ovs_ofctl() {
    let (sw, agent, _) = switch(3, "listen = \"ptcp:0:127.0.0.1\"\nfail_mode = \"secure\"\n");
    let t = format!("tcp:127.0.0.1:{}", agent.tcp_ports()[0]);
    let t = t.as_str();
    let first = "in_port=1 actions=move:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15],load:0x3->NXM_NX_REG1[],resubmit(,1)";
    let second = "reg0=0x1,reg1=0x3/0xff actions=output:NXM_NX_REG1[0..15]";
    ofctl(t, &["add-flow", &format!("table=0,{first}")]);
    ofctl(t, &["add-flow", &format!("table=1,{second}")]);
    ofctl(t, &["add-flow", "table=1,priority=1,reg1=0x4,actions=output:2"]);
    let dump = ofctl(t, &["dump-flows"]);
    assert!(dump.contains(first) && dump.contains(second), "{dump}");
    let refused = ofctl_refused(
        t,
        &["add-flow", "ip,actions=move:NXM_NX_IP_FRAG[0..1]->NXM_NX_REG0[0..1]"],
    );
    assert!(refused.contains("OFPBAC_BAD_ARGUMENT"), "{refused}");
    // Port 1 moves its number into reg0 and loads 3 into reg1: port 3.
    push(&sw, 1, frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 53));
    assert_eq!(taken(&sw, 3, 1).len(), 1);
    assert!(sent_already(&sw, 2).is_empty());

    // learn, as the advanced tutorial writes it (NXAST_LEARN both ways),
    // and the rule a frame teaches, listed like any other.
    let learn = "learn(table=10,idle_timeout=60,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]),output:3";
    ofctl(
        t,
        &["add-flow", &format!("table=0,priority=100,in_port=2,actions={learn}")],
    );
    assert!(ofctl(t, &["dump-flows"]).contains(learn));
    push(&sw, 2, frame([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 2], 53));
    assert_eq!(taken(&sw, 3, 1).len(), 1);
    let dump = ofctl_until(t, &["dump-flows"], |d| d.contains("table=10"));
    let taught = dump.lines().find(|l| l.contains(" table=10,")).unwrap_or_default();
    assert!(
        taught.contains("idle_timeout=60")
            && taught.ends_with("vlan_tci=0x0000/0x0fff,dl_dst=02:00:00:00:00:09 actions=load:0x2->NXM_NX_REG0[0..15]"),
        "{dump}"
    );
    drop(agent);
}

odpx_tests::cases! {
    [] => a_controller_gets_packet_ins_and_sends_packet_outs, a_standalone_switch_fails_open_without_its_controller_and_recovers, a_controller_that_stops_reading_gets_no_backlog;
    [odpx_tests::harness::OVS_OFCTL] => ovs_ofctl_shows_adds_dumps_and_deletes, ports_numbered_by_ofport, port_mod_no_forward_and_no_receive, groups_through_ovs_ofctl, meters_through_ovs_ofctl, registers_and_learn_through_ovs_ofctl;
    [odpx_tests::harness::OVS_OFCTL, odpx_tests::harness::OVS_PKI] => ovs_ofctl_over_tls_and_a_rogue_certificate_refused;
}
