//! Version schemas, before anything runs: the new version's views can be
//! built from the old schema's tables (the steps' own check, which would
//! otherwise fail the first versioned step); and a view outside the plan's
//! new schema (an earlier plan's version schema, or the application's own)
//! that reads a column the irreversible phase drops would make that
//! phase's completion fail, after the operator released its gate.

use std::collections::HashSet;

use super::{Level, Preflight};
use crate::db::{Conn, quote_ident};
use crate::engine::steps::versions::{constraint_columns, old_tables};
use crate::plan::{LoadedPlan, Step};
use crate::statements::versions::{Model, versioned_steps};

/// Views (`schema.name`) reading column `$2` of table `$1`, outside
/// schema `$3`.
const DEPENDENT_VIEWS: &str = "SELECT DISTINCT format('%I.%I', vn.nspname, v.relname)
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass
         AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum
         AND d.classid = 'pg_catalog.pg_rewrite'::regclass
    JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
    JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
    WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND v.oid <> a.attrelid
      AND vn.nspname <> $3
    ORDER BY 1";

/// The column constraint `$2` of table `$1` is on.
const CONSTRAINT_COLUMN: &str = "SELECT a.attname::text FROM pg_catalog.pg_constraint c
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    WHERE c.conrelid = to_regclass($1) AND c.conname = $2";

/// Errors when the new version's views cannot be built (before any
/// versioned step ran); warns, per versioned step whose old column the
/// completion drops, of the views that would stop it.
pub(super) async fn check(
    p: &mut Preflight,
    loaded: &LoadedPlan,
    conn: &Conn,
    done: &HashSet<(usize, usize)>,
) {
    let Some(v) = &loaded.plan.versions else {
        return;
    };
    let versioned = versioned_steps(&loaded.plan);
    if versioned.iter().all(|(at, _)| !done.contains(at))
        && let Ok(tables) = old_tables(conn, v, &loaded.plan).await
        && let Ok(constraints) = constraint_columns(conn, v, &loaded.plan).await
    {
        let steps: Vec<&Step> = versioned.iter().map(|(_, s)| *s).collect();
        // A `sql` step before them may make what they name: then a warning.
        let first = versioned.first().map(|(at, _)| *at);
        let made_earlier = loaded.plan.phases.iter().enumerate().any(|(pi, ph)| {
            ph.steps
                .iter()
                .enumerate()
                .any(|(si, st)| Some((pi, si)) < first && matches!(st.get_ref(), Step::Sql(_)))
        });
        if let Err(why) = Model::build_in(&steps, &tables, &constraints) {
            let level = if made_earlier {
                Level::Warning
            } else {
                Level::Error
            };
            let message = if why.contains(": no table ") {
                format!(
                    "{why} ({:?}). `old` names the schema holding the tables themselves (an \
                     earlier plan's version schema holds views): fix the plan",
                    v.old
                )
            } else {
                format!("{why}; the step would fail when it starts: fix the plan or the database")
            };
            p.push(level, "[versions]", message);
        }
    }
    for phase in &loaded.plan.phases {
        for spanned in &phase.steps {
            let step = spanned.get_ref();
            let (table, column) = match step {
                Step::AlterColumn(s) => (&s.table, Some(s.column.clone())),
                Step::DropNotNull(s) => (&s.table, Some(s.column.clone())),
                Step::DropColumn(s) => (&s.table, Some(s.column.clone())),
                Step::DropConstraint(s) => (&s.table, None),
                _ => continue,
            };
            let qtable = format!("{}.{}", quote_ident(&v.old), quote_ident(table));
            let column = match (column, step) {
                (Some(c), _) => c,
                (None, Step::DropConstraint(s)) => {
                    match conn
                        .client
                        .query_opt(CONSTRAINT_COLUMN, &[&qtable, &s.constraint])
                        .await
                    {
                        Ok(Some(row)) => row.get(0),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            let Ok(rows) = conn
                .client
                .query(DEPENDENT_VIEWS, &[&qtable, &column, &v.new])
                .await
            else {
                continue;
            };
            let views: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            if views.is_empty() {
                continue;
            }
            p.push(
                Level::Warning,
                format!("step `{}` ({})", step.display_name(), phase.name()),
                format!(
                    "{} read{} {table}.{column}, which the completion of the irreversible phase \
                     drops: it would fail there, after its gate. Once no application uses {} \
                     (an earlier version schema: DROP SCHEMA … CASCADE), drop {}; then advance",
                    views.join(", "),
                    if views.len() == 1 { "s" } else { "" },
                    if views.len() == 1 {
                        "that view"
                    } else {
                        "those views"
                    },
                    if views.len() == 1 { "it" } else { "them" },
                ),
            );
        }
    }
}
