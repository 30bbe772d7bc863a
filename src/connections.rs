//! Serving HTTP connections within bounds: how long a client may take to send a request's
//! header and its body, and how many connections are open at once.
//!
//! hyper without a timer (as `axum::serve` runs it) waits for ever for a header that never
//! ends: a client that sends half a request holds its connection, and a file descriptor, until
//! it goes away, and enough of them stop the daemon from accepting anyone. Here each
//! connection is served by hyper's HTTP/1 with tokio's timer:
//!
//! - a request's header must arrive whole within `header_timeout` of the connection opening or
//!   of the previous answer, else hyper closes the connection (so an idle keep-alive
//!   connection is closed after the same time);
//! - a request's body must arrive whole within `body_timeout` of its header, else reading it
//!   fails and the request is refused;
//! - at most `max_connections` are open. At the limit, a new connection closes the oldest one
//!   that has no request in progress (a header still coming, an idle keep-alive), so a real
//!   client is served at once even while a stranger holds every slot with half-sent requests;
//!   when every open connection is busy with a request, the new one waits (and the ones after
//!   it wait in the kernel's backlog) until one ends.
//!
//! Each request carries the peer's address as [`ConnectInfo<SocketAddr>`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// `[http]` bounds on connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send a whole request header (from the connection's start, or from
    /// the previous answer on a kept-alive connection).
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body, from its header.
    pub body_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// The request body took longer than `body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// Counts the requests in progress on a connection while it lives.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A body with an optional deadline (a request's) and an optional [`Busy`] mark (a
/// response's: the request is in progress until its answer is written out, which for
/// `/v1/events` is as long as the stream runs).
struct Bounded<B> {
    inner: B,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    _busy: Option<Busy>,
}

impl<B> HttpBody for Bounded<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(d) = &mut this.deadline
            && d.as_mut().poll(cx).is_ready()
        {
            this.deadline = None;
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// An open connection as the accept loop sees it.
struct Slot {
    /// Requests in progress on it.
    busy: Arc<AtomicUsize>,
    /// Closes it (a child of the shutdown token: shutdown closes them all).
    close: CancellationToken,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Open {
    next: u64,
    slots: BTreeMap<u64, Slot>,
}

#[derive(Default)]
struct Table {
    open: Mutex<Open>,
    /// One connection ended (room for a waiting one).
    ended: Notify,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for a connection and registers it: at the limit, the oldest connection with
    /// no request in progress is told to close. `None` when every connection is busy.
    fn admit(&self, max: usize, close: CancellationToken) -> Option<(u64, Arc<AtomicUsize>)> {
        let mut g = self.lock();
        while g.slots.len() >= max.max(1) {
            let idle = g
                .slots
                .iter()
                .find(|(_, s)| s.busy.load(Ordering::SeqCst) == 0)
                .map(|(id, _)| *id)?;
            if let Some(s) = g.slots.remove(&idle) {
                s.close.cancel();
                metrics::counter!(crate::metrics::HTTP_EVICTED).increment(1);
            }
        }
        let id = g.next;
        g.next += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        g.slots.insert(
            id,
            Slot {
                busy: busy.clone(),
                close,
            },
        );
        Some((id, busy))
    }

    fn remove(&self, id: u64) {
        self.lock().slots.remove(&id);
        self.ended.notify_one();
    }
}

/// Removes a connection from the table when its task ends, however it ends.
struct Registered {
    table: Arc<Table>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.table.remove(self.id);
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` fires; then stops accepting,
/// closes idle connections, lets requests in progress finish and returns once every
/// connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let table = Arc::new(Table::default());
    let tasks = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    'accept: loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let close = shutdown.child_token();
        let (id, busy) = loop {
            // Registered before looking, so that an end between the look and the wait counts.
            let ended = table.ended.notified();
            if let Some(admitted) = table.admit(limits.max_connections, close.clone()) {
                break admitted;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break 'accept,
                _ = ended => {}
            }
        };
        let registered = Registered {
            table: table.clone(),
            id,
        };
        let app = app.clone();
        let body_timeout = limits.body_timeout;
        let requests = busy.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let app = app.clone();
                let mark = Busy::enter(&requests);
                async move {
                    let mut req = req.map(|b| Bounded {
                        inner: b,
                        deadline: Some(Box::pin(tokio::time::sleep(body_timeout))),
                        _busy: None,
                    });
                    req.extensions_mut().insert(ConnectInfo(peer));
                    let resp = match app.oneshot(req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    };
                    Ok::<_, Infallible>(resp.map(|b| {
                        Body::new(Bounded {
                            inner: b,
                            deadline: None,
                            _busy: Some(mark),
                        })
                    }))
                }
            });
        let conn = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tasks.spawn(async move {
            let _registered = registered;
            let mut conn = std::pin::pin!(conn);
            let mut closing = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "connection ended");
                        }
                        break;
                    }
                    _ = close.cancelled(), if !closing => {
                        // No request in progress: dropping the connection closes it now. With
                        // one, it ends after its answer.
                        if busy.load(Ordering::SeqCst) == 0 {
                            tracing::debug!(%peer, "idle connection closed");
                            break;
                        }
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        });
    }
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// As hyper's own server did: an error of one connection is nothing; any other (out of file
/// descriptors) is logged and accepting pauses for a second, hoping some get closed.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Raises the process's soft limit of open files to its hard limit: every connection is a
/// file descriptor, and the usual soft limit (1024) is below what `max_connections`, the
/// store and the modems need together. Returns the limit now in force.
pub fn raise_open_files_limit() -> Result<u64, nix::Error> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_oldest_idle_connection_makes_room() {
        let t = Table::default();
        let root = CancellationToken::new();
        let (a, busy_a) = t.admit(2, root.child_token()).unwrap();
        let (b, _) = t.admit(2, root.child_token()).unwrap();
        busy_a.fetch_add(1, Ordering::SeqCst);
        // a is busy: b, the oldest idle one, goes.
        let (c, busy_c) = t.admit(2, root.child_token()).unwrap();
        {
            let g = t.lock();
            assert!(g.slots.contains_key(&a) && g.slots.contains_key(&c));
            assert!(!g.slots.contains_key(&b));
        }
        busy_c.fetch_add(1, Ordering::SeqCst);
        // Both busy: nobody is closed, the newcomer waits.
        assert!(t.admit(2, root.child_token()).is_none());
        t.remove(a);
        assert!(t.admit(2, root.child_token()).is_some());
    }
}
