//! The versioned step kinds that change views (`rename_column`,
//! `rename_table`, `add_column`, `drop_column`): each rebuilds the new
//! version's views to include its change (hidden columns and write rules
//! where the versions write differently), records the exact undo, and
//! commits with its journal record. Also what every versioned kind starts
//! from ([`prepare`]); the kinds that copy a column are in `altered`, and
//! the contract in [`crate::engine::versions`].

use std::collections::BTreeMap;

use super::{Ctx, RecordedUndo, StepError, altered, batch};
use crate::db::{Conn, DbError, quote_ident};
use crate::plan::model::Versions;
use crate::plan::{Plan, Step};
use crate::statements::batch::{BatchJob, Work};
use crate::statements::versions::{
    ConstraintColumns, HIDDEN_PREFIX, Model, Writer, completed_comment, create_schema_sql,
    drop_schema_sql, drop_write_rule_sql, named_tables, old_columns, schema_comment,
    versioned_steps, write_rule_sql,
};

pub(super) fn versions_of(plan: &Plan, step: &Step) -> Result<Versions, StepError> {
    plan.versions.clone().ok_or_else(|| {
        StepError::Failed(format!(
            "step \"{}\" ({}) needs a [versions] table in the plan: \
             add `[versions]` with `old = \"public\"` and `new = \"app_v2\"`",
            step.display_name(),
            step.kind()
        ))
    })
}

/// The old schema's tables the plan's versioned steps name: physical name →
/// its columns in order (hidden columns cutover added left out).
pub(crate) async fn old_tables(
    conn: &Conn,
    v: &Versions,
    plan: &Plan,
) -> Result<BTreeMap<String, Vec<String>>, DbError> {
    let names: Vec<String> = versioned_steps(plan)
        .iter()
        .flat_map(|(_, s)| named_tables(s))
        .collect();
    let rows = conn
        .client
        .query(
            "SELECT c.relname::text, c.relkind::text,
                    coalesce(array_agg(a.attname::text ORDER BY a.attnum)
                        FILTER (WHERE a.attnum > 0 AND NOT a.attisdropped
                                AND left(a.attname, length($3)) <> $3), '{}')
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid
             WHERE n.nspname = $1 AND c.relname = ANY($2)
             GROUP BY c.relname, c.relkind",
            &[&v.old, &names, &HIDDEN_PREFIX],
        )
        .await
        .map_err(|e| DbError::sql("reading the old version's tables", e))?;
    let mut out = BTreeMap::new();
    for r in rows {
        let kind: String = r.get(1);
        // Views of an earlier version schema are not tables to rename.
        if kind == "r" || kind == "p" {
            out.insert(r.get::<_, String>(0), r.get::<_, Vec<String>>(2));
        }
    }
    Ok(out)
}

/// The version schema's comment, if the schema exists.
pub(crate) async fn schema_state(conn: &Conn, v: &Versions) -> Result<Option<String>, DbError> {
    let row = conn
        .client
        .query_opt(
            "SELECT coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace WHERE nspname = $1",
            &[&v.new],
        )
        .await
        .map_err(|e| DbError::sql("looking for the version schema", e))?;
    Ok(row.map(|r| r.get(0)))
}

/// What every versioned step starts from: the versions, the old schema's
/// tables, and the new version's views before and after the step.
pub(super) struct Prepared {
    /// `[versions]`.
    pub v: Versions,
    /// The old schema's tables the plan names, with their columns.
    pub tables: BTreeMap<String, Vec<String>>,
    /// The views before this step.
    pub prev: Model,
    /// The views with this step.
    pub next: Model,
    /// This is the plan's first versioned step (its undo drops the schema).
    pub first: bool,
    /// The column of each constraint a `drop_constraint` names.
    pub constraints: ConstraintColumns,
}

impl Prepared {
    /// The undo of the step: its views and `own` objects gone, the views
    /// as before (or no version schema at all).
    pub fn undo(&self, own: &str) -> String {
        let mut undo = self.next.drop_views_sql(&self.v);
        undo.push_str(own);
        if self.first {
            undo.push_str(&drop_schema_sql(&self.v));
        } else {
            undo.push_str(&self.prev.create_views_sql(&self.v));
        }
        undo
    }

