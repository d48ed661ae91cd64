//! Connections to the target database: where to connect, TLS, quoting,
//! cancelling, and DDL under `lock_timeout` with retries.

mod conninfo;
pub mod databases;
pub mod ident;
mod libpq_defaults;
pub mod pgpass;
pub mod redact;
pub mod retry;
pub mod target;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, CancelToken, Client, NoTls, Notification};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_util::sync::CancellationToken;

pub use ident::{quote_ident, quote_literal, quote_qualified};
pub use redact::redact;
pub use retry::{RetryNotice, RetryPolicy, execute_with_retry};
pub use target::{Source, Target, TlsMode};

/// What can go wrong talking to the database, as a caller needs to tell apart.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection settings do not parse.
    #[error("{setting} is not a usable connection string ({value}): {reason}")]
    BadTarget {
        /// Which setting holds the bad value.
        setting: &'static str,
        /// The value, redacted.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server could not be reached or refused us.
    #[error("cannot connect to {target} (from {setting}): {reason}")]
    Connect {
        /// The target, redacted.
        target: String,
        /// Which setting chose it.
        setting: &'static str,
        /// What the driver or server said, with a hint.
        reason: String,
    },
    /// A statement failed.
    #[error("{context}: {}", describe(source))]
    Sql {
        /// What was being done.
        context: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Every attempt timed out waiting for a lock.
    #[error(
        "gave up after {attempts} attempts: each waited lock_timeout ({}) for a lock another \
         session holds; find the blocker (pg_stat_activity / pg_locks), or raise lock_retries",
        humantime::format_duration(*lock_timeout)
    )]
    LockTimeout {
        /// Attempts made.
        attempts: u32,
        /// The bound of each attempt.
        lock_timeout: Duration,
    },
    /// The operation was cancelled (abort).
    #[error("cancelled")]
    Cancelled,
    /// The connection went away (or stopped answering) mid-operation.
    #[error("{context}: the connection was lost ({reason})")]
    Lost {
        /// What was being done.
        context: String,
        /// What showed it.
        reason: String,
    },
    /// cutover will not do it: the database's state forbids it (why, and
    /// what to do instead).
    #[error("{0}")]
    Refused(String),
}

impl DbError {
    /// Wraps a driver error with what was being done.
    pub fn sql(context: impl Into<String>, source: tokio_postgres::Error) -> DbError {
        DbError::Sql {
            context: context.into(),
            source,
        }
    }

    /// The SQLSTATE, when the server sent one.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            DbError::Sql { source, .. } => source.code(),
            _ => None,
        }
    }

    /// The session is gone: closed, terminated by an administrator, the
    /// server shutting down or restarting, or unreachable. Worth a
    /// reconnect; any other error is about the statement.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            DbError::Lost { .. } | DbError::Connect { .. } => true,
            DbError::Sql { source, .. } => is_lost(source),
            _ => false,
        }
    }
}

/// A driver error that means the session is gone.
pub fn is_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            // 08: connection exception; 57P01-03: admin shutdown, crash
            // shutdown, cannot connect now.
            c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03")
        }
        // No SQLSTATE and not a server error: an I/O failure on the socket.
        None => e.as_db_error().is_none() && std::error::Error::source(e).is_some(),
    }
}

/// How long cutover waits for a cancelled statement to end (or for the
/// cancel request itself) before treating the connection as lost.
pub const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// A driver error as one line: the server's message, detail and hint.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                s.push_str(&format!("; {detail}"));
            }
            if let Some(hint) = db.hint() {
                s.push_str(&format!("; hint: {hint}"));
            }
            s
        }
        None => {
            use std::error::Error;
            match e.source() {
                Some(inner) => format!("{e}: {inner}"),
                None => e.to_string(),
            }
        }
    }
}

/// One connection to the target database, able to cancel its own statement.
pub struct Conn {
    /// The driver client.
    pub client: Client,
    target: Arc<Target>,
    /// Why the connection ended, as the server or the socket said it
    /// (queries on a closed connection only say "connection closed").
    closed: Arc<std::sync::Mutex<Option<String>>>,
    pid: i32,
    version: u32,
}

