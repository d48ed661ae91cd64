//! `kind = "switchover"` (irreversible): every write to the moved tables
//! on the main database is refused — by a statement-level trigger, which
//! stops superusers and owners too, where privileges would not — after the
//! transactions that wrote to them have ended (reported while waited for).
//! Then the other database applies the main one's last write, its
//! sequences are set past the main one's, the row counts are compared,
//! and the replication is detached (subscription, slot, publication).
//!
//! Until the detach, a failure or an abort lifts the freeze again and the
//! replication keeps running. After it, the freeze stays: the application
//! now writes to the other database.

use std::time::{Duration, Instant};

use super::detach::{
    connect_other, drop_subscription, focus_on, hold_for_apply_lag, pause, wait_applied,
};
use super::{Ctx, StepError};
use crate::db::{Conn, DbError, execute_with_retry};
use crate::engine::events::EventKind;
use crate::journal::steps::Created;
use crate::plan::model::SwitchoverStep;
use crate::statements::replication as sql;

/// Added to each sequence by default: nextval() still runs on the main
/// database outside the frozen tables (a `SELECT nextval(…)` the
/// application issues before its insert fails), so the other side starts
/// well clear of any value handed out there.
pub const DEFAULT_SEQUENCE_MARGIN: i64 = 1000;

/// How long the switchover waits for writers and for the last write.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// Runs the switchover.
pub async fn run(spec: &SwitchoverStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let name = super::detach::move_name(ctx, &spec.database).await?;
    let attached: bool = ctx
        .conn
        .client
        .query_one(sql::PUBLICATION_EXISTS, &[&name])
        .await
        .map_err(|e| ctx.db_error(DbError::sql("looking up the publication", e)))?
        .get(0);
    if !attached {
        if ctx
            .created_before()
            .iter()
            .any(|c| matches!(c, Created::Freeze { .. }))
        {
            // An earlier session dropped the publication (the point of no
            // return) and may have stopped before the subscription and
            // its slot went: finish the detach.
            let other = connect_other(ctx, &spec.database).await?;
            drop_subscription(ctx.conn, Some(&other), &name)
                .await
                .map_err(|e| StepError::Failed(format!("finishing the detach: {e}")))?;
            return Ok(format!(
                "already switched over to {} (replication detached by an earlier session)",
                spec.database
            ));
        }
        return Err(StepError::Failed(format!(
            "publication {name} is gone from the main database: there is no replication to \
             switch over (was the replicate step rolled back?)"
        )));
    }
    focus_on(ctx, &spec.database, &name, None);
    let other = connect_other(ctx, &spec.database).await?;
    let tables: Vec<String> = ctx
        .conn
        .client
        .query(sql::PUBLICATION_TABLES, &[&name])
        .await
        .map_err(|e| ctx.db_error(DbError::sql("listing the moved tables", e)))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let result = switch(spec, ctx, &other, &name, &tables).await;
    // Past the point of no return the freeze stays, whatever failed.
    let detaching = match super::detach::switched_over(ctx.conn, &name).await {
        Ok(detaching) => detaching,
        Err(_) => result.is_err(),
    };
    if result.is_err() && detaching {
        ctx.out.emit(EventKind::Notice {
            message: format!(
                "switchover stopped after its point of no return (publication {name} dropped): \
                 writes to {} stay frozen here; fix the cause and `cutover run` finishes the \
                 detach",
                tables.join(", ")
            ),
        });
    } else if result.is_err() {
        let created = ctx.created_so_far().await;
        match super::detach::remove(&created, ctx.conn, ctx.databases).await {
            Ok(Some(done)) => ctx.out.emit(EventKind::Notice {
                message: format!("switchover stopped before the detach; {done}"),
            }),
            Ok(None) => {}
            Err(e) => ctx.out.emit(EventKind::Notice {
                message: format!(
                    "switchover stopped, and lifting the write freeze failed: {e}; drop trigger \
                     {} on {} by hand",
                    sql::FREEZE_TRIGGER,
                    tables.join(", ")
                ),
            }),
        }
    }
    result
}

