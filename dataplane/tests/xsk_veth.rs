//! AF_XDP on a veth pair in a private network namespace: frames sent on one
//! end's socket arrive on the other end's socket. Needs root (namespaces,
//! XDP); skips locally without it and fails in CI.

use odpx_dataplane::sys::fd::ifindex;
use odpx_dataplane::sys::xsk::XskSocket;
use odpx_dataplane::xdp::RedirectProgram;
use std::process::Command;
use std::time::{Duration, Instant};

fn sh(cmd: &str) -> bool {
    Command::new("sh").args(["-c", cmd]).status().is_ok_and(|s| s.success())
}

/// Runs `body(tx, rx)` on a thread inside a fresh namespace holding a veth
/// pair `xa`/`xb`, with a socket bound on each end (frames sent on `tx`
/// arrive on `rx`).
fn on_veth_pair<T: Send + 'static>(body: impl FnOnce(XskSocket, XskSocket) -> T + Send + 'static) -> T {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ns = format!(
        "odpx-xsk-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    assert!(sh(&format!(
        "ip netns add {ns} && ip -n {ns} link add xa numrxqueues 1 numtxqueues 1 type veth peer name xb numrxqueues 1 numtxqueues 1 && ip -n {ns} link set xa up && ip -n {ns} link set xb up"
    )));
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            sh(&format!("ip netns del {}", self.0));
        }
    }
    let _c = Cleanup(ns.clone());
    // Enter the namespace in a thread of our own, so sockets and links are
    // made there; then do everything on that thread.
    let got = std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
        odpx_dataplane::sys::fd::enter_netns(&f).expect("setns");
        let (a, b) = (ifindex("xa").unwrap(), ifindex("xb").unwrap());
        let prog_b = RedirectProgram::attach(b, 1).expect("attach on xb");
        // The sender's end needs an XDP program too for copy-mode veth TX
        // to be received by the peer's XDP path.
        let _prog_a = RedirectProgram::attach(a, 1).expect("attach on xa");
        let rx = XskSocket::bind(b, 0).expect("bind xb");
        prog_b.register(0, &rx).unwrap();
        let tx = XskSocket::bind(a, 0).expect("bind xa");
        body(tx, rx)
    })
    .join()
    .unwrap();
    got
}

/// A 64-byte frame of an unassigned Ethertype, numbered `i` in byte 20.
fn test_frame(i: u8) -> Vec<u8> {
    let mut frame = vec![0xffu8; 6];
    frame.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
    frame.extend_from_slice(&[0x5a; 50]);
    frame[20] = i;
    frame
}

/// Receives what has arrived on `rx`; returns the test frames' numbers.
fn drain(rx: &mut XskSocket) -> Vec<u8> {
    let mut seen = Vec::new();
    rx.receive(32, |f| {
        if f.len() == 64 && f[12..14] == [0x88, 0xb5] {
            seen.push(f[20]);
        }
    });
    seen
}

/// Sends the test frames numbered `nos` in one transmit; answers how many
/// the socket queued.
fn send(tx: &mut XskSocket, nos: &[u8]) -> usize {
    tx.transmit(nos.len(), |i, frame| {
        frame[..64].copy_from_slice(&test_frame(nos[i]));
        Some(64)
    })
}

fn frames_cross_a_veth_pair_through_af_xdp() {
    let mut seen = on_veth_pair(|mut tx, mut rx| {
        let all: Vec<u8> = (0..64).collect();
        assert_eq!(send(&mut tx, &all), 64);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.len() < 64 && Instant::now() < deadline {
            let got = drain(&mut rx);
            tx.reap_completions();
            if got.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
            seen.extend(got);
        }
        seen
    });
    seen.sort_unstable();
    assert_eq!(seen, (0..64u8).collect::<Vec<_>>(), "every frame arrives once");
}

