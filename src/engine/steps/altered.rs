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

use std::collections::BTreeMap;

use super::versions::{Prepared, prepare};
use super::{Ctx, RecordedUndo, StepError, batch};
use crate::db::{Conn, DbError, execute_with_retry, quote_ident, quote_qualified};
use crate::engine::events::EventKind;
use crate::journal::steps::Created;
use crate::plan::Step;
use crate::plan::model::{CheckSpec, ReferencesSpec, UniqueSpec, Versions};
use crate::statements::alter_column::{Duplicate, Reference};
use crate::statements::versions::{ConstraintColumns, Model, create_schema_sql, hidden_column};

/// What the catalog says of the column being copied.
struct Facts {
    type_: String,
    not_null: bool,
    default: Option<String>,
    comment: Option<String>,
    special: Option<String>,
}

const FACTS: &str = "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull,
        pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum),
        CASE WHEN a.attidentity <> '' THEN 'an identity column'
             WHEN a.attgenerated <> '' THEN 'a generated column'
             WHEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid
                          AND i.indisprimary AND a.attnum = ANY(i.indkey))
             THEN 'in the primary key' END
 FROM pg_attribute a
 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped";

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

/// The table, column and new-version name a step copies, before the step.
fn target(
    step: &Step,
    prev: &Model,
    constraints: &ConstraintColumns,
) -> Result<(String, String, String, String), String> {
    let (label, visible) = match step {
        Step::AlterColumn(s) => (s.table.clone(), s.column.clone()),
        Step::DropNotNull(s) => (s.table.clone(), s.column.clone()),
        Step::DropConstraint(s) => {
            let table = prev.physical_table(&s.table);
            let column = constraints
                .get(&(table.clone(), s.constraint.clone()))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "table \"{}\" has no constraint \"{}\" on one column",
                        s.table, s.constraint
                    )
                })?;
            let visible = prev
                .view_of(&table)
                .and_then(|v| v.columns.iter().find(|c| c.physical == column))
                .map_or(column, |c| c.visible.clone());
            (s.table.clone(), visible)
        }
        _ => return Err(format!("{} does not copy a column", step.kind())),
    };
    let table = prev.physical_table(&label);
    let column = prev
        .view_of(&table)
        .and_then(|v| v.columns.iter().find(|c| c.visible == visible))
        .map_or_else(|| visible.clone(), |c| c.physical.clone());
    Ok((label, table, column, visible))
}

