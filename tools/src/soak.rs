//! `odpx-soak`: a running switch held to the reference decision while its
//! world changes under traffic.
//!
//! # What
//! The soak drives a running odpx through its control socket and through
//! the far ends of its ports (the veth peers, opened with AF_XDP). Four
//! hosts (`02:00:00:00:00:0h`, `10.0.0.h`) sit on those ports. Each step
//! changes one thing:
//! * a random rule is added, or a random rule is deleted (non-strict, so
//!   the rules it covers go too);
//! * a host moves to another port and announces itself there;
//! * flows start or stop;
//! * nothing is sent for longer than the idle timeout, so megaflows
//!   expire (and, in hybrid mode, offloaded ones come back);
//! * with `--flap`, a port's link goes down and up (its far end, set down
//!   and up with `ip link`): the switch forgets the addresses learned
//!   there, as the reference does, and the port's hosts announce
//!   themselves again once the switch counts the port back (`link_up`).
//!
//! Then it sends traffic: tagged frames of the running flows, each from
//! its source host's current port, at a steady rate per flow for a phase
//! (long enough, by default, for hybrid mode to offload the hot ones).
//! Every frame that comes out of any port is matched by its tag (the last
//! eight bytes: `soak` and a number) to the frame sent, and the outputs
//! of each sent frame, port and bytes, must equal the reference decision
//! ([`odpx_control::reference`]: the rules translated afresh, with a MAC
//! table that learns from every packet that runs NORMAL) made when it was
//! sent. A megaflow, EMC entry or kernel flow left with an old decision
//! shows up as a frame on the wrong port, a wrong frame, a missing one or
//! an extra one.
//!
//! # Why the check is fair
//! Nothing is in flight while something changes: a phase ends with a
//! drain, then the change happens, then the next phase starts.
//! * A rule change has returned before traffic resumes, and a change that
//!   returned is in force on every path: that is the promise under test.
//! * MAC learning is asynchronous in every switch, so a move is announced:
//!   the moved host broadcasts to UDP port 9, which a fixed top rule
//!   ([`BASE_RULES`], re-added after every delete) always sends to
//!   NORMAL, and traffic resumes only once the announcement has come out
//!   of the other ports. Every host is announced at the start, so data
//!   frames never teach the switch anything new; rules that would make
//!   them (`resubmit` to another in_port) are not drawn.
//!
//! # The kernel's own view
//! With `--kernel-flows CMD` (hybrid and kernel modes: `ovs-dpctl
//! dump-flows odpx0`), after each phase every kernel flow the command
//! prints is checked on its own: for each frame of the soak's flows it
//! matches, running its actions must give the reference decision. At the
//! end traffic stops for longer than the idle timeout and the kernel must
//! hold no flow at all.

use odpx_classifier::counters::Snapshot as _;
use odpx_classifier::extract::extract_into;
use odpx_classifier::key::{FlowKey, Match};
use odpx_classifier::odp::{parse_flow_line, OdpAction};
use odpx_classifier::rules::{ofctl, RuleSet, Selector};
use odpx_control::api::{Reply, Request};
use odpx_control::core::mac::MacTable;
use odpx_control::ctl::{request, request_line};
use odpx_control::reference::{outputs, translate_frame, LearningEnv, RuleFamily};
use odpx_dataplane::port::{Port, RxBatch, TxStage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Hosts on the ports: MAC `02:00:00:00:00:0h`, IPv4 `10.0.0.h`.
pub const HOSTS: u8 = 4;
/// The tag's first half; the second is the frame's number.
const MAGIC: [u8; 4] = *b"soak";
const TAG_LEN: usize = 8;
/// The UDP port of the hosts' announcements.
const ANNOUNCE_PORT: u16 = 9;
/// Rules that are always there: announcements go to NORMAL above every
/// random rule (priorities 1-40), and NORMAL is the default of both
/// tables.
pub const BASE_RULES: &str = "table=0,priority=1000,udp,dl_dst=ff:ff:ff:ff:ff:ff,tp_dst=9,actions=NORMAL\n\
table=0,priority=0,actions=NORMAL\n\
table=1,priority=0,actions=NORMAL";

/// What to soak and how hard.
pub struct SoakArgs {
    /// The switch's control socket.
    pub socket: PathBuf,
    /// The switch's ports: (number, the interface at the far end).
    pub ports: Vec<(u32, String)>,
    pub seed: u64,
    pub steps: usize,
    /// How long each step's traffic runs.
    pub phase: Duration,
    /// Frames per second of each running flow.
    pub pps: u32,
    /// The switch's idle timeout: the idle pauses wait it out.
    pub idle: Duration,
    /// A shell command printing the kernel's flows (`ovs-dpctl dump-flows`).
    pub kernel_flows: Option<String>,
    /// Stop after this long (whatever `steps` says).
    pub duration: Option<Duration>,
    /// Flap ports' links too.
    pub flap: bool,
}

/// One flow of the soak: source host, destination (a host, or broadcast),
/// protocol and destination port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Flow {
    src: u8,
    dst: Option<u8>,
    tcp: bool,
    dport: u16,
}