async fn switch(
    spec: &SwitchoverStep,
    ctx: &mut Ctx<'_>,
    other: &Conn,
    name: &str,
    tables: &[String],
) -> Result<String, StepError> {
    let wait = spec
        .wait
        .as_deref()
        .and_then(|w| humantime::parse_duration(w).ok())
        .unwrap_or(DEFAULT_WAIT);
    // Freezing while the other side is far behind would hold writes longer.
    hold_for_apply_lag(ctx).await?;
    // The freeze's trigger waits for every transaction that wrote to the
    // tables (its lock conflicts with theirs): name the long ones now.
    writers(ctx, tables, None, &mut Vec::new()).await?;
    for table in tables {
        ctx.record_created(&Created::Freeze {
            table: table.clone(),
            publication: name.to_string(),
        })
        .await?;
    }
    let mut freeze = vec![sql::freeze_function_sql(name, &spec.database)];
    freeze.extend(tables.iter().map(|t| sql::freeze_trigger_sql(name, t)));
    let cancel = ctx.control.abort.token().clone();
    let mut report = ctx.retry_reporter();
    execute_with_retry(
        ctx.conn,
        &freeze.join(";\n"),
        &ctx.policy,
        &cancel,
        &mut report,
    )
    .await
    .map_err(|e| ctx.db_error(e))?;
    ctx.out.emit(EventKind::Notice {
        message: format!(
            "writes to {} are frozen on the main database (every role)",
            tables.join(", ")
        ),
    });
    let frozen_at: String = ctx
        .conn
        .client
        .query_one("SELECT clock_timestamp()::text", &[])
        .await
        .map_err(|e| ctx.db_error(DbError::sql("reading the clock", e)))?
        .get(0);
    wait_for_writers(ctx, tables, &frozen_at, wait).await?;
    let lsn: String = ctx
        .conn
        .client
        .query_one(sql::CURRENT_LSN, &[])
        .await
        .map_err(|e| ctx.db_error(DbError::sql("reading the last write's position", e)))?
        .get(0);
    let source = ctx.conn;
    wait_applied(ctx, source, name, &lsn, wait).await?;
    let margin = spec.sequence_margin.unwrap_or(DEFAULT_SEQUENCE_MARGIN);
    let sequences = advance_sequences(ctx, other, tables, margin).await?;
    let mut counts = Vec::new();
    for table in tables {
        let count = format!("SELECT count(*) FROM {table}");
        let mine: i64 = ctx
            .conn
            .client
            .query_one(&count, &[])
            .await
            .map_err(|e| ctx.db_error(DbError::sql(format!("counting {table}"), e)))?
            .get(0);
        let theirs: i64 = other
            .client
            .query_one(&count, &[])
            .await
            .map_err(|e| {
                StepError::Failed(DbError::sql(format!("counting {table}"), e).to_string())
            })?
            .get(0);
        if mine != theirs {
            return Err(StepError::Failed(format!(
                "{table} has {mine} rows on the main database but {theirs} on {} after the last \
                 write applied; nothing was detached and writes are allowed again. Check the \
                 subscription's worker in that server's log",
                spec.database
            )));
        }
        counts.push(format!("{table} {mine} rows"));
    }
    ctx.control.safe_point(ctx.out).await?;
    // The slot goes now: the monitor stops looking for it first.
    if let Ok(mut f) = ctx.focus.lock() {
        f.subscription = None;
    }
    // The point of no return: the publication goes first, so that from
    // here on the freeze is never lifted (not by a failure, a resume or a
    // rollback: see detach::switched_over), and a resume finishes the
    // subscription and its slots.
    ctx.conn
        .client
        .batch_execute(&sql::drop_publication_sql(name))
        .await
        .map_err(|e| StepError::Failed(DbError::sql("dropping the publication", e).to_string()))?;
    drop_subscription(ctx.conn, Some(other), name)
        .await
        .map_err(|e| StepError::Failed(format!("detaching: {e}")))?;
    Ok(format!(
        "switched over to {}: {}; {}; replication detached. Writes to {} stay refused on the \
         main database (trigger {} — the application writes to {} now)",
        spec.database,
        counts.join(", "),
        sequences,
        tables.join(", "),
        sql::FREEZE_TRIGGER,
        spec.database
    ))
}

