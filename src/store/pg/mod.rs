//! The PostgreSQL backend: several gateways on one database (see docs/scaling.md).
//!
//! The store's seam is synchronous (sled's calls are), and tokio-postgres is asynchronous. The
//! pool's connections live on a small runtime of the store's own; a call runs its queries
//! there and waits for them. On the gateway's (multi-threaded) runtime the waiting worker
//! first steps aside ([`tokio::task::block_in_place`]), so the other tasks go on; on a
//! single-threaded runtime the queries run on a scoped thread. Closures given to the store
//! ([`PgStore::update`]) run on the caller's thread, between queries, never inside them.
//!
//! Every change is one transaction that commits before the call returns, with
//! `synchronous_commit` on: an acknowledged change is on the server's disk.
//!
//! Schema: `migrations/*.sql`, applied in order at connect (and by `smsgate store migrate`)
//! under an advisory lock, so gateways starting together apply each once.

mod audit;
mod body;
mod check;
mod copy;
mod erasure;
mod idempotency;
mod inbound;
mod leases;
mod listing;
mod messages;
mod migrate;
mod notify;
mod optout;
mod outbox;
mod plans;
mod reports;
mod retention;
mod templates;
#[doc(hidden)]
pub mod testdb;
mod tombstones;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::broadcast;

use super::live::{self, LiveEvent};
use super::{Listeners, Notifier, StoreError};

pub use copy::{DATA_TABLES, PgLoader, RecordSink};
pub use migrate::{MIGRATIONS, Migrated, Migration};

/// How long a call waits for a connection (or to make one) before it fails: the API answers
/// 503 while the database is away, rather than holding the client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool: enough concurrent transactions for PostgreSQL to group their
/// commits (one WAL flush for many), few enough for a small server's `max_connections`.
const POOL_SIZE: usize = 32;

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    /// The runtime the pool's connections live on; shut down in the background when the
    /// store is dropped (a runtime may not be dropped inside another one).
    rt: Option<tokio::runtime::Runtime>,
    /// That runtime's handle.
    handle: tokio::runtime::Handle,
    /// What hears every change (the webhook outbox): given at construction, never changed.
    notifier: Option<Arc<dyn Notifier>>,
    /// Live events for this gateway's subscribers.
    live: broadcast::Sender<LiveEvent>,
    /// The database's URL without its password.
    location: String,
    /// What this gateway tells the others ([`notify`]).
    signals: notify::Signals,
    /// Woken when another gateway made work due: the dispatcher's own wake-up.
    due_elsewhere: Arc<tokio::sync::Notify>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// `url` without its password, for logs and errors; also when it does not parse as a URL
/// (then what lies between `:` and `@` of a `scheme://` URL is hidden all the same).
pub fn redacted(url: &str) -> String {
    if let Ok(mut u) = url::Url::parse(url) {
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        return u.to_string();
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        return match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                format!("{scheme}://{user}:***@{host}{tail}")
            }
            None => url.to_string(),
        };
    }
    // A key=value connection string: only `password=` is secret.
    url.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A database error as a store error: the server's or the driver's words with their causes
/// (the driver's own are short: "error connecting to server", the reason is its cause), never
/// the URL.
pub(crate) fn db_error(e: impl std::error::Error) -> StoreError {
    StoreError::Io(format!("database: {}", with_causes(&e)))
}

/// An error and the errors it comes from, on one line.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let words = c.to_string();
        if !line.contains(&words) {
            line.push_str(": ");
            line.push_str(&words);
        }
        cause = c.source();
    }
    line
}

impl PgStore {
    /// Connects to `url` (a `postgres://` URL or a `key=value` string), applies the
    /// migrations this build knows, and keeps `listeners` (see [`Notifier`]).
    pub fn connect(url: &str, listeners: Vec<Arc<dyn Notifier>>) -> Result<PgStore, StoreError> {
        let store = PgStore::open(url, listeners)?;
        store.migrate().map_err(|e| match e {
            StoreError::Io(m) => StoreError::Io(format!("{} ({})", m, redacted(url))),
            e => e,
        })?;
        Ok(store)
    }

