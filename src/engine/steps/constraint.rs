//! `kind = "constraint"`: CHECK and FOREIGN KEY constraints are added NOT
//! VALID (brief lock, no scan) and validated in a separate transaction
//! (SHARE UPDATE EXCLUSIVE: reads and writes go on). UNIQUE is built the
//! safe way: `CREATE UNIQUE INDEX CONCURRENTLY`, then
//! `ADD CONSTRAINT … UNIQUE USING INDEX`; PRIMARY KEY the same, after its
//! columns are made NOT NULL the safe way ([`super::primary_key`]).
//! EXCLUDE has no safe way in PostgreSQL: it is built under ACCESS
//! EXCLUSIVE, only with `allow_unsafe`, its lock attempt held to
//! `lock_timeout` and, under `max_stall`, the whole build too.

use tokio_util::sync::CancellationToken;

use tokio_postgres::error::SqlState;

use super::{Ctx, RecordedUndo, StepError, create_index, primary_key};
use crate::db::{Conn, DbError, RetryPolicy, execute_with_retry, quote_literal, quote_qualified};
use crate::journal::steps::Created;
use crate::plan::model::ConstraintStep;
use crate::statements::constraint::{
    Shape, add_sql, exclude_sql, index_spec, shape, undo_sql, unique_columns, unique_sql,
    validate_sql,
};

/// (exists, validated)
pub(super) async fn state(conn: &Conn, spec: &ConstraintStep) -> Result<(bool, bool), DbError> {
    let row = conn
        .client
        .query_opt(
            "SELECT convalidated FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2",
            &[&quote_qualified(&spec.table), &spec.name],
        )
        .await
        .map_err(|e| DbError::sql("reading the constraint's state", e))?;
    Ok(match row {
        Some(r) => (true, r.get(0)),
        None => (false, false),
    })
}

/// Adds (and validates) the constraint, resuming where an earlier session
/// stopped.
pub async fn run(spec: &ConstraintStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let cancel = ctx.control.abort.token().clone();
    let (exists, validated) = state(ctx.conn, spec).await.map_err(|e| ctx.db_error(e))?;
    let ours = created(spec);
    if exists && !ctx.created_before().contains(&ours) {
        if !validated {
            return Err(StepError::Failed(format!(
                "a constraint named {} exists on {}, NOT VALID, that this run did not add; \
                 validate or drop it, or give the step another name",
                spec.name, spec.table
            )));
        }
        ctx.record_undo(&RecordedUndo::Nothing {
            why: format!("constraint {} existed before this run", spec.name),
        })
        .await?;
        return Ok(format!(
            "constraint {} already exists and is valid (not added by this run; a rollback keeps it)",
            spec.name
        ));
    }
    ctx.record_created(&ours).await?;
    match shape(spec) {
        Shape::PrimaryKey => return primary_key::run(spec, ctx, exists).await,
        Shape::Exclude => return exclude(spec, ctx, exists).await,
        Shape::Unique | Shape::Validated => {}
    }
    let mut report = ctx.retry_reporter();
    if let (Some(columns), Some((_, attach))) = (unique_columns(spec), unique_sql(spec)) {
        if exists {
            return Ok(format!("constraint {} exists", spec.name));
        }
        create_index::run(&index_spec(spec, columns), ctx).await?;
        ctx.control.safe_point(ctx.out).await?;
        let attach = format!("{attach};\n{}", ctx.mark_done_sql());
        execute_with_retry(ctx.conn, &attach, &ctx.policy, &cancel, &mut report)
            .await
            .map_err(|e| ctx.db_error(e))?;
        return Ok(format!(
            "unique constraint {} (index built concurrently)",
            spec.name
        ));
    }
    if !exists {
        execute_with_retry(ctx.conn, &add_sql(spec), &ctx.policy, &cancel, &mut report)
            .await
            .map_err(|e| ctx.db_error(e))?;
    }
    if !validated {
        ctx.control.safe_point(ctx.out).await?;
        let validate = format!("{};\n{}", validate_sql(spec), ctx.mark_done_sql());
        execute_with_retry(ctx.conn, &validate, &ctx.policy, &cancel, &mut report)
            .await
            .map_err(|e| ctx.db_error(e))?;
    }
    Ok(format!(
        "constraint {} added NOT VALID, then validated",
        spec.name
    ))
}

