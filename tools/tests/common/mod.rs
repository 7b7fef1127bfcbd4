//! The switch daemon in a network-namespace sandbox, for the tests that
//! run `odpx run` with real interfaces.
#![allow(dead_code)]

pub mod faucet;

use odpx_control::ctl::request_line as request;
use odpx_tools::sandbox::{self, sh, udp_echo_server, Sandbox};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    stderr: PathBuf,
    dir: PathBuf,
    stop_echo: Arc<AtomicBool>,
    // Dropped last: namespaces go after the daemon.
    pub sb: Sandbox,
}

impl Daemon {
    /// `odpx run` in a sandbox of `hosts` hosts (ports `s1..sN`) with
    /// these rules (the case needs [`odpx_tests::harness::NETNS`]).
    pub fn start(name: &str, hosts: usize, rules: &str) -> Daemon {
        Daemon::start_with(name, hosts, rules, |_, _| String::new())
    }

    /// [`Daemon::start`], with `extend` adding to the sandbox (given its
    /// tag) before the daemon starts and returning more `[[port]]` text.
    pub fn start_with(
        name: &str,
        hosts: usize,
        rules: &str,
        extend: impl FnOnce(&mut Sandbox, &str) -> String,
    ) -> Daemon {
        Daemon::start_idle(name, hosts, rules, Duration::from_secs(60), extend)
    }

    /// [`Daemon::start_with`], with megaflows idle after `idle`.
    pub fn start_idle(
        name: &str,
        hosts: usize,
        rules: &str,
        idle: Duration,
        extend: impl FnOnce(&mut Sandbox, &str) -> String,
    ) -> Daemon {
        let tag = format!("{}{}", name, std::process::id() % 100000);
        let mut sb = sandbox::build(&tag, hosts).expect("sandbox");
        let extra_ports = extend(&mut sb, &tag);
        // Hosts finish their checksums themselves (see the demo).
        for h in &sb.hosts {
            let h2 = h.clone();
            std::thread::spawn(move || {
                assert!(sandbox::enter(&h2));
                odpx_offload::ethtool::disable_tx_checksum("eth0").unwrap();
            })
            .join()
            .unwrap();
        }
        let dir = std::env::temp_dir().join(format!("odpx-t-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("ctl.sock");
        let mut ports: String = (1..=hosts).map(|i| format!("[[port]]\nname = \"s{i}\"\n")).collect();
        ports += &extra_ports;
        let rules_inline: Vec<String> = rules.lines().map(|l| format!("{l:?}")).collect();
        let cfg = format!(
            "[switch]\nsocket = {:?}\nrules_inline = [{}]\n{ports}[pmd]\ncores = [{}]\n[cache]\nidle_timeout_ms = {}\n",
            socket.to_str().unwrap(),
            rules_inline.join(","),
            std::thread::available_parallelism().map_or(1, |n| n.get()) - 1,
            idle.as_millis()
        );
        std::fs::write(dir.join("odpx.toml"), cfg).unwrap();
        let stderr = dir.join("stderr");
        let stop_echo = Arc::new(AtomicBool::new(false));
        for h in &sb.hosts {
            udp_echo_server(h.clone(), stop_echo.clone());
        }
        let mut d = Daemon {
            child: None,
            socket,
            stderr,
            dir,
            stop_echo,
            sb,
        };
        d.spawn();
        d.wait_ready(Duration::from_secs(15));
        d
    }

    /// `odpx run` on the sandbox's configuration, its stderr appended to
    /// the log.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        self.child = Some(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.sb.switch,
                    env!("CARGO_BIN_EXE_odpx"),
                    "run",
                    "-c",
                ])
                .arg(self.dir.join("odpx.toml"))
                .stderr(log)
                .stdout(Stdio::null())
                .spawn()
                .expect("odpx run"),
        );
    }

    /// Waits until the control socket answers; panics after `limit`.
    /// Returns how long it took.
    pub fn wait_ready(&self, limit: Duration) -> Duration {
        let t = Instant::now();
        while request(&self.socket, "show").is_err() {
            assert!(
                t.elapsed() < limit,
                "daemon did not start within {limit:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        t.elapsed()
    }

    /// `kill -9` (the `ip netns exec` wrapper execs odpx, so the child is
    /// odpx itself), then reaps it.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// Starts the daemon again; returns how long until it answered.
    pub fn restart(&mut self, limit: Duration) -> Duration {
        let t = Instant::now();
        self.spawn();
        self.wait_ready(limit);
        t.elapsed()
    }

    pub fn ctl(&self, cmd: &str) -> String {
        request(&self.socket, cmd).unwrap_or_else(|e| panic!("ctl {cmd}: {e}\n{}", self.log()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn host(&self, i: usize) -> &str {
        &self.sb.hosts[i - 1]
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        sh(&["kill", "-TERM", &c.id().to_string()]).unwrap();
        let t = Instant::now();
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "daemon did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop_echo.store(true, Ordering::Relaxed);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
