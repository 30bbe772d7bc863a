//! What the rest of the crate calls: [`spawn`] starts a driver and gives its [`ModemHandle`],
//! whose methods become requests on the task's channel and wait for the answer.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Actor, ModemConfig, ModemEvent};
use crate::modem::at::Response;
use crate::modem::error::ModemError;
use crate::modem::info::{ModemState, ModemStatus};
use crate::modem::init::PinGuard;
use crate::sms::{self, EncodedPart, SubmitOptions};

/// The outcome of one part of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    /// Accepted by the network with this TP-MR.
    Sent {
        /// The modem's message reference (`+CMGS: <mr>`).
        message_reference: u8,
    },
    /// Failed. `maybe_sent`: the failure came after the PDU was handed over.
    Failed {
        /// What happened.
        error: ModemError,
        /// Whether the network may have it anyway.
        maybe_sent: bool,
    },
    /// Not tried because an earlier part failed.
    NotAttempted,
}

pub(super) enum Request {
    Send {
        parts: Vec<EncodedPart>,
        reply: oneshot::Sender<Result<Vec<PartOutcome>, ModemError>>,
    },
    Command {
        command: String,
        timeout: Duration,
        reply: oneshot::Sender<Result<Response, ModemError>>,
    },
    Ussd {
        code: String,
        timeout: Duration,
        reply: UssdReply,
    },
}

pub(super) type UssdReply = oneshot::Sender<Result<crate::modem::ussd::UssdAnswer, ModemError>>;

/// A cheap, cloneable handle to a running driver.
#[derive(Clone)]
pub struct ModemHandle {
    name: String,
    tx: mpsc::Sender<Request>,
    status: watch::Receiver<ModemStatus>,
    concat_reference: Arc<AtomicU8>,
}

impl ModemHandle {
    /// The modem's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The latest status.
    pub fn status(&self) -> ModemStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<ModemStatus> {
        self.status.clone()
    }

    /// Waits until the modem is up, or `timeout` passes. Returns whether it is up.
    pub async fn wait_up(&self, timeout: Duration) -> bool {
        let mut rx = self.status.clone();
        tokio::time::timeout(timeout, rx.wait_for(|s| s.state == ModemState::Up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The next 8-bit concatenation reference for a multi-part message from this modem.
    pub fn next_concat_reference(&self) -> u8 {
        self.concat_reference.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends already-encoded parts back to back. `Err` means nothing was attempted (modem not up,
    /// driver stopped); otherwise one outcome per part.
    ///
    /// When the driver drops the request without an answer (it failed in the middle of it),
    /// nobody knows how far it got: every part is then `Failed` with `maybe_sent`, so that the
    /// message becomes `unknown` rather than being sent twice.
    pub async fn send_parts(
        &self,
        parts: Vec<EncodedPart>,
    ) -> Result<Vec<PartOutcome>, ModemError> {
        let n = parts.len();
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Send { parts, reply })
            .await
            .map_err(|_| ModemError::Stopped)?;
        match rx.await {
            Ok(outcome) => outcome,
            Err(_) => Ok((0..n)
                .map(|_| PartOutcome::Failed {
                    error: ModemError::Stopped,
                    maybe_sent: true,
                })
                .collect()),
        }
    }

    /// Encodes `text` for `to` (with a fresh concatenation reference) and sends it.
    pub async fn send_text(
        &self,
        to: &str,
        text: &str,
        opts: &SubmitOptions,
    ) -> Result<Vec<PartOutcome>, SendTextError> {
        let opts = SubmitOptions {
            concat_reference: self.next_concat_reference(),
            ..opts.clone()
        };
        let msg = sms::encode_submit(to, text, &opts).map_err(SendTextError::Encode)?;
        self.send_parts(msg.parts)
            .await
            .map_err(SendTextError::Modem)
    }

    /// Sends a USSD code (`*100#`) and waits up to `timeout` for the operator's answer. The
    /// code must pass [`crate::modem::ussd::valid_code`].
    pub async fn ussd(
        &self,
        code: &str,
        timeout: Duration,
    ) -> Result<crate::modem::ussd::UssdAnswer, ModemError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Ussd {
                code: code.to_string(),
                timeout,
                reply,
            })
            .await
            .map_err(|_| ModemError::Stopped)?;
        rx.await.map_err(|_| ModemError::Stopped)?
    }

    /// Runs a raw AT command (for admin tools: USSD, diagnostics).
    pub async fn command(&self, command: &str, timeout: Duration) -> Result<Response, ModemError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Command {
                command: command.to_string(),
                timeout,
                reply,
            })
            .await
            .map_err(|_| ModemError::Stopped)?;
        rx.await.map_err(|_| ModemError::Stopped)?
    }
}

/// Why [`ModemHandle::send_text`] failed before any part went out.
#[derive(Debug, thiserror::Error)]
pub enum SendTextError {
    /// The text or number cannot be encoded.
    #[error(transparent)]
    Encode(sms::EncodeError),
    /// The modem is not available.
    #[error(transparent)]
    Modem(ModemError),
}

/// Starts the driver task. Events go to `events` (the task waits when it is full, so nothing is
/// dropped); the task stops when `cancel` fires.
pub fn spawn(
    cfg: ModemConfig,
    events: mpsc::Sender<ModemEvent>,
    cancel: CancellationToken,
) -> (ModemHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let status = ModemStatus {
        name: cfg.name.clone(),
        port: cfg.port.clone(),
        ..ModemStatus::default()
    };
    let (status_tx, status_rx) = watch::channel(status);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let handle = ModemHandle {
        name: cfg.name.clone(),
        tx,
        status: status_rx,
        concat_reference: Arc::new(AtomicU8::new(fastrand::u8(..))),
    };
    let actor = Actor {
        cfg,
        events,
        requests: rx,
        status: status_tx,
        ack_tx,
        ack_rx,
        cancel,
        pin: PinGuard::default(),
        reads: VecDeque::new(),
        read_last: false,
        awaiting_ack: HashMap::new(),
        handovers: 0,
        memory: None,
        receive_memory: None,
        sr_listable: true,
        cnma: false,
        last_send: None,
        sweep_due: false,
        ussd: None,
        foreign: Default::default(),
    };
    let task = tokio::spawn(actor.run());
    (handle, task)
}

pub(super) fn reject(r: Request, e: ModemError) {
    match r {
        Request::Send { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Request::Command { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Request::Ussd { reply, .. } => {
            let _ = reply.send(Err(e));
        }
    }
}
