//! One AT conversation over a byte stream: send a command, collect its response lines up to the
//! final result, and set aside every unsolicited result code that arrives meanwhile.
//!
//! `AtPort` is not a task; the modem actor owns one (so does `smsgate modem probe|send`).
//! It is generic over the stream so the same code drives a serial port or a TCP serial server.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};
use tokio_util::codec::Framed;

use super::codec::{
    AtCodec, FinalResult, Frame, LineKind, Urc, classify, parse_urc, response_prefix,
};
use super::error::ModemError;

/// Ctrl-Z: ends the PDU after the `> ` prompt.
const CTRL_Z: u8 = 0x1A;
/// ESC: abandons the PDU after the prompt; nothing is sent.
const ESC: u8 = 0x1B;

/// An unsolicited event, with the PDU line for the two-line forms (`+CMT:`, `+CDS:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrcEvent {
    /// The parsed URC.
    pub urc: Urc,
    /// The line as it came.
    pub line: String,
    /// The PDU line that followed `+CMT:` / `+CDS:`.
    pub pdu: Option<String>,
}

/// The information lines of a successful command (echo and URCs removed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// Lines in order.
    pub lines: Vec<String>,
}

impl Response {
    /// The arguments of the first line starting with `prefix` (e.g. `+CSQ:` → `20,99`).
    pub fn value(&self, prefix: &str) -> Option<&str> {
        // `get`, not indexing: a garbled line may have a multi-byte character there.
        self.lines.iter().find_map(|l| {
            l.get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .and_then(|_| l.get(prefix.len()..))
                .map(str::trim)
        })
    }

    /// The first line that is not a `+XXX:` information line (e.g. the answer to `AT+CGMI`), with
    /// a `+CGMI:`-style prefix removed when the modem adds one.
    pub fn text(&self, prefix: &str) -> Option<String> {
        self.value(prefix)
            .map(|v| v.trim_matches('"').to_string())
            .or_else(|| self.lines.first().map(|l| l.trim().to_string()))
            .filter(|s| !s.is_empty())
    }
}

/// Why a PDU send failed, and whether the message may already be out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// What happened.
    pub error: ModemError,
    /// `true` when the failure came after the PDU was handed over (no answer after Ctrl-Z, port
    /// lost mid-send): the network may have the message. Never resend such a message blindly.
    pub maybe_sent: bool,
}

