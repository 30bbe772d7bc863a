//! `GET /v1/demo/phone` and `POST /v1/demo/phone/reply`: the simulated customers' phones of
//! `smsgate demo`. What the simulated network delivered to each number, and an answer typed as
//! that customer, which the simulator delivers to the gateway as an inbound SMS (as its
//! `inbound <from> <text>` command does).
//!
//! Only `smsgate demo` hands the API a [`DemoPhone`] (at construction, with the running
//! simulator); without one these routes do not exist and answer 404 like any unknown path.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, AppState, FieldError};
use crate::sim::SimHandle;

/// Numbers listed, the most recently active first.
const MAX_NUMBERS: usize = 50;
/// Texts listed per number and direction, the latest.
const MAX_TEXTS: usize = 20;
/// Answers kept in memory.
const MAX_REPLIES: usize = 1000;
/// The longest answer (characters): a few SMS parts, as a customer types.
const MAX_REPLY_CHARS: usize = 1000;

/// The simulated phones of the demo: the running simulator, and the answers sent through it.
#[derive(Debug)]
pub struct DemoPhone {
    sim: SimHandle,
    /// What was answered from the admin page (the simulator keeps what it delivered, not what
    /// it was told to send), oldest first, bounded.
    replies: Mutex<VecDeque<(String, PhoneText)>>,
}

impl DemoPhone {
    /// The phones of the customers `sim`'s network delivers to.
    pub fn new(sim: SimHandle) -> DemoPhone {
        DemoPhone {
            sim,
            replies: Mutex::new(VecDeque::new()),
        }
    }

    /// Each number with what it received and answered, the most recently active first.
    pub fn numbers(&self) -> Vec<PhoneNumber> {
        let mut by_number: BTreeMap<String, PhoneNumber> = BTreeMap::new();
        for s in self.sim.sent() {
            by_number
                .entry(s.to.clone())
                .or_insert_with(|| PhoneNumber::empty(&s.to))
                .received
                .push(PhoneText {
                    text: s.text,
                    at: s.at,
                });
        }
        for (from, t) in self
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            by_number
                .entry(from.clone())
                .or_insert_with(|| PhoneNumber::empty(from))
                .replied
                .push(t.clone());
        }
        let mut numbers: Vec<PhoneNumber> = by_number
            .into_values()
            .map(|mut n| {
                for list in [&mut n.received, &mut n.replied] {
                    let extra = list.len().saturating_sub(MAX_TEXTS);
                    list.drain(..extra);
                }
                n
            })
            .collect();
        numbers.sort_by_key(|n| std::cmp::Reverse(n.last_at()));
        numbers.truncate(MAX_NUMBERS);
        numbers
    }

    /// Has the simulated network deliver `text` from `from` to the gateway's modem.
    pub fn reply(&self, from: &str, text: &str) -> std::io::Result<PhoneText> {
        // UCS-2 is chosen by the simulator when the text needs it.
        self.sim.inject_inbound(from, text, false)?;
        let t = PhoneText {
            text: text.to_string(),
            at: Utc::now(),
        };
        let mut g = self.replies.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() >= MAX_REPLIES {
            g.pop_front();
        }
        g.push_back((from.to_string(), t.clone()));
        Ok(t)
    }
}

/// One text on a simulated phone.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhoneText {
    /// The text.
    pub text: String,
    /// When the network delivered it (received) or was handed it (replied).
    pub at: DateTime<Utc>,
}

/// A simulated customer's phone.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhoneNumber {
    /// The customer's number (E.164).
    pub number: String,
    /// What the simulated network delivered to it, oldest first (the latest 20).
    pub received: Vec<PhoneText>,
    /// What was answered from it through `POST /v1/demo/phone/reply`, oldest first (the
    /// latest 20).
    pub replied: Vec<PhoneText>,
}

impl PhoneNumber {
    fn empty(number: &str) -> PhoneNumber {
        PhoneNumber {
            number: number.to_string(),
            received: Vec::new(),
            replied: Vec::new(),
        }
    }

    fn last_at(&self) -> Option<DateTime<Utc>> {
        self.received
            .iter()
            .chain(&self.replied)
            .map(|t| t.at)
            .max()
    }
}

/// `GET /v1/demo/phone` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PhoneView {
    /// The numbers the simulated network delivered to or answered from, the most recently
    /// active first (at most 50).
    pub numbers: Vec<PhoneNumber>,
}