fn mac(h: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, h]
}

impl Flow {
    /// Host `h`'s announcement: a broadcast to [`ANNOUNCE_PORT`].
    fn announce(h: u8) -> Flow {
        Flow {
            src: h,
            dst: None,
            tcp: false,
            dport: ANNOUNCE_PORT,
        }
    }

    /// The flow's frame carrying tag `n`.
    fn frame(&self, n: u32) -> Vec<u8> {
        let dst_mac = self.dst.map_or([0xff; 6], mac);
        let dst_ip = self.dst.unwrap_or(255);
        let b = etherparse::PacketBuilder::ethernet2(mac(self.src), dst_mac).ipv4(
            [10, 0, 0, self.src],
            [10, 0, 0, dst_ip],
            64,
        );
        let mut tag = [0u8; TAG_LEN];
        tag[..4].copy_from_slice(&MAGIC);
        tag[4..].copy_from_slice(&n.to_be_bytes());
        let mut out = Vec::new();
        let sport = 1000 + u16::from(self.src);
        let written = if self.tcp {
            b.tcp(sport, self.dport, 1, 1000).write(&mut out, &tag)
        } else {
            b.udp(sport, self.dport).write(&mut out, &tag)
        };
        written.expect("a frame of fixed shape");
        out
    }
}

/// The frame number in `frame`'s tag, if it is one of the soak's.
fn tag_of(frame: &[u8]) -> Option<u32> {
    let t = frame.len().checked_sub(TAG_LEN).map(|at| &frame[at..])?;
    (t[..4] == MAGIC).then(|| u32::from_be_bytes([t[4], t[5], t[6], t[7]]))
}

/// Every flow the soak may run: each host to each other host and to
/// broadcast, over four protocol/port pairs.
fn universe() -> Vec<Flow> {
    let mut v = Vec::new();
    for src in 1..=HOSTS {
        for d in 0..=HOSTS {
            if d == src {
                continue;
            }
            for (tcp, dport) in [(false, 53), (true, 80), (false, 443), (true, 1000)] {
                v.push(Flow {
                    src,
                    dst: (d > 0).then_some(d),
                    tcp,
                    dport,
                });
            }
        }
    }
    v
}

/// A frame sent: what the reference says must come out, and what did.
struct Sent {
    flow: Flow,
    port: u32,
    want: Vec<(u32, Vec<u8>)>,
    got: Vec<(u32, Vec<u8>)>,
}

/// The soak's tallies.
#[derive(Default, Debug)]
pub struct Tally {
    pub frames: u64,
    pub wrong: u64,
    pub missing: u64,
    /// Frames on the far ends that carry no soak tag, or an unknown one.
    pub foreign: u64,
    pub kernel_flows_checked: u64,
    pub kernel_frames_checked: u64,
    pub stale_kernel_flows: u64,
    pub rules_added: u64,
    pub deletes: u64,
    pub moves: u64,
    pub idle_pauses: u64,
    pub starts_stops: u64,
    pub flaps: u64,
    pub steps: u64,
    /// Examples of what went wrong (the first few).
    pub examples: Vec<String>,
}

impl Tally {
    fn example(&mut self, s: String) {
        if self.examples.len() < 12 {
            self.examples.push(s);
        }
    }
}

