//! Running DDL under `lock_timeout`, retrying when the lock is not granted.
//!
//! A DDL statement waiting for its lock blocks every query queued behind it,
//! so each attempt is bounded by `lock_timeout`; on SQLSTATE 55P03 it backs
//! off (jittered, exponential) and tries again, letting the queue drain.

use std::time::Duration;

use rand::RngExt;
use tokio_postgres::error::SqlState;
use tokio_util::sync::CancellationToken;

use super::{Conn, DbError, describe};
use crate::db::ident::quote_literal;

/// How a statement is retried on lock timeouts.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Upper bound of one attempt's wait for its lock.
    pub lock_timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// Smallest pause between attempts.
    pub backoff_min: Duration,
    /// Largest pause between attempts.
    pub backoff_max: Duration,
    /// Under a stall budget: wait for a gap on these tables before each
    /// attempt.
    pub gap: Option<GapWait>,
    /// Under a stall budget, for a catalog-only critical section: each of
    /// its statements (lock wait included) is cancelled by the server after
    /// this long, and the attempt rolled back and retried like a lock
    /// timeout, so the application never queues behind it for longer.
    pub hold: Option<Duration>,
}

/// Before a DDL attempt, wait (a while) until no other session holds a
/// lock on the statement's tables in a transaction older than a quarter of
/// the budget, or waits for one: the attempt is made when it can succeed at
/// once, and the queue behind it stays short.
#[derive(Debug, Clone, PartialEq)]
pub struct GapWait {
    /// `[settings] max_stall`.
    pub budget: Duration,
    /// The tables the statement locks, as the plan names them.
    pub tables: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            lock_timeout: Duration::from_secs(2),
            retries: 20,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            gap: None,
            hold: None,
        }
    }
}

/// Sessions that would make a lock attempt on these tables wait now.
const IN_THE_WAY: &str = "
SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.pid <> pg_backend_pid()
  AND l.relation IN (SELECT to_regclass(t) FROM unnest($1::text[]) t)
  AND (NOT l.granted OR now() - coalesce(a.xact_start, now()) > $2::float8 * interval '1 second')";

/// Waits for a gap (at most `bound`); true when one came.
pub async fn wait_for_gap(
    conn: &Conn,
    gap: &GapWait,
    bound: Duration,
    cancel: &CancellationToken,
) -> Result<bool, DbError> {
    let started = std::time::Instant::now();
    let quarter = gap.budget.as_secs_f64() / 4.0;
    loop {
        let busy: i64 = conn
            .client
            .query_one(IN_THE_WAY, &[&gap.tables, &quarter])
            .await
            .map_err(|e| DbError::sql("looking for a gap in the lock queue", e))?
            .get(0);
        if busy == 0 {
            return Ok(true);
        }
        if started.elapsed() >= bound {
            return Ok(false);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = cancel.cancelled() => return Err(DbError::Cancelled),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `attempt` (1-based): "full jitter" over
    /// an exponentially growing window, never below `backoff_min`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .backoff_min
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.backoff_max)
            .max(self.backoff_min);
        let lo = self.backoff_min.as_millis() as u64;
        let hi = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(lo..=hi))
    }
}

/// One retry, reported to the caller before it waits.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNotice {
    /// Which retry this is (1 = the second attempt).
    pub retry: u32,
    /// How many retries the policy allows.
    pub of: u32,
    /// How long it waits before trying again.
    pub wait: Duration,
    /// What the server said.
    pub reason: String,
}

/// Runs `sql` with `SET lock_timeout`, retrying on lock timeouts.
///
/// Returns the number of attempts it took. Cancelling `cancel` stops the
/// running attempt (the server cancels the statement) and any wait.
pub async fn execute_with_retry(
    conn: &Conn,
    sql: &str,
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    on_retry: &mut (dyn FnMut(&RetryNotice) + Send),
) -> Result<u32, DbError> {
    execute_with_retry_between(conn, sql, policy, cancel, cancel, on_retry).await
}

