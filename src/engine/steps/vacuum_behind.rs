//! Vacuum behind a backfill. Every `UPDATE` leaves the old row version
//! dead and writes the new one where there is room — at the end of the
//! table, once its pages are full. So a backfill doubles its table, and on a
//! table larger than `shared_buffers` every new page is first written as
//! zeros when the table is extended: writes the kernel holds back and then
//! flushes all at once (about every 30 s), hundreds of megabytes that stall
//! the application's commits behind them.
//!
//! A `VACUUM` on a second connection every few seconds frees the dead
//! versions of the rows already done, and the next batches put their new
//! versions there instead: the table hardly grows and nothing is extended.
//! `INDEX_CLEANUP OFF` keeps each pass to the heap (the index entries go at
//! the next ordinary vacuum), `TRUNCATE OFF` never takes the exclusive lock
//! a truncation needs, and `SKIP_LOCKED` skips a pass rather than wait
//! behind autovacuum or DDL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::db::{Conn, DbError, quote_qualified};
use crate::engine::events::EventKind;

/// Passes start at least this far apart.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// A pass starts no sooner than this many times the last one's duration
/// after it: on a huge table, where a pass takes long, vacuum takes at
/// most a fifth of the time.
const DUTY: u32 = 5;
/// No pass until at least this many rows were rewritten since the last.
const MIN_ROWS: i64 = 10_000;

/// Why a backfill runs without vacuum behind it (None: it may).
pub async fn unavailable(conn: &Conn, table: &str) -> Option<String> {
    if conn.server_version_num() < 120_000 {
        return Some(
            "it needs PostgreSQL 12 or later (VACUUM's INDEX_CLEANUP, TRUNCATE and SKIP_LOCKED)"
                .into(),
        );
    }
    // Who may VACUUM a table: its owner (or a member), the database's
    // owner, a superuser.
    let allowed = conn
        .client
        .query_one(
            "SELECT pg_has_role(c.relowner, 'USAGE') OR pg_has_role(d.datdba, 'USAGE'), current_user::text
             FROM pg_class c, pg_database d
             WHERE c.oid = to_regclass($1) AND d.datname = current_database()",
            &[&quote_qualified(table)],
        )
        .await;
    match allowed {
        Ok(row) if row.get::<_, bool>(0) => None,
        Ok(row) => Some(format!(
            "role {} may not VACUUM {table} (only its owner, the database owner or a superuser may)",
            row.get::<_, String>(1)
        )),
        Err(e) => Some(DbError::sql("checking who may VACUUM the table", e).to_string()),
    }
}

/// The passes of one backfill step.
pub struct VacuumBehind {
    conn: Arc<Conn>,
    sql: String,
    cancel: CancellationToken,
    interval: Duration,
    running: Option<JoinHandle<Result<(), DbError>>>,
    last_start: Instant,
    last_took: Duration,
    rows_at_last: i64,
    /// Passes completed.
    pub passes: u64,
    /// Total time the passes took.
    pub took: Duration,
}

impl VacuumBehind {
    /// Opens the second connection, or says (as a notice) why the backfill
    /// runs without vacuum behind it.
    pub async fn start(ctx: &Ctx<'_>, table: &str, rows_updated: i64) -> Option<VacuumBehind> {
        let opened = VacuumBehind::open(
            ctx.conn,
            table,
            ctx.control.abort.token().child_token(),
            rows_updated,
        )
        .await;
        match opened {
            Ok(v) => Some(v),
            Err(why) => {
                ctx.out.emit(EventKind::Notice {
                    message: format!(
                        "backfill of {table} runs without vacuum behind it: {why}; the table will \
                         grow by the rows rewritten — VACUUM it afterwards, or set \
                         vacuum_behind = false on the step to silence this"
                    ),
                });
                None
            }
        }
    }