/// EXCLUDE: one statement, its lock attempt under `lock_timeout` (retried),
/// and under `max_stall` the build itself bounded by it, since every reader
/// and writer of the table waits for the whole build.
async fn exclude(
    spec: &ConstraintStep,
    ctx: &mut Ctx<'_>,
    exists: bool,
) -> Result<String, StepError> {
    if exists {
        return Ok(format!("exclusion constraint {} exists", spec.name));
    }
    ctx.control.safe_point(ctx.out).await?;
    let cancel = ctx.control.abort.token().clone();
    let budget = ctx.plan.settings.max_stall.map(|b| b.0);
    let bound = budget
        .map(|b| {
            format!(
                "SET LOCAL statement_timeout = {};\n",
                quote_literal(&format!("{}ms", b.as_millis()))
            )
        })
        .unwrap_or_default();
    let sql = format!("{bound}{};\n{}", exclude_sql(spec), ctx.mark_done_sql());
    let mut report = ctx.retry_reporter();
    match execute_with_retry(ctx.conn, &sql, &ctx.policy, &cancel, &mut report).await {
        Ok(_) => Ok(format!(
            "exclusion constraint {} built (under ACCESS EXCLUSIVE: {})",
            spec.name,
            spec.allow_unsafe.as_deref().unwrap_or("allowed")
        )),
        Err(DbError::Sql { source, .. })
            if source.code() == Some(&SqlState::QUERY_CANCELED)
                && !ctx.control.abort.is_aborted()
                && budget.is_some() =>
        {
            Err(StepError::Failed(format!(
                "building the exclusion constraint {} on {} took longer than [settings] max_stall \
                 ({}) while every reader and writer waited, so it was cancelled and nothing was \
                 added ({}). Build it in a maintenance window (raise max_stall for this plan), or \
                 on a new table that is filled with copy_rows and swapped in",
                spec.name,
                spec.table,
                crate::engine::events::short_duration(budget.unwrap_or_default()),
                crate::db::describe(&source)
            )))
        }
        Err(e) => Err(ctx.db_error(e)),
    }
}

/// What the journal records this step creates.
pub(super) fn created(spec: &ConstraintStep) -> Created {
    Created::Constraint {
        table: quote_qualified(&spec.table),
        name: spec.name.clone(),
    }
}

/// After an abort or failure: drops a constraint this run added that is not
/// validated, or a unique index this run built that is not attached yet.
pub async fn clean_up(
    spec: &ConstraintStep,
    made: &[Created],
    conn: &Conn,
) -> Result<Option<String>, DbError> {
    if !made.contains(&created(spec)) {
        return Ok(None);
    }
    if shape(spec) == Shape::PrimaryKey {
        return primary_key::clean_up(spec, made, conn).await;
    }
    let (exists, validated) = state(conn, spec).await?;
    let policy = RetryPolicy::default();
    let never = CancellationToken::new();
    if let Some(columns) = unique_columns(spec) {
        if exists {
            return Ok(None);
        }
        let index = index_spec(spec, columns);
        let dropped = create_index::undo(&index, conn, &policy, &never).await?;
        return Ok(Some(format!(
            "{dropped} (the constraint was not attached yet)"
        )));
    }
    if exists && !validated {
        execute_with_retry(conn, &undo_sql(spec), &policy, &never, &mut |_| {}).await?;
        return Ok(Some(format!(
            "dropped the unvalidated constraint {}",
            spec.name
        )));
    }
    Ok(None)
}