    /// [`PgStore::connect`] without applying the migrations (`smsgate store migrate` applies
    /// them itself, to say which).
    pub fn open(url: &str, listeners: Vec<Arc<dyn Notifier>>) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Io(format!(
                "storage url {} is not a PostgreSQL URL: {e}",
                redacted(url)
            ))
        })?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("smsgate")
            // Every acknowledged change is on disk: whatever the server's default says.
            .options("-c synchronous_commit=on");
        let listen_config = config.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("smsgate-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io(format!("cannot start the database runtime: {e}")))?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Io(format!("cannot make the database pool: {e}")))?;
        let notifier: Option<Arc<dyn Notifier>> = match listeners.len() {
            0 => None,
            1 => listeners.into_iter().next(),
            _ => Some(Arc::new(Listeners(listeners))),
        };
        let live = live::channel();
        let due_elsewhere = Arc::new(tokio::sync::Notify::new());
        let origin = format!("{:016x}", fastrand::u64(..));
        let signals = notify::start(
            rt.handle(),
            pool.clone(),
            listen_config,
            origin,
            notify::Wake {
                live: live.clone(),
                due: due_elsewhere.clone(),
                outbox: notifier.clone(),
            },
        );
        let store = PgStore {
            pool,
            handle: rt.handle().clone(),
            rt: Some(rt),
            notifier,
            live,
            location: redacted(url),
            signals,
            due_elsewhere,
        };
        Ok(store)
    }

    /// Runs `fut` (queries on the pool) to its end and returns what it gave. See the module's
    /// documentation for why and how it waits.
    pub(crate) fn run<T: Send>(&self, fut: impl Future<Output = T> + Send) -> T {
        let h = &self.handle;
        match tokio::runtime::Handle::try_current() {
            Ok(cur) if cur.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(fut))
            }
            Ok(_) => std::thread::scope(|s| match s.spawn(|| h.block_on(fut)).join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            }),
            Err(_) => h.block_on(fut),
        }
    }

    /// Runs `fut` on the store's runtime while the calling task awaits it: no worker of the
    /// caller's runtime is held (the path of a single accepted message).
    pub(crate) async fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        match self.handle.spawn(fut).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// A connection from `pool`, as [`PgStore::client`] gives one.
    pub(crate) async fn client_of(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
        pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => db_error(e),
            e => StoreError::Io(format!("database unavailable: {e}")),
        })
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        PgStore::client_of(&self.pool).await
    }

    /// Why the store cannot be written now, if it cannot: the database does not answer.
    pub fn health(&self) -> Option<String> {
        self.run(async {
            let c = self.client().await?;
            c.simple_query("SELECT 1").await.map_err(db_error)?;
            Ok::<_, StoreError>(())
        })
        .err()
        .map(|e| e.to_string())
    }

    /// The database's URL without its password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Woken when another gateway on the database made a message due.
    pub fn due_elsewhere(&self) -> Arc<tokio::sync::Notify> {
        self.due_elsewhere.clone()
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_migrates_once_and_hides_the_password() {
        let Some(url) = testdb::database() else {
            return;
        };
        let store = PgStore::connect(&url, Vec::new()).unwrap();
        assert_eq!(store.health(), None);
        // Applied at connect: nothing left to apply, and a second gateway changes nothing.
        assert_eq!(
            store.migrate().unwrap(),
            Migrated {
                from: MIGRATIONS.len() as i32,
                applied: vec![]
            }
        );
        let other = PgStore::connect(&url, Vec::new()).unwrap();
        assert_eq!(other.migrate().unwrap().applied, Vec::<i32>::new());

        let secret = url.replacen("postgres@", "postgres:hunter2@", 1);
        assert!(
            !redacted(&secret).contains("hunter2"),
            "{}",
            redacted(&secret)
        );
        assert!(redacted("host=x password=hunter2 user=y").contains("password=***"));
        // A refused connection is an error that names the server, not its password.
        let closed = format!("postgres://u:hunter2@127.0.0.1:{}/x", 1);
        let e = PgStore::connect(&closed, Vec::new())
            .err()
            .unwrap()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn works_from_both_kinds_of_runtime() {
        let Some(url) = testdb::database() else {
            return;
        };
        let store = PgStore::connect(&url, Vec::new()).unwrap();
        assert_eq!(store.health(), None);
        let s2 = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { store.health() })
        });
        assert_eq!(s2.join().unwrap(), None);
    }
}
