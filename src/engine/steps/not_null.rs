//! `kind = "not_null"`: SET NOT NULL without scanning under ACCESS
//! EXCLUSIVE. `CHECK (col IS NOT NULL) NOT VALID` (brief lock, no scan),
//! `VALIDATE CONSTRAINT` (scans under SHARE UPDATE EXCLUSIVE: reads and
//! writes go on), then `SET NOT NULL` — which PostgreSQL 12+ proves from the
//! validated check without a scan — and the check is dropped, in one short
//! transaction with the journal record.

use super::{Ctx, RecordedUndo, StepError};
use crate::db::retry::set_lock_timeout;
use crate::db::{Conn, DbError, RetryPolicy, execute_with_retry, quote_qualified};
use crate::journal::steps::Created;
use crate::plan::model::NotNullStep;
use crate::statements::not_null::{add_sql, check_name, drop_check_sql, finish_sql, validate_sql};
use tokio_util::sync::CancellationToken;

/// (column is NOT NULL, the check exists, the check is validated)
async fn state(conn: &Conn, spec: &NotNullStep) -> Result<(bool, bool, bool), DbError> {
    let row = conn
        .client
        .query_one(
            "SELECT (SELECT attnotnull FROM pg_attribute
                     WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped),
                    c.oid IS NOT NULL, coalesce(c.convalidated, false)
             FROM (SELECT 1) one
             LEFT JOIN pg_constraint c ON c.conrelid = to_regclass($1) AND c.conname = $3",
            &[
                &quote_qualified(&spec.table),
                &spec.column,
                &check_name(spec),
            ],
        )
        .await
        .map_err(|e| DbError::sql("reading the column's state", e))?;
    let not_null: Option<bool> = row.get(0);
    Ok((not_null.unwrap_or(false), row.get(1), row.get(2)))
}

/// Runs the four statements, resuming wherever an earlier session stopped.
pub async fn run(spec: &NotNullStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let cancel = ctx.control.abort.token().clone();
    let (already, exists, validated) = state(ctx.conn, spec).await.map_err(|e| ctx.db_error(e))?;
    let ours = created(spec);
    let made_by_this_run = ctx.created_before().contains(&ours);
    if already && !exists && !made_by_this_run {
        // NOT NULL before this run: a rollback must not drop it.
        ctx.record_undo(&RecordedUndo::Nothing {
            why: format!(
                "{}.{} was NOT NULL before this run",
                spec.table, spec.column
            ),
        })
        .await?;
        return Ok(format!(
            "{}.{} is already NOT NULL",
            spec.table, spec.column
        ));
    }
    if already && !exists {
        return Ok(format!(
            "{}.{} is already NOT NULL",
            spec.table, spec.column
        ));
    }
    if exists && !made_by_this_run {
        return Err(StepError::Failed(format!(
            "a constraint named {} exists on {} that this run did not add; drop it or rename it first",
            check_name(spec),
            spec.table
        )));
    }
    ctx.record_created(&ours).await?;
    let mut report = ctx.retry_reporter();
    // Adding the NOT VALID check and SET NOT NULL are catalog-only: under a
    // stall budget they hold their lock no longer than it. VALIDATE scans
    // under a lock that lets the application through, so it is not held.
    let held = RetryPolicy {
        hold: ctx.plan.settings.max_stall.map(|b| b.0),
        ..ctx.policy.clone()
    };
    if !exists && !already {
        execute_with_retry(ctx.conn, &add_sql(spec), &held, &cancel, &mut report)
            .await
            .map_err(|e| ctx.db_error(e))?;
    }
    if !validated && !already {
        ctx.control.safe_point(ctx.out).await?;
        execute_with_retry(
            ctx.conn,
            &validate_sql(spec),
            &ctx.policy,
            &cancel,
            &mut report,
        )
        .await
        .map_err(|e| match e {
            DbError::Sql { ref source, .. }
                if source.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION) =>
            {
                StepError::Failed(format!(
                    "{}.{} still has NULLs; backfill them before this step",
                    spec.table, spec.column
                ))
            }
            other => ctx.db_error(other),
        })?;
    }
    ctx.control.safe_point(ctx.out).await?;
    let finish = format!("{};\n{}", finish_sql(spec), ctx.mark_done_sql());
    execute_with_retry(ctx.conn, &finish, &held, &cancel, &mut report)
        .await
        .map_err(|e| ctx.db_error(e))?;
    Ok(format!(
        "{}.{} is NOT NULL (validated without a scan under ACCESS EXCLUSIVE)",
        spec.table, spec.column
    ))
}

/// What the journal records this step creates.
fn created(spec: &NotNullStep) -> Created {
    Created::Constraint {
        table: quote_qualified(&spec.table),
        name: check_name(spec),
    }
}

/// After an abort or failure: drops the temporary check, if this run added it.
pub async fn clean_up(
    spec: &NotNullStep,
    made: &[Created],
    conn: &Conn,
) -> Result<Option<String>, DbError> {
    if !made.contains(&created(spec)) {
        return Ok(None);
    }
    let (_, exists, _) = state(conn, spec).await?;
    if !exists {
        return Ok(None);
    }
    set_lock_timeout(conn, RetryPolicy::default().lock_timeout).await?;
    execute_with_retry(
        conn,
        &drop_check_sql(spec),
        &RetryPolicy::default(),
        &CancellationToken::new(),
        &mut |_| {},
    )
    .await?;
    Ok(Some(format!(
        "dropped the temporary check {}",
        check_name(spec)
    )))
}
