//! Lock waits: who waits, for what, behind whom — and whether behind us.

use std::time::Duration;

use super::sample::LockWait;

/// Every ungranted lock with its waiter and blockers. `waitstart` exists
/// from PG 14; older servers fall back to the query's start.
pub const WAITS_PG14: &str = "
SELECT l.pid, coalesce(a.application_name, ''),
       CASE WHEN l.relation IS NOT NULL THEN 'relation ' || l.relation::regclass::text
            ELSE l.locktype END,
       l.mode, pg_blocking_pids(l.pid),
       extract(epoch FROM now() - coalesce(l.waitstart, a.query_start))::float8,
       left(coalesce(a.query, ''), 200)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted";

pub const WAITS_OLD: &str = "
SELECT l.pid, coalesce(a.application_name, ''),
       CASE WHEN l.relation IS NOT NULL THEN 'relation ' || l.relation::regclass::text
            ELSE l.locktype END,
       l.mode, pg_blocking_pids(l.pid),
       extract(epoch FROM now() - a.query_start)::float8,
       left(coalesce(a.query, ''), 200)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted";

/// The SQL for this server version.
pub fn sql(version: i32) -> &'static str {
    if version >= 140000 {
        WAITS_PG14
    } else {
        WAITS_OLD
    }
}

/// Reads the rows; `ours` are the migration's backends.
pub fn parse(rows: &[tokio_postgres::Row], ours: &[i32]) -> Vec<LockWait> {
    rows.iter()
        .map(|r| {
            let pid: i32 = r.get(0);
            let blocked_by: Vec<i32> = r.get(4);
            let waited: Option<f64> = r.get(5);
            LockWait {
                pid,
                application: r.get(1),
                waits_for: r.get(2),
                mode: r.get(3),
                behind_us: blocked_by.iter().any(|b| ours.contains(b)),
                ours: ours.contains(&pid),
                blocked_by,
                waited: Duration::from_secs_f64(waited.unwrap_or(0.0).max(0.0)),
                query: r.get(6),
            }
        })
        .collect()
}