    /// Replaces the views before the step with the views after it.
    pub fn switch_views(&self) -> String {
        let mut sql = self.prev.drop_views_sql(&self.v);
        sql.push_str(&self.next.drop_views_sql(&self.v));
        sql.push_str(&self.next.create_views_sql(&self.v));
        sql
    }
}

/// The single-column constraints the plan's `drop_constraint` steps name:
/// (table, constraint) → its column.
pub(crate) async fn constraint_columns(
    conn: &Conn,
    v: &Versions,
    plan: &Plan,
) -> Result<ConstraintColumns, DbError> {
    let names: Vec<String> = versioned_steps(plan)
        .iter()
        .filter_map(|(_, s)| match s {
            Step::DropConstraint(d) => Some(d.constraint.clone()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return Ok(ConstraintColumns::new());
    }
    let rows = conn
        .client
        .query(
            "SELECT c.relname::text, k.conname::text, a.attname::text
             FROM pg_constraint k
             JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
             WHERE n.nspname = $1 AND k.conname = ANY($2) AND cardinality(k.conkey) = 1",
            &[&v.old, &names],
        )
        .await
        .map_err(|e| DbError::sql("reading the constraints drop_constraint names", e))?;
    Ok(rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect())
}

/// Checks the version schema is this plan's and builds the views before
/// and after `step`.
pub(super) async fn prepare(step: &Step, ctx: &mut Ctx<'_>) -> Result<Prepared, StepError> {
    let plan = ctx.plan;
    let v = versions_of(plan, step)?;
    if plan.phases[ctx.phase].irreversible {
        return Err(StepError::Failed(format!(
            "step \"{}\" ({}) is in irreversible phase \"{}\"; versioned steps belong in a \
             phase before it (the irreversible phase makes them physical)",
            step.display_name(),
            step.kind(),
            plan.phases[ctx.phase].name()
        )));
    }
    match schema_state(ctx.conn, &v)
        .await
        .map_err(|e| ctx.db_error(e))?
    {
        Some(c) if c == schema_comment(plan) => {}
        Some(c) if c == completed_comment(plan) => {
            return Err(StepError::Failed(format!(
                "version schema \"{}\" was already made physical by this plan's irreversible phase",
                v.new
            )));
        }
        Some(_) => {
            return Err(StepError::Failed(format!(
                "schema \"{}\" already exists and cutover did not make it for plan \"{}\"; \
                 choose another `[versions] new`, or drop that schema",
                v.new, plan.name
            )));
        }
        None => {}
    }
    let all = versioned_steps(plan);
    let at = all
        .iter()
        .position(|(pos, _)| *pos == (ctx.phase, ctx.step))
        .unwrap_or(all.len());
    let before: Vec<&Step> = all[..at].iter().map(|(_, s)| *s).collect();
    let mut upto = before.clone();
    upto.push(step);
    let tables = old_tables(ctx.conn, &v, plan)
        .await
        .map_err(|e| ctx.db_error(e))?;
    let constraints = constraint_columns(ctx.conn, &v, plan)
        .await
        .map_err(|e| ctx.db_error(e))?;
    let prev = Model::build_in(&before, &tables, &constraints).map_err(StepError::Failed)?;
    let next = Model::build_in(&upto, &tables, &constraints).map_err(StepError::Failed)?;
    Ok(Prepared {
        v,
        tables,
        prev,
        next,
        first: before.is_empty(),
        constraints,
    })
}

/// Runs a versioned step that changes only views (and, for `add_column`
/// and `drop_column`, write rules).
pub async fn run(step: &Step, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let p = prepare(step, ctx).await?;
    let v = &p.v;
    let (change, unchange, backfill) = own_change(step, v, &p.tables, &p.prev);
    ctx.record_undo(&RecordedUndo::Sql {
        sql: p.undo(&unchange),
    })
    .await?;

    let mut sql = create_schema_sql(ctx.plan, v);
    sql.push_str(&change);
    let mut detail = describe(step, v);
    if let Some(mut fill) = backfill {
        // The column, filled in checkpointed batches, before the new
        // version sees it: a write of the new version is never overwritten.
        fill.job.key = altered::primary_key(ctx.conn, &fill.job.table)
            .await
            .map_err(|e| ctx.db_error(e))?
            .ok_or_else(|| {
                StepError::Failed(format!(
                    "step \"{}\": {} has no single-column primary key for the backfill to walk",
                    step.display_name(),
                    fill.job.table
                ))
            })?;
        altered::restart_if_gone(ctx, &fill.job.table, &fill.hidden).await?;
        altered::ddl(ctx, &sql).await?;
        let filled = batch::run(&fill.job, ctx).await?;
        detail.push_str(&format!("; existing rows given `up`: {filled}"));
        sql = fill.rule;
    }
    sql.push_str(&p.switch_views());
    sql.push_str(&ctx.mark_done_sql());
    altered::ddl(ctx, &sql).await?;
    Ok(detail)
}

/// Existing rows to give an added column's `up`, and the rule for the old
/// version's writes once the new version sees the column.
struct Backfill {
    /// The batches (the key is the table's primary key).
    job: BatchJob,
    /// The write rule for the old version's writes only.
    rule: String,
    /// The added column.
    hidden: String,
}

/// The statements of a step's own change (beyond the views), their undo,
/// and the existing rows to fill in.
fn own_change(
    step: &Step,
    v: &Versions,
    tables: &BTreeMap<String, Vec<String>>,
    prev: &Model,
) -> (String, String, Option<Backfill>) {
    // A step names a table as the new version does: an earlier rename_table
    // may have renamed it.
    let physical = |name: &str| prev.physical_table(name);
    match step {
        Step::AddColumn(s) => {
            let table = physical(&s.table);
            let qtable = format!("{}.{}", quote_ident(&v.old), quote_ident(&table));
            let hidden = crate::statements::versions::hidden_column(&s.column);
            let mut change = format!(
                "ALTER TABLE {qtable} ADD COLUMN IF NOT EXISTS {} {};\n",
                quote_ident(&hidden),
                s.type_
            );
            let mut undo = drop_write_rule_sql(v, &s.table, "up", &hidden);
            let columns = tables.get(&table).cloned().unwrap_or_default();
            let mut backfill = None;
            if let Some(up) = &s.up {
                // Until the new version sees the column, every write gets
                // `up`; the backfill then fills the rows no write reached.
                let rule = |writer| {
                    write_rule_sql(
                        v,
                        &table,
                        &s.table,
                        &old_columns(&columns),
                        "up",
                        &hidden,
                        up,
                        writer,
                    )
                };
                change.push_str(&rule(Writer::Any));
                backfill = Some(Backfill {
                    job: BatchJob {
                        table: qtable.clone(),
                        key: String::new(),
                        filter: Some(format!("{} IS NULL", quote_ident(&hidden))),
                        work: Work::Update {
                            set: format!("{} = ({up})", quote_ident(&hidden)),
                        },
                        batch_size: None,
                        vacuum_behind: true,
                        workers: 1,
                    },
                    rule: rule(Writer::Old),
                    hidden: hidden.clone(),
                });
            }
            undo.push_str(&format!(
                "ALTER TABLE {qtable} DROP COLUMN IF EXISTS {};\n",
                quote_ident(&hidden)
            ));
            (change, undo, backfill)
        }
        Step::DropColumn(s) => match &s.down {
            Some(down) => {
                let table = physical(&s.table);
                let columns = tables.get(&table).cloned().unwrap_or_default();
                (
                    write_rule_sql(
                        v,
                        &table,
                        &s.table,
                        &old_columns(&columns),
                        "down",
                        &s.column,
                        down,
                        Writer::New,
                    ),
                    drop_write_rule_sql(v, &s.table, "down", &s.column),
                    None,
                )
            }
            None => (String::new(), String::new(), None),
        },
        _ => (String::new(), String::new(), None),
    }
}

fn describe(step: &Step, v: &Versions) -> String {
    match step {
        Step::RenameColumn(s) => format!(
            "{}.{} is {} in schema {} (no row rewritten)",
            s.table, s.from, s.to, v.new
        ),
        Step::RenameTable(s) => {
            format!(
                "{} is {} in schema {} (no row rewritten)",
                s.from, s.to, v.new
            )
        }
        Step::AddColumn(s) => format!("{}.{} visible in schema {}", s.table, s.column, v.new),
        Step::DropColumn(s) => format!("{}.{} hidden from schema {}", s.table, s.column, v.new),
        _ => String::new(),
    }
}
