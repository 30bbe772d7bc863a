//! Bringing a modem into a known state: wake it, turn echo off, unlock the SIM, wait until SMS
//! commands work, select PDU mode, storage and indications, and read who and where it is.
//! Plain functions over an [`AtPort`], shared by the driver task and the one-shot CLI tools.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, sleep};

use super::at::AtPort;
use super::error::ModemError;
use super::info::{self, ModemInfo, Registration};

/// Preferred `AT+CNMI` settings, best first. `2,1,0,2,0`: store new messages and indicate them
/// with `+CMTI` (nothing is lost while the daemon is down), status reports stored with `+CDSI`.
/// The fallbacks take status reports directly (`+CDS`) or use buffer mode 1 for modems that
/// reject mode 2 (TS 27.005 §3.4.1).
pub const CNMI_PREFERENCES: &[&str] = &[
    "2,1,0,2,0",
    "2,1,0,1,0",
    "1,1,0,2,0",
    "1,1,0,1,0",
    "2,1,0,0,0",
    "1,1,0,0,0",
];

/// What the SIM asked for, remembered across re-initialisations of one driver: a PIN the SIM
/// refused is never entered again (three wrong tries lock the SIM behind a PUK).
#[derive(Debug, Default, Clone)]
pub struct PinGuard {
    /// The configured PIN was refused once.
    pub rejected: bool,
}

