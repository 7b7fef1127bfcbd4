//! `odpx datapath | vport | flow | packet`: the kernel datapath from the
//! command line, with go-odp's commands and flags plus ODP text.
//!
//! Every command is a thin layer over `odpx_offload::OdpClient`; output
//! uses the `ovs-dpctl` syntax (`flow list` prints `dump-flows` lines).
//! Vports may be given by name or number wherever a port is expected.

use crate::odp_flags::FlowFlags;
use clap::Subcommand;
use odpx_classifier::odp::{self, OdpAction, OdpKey};
use odpx_offload::client::{parse_ufid, Datapath, DatapathSettings, Execute};
use odpx_offload::keys::encode_packet_key;
use odpx_offload::upcall::UpcallListener;
use odpx_offload::{actions::encode_actions, keys::encode_match, uapi};
use odpx_offload::{FlowId, FlowPut, OdpClient, PutMode, VportId, VportSpec, VportType};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

type R = Result<ExitCode, String>;

#[derive(Subcommand)]
pub enum DpCmd {
    /// List datapaths.
    List,
    /// Create a datapath (per-CPU upcall dispatch when the kernel has it).
    Add {
        dp: String,
        /// Use per-vport upcall pids even if the kernel dispatches per CPU.
        #[arg(long)]
        no_per_cpu: bool,
    },
    /// Delete a datapath and its vports and flows.
    Delete { dp: String },
    /// Show datapaths as `ovs-dpctl show` does (stats, masks, ports).
    Show {
        dp: Option<String>,
        /// Also print per-port statistics.
        #[arg(short = 's', long)]
        statistics: bool,
    },
    /// Change datapath settings.
    Set {
        dp: String,
        /// Entries of the per-CPU masks cache (0 disables it; a power of 2).
        #[arg(long)]
        masks_cache_size: Option<u32>,
    },
    /// Print every packet the datapath sends to userspace (misses, and
    /// userspace() actions). Points every vport's (or every CPU's) upcalls
    /// at this listener.
    Listen {
        dp: String,
        /// Print each packet's flow key as the kernel extracted it.
        #[arg(long)]
        keys: bool,
        /// Also write the packets as a pcap stream to FILE (`-`: stdout;
        /// the text lines then go to stderr). `... --pcap - dp0 | tcpdump -r -`
        #[arg(long)]
        pcap: Option<String>,
        /// Exit after this many upcalls.
        #[arg(long)]
        count: Option<u64>,
        /// Exit after this many seconds (status 1 if --count was not reached).
        #[arg(long)]
        timeout: Option<f64>,
        /// Also print the kernel's key attributes as hex.
        #[arg(long)]
        raw: bool,
    },
}

#[derive(Subcommand)]
pub enum VportCmd {
    /// List vports of one datapath, or of all.
    List { dp: Option<String> },
    /// Add a vport.
    Add {
        #[command(subcommand)]
        kind: VportKind,
    },
    /// Delete a vport (by name; or DP and NUMBER).
    Delete { vport: String, number: Option<u32> },
}

#[derive(Subcommand)]
pub enum VportKind {
    /// Attach an existing network device.
    Netdev { dp: String, name: String },
    /// Create an internal device.
    Internal { dp: String, name: String },
    /// A VXLAN tunnel port.
    Vxlan {
        dp: String,
        name: String,
        /// UDP destination port.
        #[arg(long, default_value_t = 4789)]
        port: u16,
    },
    /// A Geneve tunnel port.
    Geneve {
        dp: String,
        name: String,
        #[arg(long, default_value_t = 6081)]
        port: u16,
    },
    /// A GRE tunnel port.
    Gre { dp: String, name: String },
}

