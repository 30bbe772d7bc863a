//! What the modem writes: information lines and final result codes framed as the config asks,
//! URCs (buffered while `AT+CNMI` mode is 0), direct deliveries awaiting `AT+CNMA`, and noise.

use std::time::Duration;

use tracing::warn;

use super::{Actor, Event};
use crate::sim::MAX_HELD;
use crate::sim::at::Failure;
use crate::sim::state::SimLock;
use crate::sms::to_hex;

/// Output kept for a client that does not read; beyond it output is dropped.
const MAX_OUT: usize = 1 << 20;
/// SMS indications held back while `AT+CNMI` mode is 0.
const MAX_BUFFERED_URCS: usize = 64;

impl Actor {
    /// Queues bytes for the client; dropped while frozen, unplugged or nobody listens (a real
    /// port does not keep a modem's output for the next opener).
    pub(super) fn emit(&mut self, bytes: &[u8]) {
        if self.check_frozen() || self.pty.is_none() || !self.connected {
            return;
        }
        if self.out.len() + bytes.len() > MAX_OUT {
            warn!("client does not read; modem output dropped");
            return;
        }
        self.out.extend_from_slice(bytes);
    }

    /// `\r\n<line><line ending>`: a URC or an information line.
    pub(super) fn urc(&mut self, line: &str) {
        let framed = format!("\r\n{line}{}", self.cfg.line_ending);
        self.emit(framed.as_bytes());
    }

    /// Writes information blocks and the final result code.
    pub(super) fn respond(&mut self, info: &[Vec<String>], result: Result<(), Failure>) {
        let le = self.cfg.line_ending;
        let mut text = String::new();
        for block in info {
            text.push_str("\r\n");
            for l in block {
                text.push_str(l);
                text.push_str(le);
            }
        }
        self.emit(text.as_bytes());
        if !info.is_empty() && self.noise_on() && self.rng.bool() {
            self.noise();
        }
        self.final_result(result);
    }

    pub(super) fn final_result(&mut self, result: Result<(), Failure>) {
        let line = match result {
            Ok(()) => "OK".to_string(),
            Err(f) => f.line(self.settings.cmee, self.cfg.cms_error_ignores_cmee),
        };
        self.urc(&line);
    }

    pub(super) fn noise_on(&self) -> bool {
        self.shared.lock().knobs.noise
    }

    pub(super) fn noise(&mut self) {
        const NOISE: [&str; 6] = [
            "^RSSI: 17",
            "^HCSQ: \"LTE\",52,45,133,21",
            "^MODE: 17,17",
            "^BOOT: 20952548,0,0,0,72",
            "RING",
            "+CREG: 1",
        ];
        let i = self.rng.usize(..NOISE.len());
        self.urc(NOISE[i]);
    }

    pub(super) fn noise_interval(&mut self) -> Duration {
        Duration::from_millis(self.rng.u64(100..=1000))
    }

    pub(super) fn boot_urcs(&mut self) {
        self.urc("RDY");
        self.urc("+CFUN: 1");
        let cpin = self.cpin_line();
        self.urc(&cpin);
        if self.sim == SimLock::Ready {
            let epoch = self.epoch;
            self.schedule(self.cfg.boot_delay, Event::SmsReady { epoch });
        }
    }

    /// An SMS indication (`+CMTI`, `+CMT`, `+CDS`, `+CDSI`): buffered while `AT+CNMI` mode is 0.
    pub(super) fn indicate(&mut self, bytes: Vec<u8>) {
        if self.settings.cnmi.mode == 0 {
            if self.buffered_urcs.len() < MAX_BUFFERED_URCS {
                self.buffered_urcs.push_back(bytes);
            }
        } else {
            self.emit(&bytes);
        }
    }

    /// A direct delivery; with `AT+CSMS=1` it must be acknowledged with `AT+CNMA`.
    pub(super) fn deliver_direct(&mut self, bytes: Vec<u8>) {
        if self.settings.csms == 1
            && let Some(timeout) = self.cfg.cnma_timeout
        {
            let id = self.next_ack_id;
            self.next_ack_id += 1;
            if self.unacked.len() < MAX_HELD {
                self.unacked.push_back((id, bytes.clone()));
                self.schedule(timeout, Event::AckTimeout { id });
            }
        }
        self.indicate(bytes);
    }

    pub(super) fn two_line(&self, header: &str, pdu: &[u8]) -> Vec<u8> {
        let le = self.cfg.line_ending;
        format!("\r\n{header}{le}{}{le}", to_hex(pdu)).into_bytes()
    }
}
