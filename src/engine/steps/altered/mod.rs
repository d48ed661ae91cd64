//! The versioned kinds that give the new version its own copy of a column
//! (`alter_column`, `drop_constraint`, `drop_not_null`). In order, each
//! resumable: the undo recorded first (it removes everything the step
//! makes, so a rollback of an interrupted step leaves the table as it
//! was); the hidden copy with a rule giving it `up` on every write; the
//! batched backfill of existing rows (checkpointed, throttled, paced);
//! its constraints NOT VALID then validated, its unique index built
//! concurrently; then, in one transaction with the step's journal record,
//! the new version's view switched to the copy and the rules split by
//! writer (`up` for the old version, `down` for the new).

mod resolve;

use super::versions::{Prepared, prepare};
use super::{Ctx, RecordedUndo, StepError, batch};
use crate::db::{Conn, DbError, execute_with_retry, quote_ident};
use crate::engine::events::EventKind;
use crate::journal::steps::Created;
use crate::plan::Step;
use crate::statements::alter_column::Duplicate;
use crate::statements::versions::create_schema_sql;

pub(crate) use resolve::{duplicate, duplicates};

/// Indexes and constraints on the old column that go with it at contract.
const GOES_WITH_IT: &str = "SELECT c.relname::text FROM pg_index i
   JOIN pg_class c ON c.oid = i.indexrelid
   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = $2
  WHERE i.indrelid = to_regclass($1) AND a.attnum = ANY(i.indkey)
    AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conname = $3)
 UNION ALL
 SELECT k.conname::text FROM pg_constraint k
   JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attname = $2
  WHERE k.conrelid = to_regclass($1) AND a.attnum = ANY(k.conkey) AND k.conname <> $3
    AND k.contype <> 'u'";

/// The table's single-column primary key, which the backfill walks.
pub(super) async fn primary_key(conn: &Conn, qtable: &str) -> Result<Option<String>, DbError> {
    Ok(conn
        .client
        .query_opt(
            "SELECT a.attname::text FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND i.indnatts = 1",
            &[&qtable],
        )
        .await
        .map_err(|e| DbError::sql("finding the table's primary key", e))?
        .map(|r| r.get(0)))
}

/// Runs `sql` with the DDL's lock_timeout and retries.
pub(super) async fn ddl(ctx: &Ctx<'_>, sql: &str) -> Result<(), StepError> {
    let cancel = ctx.control.abort.token().clone();
    let mut report = ctx.retry_reporter();
    execute_with_retry(ctx.conn, sql, &ctx.policy, &cancel, &mut report)
        .await
        .map(|_| ())
        .map_err(|e| ctx.db_error(e))
}