/// The soak: the switch's far ends, the reference and what runs.
struct Soak {
    args: SoakArgs,
    ports: HashMap<u32, Port>,
    port_numbers: Vec<u32>,
    rules: RuleSet,
    /// The texts of the random rules in force, for deletes.
    added: Vec<String>,
    macs: MacTable,
    /// Each host's port.
    at: [u32; HOSTS as usize],
    running: Vec<Flow>,
    next_tag: u32,
    rng: StdRng,
    tally: Tally,
}

impl Soak {
    fn ctl(&self, line: &str) -> Result<String, String> {
        request_line(&self.args.socket, line).map_err(|e| format!("ctl {line}: {e}"))
    }

    fn env(&mut self) -> LearningEnv<'_> {
        LearningEnv {
            macs: &mut self.macs,
            now: Instant::now(),
        }
    }

    fn port_of(&self, h: u8) -> u32 {
        self.at[usize::from(h) - 1]
    }

    /// Replaces the switch's rules with [`BASE_RULES`], as the reference's.
    fn reset_rules(&mut self) -> Result<(), String> {
        self.ctl("del-flows")?;
        self.ctl(&format!("add-flows {BASE_RULES}"))?;
        self.rules = RuleSet::new();
        self.add_base();
        self.added.clear();
        Ok(())
    }

    fn add_base(&mut self) {
        for r in ofctl::parse_rules(BASE_RULES).expect("the base rules parse") {
            self.rules.add(r);
        }
    }

    /// Sends `flows` (one frame per entry, from each source's port) now.
    fn send(&mut self, flows: &[Flow], sent: &mut HashMap<u32, Sent>) {
        let mut translated: HashMap<Flow, Vec<OdpAction>> = HashMap::new();
        let mut stages: HashMap<u32, (TxStage, Vec<u32>)> = HashMap::new();
        for &f in flows {
            let port = self.port_of(f.src);
            let n = self.next_tag;
            self.next_tag = self.next_tag.wrapping_add(1);
            let frame = f.frame(n);
            let actions = match translated.get(&f) {
                Some(a) => a.clone(),
                None => {
                    let rules = std::mem::take(&mut self.rules);
                    let a = translate_frame(&rules, &mut self.env(), port, &frame);
                    self.rules = rules;
                    translated.insert(f, a.clone());
                    a
                }
            };
            let want = outputs(&actions, &frame);
            let st = stages.entry(port).or_default();
            st.0.push(&frame);
            st.1.push(n);
            sent.insert(
                n,
                Sent {
                    flow: f,
                    port,
                    want,
                    got: Vec::new(),
                },
            );
        }
        for (port, (stage, tags)) in stages {
            let out = self.ports[&port].send(0, &stage);
            // What did not go out is not checked.
            for n in &tags[out..] {
                sent.remove(n);
            }
        }
    }

    /// Takes what the far ends received; returns the frame count.
    fn receive(&mut self, sent: &mut HashMap<u32, Sent>, batch: &mut RxBatch) -> usize {
        let mut total = 0;
        for &p in &self.port_numbers {
            loop {
                let n = self.ports[&p].recv(0, batch);
                for i in 0..n {
                    let f = batch.data(i);
                    match tag_of(f).and_then(|t| sent.get_mut(&t)) {
                        Some(s) => s.got.push((p, f.to_vec())),
                        None => self.tally.foreign += 1,
                    }
                }
                total += n;
                if n == 0 {
                    break;
                }
            }
        }
        total
    }

    /// Sends the running flows for one phase, drains, and checks every
    /// frame sent against its reference decision.
    fn phase(&mut self, step: usize) {
        let mut sent = HashMap::new();
        let mut batch = RxBatch::default();
        let start = Instant::now();
        let mut done = 0u64;
        let tick = Duration::from_millis(5);
        while start.elapsed() < self.args.phase {
            let due = (start.elapsed().as_secs_f64() * f64::from(self.args.pps)) as u64;
            if due > done && !self.running.is_empty() {
                let mut flows = Vec::new();
                for _ in done..due {
                    flows.extend(self.running.iter().copied());
                }
                self.send(&flows, &mut sent);
                done = due;
            }
            self.receive(&mut sent, &mut batch);
            std::thread::sleep(tick);
        }
        self.drain(&mut sent, &mut batch);
        self.check(step, sent);
    }

    /// Receives until nothing has come for 200 ms (at most 3 s).
    fn drain(&mut self, sent: &mut HashMap<u32, Sent>, batch: &mut RxBatch) {
        let (start, mut last) = (Instant::now(), Instant::now());
        while last.elapsed() < Duration::from_millis(200) && start.elapsed() < Duration::from_secs(3) {
            if self.receive(sent, batch) > 0 {
                last = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn check(&mut self, step: usize, sent: HashMap<u32, Sent>) {
        let mut sent: Vec<(u32, Sent)> = sent.into_iter().collect();
        sent.sort_by_key(|(n, _)| *n);
        for (n, mut s) in sent {
            self.tally.frames += 1;
            s.got.sort();
            if s.got == s.want {
                continue;
            }
            if s.got.is_empty() {
                self.tally.missing += 1;
            } else {
                self.tally.wrong += 1;
            }
            let ports = |v: &[(u32, Vec<u8>)]| v.iter().map(|(p, _)| *p).collect::<Vec<_>>();
            let same_ports = ports(&s.got) == ports(&s.want);
            self.tally.example(format!(
                "step {step}: frame {n} of {:?} in on port {}: out on {:?}{}, the reference says {:?}",
                s.flow,
                s.port,
                ports(&s.got),
                if same_ports { " (other bytes)" } else { "" },
                ports(&s.want)
            ));
        }
    }

    /// Host `h` announces itself from its port; returns once the
    /// announcement came out where the reference says (at most 3 s).
    fn announce(&mut self, h: u8) {
        let mut sent = HashMap::new();
        let mut batch = RxBatch::default();
        self.send(&[Flow::announce(h)], &mut sent);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            self.receive(&mut sent, &mut batch);
            if sent.values().all(|s| {
                let mut got = s.got.clone();
                got.sort();
                got == s.want
            }) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.drain(&mut sent, &mut batch);
        self.check(usize::MAX, sent);
    }

    /// One random change, in force when this returns.
    fn change(&mut self) -> Result<(), String> {
        let kinds = if self.args.flap { 11 } else { 10 };
        match self.rng.gen_range(0..kinds) {
            10 => {
                let i = self.rng.gen_range(0..self.args.ports.len());
                self.flap(i)?;
                self.tally.flaps += 1;
            }
            0..=3 => {
                let family = RuleFamily {
                    ports: self.port_numbers.clone(),
                    hosts: HOSTS,
                    // NORMAL after a lookup as if from another port learns
                    // the source there: a move caused by traffic, racing
                    // with it.
                    port_resubmit: false,
                };
                let text = family.draw(&mut self.rng);
                let r = ofctl::parse_rule(&text).map_err(|e| format!("{text}: {e}"))?;
                self.ctl(&format!("add-flow {text}"))?;
                self.rules.add(r);
                self.added.push(text);
                self.tally.rules_added += 1;
            }
            4 | 5 if !self.added.is_empty() => {
                let text = self.added.swap_remove(self.rng.gen_range(0..self.added.len()));
                let matched = text.split(",actions=").next().unwrap_or_default().to_string();
                let r = ofctl::parse_rule(&text).map_err(|e| format!("{text}: {e}"))?;
                let reply = self.ctl(&format!("del-flows {matched}"))?;
                let deleted = self
                    .rules
                    .delete(&Selector::matching(Some(r.table), r.matched, None))
                    .len();
                let said = reply.split_whitespace().next().and_then(|n| n.parse::<usize>().ok());
                if said != Some(deleted) {
                    return Err(format!(
                        "del-flows {matched}: the switch says '{}', the reference deleted {deleted}",
                        reply.trim()
                    ));
                }
                // Put back what a wide delete took of the fixed rules.
                self.ctl(&format!("add-flows {BASE_RULES}"))?;
                self.add_base();
                let rules = &self.rules;
                self.added.retain(|t| {
                    ofctl::parse_rule(t).is_ok_and(|r| {
                        rules
                            .iter()
                            .any(|x| x.table == r.table && x.priority == r.priority && x.matched == r.matched)
                    })
                });
                self.tally.deletes += 1;
            }
            6 | 7 => {
                let h = self.rng.gen_range(1..=HOSTS);
                let now = self.port_of(h);
                let others: Vec<u32> = self.port_numbers.iter().copied().filter(|p| *p != now).collect();
                self.at[usize::from(h) - 1] = others[self.rng.gen_range(0..others.len())];
                self.announce(h);
                self.tally.moves += 1;
            }
            8 => {
                let all = universe();
                for _ in 0..self.rng.gen_range(1..=3) {
                    let f = all[self.rng.gen_range(0..all.len())];
                    match self.running.iter().position(|r| *r == f) {
                        Some(i) => {
                            self.running.swap_remove(i);
                        }
                        None => self.running.push(f),
                    }
                }
                self.tally.starts_stops += 1;
            }
            _ => {
                std::thread::sleep(self.args.idle + Duration::from_millis(1500));
                self.tally.idle_pauses += 1;
            }
        }
        Ok(())
    }

    /// The switch's count of `counter` for port `no` (from its snapshot).
    fn port_counter(&self, no: u32, counter: &str) -> Result<u64, String> {
        let Reply::Snapshot { snapshot, .. } = request(&self.args.socket, &Request::Show)? else {
            return Err("ctl show: not a snapshot".into());
        };
        snapshot
            .ports
            .iter()
            .find(|p| p.no == no)
            .and_then(|p| p.counters.get(counter))
            .ok_or_else(|| format!("ctl show: no {counter} for port {no}"))
    }

    /// Waits until the switch's `counter` of port `no` passes `was`.
    fn wait_counter(&self, no: u32, counter: &str, was: u64) -> Result<(), String> {
        let t = Instant::now();
        while self.port_counter(no, counter)? <= was {
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!("port {no}: the switch did not count {counter} within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Port `i`'s link down (its far end), then up; the reference forgets
    /// what was learned there, as the switch does, and the hosts there
    /// announce themselves again.
    fn flap(&mut self, i: usize) -> Result<(), String> {
        let (no, far) = self.args.ports[i].clone();
        let link = |state: &str| -> Result<(), String> {
            let ok = std::process::Command::new("ip")
                .args(["link", "set", "dev", &far, state])
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(()).ok_or(format!("ip link set dev {far} {state} failed"))
        };
        let (down, up) = (self.port_counter(no, "link_down")?, self.port_counter(no, "link_up")?);
        link("down")?;
        self.wait_counter(no, "link_down", down)?;
        self.macs.remove_port(no);
        link("up")?;
        self.wait_counter(no, "link_up", up)?;
        self.macs.add_port(no);
        for h in 1..=HOSTS {
            if self.port_of(h) == no {
                self.announce(h);
            }
        }
        Ok(())
    }

    /// The kernel's flows, as the independent command prints them.
    fn kernel_flows(&self, cmd: &str) -> Result<Vec<(Match, Vec<OdpAction>, String)>, String> {
        let out = std::process::Command::new("sh")
            .args(["-c", cmd])
            .output()
            .map_err(|e| format!("{cmd}: {e}"))?;
        if !out.status.success() {
            return Err(format!("{cmd}: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let mut flows = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let f = parse_flow_line(line).map_err(|e| format!("{cmd}: {line}: {e}"))?;
            let key = f.key.ok_or_else(|| format!("{cmd}: no key in {line}"))?;
            flows.push((key.matched, f.actions.unwrap_or_default(), line.to_string()));
        }
        Ok(flows)
    }

    /// Every kernel flow, on every frame of the soak's flows it matches,
    /// must give the reference decision.
    fn check_kernel(&mut self, step: usize, cmd: &str) -> Result<usize, String> {
        let flows = self.kernel_flows(cmd)?;
        let frames: Vec<(Flow, u32, Vec<u8>)> = universe()
            .into_iter()
            .chain((1..=HOSTS).map(Flow::announce))
            .map(|f| (f, self.port_of(f.src), f.frame(0)))
            .collect();
        for (matched, actions, line) in &flows {
            self.tally.kernel_flows_checked += 1;
            let mut stale = false;
            for (f, port, frame) in &frames {
                let mut key = FlowKey::ZERO;
                extract_into(frame, *port, &mut key);
                if !matched.matches(&key) {
                    continue;
                }
                self.tally.kernel_frames_checked += 1;
                let rules = std::mem::take(&mut self.rules);
                let want = outputs(&translate_frame(&rules, &mut self.env(), *port, frame), frame);
                self.rules = rules;
                if outputs(actions, frame) != want && !stale {
                    stale = true;
                    self.tally.example(format!(
                        "step {step}: kernel flow {line} gives {f:?} on port {port} another decision than the reference"
                    ));
                }
            }
            self.tally.stale_kernel_flows += u64::from(stale);
        }
        Ok(flows.len())
    }
}

/// Runs the soak; returns the tallies (and the kernel flows left at the
/// end, when there is a kernel view), or why it could not run.
pub fn run(args: SoakArgs) -> Result<(Tally, Option<usize>), String> {
    let mut ports = HashMap::new();
    for (no, name) in &args.ports {
        ports.insert(*no, Port::open_xdp(*no, name).map_err(|e| format!("{name}: {e}"))?);
    }
    let port_numbers: Vec<u32> = args.ports.iter().map(|p| p.0).collect();
    if port_numbers.len() < 2 {
        return Err("a soak needs at least two ports".into());
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let at = std::array::from_fn(|h| port_numbers[h % port_numbers.len()]);
    let all = universe();
    let running = (0..8).map(|_| all[rng.gen_range(0..all.len())]).collect::<Vec<_>>();
    let mut s = Soak {
        macs: MacTable::new(port_numbers.clone(), Duration::from_secs(300), 65536),
        ports,
        port_numbers,
        rules: RuleSet::new(),
        added: Vec::new(),
        at,
        running,
        next_tag: 0,
        rng,
        tally: Tally::default(),
        args,
    };
    s.running.sort_by_key(|f| (f.src, f.dst, f.tcp, f.dport));
    s.running.dedup();
    s.reset_rules()?;
    for h in 1..=HOSTS {
        s.announce(h);
    }
    let cmd = s.args.kernel_flows.clone();
    let start = Instant::now();
    for step in 0..s.args.steps {
        if s.args.duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        s.tally.steps += 1;
        s.change()?;
        s.phase(step);
        if let Some(c) = &cmd {
            s.check_kernel(step, c)?;
        }
    }
    let left = match &cmd {
        Some(c) => {
            std::thread::sleep(s.args.idle + Duration::from_millis(2500));
            Some(s.check_kernel(s.args.steps, c)?)
        }
        None => None,
    };
    Ok((s.tally, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_survive_in_every_frame_shape() {
        for f in universe().into_iter().chain((1..=HOSTS).map(Flow::announce)) {
            let frame = f.frame(0xdead_beef);
            assert_eq!(tag_of(&frame), Some(0xdead_beef), "{f:?}");
            let mut key = FlowKey::ZERO;
            extract_into(&frame, 1, &mut key);
            assert_eq!(key.eth_src, mac(f.src));
        }
        assert_eq!(tag_of(b"short"), None);
        assert_eq!(tag_of(&[0u8; 64]), None);
    }

    #[test]
    fn the_base_rules_parse() {
        assert!(ofctl::parse_rules(BASE_RULES).is_ok_and(|v| v.len() == 3));
    }

    #[test]
    fn announcements_run_normal_above_every_random_rule() {
        let mut rules = RuleSet::new();
        for r in ofctl::parse_rules(BASE_RULES).unwrap() {
            rules.add(r);
        }
        rules.add(ofctl::parse_rule("table=0,priority=39,actions=drop").unwrap());
        let mut macs = MacTable::new(vec![1, 2, 3], Duration::from_secs(300), 16);
        let mut env = LearningEnv {
            macs: &mut macs,
            now: Instant::now(),
        };
        let frame = Flow::announce(2).frame(1);
        let out = outputs(&translate_frame(&rules, &mut env, 3, &frame), &frame);
        assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), vec![1, 2], "flooded");
        assert_eq!(macs.port_of(0, mac(2)), Some(3), "and learned");
    }
}