impl Conn {
    /// `server_version_num` (150004 for 15.4), read when connecting.
    pub fn server_version_num(&self) -> u32 {
        self.version
    }

    /// Connects with the target's TLS mode and `application_name = 'cutover'`.
    pub async fn connect(target: &Target) -> Result<Conn, DbError> {
        Self::connect_inner(target, None).await
    }

    /// Connects and forwards the server's notifications (LISTEN) to a channel.
    pub async fn connect_listening(
        target: &Target,
    ) -> Result<(Conn, mpsc::UnboundedReceiver<Notification>), DbError> {
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((Self::connect_inner(target, Some(tx)).await?, rx))
    }

    async fn connect_inner(
        target: &Target,
        notify: Option<mpsc::UnboundedSender<Notification>>,
    ) -> Result<Conn, DbError> {
        let mut target = target.clone();
        target.config.application_name("cutover");
        let target = Arc::new(target);
        let connect_err = |reason: String| DbError::Connect {
            target: target.display(),
            setting: target.source.describe(),
            reason,
        };
        let closed: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let client = match target.tls {
            TlsMode::Disable => {
                let (client, connection) = target
                    .config
                    .connect(NoTls)
                    .await
                    .map_err(|e| connect_err(connect_hint(&e)))?;
                tokio::spawn(drive(connection, notify, closed.clone()));
                client
            }
            mode => {
                let tls =
                    MakeRustlsConnect::new(tls::client_config(mode, target.root_cert.as_deref())?);
                let (client, connection) = target
                    .config
                    .connect(tls)
                    .await
                    .map_err(|e| connect_err(connect_hint(&e)))?;
                tokio::spawn(drive(connection, notify, closed.clone()));
                client
            }
        };
        // If cutover dies mid-statement, the server notices within a second
        // and cancels the statement instead of finishing it (PG 14+).
        if let Err(e) = client
            .batch_execute("SET client_connection_check_interval = '1s'")
            .await
        {
            tracing::debug!("client_connection_check_interval not set: {e}");
        }
        let row = client
            .query_one(
                "SELECT pg_backend_pid(), current_setting('server_version_num', true)",
                &[],
            )
            .await
            .map_err(|e| DbError::sql("reading backend pid and server version", e))?;
        Ok(Conn {
            pid: row.get(0),
            version: row
                .get::<_, Option<String>>(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            client,
            target,
            closed,
        })
    }

    /// Why the connection ended, when it has (the server's message, such
    /// as "terminating connection due to administrator command").
    pub fn closed_reason(&self) -> Option<String> {
        self.closed.lock().ok().and_then(|c| c.clone())
    }

    /// The server process id of this connection (to spot our own locks).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The target this connection talks to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A handle that can cancel this connection's running statement.
    pub fn canceller(&self) -> Canceller {
        Canceller {
            token: self.client.cancel_token(),
            target: self.target.clone(),
        }
    }

    /// Runs one or more statements; if `cancel` fires first, asks the server
    /// to cancel them and waits until they have really stopped.
    pub async fn execute_cancellable(
        &self,
        sql: &str,
        cancel: &CancellationToken,
    ) -> Result<(), DbError> {
        self.cancellable(self.client.batch_execute(sql), cancel, || first_line(sql))
            .await
    }

    /// Awaits a query on this connection; if `cancel` fires first, asks the
    /// server to cancel it and waits until it has really stopped, so the
    /// connection is idle again when this returns.
    pub async fn cancellable<T>(
        &self,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
        cancel: &CancellationToken,
        context: impl FnOnce() -> String,
    ) -> Result<T, DbError> {
        tokio::pin!(fut);
        tokio::select! {
            biased;
            r = &mut fut => r.map_err(|e| DbError::sql(context(), e)),
            _ = cancel.cancelled() => {
                let _ = tokio::time::timeout(CANCEL_WAIT, self.canceller().cancel()).await;
                // It ends with "canceling statement due to user request", or
                // finished just before the cancel arrived: either way, over.
                // A half-open connection never answers: bounded.
                match tokio::time::timeout(CANCEL_WAIT, fut).await {
                    Ok(_) => Err(DbError::Cancelled),
                    Err(_) => Err(DbError::Lost {
                        context: context(),
                        reason: format!(
                            "the server did not confirm the cancel within {}s",
                            CANCEL_WAIT.as_secs()
                        ),
                    }),
                }
            }
        }
    }
}

/// An error that may carry the server's SQLSTATE.
pub trait SqlCode {
    /// The SQLSTATE, when the server sent one.
    fn sql_code(&self) -> Option<&tokio_postgres::error::SqlState>;
}

impl SqlCode for tokio_postgres::Error {
    fn sql_code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.code()
    }
}