/// As [`execute_with_retry`], with one token for the running attempt and
/// another for the waits between attempts: a critical section (a swap's
/// renames) is never cancelled once it runs, yet an abort still ends the
/// retry sequence at the next boundary.
pub async fn execute_with_retry_between(
    conn: &Conn,
    sql: &str,
    policy: &RetryPolicy,
    attempt_cancel: &CancellationToken,
    between: &CancellationToken,
    on_retry: &mut (dyn FnMut(&RetryNotice) + Send),
) -> Result<u32, DbError> {
    set_lock_timeout(conn, policy.lock_timeout).await?;
    let mut retry = 0;
    loop {
        if between.is_cancelled() {
            return Err(DbError::Cancelled);
        }
        if let Some(gap) = &policy.gap {
            wait_for_gap(conn, gap, policy.backoff_max, between).await?;
        }
        let attempt = match policy.hold {
            Some(hold) => held(conn, sql, hold, attempt_cancel).await,
            None => conn.execute_cancellable(sql, attempt_cancel).await,
        };
        match attempt {
            Ok(()) => return Ok(retry + 1),
            Err(DbError::Sql { source, .. })
                if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
                    || (policy.hold.is_some() && is_statement_timeout(&source)) =>
            {
                if retry >= policy.retries {
                    return Err(DbError::LockTimeout {
                        attempts: retry + 1,
                        lock_timeout: policy.lock_timeout,
                    });
                }
                retry += 1;
                let wait = policy.backoff(retry);
                let reason = match policy.hold {
                    Some(hold) if is_statement_timeout(&source) => format!(
                        "a statement held its lock past the stall budget ({}ms): rolled back",
                        hold.as_millis()
                    ),
                    _ => describe(&source),
                };
                on_retry(&RetryNotice {
                    retry,
                    of: policy.retries,
                    wait,
                    reason,
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = between.cancelled() => return Err(DbError::Cancelled),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs `sql` with `statement_timeout` at `hold`, then puts the session's
/// own value back (also after a failure; a lost connection takes it along).
async fn held(
    conn: &Conn,
    sql: &str,
    hold: Duration,
    cancel: &CancellationToken,
) -> Result<(), DbError> {
    let before: String = conn
        .client
        .query_one("SELECT current_setting('statement_timeout')", &[])
        .await
        .map_err(|e| DbError::sql("SHOW statement_timeout", e))?
        .get(0);
    set_statement_timeout(conn, hold).await?;
    let attempt = conn.execute_cancellable(sql, cancel).await;
    let restored = set_timeout(
        conn,
        "statement_timeout",
        &before,
        "restoring statement_timeout",
    )
    .await;
    attempt.and(restored)
}

/// The server cancelled a statement because `statement_timeout` passed (not
/// because someone asked it to).
fn is_statement_timeout(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::QUERY_CANCELED)
        && e.as_db_error()
            .is_some_and(|d| d.message().contains("statement timeout"))
}

/// Sets the session's `lock_timeout`.
pub async fn set_lock_timeout(conn: &Conn, timeout: Duration) -> Result<(), DbError> {
    let ms = format!("{}ms", timeout.as_millis());
    set_timeout(conn, "lock_timeout", &ms, "SET lock_timeout").await
}

/// Sets the session's `statement_timeout` (`0`: none).
pub async fn set_statement_timeout(conn: &Conn, timeout: Duration) -> Result<(), DbError> {
    let ms = format!("{}ms", timeout.as_millis());
    set_timeout(conn, "statement_timeout", &ms, "setting statement_timeout").await
}

/// `SET name = 'value'` (a `SET` takes no bind parameters; `name` is ours).
async fn set_timeout(conn: &Conn, name: &str, value: &str, what: &str) -> Result<(), DbError> {
    conn.client
        .batch_execute(&format!("SET {name} = {}", quote_literal(value)))
        .await
        .map_err(|e| DbError::sql(what.to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_in_bounds() {
        let p = RetryPolicy {
            hold: None,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for attempt in 1..30 {
            for _ in 0..50 {
                let d = p.backoff(attempt);
                assert!(d >= p.backoff_min && d <= p.backoff_max, "{attempt}: {d:?}");
                let window = (100u64 << attempt.min(20)).min(1000);
                assert!(
                    d.as_millis() as u64 <= window,
                    "{attempt}: {d:?} > {window}"
                );
            }
        }
    }

    #[test]
    fn backoff_is_jittered() {
        let p = RetryPolicy::default();
        let samples: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(5)).collect();
        assert!(samples.len() > 5, "no jitter: {samples:?}");
    }
}
