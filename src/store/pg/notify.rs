//! What one gateway tells the others sharing the database, through PostgreSQL's
//! LISTEN/NOTIFY: live events (`GET /v1/events`, the dashboard), new due work (wakes their
//! dispatchers) and new webhook deliveries (wakes their senders).
//!
//! Sent after the change committed, from a task of its own that batches what piles up, never
//! inside the change's transaction: PostgreSQL serialises the commits of transactions that
//! notify, which would undo the grouping of concurrent commits. Best effort, like live events
//! themselves: a gateway that misses a wake-up still finds its work at its next look (at most
//! a minute later), and after its listening connection comes back it looks at once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, mpsc};

use crate::store::Notifier;
use crate::store::live::LiveEvent;

/// The channel of live events.
const LIVE: &str = "smsgate_live";
/// The channel of wake-ups.
const WORK: &str = "smsgate_work";
/// PostgreSQL refuses payloads of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_500;
/// Signals waiting to be sent before new ones are dropped (live events are best effort).
const QUEUE: usize = 4_096;

/// What a gateway says.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    /// A live event.
    Live(LiveEvent),
    /// A message became due (new, requeued, rescheduled).
    Due,
    /// New webhook deliveries are in the outbox.
    Outbox,
}

#[derive(Serialize, Deserialize)]
struct LivePayload {
    /// The sending gateway (its own events reach its subscribers directly).
    o: String,
    e: Vec<LiveEvent>,
}

#[derive(Serialize, Deserialize)]
struct WorkPayload {
    o: String,
    #[serde(default)]
    due: bool,
    #[serde(default)]
    outbox: bool,
}

/// The sending half: cheap to call from any thread, never waits.
pub(crate) struct Signals {
    tx: mpsc::Sender<Signal>,
}

impl Signals {
    /// Queues a signal for the other gateways.
    pub(crate) fn send(&self, s: Signal) {
        let _ = self.tx.try_send(s);
    }
}

/// What the listening half wakes in this gateway.
#[derive(Clone)]
pub(crate) struct Wake {
    /// This gateway's live subscribers.
    pub(crate) live: broadcast::Sender<LiveEvent>,
    /// This gateway's dispatcher (due work elsewhere).
    pub(crate) due: Arc<Notify>,
    /// This gateway's webhook sender.
    pub(crate) outbox: Option<Arc<dyn Notifier>>,
}

impl Wake {
    fn all(&self) {
        self.due.notify_waiters();
        if let Some(n) = &self.outbox {
            n.wake();
        }
    }
}

/// Starts both halves on `rt`: the sender on the pool, the listener on a connection of its
/// own (made again when it drops).
pub(crate) fn start(
    rt: &tokio::runtime::Handle,
    pool: deadpool_postgres::Pool,
    config: tokio_postgres::Config,
    origin: String,
    wake: Wake,
) -> Signals {
    let (tx, rx) = mpsc::channel(QUEUE);
    rt.spawn(send_loop(pool, origin.clone(), rx));
    rt.spawn(listen_loop(config, origin, wake));
    Signals { tx }
}

async fn send_loop(pool: deadpool_postgres::Pool, origin: String, mut rx: mpsc::Receiver<Signal>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut events = Vec::new();
        let (mut due, mut outbox) = (false, false);
        for s in batch.drain(..) {
            match s {
                Signal::Live(e) => events.push(e),
                Signal::Due => due = true,
                Signal::Outbox => outbox = true,
            }
        }
        let mut payloads: Vec<(&str, String)> = Vec::new();
        if (due || outbox)
            && let Ok(p) = serde_json::to_string(&WorkPayload {
                o: origin.clone(),
                due,
                outbox,
            })
        {
            payloads.push((WORK, p));
        }
        for chunk in live_payloads(&origin, events) {
            payloads.push((LIVE, chunk));
        }
        let Ok(c) = pool.get().await else {
            continue;
        };
        for (channel, p) in payloads {
            if let Err(e) = c.execute("SELECT pg_notify($1, $2)", &[&channel, &p]).await {
                tracing::debug!(error = %e, "could not tell the other gateways");
                break;
            }
        }
    }
}

/// Live events as payloads under PostgreSQL's limit: as many per payload as fit; an event too
/// big on its own (a long inbound text) goes with its text cut.
fn live_payloads(origin: &str, events: Vec<LiveEvent>) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Vec<LiveEvent> = Vec::new();
    let encode = |e: Vec<LiveEvent>| {
        serde_json::to_string(&LivePayload {
            o: origin.to_string(),
            e,
        })
        .unwrap_or_default()
    };
    for mut e in events {
        if let LiveEvent::Inbound { text, .. } = &mut e
            && text.len() > MAX_PAYLOAD / 2
        {
            let mut end = MAX_PAYLOAD / 2;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        cur.push(e);
        if encode(cur.clone()).len() > MAX_PAYLOAD {
            let last = cur.pop();
            if !cur.is_empty() {
                out.push(encode(std::mem::take(&mut cur)));
            }
            cur.extend(last);
        }
    }
    if !cur.is_empty() {
        let p = encode(cur);
        if p.len() <= MAX_PAYLOAD {
            out.push(p);
        }
    }
    out
}

async fn listen_loop(config: tokio_postgres::Config, origin: String, wake: Wake) {
    let mut first = true;
    loop {
        match config.connect(tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let (ntx, mut nrx) = mpsc::unbounded_channel();
                let stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let driver = tokio::spawn(async move {
                    let mut stream = std::pin::pin!(stream);
                    while let Some(m) = stream.next().await {
                        match m {
                            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                let _ = ntx.send(n);
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {LIVE}; LISTEN {WORK}"))
                    .await
                    .is_ok()
                {
                    if !first {
                        // Wake-ups may have been missed while the connection was down.
                        wake.all();
                    }
                    first = false;
                    while let Some(n) = nrx.recv().await {
                        handle(&origin, &wake, n.channel(), n.payload());
                    }
                }
                driver.abort();
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot listen to the other gateways; trying again");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn handle(origin: &str, wake: &Wake, channel: &str, payload: &str) {
    match channel {
        LIVE => {
            if let Ok(p) = serde_json::from_str::<LivePayload>(payload)
                && p.o != origin
            {
                for e in p.e {
                    let _ = wake.live.send(e);
                }
            }
        }
        WORK => {
            if let Ok(p) = serde_json::from_str::<WorkPayload>(payload)
                && p.o != origin
            {
                if p.due {
                    wake.due.notify_waiters();
                }
                if p.outbox
                    && let Some(n) = &wake.outbox
                {
                    n.wake();
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn payloads_stay_under_the_limit_and_keep_every_event() {
        let ev = |i: usize, text: String| LiveEvent::Inbound {
            inbound_id: format!("in{i}"),
            from: "+15550000001".into(),
            text,
            at: Utc::now(),
        };
        let mut events: Vec<LiveEvent> = (0..200).map(|i| ev(i, "short".into())).collect();
        events.push(ev(999, "é".repeat(20_000)));
        let payloads = live_payloads("me", events);
        assert!(payloads.len() > 1);
        let mut n = 0;
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            let back: LivePayload = serde_json::from_str(p).unwrap();
            n += back.e.len();
        }
        assert_eq!(n, 201, "none lost, the long one cut");
    }
}
