//! Version schemas: a view outside the plan's new schema (an earlier
//! plan's version schema, or the application's own) that reads a column
//! the irreversible phase drops would make that phase's completion fail,
//! after the operator released its gate. Said before anything runs.

use super::{Level, Preflight};
use crate::db::{Conn, quote_ident};
use crate::plan::{LoadedPlan, Step};

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

/// Warns, per versioned step whose old column the completion drops, of the
/// views that would stop it.
pub(super) async fn check(p: &mut Preflight, loaded: &LoadedPlan, conn: &Conn) {
    let Some(v) = &loaded.plan.versions else {
        return;
    };
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
