//! What the daemon logs: one line per state change, per-packet events
//! summed. A switch on in-memory ports, its log captured.

use odpx_control::config::Config;
use odpx_control::logs::LossWatch;
use odpx_control::switch::Switch;
use odpx_dataplane::port::Port;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged in this test binary so far.
fn log() -> String {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buf = LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = Capture(buf.clone());
        tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .init();
        buf
    });
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

fn udp_from(src: u8, sport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, src], [2, 0, 0, 0, 0, 9])
        .ipv4([10, 0, 0, src], [10, 0, 0, 9], 64)
        .udp(sport, 53);
    let mut f = Vec::new();
    b.write(&mut f, &[0u8; 18]).unwrap();
    f
}

#[test]
fn the_flow_limit_is_logged_once_when_reached_and_lost_upcalls_are_summed() {
    log();
    let cfg = Config::parse(
        "[switch]\nrules_inline = [\"priority=0,udp,actions=output:2\", \"priority=1,udp,tp_src=7,actions=output:2\"]\n[[port]]\nname = \"p1\"\ntype = \"memory\"\n[[port]]\nname = \"p2\"\ntype = \"memory\"\n[pmd]\ncores = [0]\n[cache]\nmegaflow_limit = 4\nupcall_queue = 8\n",
        Path::new("/"),
    )
    .unwrap();
    let ports = (1..=2).map(|i| Port::memory(i, &format!("p{i}"), false)).collect();
    let sw = Switch::start_with_ports(&cfg, ports).unwrap();
    // Distinct source ports: each its own megaflow (the tp_src=7 rule
    // makes the translation look at it), far more than the limit.
    for sport in 0..2000u16 {
        sw.ports[1]
            .as_ref()
            .unwrap()
            .mem()
            .unwrap()
            .push_rx(udp_from(1, 1000 + sport));
    }
    let t = Instant::now();
    while !log().contains("flow limit reached") && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let l = log();
    assert_eq!(
        l.matches("flow limit reached").count(),
        1,
        "one line for the change:\n{l}"
    );
    assert!(l.contains("WARN"), "{l}");
    // The queue of 8 lost most of the 2,000 at once: one line says so.
    let mut watch = LossWatch::default();
    let t0 = Instant::now();
    let first = watch.check(&sw, t0).expect("upcalls were lost");
    assert!(first.ends_with(" in all"), "{first}");
    let n: u64 = first.split(' ').next().unwrap().parse().unwrap();
    assert!(n > 100, "{first}");
    let received = || sw.pmds()[0].counters.snapshot().packets;
    let lost = || sw.pmds()[0].counters.snapshot().upcalls_lost;
    // The PMD may still be taking the first 2,000 in.
    let t = Instant::now();
    while received() < 2000 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(received(), 2000, "the PMD took the 2,000");
    let (before, lost_before) = (received(), lost());
    for sport in 0..500u16 {
        sw.ports[1].as_ref().unwrap().mem().unwrap().push_rx(udp_from(2, sport));
    }
    let t = Instant::now();
    while received() < before + 500 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(received(), before + 500, "the PMD took the 500");
    assert!(lost() > lost_before, "more upcalls were lost");
    assert_eq!(
        watch.check(&sw, t0 + Duration::from_secs(1)),
        None,
        "held back: at most one line per 10 s"
    );
}
