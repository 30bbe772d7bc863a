//! `GET /v1/dashboard` and `GET /v1/dashboard/search`: what the admin page shows, in one
//! answer each (the page is on a phone as often as not: one request per refresh).

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Scopes};
use crate::modem::Signal;
use crate::store::inbound::InboundFilter;
use crate::store::optout::OptOut;
use crate::store::outbox::OutboxEntry;
use crate::store::{ListFilter, Message, Reply, Status};

/// Latest messages shown.
const RECENT: usize = 15;
/// Messages needing a decision shown.
const ATTENTION: usize = 20;
/// Dead webhook deliveries shown.
const WEBHOOKS: usize = 10;
/// Opt-outs shown.
const OPT_OUTS: usize = 10;
/// Unreadable received texts shown.
const UNREADABLE: usize = 10;
/// Failing (not yet dead) webhook deliveries shown.
const RETRYING: usize = 10;
/// Unmatched customers' texts shown.
const UNMATCHED: usize = 10;
/// Received texts looked through for the unmatched ones.
const UNMATCHED_SCAN: usize = 500;
/// Messages a search returns at most.
const FOUND: usize = 50;

/// A modem on the admin page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DashboardModem {
    /// Configured name.
    pub name: String,
    /// Configured port.
    pub port: String,
    /// `connecting`, `initialising`, `up`, `recovering`, `down` or `stopped`.
    pub state: String,
    /// Whether it sends now: `up`, `resting`, `limited` or `down` (see `GET /v1/modems`).
    pub sending: crate::dispatch::Sending,
    /// When a rest or a limit ends.
    pub sending_until: Option<DateTime<Utc>>,
    /// Operator name.
    pub operator: Option<String>,
    /// Registration, in words.
    pub registration: Option<String>,
    /// Signal strength (`bars` is 0 to 5).
    pub signal: Option<Signal>,
    /// The SIM's number, when the SIM knows it.
    pub own_number: Option<String>,
    /// Manufacturer and model.
    pub model: Option<String>,
    /// Messages this modem sent since midnight (in `[reminders] timezone`).
    pub sent_today: u64,
    /// Its messages that failed since midnight.
    pub failed_today: u64,
    /// Customers' texts it received since midnight.
    pub received_today: u64,
    /// The last error, in words; cleared once the modem works again.
    pub last_error: Option<String>,
    /// When the last error happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Why it takes no work now: `quarantined`, `minute_limit`, `day_limit`.
    pub paused: Option<String>,
    /// `max_per_day`.
    pub max_per_day: Option<u32>,
    /// The last prepaid balance check (`balance_ussd`).
    pub balance: Option<crate::dispatch::pool::BalanceView>,
    /// SIM slots holding a phone's own texts, left alone (`[inbound] purge_foreign`).
    pub foreign_messages: u32,
}

/// A received text the gateway could not read, kept raw.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnreadableSummary {
    /// The inbound message's id (`GET /v1/inbound/{id}`).
    pub id: String,
    /// The modem it came from.
    pub modem: String,
    /// When it was read from the SIM.
    pub received_at: DateTime<Utc>,
    /// Why it could not be read.
    pub reason: String,
    /// The modem's answer as received (for `smsgate pdu decode`).
    pub raw_answer: Option<String>,
}

/// An opt-out keyword that answered a message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StopSummary {
    /// The keyword as texted (`STOP`, `Unsubscribe`…).
    pub keyword: Option<String>,
    /// When the number opted out.
    pub at: DateTime<Utc>,
    /// The received text's id (`GET /v1/inbound/{id}`).
    pub inbound_id: Option<String>,
}

/// A customer's text that answered no message: someone should read it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnmatchedSummary {
    /// The inbound message's id (`GET /v1/inbound/{id}`).
    pub id: String,
    /// The sender.
    pub from: String,
    /// The text.
    pub text: String,
    /// The modem it came to.
    pub modem: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// One hour of the chart.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HourBucket {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    /// Messages that became `sent` in it.
    pub sent: u64,
    /// Messages that became `delivered` in it.
    pub delivered: u64,
    /// Messages that became `failed` in it.
    pub failed: u64,
}

