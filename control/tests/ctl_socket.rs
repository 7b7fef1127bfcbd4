//! The control socket against clients that misbehave, and its file's
//! safety: a switch on in-memory ports serving a socket in a temporary
//! directory (no root needed).

use odpx_control::config::Config;
use odpx_control::ctl::{request_line as request, serve, MAX_CLIENTS, MAX_REQUEST, REQUEST_TIME};
use odpx_control::switch::Switch;
use odpx_dataplane::port::Port;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn switch() -> Arc<Switch> {
    let cfg = Config::parse(
        "[switch]\nrules_inline = [\"priority=0,actions=NORMAL\"]\n[[port]]\nname = \"p1\"\ntype = \"memory\"\n[[port]]\nname = \"p2\"\ntype = \"memory\"\n[pmd]\ncores = [0]\n",
        Path::new("/"),
    )
    .unwrap();
    let ports = (1..=2).map(|i| Port::memory(i, &format!("p{i}"), true)).collect();
    Arc::new(Switch::start_with_ports(&cfg, ports).unwrap())
}

/// A fresh directory for one test's socket.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("odpx-ctl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `show` answered, and how long it took.
fn timed_show(path: &Path) -> Duration {
    let t = Instant::now();
    let body = request(path, "show").unwrap();
    assert!(body.contains("port 1: p1"), "{body}");
    t.elapsed()
}

#[test]
fn clients_that_send_nothing_or_never_read_stall_nobody() {
    let d = dir("stall");
    let path = d.join("odpx.sock");
    let sw = switch();
    serve(sw.clone(), &path).unwrap();
    // Rules enough for a `dump-flows` answer larger than a socket buffer.
    let rules: Vec<String> = (1..=20_000)
        .map(|i| format!("priority={i},udp,tp_dst={i},actions=drop"))
        .collect();
    assert_eq!(
        request(&path, &format!("add-flows {}", rules.join("\n"))).unwrap(),
        "20000 rules added\n"
    );
    // Silent clients, fewer than the limit: each holds one connection.
    let silent: Vec<UnixStream> = (0..MAX_CLIENTS - 2)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    // One asks for a long answer and never reads it.
    let mut greedy = UnixStream::connect(&path).unwrap();
    greedy.write_all(b"{\"request\":\"dump-flows\"}\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        timed_show(&path) < Duration::from_secs(1),
        "answered while the others stall"
    );
    // Past the deadline, the silent ones are told why and closed.
    std::thread::sleep(REQUEST_TIME + Duration::from_millis(500));
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert_eq!(
            answer,
            format!(
                "{{\"error\":\"no whole request within {} s\"}}\n",
                REQUEST_TIME.as_secs()
            )
        );
    }
    drop(greedy);
    assert!(timed_show(&path) < Duration::from_secs(1));
    drop(sw);
}

#[test]
fn clients_beyond_the_limit_wait_their_turn_and_a_burst_is_served_whole() {
    let d = dir("many");
    let path = d.join("odpx.sock");
    let sw = switch();
    serve(sw.clone(), &path).unwrap();
    // Every slot held by a silent client: the next one waits until their
    // deadline frees the slots, then is answered.
    let held: Vec<UnixStream> = (0..MAX_CLIENTS).map(|_| UnixStream::connect(&path).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    assert!(request(&path, "show").unwrap().contains("port 1: p1"));
    assert!(
        t.elapsed() >= REQUEST_TIME - Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    drop(held);
    // A burst of four times the limit at once: every one answered.
    let askers: Vec<_> = (0..4 * MAX_CLIENTS)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || request(&p, "dump-flows"))
        })
        .collect();
    for a in askers {
        let flows = a.join().unwrap().unwrap();
        assert!(flows.contains("actions=NORMAL"), "{flows}");
    }
    drop(sw);
}

#[test]
fn a_client_sending_a_gigabyte_is_cut_off_at_the_limit() {
    let d = dir("big");
    let path = d.join("odpx.sock");
    let sw = switch();
    serve(sw.clone(), &path).unwrap();
    let mut c = UnixStream::connect(&path).unwrap();
    let reader = c.try_clone().unwrap();
    let answer = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = (&reader).read_to_string(&mut s);
        s
    });
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0usize;
    let t = Instant::now();
    while sent < 1 << 30 {
        match c.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(
        sent < MAX_REQUEST + (8 << 20),
        "the server stopped reading at the limit: {} MiB went in",
        sent >> 20
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(
        answer.join().unwrap(),
        format!("{{\"error\":\"request longer than {} MiB\"}}\n", MAX_REQUEST >> 20)
    );
    assert!(timed_show(&path) < Duration::from_secs(1));
    drop(sw);
}

#[test]
fn a_partial_request_ended_by_shutdown_is_served_and_garbage_is_an_error() {
    let d = dir("partial");
    let path = d.join("odpx.sock");
    let sw = switch();
    serve(sw.clone(), &path).unwrap();
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"{\"request\":\"dump-fl").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    c.write_all(b"ows\"}").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    assert!(s.starts_with("{\"ok\":") && s.contains("actions=NORMAL"), "{s}");
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"\xff\xfe\n").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    assert_eq!(s, "{\"error\":\"the request is not UTF-8 text\"}\n");
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"show\n").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    assert!(
        s.starts_with("{\"error\":\"not a request"),
        "text is not the protocol: {s}"
    );
    assert!(request(&path, "add-flow priority=5,bogus=1,actions=drop")
        .unwrap_err()
        .contains("no rule added"));
    assert!(request(&path, "").unwrap_err().contains("empty command"));
    drop(sw);
}

#[test]
fn the_socket_is_root_only_and_never_a_link_another_file_or_a_live_switch() {
    let d = dir("file");
    let path = d.join("odpx.sock");
    let sw = switch();
    serve(sw.clone(), &path).unwrap();
    let m = std::fs::symlink_metadata(&path).unwrap();
    assert!(m.file_type().is_socket());
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    // A second switch on the same path is refused, and the first one
    // still answers.
    let other = switch();
    let err = serve(other.clone(), &path).unwrap_err();
    assert!(err.contains("another odpx is running there"), "{err}");
    assert!(timed_show(&path) < Duration::from_secs(1));
    // A socket nobody answers on (a crashed run's) is replaced.
    drop(sw);
    std::thread::sleep(Duration::from_millis(100));
    let _ = UnixStream::connect(&path); // wakes the listener, which sees the switch gone
    std::thread::sleep(Duration::from_millis(100));
    serve(other.clone(), &path).unwrap();
    assert!(timed_show(&path) < Duration::from_secs(1));
    // A symbolic link is refused, and its target left alone.
    let target = d.join("target");
    std::fs::write(&target, b"keep").unwrap();
    let link = d.join("link.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = serve(other.clone(), &link).unwrap_err();
    assert!(err.contains("is a symbolic link"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    // So is a file that is not a socket.
    let err = serve(other.clone(), &target).unwrap_err();
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    drop(other);
}