/// Other sessions whose transactions (begun before `before`, or more
/// than a second ago) hold a write lock on the tables; each reported once.
async fn writers(
    ctx: &mut Ctx<'_>,
    tables: &[String],
    before: Option<&str>,
    seen: &mut Vec<i32>,
) -> Result<usize, StepError> {
    let ours: Vec<i32> = ctx.focus.lock().map(|f| f.ours.clone()).unwrap_or_default();
    let tables = tables.to_vec();
    let rows = ctx
        .conn
        .client
        .query(sql::OPEN_WRITERS, &[&tables, &ours, &before])
        .await
        .map_err(|e| ctx.db_error(DbError::sql("looking for open writers", e)))?;
    for r in &rows {
        let pid: i32 = r.get(0);
        if !seen.contains(&pid) {
            seen.push(pid);
            let (table, app, state, age): (String, String, String, f64) =
                (r.get(1), r.get(2), r.get(3), r.get(4));
            ctx.out.emit(EventKind::Notice {
                message: format!(
                    "session {pid} ({app}, {state}, transaction open {age:.0}s) holds a write \
                     lock on {table}; the freeze waits for its transaction to end"
                ),
            });
        }
    }
    Ok(rows.len())
}

/// Waits until every transaction begun before the freeze that holds a
/// write lock on the tables has ended, reporting each one once.
async fn wait_for_writers(
    ctx: &mut Ctx<'_>,
    tables: &[String],
    frozen_at: &str,
    limit: Duration,
) -> Result<(), StepError> {
    let started = Instant::now();
    let mut seen: Vec<i32> = Vec::new();
    while writers(ctx, tables, Some(frozen_at), &mut seen).await? > 0 {
        if started.elapsed() > limit {
            return Err(StepError::Failed(format!(
                "sessions {seen:?} kept transactions that wrote to the moved tables open for \
                 more than {}; end them (pg_terminate_backend) or raise the step's `wait`",
                crate::engine::events::short_duration(limit)
            )));
        }
        pause(ctx, Duration::from_millis(200)).await?;
    }
    Ok(())
}

/// Sets each sequence of the moved tables on the other database to the
/// main database's value plus `margin`.
async fn advance_sequences(
    ctx: &Ctx<'_>,
    other: &Conn,
    tables: &[String],
    margin: i64,
) -> Result<String, StepError> {
    let mut done = Vec::new();
    for table in tables {
        let rows = ctx
            .conn
            .client
            .query(sql::TABLE_COLUMNS, &[table])
            .await
            .map_err(|e| ctx.db_error(DbError::sql(format!("reading {table}"), e)))?;
        for row in rows {
            let (column, seq): (String, Option<String>) = (row.get(0), row.get(4));
            let Some(seq) = seq else { continue };
            let value: i64 = ctx
                .conn
                .client
                .query_one(&sql::sequence_value_sql(&seq), &[])
                .await
                .map_err(|e| ctx.db_error(DbError::sql(format!("reading sequence {seq}"), e)))?
                .get(0);
            let theirs: Option<String> = other
                .client
                .query_one("SELECT pg_get_serial_sequence($1, $2)", &[table, &column])
                .await
                .map_err(|e| {
                    StepError::Failed(DbError::sql("finding the sequence", e).to_string())
                })?
                .get(0);
            let Some(theirs) = theirs else {
                return Err(StepError::Failed(format!(
                    "{table}.{column} has no sequence on the other database; create one and \
                     run the step again"
                )));
            };
            let next = value.saturating_add(margin);
            other
                .client
                .query_one(&sql::setval_sql(&theirs), &[&next])
                .await
                .map_err(|e| {
                    StepError::Failed(DbError::sql(format!("setting {theirs}"), e).to_string())
                })?;
            done.push(format!("{theirs} set to {next} (main: {value})"));
        }
        // A default calling a sequence the column does not own (one shared
        // by several tables): the same sequence by name there.
        let shared = ctx
            .conn
            .client
            .query(sql::DEFAULT_SEQUENCES, &[table])
            .await
            .map_err(|e| ctx.db_error(DbError::sql(format!("reading {table}'s defaults"), e)))?;
        for row in shared {
            let seq: String = row.get(0);
            let value: i64 = ctx
                .conn
                .client
                .query_one(&sql::sequence_value_sql(&seq), &[])
                .await
                .map_err(|e| ctx.db_error(DbError::sql(format!("reading sequence {seq}"), e)))?
                .get(0);
            let next = value.saturating_add(margin);
            other
                .client
                .query_one(&sql::setval_sql(&seq), &[&next])
                .await
                .map_err(|e| {
                    StepError::Failed(format!(
                        "{}; {table}'s default calls it: create it on the other database and \
                         run the step again",
                        DbError::sql(format!("setting {seq}"), e)
                    ))
                })?;
            done.push(format!("{seq} set to {next} (main: {value})"));
        }
    }
    Ok(if done.is_empty() {
        "no sequences".into()
    } else {
        done.join(", ")
    })
}
