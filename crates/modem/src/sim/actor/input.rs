//! Input framing: bytes from the client become command lines (echo, backspace, `A/`), or, after
//! the `> ` prompt, the hex digits of a PDU ended by Ctrl-Z or cancelled by ESC. A complete
//! command line is logged, parsed and run command by command.

use std::io::Write;

use chrono::Utc;
use tracing::warn;

use super::Actor;
use super::commands::{After, Step};
use crate::sim::MAX_COMMANDS_KEPT;
use crate::sim::at::{Failure, MAX_LINE, parse_commands};

/// Input kept while a command is still running (`AT+CMGS` waiting for the network).
const MAX_QUEUED_INPUT: usize = 4096;
/// Hex digits accepted after the prompt (a PDU is at most 12 + 164 octets).
const MAX_PDU_HEX: usize = 1024;

/// What the line discipline of the modem is doing.
#[derive(Debug)]
pub(super) enum Line {
    /// Collecting a command line.
    Command { buf: Vec<u8>, overflow: bool },
    /// Collecting a PDU after the `> ` prompt, until Ctrl-Z or ESC.
    Pdu {
        kind: PduKind,
        declared: usize,
        hex: Vec<u8>,
        bad: bool,
    },
}

impl Line {
    pub(super) fn command() -> Line {
        Line::Command {
            buf: Vec::new(),
            overflow: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum PduKind {
    /// `AT+CMGS`
    Send,
    /// `AT+CMGW` with this `<stat>`.
    Write(u8),
}

impl Actor {
    /// Reads the frozen knob; on thawing, the modem starts over on an empty line.
    pub(super) fn check_frozen(&mut self) -> bool {
        let frozen = self.shared.lock().knobs.frozen;
        if self.frozen && !frozen {
            self.line = Line::command();
            self.queued_input.clear();
        }
        self.frozen = frozen;
        frozen
    }

    pub(super) fn input(&mut self, bytes: &[u8]) {
        if self.check_frozen() {
            return;
        }
        let room = MAX_QUEUED_INPUT.saturating_sub(self.queued_input.len());
        if room < bytes.len() {
            warn!("input while busy overflowed; bytes dropped");
        }
        self.queued_input.extend(bytes.iter().take(room).copied());
        self.drain_input();
    }

    pub(super) fn drain_input(&mut self) {
        while !self.busy {
            let Some(b) = self.queued_input.pop_front() else {
                break;
            };
            self.byte(b);
        }
    }

    fn byte(&mut self, b: u8) {
        if matches!(self.line, Line::Pdu { .. }) {
            self.pdu_byte(b);
            return;
        }
        // A LF right after the CR that ended a line belongs to that line's terminator.
        if b == b'\n' && self.after_cr {
            self.after_cr = false;
            return;
        }
        self.after_cr = false;
        if self.settings.echo {
            self.emit(&[b]);
        }
        let Line::Command { buf, overflow } = &mut self.line else {
            return;
        };
        match b {
            b'\r' => {
                let (buf, overflow) = (std::mem::take(buf), *overflow);
                self.line = Line::command();
                self.after_cr = true;
                self.command_line(&buf, overflow);
            }
            // V.250 §6.2.3 (S5): backspace edits the line.
            0x08 => {
                buf.pop();
            }
            0x20..=0x7E | 0x80..=0xFF => {
                if buf.len() < MAX_LINE {
                    buf.push(b);
                } else {
                    *overflow = true;
                }
                // V.250 §5.2.4: `A/` repeats the last command line, no CR needed.
                if b == b'/' && buf.eq_ignore_ascii_case(b"A/") {
                    self.line = Line::command();
                    let last = self.last_line.clone();
                    if !last.is_empty() {
                        self.command_line(last.as_bytes(), false);
                    }
                }
            }
            // Other control characters (Ctrl-Z, ESC, NUL) mean nothing in command mode.
            _ => {}
        }
    }

    /// A byte after the prompt: hex digits of the PDU, Ctrl-Z to send, ESC to cancel.
    fn pdu_byte(&mut self, b: u8) {
        let Line::Pdu {
            kind,
            declared,
            hex,
            bad,
        } = &mut self.line
        else {
            return;
        };
        match b {
            0x1A => {
                let (kind, declared, hex, bad) = (*kind, *declared, std::mem::take(hex), *bad);
                self.line = Line::command();
                self.pdu_done(kind, declared, &hex, bad);
            }
            0x1B => {
                self.line = Line::command();
                self.final_result(Ok(()));
            }
            // Line breaks and spaces a client may put around the hex are skipped.
            b'\r' | b'\n' | b' ' => {}
            _ => {
                if b.is_ascii_hexdigit() && hex.len() < MAX_PDU_HEX {
                    hex.push(b);
                } else {
                    *bad = true;
                }
                if self.settings.echo {
                    self.emit(&[b]);
                }
            }
        }
    }

    fn command_line(&mut self, raw: &[u8], overflow: bool) {
        let line = String::from_utf8_lossy(raw).trim().to_string();
        if line.is_empty() {
            return;
        }
        // V.250 §5.2.1: a command line starts with AT; anything else is ignored.
        let Some(body) = line
            .get(..2)
            .filter(|p| p.eq_ignore_ascii_case("AT"))
            .and_then(|_| line.get(2..))
        else {
            return;
        };
        {
            let mut s = self.shared.lock();
            if s.commands.len() >= MAX_COMMANDS_KEPT {
                s.commands.pop_front();
            }
            s.commands.push_back(line.clone());
        }
        if let Some(file) = &mut self.command_log {
            let entry = serde_json::json!({ "at": Utc::now(), "line": line });
            if let Err(e) = writeln!(file, "{entry}").and_then(|()| file.flush()) {
                warn!(error = %e, "writing the simulator's command log failed");
            }
        }
        self.last_line = line.clone();
        if overflow {
            self.final_result(Err(Failure::Error));
            return;
        }
        let Some(cmds) = parse_commands(body) else {
            self.final_result(Err(Failure::Error));
            return;
        };
        self.after.clear();
        let mut info = Vec::new();
        for cmd in cmds {
            match self.execute(cmd) {
                Step::Ok(lines) => {
                    if !lines.is_empty() {
                        info.push(lines);
                    }
                }
                Step::Fail(f) => {
                    self.after.clear();
                    self.respond(&info, Err(f));
                    return;
                }
                Step::Prompt => return,
            }
        }
        self.respond(&info, Ok(()));
        for after in std::mem::take(&mut self.after) {
            match after {
                After::BootUrcs => {
                    self.urc("RDY");
                    let cpin = self.cpin_line();
                    self.urc(&cpin);
                    if self.sms_ready {
                        self.urc("SMS Ready");
                    }
                }
                After::Reboot => {
                    self.reset_volatile();
                    if self.cfg.boot_urcs {
                        self.boot_urcs();
                    }
                    self.deliver_held();
                }
                After::CnmiBuffer { flush } => {
                    let urcs = std::mem::take(&mut self.buffered_urcs);
                    if flush {
                        for u in urcs {
                            self.emit(&u);
                        }
                    }
                }
                After::Deliver => self.deliver_held(),
            }
        }
    }
}
