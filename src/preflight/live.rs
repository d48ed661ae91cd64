//! Live risks on the server: replicas and the limits that watch them,
//! long transactions, and the size of each table the plan names.

use std::time::Duration;

use super::{Level, Preflight};
use crate::db::{Conn, DbError, quote_qualified};
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
