//! `GET /v1/events`: live events as server-sent events (`text/event-stream`), for dashboards
//! and `smsgate tail`. Each event is `event: message` (a message's new history entry) or
//! `event: inbound` (a stored inbound message) with one `data:` line of JSON; a `: keep-alive`
//! comment goes every 15 s. Best effort: a client that falls behind gets `event: lagged` with
//! the number of events it missed (the history in the store is the record).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use crate::store::live::LiveEvent;

/// `GET /v1/events`
#[utoipa::path(get, path = "/v1/events", tag = "gateway",
    responses((status = 200, description = "Server-sent events: `message` and `inbound`, one JSON `data:` line each", content_type = "text/event-stream", body = LiveEvent),
        (status = 401, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.store.subscribe();
    let stop = state.shutdown.clone();
    let events = futures_util::stream::unfold((rx, stop), |(mut rx, stop)| async move {
        let got = tokio::select! {
            _ = stop.cancelled() => return None,
            r = rx.recv() => r,
        };
        let ev = match got {
            Ok(e) => {
                let name = match &e {
                    LiveEvent::Message { .. } => "message",
                    LiveEvent::Inbound { .. } => "inbound",
                };
                Event::default()
                    .event(name)
                    .json_data(&e)
                    .unwrap_or_else(|_| Event::default().comment("unencodable event"))
            }
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(ev), (rx, stop)))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
