//! The session: the AT conversation over one connection. Opens the port, initialises the modem,
//! serves requests, URCs and acknowledgements until the port is lost, climbs the recovery
//! ladder after a timeout, polls registration and signal while idle.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, MissedTickBehavior, interval};

use super::handle::{Request, reject};
use super::{Actor, ModemEvent, PartOutcome, Source, is_fatal};
use crate::modem::at::{AtPort, SendFailure, UrcEvent};
use crate::modem::codec::Urc;
use crate::modem::error::ModemError;
use crate::modem::info::{self, ModemInfo, ModemState, Registration};
use crate::modem::init;
use crate::sms;

/// Any stream the driver can speak AT over.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Opens a port: a serial device, `tcp://host:port` (raw TCP) or `rfc2217://host:port`
/// (Telnet COM-PORT-OPTION), see [`crate::modem::remote`].
pub async fn open_port(port: &str, baud: u32) -> Result<Box<dyn Stream>, ModemError> {
    let failed = |e: std::io::Error| ModemError::Open {
        port: port.to_string(),
        reason: e.to_string(),
    };
    if let Some(addr) = port.strip_prefix("tcp://") {
        return Ok(Box::new(
            crate::modem::remote::connect(addr).await.map_err(failed)?,
        ));
    }
    if let Some(addr) = port.strip_prefix("rfc2217://") {
        return Ok(Box::new(
            crate::modem::remote::open_rfc2217(addr, baud)
                .await
                .map_err(failed)?,
        ));
    }
    use tokio_serial::SerialPortBuilderExt;
    let s = tokio_serial::new(port, baud)
        .open_native_async()
        .map_err(|e| ModemError::Open {
            port: port.to_string(),
            reason: crate::modem::probe::explain_open_error(&e),
        })?;
    Ok(Box::new(s))
}

/// Why `serve` returned.
enum Exit {
    Cancelled,
    Lost(ModemError),
}

impl Actor {
    fn set_state(&mut self, state: ModemState, reason: Option<String>) {
        let mut changed = false;
        self.status.send_if_modified(|s| {
            changed = s.state != state || (reason.is_some() && s.last_error != reason);
            s.state = state;
            if reason.is_some() {
                if s.last_error != reason {
                    s.last_error_at = Some(chrono::Utc::now());
                }
                s.last_error = reason.clone();
            }
            changed
        });
        if changed {
            match state {
                ModemState::Down => {
                    tracing::warn!(modem = %self.cfg.name, reason = reason.as_deref().unwrap_or(""), "modem down")
                }
                _ => tracing::info!(modem = %self.cfg.name, state = state.as_str(), "modem state"),
            }
            // Best effort: a full event channel must not stall state reporting forever.
            let _ = self.events.try_send(ModemEvent::State {
                modem: self.cfg.name.clone(),
                state,
                reason,
            });
        }
    }

    pub(super) fn update_info(&self, f: impl FnOnce(&mut ModemInfo)) {
        self.status.send_modify(|s| f(&mut s.info));
    }