/// `POST /v1/demo/phone/reply` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneReply {
    /// The customer who answers: the number a message went to (E.164, or national digits with
    /// `[sms] default_region`).
    #[schema(value_type = crate::domain::schema::PhoneNumberInput)]
    pub from: String,
    /// The answer, e.g. an option of the message's `reply_options` (1 to 1000 characters, not
    /// blank).
    #[schema(example = "1", min_length = 1, max_length = 1000, pattern = r"\S")]
    pub text: String,
}

/// `POST /v1/demo/phone/reply` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PhoneReplySent {
    /// The customer's number (E.164).
    pub from: String,
    /// The answer.
    pub text: String,
    /// When the simulated network took it.
    pub at: DateTime<Utc>,
}

/// `GET /v1/demo/phone` (`smsgate demo` only): each simulated customer's number with the texts
/// the simulated network delivered to it and the answers sent from it.
#[utoipa::path(get, path = "/v1/demo/phone", tag = "demo",
    responses((status = 200, body = PhoneView), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem, description = "Not `smsgate demo`: the route does not exist")),
    security(("bearer" = ["read"])))]
pub async fn phone(State(state): State<AppState>) -> Result<Response, ApiError> {
    let phone = demo_phone(&state)?;
    let numbers = tokio::task::spawn_blocking(move || phone.numbers())
        .await
        .map_err(|e| ApiError::internal(format!("reading the simulated phones: {e}")))?;
    Ok(axum::Json(PhoneView { numbers }).into_response())
}

/// `POST /v1/demo/phone/reply` (`smsgate demo` only): answers as a simulated customer. The
/// simulated network delivers the text to the gateway's modem as an inbound SMS from `from`,
/// which the gateway then handles like any other (an answer to a message's `reply_options`,
/// an opt-out keyword, or `inbound.unmatched`).
#[utoipa::path(post, path = "/v1/demo/phone/reply", tag = "demo",
    request_body = PhoneReply,
    responses((status = 202, body = PhoneReplySent, description = "The simulated network has it; the gateway reads it from the modem within moments"),
        (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem, description = "Not `smsgate demo`: the route does not exist"),
        (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["send"])))]
pub async fn reply(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PhoneReply>,
) -> Result<Response, ApiError> {
    let phone = demo_phone(&state)?;
    let mut errors = Vec::new();
    let from = crate::numbers::to_e164(&req.from, state.cfg.messages.default_region.as_deref())
        .map(String::from)
        .map_err(|e| {
            errors.push(FieldError {
                field: "from".into(),
                detail: e.to_string(),
            })
        })
        .ok();
    let chars = req.text.chars().count();
    if req.text.trim().is_empty() || chars > MAX_REPLY_CHARS {
        errors.push(FieldError {
            field: "text".into(),
            detail: format!("must be 1 to {MAX_REPLY_CHARS} characters, not blank"),
        });
    }
    let Some(from) = from.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let sent = phone.reply(&from, &req.text).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            ApiError::field("text", e.to_string())
        } else {
            ApiError::unavailable(format!("the simulated network did not take it: {e}"))
        }
    })?;
    tracing::info!(from = %from, "demo: a simulated customer answered");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(PhoneReplySent {
            from,
            text: sent.text,
            at: sent.at,
        }),
    )
        .into_response())
}

/// The demo's phones; a gateway without them has no such routes, this is only a second guard.
fn demo_phone(state: &AppState) -> Result<std::sync::Arc<DemoPhone>, ApiError> {
    state
        .phone
        .clone()
        .ok_or_else(|| ApiError::not_found("no such endpoint"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimConfig, Simulator};

    #[tokio::test]
    async fn answers_are_listed_with_their_number() {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let phone = DemoPhone::new(sim.clone());
        assert!(phone.numbers().is_empty());
        let t = phone.reply("+12025550123", "1").unwrap();
        assert_eq!(t.text, "1");
        let numbers = phone.numbers();
        assert_eq!(numbers.len(), 1);
        assert_eq!(numbers[0].number, "+12025550123");
        assert_eq!(numbers[0].replied[0].text, "1");
        assert!(numbers[0].received.is_empty());
        assert!(phone.reply("not a number", "1").is_err());
        assert_eq!(
            phone.numbers()[0].replied.len(),
            1,
            "a refused answer is not kept"
        );
        sim.shutdown().await;
    }
}
