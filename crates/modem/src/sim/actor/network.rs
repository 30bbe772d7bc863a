//! The simulated network: what it answers to a send (after the latency), the messages it accepts
//! (joined into `sent()` and the JSONL log), the status reports it sends back, and the inbound
//! messages it delivers (stored and indicated, or routed directly, or held while the modem
//! cannot take them).

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use tracing::warn;

use super::{Actor, Event};
use crate::sim::at::Failure;
use crate::sim::state::{AcceptedPart, Mem, REC_UNREAD, tpdu_len};
use crate::sim::{MAX_HELD, MAX_SENT_KEPT, SentMessage};
use crate::sms::{Address, Submit, encode_status_report};

/// How soon the network tries again to deliver what the modem could not take.
const HELD_RETRY: Duration = Duration::from_secs(1);

/// The answer of a send, due after the latency.
#[derive(Debug)]
pub(super) enum SendOutcome {
    Accepted {
        mr: u8,
        submit: Box<Submit>,
        submitted: DateTime<FixedOffset>,
    },
    Failed(Failure),
}

impl Actor {
    /// What the network will answer to this SUBMIT.
    pub(super) fn decide(&mut self, default_smsc: bool, submit: Submit) -> SendOutcome {
        let mut s = self.shared.lock();
        if default_smsc && s.stores.smsc.is_empty() {
            return SendOutcome::Failed(Failure::Cms(330));
        }
        if self.cfun != 1 {
            return SendOutcome::Failed(Failure::Cms(331));
        }
        if s.knobs.fail_next > 0 {
            s.knobs.fail_next -= 1;
            return SendOutcome::Failed(Failure::Cms(s.knobs.fail_code));
        }
        if s.knobs.error_rate > 0.0 && self.rng.f64() < s.knobs.error_rate {
            return SendOutcome::Failed(Failure::Cms(s.knobs.error_code));
        }
        let mr = s.stores.next_mr;
        s.stores.next_mr = mr.wrapping_add(1);
        SendOutcome::Accepted {
            mr,
            submit: Box::new(submit),
            submitted: Utc::now().fixed_offset(),
        }
    }

    pub(super) fn send_done(&mut self, outcome: SendOutcome) {
        self.busy = false;
        match outcome {
            SendOutcome::Failed(f) => self.final_result(Err(f)),
            SendOutcome::Accepted {
                mr,
                submit,
                submitted,
            } => {
                self.network_accepts(mr, &submit);
                let (reports, code) = {
                    let s = self.shared.lock();
                    (s.knobs.status_reports, s.knobs.status_code)
                };
                if submit.status_report_requested
                    && let Some(delay) = reports
                {
                    let smsc = self.smsc_address();
                    let pdu = encode_status_report(
                        smsc.as_ref(),
                        mr,
                        &submit.to,
                        &submitted,
                        &Utc::now().fixed_offset(),
                        code,
                    );
                    self.schedule(delay, Event::StatusReport { pdu });
                }
                let le = self.cfg.line_ending;
                self.emit(format!("\r\n+CMGS: {mr}{le}").as_bytes());
                if self.noise_on() && self.rng.bool() {
                    self.noise();
                }
                self.final_result(Ok(()));
            }
        }
        self.drain_input();
    }

