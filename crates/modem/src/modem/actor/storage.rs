//! Messages stored on the SIM: reading a slot (`AT+CMGR`, `AT+CMGL`), deciding what its content
//! is for (`take_slot`), handing it to the consumer, deleting it only after the acknowledgement,
//! and the sweep that finds what a missed `+CMTI` left behind.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{AckToken, Actor, Inbound, ModemEvent, Source, Unreadable, is_fatal};
use crate::modem::at::AtPort;
use crate::modem::error::ModemError;
use crate::modem::info;
use crate::modem::stored::{self, Content, StoredAnswer};
use crate::sms;

impl Actor {
    /// Marks a stored message as handed to the consumer; its source for the acknowledgement.
    fn hand_over(&mut self, memory: &str, index: u32) -> Source {
        self.handovers += 1;
        self.awaiting_ack
            .insert((memory.to_string(), index), self.handovers);
        Source::Stored {
            memory: memory.to_string(),
            index,
            handover: self.handovers,
        }
    }

    pub(super) fn queue_read(&mut self, memory: String, index: u32, report: bool) {
        let key = (memory.clone(), index);
        if self.awaiting_ack.contains_key(&key)
            || self
                .reads
                .iter()
                .any(|(m, i, _)| *m == memory && *i == index)
        {
            return;
        }
        self.reads.push_back((memory, index, report));
    }