#[derive(Subcommand)]
pub enum FlowCmd {
    /// Print the flows in `ovs-dpctl dump-flows` syntax.
    List {
        dp: String,
        /// With packets, bytes, used and TCP flags.
        #[arg(long, short = 's')]
        stats: bool,
        /// Print each flow's UFID first.
        #[arg(long)]
        ufid: bool,
        /// Let the kernel leave out the key and mask of flows that have a
        /// UFID (OVS_UFID_F_OMIT_KEY|OMIT_MASK): UFIDs and actions only.
        #[arg(long)]
        terse: bool,
        /// After each flow, the kernel's key, mask and actions attributes as hex.
        #[arg(long)]
        raw: bool,
    },
    /// Add a flow: `DP KEY ACTIONS` in ODP text, or go-odp flags; or
    /// `--file FILE` with one `KEY actions:ACTIONS` per line.
    Add {
        dp: String,
        key: Option<String>,
        actions: Option<String>,
        #[command(flatten)]
        flags: FlowFlags,
        /// Flows from a file (one `KEY actions:ACTIONS` or
        /// `KEY ACTIONS` per line), installed in batches.
        #[arg(long)]
        file: Option<String>,
        /// With --file: one netlink transaction per flow (no batching).
        #[arg(long)]
        no_batch: bool,
        /// Give the flow this UFID (hex, up to 16 bytes).
        #[arg(long)]
        ufid: Option<String>,
        /// Replace the actions of an existing flow (fails if absent,
        /// unless --may-create).
        #[arg(long)]
        modify: bool,
        #[arg(long)]
        may_create: bool,
        /// With --modify: also clear the flow's statistics.
        #[arg(long)]
        clear: bool,
    },
    /// Delete a flow given by KEY (ODP text), go-odp flags or --ufid.
    Delete {
        dp: String,
        key: Option<String>,
        #[command(flatten)]
        flags: FlowFlags,
        #[arg(long)]
        ufid: Option<String>,
    },
    /// Print one flow given by KEY, go-odp flags or --ufid.
    Get {
        dp: String,
        key: Option<String>,
        #[command(flatten)]
        flags: FlowFlags,
        #[arg(long)]
        ufid: Option<String>,
    },
    /// Without a flow: delete every flow of DP. With one (KEY, flags or
    /// --ufid): clear that flow's statistics, as go-odp does.
    Clear {
        dp: String,
        key: Option<String>,
        #[command(flatten)]
        flags: FlowFlags,
        #[arg(long)]
        ufid: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum PacketCmd {
    /// Run ACTIONS (ODP text) on a packet (hex bytes) in the kernel, as if
    /// it had arrived on --in-port.
    Execute {
        dp: String,
        /// The frame, as hex (spaces and colons allowed).
        packet: String,
        actions: String,
        #[arg(long, default_value = "0")]
        in_port: String,
    },
}

fn connect() -> Result<OdpClient, String> {
    OdpClient::connect().map_err(|e| e.to_string())
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A datapath by name, or by ifindex when the name is a number (go-odp).
fn lookup_dp(c: &mut OdpClient, name: &str) -> Result<Datapath, String> {
    match c.get_datapath(name) {
        Ok(dp) => Ok(dp),
        Err(e) => {
            if let Ok(idx) = name.parse::<i32>() {
                if let Ok(all) = c.list_datapaths() {
                    if let Some(dp) = all.into_iter().find(|d| d.dp_ifindex == idx) {
                        return Ok(dp);
                    }
                }
            }
            Err(e.to_string())
        }
    }
}

/// A vport of `dp` by name or number.
fn port_no(c: &mut OdpClient, dp: &Datapath, p: &str) -> Result<u32, String> {
    if let Ok(n) = p.parse::<u32>() {
        return Ok(n);
    }
    let v = c
        .get_vport(&VportId::Name(p.to_string()))
        .map_err(|e| format!("port {p}: {e}"))?;
    if v.dp_ifindex != dp.dp_ifindex {
        return Err(format!("port {p} belongs to another datapath"));
    }
    Ok(v.port_no)
}

pub fn datapath(cmd: Option<DpCmd>) -> R {
    let mut c = connect()?;
    match cmd.unwrap_or(DpCmd::List) {
        DpCmd::List => {
            for dp in c.list_datapaths().map_err(err)? {
                println!("{}: {}", dp.dp_ifindex, dp.name);
            }
        }
        DpCmd::Add { dp, no_per_cpu } => {
            c.create_datapath(&dp, 0, !no_per_cpu).map_err(err)?;
        }
        DpCmd::Delete { dp } => {
            let d = lookup_dp(&mut c, &dp)?;
            c.delete_datapath(&d.name).map_err(err)?;
        }
        DpCmd::Show { dp, statistics } => {
            let dps = match dp {
                Some(n) => vec![lookup_dp(&mut c, &n)?],
                None => c.list_datapaths().map_err(err)?,
            };
            for d in dps {
                show_dp(&mut c, &d, statistics)?;
            }
        }
        DpCmd::Set { dp, masks_cache_size } => {
            let d = lookup_dp(&mut c, &dp)?;
            if masks_cache_size.is_none() {
                return Err("nothing to set (try --masks-cache-size N)".into());
            }
            c.set_datapath(
                &d.name,
                &DatapathSettings {
                    masks_cache_size,
                    ..Default::default()
                },
            )
            .map_err(err)?;
        }
        DpCmd::Listen {
            dp,
            keys,
            pcap,
            count,
            timeout,
            raw,
        } => return listen(c, &dp, keys, raw, pcap, count, timeout),
    }
    Ok(ExitCode::SUCCESS)
}

fn show_dp(c: &mut OdpClient, d: &Datapath, statistics: bool) -> Result<(), String> {
    println!("system@{}:", d.name);
    let s = d.stats.unwrap_or_default();
    println!("  lookups: hit:{} missed:{} lost:{}", s.n_hit, s.n_missed, s.n_lost);
    println!("  flows: {}", s.n_flows);
    if let Some(m) = d.megaflow_stats {
        let pkts = s.n_hit + s.n_missed;
        let per = if pkts > 0 {
            m.n_mask_hit as f64 / pkts as f64
        } else {
            0.0
        };
        println!("  masks: hit:{} total:{} hit/pkt:{per:.2}", m.n_mask_hit, m.n_masks);
        let rate = if pkts > 0 {
            m.n_cache_hit as f64 * 100.0 / pkts as f64
        } else {
            0.0
        };
        println!("  cache: hit:{} hit-rate:{rate:.2}%", m.n_cache_hit);
    }
    if let Some(sz) = d.masks_cache_size {
        println!("  caches:");
        println!("    masks-cache: size:{sz}");
    }
    let per_cpu = d.user_features & uapi::dp_feature::DISPATCH_UPCALL_PER_CPU != 0;
    println!("  upcalls: {}", if per_cpu { "per-cpu" } else { "per-vport" });
    if !d.per_cpu_pids.is_empty() {
        let pids: Vec<String> = d.per_cpu_pids.iter().map(|p| p.to_string()).collect();
        println!("  upcall pids by CPU: {}", pids.join(" "));
    }
    for p in c.list_vports(d.dp_ifindex).map_err(err)? {
        let extra = match (p.vtype, p.dst_port) {
            (VportType::Netdev, _) => String::new(),
            (t, Some(port)) => format!(" ({}: dst_port={port})", t.name()),
            (t, None) => format!(" ({})", t.name()),
        };
        println!("  port {}: {}{extra}", p.port_no, p.name);
        if statistics {
            let st = p.stats.unwrap_or_default();
            println!(
                "    RX packets:{} errors:{} dropped:{}",
                st.rx_packets, st.rx_errors, st.rx_dropped
            );
            println!(
                "    TX packets:{} errors:{} dropped:{}",
                st.tx_packets, st.tx_errors, st.tx_dropped
            );
            println!("    RX bytes:{}  TX bytes:{}", st.rx_bytes, st.tx_bytes);
        }
    }
    Ok(())
}

fn listen(
    mut c: OdpClient,
    dp: &str,
    keys: bool,
    raw: bool,
    pcap: Option<String>,
    count: Option<u64>,
    timeout: Option<f64>,
) -> R {
    let d = lookup_dp(&mut c, dp)?;
    let mut l = UpcallListener::open(&c).map_err(err)?;
    let how = l.attach(&mut c, &d).map_err(err)?;
    let to_stdout = pcap.as_deref() == Some("-");
    let mut pcap_w = match pcap.as_deref() {
        None => None,
        Some("-") => Some(odpx_tools::pcap::Writer::new(Box::new(std::io::stdout()) as Box<dyn Write>).map_err(err)?),
        Some(f) => Some(
            odpx_tools::pcap::Writer::new(
                Box::new(std::fs::File::create(f).map_err(|e| format!("{f}: {e}"))?) as Box<dyn Write>
            )
            .map_err(err)?,
        ),
    };
    let say = |s: String| {
        if to_stdout {
            eprintln!("{s}");
        } else {
            println!("{s}");
            let _ = std::io::stdout().flush();
        }
    };
    say(format!("listening on {} ({how})", d.name));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || loop {
        let r = l.recv();
        let stop = r.is_err();
        if tx.send(r).is_err() || stop {
            return;
        }
    });
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t));
    let mut seen = 0u64;
    loop {
        if count.is_some_and(|n| seen >= n) {
            return Ok(ExitCode::SUCCESS);
        }
        let batch = match deadline {
            Some(dl) => match rx.recv_timeout(dl.saturating_duration_since(Instant::now())) {
                Ok(b) => b,
                Err(_) => {
                    return match count {
                        Some(n) if seen < n => Err(format!("timed out after {seen} of {n} upcalls")),
                        _ => Ok(ExitCode::SUCCESS),
                    }
                }
            },
            None => rx.recv().map_err(|_| "listener stopped".to_string())?,
        };
        for u in batch.map_err(err)? {
            let u = match u {
                Ok(u) => u,
                Err(e) => {
                    say(format!("{}: an upcall did not parse: {e}", d.name));
                    continue;
                }
            };
            seen += 1;
            let kind = if u.is_miss() { "miss" } else { "action" };
            let mut line = format!("{}: {kind}, {} bytes", d.name, u.packet.len());
            if let Some(ud) = &u.userdata {
                line.push_str(&format!(
                    ", userdata({})",
                    ud.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ));
            }
            if keys {
                match u.key() {
                    Ok((k, opaque)) => {
                        line.push_str(": ");
                        line.push_str(&odp::format_exact_key_with(&k, &opaque));
                    }
                    Err(e) => line.push_str(&format!(": <key does not decode: {e}>")),
                }
            }
            say(line);
            if raw {
                say(format!(
                    "  key: {}",
                    u.key_raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ));
            }
            if let Some(w) = pcap_w.as_mut() {
                w.packet(std::time::SystemTime::now(), &u.packet, u.orig_len.unwrap_or(0))
                    .map_err(|e| format!("pcap: {e}"))?;
            }
            if count.is_some_and(|n| seen >= n) {
                break;
            }
        }
    }
}