/// The new version's copy of the column a step changes, from the step and
/// the catalog (also used at contract, before the old column goes).
pub(crate) async fn duplicate(
    step: &Step,
    v: &Versions,
    prev: &Model,
    constraints: &ConstraintColumns,
    conn: &Conn,
) -> Result<Duplicate, StepError> {
    let (label, table, column, visible) = target(step, prev, constraints)
        .map_err(|e| StepError::Failed(format!("step \"{}\": {e}", step.display_name())))?;
    let qtable = format!("{}.{}", quote_ident(&v.old), quote_ident(&table));
    let row = conn
        .client
        .query_opt(FACTS, &[&qtable, &column])
        .await
        .map_err(|e| StepError::Db(DbError::sql("reading the column's type and default", e)))?
        .ok_or_else(|| {
            StepError::Failed(format!(
                "step \"{}\": {qtable} has no column \"{column}\"",
                step.display_name()
            ))
        })?;
    let facts = Facts {
        type_: row.get(0),
        not_null: row.get(1),
        default: row.get(2),
        comment: row.get(3),
        special: row.get(4),
    };
    if let Some(why) = facts.special {
        return Err(StepError::Failed(format!(
            "step \"{}\": {table}.{column} is {why}; cutover cannot copy it for the new version \
             (use a `sql` step in a plan without [versions])",
            step.display_name()
        )));
    }
    let hidden = hidden_column(&column);
    let name = |suffix: &str| format!("{table}_{visible}_{suffix}");
    let mut dup = Duplicate {
        label,
        table: table.clone(),
        column: column.clone(),
        visible: visible.clone(),
        hidden: hidden.clone(),
        type_: facts.type_,
        not_null: facts.not_null,
        default: facts.default,
        check: None,
        unique: None,
        references: None,
        comment: facts.comment,
        up: quote_ident(&column),
        down: quote_ident(&visible),
    };
    let (up, down) = match step {
        Step::AlterColumn(s) => {
            if let Some(t) = &s.type_ {
                dup.type_ = t.clone();
            }
            dup.not_null = s.not_null.unwrap_or(dup.not_null);
            if s.default.is_some() {
                dup.default = s.default.clone();
            }
            if s.comment.is_some() {
                dup.comment = s.comment.clone();
            }
            if let Some(c) = &s.check {
                let (n, expr) = match c {
                    CheckSpec::Expr(e) => (name("check"), e),
                    CheckSpec::Named { name, constraint } => (name.clone(), constraint),
                };
                let on_copy = crate::sql::rename_column_refs(expr, &visible, &hidden)
                    .map_err(|e| StepError::Failed(format!("step `check`: {e}")))?;
                dup.check = Some((n, on_copy));
            }
            dup.unique = match &s.unique {
                Some(UniqueSpec::Flag(true)) => Some(name("key")),
                Some(UniqueSpec::Named { name }) => Some(name.clone()),
                _ => None,
            };
            dup.references = s.references.as_ref().map(|r| reference(r, &name("fkey")));
            (&s.up, &s.down)
        }
        Step::DropNotNull(s) => {
            dup.not_null = false;
            (&s.up, &s.down)
        }
        Step::DropConstraint(s) => (&s.up, &s.down),
        _ => (&None, &None),
    };
    if let Some(up) = up {
        dup.up = up.clone();
    }
    if let Some(down) = down {
        dup.down = down.clone();
    }
    Ok(dup)
}

fn reference(spec: &ReferencesSpec, default_name: &str) -> Reference {
    match spec {
        ReferencesSpec::Target(t) => {
            let (table, column) = match t.split_once('(') {
                Some((t, c)) => (t.trim(), Some(c.trim_end_matches(')').trim().to_string())),
                None => (t.trim(), None),
            };
            Reference {
                name: default_name.to_string(),
                table: quote_qualified(table),
                column,
                on_delete: None,
            }
        }
        ReferencesSpec::Named {
            name,
            table,
            column,
            on_delete,
        } => Reference {
            name: name.clone().unwrap_or_else(|| default_name.to_string()),
            table: quote_qualified(table),
            column: column.clone(),
            on_delete: on_delete.clone(),
        },
    }
}

/// The table's single-column primary key, which the backfill walks.
async fn primary_key(conn: &Conn, qtable: &str) -> Result<Option<String>, DbError> {
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
async fn ddl(ctx: &Ctx<'_>, sql: &str) -> Result<(), StepError> {
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

    let existed = column_exists(ctx.conn, &qtable, &dup.hidden)
        .await
        .map_err(|e| ctx.db_error(e))?;
    if !existed && ctx.journal.is_some_and(|j| j.last_key.is_some()) {
        // A checkpoint of a copy that is gone: the backfill starts over.
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

/// The copies the plan's versioned steps make, each with the views before
/// it: what the contract swaps into place.
pub(crate) async fn duplicates(
    steps: &[&Step],
    v: &Versions,
    tables: &BTreeMap<String, Vec<String>>,
    constraints: &ConstraintColumns,
    conn: &Conn,
) -> Result<Vec<Duplicate>, StepError> {
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if matches!(
            step,
            Step::AlterColumn(_) | Step::DropConstraint(_) | Step::DropNotNull(_)
        ) {
            let prev =
                Model::build_in(&steps[..i], tables, constraints).map_err(StepError::Failed)?;
            out.push(duplicate(step, v, &prev, constraints, conn).await?);
        }
    }
    Ok(out)
}
