//! Live risks on the server: sessions whose locks conflict with the plan's,
//! idle-in-transaction sessions, replicas and the limits that watch them,
//! long transactions, the plan's own limits, and the size of each table the
//! plan names.

use std::collections::HashSet;
use std::time::Duration;

use super::{Level, Preflight};
use crate::db::{Conn, DbError, quote_qualified};
use crate::lint::locks::LockMode;
use crate::plan::Plan;

/// Replicas and the settings that watch them.
pub(super) async fn replicas(p: &mut Preflight, plan: &Plan, conn: &Conn) -> Result<(), DbError> {
    // Replicas and the settings that watch them. A role without
    // pg_read_all_stats sees a standby's row with its state and positions
    // NULL.
    let replicas = conn
        .client
        .query(
            "SELECT coalesce(application_name, ''), coalesce(client_addr::text, 'local'),
                    coalesce(state, ''), coalesce(extract(epoch FROM replay_lag), 0)::float8,
                    state IS NULL, current_user::text
             FROM pg_stat_replication",
            &[],
        )
        .await
        .map_err(|e| DbError::sql("reading pg_stat_replication", e))?;
    let watches = plan.throttle.replication_lag.is_some()
        || plan.throttle.replication_lag_bytes.is_some()
        || plan.abort.replication_lag.is_some()
        || plan.abort.replication_lag_bytes.is_some();
    if replicas.is_empty() {
        p.push(
            if watches { Level::Warning } else { Level::Info },
            "replicas",
            if watches {
                "none visible in pg_stat_replication, so the replication-lag throttle and abort \
                 limits have nothing to watch (replicas behind a cascade or on another primary \
                 are not seen)"
            } else {
                "none visible in pg_stat_replication"
            },
        );
    }
    let hidden = replicas.iter().filter(|r| r.get::<_, bool>(4)).count();
    if let Some(r) = replicas.first()
        && hidden > 0
    {
        let role: String = r.get(5);
        p.push(
            if watches {
                Level::Error
            } else {
                Level::Warning
            },
            "replicas",
            format!(
                "{hidden} replica(s) streaming, but role {role} may not see their state or lag, so \
                 the lag on the screen{} would always read 0 — GRANT pg_monitor TO {role} (or \
                 pg_read_all_stats)",
                if watches {
                    " and the plan's replication-lag throttle and abort limits"
                } else {
                    ""
                }
            ),
        );
    }
    for r in replicas.iter().filter(|r| !r.get::<_, bool>(4)) {
        let (name, addr, state, lag): (String, String, String, f64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        p.push(
            Level::Info,
            "replica",
            format!("{name} at {addr}: {state}, replay lag {lag:.1}s"),
        );
    }

    Ok(())
}

/// Transactions open longer than `long_transaction`.
pub(super) async fn long_transactions(
    p: &mut Preflight,
    conn: &Conn,
    long_transaction: Duration,
) -> Result<(), DbError> {
    // Long transactions stall CREATE INDEX CONCURRENTLY and validations
    // (they wait for every older transaction to end).
    let long = conn
        .client
        .query(
            "SELECT pid, coalesce(application_name, ''), extract(epoch FROM now() - xact_start)::float8,
                    left(regexp_replace(query, '\\s+', ' ', 'g'), 80)
             FROM pg_stat_activity
             WHERE xact_start < now() - make_interval(secs => $1) AND pid <> pg_backend_pid()
               AND backend_type = 'client backend'
             ORDER BY xact_start",
            &[&long_transaction.as_secs_f64()],
        )
        .await
        .map_err(|e| DbError::sql("reading pg_stat_activity", e))?;
    for r in long {
        let (pid, app, age, query): (i32, String, f64, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        p.push(
            Level::Warning,
            "long transaction",
            format!(
                "pid {pid} ({app}) has been in a transaction for {}: concurrent index builds and \
                 validations wait for it to end — {query}",
                humantime::format_duration(Duration::from_secs(age as u64))
            ),
        );
    }
    if p.items.iter().all(|i| i.subject != "long transaction") {
        p.push(
            Level::Info,
            "long transactions",
            format!(
                "none open for more than {}",
                humantime::format_duration(long_transaction)
            ),
        );
    }

    Ok(())
}

/// Estimated rows and size of each existing table the plan names.
pub(super) async fn table_sizes(
    p: &mut Preflight,
    conn: &Conn,
    named: &[String],
) -> Result<(), DbError> {
    // Estimated rows of each existing table the plan names.
    for table in named {
        let row = conn
            .client
            .query_opt(
                // From pg_class only: pg_total_relation_size would take a
                // lock and wait behind the application's DDL.
                "SELECT c.reltuples::float8,
                        ((c.relpages + coalesce((SELECT sum(i.relpages) FROM pg_index x
                                                 JOIN pg_class i ON i.oid = x.indexrelid
                                                 WHERE x.indrelid = c.oid), 0))
                         * current_setting('block_size')::bigint)::bigint
                 FROM pg_class c WHERE c.oid = to_regclass($1)",
                &[&quote_qualified(table)],
            )
            .await
            .map_err(|e| DbError::sql("reading table statistics", e))?;
        if let Some(r) = row {
            let (tuples, bytes): (f64, i64) = (r.get(0), r.get(1));
            p.push(
                Level::Info,
                format!("table {table}"),
                if tuples < 0.0 {
                    format!(
                        "never analyzed; run ANALYZE {table} for an estimate of its rows and size"
                    )
                } else {
                    format!(
                        "about {} rows, about {} with indexes",
                        tuples as i64,
                        bytesize::ByteSize(bytes.max(0) as u64)
                    )
                },
            );
        }
    }
    Ok(())
}

/// Sessions in the plan's way: conflicting locks on its tables, and
/// idle-in-transaction sessions (or a line saying there are none).
pub(super) async fn sessions(
    p: &mut Preflight,
    conn: &Conn,
    needed: &[NeededLock],
) -> Result<(), DbError> {
    let before = p.items.len();
    let holders = lock_conflicts(p, conn, needed).await?;
    idle_in_transaction(p, conn, &holders).await?;
    if p.items.len() == before {
        p.push(
            Level::Info,
            "sessions",
            "none holds or awaits a lock that conflicts with the plan's on its tables; none is \
             idle in a transaction",
        );
    }
    Ok(())
}

/// Whether a lock in `held` mode and one in `wanted` mode conflict
/// (PostgreSQL's table-level lock conflict matrix).
pub(super) fn conflicts(held: LockMode, wanted: LockMode) -> bool {
    use LockMode::*;
    let clashes: &[LockMode] = match wanted {
        AccessShare => &[AccessExclusive],
        RowShare => &[Exclusive, AccessExclusive],
        RowExclusive => &[Share, ShareRowExclusive, Exclusive, AccessExclusive],
        ShareUpdateExclusive => &[
            ShareUpdateExclusive,
            Share,
            ShareRowExclusive,
            Exclusive,
            AccessExclusive,
        ],
        Share => &[
            RowExclusive,
            ShareUpdateExclusive,
            ShareRowExclusive,
            Exclusive,
            AccessExclusive,
        ],
        ShareRowExclusive => &[
            RowExclusive,
            ShareUpdateExclusive,
            Share,
            ShareRowExclusive,
            Exclusive,
            AccessExclusive,
        ],
        Exclusive => &[
            RowShare,
            RowExclusive,
            ShareUpdateExclusive,
            Share,
            ShareRowExclusive,
            Exclusive,
            AccessExclusive,
        ],
        AccessExclusive => &LockMode::ALL,
    };
    clashes.contains(&held)
}

/// The strongest lock the plan's remaining steps take on one table.
pub(super) struct NeededLock {
    /// The relation, as SQL names it.
    pub(super) relation: String,
    /// The mode.
    pub(super) mode: LockMode,
    /// The first step that takes it, for messages.
    pub(super) step: String,
}

/// A session as `pg_stat_activity` shows it, for messages.
fn session(pid: i32, app: &str, state: &str, age: f64) -> String {
    let app = if app.is_empty() {
        "no application_name"
    } else {
        app
    };
    format!(
        "pid {pid} ({app}, {state}, in its transaction for {})",
        humantime::format_duration(Duration::from_secs(age.max(0.0) as u64))
    )
}

/// Sessions holding or awaiting a lock on the plan's tables that conflicts
/// with a lock the plan takes there, at any age. Returns their pids.
///
/// Warnings, not errors: cutover waits behind such a session safely (each
/// DDL statement under `lock_timeout`, retried, with the abort limits
/// watching), the session may end before that step is reached (often
/// phases later, after a gate), and refusing to start would turn a
/// passing query into a failed run. The warning says who, and what to do.
async fn lock_conflicts(
    p: &mut Preflight,
    conn: &Conn,
    needed: &[NeededLock],
) -> Result<HashSet<i32>, DbError> {
    let mut seen = HashSet::new();
    for need in needed {
        let rows = conn
            .client
            .query(
                "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''), l.mode,
                        l.granted,
                        extract(epoch FROM now() - coalesce(a.xact_start, a.query_start,
                                                            a.backend_start))::float8,
                        left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 100)
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'relation' AND l.relation = to_regclass($1)
                   AND l.database = (SELECT oid FROM pg_database
                                     WHERE datname = current_database())
                   AND l.pid <> pg_backend_pid()
                 ORDER BY a.xact_start NULLS LAST, a.pid",
                &[&need.relation],
            )
            .await;
        // A name the lock table could not resolve to one relation (an
        // expression, a name only a later step creates) has no holders.
        let Ok(rows) = rows else { continue };
        for r in rows {
            let (pid, app, state, mode, granted, age, query): (
                i32,
                String,
                String,
                String,
                bool,
                f64,
                String,
            ) = (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            );
            let Some(held) = LockMode::parse(&mode) else {
                continue;
            };
            if !conflicts(held, need.mode) {
                continue;
            }
            seen.insert(pid);
            let who = session(pid, &app, &state, age);
            let (rel, wanted, step) = (&need.relation, need.mode.sql(), &need.step);
            let message = if granted {
                format!(
                    "{who} holds {mode} on {rel}, which conflicts with the {wanted} lock step \
                     `{step}` takes: that step will wait behind it (retrying under lock_timeout) \
                     and, while it waits, queries on {rel} queue behind the step — end that \
                     transaction (or SELECT pg_terminate_backend({pid})) before the step runs — \
                     {query}"
                )
            } else {
                format!(
                    "{who} is waiting for {mode} on {rel}, which conflicts with the {wanted} lock \
                     step `{step}` takes: the step will queue behind it — find what it waits for \
                     (the Locks pane of `cutover run` shows it) — {query}"
                )
            };
            p.push(Level::Warning, "lock conflict", message);
        }
    }
    Ok(seen)
}

/// Idle-in-transaction sessions on this database (any age), not already
/// reported as holding a conflicting lock: they hold their locks and
/// snapshot until someone ends them, stalling concurrent index builds and
/// validations and any DDL that meets their locks.
async fn idle_in_transaction(
    p: &mut Preflight,
    conn: &Conn,
    reported: &HashSet<i32>,
) -> Result<(), DbError> {
    let rows = conn
        .client
        .query(
            "SELECT pid, coalesce(application_name, ''), state,
                    extract(epoch FROM now() - coalesce(xact_start, state_change))::float8,
                    left(regexp_replace(coalesce(query, ''), '\\s+', ' ', 'g'), 100)
             FROM pg_stat_activity
             WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()
               AND datname = current_database()
             ORDER BY xact_start NULLS LAST, pid",
            &[],
        )
        .await
        .map_err(|e| DbError::sql("reading pg_stat_activity", e))?;
    for r in rows {
        let (pid, app, state, age, query): (i32, String, String, f64, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        if reported.contains(&pid) {
            continue;
        }
        p.push(
            Level::Warning,
            "idle in transaction",
            format!(
                "{}: it keeps its locks and snapshot until it ends, so concurrent index builds \
                 and validations wait for it, and any DDL that meets its locks queues behind it — \
                 last statement: {query}",
                session(pid, &app, &state, age)
            ),
        );
    }
    Ok(())
}

/// A plan with no abort limit, or with batches but no replication-lag
/// throttle, runs blind to the harm it may do.
pub(super) fn limits(p: &mut Preflight, plan: &Plan) {
    let a = &plan.abort;
    let any_abort = a.replication_lag.is_some()
        || a.replication_lag_bytes.is_some()
        || a.lock_wait.is_some()
        || a.blocked_sessions.is_some()
        || a.lock_timeouts.is_some()
        || a.rollback_rate.is_some()
        || a.slot_retained_wal.is_some()
        || a.apply_lag.is_some()
        || a.apply_lag_bytes.is_some();
    if !any_abort {
        p.push(
            Level::Warning,
            "[abort]",
            "the plan sets no abort limits, so nothing stops the run by itself when it hurts the \
             application (sessions queued behind its locks, replicas falling behind); add an \
             [abort] table, e.g. lock_wait = \"10s\", blocked_sessions = 50, replication_lag = \
             \"60s\"",
        );
    }
    let batched = plan.phases.iter().flat_map(|ph| ph.steps.iter()).any(|s| {
        matches!(
            s.get_ref(),
            crate::plan::Step::Backfill(_) | crate::plan::Step::CopyRows(_)
        )
    });
    let t = &plan.throttle;
    if batched && t.replication_lag.is_none() && t.replication_lag_bytes.is_none() {
        p.push(
            Level::Warning,
            "[throttle]",
            "the plan's batches have no replication-lag throttle, so they run at full speed \
             however far the replicas fall behind; add replication_lag = \"30s\" (or \
             replication_lag_bytes) to [throttle]",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conflict_matrix_is_symmetric_and_matches_the_manual() {
        for a in LockMode::ALL {
            for b in LockMode::ALL {
                assert_eq!(conflicts(a, b), conflicts(b, a), "{a:?} vs {b:?}");
            }
        }
        assert!(conflicts(LockMode::AccessShare, LockMode::AccessExclusive));
        assert!(!conflicts(LockMode::AccessShare, LockMode::Exclusive));
        assert!(!conflicts(LockMode::RowExclusive, LockMode::RowExclusive));
        assert!(conflicts(
            LockMode::ShareUpdateExclusive,
            LockMode::ShareUpdateExclusive
        ));
        assert!(!conflicts(LockMode::Share, LockMode::Share));
    }
}
