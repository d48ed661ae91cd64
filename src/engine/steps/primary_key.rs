//! A `constraint` step's PRIMARY KEY, added without blocking the table:
//! `CREATE UNIQUE INDEX CONCURRENTLY`; for each key column that allows
//! NULL, `CHECK (col IS NOT NULL) NOT VALID` and `VALIDATE` (SHARE UPDATE
//! EXCLUSIVE: reads and writes go on); then one short transaction sets NOT
//! NULL (proved by the checks, no scan), drops the checks and adds the
//! constraint `PRIMARY KEY USING INDEX`. Its undo, recorded before anything
//! changes, drops the constraint and DROP NOT NULL on exactly the columns
//! the step made NOT NULL.

use tokio_postgres::error::SqlState;
use tokio_util::sync::CancellationToken;

use super::{Ctx, RecordedUndo, StepError, create_index};
use crate::db::{Conn, DbError, RetryPolicy, execute_with_retry, quote_qualified};
use crate::journal::steps::Created;
use crate::plan::model::{ConstraintStep, NotNullStep};
use crate::statements::constraint::{
    index_spec, not_null_specs, primary_key_finish_sql, primary_key_undo_sql, unique_columns,
};
use crate::statements::not_null::{add_sql, check_name, drop_check_sql, validate_sql};

/// The key column's NOT NULL flag (None: no such column).
const COLUMN_NOT_NULL: &str = "SELECT attnotnull FROM pg_attribute
     WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped";

/// A check's state: (exists, validated).
const CHECK_STATE: &str = "SELECT convalidated FROM pg_constraint
     WHERE conrelid = to_regclass($1) AND conname = $2";

/// The table's primary key, by name, if it has one.
const PRIMARY_KEY: &str = "SELECT conname::text FROM pg_constraint
     WHERE conrelid = to_regclass($1) AND contype = 'p'";

async fn check_state(conn: &Conn, spec: &NotNullStep) -> Result<(bool, bool), DbError> {
    let row = conn
        .client
        .query_opt(
            CHECK_STATE,
            &[&quote_qualified(&spec.table), &check_name(spec)],
        )
        .await
        .map_err(|e| DbError::sql("reading a key column's temporary check", e))?;
    Ok(row.map_or((false, false), |r| (true, r.get(0))))
}

/// The key columns that still allow NULL; an error names a missing one.
async fn nullable_columns(
    conn: &Conn,
    spec: &ConstraintStep,
) -> Result<Result<Vec<NotNullStep>, String>, DbError> {
    let mut out = Vec::new();
    for column in not_null_specs(spec) {
        let row = conn
            .client
            .query_opt(
                COLUMN_NOT_NULL,
                &[&quote_qualified(&spec.table), &column.column],
            )
            .await
            .map_err(|e| DbError::sql("reading the key columns", e))?;
        match row.map(|r| r.get::<_, bool>(0)) {
            None => {
                return Ok(Err(format!(
                    "constraint {}: {} has no column \"{}\" (named in `definition`)",
                    spec.name, spec.table, column.column
                )));
            }
            Some(true) => {}
            Some(false) => out.push(column),
        }
    }
    Ok(Ok(out))
}

