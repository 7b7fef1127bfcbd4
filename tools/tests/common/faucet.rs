//! Faucet, from the venv `tools/test.sh` makes (`target/faucet-venv`),
//! run in a namespace on its loopback: the controller the Faucet tests
//! drive odpx with.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Faucet's OpenFlow port.
pub const OF_PORT: u16 = 6653;

pub fn venv() -> PathBuf {
    odpx_tests::repo().join("target/faucet-venv")
}

/// Faucet with `yaml`, in namespace `ns`; killed when dropped.
pub struct Faucet {
    pub child: Child,
    dir: PathBuf,
}

impl Faucet {
    pub fn start(ns: &str, dir: &Path, yaml: &str) -> Faucet {
        Faucet::start_with(ns, dir, yaml, &[])
    }

    /// Faucet with more arguments (os-ken options such as its TLS).
    pub fn start_with(ns: &str, dir: &Path, yaml: &str, extra: &[String]) -> Faucet {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("faucet.yaml"), yaml).unwrap();
        let bin = venv().join("bin");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "env"])
            .arg(format!("PATH={path}"))
            .arg(format!("FAUCET_CONFIG={}", dir.join("faucet.yaml").display()))
            .arg(format!("FAUCET_LOG={}", dir.join("faucet.log").display()))
            .arg(format!(
                "FAUCET_EXCEPTION_LOG={}",
                dir.join("faucet_exception.log").display()
            ))
            .args(["FAUCET_PROMETHEUS_ADDR=127.0.0.1", "FAUCET_PROMETHEUS_PORT=9302"])
            .arg(bin.join("faucet"))
            .arg(format!("--ryu-ofp-tcp-listen-port={OF_PORT}"))
            .arg("--ryu-ofp-listen-host=127.0.0.1")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("faucet.stderr")).unwrap())
            .spawn()
            .expect("faucet");
        Faucet {
            child,
            dir: dir.to_path_buf(),
        }
    }

    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!(
            "faucet.log:\n{}\nexceptions:\n{}\nstderr:\n{}",
            read("faucet.log"),
            read("faucet_exception.log"),
            read("faucet.stderr")
        )
    }
}

impl Drop for Faucet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
