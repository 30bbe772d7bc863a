//! `smsgate modem probe`: find the ports that answer AT and say what is behind them, or what to
//! do when nothing answers (busy port, permissions, HiLink or CD-ROM mode).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::at::AtPort;
use super::error::ModemError;
use super::info::{self, ModemInfo};
use super::init;

/// What probing one port found.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The port as given or found.
    pub port: String,
    /// The device it resolves to, when it is a link (`/dev/serial/by-id/…` → `/dev/ttyUSB2`).
    pub device: Option<String>,
    /// Whether something answered `AT` with `OK`.
    pub answers_at: bool,
    /// Identity, SIM and network facts when it answered.
    pub info: Option<ModemInfo>,
    /// What went wrong, in words, with what to do about it.
    pub problem: Option<String>,
}

/// Every candidate port: `/dev/ttyUSB*`, `/dev/ttyACM*` and `/dev/serial/by-id/*` (by-id links
/// replace the device they point to, because their names survive re-plugging).
pub fn candidate_ports() -> Vec<(String, Option<String>)> {
    let mut by_id: Vec<(String, String)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/dev/serial/by-id") {
        for e in dir.flatten() {
            let p = e.path();
            if let Ok(target) = std::fs::canonicalize(&p) {
                by_id.push((p.display().to_string(), target.display().to_string()));
            }
        }
    }
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/dev") {
        let mut devs: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("ttyUSB") || n.starts_with("ttyACM"))
            })
            .collect();
        devs.sort_by_key(|p| natural_key(p));
        for d in devs {
            let d = d.display().to_string();
            match by_id.iter().find(|(_, t)| *t == d) {
                Some((link, target)) => out.push((link.clone(), Some(target.clone()))),
                None => out.push((d, None)),
            }
        }
    }
    // by-id links whose target was not listed (unusual names).
    for (link, target) in by_id {
        if !out.iter().any(|(p, _)| *p == link) {
            out.push((link, Some(target)));
        }
    }
    out
}

fn natural_key(p: &Path) -> (String, u32) {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let digits: String = name.chars().filter(char::is_ascii_digit).collect();
    let stem: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
    (stem, digits.parse().unwrap_or(0))
}

/// Turns an error opening a serial port into a sentence that says what to do.
pub fn explain_open_error(e: &tokio_serial::Error) -> String {
    let raw = e.to_string();
    let lower = raw.to_ascii_lowercase();
    // serialport says "Unable to acquire exclusive lock on serial port" for a port another
    // process opened exclusively (as smsgate does), the kernel "busy" for one in use.
    if lower.contains("busy")
        || lower.contains("resource temporarily unavailable")
        || lower.contains("exclusive lock")
    {
        format!(
            "{raw}: the port is held by another program. A running smsgate daemon holds its modems' \
             ports (`systemctl status smsgate`; `smsgate status` asks it about the modem instead, or \
             stop it first). ModemManager grabs modems on most desktop distributions: stop it \
             (`sudo systemctl stop ModemManager`) or tell it to leave the modem alone with a udev \
             rule (ENV{{ID_MM_DEVICE_IGNORE}}=\"1\", see systemd/99-smsgate-modem.rules); \
             `sudo fuser -v <port>` shows who holds it"
        )
    } else if lower.contains("permission denied") {
        format!(
            "{raw}: no permission. Add the user to the dialout group (`sudo usermod -aG dialout $USER`, \
             then log in again), or run smsgate as its service user"
        )
    } else if lower.contains("no such file") || lower.contains("not found") {
        format!(
            "{raw}: no such device. Is the modem plugged in? `smsgate modem probe` lists the ports \
             that exist; ttyUSB numbers change after a reset, so prefer /dev/serial/by-id/…"
        )
    } else {
        raw
    }
}

