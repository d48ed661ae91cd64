//! `swap`: the renames of one short transaction, their inverse, and the
//! sync triggers' functions re-created to follow them.

use super::sync_trigger;
use crate::db::{quote_ident, quote_qualified};
use crate::plan::Plan;
use crate::plan::model::{Rename, Step, SyncTriggerStep};

/// One rename as its ALTER TABLE statement.
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
pub fn named_triggers<'p>(
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