impl SqlCode for DbError {
    fn sql_code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.code()
    }
}

/// Runs `op`, and again (at most twice) when it fails with "canceling
/// statement due to user request". For statements nothing cancels on
/// purpose (a clean-up, a ROLLBACK): a cancel request is a signal the
/// server delivers some time after it was sent, so when the statement it
/// was meant for had just ended, it lands on the next one (seen: a
/// clean-up's `DROP INDEX CONCURRENTLY`, 30 ms after an abort).
pub async fn past_late_cancel<
    T,
    E: SqlCode + std::fmt::Display,
    F: Future<Output = Result<T, E>>,
>(
    mut op: impl FnMut() -> F,
) -> Result<T, E> {
    let mut result = op().await;
    for _ in 0..2 {
        match &result {
            Err(e) if e.sql_code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => {
                tracing::debug!("cancelled by a late cancel request; again: {e}");
                result = op().await;
            }
            _ => break,
        }
    }
    result
}

/// Polls a connection, forwarding notifications when asked to.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notify: Option<mpsc::UnboundedSender<Notification>>,
    closed: Arc<std::sync::Mutex<Option<String>>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(n)) => {
                if let Some(tx) = &notify {
                    let _ = tx.send(n);
                }
            }
            Ok(AsyncMessage::Notice(n)) => tracing::debug!("server notice: {}", n.message()),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("connection closed: {e}");
                if let Ok(mut c) = closed.lock() {
                    *c = Some(describe(&e));
                }
                break;
            }
        }
    }
}

/// Cancels the running statement of one connection.
#[derive(Clone)]
pub struct Canceller {
    token: CancelToken,
    target: Arc<Target>,
}

impl Canceller {
    /// Sends the cancel request; failures are logged, not fatal.
    pub async fn cancel(&self) {
        let result = match self.target.tls {
            TlsMode::Disable => self.token.cancel_query(NoTls).await,
            mode => match tls::client_config(mode, self.target.root_cert.as_deref()) {
                Ok(cfg) => self.token.cancel_query(MakeRustlsConnect::new(cfg)).await,
                Err(e) => {
                    tracing::warn!("cannot cancel: {e}");
                    return;
                }
            },
        };
        if let Err(e) = result {
            tracing::warn!("cancel request failed: {e}");
        }
    }
}

fn first_line(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or("");
    if line.len() > 80 {
        let cut = (0..=80)
            .rev()
            .find(|i| line.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}…", &line[..cut])
    } else {
        line.to_string()
    }
}

fn connect_hint(e: &tokio_postgres::Error) -> String {
    let base = describe(e);
    let lower = base.to_lowercase();
    let hint = if lower.contains("password") {
        "check the user and password (PGPASSWORD or ~/.pgpass)"
    } else if lower.contains("refused")
        || lower.contains("timed out")
        || lower.contains("no such file")
    {
        "is the server running and reachable at that host and port?"
    } else if lower.contains("does not exist") {
        "check the database name"
    } else if lower.contains("tls") || lower.contains("ssl") || lower.contains("certificate") {
        "check sslmode and sslrootcert"
    } else {
        "check the connection settings"
    };
    format!("{base} ({hint})")
}