/// Probes one port: opens it, asks `AT`, and when it answers reads identity, SIM, network,
/// SMSC and storage. Changes nothing on the modem but echo and error verbosity.
pub async fn probe_port(port: &str, baud: u32, timeout: Duration) -> ProbeReport {
    let device = std::fs::canonicalize(port)
        .ok()
        .map(|p| p.display().to_string())
        .filter(|d| d != port);
    let mut report = ProbeReport {
        port: port.to_string(),
        device,
        answers_at: false,
        info: None,
        problem: None,
    };
    let stream = match super::actor::open_port(port, baud).await {
        Ok(s) => s,
        Err(e) => {
            report.problem = Some(match e {
                ModemError::Open { reason, .. } => reason,
                other => other.to_string(),
            });
            return report;
        }
    };
    let mut at = AtPort::new(stream);
    let per_command = Duration::from_millis(1500).min(timeout);
    let work = async {
        init::sync(&mut at, per_command).await?;
        let mut info = ModemInfo::default();
        init::basic_settings(&mut at, per_command).await?;
        init::identify(&mut at, per_command, &mut info).await?;
        info.sim = match init::sim_state(&mut at, per_command).await {
            Ok(s) => Some(s),
            Err(ModemError::Cme { code: 10 }) => Some("no SIM inserted".into()),
            Err(e @ (ModemError::PortLost(_) | ModemError::Timeout { .. })) => return Err(e),
            Err(e) => Some(format!("unknown ({e})")),
        };
        init::network(&mut at, per_command, &mut info).await?;
        if let Ok(r) = at.command("AT+CSCA?", per_command).await {
            info.smsc = r.value("+CSCA:").and_then(info::parse_csca);
        }
        if let Ok(r) = at.command("AT+CPMS?", per_command).await {
            info.storage = r.value("+CPMS:").and_then(info::parse_cpms);
        }
        Ok::<_, ModemError>(info)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(info)) => {
            report.answers_at = true;
            report.problem = sim_problem(&info);
            report.info = Some(info);
        }
        Ok(Err(ModemError::Timeout { .. })) | Err(_) => {
            report.problem = Some(
                "no answer to AT: not the modem's AT port (modems expose several ttyUSB ports and \
                 only one answers AT; on Quectel EC25 and SIMCom SIM7600 it is usually the third, \
                 interface 2), or the modem is frozen (unplug it for 10 seconds)"
                    .into(),
            );
        }
        Ok(Err(e)) => report.problem = Some(e.to_string()),
    }
    report
}

fn sim_problem(info: &ModemInfo) -> Option<String> {
    let sim = info.sim.as_deref()?;
    match sim {
        "READY" => None,
        "SIM PIN" => {
            Some("the SIM asks for its PIN: set `pin` for this modem in the config".into())
        }
        "SIM PUK" => Some("the SIM is blocked and needs its PUK: unlock it in a phone".into()),
        other => Some(format!("SIM not ready: {other}")),
    }
}

/// When no port answers: look for USB modems the kernel did not give a serial port, and say why.
pub fn usb_hints() -> Vec<String> {
    let mut hints = Vec::new();
    // Huawei HiLink sticks are network interfaces with no AT port at all.
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        for e in dir.flatten() {
            let vendor = std::fs::read_to_string(e.path().join("device/../idVendor"))
                .or_else(|_| std::fs::read_to_string(e.path().join("device/../../idVendor")))
                .unwrap_or_default();
            if vendor.trim() == "12d1" {
                hints.push(format!(
                    "network interface {} is a Huawei stick in HiLink mode: it has no AT port. Switch it \
                     to \"stick\" (serial) mode, e.g. with usb_modeswitch and the vendor's switch command, \
                     or use a modem with stick firmware",
                    e.file_name().to_string_lossy()
                ));
            }
        }
    }
    // Known modem vendors whose device only shows mass storage: still in CD-ROM mode.
    const MODEM_VENDORS: &[(&str, &str)] = &[
        ("12d1", "Huawei"),
        ("19d2", "ZTE"),
        ("1e0e", "SIMCom"),
        ("2c7c", "Quectel"),
        ("1199", "Sierra Wireless"),
        ("1bc7", "Telit"),
        ("05c6", "Qualcomm-based"),
    ];
    if let Ok(dir) = std::fs::read_dir("/sys/bus/usb/devices") {
        for e in dir.flatten() {
            let p = e.path();
            let Ok(vendor) = std::fs::read_to_string(p.join("idVendor")) else {
                continue;
            };
            let Some((_, name)) = MODEM_VENDORS.iter().find(|(v, _)| *v == vendor.trim()) else {
                continue;
            };
            let product = std::fs::read_to_string(p.join("idProduct")).unwrap_or_default();
            let has_serial = std::fs::read_dir(&p)
                .into_iter()
                .flatten()
                .flatten()
                .any(|i| {
                    std::fs::read_dir(i.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                        .any(|f| f.file_name().to_string_lossy().starts_with("ttyUSB"))
                });
            if !has_serial {
                hints.push(format!(
                    "USB device {}:{} ({name}) has no serial port: it is probably still in CD-ROM mode. \
                     Install usb-modeswitch (`sudo apt install usb-modeswitch`) and replug it, and make sure \
                     the option driver is loaded (`sudo modprobe option`)",
                    vendor.trim(),
                    product.trim()
                ));
            }
        }
    }
    hints
}