    /// Checks the server and the role, and opens a second connection like
    /// `conn`. `rows_updated` counts from where the backfill starts.
    pub async fn open(
        conn: &Conn,
        table: &str,
        cancel: CancellationToken,
        rows_updated: i64,
    ) -> Result<VacuumBehind, String> {
        if let Some(why) = unavailable(conn, table).await {
            return Err(why);
        }
        let own = Conn::connect(conn.target())
            .await
            .map_err(|e| format!("could not open its connection: {e}"))?;
        set_session(&own, &BULK_IO).await;
        Ok(VacuumBehind {
            conn: Arc::new(own),
            sql: format!(
                "VACUUM (INDEX_CLEANUP OFF, TRUNCATE OFF, SKIP_LOCKED) {}",
                quote_qualified(table)
            ),
            cancel,
            interval: MIN_INTERVAL,
            running: None,
            last_start: Instant::now(),
            last_took: Duration::ZERO,
            rows_at_last: rows_updated,
            passes: 0,
            took: Duration::ZERO,
        })
    }

    /// Passes start at least `interval` apart (default [`MIN_INTERVAL`]).
    pub fn with_interval(mut self, interval: Duration) -> VacuumBehind {
        self.interval = interval;
        self
    }

    /// Called after each batch: collects a finished pass and starts the
    /// next when it is due. An error means a pass failed: vacuum behind
    /// this step is over, the backfill goes on.
    pub async fn tick(&mut self, rows_updated: i64) -> Result<(), String> {
        if self.running.as_ref().is_some_and(JoinHandle::is_finished) {
            self.collect().await?;
        }
        let due = self.last_start.elapsed() >= self.interval.max(self.last_took * DUTY)
            && rows_updated - self.rows_at_last >= MIN_ROWS;
        if self.running.is_none() && due {
            self.last_start = Instant::now();
            self.rows_at_last = rows_updated;
            let (conn, sql, cancel) = (self.conn.clone(), self.sql.clone(), self.cancel.clone());
            self.running = Some(tokio::spawn(async move {
                conn.cancellable(conn.client.batch_execute(&sql), &cancel, || {
                    "VACUUM behind the backfill".to_string()
                })
                .await
            }));
        }
        Ok(())
    }

    /// A pass is under way.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Waits for a pass under way (the backfill is done).
    pub async fn finish(&mut self) -> Result<(), String> {
        self.collect().await
    }

    async fn collect(&mut self) -> Result<(), String> {
        let Some(handle) = self.running.take() else {
            return Ok(());
        };
        let result = match handle.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("the vacuum task ended: {e}")),
        };
        let took = self.last_start.elapsed();
        self.last_took = took;
        if result.is_ok() {
            self.passes += 1;
            self.took += took;
        }
        result
    }
}

impl Drop for VacuumBehind {
    /// An aborted or detached backfill cancels a pass under way.
    fn drop(&mut self) {
        if self.running.is_some() {
            self.cancel.cancel();
        }
    }
}

/// Settings for a session that rewrites a table in bulk (the batches, and
/// the vacuum behind them), set with [`set_session`]:
///
/// - `backend_flush_after = 256kB`: the server starts writing the pages
///   this session evicts at once, rather than leave them to the kernel,
///   which flushes them in bursts that stall other sessions' commits (the
///   setting exists only on Linux servers).
/// - `wal_compression = lz4`: the first change to a page after a
///   checkpoint logs the whole page, and a backfill touches every page.
///   Compressed, those images shrink by about 60 %: measured on the 1M-row
///   demo table in 20k-row batches, 412 MB of WAL became 333 MB. Less WAL
///   to flush before the application's next commit, less to ship to the
///   replicas. Superusers only (or a role granted `SET` on it), and only
///   where the server was built with lz4; otherwise the server's own
///   setting stands.
pub const BULK_IO: [(&str, &str); 2] =
    [("backend_flush_after", "256kB"), ("wal_compression", "lz4")];

/// Sets each of `settings` on the session, best effort: one the role may
/// not set is left at the server's value.
pub async fn set_session(conn: &Conn, settings: &[(&str, &str)]) {
    for (setting, value) in settings {
        if let Err(e) = conn
            .client
            .batch_execute(&format!("SET {setting} = '{value}'"))
            .await
        {
            tracing::debug!("{setting} not set: {e}");
        }
    }
}

/// Resets each of `settings`, one statement each: in one query string, a
/// RESET the role may not do would roll back the others with it.
pub async fn reset_session(conn: &Conn, settings: &[(&str, &str)]) {
    for (setting, _) in settings {
        if let Err(e) = conn.client.batch_execute(&format!("RESET {setting}")).await {
            tracing::debug!("{setting} not reset: {e}");
        }
    }
}
