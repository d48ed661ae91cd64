//! Waiting for lock waits: tests that stage a blocked statement wait until
//! the server shows it queued, never for a fixed time.
#![allow(dead_code)]

use cutover::db::Conn;

use super::{Deadline, PATIENCE};

/// A session the server shows waiting for a lock.
#[derive(Debug, Clone)]
pub struct Waiter {
    /// Its backend pid.
    pub pid: i32,
    /// The statement that waits.
    pub query: String,
}

/// Waits until a session of `conn`'s database (tests run side by side on
/// one server) matching `filter` (an SQL condition over
/// `pg_stat_activity a`, e.g. `a.application_name = 'cutover'`) waits for a
/// heavyweight lock and its wait has a start time; returns it.
pub async fn wait_for_lock_wait(conn: &Conn, filter: &str) -> Waiter {
    let sql = format!(
        "SELECT a.pid, a.query FROM pg_stat_activity a
         WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
           AND a.datname = current_database() AND ({filter})
           AND EXISTS (SELECT 1 FROM pg_locks l
                       WHERE l.pid = a.pid AND NOT l.granted AND l.waitstart IS NOT NULL)
         ORDER BY a.pid LIMIT 1"
    );
    let deadline = Deadline::new(
        format!("a session with {filter} to wait for a lock"),
        PATIENCE,
    );
    loop {
        let found = conn
            .client
            .query_opt(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        if let Some(r) = found {
            return Waiter {
                pid: r.get(0),
                query: r.get(1),
            };
        }
        deadline.next().await;
    }
}

/// Waits until some session waits for a lock that `blocker` holds (or
/// queues ahead of it for); returns that session.
pub async fn wait_until_blocked_by(conn: &Conn, blocker: i32) -> Waiter {
    wait_for_lock_wait(conn, &format!("{blocker} = ANY(pg_blocking_pids(a.pid))")).await
}

/// Waits until the session `pid` no longer runs `query` (it finished, was
/// cancelled, or moved on to another statement).
pub async fn wait_until_not_running(conn: &Conn, pid: i32, query: &str) {
    let deadline = Deadline::new(format!("session {pid} to stop running {query:?}"), PATIENCE);
    loop {
        let running: i64 = conn
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE pid = $1 AND query = $2 AND state = 'active'",
                &[&pid, &query],
            )
            .await
            .expect("read pg_stat_activity")
            .get(0);
        if running == 0 {
            return;
        }
        deadline.next().await;
    }
}
