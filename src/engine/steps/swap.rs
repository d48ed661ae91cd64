//! `kind = "swap"`: renames (tables, indexes, sequences, columns) in one
//! short transaction under lock_timeout, retried. An abort asked for inside
//! the critical section takes effect when it ends: a half-done swap is
//! impossible (one transaction), and cancelling it would only waste the
//! lock the application already queued behind.

use tokio_util::sync::CancellationToken;

use super::{Ctx, StepError, sync_trigger};
use crate::db::retry::execute_with_retry_between;
use crate::db::{quote_ident, quote_qualified};
use crate::engine::events::EventKind;
use crate::plan::Plan;
use crate::plan::model::{Rename, SwapStep};
use crate::plan::model::{Step, SyncTriggerStep};

fn rename_sql(r: &Rename) -> String {
    match &r.table {
        Some(table) => format!(
            "ALTER TABLE {} RENAME COLUMN {} TO {}",
            quote_qualified(table),
            quote_ident(&r.from),
            quote_ident(&r.to)
        ),
        // ALTER TABLE … RENAME also renames indexes and sequences.
        None => format!(
            "ALTER TABLE {} RENAME TO {}",
            quote_qualified(&r.from),
            quote_ident(&r.to)
        ),
    }
}

/// The renames as one statement list.
pub fn swap_sql(renames: &[Rename]) -> String {
    renames
        .iter()
        .map(rename_sql)
        .collect::<Vec<_>>()
        .join(";\n")
}

/// The renames that undo a swap: reversed, each one backwards.
pub fn inverse(renames: &[Rename]) -> Vec<Rename> {
    renames
        .iter()
        .rev()
        .map(|r| {
            let mut parts = crate::db::ident::split_qualified(&r.from);
            let old = parts.pop().unwrap_or_default();
            let from = if r.table.is_none() && !parts.is_empty() {
                format!("{}.{}", parts.join("."), r.to)
            } else {
                r.to.clone()
            };
            Rename {
                from,
                to: old,
                table: r.table.clone(),
            }
        })
        .collect()
}

/// The sync-trigger steps a swap names, from the plan.
fn named_triggers<'p>(
    plan: &'p Plan,
    names: &[String],
) -> Result<Vec<&'p SyncTriggerStep>, String> {
    names
        .iter()
        .map(|n| {
            plan.phases
                .iter()
                .flat_map(|p| p.steps.iter())
                .find_map(|s| match s.get_ref() {
                    Step::SyncTrigger(t) if &t.name == n => Some(t),
                    _ => None,
                })
                .ok_or_else(|| format!("swap: the plan has no sync_trigger named {n}"))
        })
        .collect()
}

/// Renames plus the named sync triggers' functions re-created to match.
pub fn full_sql(
    plan: &Plan,
    renames: &[Rename],
    triggers: &[String],
    undo: bool,
) -> Result<String, String> {
    let specs: Vec<SyncTriggerStep> = named_triggers(plan, triggers)?
        .into_iter()
        .cloned()
        .collect();
    full_sql_with(renames, &specs, undo)
}

/// As [`full_sql`], with the trigger specs given (schema-qualified by the
/// engine before the renames).
pub fn full_sql_with(
    renames: &[Rename],
    triggers: &[SyncTriggerStep],
    undo: bool,
) -> Result<String, String> {
    let mut parts = vec![swap_sql(renames)];
    for t in triggers {
        // Forward: the functions follow the new names. Undo: back to the
        // names the plan wrote.
        let spec = if undo {
            t.clone()
        } else {
            sync_trigger::renamed(t, renames)
        };
        parts.push(sync_trigger::function_sql(&spec)?);
    }
    Ok(parts.join(";\n"))
}

/// Runs the swap.
pub async fn run(spec: &SwapStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    // The functions name their tables schema-qualified (their search_path
    // is pinned): resolve them before the renames move the names.
    let mut triggers = Vec::new();
    for t in named_triggers(ctx.plan, &spec.sync_triggers).map_err(StepError::Failed)? {
        triggers.push(
            sync_trigger::qualified(t, ctx.conn)
                .await
                .map_err(|e| ctx.db_error(e))?,
        );
    }
    let body = full_sql_with(&spec.renames, &triggers, false).map_err(StepError::Failed)?;
    let undo =
        full_sql_with(&inverse(&spec.renames), &triggers, true).map_err(StepError::Failed)?;
    ctx.record_undo(&super::RecordedUndo::Sql { sql: undo })
        .await?;
    let statement = format!("{body};\n{}", ctx.mark_done_sql());
    // An attempt is never cancelled (the abort waits for the transaction to
    // end), but an abort ends the retry sequence at the next boundary.
    let never = CancellationToken::new();
    let abort = ctx.control.abort.token().clone();
    let mut report = ctx.retry_reporter();
    let attempt = execute_with_retry_between(
        ctx.conn,
        &statement,
        &ctx.policy,
        &never,
        &abort,
        &mut report,
    )
    .await;
    if ctx.control.abort.is_aborted() {
        ctx.out.emit(EventKind::Notice {
            message: "an abort arrived during the swap's critical section; it takes effect now that the swap has ended".into(),
        });
    }
    attempt.map_err(|e| ctx.db_error(e))?;
    Ok(spec
        .renames
        .iter()
        .map(|r| format!("{} → {}", r.from, r.to))
        .collect::<Vec<_>>()
        .join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(from: &str, to: &str, table: Option<&str>) -> Rename {
        Rename {
            from: from.into(),
            to: to.into(),
            table: table.map(str::to_string),
        }
    }

    #[test]
    fn renames_and_their_inverse() {
        let renames = vec![
            r("app.users", "users_old", None),
            r("app.users_v2", "users", None),
            r("age_new", "age", Some("users")),
        ];
        assert_eq!(
            swap_sql(&renames),
            "ALTER TABLE \"app\".\"users\" RENAME TO \"users_old\";\n\
             ALTER TABLE \"app\".\"users_v2\" RENAME TO \"users\";\n\
             ALTER TABLE \"users\" RENAME COLUMN \"age_new\" TO \"age\""
        );
        let back = inverse(&renames);
        assert_eq!(
            swap_sql(&back),
            "ALTER TABLE \"users\" RENAME COLUMN \"age\" TO \"age_new\";\n\
             ALTER TABLE \"app\".\"users\" RENAME TO \"users_v2\";\n\
             ALTER TABLE \"app\".\"users_old\" RENAME TO \"users\""
        );
    }
}