pub fn vport(cmd: Option<VportCmd>) -> R {
    let mut c = connect()?;
    match cmd.unwrap_or(VportCmd::List { dp: None }) {
        VportCmd::List { dp } => {
            let dps = match dp {
                Some(n) => vec![lookup_dp(&mut c, &n)?],
                None => c.list_datapaths().map_err(err)?,
            };
            for d in dps {
                for p in c.list_vports(d.dp_ifindex).map_err(err)? {
                    let port = match (p.vtype, p.dst_port) {
                        (t, Some(port)) if t.is_udp_tunnel() => format!(" --port={port}"),
                        _ => String::new(),
                    };
                    println!("{} {} {} {}{port}", p.vtype.name(), d.name, p.name, p.port_no);
                }
            }
        }
        VportCmd::Add { kind } => {
            let (dp, name, vtype, dst_port) = match kind {
                VportKind::Netdev { dp, name } => (dp, name, VportType::Netdev, None),
                VportKind::Internal { dp, name } => (dp, name, VportType::Internal, None),
                VportKind::Vxlan { dp, name, port } => (dp, name, VportType::Vxlan, Some(port)),
                VportKind::Geneve { dp, name, port } => (dp, name, VportType::Geneve, Some(port)),
                VportKind::Gre { dp, name } => (dp, name, VportType::Gre, None),
            };
            let d = lookup_dp(&mut c, &dp)?;
            let v = c
                .create_vport(
                    d.dp_ifindex,
                    &VportSpec {
                        name,
                        vtype,
                        port_no: None,
                        dst_port,
                        upcall_pids: vec![0],
                    },
                )
                .map_err(err)?;
            println!("{}", v.port_no);
        }
        VportCmd::Delete { vport, number } => {
            let id = match number {
                Some(n) => VportId::Number {
                    dp_ifindex: lookup_dp(&mut c, &vport)?.dp_ifindex,
                    port_no: n,
                },
                None => VportId::Name(vport),
            };
            c.delete_vport(&id).map_err(err)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A flow's key from ODP text or flags (exactly one of them).
fn key_of(c: &mut OdpClient, dp: &Datapath, text: &Option<String>, flags: &FlowFlags) -> Result<OdpKey, String> {
    match (text, flags.is_empty()) {
        (Some(t), true) => odp::parse_key(t).map_err(|e| format!("key: {e}")),
        (None, false) => Ok(flags.to_flow(&mut |p| port_no(c, dp, p))?.0),
        (Some(_), false) => Err("give the flow either as ODP text or with flags, not both".into()),
        (None, true) => Err("no flow given (ODP text KEY, go-odp flags, or --ufid)".into()),
    }
}

fn flow_id(
    c: &mut OdpClient,
    dp: &Datapath,
    key: &Option<String>,
    flags: &FlowFlags,
    ufid: &Option<String>,
) -> Result<FlowId, String> {
    if let Some(u) = ufid {
        if key.is_some() || !flags.is_empty() {
            return Err("give a flow either by --ufid or by its key, not both".into());
        }
        return Ok(FlowId::Ufid(parse_ufid(u)?));
    }
    let k = key_of(c, dp, key, flags)?;
    Ok(FlowId::Key(encode_match(&k).map_err(err)?.key))
}

fn parse_flow_text(line: &str) -> Result<(OdpKey, Vec<OdpAction>), String> {
    // Accept `KEY actions:A` and `KEY A` (ovs-dpctl add-flows files).
    let f = odp::parse_flow_line(line).or_else(|e| {
        let (k, a) = line.rsplit_once(' ').ok_or_else(|| e.to_string())?;
        odp::parse_flow_line(&format!("{k} actions:{a}")).map_err(|_| e.to_string())
    });
    let f = f.map_err(err)?;
    match (f.key, f.actions) {
        (Some(k), Some(a)) => Ok((k, a)),
        _ => Err("expected KEY actions:ACTIONS".into()),
    }
}

pub fn flow(cmd: FlowCmd) -> R {
    let mut c = connect()?;
    match cmd {
        FlowCmd::List {
            dp,
            stats,
            ufid,
            terse,
            raw,
        } => {
            let d = lookup_dp(&mut c, &dp)?;
            let flags = if terse {
                uapi::ufid_flag::OMIT_KEY | uapi::ufid_flag::OMIT_MASK
            } else {
                0
            };
            let ufid = ufid || terse;
            let flows = c.dump_flows(d.dp_ifindex, flags).map_err(err)?;
            let out = std::io::stdout();
            let mut out = out.lock();
            let mut bad = 0;
            for f in flows {
                match f.to_line(stats, ufid) {
                    Ok(l) => {
                        let _ = writeln!(out, "{l}");
                    }
                    Err(e) if raw => {
                        bad += 1;
                        let _ = writeln!(out, "<does not decode: {e}>");
                    }
                    Err(e) => {
                        bad += 1;
                        eprintln!("odpx: a flow does not decode ({e}); see it with --raw");
                    }
                }
                if raw {
                    let hex = |b: &Option<Vec<u8>>| {
                        b.as_deref().map_or_else(
                            || "(omitted)".to_string(),
                            |b| b.iter().map(|x| format!("{x:02x}")).collect(),
                        )
                    };
                    let _ = writeln!(out, "  key: {}", hex(&f.key_raw));
                    let _ = writeln!(out, "  mask: {}", hex(&f.mask_raw));
                    let _ = writeln!(out, "  actions: {}", hex(&f.actions_raw));
                }
            }
            if bad > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        FlowCmd::Add {
            dp,
            key,
            actions,
            flags,
            file,
            no_batch,
            ufid,
            modify,
            may_create,
            clear,
        } => {
            let d = lookup_dp(&mut c, &dp)?;
            let mode = match (modify, may_create) {
                (false, _) => PutMode::Create,
                (true, false) => PutMode::Modify,
                (true, true) => PutMode::CreateOrModify,
            };
            if let Some(file) = file {
                return add_from_file(&mut c, &d, &file, mode, no_batch);
            }
            let (k, a) = match (key, actions) {
                (Some(k), Some(a)) if flags.is_empty() => (
                    odp::parse_key(&k).map_err(|e| format!("key: {e}"))?,
                    odp::actions::parse_actions(&a).map_err(|e| format!("actions: {e}"))?,
                ),
                (Some(_), None) if flags.is_empty() => return Err("ODP text flows need KEY and ACTIONS".into()),
                (None, None) if !flags.is_empty() => flags.to_flow(&mut |p| port_no(&mut c, &d, p))?,
                (None, None) => return Err("no flow given (ODP text KEY ACTIONS, or go-odp flags)".into()),
                _ => return Err("give the flow either as ODP text or with flags, not both".into()),
            };
            let mut put = FlowPut::new(&k, &a, mode).map_err(err)?;
            put.clear_stats = clear;
            if let Some(u) = ufid {
                put.ufid = Some(parse_ufid(&u)?);
            }
            c.put_flow(d.dp_ifindex, &put).map_err(err)?;
        }
        FlowCmd::Delete { dp, key, flags, ufid } => {
            let d = lookup_dp(&mut c, &dp)?;
            let id = flow_id(&mut c, &d, &key, &flags, &ufid)?;
            c.del_flow(d.dp_ifindex, &id).map_err(err)?;
        }
        FlowCmd::Get { dp, key, flags, ufid } => {
            let d = lookup_dp(&mut c, &dp)?;
            let id = flow_id(&mut c, &d, &key, &flags, &ufid)?;
            let f = c.get_flow(d.dp_ifindex, &id).map_err(err)?;
            println!("{}", f.to_line(true, ufid.is_some()).map_err(err)?);
        }
        FlowCmd::Clear { dp, key, flags, ufid } => {
            let d = lookup_dp(&mut c, &dp)?;
            if key.is_none() && flags.is_empty() && ufid.is_none() {
                c.flush_flows(d.dp_ifindex).map_err(err)?;
            } else {
                let id = flow_id(&mut c, &d, &key, &flags, &ufid)?;
                let f = c.get_flow(d.dp_ifindex, &id).map_err(err)?;
                let put = FlowPut {
                    key: f.key_raw.clone().ok_or("the kernel did not return the flow's key")?,
                    mask: f.mask_raw.clone(),
                    actions: f.actions_raw.clone().unwrap_or_default(),
                    ufid: f.ufid.clone(),
                    mode: PutMode::Modify,
                    clear_stats: true,
                    describe: "flow".into(),
                };
                c.put_flow(d.dp_ifindex, &put).map_err(err)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn add_from_file(c: &mut OdpClient, d: &Datapath, file: &str, mode: PutMode, no_batch: bool) -> R {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let mut puts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (k, a) = parse_flow_text(t).map_err(|e| format!("{file}:{}: {e}; no flows added", i + 1))?;
        puts.push(FlowPut::new(&k, &a, mode).map_err(|e| format!("{file}:{}: {e}; no flows added", i + 1))?);
    }
    let start = Instant::now();
    let results: Vec<Result<(), String>> = if no_batch {
        puts.iter().map(|p| c.put_flow(d.dp_ifindex, p).map_err(err)).collect()
    } else {
        c.put_flows(d.dp_ifindex, &puts)
            .map_err(err)?
            .into_iter()
            .map(|r| r.map_err(err))
            .collect()
    };
    let secs = start.elapsed().as_secs_f64();
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    for e in failed.iter().take(10) {
        eprintln!("odpx: {e}");
    }
    eprintln!(
        "odpx: {} of {} flows added in {secs:.3} s ({:.0} flows/s, {})",
        results.len() - failed.len(),
        results.len(),
        results.len() as f64 / secs.max(1e-9),
        if no_batch { "one transaction each" } else { "batched" }
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let h: String = s.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    if !h.len().is_multiple_of(2) || !h.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("packet: expected hex bytes".into());
    }
    Ok((0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect())
}

pub fn packet(cmd: PacketCmd) -> R {
    let mut c = connect()?;
    match cmd {
        PacketCmd::Execute {
            dp,
            packet,
            actions,
            in_port,
        } => {
            let d = lookup_dp(&mut c, &dp)?;
            let frame = parse_hex(&packet)?;
            let port = port_no(&mut c, &d, &in_port)?;
            let key = odpx_classifier::extract::extract(&frame, port);
            let acts = odp::actions::parse_actions(&actions).map_err(|e| format!("actions: {e}"))?;
            c.execute(
                d.dp_ifindex,
                &Execute {
                    packet: &frame,
                    key: encode_packet_key(&key, &[]),
                    actions: encode_actions(&acts).map_err(err)?,
                    probe: false,
                },
            )
            .map_err(err)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