    async fn select_memory<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        memory: &str,
    ) -> Result<(), ModemError> {
        if self.memory.as_deref() == Some(memory) {
            return Ok(());
        }
        at.command(&format!("AT+CPMS=\"{memory}\""), self.cfg.command_timeout)
            .await?;
        self.memory = Some(memory.to_string());
        Ok(())
    }

    pub(super) async fn read_stored<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        memory: &str,
        index: u32,
        report: bool,
    ) -> Result<(), ModemError> {
        // Handed over since this read was queued (a sweep found it): it is the consumer's.
        if self.awaiting_ack.contains_key(&(memory.to_string(), index)) {
            return Ok(());
        }
        if let Err(e) = self.select_memory(at, memory).await {
            if is_fatal(&e) {
                return Err(e);
            }
            tracing::warn!(modem = %self.cfg.name, memory, error = %e, "cannot select message memory");
            return Ok(());
        }
        let Some(mut answer) = self.cmgr(at, memory, index).await? else {
            return self.process_urcs(at).await;
        };
        if let Content::Unreadable { text_mode, .. } = answer.content {
            // Read once more before keeping it raw: line noise garbles one read, not two, and a
            // modem that fell back to text mode (a reset, another program) is put back first.
            if text_mode {
                tracing::warn!(modem = %self.cfg.name, memory, index, "answer in text mode; setting PDU mode again");
                if let Err(e) = at.command("AT+CMGF=0", self.cfg.command_timeout).await
                    && is_fatal(&e)
                {
                    return Err(e);
                }
            }
            if let Some(again) = self.cmgr(at, memory, index).await? {
                if again.is_for_the_gateway()
                    && !matches!(again.content, Content::Unreadable { .. })
                {
                    answer = again;
                } else if again.answer != answer.answer {
                    answer.answer = format!("{}\r\n\r\n{}", answer.answer, again.answer);
                }
            }
        }
        self.take_slot(at, memory, index, answer, report).await?;
        self.process_urcs(at).await
    }

    /// `AT+CMGR=<index>` in the selected memory, read; `None` when the modem refused it.
    async fn cmgr<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        memory: &str,
        index: u32,
    ) -> Result<Option<StoredAnswer>, ModemError> {
        match at
            .command(&format!("AT+CMGR={index}"), self.cfg.command_timeout)
            .await
        {
            Ok(r) => Ok(Some(stored::parse_cmgr(&r.lines))),
            Err(e) if is_fatal(&e) => Err(e),
            Err(e) => {
                tracing::warn!(modem = %self.cfg.name, memory, index, error = %e, "cannot read stored message");
                Ok(None)
            }
        }
    }

    /// Does with a read slot what its content asks: a message or report is handed over, an
    /// unreadable answer is handed over to be kept raw (and freed once kept), a phone's own
    /// text is left alone and counted, or deleted with `purge_foreign`.
    async fn take_slot<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        memory: &str,
        index: u32,
        answer: StoredAnswer,
        report: bool,
    ) -> Result<(), ModemError> {
        let slot = (memory.to_string(), index);
        let foreign = matches!(answer.content, Content::Foreign { .. });
        if !foreign && self.foreign.remove(&slot) {
            self.publish_foreign();
        }
        match answer.content {
            Content::Empty => {
                tracing::debug!(modem = %self.cfg.name, memory, index, "empty message slot");
            }
            Content::Message(pdu) => {
                let source = self.hand_over(memory, index);
                self.deliver(pdu, source, false, None).await;
            }
            Content::Report(pdu) => {
                let source = self.hand_over(memory, index);
                self.deliver(pdu, source, true, None).await;
            }
            Content::Unreadable { reason, pdu, .. } => {
                tracing::warn!(modem = %self.cfg.name, memory, index, reason, answer = answer.answer,
                    "unreadable stored message; kept raw, then deleted from the SIM");
                let source = self.hand_over(memory, index);
                let unreadable = Unreadable {
                    reason,
                    answer: answer.answer,
                };
                self.deliver(pdu, source, report, Some(unreadable)).await;
            }
            Content::Foreign { what } if self.cfg.purge_foreign => {
                tracing::info!(modem = %self.cfg.name, memory, index, what, answer = answer.answer,
                    "a phone's own text in the SIM; deleting it (purge_foreign)");
                self.select_memory(at, memory).await?;
                match at
                    .command(&format!("AT+CMGD={index}"), self.cfg.command_timeout)
                    .await
                {
                    Err(e) if is_fatal(&e) => return Err(e),
                    Err(e) => {
                        tracing::warn!(modem = %self.cfg.name, memory, index, error = %e, "cannot delete stored message")
                    }
                    Ok(_) => {}
                }
                if self.foreign.remove(&slot) {
                    self.publish_foreign();
                }
            }
            Content::Foreign { what } => {
                if self.foreign.insert(slot) {
                    tracing::info!(modem = %self.cfg.name, memory, index, what,
                        "a phone's own text in the SIM, not a customer's; left there ([inbound] purge_foreign deletes such texts)");
                    self.publish_foreign();
                }
            }
        }
        Ok(())
    }

    /// The SIM's country: from its own number (configured or `AT+CNUM`), else from the MCC
    /// of its IMSI.
    fn region(&self) -> Option<String> {
        let status = self.status.borrow();
        let info = &status.info;
        let by_number = info.own_number.as_deref().and_then(|n| {
            let parsed = phonenumber::parse(None, n).ok()?;
            let id = parsed.country().id()?;
            Some(id.as_ref().to_string())
        });
        by_number.or_else(|| {
            info.imsi
                .as_deref()
                .and_then(crate::modem::mcc::region_of_imsi)
                .map(str::to_string)
        })
    }

    fn publish_foreign(&self) {
        let n = u32::try_from(self.foreign.len()).unwrap_or(u32::MAX);
        self.status.send_modify(|s| s.foreign_messages = n);
    }

    /// Hands a PDU to the consumer. An unreadable answer always goes as a message: it is kept
    /// with the inbound messages, where an admin sees it.
    pub(super) async fn deliver(
        &mut self,
        pdu: Vec<u8>,
        source: Source,
        report_hint: bool,
        unreadable: Option<Unreadable>,
    ) {
        let decoded = sms::decode_lenient(&pdu, true).map(|(p, _)| p);
        let is_report = match &decoded {
            _ if unreadable.is_some() => false,
            Ok(sms::Pdu::StatusReport(_)) => true,
            Ok(_) => false,
            Err(_) => report_hint,
        };
        self.status.send_modify(|s| s.received += 1);
        let inbound = Inbound {
            modem: self.cfg.name.clone(),
            source: source.clone(),
            pdu,
            decoded,
            unreadable,
            region: self.region(),
            ack: Some(AckToken {
                tx: self.ack_tx.clone(),
                source,
            }),
        };
        let ev = if is_report {
            ModemEvent::StatusReport(inbound)
        } else {
            ModemEvent::Message(inbound)
        };
        if self.events.send(ev).await.is_err() {
            tracing::debug!(modem = %self.cfg.name, "no consumer for inbound events; message stays on the modem");
        }
    }

    pub(super) async fn acknowledge<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        source: Source,
    ) -> Result<(), ModemError> {
        match source {
            Source::Stored {
                memory,
                index,
                handover,
            } => {
                let key = (memory.clone(), index);
                if self.awaiting_ack.get(&key) != Some(&handover) {
                    // An acknowledgement of an earlier hand-over of this slot: the slot may hold
                    // another message by now. The current hand-over deletes it.
                    tracing::debug!(modem = %self.cfg.name, memory, index, "stale acknowledgement; nothing deleted");
                    return self.process_urcs(at).await;
                }
                self.awaiting_ack.remove(&key);
                self.select_memory(at, &memory).await?;
                match at
                    .command(&format!("AT+CMGD={index}"), self.cfg.command_timeout)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_fatal(&e) => return Err(e),
                    Err(e) => {
                        tracing::warn!(modem = %self.cfg.name, memory, index, error = %e, "cannot delete stored message")
                    }
                }
            }
            Source::Direct if self.cnma => match at
                .command("AT+CNMA", self.cfg.command_timeout)
                .await
            {
                Ok(_) => {}
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => tracing::debug!(modem = %self.cfg.name, error = %e, "AT+CNMA refused"),
            },
            Source::Direct => {}
        }
        self.process_urcs(at).await
    }

    /// Lists everything in the message stores (`AT+CMGL=4`) and hands over what is not already
    /// with the consumer: the status report store `SR` first (a report whose `+CDSI` was missed,
    /// while the daemon was down, is found only there), then the receive store, left selected.
    pub(super) async fn sweep<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
    ) -> Result<(), ModemError> {
        if self.sr_listable && self.receive_memory.as_deref().is_some_and(|m| m != "SR") {
            match self.select_memory(at, "SR").await {
                Ok(()) => self.sweep_memory(at, "SR", true).await?,
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => {
                    // Reports kept elsewhere (in the receive store, or not at all).
                    tracing::debug!(modem = %self.cfg.name, error = %e, "no status report store to list");
                    self.sr_listable = false;
                }
            }
        }
        if let Some(m) = self.receive_memory.clone() {
            match self.select_memory(at, &m).await {
                Ok(()) => {}
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(modem = %self.cfg.name, memory = m, error = %e, "cannot select the receive store to list it");
                    return self.process_urcs(at).await;
                }
            }
        }
        let memory = self.memory.clone().unwrap_or_else(|| "SM".to_string());
        self.sweep_memory(at, &memory, false).await?;
        if let Ok(r) = at.command("AT+CPMS?", self.cfg.command_timeout).await {
            let storage = r.value("+CPMS:").and_then(info::parse_cpms);
            self.update_info(|i| i.storage = storage.or(i.storage.take()));
        }
        self.process_urcs(at).await
    }

    /// Lists the selected store, `memory`, and hands over what is not already with the consumer.
    async fn sweep_memory<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        memory: &str,
        reports: bool,
    ) -> Result<(), ModemError> {
        let resp = match at.command("AT+CMGL=4", self.cfg.command_timeout * 6).await {
            Ok(r) => r,
            Err(e) if is_fatal(&e) => return Err(e),
            Err(e) => {
                tracing::debug!(modem = %self.cfg.name, memory, error = %e, "AT+CMGL=4 refused");
                return Ok(());
            }
        };
        let mut seen = Vec::new();
        for answer in stored::parse_cmgl(&resp.lines) {
            let Some(index) = answer.index else {
                tracing::warn!(modem = %self.cfg.name, memory, answer = answer.answer, "a listed message without a readable index");
                continue;
            };
            seen.push(index);
            if self.awaiting_ack.contains_key(&(memory.to_string(), index)) {
                continue;
            }
            if matches!(answer.content, Content::Unreadable { .. }) {
                // Read on its own (and once more) before it is kept raw.
                self.read_stored(at, memory, index, reports).await?;
            } else {
                self.take_slot(at, memory, index, answer, reports).await?;
            }
        }
        // Phone texts in slots the listing no longer shows have gone.
        let before = self.foreign.len();
        self.foreign
            .retain(|(m, i)| m != memory || seen.contains(i));
        if self.foreign.len() != before {
            self.publish_foreign();
        }
        Ok(())
    }
}