/// A message as the admin page lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageSummary {
    /// Message id.
    pub id: String,
    /// Recipient.
    pub to: String,
    /// The text.
    pub text: String,
    /// Status.
    pub status: Status,
    /// Why it is in that status.
    pub status_reason: Option<String>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When a waiting message is looked at next (a scheduled step: when it goes).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// Why a waiting message does not go out now, and until when.
    pub hold: Option<crate::dispatch::Hold>,
    /// The modem that took it.
    pub modem: Option<String>,
    /// The invoice it is about (a reminder plan's, or `metadata.invoice`).
    pub invoice: Option<String>,
    /// The reminder plan step it is the text of (its index in the plan).
    pub step: Option<u32>,
    /// The recipient's answers.
    pub replies: Vec<Reply>,
    /// The STOP that answered it: the number opted out by keyword, and this was the last
    /// message sent to it before.
    pub stop: Option<StopSummary>,
    /// What the page may do with it: `requeue`, `cancel`.
    pub actions: Vec<String>,
}

/// A dead or failing webhook delivery on the admin page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookSummary {
    /// `dead` (given up) or `pending` (failing, retried at `next_attempt_at`).
    pub state: crate::store::outbox::OutboxState,
    /// The next attempt, for a failing delivery.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, when the receiver answered.
    pub last_status: Option<u16>,
    /// The delivery's `webhook-id`.
    pub id: String,
    /// The event type.
    pub event_type: String,
    /// Where it was POSTed.
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/dashboard` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DashboardView {
    /// When this was put together.
    pub generated_at: DateTime<Utc>,
    /// The time zone of "today" and of the page's clock.
    pub timezone: String,
    /// Every configured modem.
    pub modems: Vec<DashboardModem>,
    /// Messages per status.
    pub counts: BTreeMap<String, u64>,
    /// Messages waiting (queued or scheduled).
    pub queue_depth: usize,
    /// The earliest due time among waiting messages (in the future: nothing is late).
    pub oldest_due: Option<DateTime<Utc>>,
    /// How long the oldest due message has waited, in seconds (0 when not yet due).
    pub oldest_due_age_seconds: Option<i64>,
    /// The last 24 hours, oldest first, the current hour last.
    pub hourly: Vec<HourBucket>,
    /// The latest messages, newest first.
    pub recent: Vec<MessageSummary>,
    /// Messages in `unknown` or `failed`, newest change first: they wait for a decision.
    pub attention: Vec<MessageSummary>,
    /// Webhook deliveries that gave up (`GET /v1/webhooks/failed`).
    pub failed_webhooks: Vec<WebhookSummary>,
    /// Webhook deliveries failing but not given up yet (wrong secret, receiver down), with
    /// their last error and next attempt (`GET /v1/webhooks/failed?state=retrying`).
    pub retrying_webhooks: Vec<WebhookSummary>,
    /// Customers' texts that answered nothing the gateway sent, for a person to read,
    /// newest first.
    pub unmatched: Vec<UnmatchedSummary>,
    /// The latest opt-outs.
    pub opt_outs: Vec<OptOut>,
    /// Numbers opted out in all.
    pub opt_out_count: usize,
    /// The latest received texts that could not be read (kept raw), newest first.
    pub unreadable: Vec<UnreadableSummary>,
}

/// `GET /v1/dashboard/search` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A phone number or an invoice reference: 1 to 100 characters, not blank.
    #[param(min_length = 1, max_length = 100, pattern = r"\S")]
    pub q: String,
}

/// `GET /v1/dashboard/search` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchResult {
    /// The search as given.
    pub query: String,
    /// `number` or `invoice`: how it was read.
    pub kind: String,
    /// The number in E.164, for `number`.
    pub number: Option<String>,
    /// Whether that number is opted out, for `number`.
    pub opted_out: Option<bool>,
    /// The invoice's reminder plan, for `invoice`.
    pub plan_id: Option<String>,
    /// Matching messages (at most 50): to a number, newest first; about an invoice, its plan's
    /// steps in order, then other messages about it, newest first.
    pub messages: Vec<MessageSummary>,
}

fn invoice_of(m: &Message) -> Option<String> {
    m.reminder
        .as_ref()
        .map(|r| r.invoice.clone())
        .or_else(|| crate::store::history::invoice_of(m).map(str::to_string))
}

fn summarise(m: &Message, now: DateTime<Utc>, gate: &crate::dispatch::Gate) -> MessageSummary {
    let hold = crate::dispatch::hold::explain(m, now, Some(gate));
    let mut actions = Vec::new();
    if matches!(m.status, Status::Unknown | Status::Failed) {
        actions.push("requeue".to_string());
    }
    if m.cancellable() {
        actions.push("cancel".to_string());
    }
    MessageSummary {
        id: m.id.clone(),
        to: m.to.clone(),
        text: m.text.clone(),
        status: m.status,
        status_reason: m.status_reason.clone(),
        created_at: m.created_at,
        updated_at: m.updated_at,
        next_attempt_at: crate::dispatch::hold::next_look(m, now, hold.as_ref()),
        sent_at: m.sent_at,
        hold,
        modem: m.modem.clone(),
        invoice: invoice_of(m),
        step: m.reminder.as_ref().map(|r| r.step),
        replies: m.replies.clone(),
        stop: None,
        actions,
    }
}

/// Puts each opt-out keyword (STOP) under the message it answered: the last message sent to
/// the number before it opted out by keyword.
fn attach_stops(
    store: &crate::store::Store,
    lists: &mut [&mut Vec<MessageSummary>],
) -> Result<(), ApiError> {
    let mut answered: BTreeMap<String, Option<(String, StopSummary)>> = BTreeMap::new();
    for list in lists.iter_mut() {
        for s in list.iter_mut() {
            if s.sent_at.is_none() {
                continue;
            }
            if !answered.contains_key(&s.to) {
                let found = match store.optout(&s.to)? {
                    Some(o) if o.source == "keyword" => store
                        .messages_to(&s.to, 100)?
                        .into_iter()
                        .filter(|m| m.sent_at.is_some_and(|t| t <= o.opted_out_at))
                        .max_by_key(|m| m.sent_at)
                        .map(|m| {
                            (
                                m.id,
                                StopSummary {
                                    keyword: o.keyword.clone(),
                                    at: o.opted_out_at,
                                    inbound_id: o.inbound_id.clone(),
                                },
                            )
                        }),
                    _ => None,
                };
                answered.insert(s.to.clone(), found);
            }
            if let Some(Some((id, stop))) = answered.get(&s.to)
                && *id == s.id
            {
                s.stop = Some(stop.clone());
            }
        }
    }
    Ok(())
}

fn webhook_summary(e: &OutboxEntry) -> WebhookSummary {
    WebhookSummary {
        state: e.state,
        next_attempt_at: (e.state == crate::store::outbox::OutboxState::Pending)
            .then_some(e.next_attempt_at),
        last_status: e.last_status,
        id: e.id.clone(),
        event_type: e.event_type.clone(),
        url: e.url.clone(),
        attempts: e.attempts,
        last_error: e.last_error.clone(),
        created_at: e.created_at,
    }
}

fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp().div_euclid(3600) * 3600, 0)
        .single()
        .unwrap_or(t)
}

use super::system::midnight;

/// The latest customers' texts that answered nothing (`handling = unmatched`).
fn unmatched(store: &crate::store::Store) -> Result<Vec<UnmatchedSummary>, ApiError> {
    Ok(store
        .list_inbound(&InboundFilter {
            limit: UNMATCHED_SCAN,
            ..InboundFilter::default()
        })?
        .into_iter()
        .filter(|m| m.handling.as_deref() == Some("unmatched"))
        .take(UNMATCHED)
        .map(|m| UnmatchedSummary {
            id: m.id,
            from: m.from,
            text: m.text,
            modem: m.modem,
            received_at: m.received_at,
        })
        .collect())
}

fn build(state: &AppState) -> Result<DashboardView, ApiError> {
    let store = &state.store;
    let now = state.clock.now();
    let tz = state.reminders.timezone;
    let first_hour = hour_start(now) - Duration::hours(23);
    let today = midnight(now, tz);
    let from = first_hour.min(today);
    let counts = store.hourly(from, now)?;
    let mut hourly: Vec<HourBucket> = (0..24)
        .map(|i| HourBucket {
            hour: first_hour + Duration::hours(i),
            sent: 0,
            delivered: 0,
            failed: 0,
        })
        .collect();
    let mut sent_today: BTreeMap<&str, u64> = BTreeMap::new();
    for c in &counts {
        let slot = (c.hour - first_hour).num_hours();
        if let Some(b) = usize::try_from(slot).ok().and_then(|i| hourly.get_mut(i)) {
            b.sent += c.sent;
            b.delivered += c.delivered;
            b.failed += c.failed;
        }
        if c.hour >= hour_start(today) {
            *sent_today.entry(c.modem.as_str()).or_default() += c.sent;
        }
    }
    let pool = state.dispatcher.pool();
    let gate = pool.gate(now);
    let day = super::system::day_counts(store, today, now)?;
    let modems = state
        .modems()
        .iter()
        .map(|h| {
            let p = pool.view(h.name(), now);
            let (sending, sending_until) = pool.sending(h.name(), now);
            let s = h.status();
            let i = &s.info;
            let d = day.get(s.name.as_str()).copied().unwrap_or_default();
            DashboardModem {
                sent_today: sent_today.get(s.name.as_str()).copied().unwrap_or(0),
                failed_today: d.failed,
                received_today: d.received,
                sending,
                sending_until,
                last_error_at: s.last_error_at,
                name: s.name,
                port: s.port,
                state: s.state.as_str().to_string(),
                operator: i.operator.clone(),
                registration: i.registration.map(|r| r.as_str().to_string()),
                signal: i.signal,
                own_number: i.own_number.clone(),
                model: match (&i.manufacturer, &i.model) {
                    (Some(a), Some(b)) => Some(format!("{a} {b}")),
                    (a, b) => a.clone().or_else(|| b.clone()),
                },
                last_error: s.last_error,
                paused: p.paused,
                max_per_day: p.max_per_day,
                balance: p.balance,
                foreign_messages: s.foreign_messages,
            }
        })
        .collect();
    let page = |status: Option<Status>, limit: usize| {
        store.list(&ListFilter {
            status,
            limit,
            ..ListFilter::default()
        })
    };
    let mut recent: Vec<MessageSummary> = page(None, RECENT)?
        .iter()
        .map(|m| summarise(m, now, &gate))
        .collect();
    let mut attention = page(Some(Status::Unknown), ATTENTION)?;
    attention.extend(page(Some(Status::Failed), ATTENTION)?);
    attention.sort_by_key(|m| std::cmp::Reverse(m.updated_at));
    attention.truncate(ATTENTION);
    let failed_webhooks = state
        .webhooks
        .dead(WEBHOOKS, None)
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .iter()
        .map(webhook_summary)
        .collect();
    let retrying_webhooks = state
        .webhooks
        .retrying(RETRYING, None)
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .iter()
        .map(webhook_summary)
        .collect();
    let unmatched = unmatched(store)?;
    let mut opt_outs = Vec::new();
    let mut after: Option<String> = None;
    // Listed by number: the latest need them all (a few thousand at most in practice).
    loop {
        let chunk = store.list_optouts(after.as_deref(), 1000)?;
        let full = chunk.len() == 1000;
        after = chunk.last().map(|o| o.number.clone());
        opt_outs.extend(chunk);
        if !full {
            break;
        }
    }
    let opt_out_count = opt_outs.len();
    opt_outs.sort_by_key(|o| std::cmp::Reverse(o.opted_out_at));
    opt_outs.truncate(OPT_OUTS);
    let unreadable = store
        .list_inbound(&InboundFilter {
            unreadable: true,
            limit: UNREADABLE,
            ..InboundFilter::default()
        })?
        .into_iter()
        .map(|m| UnreadableSummary {
            id: m.id,
            modem: m.modem,
            received_at: m.received_at,
            reason: m.decode_error.unwrap_or_default(),
            raw_answer: m.raw_answer,
        })
        .collect();
    let oldest = store.oldest_due()?;
    let mut attention: Vec<MessageSummary> =
        attention.iter().map(|m| summarise(m, now, &gate)).collect();
    attach_stops(store, &mut [&mut recent, &mut attention])?;
    Ok(DashboardView {
        generated_at: now,
        timezone: tz.name().to_string(),
        modems,
        counts: store
            .counts()?
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), n))
            .collect(),
        queue_depth: store.queue_depth(),
        oldest_due: oldest,
        oldest_due_age_seconds: oldest.map(|t| (now - t).num_seconds().max(0)),
        hourly,
        recent,
        attention,
        failed_webhooks,
        retrying_webhooks,
        unmatched,
        opt_outs,
        opt_out_count,
        unreadable,
    })
}

/// `GET /v1/dashboard`: modems, queue, the last 24 hours, the latest messages, what needs a
/// decision, failed webhooks and opt-outs, for the admin page.
#[utoipa::path(get, path = "/v1/dashboard", tag = "gateway",
    responses((status = 200, body = DashboardView), (status = 401, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn summary(
    State(state): State<AppState>,
    Extension(scopes): Extension<Scopes>,
) -> Result<Response, ApiError> {
    let mut view = tokio::task::spawn_blocking(move || build(&state))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    only_allowed(&mut view.recent, scopes);
    only_allowed(&mut view.attention, scopes);
    Ok(axum::Json(view).into_response())
}

/// Leaves each message only the actions the caller's key may take (`cancel` and `requeue`
/// need what their routes need), so the page offers nothing that would answer 403.
fn only_allowed(list: &mut [MessageSummary], scopes: Scopes) {
    for m in list {
        m.actions.retain(|a| {
            let route = format!("/v1/messages/{{id}}/{a}");
            super::required_scope(&axum::http::Method::POST, &route)
                .is_none_or(|s| scopes.allows(s))
        });
    }
}

fn find(state: &AppState, q: &str) -> Result<SearchResult, ApiError> {
    let store = &state.store;
    let now = state.clock.now();
    let gate = state.dispatcher.pool().gate(now);
    let looks_like_number = q.starts_with('+')
        || (q.chars().filter(char::is_ascii_digit).count() >= 6
            && q.chars().all(|c| c.is_ascii_digit() || " -().".contains(c)));
    // A national number is read in `[sms] default_region`; digits that are an international
    // number without its `+` are read as one.
    let region = state.cfg.messages.default_region.as_deref();
    let number = looks_like_number
        .then(|| {
            crate::numbers::to_e164(q, region)
                .ok()
                .map(String::from)
                .or_else(|| {
                    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
                    crate::numbers::normalise_sender(&digits, region).map(String::from)
                })
        })
        .flatten();
    if let Some(number) = number {
        let messages = store.messages_to(&number, FOUND)?;
        let mut messages: Vec<MessageSummary> =
            messages.iter().map(|m| summarise(m, now, &gate)).collect();
        attach_stops(store, &mut [&mut messages])?;
        return Ok(SearchResult {
            query: q.to_string(),
            kind: "number".into(),
            opted_out: Some(store.is_opted_out(&number)?),
            number: Some(number),
            plan_id: None,
            messages,
        });
    }
    let plan = store.plan_by_invoice(q)?;
    let mut messages = Vec::new();
    if let Some(p) = &plan {
        for step in &p.steps {
            for id in step.message_id.iter().chain(step.replaced.iter()) {
                if let Some(m) = store.get(id)? {
                    messages.push(m);
                }
            }
        }
    }
    // The plan's steps in the plan's order (a replaced step's old text right after it), then
    // plain messages about the invoice (`metadata.invoice`), newest first.
    let mut others: Vec<Message> = store
        .messages_about(q, FOUND)?
        .into_iter()
        .filter(|m| !messages.iter().any(|x| x.id == m.id))
        .collect();
    others.sort_by(|a, b| b.id.cmp(&a.id));
    messages.extend(others);
    messages.truncate(FOUND);
    let mut messages: Vec<MessageSummary> =
        messages.iter().map(|m| summarise(m, now, &gate)).collect();
    attach_stops(store, &mut [&mut messages])?;
    Ok(SearchResult {
        query: q.to_string(),
        kind: "invoice".into(),
        number: None,
        opted_out: None,
        plan_id: plan.map(|p| p.id),
        messages,
    })
}

/// `GET /v1/dashboard/search?q=`: messages to a number (with its opt-out state), or about an
/// invoice (its reminder plan's steps and any message whose `metadata.invoice` is it).
#[utoipa::path(get, path = "/v1/dashboard/search", tag = "gateway", params(SearchQuery),
    responses((status = 200, body = SearchResult), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn search(
    State(state): State<AppState>,
    Extension(scopes): Extension<Scopes>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let text = q.q.trim().to_string();
    if text.is_empty() || text.chars().count() > 100 {
        return Err(ApiError::field(
            "q",
            "give a phone number or an invoice reference",
        ));
    }
    let mut found = tokio::task::spawn_blocking(move || find(&state, &text))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    only_allowed(&mut found.messages, scopes);
    Ok(axum::Json(found).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_midnight() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 17, 42, 5).unwrap();
        assert_eq!(
            hour_start(t),
            Utc.with_ymd_and_hms(2026, 11, 23, 17, 0, 0).unwrap()
        );
        // 17:42Z is 12:42 in New York (EST): midnight there is 05:00Z.
        assert_eq!(
            midnight(t, chrono_tz::America::New_York),
            Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap()
        );
    }
}