/// An AT conversation over a stream.
pub struct AtPort<S> {
    framed: Framed<S, AtCodec>,
    /// URCs that arrived during commands, waiting for the owner.
    urcs: VecDeque<UrcEvent>,
    /// A `+CMT:`/`+CDS:` header whose PDU line has not arrived yet.
    pending_pdu: Option<(Urc, String)>,
    /// What the modem may echo back: the last command and the last PDU.
    echo: Vec<String>,
    /// Upper bound on queued URCs; beyond it the oldest noise is dropped (never message URCs).
    max_urcs: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AtPort<S> {
    /// Wraps a stream.
    pub fn new(stream: S) -> Self {
        AtPort {
            framed: Framed::new(stream, AtCodec::new()),
            urcs: VecDeque::new(),
            pending_pdu: None,
            echo: Vec::new(),
            max_urcs: 1024,
        }
    }

    /// Takes the URCs collected so far.
    pub fn take_urcs(&mut self) -> Vec<UrcEvent> {
        self.urcs.drain(..).collect()
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ModemError> {
        self.framed
            .send(bytes)
            .await
            .map_err(|e| ModemError::PortLost(e.to_string()))
    }

    fn is_echo(&self, line: &str) -> bool {
        self.echo.iter().any(|e| e.eq_ignore_ascii_case(line))
    }

    fn push_urc(&mut self, line: String) {
        let urc = parse_urc(&line);
        if matches!(urc, Urc::DirectMessage | Urc::DirectStatusReport) {
            self.pending_pdu = Some((urc, line));
            return;
        }
        self.queue(UrcEvent {
            urc,
            line,
            pdu: None,
        });
    }

    fn queue(&mut self, ev: UrcEvent) {
        if self.urcs.len() >= self.max_urcs {
            // Drop the oldest noise first; message URCs are never dropped.
            if let Some(pos) = self
                .urcs
                .iter()
                .position(|e| matches!(e.urc, Urc::Other(_)))
            {
                self.urcs.remove(pos);
            }
        }
        self.urcs.push_back(ev);
    }

    /// Reads one frame, routing URCs and the PDU lines of two-line URCs. Returns `Some(line)`
    /// for a line the caller must look at, `Some(None)`… see the variants of [`Step`].
    async fn step(&mut self, deadline: Instant, expect: Option<&str>) -> Result<Step, ModemError> {
        let frame = match timeout_at(deadline, self.framed.next()).await {
            Err(_) => return Ok(Step::TimedOut),
            Ok(None) => return Err(ModemError::PortLost("port closed (end of file)".into())),
            Ok(Some(Err(e))) => return Err(ModemError::PortLost(e.to_string())),
            Ok(Some(Ok(f))) => f,
        };
        let line = match frame {
            Frame::Prompt => return Ok(Step::Prompt),
            Frame::Line(l) => l,
        };
        if let Some((urc, header)) = self.pending_pdu.take() {
            self.queue(UrcEvent {
                urc,
                line: header,
                pdu: Some(line),
            });
            return Ok(Step::Handled);
        }
        if self.is_echo(&line) {
            return Ok(Step::Handled);
        }
        match classify(&line, expect) {
            LineKind::Final(FinalResult::NoCarrier(_)) | LineKind::Urc => {
                // This driver never dials: a call's NO CARRIER is noise, like RING.
                self.push_urc(line);
                Ok(Step::Handled)
            }
            LineKind::Final(f) => Ok(Step::Final(f)),
            LineKind::Data => Ok(Step::Data(line)),
        }
    }

    /// Runs one command (without the trailing `\r`) and returns its information lines.
    pub async fn command(&mut self, cmd: &str, timeout: Duration) -> Result<Response, ModemError> {
        self.command_inner(cmd, timeout, false).await
    }

    /// Like [`AtPort::command`], for commands some modems answer without a final `OK` (Wavecom and
    /// Sierra answer `AT+CPIN?` with `+CPIN: READY` alone): once the expected information line has
    /// come, a short wait for `OK` ends the command either way.
    pub async fn command_lenient(
        &mut self,
        cmd: &str,
        timeout: Duration,
    ) -> Result<Response, ModemError> {
        self.command_inner(cmd, timeout, true).await
    }

    async fn command_inner(
        &mut self,
        cmd: &str,
        timeout: Duration,
        lenient: bool,
    ) -> Result<Response, ModemError> {
        let expect = response_prefix(cmd);
        self.echo = vec![cmd.to_string()];
        let mut out = Vec::with_capacity(cmd.len() + 1);
        out.extend_from_slice(cmd.as_bytes());
        out.push(b'\r');
        self.write(&out).await?;
        let mut deadline = Instant::now() + timeout;
        let mut resp = Response::default();
        loop {
            match self.step(deadline, expect.as_deref()).await? {
                Step::TimedOut => {
                    if lenient && !resp.lines.is_empty() {
                        return Ok(resp);
                    }
                    return Err(ModemError::Timeout {
                        command: cmd.to_string(),
                        timeout,
                    });
                }
                Step::Handled | Step::Prompt => {}
                Step::Data(line) => {
                    let matches_expect = expect
                        .as_deref()
                        .is_some_and(|p| line.to_ascii_uppercase().starts_with(p));
                    resp.lines.push(line);
                    if lenient && matches_expect {
                        deadline = deadline.min(Instant::now() + Duration::from_millis(300));
                    }
                }
                Step::Final(f) => return final_to_result(cmd, f, resp),
            }
        }
    }

    /// Sends one SMS-SUBMIT PDU: `AT+CMGS=<tpdu_length>`, the prompt, the PDU and Ctrl-Z, then
    /// `+CMGS: <mr>`. Returns the modem's message reference.
    pub async fn send_pdu(
        &mut self,
        tpdu_length: usize,
        pdu_hex: &str,
        prompt_timeout: Duration,
        send_timeout: Duration,
    ) -> Result<u8, SendFailure> {
        let not_sent = |error| SendFailure {
            error,
            maybe_sent: false,
        };
        let cmd = format!("AT+CMGS={tpdu_length}");
        self.echo = vec![cmd.clone(), pdu_hex.to_string()];
        self.write(format!("{cmd}\r").as_bytes())
            .await
            .map_err(not_sent)?;
        let deadline = Instant::now() + prompt_timeout;
        loop {
            match self
                .step(deadline, Some("+CMGS:"))
                .await
                .map_err(not_sent)?
            {
                Step::Prompt => break,
                Step::TimedOut => {
                    // Leave the modem in a known state: ESC abandons a prompt that comes late.
                    let _ = self.write(&[ESC]).await;
                    return Err(not_sent(ModemError::Timeout {
                        command: cmd,
                        timeout: prompt_timeout,
                    }));
                }
                Step::Final(f) => {
                    return Err(not_sent(
                        match final_to_result(&cmd, f, Response::default()) {
                            Err(e) => e,
                            Ok(_) => ModemError::Unexpected {
                                command: cmd,
                                detail: "OK instead of the > prompt".into(),
                            },
                        },
                    ));
                }
                Step::Handled | Step::Data(_) => {}
            }
        }
        let mut body = Vec::with_capacity(pdu_hex.len() + 1);
        body.extend_from_slice(pdu_hex.as_bytes());
        body.push(CTRL_Z);
        let maybe = |error| SendFailure {
            error,
            maybe_sent: true,
        };
        self.write(&body).await.map_err(maybe)?;
        let deadline = Instant::now() + send_timeout;
        let mut resp = Response::default();
        loop {
            match self.step(deadline, Some("+CMGS:")).await.map_err(maybe)? {
                Step::TimedOut => {
                    return Err(maybe(ModemError::Timeout {
                        command: cmd,
                        timeout: send_timeout,
                    }));
                }
                Step::Handled | Step::Prompt => {}
                Step::Data(line) => resp.lines.push(line),
                Step::Final(f) => {
                    let resp = final_to_result(&cmd, f, resp).map_err(not_sent)?;
                    // Only the first integer counts: `+CMGS: 12,"timestamp"` exists.
                    let mr = resp
                        .value("+CMGS:")
                        .and_then(|v| {
                            v.split(|c: char| !c.is_ascii_digit())
                                .find(|s| !s.is_empty())
                                .and_then(|s| s.parse::<u16>().ok())
                        })
                        .ok_or_else(|| {
                            maybe(ModemError::Unexpected {
                                command: cmd.clone(),
                                detail: format!("OK without +CMGS: <mr> ({:?})", resp.lines),
                            })
                        })?;
                    return Ok((mr % 256) as u8);
                }
            }
        }
    }

    /// Writes raw bytes (ESC to leave a stuck prompt, a lone `AT` to wake an autobauding modem).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ModemError> {
        self.write(bytes).await
    }

    /// Waits for the next unsolicited event (queued ones first). Lines that are not URCs while no
    /// command runs (a late `OK` of a timed-out command, garbage) are dropped. Cancel-safe: all
    /// state lives in `self` between awaits.
    pub async fn next_urc(&mut self) -> Result<UrcEvent, ModemError> {
        loop {
            if let Some(ev) = self.urcs.pop_front() {
                return Ok(ev);
            }
            let far = Instant::now() + Duration::from_secs(3600);
            match self.step(far, None).await? {
                Step::Data(line) => tracing::debug!(line, "ignoring line outside a command"),
                Step::Final(f) => tracing::debug!(?f, "ignoring final result outside a command"),
                Step::Handled | Step::Prompt | Step::TimedOut => {}
            }
        }
    }

    /// Reads and drops whatever arrives for `quiet`, keeping URCs (used after a timeout so a late
    /// answer is not taken for the next command's).
    pub async fn drain(&mut self, quiet: Duration) -> Result<(), ModemError> {
        loop {
            let deadline = Instant::now() + quiet;
            match self.step(deadline, None).await? {
                Step::TimedOut => return Ok(()),
                _ => continue,
            }
        }
    }
}

/// One frame's meaning for the caller.
enum Step {
    TimedOut,
    Prompt,
    Handled,
    Data(String),
    Final(FinalResult),
}

fn final_to_result(cmd: &str, f: FinalResult, resp: Response) -> Result<Response, ModemError> {
    match f {
        FinalResult::Ok => Ok(resp),
        FinalResult::Error => Err(ModemError::Error {
            command: cmd.to_string(),
        }),
        FinalResult::Cms(code, _) => Err(ModemError::Cms { code }),
        FinalResult::Cme(code, _) => Err(ModemError::Cme { code }),
        FinalResult::NotSupported => Err(ModemError::NotSupported {
            command: cmd.to_string(),
        }),
        FinalResult::NoCarrier(l) => Err(ModemError::Unexpected {
            command: cmd.to_string(),
            detail: l,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_survives_garbled_lines() {
        // Line noise can put a multi-byte character where the prefix would end.
        let r = Response {
            lines: vec![
                "\u{FFFD}\u{FFFD}+CS".into(),
                "+CS\u{FFFD}Q: 1".into(),
                "+csq: 20,99".into(),
            ],
        };
        assert_eq!(r.value("+CSQ:"), Some("20,99"));
        assert_eq!(r.value("+CREG:"), None);
        let garbled = Response {
            lines: vec!["\u{FFFD}ؗ\u{FFFD}eZ45".into()],
        };
        assert_eq!(garbled.value("+CMGS:"), None);
        assert_eq!(
            garbled.text("+CGMI:").as_deref(),
            Some("\u{FFFD}ؗ\u{FFFD}eZ45")
        );
    }
}
