//! What happens to a received message once it is stored: an opt-out keyword is obeyed, an
//! answer is matched to the message that asked for it, anything else is passed on as an
//! `inbound.unmatched` event.
//!
//! A stored message waits in the store's `inbound_pending` tree until it has been acted on, so
//! a crash in between only delays it: [`Inbox::handle_pending`] runs at start. Each step is
//! safe to repeat (a reply already recorded is not recorded twice; an opted-out number is not
//! opted out again, nor sent a second confirmation).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::dispatch::{Clock, Dispatcher};
use crate::domain::{GATEWAY, MessageRules};
use crate::replies::{Keyword, OptOutConfig, RepliesConfig};
use crate::sms::TextPlan;
use crate::store::inbound::InboundMessage;
use crate::store::optout::OptOut;
use crate::store::{Message, Note, Priority, Reply, Status, Store, StoreError};
use crate::webhook::{EventType, WebhookError, Webhooks};

/// Most `<Message>`s of one TwiML answer that are sent.
const MAX_TWIML_REPLIES: usize = 5;

/// The `status_reason` of a message held while an earlier question to the same number awaits
/// its answer.
pub const AWAITING_REPLY: &str = "awaiting_reply";

/// Acts on inbound messages and opt-outs. Cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    webhooks: Webhooks,
    dispatcher: Dispatcher,
    replies: RepliesConfig,
    optout: OptOutConfig,
    rules: MessageRules,
    clock: Clock,
}

/// An opt-out or opt-in as asked.
#[derive(Debug, Clone)]
pub struct OptOutRequest {
    /// E.164.
    pub number: String,
    /// `keyword` or `api`.
    pub source: &'static str,
    /// The keyword as received.
    pub keyword: Option<String>,
    /// The inbound message that asked.
    pub inbound_id: Option<String>,
    /// The caller's note.
    pub note: Option<String>,
    /// The API key that asked, for `api` (recorded in the histories and the event).
    pub actor: Option<String>,
}

impl Inbox {
    /// An inbox over `store`; events go through `webhooks`, texts it sends are queued for
    /// `dispatcher` and made by `rules`.
    pub fn new(
        store: Store,
        webhooks: Webhooks,
        dispatcher: Dispatcher,
        replies: RepliesConfig,
        optout: OptOutConfig,
        rules: MessageRules,
        clock: Clock,
    ) -> Inbox {
        Inbox {
            inner: Arc::new(Inner {
                store,
                webhooks,
                dispatcher,
                replies,
                optout,
                rules,
                clock,
            }),
        }
    }