fn batches_of_any_size_are_taken_whole_round_after_round_of_the_tx_ring() {
    // Batches of 31 wrap the 4,096-slot TX ring at slot counts that are
    // not multiples of the batch: the socket's cached view of the ring
    // then promises a few slots, fewer than the batch, while the kernel
    // has long consumed them. Every batch must still be taken whole.
    let outcome = on_veth_pair(|mut tx, mut rx| {
        let (mut sent, mut arrived) = (0usize, 0usize);
        for round in 0..400 {
            let batch: Vec<u8> = (0..31).collect();
            let took = send(&mut tx, &batch);
            if took != batch.len() {
                return Err(format!("round {round}: the ring took {took} of {}", batch.len()));
            }
            sent += took;
            // Let the kernel drain: everything sent arrives before the next batch.
            let deadline = Instant::now() + Duration::from_secs(2);
            while arrived < sent && Instant::now() < deadline {
                arrived += drain(&mut rx).len();
                tx.reap_completions();
            }
        }
        Ok((sent, arrived))
    });
    let (sent, arrived) = outcome.unwrap();
    assert_eq!(sent, 400 * 31);
    assert_eq!(arrived, sent, "every frame arrives");
}

fn an_idle_socket_waits_until_a_frame_arrives() {
    let (quiet, woke, waited) = on_veth_pair(|mut tx, mut rx| {
        use odpx_dataplane::sys::fd::wait_readable;
        // Nothing sent: the wait times out. (The kernel may still send a
        // frame of its own on a new link: drain, and wait again.)
        let mut quiet = true;
        for _ in 0..10 {
            drain(&mut rx);
            let t = Instant::now();
            quiet = wait_readable(&[rx.fd()], Duration::from_millis(50)).unwrap();
            if !quiet {
                assert!(t.elapsed() >= Duration::from_millis(45), "{:?}", t.elapsed());
                break;
            }
        }
        // A frame sent 100 ms into the wait, from another thread: the
        // wait ends when it arrives.
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(send(&mut tx, &[7]), 1);
            tx
        });
        let t = Instant::now();
        let mut woke = false;
        while t.elapsed() < Duration::from_secs(5) {
            woke = wait_readable(&[rx.fd()], Duration::from_secs(5)).unwrap();
            if drain(&mut rx).contains(&7) {
                break;
            }
        }
        let waited = t.elapsed();
        drop(sender.join().unwrap());
        (quiet, woke, waited)
    });
    assert!(!quiet, "no frame: the wait timed out");
    assert!(woke, "a frame: the socket was readable");
    assert!(
        waited >= Duration::from_millis(90) && waited < Duration::from_secs(1),
        "woken by the frame, not before it and not by the timeout: {waited:?}"
    );
}

fn a_waiting_pmd_is_woken_by_a_message() {
    use odpx_dataplane::pmd::{PmdDoor, PmdMsg};
    use odpx_dataplane::sys::fd::{wait_readable, Waker};
    use std::sync::Arc;
    let waker = Arc::new(Waker::new().expect("eventfd"));
    let (tx, rx) = crossbeam_channel::unbounded();
    let door = PmdDoor::new(tx, Some(waker.clone()));
    let w = waker.clone();
    let waiting = std::thread::spawn(move || {
        let t = Instant::now();
        let woke = wait_readable(&[w.fd()], Duration::from_secs(5)).unwrap();
        w.clear();
        (woke, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(50));
    door.send(PmdMsg::ClearStats).unwrap();
    let (woke, after) = waiting.join().unwrap();
    assert!(woke, "the message rang the waker");
    assert!(
        after < Duration::from_secs(1),
        "woken by the message, not the timeout: {after:?}"
    );
    assert!(matches!(rx.try_recv(), Ok(PmdMsg::ClearStats)));
    // Taken: the next wait waits.
    assert!(!wait_readable(&[waker.fd()], Duration::from_millis(20)).unwrap());
}

odpx_tests::cases! {
    [odpx_tests::harness::NETNS] => frames_cross_a_veth_pair_through_af_xdp, batches_of_any_size_are_taken_whole_round_after_round_of_the_tx_ring, an_idle_socket_waits_until_a_frame_arrives;
    [] => a_waiting_pmd_is_woken_by_a_message;
}