    pub(super) async fn run(mut self) {
        let mut backoff = Duration::from_millis(250);
        while !self.cancel.is_cancelled() {
            // A bug must not take the modem away for good: a panic ends this session only (the
            // port is closed with it) and the driver starts over, as after a lost port. A send
            // it interrupted is reported as maybe sent (see `ModemHandle::send_parts`).
            let session = AssertUnwindSafe(self.session(&mut backoff))
                .catch_unwind()
                .await;
            match session {
                Ok(true) => break,
                Ok(false) => {}
                Err(panic) => {
                    let what = crate::panic_text(panic.as_ref());
                    tracing::error!(modem = %self.cfg.name, panic = %what,
                        "modem driver failed; reopening the port");
                    self.set_state(
                        ModemState::Down,
                        Some(format!("driver failed ({what}); reopening the port")),
                    );
                    self.memory = None;
                    self.receive_memory = None;
                    self.reads.clear();
                    self.awaiting_ack.clear();
                    self.ussd = None;
                    if self.idle_wait(backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(self.cfg.max_backoff);
                }
            }
        }
        self.set_state(ModemState::Stopped, None);
        // Answer whatever is still queued.
        self.requests.close();
        while let Some(r) = self.requests.recv().await {
            reject(r, ModemError::Stopped);
        }
    }

    /// One session: open the port, initialise, serve until the port is lost. Returns `true`
    /// when cancelled.
    async fn session(&mut self, backoff: &mut Duration) -> bool {
        self.set_state(ModemState::Connecting, None);
        let stream = match open_port(&self.cfg.port, self.cfg.baud).await {
            Ok(s) => s,
            Err(e) => {
                self.set_state(ModemState::Down, Some(e.to_string()));
                if self.idle_wait(*backoff).await {
                    return true;
                }
                *backoff = (*backoff * 2).min(self.cfg.max_backoff);
                return false;
            }
        };
        let mut at = AtPort::new(stream);
        self.set_state(ModemState::Initialising, None);
        if let Err(e) = self.initialise(&mut at).await {
            self.set_state(ModemState::Down, Some(e.to_string()));
            drop(at);
            if self.idle_wait(*backoff).await {
                return true;
            }
            *backoff = (*backoff * 2).min(self.cfg.max_backoff);
            return false;
        }
        *backoff = Duration::from_millis(250);
        self.set_state(ModemState::Up, None);
        match self.serve(&mut at).await {
            Exit::Cancelled => true,
            Exit::Lost(e) => {
                self.set_state(ModemState::Down, Some(e.to_string()));
                drop(at);
                self.memory = None;
                self.idle_wait(*backoff).await
            }
        }
    }

    /// Waits `d` while answering requests with "not ready". Returns `true` when cancelled.
    async fn idle_wait(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return true,
                _ = tokio::time::sleep_until(until) => return false,
                r = self.requests.recv() => match r {
                    Some(r) => {
                        let why = self.status.borrow().last_error.clone().unwrap_or_else(|| "connecting".into());
                        reject(r, ModemError::NotReady(why));
                    }
                    None => return true,
                },
            }
        }
    }

    async fn initialise<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
    ) -> Result<(), ModemError> {
        let t = self.cfg.command_timeout;
        init::sync(at, t).await?;
        init::basic_settings(at, t).await?;
        let sim = init::unlock_sim(
            at,
            self.cfg.pin.as_deref(),
            &mut self.pin,
            t,
            self.cfg.ready_timeout,
        )
        .await;
        let sim = match sim {
            Ok(s) => s,
            Err(e) => {
                self.update_info(|i| i.sim = Some(e.to_string()));
                return Err(e);
            }
        };
        init::wait_sms_ready(at, t, self.cfg.ready_timeout).await?;
        let mut info = ModemInfo {
            sim: Some(sim),
            ..ModemInfo::default()
        };
        // Direct deliveries need AT+CNMA when the SMS service is phase 2+ (AT+CSMS=1).
        self.cnma = match at.command("AT+CSMS?", t).await {
            Ok(r) => r
                .value("+CSMS:")
                .and_then(|v| info::fields(v).first().cloned())
                .is_some_and(|s| s == "1"),
            Err(e) if is_fatal(&e) => return Err(e),
            Err(_) => false,
        };
        init::configure_sms(at, t, self.cfg.smsc.as_deref(), &mut info).await?;
        init::identify(at, t, &mut info).await?;
        if let Some(n) = &self.cfg.number {
            info.own_number = Some(n.clone());
        }
        init::network(at, t, &mut info).await?;
        self.memory = info.storage.as_ref().and_then(|s| s.memory.clone());
        self.receive_memory = self.memory.clone();
        self.sr_listable = true;
        tracing::info!(
            modem = %self.cfg.name,
            manufacturer = info.manufacturer.as_deref().unwrap_or("?"),
            model = info.model.as_deref().unwrap_or("?"),
            operator = info.operator.as_deref().unwrap_or("?"),
            cnmi = info.cnmi.as_deref().unwrap_or("none"),
            "modem initialised"
        );
        self.status.send_modify(|s| s.info = info);
        // URCs that came during initialisation: boot banners are stale now; keep the rest.
        for ev in at.take_urcs() {
            if !matches!(ev.urc, Urc::Boot(_) | Urc::Ready(_)) {
                self.on_urc(ev).await?;
            }
        }
        self.sweep(at).await?;
        Ok(())
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&mut self, at: &mut AtPort<S>) -> Exit {
        let mut health = interval(self.cfg.health_interval);
        health.set_missed_tick_behavior(MissedTickBehavior::Delay);
        health.reset();
        let mut sweep = interval(self.cfg.sweep_interval);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        sweep.reset();
        loop {
            let step = self.serve_one(at, &mut health, &mut sweep).await;
            match step {
                Ok(true) => {}
                Ok(false) => return Exit::Cancelled,
                Err(e) if matches!(e, ModemError::Timeout { .. }) => {
                    if let Err(e) = self.recover(at, e).await {
                        return Exit::Lost(e);
                    }
                }
                Err(e) if is_fatal(&e) => return Exit::Lost(e),
                Err(e) => {
                    // A modem that rebooted (asks for the PIN again, says RDY): initialise again.
                    tracing::warn!(modem = %self.cfg.name, error = %e, "re-initialising modem");
                    self.set_state(ModemState::Initialising, Some(e.to_string()));
                    if let Err(e) = self.initialise(at).await {
                        return Exit::Lost(e);
                    }
                    self.set_state(ModemState::Up, None);
                }
            }
        }
    }

    /// One turn of the serving loop. `Ok(false)`: cancelled.
    async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        health: &mut tokio::time::Interval,
        sweep: &mut tokio::time::Interval,
    ) -> Result<bool, ModemError> {
        if std::mem::take(&mut self.sweep_due) {
            self.sweep(at).await?;
            return Ok(true);
        }
        // Stored messages first, but never between the parts of one send (requests are whole),
        // and taking turns with acknowledgements and requests that are waiting.
        if !self.reads.is_empty() {
            if std::mem::take(&mut self.read_last) {
                let mut served = false;
                if let Ok(source) = self.ack_rx.try_recv() {
                    self.acknowledge(at, source).await?;
                    served = true;
                }
                if let Ok(r) = self.requests.try_recv() {
                    self.handle(at, r).await?;
                    served = true;
                }
                if served {
                    return Ok(true);
                }
            }
            if let Some((memory, index, report)) = self.reads.pop_front() {
                self.read_last = true;
                self.read_stored(at, &memory, index, report).await?;
                return Ok(true);
            }
        }
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Ok(false),
            Some(source) = self.ack_rx.recv() => {
                self.acknowledge(at, source).await?;
                Ok(true)
            }
            r = self.requests.recv() => match r {
                Some(r) => {
                    self.handle(at, r).await?;
                    Ok(true)
                }
                None => Ok(false),
            },
            ev = at.next_urc() => {
                self.on_urc(ev?).await?;
                Ok(true)
            }
            _ = tokio::time::sleep_until(self.ussd.as_ref().map_or_else(tokio::time::Instant::now, |u| u.1)), if self.ussd.is_some() => {
                if let Some((reply, _, timeout)) = self.ussd.take() {
                    let _ = reply.send(Err(ModemError::Timeout {
                        command: "AT+CUSD (the operator's answer)".into(),
                        timeout,
                    }));
                    // End the session on the modem's side too.
                    let _ = at.command("AT+CUSD=2", self.cfg.command_timeout).await;
                }
                Ok(true)
            }
            _ = health.tick() => {
                // Keep the link free during a burst of sends (AT+CMMS): poll only when idle.
                if self.last_send.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    self.poll_health(at).await?;
                }
                Ok(true)
            }
            _ = sweep.tick() => {
                self.sweep(at).await?;
                Ok(true)
            }
        }
    }

    /// The recovery ladder after a timeout: ESC + `AT` (a stuck prompt, a busy modem), then a
    /// full re-initialisation. If the modem still does not answer, the port is closed and
    /// reopened by the caller.
    async fn recover<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        cause: ModemError,
    ) -> Result<(), ModemError> {
        self.set_state(ModemState::Recovering, Some(cause.to_string()));
        init::sync(at, Duration::from_secs(2)).await.map_err(|_| {
            ModemError::PortLost(format!(
                "modem stopped answering ({cause}); reopening the port"
            ))
        })?;
        self.set_state(ModemState::Initialising, None);
        self.initialise(at).await?;
        self.set_state(ModemState::Up, None);
        Ok(())
    }

    async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        req: Request,
    ) -> Result<(), ModemError> {
        match req {
            Request::Command {
                command,
                timeout,
                reply,
            } => {
                let r = at.command(&command, timeout).await;
                let fatal = r.as_ref().err().filter(|e| is_fatal(e)).cloned();
                let _ = reply.send(r);
                if let Some(e) = fatal {
                    return Err(e);
                }
                self.process_urcs(at).await
            }
            Request::Ussd {
                code,
                timeout,
                reply,
            } => {
                if self.ussd.is_some() {
                    let _ = reply.send(Err(ModemError::Unexpected {
                        command: "AT+CUSD".into(),
                        detail: "another USSD request is waiting for its answer".into(),
                    }));
                    return Ok(());
                }
                let t = self.cfg.command_timeout;
                let mut r = at.command(&format!("AT+CUSD=1,\"{code}\",15"), t).await;
                if matches!(r, Err(ModemError::Cme { .. } | ModemError::Error { .. }))
                    && let Some(packed) = crate::modem::ussd::pack_code(&code)
                {
                    // Some firmwares (Huawei) want the code packed in GSM 7-bit hex.
                    r = at.command(&format!("AT+CUSD=1,\"{packed}\",15"), t).await;
                }
                match r {
                    Ok(resp) => match resp.value("+CUSD:").and_then(crate::modem::ussd::parse) {
                        // Some modems answer before their OK.
                        Some(a) => {
                            let _ = reply.send(Ok(a));
                        }
                        None => {
                            self.ussd =
                                Some((reply, tokio::time::Instant::now() + timeout, timeout));
                        }
                    },
                    Err(e) => {
                        let fatal = is_fatal(&e).then(|| e.clone());
                        let _ = reply.send(Err(e));
                        if let Some(e) = fatal {
                            return Err(e);
                        }
                    }
                }
                self.process_urcs(at).await
            }
            Request::Send { parts, reply } => {
                let mut outcomes = Vec::with_capacity(parts.len());
                let mut fatal = None;
                let mut reinit = None;
                for part in &parts {
                    if fatal.is_some()
                        || reinit.is_some()
                        || outcomes
                            .iter()
                            .any(|o| !matches!(o, PartOutcome::Sent { .. }))
                    {
                        outcomes.push(PartOutcome::NotAttempted);
                        continue;
                    }
                    let r = at
                        .send_pdu(
                            part.tpdu_length,
                            &part.hex(),
                            self.cfg.prompt_timeout,
                            self.cfg.send_timeout,
                        )
                        .await;
                    self.last_send = Some(Instant::now());
                    match r {
                        Ok(mr) => {
                            // It works again: an earlier error is history now.
                            self.status.send_modify(|s| {
                                s.sent_parts += 1;
                                s.last_error = None;
                                s.last_error_at = None;
                            });
                            outcomes.push(PartOutcome::Sent {
                                message_reference: mr,
                            });
                        }
                        Err(SendFailure { error, maybe_sent }) => {
                            self.status.send_modify(|s| {
                                s.failed_parts += 1;
                                s.last_error = Some(error.to_string());
                                s.last_error_at = Some(chrono::Utc::now());
                            });
                            tracing::warn!(modem = %self.cfg.name, %error, maybe_sent, "send failed");
                            if is_fatal(&error) {
                                fatal = Some(error.clone());
                            } else if matches!(
                                error,
                                ModemError::Cms { code: 311 | 310 }
                                    | ModemError::Cme { code: 10 | 11 }
                            ) {
                                // The SIM asks for its PIN again: the modem rebooted.
                                reinit = Some(error.clone());
                            }
                            outcomes.push(PartOutcome::Failed { error, maybe_sent });
                        }
                    }
                }
                let _ = reply.send(Ok(outcomes));
                if let Some(e) = fatal.or(reinit) {
                    return Err(e);
                }
                self.process_urcs(at).await
            }
        }
    }

    /// Handles URCs that arrived during a command.
    pub(super) async fn process_urcs<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
    ) -> Result<(), ModemError> {
        for ev in at.take_urcs() {
            self.on_urc(ev).await?;
        }
        Ok(())
    }

    async fn on_urc(&mut self, ev: UrcEvent) -> Result<(), ModemError> {
        match ev.urc {
            Urc::NewMessage { memory, index } => {
                self.queue_read(memory, index, false);
            }
            Urc::NewStatusReport { memory, index } => {
                self.queue_read(memory, index, true);
            }
            Urc::DirectMessage | Urc::DirectStatusReport => {
                let report = matches!(ev.urc, Urc::DirectStatusReport);
                let Some(line) = ev.pdu else { return Ok(()) };
                let pdu = match sms::parse_hex(&line) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(modem = %self.cfg.name, line, error = %e, "unreadable PDU after {}", ev.line);
                        return Ok(());
                    }
                };
                self.deliver(pdu, Source::Direct, report, None).await;
            }
            Urc::Registration(stat) => {
                let reg = stat.map(Registration::from_stat);
                self.update_info(|i| i.registration = reg);
            }
            Urc::Boot(line) => {
                return Err(ModemError::Unexpected {
                    command: String::new(),
                    detail: format!("modem restarted ({line})"),
                });
            }
            Urc::StorageFull => {
                tracing::warn!(modem = %self.cfg.name, "modem reports its message store full; sweeping");
                self.sweep_due = true;
            }
            Urc::Ussd(args) => match (self.ussd.take(), crate::modem::ussd::parse(&args)) {
                (Some((reply, ..)), Some(a)) => {
                    let _ = reply.send(Ok(a));
                }
                (waiting, parsed) => {
                    self.ussd = waiting;
                    tracing::info!(modem = %self.cfg.name, answer = ?parsed.and_then(|a| a.text), "USSD message from the network");
                }
            },
            Urc::Ready(line) | Urc::Other(line) => {
                tracing::trace!(modem = %self.cfg.name, line, "urc");
            }
        }
        Ok(())
    }

    async fn poll_health<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
    ) -> Result<(), ModemError> {
        let t = self.cfg.command_timeout;
        let reg = at.command("AT+CREG?", t).await;
        let csq = at.command("AT+CSQ", t).await;
        for r in [&reg, &csq] {
            if let Err(e) = r
                && is_fatal(e)
            {
                return Err(e.clone());
            }
        }
        // Both answered, registered, and up: the modem works, an earlier error is history.
        let works = reg.is_ok() && csq.is_ok();
        let registration = reg.ok().and_then(|r| {
            r.value("+CREG:")
                .and_then(|v| crate::modem::codec::parse_registration(v, false))
                .map(Registration::from_stat)
        });
        let signal = csq
            .ok()
            .and_then(|r| r.value("+CSQ:").and_then(info::parse_csq));
        self.update_info(|i| {
            if registration.is_some() {
                i.registration = registration;
            }
            if signal.is_some() {
                i.signal = signal;
            }
        });
        if works && registration.is_some_and(Registration::is_registered) {
            self.status.send_if_modified(|s| {
                let stale = s.state == ModemState::Up && s.last_error.is_some();
                if stale {
                    s.last_error = None;
                    s.last_error_at = None;
                }
                stale
            });
        }
        self.process_urcs(at).await
    }
}