/// Wakes the modem and gets it answering `OK`: ESC (leaves a half-finished `AT+CMGS` prompt),
/// then `AT` up to three times (autobauding modems such as SIM800 need a few).
pub async fn sync<S: AsyncRead + AsyncWrite + Unpin>(
    at: &mut AtPort<S>,
    timeout: Duration,
) -> Result<(), ModemError> {
    at.write_raw(&[0x1B]).await?;
    at.drain(Duration::from_millis(100)).await?;
    let mut last = None;
    for _ in 0..3 {
        match at.command("AT", timeout).await {
            Ok(_) => return Ok(()),
            Err(e @ ModemError::PortLost(_)) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(ModemError::Timeout {
        command: "AT".into(),
        timeout,
    }))
}

/// Echo off and numeric error codes. Failures are ignored: old modems lack `+CMEE`, and echo is
/// recognised either way.
pub async fn basic_settings<S: AsyncRead + AsyncWrite + Unpin>(
    at: &mut AtPort<S>,
    timeout: Duration,
) -> Result<(), ModemError> {
    for cmd in ["ATE0", "AT+CMEE=1"] {
        if let Err(e @ (ModemError::PortLost(_) | ModemError::Timeout { .. })) =
            at.command(cmd, timeout).await
        {
            return Err(e);
        }
    }
    Ok(())
}

/// Reads `AT+CPIN?` (some modems answer without `OK`): `READY`, `SIM PIN`, `SIM PUK`, ….
pub async fn sim_state<S: AsyncRead + AsyncWrite + Unpin>(
    at: &mut AtPort<S>,
    timeout: Duration,
) -> Result<String, ModemError> {
    let resp = at.command_lenient("AT+CPIN?", timeout).await?;
    resp.value("+CPIN:")
        .map(|s| s.trim_matches('"').to_ascii_uppercase())
        .ok_or_else(|| ModemError::Unexpected {
            command: "AT+CPIN?".into(),
            detail: format!("{:?}", resp.lines),
        })
}

/// Makes sure the SIM is unlocked, entering `pin` at most once per lock and never again after
/// the SIM refused it. Waits (up to `ready_timeout`) while the SIM is busy or initialising.
pub async fn unlock_sim<S: AsyncRead + AsyncWrite + Unpin>(
    at: &mut AtPort<S>,
    pin: Option<&str>,
    guard: &mut PinGuard,
    timeout: Duration,
    ready_timeout: Duration,
) -> Result<String, ModemError> {
    let deadline = Instant::now() + ready_timeout;
    let mut entered = false;
    let mut delay = Duration::from_millis(250);
    loop {
        let state = match sim_state(at, timeout).await {
            Ok(s) => s,
            Err(ModemError::Cme { code: 10 }) | Err(ModemError::Cms { code: 310 }) => {
                return Err(ModemError::SimLocked(
                    "no SIM card inserted (CME ERROR 10)".into(),
                ));
            }
            Err(e @ (ModemError::PortLost(_) | ModemError::Timeout { .. })) => return Err(e),
            // SIM busy or still starting (CME 14, 515, plain ERROR): wait and ask again.
            Err(e) => {
                if Instant::now() >= deadline {
                    return Err(e);
                }
                sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        match state.as_str() {
            "READY" => return Ok(state),
            "SIM PIN" if !entered => {
                if guard.rejected {
                    return Err(ModemError::SimLocked(
                        "the SIM refused the configured PIN earlier; it is not tried again (fix `pin` and restart)".into(),
                    ));
                }
                let Some(pin) = pin else {
                    return Err(ModemError::SimLocked(
                        "the SIM asks for a PIN; set `pin` for this modem".into(),
                    ));
                };
                if pin.is_empty() || !pin.chars().all(|c| c.is_ascii_digit()) || pin.len() > 8 {
                    return Err(ModemError::SimLocked(
                        "the configured PIN is not 4 to 8 digits; not sent".into(),
                    ));
                }
                entered = true;
                match at.command(&format!("AT+CPIN=\"{pin}\""), timeout).await {
                    Ok(_) => {}
                    Err(ModemError::Cme { code: 16 }) => {
                        guard.rejected = true;
                        return Err(ModemError::SimLocked(
                            "the SIM refused the configured PIN (CME ERROR 16: incorrect password); it will not be tried again".into(),
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
            "SIM PUK" | "SIM PUK2" => {
                guard.rejected = true;
                return Err(ModemError::SimLocked(
                    "the SIM is blocked and needs its PUK: unlock it in a phone".into(),
                ));
            }
            other => {
                // After entering the PIN the SIM takes a moment; `SIM PIN` again or any other
                // state (PH-SIM PIN, NOT READY) is waited on until the deadline.
                if Instant::now() >= deadline {
                    return Err(ModemError::SimLocked(format!(
                        "SIM state stays {other:?} (AT+CPIN?)"
                    )));
                }
                sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Waits until SMS commands work: some modems refuse them until `SMS Ready`/`SMS DONE`; a
/// succeeding `AT+CPMS?` says the SMS part is up. Returns the storage use.
pub async fn wait_sms_ready<S: AsyncRead + AsyncWrite + Unpin>(
    at: &mut AtPort<S>,
    timeout: Duration,
    ready_timeout: Duration,
) -> Result<Option<info::Storage>, ModemError> {
    let deadline = Instant::now() + ready_timeout;
    let mut delay = Duration::from_millis(250);
    loop {
        match at.command("AT+CPMS?", timeout).await {
            Ok(r) => return Ok(r.value("+CPMS:").and_then(info::parse_cpms)),
            Err(e @ (ModemError::PortLost(_) | ModemError::Timeout { .. })) => return Err(e),
            Err(e) => {
                if Instant::now() >= deadline {
                    return Err(e);
                }
                sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Identity: manufacturer, model, revision, IMEI, IMSI, own number. Missing answers stay `None`.
pub async fn identify<S: AsyncRead + AsyncWrite + Unpin>(
    at: &mut AtPort<S>,
    timeout: Duration,
    info: &mut ModemInfo,
) -> Result<(), ModemError> {
    info.manufacturer = text_of(at, "AT+CGMI", "+CGMI:", timeout).await?;
    info.model = text_of(at, "AT+CGMM", "+CGMM:", timeout).await?;
    info.revision = text_of(at, "AT+CGMR", "+CGMR:", timeout).await?;
    info.imei = text_of(at, "AT+CGSN", "+CGSN:", timeout).await?;
    info.imsi = text_of(at, "AT+CIMI", "+CIMI:", timeout).await?;
    info.own_number = match at.command("AT+CNUM", timeout).await {
        Ok(r) => r.value("+CNUM:").and_then(info::parse_cnum),
        Err(e @ (ModemError::PortLost(_) | ModemError::Timeout { .. })) => return Err(e),
        Err(_) => None,
    };
    Ok(())
}

async fn text_of<S: AsyncRead + AsyncWrite + Unpin>(
    at: &mut AtPort<S>,
    cmd: &str,
    prefix: &str,
    timeout: Duration,
) -> Result<Option<String>, ModemError> {
    match at.command(cmd, timeout).await {
        Ok(r) => Ok(r.text(prefix)),
        Err(e @ (ModemError::PortLost(_) | ModemError::Timeout { .. })) => Err(e),
        Err(_) => Ok(None),
    }
}

/// Network: registration, operator, signal.
pub async fn network<S: AsyncRead + AsyncWrite + Unpin>(
    at: &mut AtPort<S>,
    timeout: Duration,
    info: &mut ModemInfo,
) -> Result<(), ModemError> {
    let soft = |r: Result<super::at::Response, ModemError>| match r {
        Ok(r) => Ok(Some(r)),
        Err(e @ (ModemError::PortLost(_) | ModemError::Timeout { .. })) => Err(e),
        Err(_) => Ok(None),
    };
    if let Some(r) = soft(at.command("AT+CREG?", timeout).await)? {
        info.registration = r
            .value("+CREG:")
            .and_then(|v| super::codec::parse_registration(v, false))
            .map(Registration::from_stat);
    }
    // Long alphanumeric operator names; some modems refuse the format change, which is fine.
    soft(at.command("AT+COPS=3,0", timeout).await)?;
    if let Some(r) = soft(at.command("AT+COPS?", timeout * 3).await)? {
        info.operator = r.value("+COPS:").and_then(info::parse_cops);
    }
    if let Some(r) = soft(at.command("AT+CSQ", timeout).await)? {
        info.signal = r.value("+CSQ:").and_then(info::parse_csq);
    }
    Ok(())
}

/// SMS settings: PDU mode (required), message storage, new-message indications with fallbacks,
/// the SMSC (set from `smsc` when the SIM has none), and `AT+CMMS=2` where supported.
pub async fn configure_sms<S: AsyncRead + AsyncWrite + Unpin>(
    at: &mut AtPort<S>,
    timeout: Duration,
    smsc: Option<&str>,
    info: &mut ModemInfo,
) -> Result<(), ModemError> {
    at.command("AT+CMGF=0", timeout).await?;
    let soft = |r: Result<super::at::Response, ModemError>| match r {
        Ok(r) => Ok(Some(r)),
        Err(e @ (ModemError::PortLost(_) | ModemError::Timeout { .. })) => Err(e),
        Err(_) => Ok(None),
    };
    // Everything in the SIM store, read, written and received alike; keep the modem's own
    // choice when it refuses.
    if let Some(r) = soft(at.command("AT+CPMS=\"SM\",\"SM\",\"SM\"", timeout).await)?
        && let Some(mut s) = r.value("+CPMS:").and_then(info::parse_cpms)
    {
        s.memory.get_or_insert_with(|| "SM".to_string());
        info.storage = Some(s);
    }
    info.cnmi = None;
    for setting in CNMI_PREFERENCES {
        if soft(at.command(&format!("AT+CNMI={setting}"), timeout).await)?.is_some() {
            info.cnmi = Some((*setting).to_string());
            break;
        }
    }
    if let Some(r) = soft(at.command("AT+CSCA?", timeout).await)? {
        info.smsc = r.value("+CSCA:").and_then(info::parse_csca);
    }
    if info.smsc.is_none()
        && let Some(n) = smsc
    {
        let toa = if n.starts_with('+') { 145 } else { 129 };
        if soft(at.command(&format!("AT+CSCA=\"{n}\",{toa}"), timeout).await)?.is_some() {
            info.smsc = Some(n.to_string());
        }
    }
    info.cmms = soft(at.command("AT+CMMS=2", timeout).await)?.is_some();
    Ok(())
}