/// Adds the primary key, resuming wherever an earlier session stopped.
pub async fn run(
    spec: &ConstraintStep,
    ctx: &mut Ctx<'_>,
    exists: bool,
) -> Result<String, StepError> {
    if exists {
        return Ok(format!("primary key {} exists", spec.name));
    }
    let table = quote_qualified(&spec.table);
    let other: Option<String> = ctx
        .conn
        .client
        .query_opt(PRIMARY_KEY, &[&table])
        .await
        .map_err(|e| ctx.db_error(DbError::sql("looking for a primary key", e)))?
        .map(|r| r.get(0));
    if let Some(other) = other {
        return Err(StepError::Failed(format!(
            "{} already has a primary key ({other}); a table has at most one. Drop it first, or \
             make this step a UNIQUE constraint",
            spec.table
        )));
    }
    let Some(columns) = unique_columns(spec) else {
        return Err(StepError::Failed(format!(
            "constraint {}: `definition` names no key columns: write PRIMARY KEY (col, …)",
            spec.name
        )));
    };
    let index = index_spec(spec, columns);
    let ours = Created::Index {
        name: crate::statements::create_index::qualified_index_name(&index),
    };
    if create_index::index_state(ctx.conn, &index)
        .await
        .map_err(|e| ctx.db_error(e))?
        .is_some()
        && !ctx.created_before().contains(&ours)
    {
        return Err(StepError::Failed(format!(
            "an index named {} exists on {} that this run did not build; the primary key's \
             index takes the constraint's name: rename the step's constraint or drop that index",
            spec.name, spec.table
        )));
    }
    let nullable = match nullable_columns(ctx.conn, spec)
        .await
        .map_err(|e| ctx.db_error(e))?
    {
        Ok(n) => n,
        Err(why) => return Err(StepError::Failed(why)),
    };
    // The exact undo, before anything changes: nothing below commits a
    // NOT NULL before the final transaction, so a resumed step finds the
    // same nullable columns.
    let made_not_null: Vec<String> = nullable.iter().map(|c| c.column.clone()).collect();
    ctx.record_undo(&RecordedUndo::Sql {
        sql: primary_key_undo_sql(spec, &made_not_null),
    })
    .await?;
    for column in &nullable {
        ctx.record_created(&Created::Constraint {
            table: table.clone(),
            name: check_name(column),
        })
        .await?;
    }
    create_index::run(&index, ctx).await?;
    let cancel = ctx.control.abort.token().clone();
    let mut report = ctx.retry_reporter();
    for column in &nullable {
        let (added, validated) = check_state(ctx.conn, column)
            .await
            .map_err(|e| ctx.db_error(e))?;
        if !added {
            ctx.control.safe_point(ctx.out).await?;
            execute_with_retry(
                ctx.conn,
                &add_sql(column),
                &ctx.policy,
                &cancel,
                &mut report,
            )
            .await
            .map_err(|e| ctx.db_error(e))?;
        }
        if !validated {
            ctx.control.safe_point(ctx.out).await?;
            execute_with_retry(
                ctx.conn,
                &validate_sql(column),
                &ctx.policy,
                &cancel,
                &mut report,
            )
            .await
            .map_err(|e| match e {
                DbError::Sql { ref source, .. }
                    if source.code() == Some(&SqlState::CHECK_VIOLATION) =>
                {
                    StepError::Failed(format!(
                        "{}.{} has NULLs, so it cannot be part of the primary key {}; fill them \
                         (a backfill step) before this step",
                        spec.table, column.column, spec.name
                    ))
                }
                other => ctx.db_error(other),
            })?;
        }
    }
    ctx.control.safe_point(ctx.out).await?;
    let finish = primary_key_finish_sql(spec, &nullable).unwrap_or_default();
    let finish = format!("{finish};\n{}", ctx.mark_done_sql());
    execute_with_retry(ctx.conn, &finish, &ctx.policy, &cancel, &mut report)
        .await
        .map_err(|e| ctx.db_error(e))?;
    Ok(format!(
        "primary key {} (index built concurrently; NOT NULL on {} proved by validated checks)",
        spec.name,
        if made_not_null.is_empty() {
            "no column: all were already".to_string()
        } else {
            made_not_null.join(", ")
        }
    ))
}

/// After an abort or failure: drops the temporary checks and the index
/// this run made, unless the primary key was attached.
pub async fn clean_up(
    spec: &ConstraintStep,
    made: &[Created],
    conn: &Conn,
) -> Result<Option<String>, DbError> {
    let (exists, _) = super::constraint::state(conn, spec).await?;
    if exists {
        return Ok(None);
    }
    let policy = RetryPolicy::default();
    let never = CancellationToken::new();
    let table = quote_qualified(&spec.table);
    let mut done = Vec::new();
    for column in not_null_specs(spec) {
        let ours = Created::Constraint {
            table: table.clone(),
            name: check_name(&column),
        };
        if made.contains(&ours) && check_state(conn, &column).await?.0 {
            execute_with_retry(conn, &drop_check_sql(&column), &policy, &never, &mut |_| {})
                .await?;
            done.push(format!(
                "dropped the temporary check {}",
                check_name(&column)
            ));
        }
    }
    if let Some(columns) = unique_columns(spec) {
        let index = index_spec(spec, columns);
        let ours = Created::Index {
            name: crate::statements::create_index::qualified_index_name(&index),
        };
        if made.contains(&ours) && create_index::index_state(conn, &index).await?.is_some() {
            done.push(format!(
                "{} (the primary key was not attached yet)",
                create_index::undo(&index, conn, &policy, &never).await?
            ));
        }
    }
    Ok((!done.is_empty()).then(|| done.join("; ")))
}
