//! The precheck: just before a reminder step goes to the modem, the billing system is asked
//! whether it still applies (an invoice paid a minute ago gets no reminder).
//!
//! A POST of `{"type": "reminder.precheck", "plan": {…}, "step": {…}, "message": {…}}`,
//! signed like a webhook (Standard Webhooks headers, the `[webhooks] secret`). The answer is a
//! 2xx with `{"send": true}` or `{"send": false, "reason": "…"}`; anything else (timeout,
//! refused connection, another status, another body) is "unavailable" and the configured
//! policy decides (`[reminders] precheck_on_error`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::store::Message;
use crate::store::plans::Plan;
use crate::webhook::Signer;

/// What the billing system said.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Send it.
    Send,
    /// Do not: cancel the step, with the system's reason if it gave one.
    Skip(Option<String>),
    /// It could not be asked: why.
    Unavailable(String),
}

#[derive(Deserialize)]
struct Reply {
    send: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// Asks precheck URLs.
#[derive(Debug, Clone)]
pub struct Prechecker {
    client: reqwest::Client,
    signer: Option<Signer>,
}

impl Prechecker {
    /// A client with this timeout, signing with `signer` when there is one.
    pub fn new(timeout: Duration, signer: Option<Signer>) -> Result<Prechecker, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(crate::webhook::USER_AGENT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Prechecker { client, signer })
    }

    /// The request body for a step.
    pub fn body(plan: &Plan, message: &Message, step: usize) -> serde_json::Value {
        let s = plan.steps.get(step);
        json!({
            "type": "reminder.precheck",
            "plan": {
                "id": plan.id,
                "invoice": plan.invoice,
                "to": plan.to,
                "amount": plan.amount,
                "currency": plan.currency,
                "due_date": plan.due_date,
                "status": plan.status,
                "metadata": plan.metadata,
            },
            "step": {
                "index": step,
                "template": s.map(|s| s.template.clone()),
                "offset": s.and_then(|s| s.offset.clone()),
                "planned_at": s.map(|s| s.planned_at),
            },
            "message": {
                "id": message.id,
                "to": message.to,
                "text": message.text,
            },
        })
    }

    /// Asks `url` about `message`, step `step` of `plan`.
    pub async fn ask(&self, url: &str, plan: &Plan, message: &Message, step: usize) -> Answer {
        let body = Prechecker::body(plan, message, step).to_string();
        let id = format!("precheck_{}_{}", message.id, message.history_len);
        let ts = chrono::Utc::now().timestamp();
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string());
        if let Some(s) = &self.signer {
            req = req.header("webhook-signature", s.sign(&id, ts, &body));
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    "no answer in time".to_string()
                } else {
                    format!("cannot reach it: {}", crate::webhook::error_chain(e))
                };
                return Answer::Unavailable(why);
            }
        };
        let status = resp.status();
        if !status.is_success() {
            return Answer::Unavailable(format!("it answered HTTP {}", status.as_u16()));
        }
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Answer::Unavailable(format!("the answer was cut off: {e}")),
        };
        match serde_json::from_slice::<Reply>(&bytes) {
            Ok(Reply { send: true, .. }) => Answer::Send,
            Ok(Reply {
                send: false,
                reason,
            }) => Answer::Skip(reason.map(|r| r.chars().take(200).collect())),
            Err(_) => Answer::Unavailable("its answer is not {\"send\": true|false}".to_string()),
        }
    }
}
