//! The commands on the SIM's message stores: `AT+CMGR` reads a slot, `AT+CMGL` lists a store,
//! `AT+CMGD` deletes; a slot written verbatim is answered byte for byte.

use super::Actor;
use super::commands::After;
use crate::sim::at::Failure;
use crate::sim::state::{REC_READ, REC_UNREAD};
use crate::sms::to_hex;

impl Actor {
    pub(super) fn cmgr(&mut self, index: Option<u32>) -> Result<Vec<String>, Failure> {
        self.need_sms()?;
        let index = index.ok_or(Failure::Cms(321))?;
        let mem = self.settings.mem[0];
        let mut s = self.shared.lock();
        let store = s.stores.get_mut(mem);
        if !store.in_range(index) {
            return Err(Failure::Cms(321));
        }
        // An empty slot answers a bare OK, like most modems.
        let Some(slot) = store.get_mut(index) else {
            return Ok(Vec::new());
        };
        let lines = match &slot.verbatim {
            // One block written as it is: `\r\n<answer>`, its last line ending supplied by
            // `respond`.
            Some(v) => verbatim_block(v, self.cfg.line_ending),
            None => vec![
                format!("+CMGR: {},,{}", slot.stat, slot.tpdu_len()),
                to_hex(&slot.pdu),
            ],
        };
        if slot.stat == REC_UNREAD {
            slot.stat = REC_READ;
        }
        Ok(lines)
    }

    pub(super) fn cmgl(&mut self, stat: Option<u32>) -> Result<Vec<String>, Failure> {
        self.need_sms()?;
        let stat = match stat {
            Some(s @ 0..=4) => s as u8,
            _ => return Err(Failure::Cms(302)),
        };
        let mem = self.settings.mem[0];
        let mut s = self.shared.lock();
        let mut lines = Vec::new();
        for (index, slot) in s.stores.get_mut(mem).list_mut(stat) {
            if let Some(v) = &slot.verbatim {
                // The device's `+CMGR:` answer listed: `+CMGL: <index>,` before its fields.
                let listed = match v.get(..6) {
                    Some(h) if h.eq_ignore_ascii_case("+CMGR:") => {
                        format!("+CMGL: {index},{}", v[6..].trim_start())
                    }
                    _ => v.clone(),
                };
                lines.extend(verbatim_block(&listed, self.cfg.line_ending));
                if slot.stat == REC_UNREAD {
                    slot.stat = REC_READ;
                }
                continue;
            }
            lines.push(format!("+CMGL: {index},{},,{}", slot.stat, slot.tpdu_len()));
            lines.push(to_hex(&slot.pdu));
            if slot.stat == REC_UNREAD {
                slot.stat = REC_READ;
            }
        }
        Ok(lines)
    }

    pub(super) fn cmgd(
        &mut self,
        index: Option<u32>,
        flag: Option<Option<u32>>,
    ) -> Result<Vec<String>, Failure> {
        self.need_sms()?;
        let flag = match flag {
            None => 0,
            Some(Some(f @ 0..=4)) => f,
            Some(_) => return Err(Failure::Cms(302)),
        };
        let mem = self.settings.mem[0];
        {
            let mut s = self.shared.lock();
            let store = s.stores.get_mut(mem);
            let index = index.unwrap_or(0);
            if flag == 0 && !store.in_range(index) {
                return Err(Failure::Cms(321));
            }
            store.delete(index, flag);
        }
        self.after.push(After::Deliver);
        Ok(Vec::new())
    }
}

/// A verbatim answer as one information "line" whose inner line endings are its own: written
/// after `\r\n` and followed by the configured line ending, it comes out byte for byte (an
/// empty answer: nothing, a bare `OK`).
fn verbatim_block(answer: &str, line_ending: &str) -> Vec<String> {
    let body = answer
        .strip_suffix(line_ending)
        .or_else(|| answer.strip_suffix("\r\n"))
        .unwrap_or(answer);
    if body.is_empty() {
        Vec::new()
    } else {
        vec![body.to_string()]
    }
}
