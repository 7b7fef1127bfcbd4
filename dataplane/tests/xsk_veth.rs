//! AF_XDP on a veth pair in a private network namespace: frames sent on one
//! end's socket arrive on the other end's socket. Needs root (namespaces,
//! XDP); skips locally without it and fails in CI.

use odpx_dataplane::xsk::{ifindex, Desc, RedirectProgram, XskSocket};
use std::process::Command;
use std::time::{Duration, Instant};

fn sh(cmd: &str) -> bool {
    Command::new("sh").args(["-c", cmd]).status().is_ok_and(|s| s.success())
}

fn can_run() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    root && sh("ip netns list >/dev/null 2>&1")
}

#[test]
fn frames_cross_a_veth_pair_through_af_xdp() {
    if !odpx_tests::prerequisite(can_run(), "root and network namespaces (ip netns)") {
        return;
    }
    let ns = format!("odpx-xsk-{}", std::process::id());
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
    let ns2 = ns.clone();
    let got = std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/var/run/netns/{ns2}")).unwrap();
        odpx_dataplane::xsk::enter_netns(&f).expect("setns");
        let (a, b) = (ifindex("xa").unwrap(), ifindex("xb").unwrap());
        let prog_b = RedirectProgram::attach(b, 1).expect("attach on xb");
        // The sender's end needs an XDP program too for copy-mode veth TX
        // to be received by the peer's XDP path.
        let _prog_a = RedirectProgram::attach(a, 1).expect("attach on xa");
        let mut rx = XskSocket::bind(b, 0).expect("bind xb");
        prog_b.register(0, &rx).unwrap();
        let mut tx = XskSocket::bind(a, 0).expect("bind xa");
        let mut frame = vec![0xffu8; 6];
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
        frame.extend_from_slice(&[0x5a; 50]);
        let mut sent = Vec::new();
        for i in 0..64u8 {
            let addr = tx.tx_frame().expect("free tx frame");
            let buf = tx.frame_mut(addr, frame.len() as u32);
            buf.copy_from_slice(&frame);
            buf[20] = i;
            sent.push((addr, frame.len() as u32));
        }
        assert_eq!(tx.send(&sent), 64);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut descs = [Desc::default(); 32];
        while seen.len() < 64 && Instant::now() < deadline {
            let n = rx.recv(&mut descs);
            for d in &descs[..n] {
                let f = rx.frame(d.addr, d.len);
                if f.len() == frame.len() && f[12..14] == [0x88, 0xb5] {
                    seen.push(f[20]);
                }
            }
            rx.release(&descs[..n]);
            tx.reap_completions();
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        (seen, rx.mode)
    })
    .join()
    .unwrap();
    let (mut seen, _mode) = got;
    seen.sort_unstable();
    assert_eq!(seen, (0..64u8).collect::<Vec<_>>(), "every frame arrives once");
}