/// Runs an `alter_column`, `drop_constraint` or `drop_not_null` step.
pub async fn run(step: &Step, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let p: Prepared = prepare(step, ctx).await?;
    let v = &p.v;
    let dup = duplicate(step, v, &p.prev, &p.constraints, ctx.conn).await?;
    ctx.record_undo(&RecordedUndo::Sql {
        sql: p.undo(&dup.undo_sql(v)),
    })
    .await?;
    let qtable = dup.qtable(v);
    let key = primary_key(ctx.conn, &qtable)
        .await
        .map_err(|e| ctx.db_error(e))?
        .ok_or_else(|| {
            StepError::Failed(format!(
                "step \"{}\": {qtable} has no single-column primary key for the backfill to walk",
                step.display_name()
            ))
        })?;
    announce_losses(step, &dup, &qtable, ctx).await?;
    let columns = p.tables.get(&dup.table).cloned().unwrap_or_default();

    restart_if_gone(ctx, &qtable, &dup.hidden).await?;
    let mut sql = create_schema_sql(ctx.plan, v);
    sql.push_str(&dup.add_sql(v, &columns));
    ddl(ctx, &sql).await?;

    let filled = batch::run(&dup.backfill(v, &key), ctx).await?;
    for build in dup.builds(v) {
        ctx.control.safe_point(ctx.out).await?;
        build_one(ctx, &qtable, &build).await?;
    }

    let new_columns: Vec<(String, String)> = p
        .next
        .view_of(&dup.table)
        .map(|view| {
            view.columns
                .iter()
                .map(|c| (c.visible.clone(), c.physical.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut sql = dup.rules_sql(v, &columns, &new_columns);
    sql.push_str(&p.switch_views());
    sql.push_str(&ctx.mark_done_sql());
    ddl(ctx, &sql).await?;
    Ok(format!(
        "{}.{} is a copy ({}) in schema {}: {filled}",
        dup.label, dup.visible, dup.type_, v.new
    ))
}

/// A checkpoint of a hidden column that is gone (dropped by hand, or by a
/// clean-up) would skip rows: the backfill starts over.
pub(super) async fn restart_if_gone(
    ctx: &mut Ctx<'_>,
    qtable: &str,
    hidden: &str,
) -> Result<(), StepError> {
    let existed = column_exists(ctx.conn, qtable, hidden)
        .await
        .map_err(|e| ctx.db_error(e))?;
    if !existed && ctx.journal.is_some_and(|j| j.last_key.is_some()) {
        ctx.conn
            .client
            .execute(
                "UPDATE cutover.steps SET checkpoint = NULL, rows_done = 0, rows_updated = 0
                 WHERE run_id = $1 AND phase = $2 AND step = $3",
                &[&ctx.run_id, &(ctx.phase as i32), &(ctx.step as i32)],
            )
            .await
            .map_err(|e| ctx.db_error(DbError::sql("resetting the backfill's checkpoint", e)))?;
        ctx.journal = None;
    }
    Ok(())
}

async fn column_exists(conn: &Conn, qtable: &str, column: &str) -> Result<bool, DbError> {
    conn.client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1)
                            AND attname = $2 AND NOT attisdropped)",
            &[&qtable, &column],
        )
        .await
        .map(|r| r.get(0))
        .map_err(|e| DbError::sql("looking for the hidden column", e))
}

/// Says which indexes and constraints of the old column go with it at
/// contract (the copy has only what the step gives it).
async fn announce_losses(
    step: &Step,
    dup: &Duplicate,
    qtable: &str,
    ctx: &Ctx<'_>,
) -> Result<(), StepError> {
    let dropped = match step {
        Step::DropConstraint(s) => s.constraint.clone(),
        _ => String::new(),
    };
    let names: Vec<String> = ctx
        .conn
        .client
        .query(GOES_WITH_IT, &[&qtable, &dup.column, &dropped])
        .await
        .map_err(|e| ctx.db_error(DbError::sql("listing the column's indexes", e)))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !names.is_empty() {
        ctx.out.emit(EventKind::Notice {
            message: format!(
                "step \"{}\": at contract the old {}.{} goes with {}; the new version's copy \
                 has only what the step gives it (`unique`, `check`, `references`)",
                step.display_name(),
                dup.table,
                dup.column,
                names.join(", ")
            ),
        });
    }
    Ok(())
}

/// Builds one constraint or index of the copy, resuming: an existing
/// constraint is only validated; an INVALID index left by an interrupted
/// build is dropped and built again.
async fn build_one(
    ctx: &Ctx<'_>,
    qtable: &str,
    build: &crate::statements::alter_column::Build,
) -> Result<(), StepError> {
    let schema = crate::db::ident::split_qualified(qtable)
        .first()
        .cloned()
        .unwrap_or_default();
    if build.index {
        let qname = format!("{}.{}", quote_ident(&schema), quote_ident(&build.name));
        let valid: Option<bool> = ctx
            .conn
            .client
            .query_opt(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
                &[&qname],
            )
            .await
            .map_err(|e| ctx.db_error(DbError::sql("looking up the copy's index", e)))?
            .map(|r| r.get(0));
        if valid == Some(true) {
            return Ok(());
        }
        if valid == Some(false) {
            ddl(ctx, &format!("DROP INDEX CONCURRENTLY IF EXISTS {qname}")).await?;
        }
        ctx.record_created(&Created::Index { name: qname }).await?;
        return ddl(ctx, &build.create).await;
    }
    let exists: bool = ctx
        .conn
        .client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2)",
            &[&qtable, &build.name],
        )
        .await
        .map_err(|e| ctx.db_error(DbError::sql("looking up the copy's constraint", e)))?
        .get(0);
    if !exists {
        ctx.record_created(&Created::Constraint {
            table: qtable.to_string(),
            name: build.name.clone(),
        })
        .await?;
        ddl(ctx, &build.create).await?;
    }
    if let Some(validate) = &build.validate {
        ddl(ctx, validate).await?;
    }
    Ok(())
}
