//! A public-key infrastructure made with Open vSwitch's `ovs-pki`, as
//! `../shared/reference/ssl.md` makes one: a controller CA and a switch
//! CA, a switch's key and certificate (`sc`), a controller's (`ctl`),
//! and a rogue's (`rogue`), self-signed, which no CA signed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of a PKI made in one directory.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// Makes the PKI in `dir` (emptied first); panics if `ovs-pki` fails.
    pub fn make(dir: &Path) -> Pki {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let pki = |args: &[&str]| {
            let out = Command::new("ovs-pki")
                .arg(format!("--dir={}", dir.join("pki").display()))
                .arg(format!("--log={}", dir.join("ovs-pki.log").display()))
                .args(args)
                .current_dir(dir)
                .output()
                .expect("ovs-pki");
            assert!(
                out.status.success(),
                "ovs-pki {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        pki(&["init"]);
        pki(&["req+sign", "sc", "switch"]);
        pki(&["req+sign", "ctl", "controller"]);
        pki(&["req", "rogue"]);
        pki(&["self-sign", "rogue"]);
        Pki { dir: dir.to_path_buf() }
    }

    /// `NAME-privkey.pem` (NAME: sc, ctl or rogue).
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-privkey.pem"))
    }

    /// `NAME-cert.pem`.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-cert.pem"))
    }

    /// The CA that signs controllers' certificates (switches trust it).
    pub fn controller_ca(&self) -> PathBuf {
        self.dir.join("pki/controllerca/cacert.pem")
    }

    /// The CA that signs switches' certificates (controllers trust it).
    pub fn switch_ca(&self) -> PathBuf {
        self.dir.join("pki/switchca/cacert.pem")
    }

    /// `[openflow.ssl]` for the switch.
    pub fn switch_section(&self) -> String {
        format!(
            "[openflow.ssl]\nprivate_key = \"{}\"\ncertificate = \"{}\"\nca_cert = \"{}\"\n",
            self.key("sc").display(),
            self.cert("sc").display(),
            self.controller_ca().display()
        )
    }
}
