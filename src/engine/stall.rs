//! `[settings] max_stall`: which tables a step's statements lock, so each
//! DDL attempt under the budget first waits for a gap in their lock queue.

use crate::db::retry::GapWait;
use crate::db::{RetryPolicy, quote_qualified};
use crate::plan::{Plan, Step};
use crate::sql::{Kind, parse};

/// The tables a step's statements take locks on, as SQL names them.
pub fn step_tables(step: &Step) -> Vec<String> {
    let mut out: Vec<String> = match step {
        Step::Sql(s) => parse(&s.sql)
            .into_iter()
            .flat_map(|st| match st.kind {
                Kind::AlterTable { table, .. }
                | Kind::CreateIndex { table, .. }
                | Kind::Update { table, .. }
                | Kind::Delete { table, .. }
                | Kind::Insert { table } => vec![table.to_string()],
                Kind::DropTable { tables } | Kind::Lock { tables, .. } => {
                    tables.iter().map(|t| t.to_string()).collect()
                }
                Kind::Truncate { tables, .. } => tables.iter().map(|t| t.to_string()).collect(),
                Kind::CreateTrigger { table: Some(t) } | Kind::DropTrigger { table: Some(t) } => {
                    vec![t.to_string()]
                }
                _ => Vec::new(),
            })
            .collect(),
        Step::CreateIndex(s) => vec![quote_qualified(&s.table)],
        Step::NotNull(s) => vec![quote_qualified(&s.table)],
        Step::Constraint(s) => vec![quote_qualified(&s.table)],
        Step::SyncTrigger(s) => s
            .table
            .iter()
            .chain(s.from.iter())
            .map(|t| quote_qualified(t))
            .collect(),
        Step::Swap(s) => s
            .renames
            .iter()
            .map(|r| quote_qualified(r.table.as_deref().unwrap_or(&r.from)))
            .collect(),
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

/// The step's retry policy: the plan's, with a gap wait on the step's
/// tables when the plan sets a stall budget.
pub fn policy_for(base: &RetryPolicy, step: &Step, plan: &Plan) -> RetryPolicy {
    let mut policy = base.clone();
    if let Some(budget) = plan.settings.max_stall {
        let tables = step_tables(step);
        if !tables.is_empty() {
            policy.gap = Some(GapWait {
                budget: budget.0,
                tables,
            });
        }
        // Catalog-only critical sections: once granted, the lock is held
        // for no longer than the budget either.
        if matches!(step, Step::Swap(_) | Step::SyncTrigger(_)) {
            policy.hold = Some(budget.0);
        }
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steps_tables_come_from_its_fields_or_its_sql() {
        let sql: Step = toml::from_str(
            "kind = \"sql\"\nsql = \"ALTER TABLE app.users ADD COLUMN c int; CREATE INDEX CONCURRENTLY i ON orders (x)\"",
        )
        .expect("step");
        assert_eq!(step_tables(&sql), ["app.users", "orders"]);
        let nn: Step =
            toml::from_str("kind = \"not_null\"\ntable = \"users\"\ncolumn = \"c\"").expect("step");
        assert_eq!(step_tables(&nn), ["\"users\""]);
    }
}
