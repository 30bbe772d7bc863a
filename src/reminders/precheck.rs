//! The precheck: before a reminder step goes to the modem, the billing system is asked
//! whether it still applies (an invoice paid a minute ago gets no reminder). The dispatcher
//! asks ahead of the send, off the modem's worker: a slow billing system delays only its own
//! step.
//!
//! A POST of `{"type": "reminder.precheck", "plan": {…}, "step": {…}, "message": {…}}`,
//! signed like a webhook (Standard Webhooks headers, the `[webhooks] secret`). The answer is a
//! 2xx with `{"send": true}` or `{"send": false, "reason": "…"}`; anything else (timeout,
//! refused connection, another status, another body, an answer over 4 KiB, a URL the outbound
//! policy refuses) is "unavailable" and the configured policy decides
//! (`[reminders] precheck_on_error`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::outbound::OutboundPolicy;
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

/// The largest answer read: `{"send": false, "reason": "…"}` fits many times over, and a
/// billing system that streams more is not answering the question.
pub const MAX_ANSWER: usize = 4096;

/// The precheck client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the precheck HTTP client: {0}")]
pub struct PrecheckClientError(#[from] reqwest::Error);

/// Asks precheck URLs.
#[derive(Debug, Clone)]
pub struct Prechecker {
    client: reqwest::Client,
    outbound: OutboundPolicy,
    signer: Option<Signer>,
}

impl Prechecker {
    /// A client with this timeout, signing with `signer` when there is one, asking only
    /// where `outbound` allows.
    pub fn new(
        timeout: Duration,
        signer: Option<Signer>,
        outbound: OutboundPolicy,
    ) -> Result<Prechecker, PrecheckClientError> {
        let client = outbound
            .client_builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(crate::webhook::USER_AGENT)
            .build()?;
        Ok(Prechecker {
            client,
            outbound,
            signer,
        })
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
        // An IP literal never reaches the resolver; a URL given before the policy changed
        // obeys the policy of now.
        if let Err(why) = self.outbound.check_url_str(url) {
            tracing::warn!(message_id = %message.id, url = %crate::webhook::log_url(url), reason = %why, "precheck refused by the outbound policy");
            return Answer::Unavailable(crate::outbound::REFUSED.into());
        }
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
                let why = if crate::outbound::is_refused(&e) {
                    crate::outbound::REFUSED.to_string()
                } else if e.is_timeout() {
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
        let bytes = match read_capped(resp).await {
            Ok(b) => b,
            Err(why) => return Answer::Unavailable(why),
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

/// The answer's body, at most [`MAX_ANSWER`] bytes: no more is read, so a billing system that
/// streams without end costs neither memory nor time past the request's timeout.
async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let over = || "precheck answer over 4 KiB".to_string();
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(over());
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if body.len() + c.len() > MAX_ANSWER {
                    return Err(over());
                }
                body.extend_from_slice(&c);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err("no answer in time".into()),
            Err(e) => {
                return Err(format!(
                    "the answer was cut off: {}",
                    crate::webhook::error_chain(e)
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// An answer without a length that never ends is cut at 4 KiB, long before the timeout.
    #[tokio::test]
    async fn an_endless_answer_is_cut_at_4_kib() {
        let endless = futures_util::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(&[b' '; 1000]))
        });
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || async move { axum::body::Body::from_stream(endless) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = OutboundPolicy::allowing_loopback()
            .client_builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let started = Instant::now();
        let resp = client.post(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(resp.content_length(), None, "streamed, no length");
        let e = read_capped(resp).await.unwrap_err();
        assert_eq!(e, "precheck answer over 4 KiB");
        assert!(started.elapsed() < Duration::from_secs(5));

        // A short answer is read whole.
        let app =
            axum::Router::new().route("/", axum::routing::post(|| async { "{\"send\": true}" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let resp = client.post(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(read_capped(resp).await.unwrap(), b"{\"send\": true}");
    }
}