    /// Records an accepted part; a complete message goes to `sent()` and the log.
    fn network_accepts(&mut self, mr: u8, submit: &Submit) {
        let concat = submit
            .user_data
            .concat()
            .map(|c| (c.reference, c.part, c.total));
        let part = AcceptedPart {
            body: submit.user_data.body.clone(),
            mr,
        };
        let Some(m) = self.assembler.add(submit.to.to_string(), concat, part) else {
            return;
        };
        let msg = SentMessage {
            to: m.to,
            text: m.text,
            encoding: m.encoding.to_string(),
            parts: m.parts,
            message_references: m.message_references,
            at: Utc::now(),
        };
        if let Some(file) = &mut self.log {
            match serde_json::to_string(&msg) {
                Ok(line) => {
                    if let Err(e) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                        warn!(error = %e, "writing the simulator's JSONL log failed");
                    }
                }
                Err(e) => warn!(error = %e, "serializing a sent message failed"),
            }
        }
        let mut s = self.shared.lock();
        if s.sent.len() >= MAX_SENT_KEPT {
            s.sent.pop_front();
        }
        s.sent.push_back(msg);
    }

    fn smsc_address(&self) -> Option<Address> {
        let smsc = self.shared.lock().stores.smsc.clone();
        Address::parse_number("smsc", &smsc).ok()
    }

    /// Delivers held-back inbound messages while the modem can take them.
    pub(super) fn deliver_held(&mut self) {
        loop {
            let Some(pdu) = self.shared.lock().held.pop_front() else {
                break;
            };
            if let Err(pdu) = self.deliver_inbound(pdu) {
                {
                    let mut s = self.shared.lock();
                    if s.held.len() < MAX_HELD {
                        s.held.push_front(pdu);
                    }
                }
                // Nothing the modem does may come to release it: the network tries again.
                if !self.retry_held {
                    self.retry_held = true;
                    self.schedule_always(HELD_RETRY, Event::RetryHeld);
                }
                break;
            }
        }
    }

    /// Delivers one inbound SMS-DELIVER per `AT+CNMI` `<mt>` (TS 27.005 §3.4.1); gives it back
    /// when the modem cannot take it now.
    fn deliver_inbound(&mut self, pdu: Vec<u8>) -> Result<(), Vec<u8>> {
        if self.pty.is_none() || !self.registered() || !self.sms_ready {
            return Err(pdu);
        }
        if self.settings.cnmi.mt == 2 {
            // Routed to the TE, not stored: lost if nobody listens (why CNMI=2,1 is safer).
            let urc = self.two_line(&format!("+CMT: ,{}", tpdu_len(&pdu)), &pdu);
            self.deliver_direct(urc);
            return Ok(());
        }
        let mem = self.settings.mem[2];
        let index = {
            let mut s = self.shared.lock();
            if s.knobs.storage_full {
                None
            } else {
                s.stores.get_mut(mem).insert(REC_UNREAD, pdu.clone())
            }
        };
        let Some(index) = index else {
            if self.cfg.memfull_urc && !self.memfull_reported {
                self.memfull_reported = true;
                self.urc(&format!("^SMMEMFULL: \"{}\"", mem.name()));
            }
            return Err(pdu);
        };
        self.memfull_reported = false;
        self.indicate_stored(mem, index);
        Ok(())
    }

    /// `+CMTI` for a stored message when `AT+CNMI` `<mt>` asks for it.
    pub(super) fn indicate_stored(&mut self, mem: Mem, index: u32) {
        if matches!(self.settings.cnmi.mt, 1 | 3) {
            let le = self.cfg.line_ending;
            let urc = format!("\r\n+CMTI: \"{}\",{index}{le}", mem.name()).into_bytes();
            self.indicate(urc);
        }
    }

    /// Delivers a status report per `AT+CNMI` `<ds>`: 1 `+CDS`, 2 stored + `+CDSI`, 0 dropped.
    pub(super) fn deliver_report(&mut self, pdu: Vec<u8>) {
        if self.pty.is_none() {
            return;
        }
        match self.settings.cnmi.ds {
            1 => {
                let urc = self.two_line(&format!("+CDS: {}", tpdu_len(&pdu)), &pdu);
                self.deliver_direct(urc);
            }
            2 => {
                let index = self.shared.lock().stores.sr.insert(REC_UNREAD, pdu);
                match index {
                    Some(i) => {
                        let le = self.cfg.line_ending;
                        self.indicate(format!("\r\n+CDSI: \"SR\",{i}{le}").into_bytes());
                    }
                    None => warn!("status report store full; report dropped"),
                }
            }
            _ => {}
        }
    }
}
