//! Resolving the new version's copy of a column from the step and the
//! catalog: its type, NOT NULL, default and comment as they are now unless
//! the step changes them, and the constraints the step gives it.

use std::collections::BTreeMap;

use super::super::StepError;
use crate::db::{Conn, DbError, quote_ident, quote_qualified};
use crate::plan::Step;
use crate::plan::model::{CheckSpec, ReferencesSpec, UniqueSpec, Versions};
use crate::statements::alter_column::{Duplicate, Reference};
use crate::statements::versions::{ConstraintColumns, Model, hidden_column};

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
            let mut copy = duplicate(step, v, &prev, constraints, conn).await?;
            // NOT NULL as the step built it: the old column's may have
            // changed since, and SET NOT NULL without the check would scan.
            copy.not_null = conn
                .client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_constraint
                                    WHERE conrelid = to_regclass($1) AND conname = $2)",
                    &[&copy.qtable(v), &copy.not_null_check()],
                )
                .await
                .map_err(|e| {
                    StepError::Db(DbError::sql("looking for the copy's NOT NULL check", e))
                })?
                .get(0);
            out.push(copy);
        }
    }
    Ok(out)
}