    /// Acts on every stored message not acted on yet (left by a crash); returns how many.
    pub async fn handle_pending(&self) -> usize {
        let pending = match self.inner.store.pending_inbound() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the inbound messages still to act on");
                return 0;
            }
        };
        let mut n = 0;
        for m in pending {
            match self.handle(&m).await {
                Ok(_) => n += 1,
                Err(e) => {
                    tracing::error!(inbound_id = %m.id, error = %e, "cannot act on an inbound message; trying again later");
                }
            }
        }
        n
    }

    /// Acts on one stored message and records what was done; returns it (see
    /// [`InboundMessage::handling`]).
    pub async fn handle(&self, m: &InboundMessage) -> Result<String, WebhookError> {
        let i = &self.inner;
        let now = i.clock.now();
        let readable = m.decode_error.is_none() && !m.from.is_empty();
        let keyword = if readable {
            i.optout.keyword(&m.text)
        } else {
            None
        };
        // The numbers this sender stands for: itself when it reads as a number; else the
        // texted numbers it ends like (a national form the gateway could not read).
        let numbers = match self.numbers_for_sender(&m.from, now)? {
            n if n.is_empty() => vec![m.from.clone()],
            n => {
                tracing::info!(inbound_id = %m.id, from = %m.from, numbers = ?n, "sender matched by its trailing digits");
                n
            }
        };
        let first = numbers[0].as_str();
        let (handling, in_reply_to) = match keyword {
            Some(Keyword::Stop) => {
                // Several candidates: each is opted out. An opt-out must hold; a wrong one
                // costs a text, a missed one a complaint.
                let mut newly = false;
                for number in &numbers {
                    newly |= self
                        .opt_out(OptOutRequest {
                            number: number.clone(),
                            source: "keyword",
                            keyword: Some(m.text.trim().to_string()),
                            inbound_id: Some(m.id.clone()),
                            note: None,
                            actor: None,
                        })
                        .await?;
                }
                if newly {
                    self.send_system(first, &i.optout.stop_reply, "opt_out_confirmation", now)
                        .await?;
                    ("opt_out", None)
                } else {
                    ("repeat_opt_out", None)
                }
            }
            Some(Keyword::Start) if i.store.is_opted_out(first)? => {
                for number in &numbers {
                    if i.store.is_opted_out(number)? {
                        self.opt_in(number, "keyword", Some(&m.id), None).await?;
                    }
                }
                self.send_system(first, &i.optout.start_reply, "opt_in_confirmation", now)
                    .await?;
                ("opt_in", None)
            }
            Some(Keyword::Help) => {
                self.send_system(first, &i.optout.help_reply, "help", now)
                    .await?;
                ("help", None)
            }
            // An answer from a sender that stands for several numbers is not guessed at.
            _ if readable && numbers.len() == 1 => match self.record_reply(m, first, now).await? {
                Some(id) => ("reply", Some(id)),
                None => {
                    self.unmatched(m).await?;
                    ("unmatched", None)
                }
            },
            _ => {
                self.unmatched(m).await?;
                ("unmatched", None)
            }
        };
        // Before it is marked handled: a crash in between forwards it again (same MessageSid).
        if readable {
            self.forward_twilio(m).await?;
        }
        i.store
            .inbound_handled(&m.id, handling, in_reply_to.as_deref())?;
        i.store.durable().await?;
        tracing::info!(inbound_id = %m.id, from = %m.from, handling, in_reply_to = ?in_reply_to, "inbound message handled");
        metrics::counter!(crate::metrics::INBOUND_HANDLED, "handling" => handling.to_string())
            .increment(1);
        Ok(handling.to_string())
    }

    /// Links an answer to the message it answers; that message's id, or `None` when no
    /// message awaits an answer from this number.
    async fn record_reply(
        &self,
        m: &InboundMessage,
        from: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, WebhookError> {
        let i = &self.inner;
        let window = chrono::Duration::from_std(i.replies.window).unwrap_or(chrono::Duration::MAX);
        // The window is counted back from when the answer arrived, not from now: one acted on
        // after a restart still finds its message.
        let at = m.received_at.min(now);
        let Some(target) = i.store.reply_target(from, at, window, false, None)? else {
            return Ok(None);
        };
        let options = target.reply_options.clone().unwrap_or_default();
        let choice = i.replies.choice(&m.text, &options);
        let action = choice
            .as_ref()
            .and_then(|c| options.get(c).cloned())
            .unwrap_or_else(|| "unrecognised".into());
        let sent = target.sent_at.unwrap_or(target.created_at);
        let matched_by = format!(
            "the most recent message with reply_options sent to {} ({} before the answer), within the reply window of {}",
            from,
            humantime::format_duration(
                (at - sent)
                    .to_std()
                    .map(|d| std::time::Duration::from_secs(d.as_secs()))
                    .unwrap_or_default()
            ),
            humantime::format_duration(i.replies.window),
        );
        let reply = Reply {
            choice: choice.clone(),
            action: action.clone(),
            text: m.text.clone(),
            at: m.received_at,
            inbound_id: m.id.clone(),
            matched_by,
        };
        let data = serde_json::to_value(&reply)?;
        i.store.update(&target.id, |msg| {
            if msg.replies.iter().any(|r| r.inbound_id == reply.inbound_id) {
                return None;
            }
            msg.replies.push(reply.clone());
            let what = match &reply.choice {
                Some(c) => format!("reply {c:?} ({})", reply.action),
                None => "reply naming none of the options (unrecognised)".to_string(),
            };
            Some(Note::new("reply", what, data.clone()))
        })?;
        self.release_held(from, &target.id, now)?;
        Ok(Some(target.id))
    }

    /// Messages held because `answered` awaited its answer go out now.
    fn release_held(
        &self,
        to: &str,
        answered: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let i = &self.inner;
        let mut n = 0;
        for m in i.store.messages_to(to, usize::MAX)? {
            if !m.status.is_waiting() || m.status_reason.as_deref() != Some(AWAITING_REPLY) {
                continue;
            }
            let r = i
                .store
                .update(&m.id, |msg| msg.release(answered, now).ok())?;
            if r.is_some_and(|(_, changed)| changed) {
                n += 1;
            }
        }
        if n > 0 {
            i.dispatcher.notify();
        }
        Ok(n)
    }

    async fn unmatched(&self, m: &InboundMessage) -> Result<(), WebhookError> {
        self.inner
            .webhooks
            .enqueue(
                EventType::InboundUnmatched,
                json!({
                    "inbound_id": m.id,
                    "from": m.from,
                    "text": m.text,
                    "modem": m.modem,
                    "received_at": m.received_at,
                    "partial": m.partial,
                    "decode_error": m.decode_error,
                }),
                None,
                "",
            )
            .await?;
        Ok(())
    }

    /// Opts a number out: recorded, its waiting messages cancelled (reason `opted_out`), an
    /// `optout.changed` event sent. `false` when it was already opted out (nothing else done).
    pub async fn opt_out(&self, r: OptOutRequest) -> Result<bool, WebhookError> {
        let i = &self.inner;
        let now = i.clock.now();
        let rec = OptOut {
            number: r.number.clone(),
            opted_out_at: now,
            source: r.source.to_string(),
            keyword: r.keyword.clone(),
            inbound_id: r.inbound_id.clone(),
            note: r.note.clone(),
        };
        let newly = i.store.opt_out(&rec)?;
        // Also when it was already opted out: a message accepted meanwhile is cancelled too.
        let cancelled = self.cancel_waiting(&r.number, r.actor.as_deref())?;
        if newly {
            let how = match (&r.keyword, r.source) {
                (Some(k), _) => format!("{} opted out: texted {k:?}", r.number),
                (None, s) => format!("{} opted out ({s})", r.number),
            };
            self.note_on_last_sent(
                &r.number,
                &how,
                json!({"opted_out": true, "source": r.source, "keyword": r.keyword, "inbound_id": r.inbound_id}),
                r.actor.as_deref(),
            )?;
            i.webhooks
                .enqueue(
                    EventType::OptoutChanged,
                    with_actor(
                        json!({
                            "number": r.number,
                            "opted_out": true,
                            "source": r.source,
                            "keyword": r.keyword,
                            "inbound_id": r.inbound_id,
                            "at": now,
                            "cancelled_messages": cancelled,
                        }),
                        r.actor.as_deref(),
                    ),
                    None,
                    "",
                )
                .await?;
            tracing::info!(number = %r.number, source = r.source, cancelled = cancelled.len(), "number opted out");
        }
        i.store.durable().await?;
        Ok(newly)
    }

    /// Opts a number back in; the opt-out removed, `None` when it was not opted out.
    pub async fn opt_in(
        &self,
        number: &str,
        source: &str,
        inbound_id: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Option<OptOut>, WebhookError> {
        let i = &self.inner;
        let Some(old) = i.store.opt_in(number)? else {
            return Ok(None);
        };
        self.note_on_last_sent(
            number,
            &format!("{number} opted back in ({source})"),
            json!({"opted_out": false, "source": source, "inbound_id": inbound_id}),
            actor,
        )?;
        i.webhooks
            .enqueue(
                EventType::OptoutChanged,
                with_actor(
                    json!({
                        "number": number,
                        "opted_out": false,
                        "source": source,
                        "inbound_id": inbound_id,
                        "at": i.clock.now(),
                        "opted_out_since": old.opted_out_at,
                    }),
                    actor,
                ),
                None,
                "",
            )
            .await?;
        i.store.durable().await?;
        tracing::info!(number, source, "number opted back in");
        Ok(Some(old))
    }

    /// Records an opt-out or opt-in in the history of the last message that went out to the
    /// number: the message a dispute is likely about.
    fn note_on_last_sent(
        &self,
        number: &str,
        reason: &str,
        data: serde_json::Value,
        actor: Option<&str>,
    ) -> Result<(), StoreError> {
        let i = &self.inner;
        let last = i
            .store
            .messages_to(number, 100)?
            .into_iter()
            .filter(|m| m.sent_at.is_some())
            .max_by_key(|m| m.sent_at);
        if let Some(m) = last {
            i.store.update(&m.id, |_| {
                Some(Note::new("opt_out", reason.to_string(), data.clone()).by(actor))
            })?;
        }
        Ok(())
    }

    /// Cancels the waiting messages to a number that opted out; their ids.
    fn cancel_waiting(&self, number: &str, actor: Option<&str>) -> Result<Vec<String>, StoreError> {
        let i = &self.inner;
        let mut out = Vec::new();
        for m in i.store.messages_to(number, usize::MAX)? {
            if !m.status.is_waiting() || m.is_from_gateway() {
                continue;
            }
            let r = i.store.update(&m.id, |msg| {
                msg.cancel_opted_out().ok().map(|n| n.by(actor))
            })?;
            if r.is_some_and(|(_, changed)| changed) {
                out.push(m.id);
            }
        }
        Ok(out)
    }

    /// Forwards a received text to `[twilio] inbound_url`, in Twilio's incoming-message form,
    /// when the Twilio door is on and has one.
    async fn forward_twilio(&self, m: &InboundMessage) -> Result<(), WebhookError> {
        let i = &self.inner;
        let Some(hooks) = i.webhooks.twilio() else {
            return Ok(());
        };
        let Some(url) = hooks.account.inbound_url.clone() else {
            return Ok(());
        };
        let to = (hooks.numbers)(&m.modem).unwrap_or_else(|| m.modem.clone());
        let form = crate::twilio::incoming_form(m, &hooks.account.sid, &to);
        i.webhooks
            .enqueue_raw(crate::store::outbox::NewWebhook {
                id: format!("evt_{}", ulid::Ulid::generate()),
                url,
                event_type: crate::twilio::INCOMING.to_string(),
                body: crate::twilio::form_body(&form),
                // One customer's texts reach the receiver in the order they came.
                ordering_key: format!("from:{}", m.from),
                created_at: Utc::now(),
            })
            .await?;
        Ok(())
    }

    /// Queues the `<Message>`s of a TwiML answer to a forwarded text, once per text however
    /// often the answer comes (an idempotency record keyed by its MessageSid).
    async fn twiml_answer(
        &self,
        entry: &crate::webhook::OutboxEntry,
        answer: &str,
    ) -> Result<(), StoreError> {
        let i = &self.inner;
        let form = crate::twilio::parse_form(&entry.body);
        let get = |k: &str| {
            form.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (sid, customer, account) = (get("MessageSid"), get("From"), get("AccountSid"));
        let messages = match crate::twilio::twiml_messages(answer) {
            Ok(m) => m,
            Err(e) => {
                // The receiver has it; an answer that is not TwiML is its own business.
                tracing::warn!(message_sid = %sid, error = %e, "the answer to a forwarded text is not TwiML; nothing sent back");
                return Ok(());
            }
        };
        if messages.is_empty() {
            return Ok(());
        }
        let key = format!("twiml\u{0}{sid}");
        if i.store.idempotency(&key)?.is_some() {
            return Ok(());
        }
        let modem = crate::twilio::id_of(&sid)
            .and_then(|id| i.store.inbound(&id).ok().flatten())
            .map(|m| m.modem);
        let now = i.clock.now();
        let mut out = Vec::new();
        for t in messages.iter().take(MAX_TWIML_REPLIES) {
            let to = match &t.to {
                Some(n) => match crate::numbers::to_e164(n, i.rules.default_region.as_deref()) {
                    Ok(n) => n.into_string(),
                    Err(e) => {
                        tracing::warn!(message_sid = %sid, to = %n, error = %e, "a TwiML <Message> names a number that cannot be texted; skipped");
                        continue;
                    }
                },
                None => customer.clone(),
            };
            if i.store.is_opted_out(&to)? {
                tracing::warn!(message_sid = %sid, to = %to, "a TwiML <Message> to a number that opted out; skipped");
                continue;
            }
            let Some(mut m) = self.text_message(&to, &t.body, &format!("twilio:{account}"), now)
            else {
                continue;
            };
            m.metadata = Some(json!({ "smsgate": "twiml_reply", "in_reply_to": sid }));
            m.twilio = Some(crate::twilio::TwilioLink {
                account_sid: account.clone(),
                from: None,
                messaging_service_sid: None,
                status_callback: None,
                direction: "outbound-reply".into(),
                modem: modem.clone(),
            });
            out.push(m);
        }
        let record = crate::store::IdempotencyRecord {
            fingerprint: String::new(),
            status: 201,
            body: json!({ "messages": out.iter().map(|m| m.id.clone()).collect::<Vec<_>>() }),
            at: now,
        };
        i.store.insert(&out, Some((key.as_str(), &record)))?;
        i.dispatcher.announce().await?;
        for m in &out {
            tracing::info!(message_id = %m.id, to = %m.to, in_reply_to = %sid, "TwiML reply queued");
        }
        Ok(())
    }

    /// A queued text of the gateway's own to `to` (none when `text` cannot be sent).
    fn text_message(
        &self,
        to: &str,
        text: &str,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Option<Message> {
        let i = &self.inner;
        let plan = match TextPlan::new(text, &i.rules.national_languages, i.rules.max_parts) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(to, error = %e, "a text the gateway was to send cannot be sent");
                return None;
            }
        };
        Some(Message {
            id: ulid::Ulid::generate().to_string(),
            to: to.to_string(),
            text: text.to_string(),
            encoding: plan.encoding.as_str().to_string(),
            parts: plan.parts.len() as u8,
            status: Status::Queued,
            status_reason: None,
            priority: Priority::High,
            created_at: now,
            updated_at: now,
            send_at: None,
            expires_at: Some(now + chrono::Duration::days(1)),
            max_lateness_secs: 3600,
            due_at: now,
            reply_options: None,
            callback_url: None,
            metadata: None,
            status_report: false,
            attempts: Vec::new(),
            part_status: Vec::new(),
            modem: None,
            sent_at: None,
            delivered_at: None,
            created_by: created_by.to_string(),
            history_len: 0,
            requeued_at: None,
            accepted_as: Status::Queued,
            replies: Vec::new(),
            history_hash: None,
            send_window: None,
            reminder: None,
            twilio: None,
        })
    }

    /// Queues a text the gateway sends on its own ("" sends nothing).
    async fn send_system(
        &self,
        to: &str,
        text: &str,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, WebhookError> {
        let i = &self.inner;
        if text.trim().is_empty() {
            return Ok(None);
        }
        if let Some(last) = self.last_automatic(to, purpose, now)? {
            tracing::info!(to, purpose, last_id = %last, "automatic answer not sent: one went to this number within auto_reply_interval");
            metrics::counter!(crate::metrics::HELD, "reason" => "auto_reply_interval").increment(1);
            return Ok(None);
        }
        let Some(mut m) = self.text_message(to, text, GATEWAY, now) else {
            return Ok(None);
        };
        m.metadata = Some(json!({ "smsgate": purpose }));
        i.store.insert(std::slice::from_ref(&m), None)?;
        i.dispatcher.announce().await?;
        tracing::info!(message_id = %m.id, to, purpose, "gateway text queued");
        Ok(Some(m.id))
    }
}

impl Inbox {
    /// The id of an automatic answer of this `purpose` sent to `to` within
    /// `[optout] auto_reply_interval` of `now`, if any.
    fn last_automatic(
        &self,
        to: &str,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let i = &self.inner;
        let Ok(interval) = chrono::Duration::from_std(i.optout.auto_reply_interval) else {
            return Ok(None);
        };
        if interval.is_zero() {
            return Ok(None);
        }
        let since = now - interval;
        // Newest first: the answers within the interval are among the latest messages.
        Ok(i.store
            .messages_to(to, AUTO_REPLY_SCAN)?
            .into_iter()
            .find(|m| {
                m.is_from_gateway()
                    && m.created_at > since
                    && m.metadata
                        .as_ref()
                        .and_then(|v| v.get("smsgate"))
                        .and_then(|v| v.as_str())
                        == Some(purpose)
            })
            .map(|m| m.id))
    }

    /// The numbers a sender that is no valid number stands for: those texted within the reply
    /// window whose last 7 digits or more are the sender's (a network that sends a national
    /// number the gateway cannot read without `[sms] default_region`).
    fn numbers_for_sender(
        &self,
        from: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let i = &self.inner;
        if from.starts_with('+') || from.bytes().filter(u8::is_ascii_digit).count() < MIN_TRAILING {
            return Ok(Vec::new());
        }
        let window = chrono::Duration::from_std(i.replies.window).unwrap_or(chrono::Duration::MAX);
        let since = now
            .checked_sub_signed(window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut out = Vec::new();
        for number in i.store.numbers_ending_like(from, MIN_TRAILING, 8)? {
            let texted = i
                .store
                .messages_to(&number, AUTO_REPLY_SCAN)?
                .iter()
                .any(|m| m.sent_at.is_some_and(|t| t >= since));
            if texted {
                out.push(number);
            }
        }
        Ok(out)
    }
}

/// How many of a number's latest messages are looked at for its recent automatic answers.
const AUTO_REPLY_SCAN: usize = 50;
/// Trailing digits a sender shares with a texted number to stand for it.
const MIN_TRAILING: usize = 7;

impl crate::webhook::TwimlHandler for Inbox {
    fn answer<'a>(
        &'a self,
        entry: &'a crate::webhook::OutboxEntry,
        answer: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.twiml_answer(entry, answer))
    }
}

/// An event's `data` with the API key that caused it (`actor`), when one did.
fn with_actor(mut data: serde_json::Value, actor: Option<&str>) -> serde_json::Value {
    if let (Some(obj), Some(a)) = (data.as_object_mut(), actor) {
        obj.insert("actor".into(), a.into());
    }
    data
}
