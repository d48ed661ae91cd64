//! Per-step checks: every table and column a step names exists, or an
//! earlier step makes it; batch keys are unique and indexed; vacuum behind
//! is possible where the plan asks for it.

use std::collections::HashSet;

use super::catalog::{Catalog, needs};
use super::{Level, Preflight};
use crate::db::Conn;
use crate::engine::steps::{batch, vacuum_behind};
use crate::plan::{LoadedPlan, Step};
use crate::sql::Rel;

/// Checks each step not already done, in plan order.
pub(super) async fn check(
    p: &mut Preflight,
    loaded: &LoadedPlan,
    conn: &Conn,
    catalog: &mut Catalog,
    done: &HashSet<(usize, usize)>,
) {
    let plan = &loaded.plan;
    let known = &mut catalog.known;
    // Every table and column a step names: there, or made earlier.
    for (pi, phase) in plan.phases.iter().enumerate() {
        for (si, spanned) in phase.steps.iter().enumerate() {
            let step = spanned.get_ref();
            let subject = format!("step `{}` ({})", step.display_name(), phase.name());
            let finished = done.contains(&(pi, si));
            if !finished {
                let mut missing = Vec::new();
                for (table, column, field) in needs(step) {
                    let rel = Rel::from_plan(&table);
                    let present = match &column {
                        None => known.has_table(&rel),
                        Some(c) => !known.has_table(&rel) || known.has_column(&rel, c),
                    };
                    if !present {
                        missing.push(match column {
                            None => format!("table {table} ({field})"),
                            Some(c) => format!("column {table}.{c} ({field})"),
                        });
                    }
                }
                missing.dedup();
                for m in missing {
                    p.push(
                        Level::Error,
                        subject.clone(),
                        format!(
                            "{m} does not exist, and no earlier step creates it; fix the name in \
                             the plan"
                        ),
                    );
                }
                let key = match step {
                    Step::Backfill(s) => Some((&s.table, &s.key)),
                    Step::CopyRows(s) => Some((&s.from, &s.key)),
                    _ => None,
                };
                let table_exists = key.is_some_and(|(table, k)| {
                    known
                        .db_columns
                        .contains(&(Rel::from_plan(table).name, k.clone()))
                });
                if let Some((table, k)) = key
                    && table_exists
                    && let Err(e) = batch::check_key(conn, table, k).await
                {
                    p.push(Level::Error, subject.clone(), e);
                }
                let workers = match step {
                    Step::Backfill(s) => s.workers,
                    Step::CopyRows(s) => s.workers,
                    _ => None,
                };
                if let Some(why) = workers_warning(conn, workers.unwrap_or(1)).await {
                    p.push(Level::Warning, subject.clone(), why);
                }
                if let Step::Backfill(s) = step
                    && table_exists
                    && s.vacuum_behind
                    && plan.throttle.paces()
                    && let Some(why) = vacuum_behind::unavailable(conn, &s.table).await
                {
                    p.push(
                        Level::Warning,
                        subject.clone(),
                        format!(
                            "no vacuum behind this backfill: {why}; the table will grow by the \
                             rows rewritten — VACUUM it afterwards, or set vacuum_behind = false"
                        ),
                    );
                }
            }
            // Later steps may use what this one makes.
            match step {
                Step::Sql(s) => known.learn_sql(&s.sql),
                Step::Swap(s) => {
                    for r in &s.renames {
                        match &r.table {
                            Some(t) => {
                                known.columns.insert((Rel::from_plan(t).name, r.to.clone()));
                            }
                            None => {
                                known.tables.insert(Rel::from_plan(&r.to).name);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Connections the server has left for new sessions.
const FREE_CONNECTIONS: &str = "SELECT current_setting('max_connections')::int
    - current_setting('superuser_reserved_connections')::int
    - (SELECT count(*) FROM pg_stat_activity)::int";

/// Why `workers` may not serve the step well: more than a few rarely help,
/// and each needs a free connection.
async fn workers_warning(conn: &Conn, workers: u32) -> Option<String> {
    use crate::statements::split::SANE_WORKERS;
    if workers <= 1 {
        return None;
    }
    if workers > SANE_WORKERS {
        return Some(format!(
            "workers = {workers}: more than {SANE_WORKERS} rarely helps — each worker is a server \
             backend writing WAL, and they queue behind each other for it while the application \
             waits too; measure with 2 or 4 first (benches/README.md)"
        ));
    }
    let free: i32 = conn
        .client
        .query_one(FREE_CONNECTIONS, &[])
        .await
        .ok()?
        .get(0);
    (free < workers as i32 + 2).then(|| {
        format!(
            "workers = {workers} needs {workers} more connections, and the server has {free} free \
             (max_connections less those in use); lower `workers` or free connections first"
        )
    })
}
