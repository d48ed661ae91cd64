//! What the plan's tables look like now: the tables and columns it names,
//! read from the catalog (`to_regclass`, `pg_attribute`, `pg_constraint`)
//! for the lint rules and the existence checks.

use std::collections::HashSet;

use crate::db::{Conn, DbError, quote_qualified};
use crate::lint::Schema;
use crate::plan::{LoadedPlan, Step};
use crate::sql;
use crate::sql::{Kind, Rel};

/// What a step needs to exist before it runs: (table, column) pairs.
pub(super) fn needs(step: &Step) -> Vec<(String, Option<String>, &'static str)> {
    match step {
        Step::Backfill(s) => vec![
            (s.table.clone(), None, "backfill `table`"),
            (s.table.clone(), Some(s.key.clone()), "backfill `key`"),
        ],
        Step::CopyRows(s) => vec![
            (s.from.clone(), None, "copy_rows `from`"),
            (s.from.clone(), Some(s.key.clone()), "copy_rows `key`"),
            (s.to.clone(), None, "copy_rows `to`"),
        ],
        Step::CreateIndex(s) => {
            let mut v = vec![(s.table.clone(), None, "create_index `table`")];
            for c in s.columns.iter().chain(&s.include) {
                let c = c.trim();
                if !c.starts_with('(') && !c.contains(char::is_whitespace) {
                    v.push((
                        s.table.clone(),
                        Some(c.to_string()),
                        "create_index `columns`",
                    ));
                }
            }
            v
        }
        Step::NotNull(s) => vec![
            (s.table.clone(), None, "not_null `table`"),
            (s.table.clone(), Some(s.column.clone()), "not_null `column`"),
        ],
        Step::Constraint(s) => vec![(s.table.clone(), None, "constraint `table`")],
        Step::SyncTrigger(s) => {
            let mut v = Vec::new();
            if let Some(t) = &s.table {
                v.push((t.clone(), None, "sync_trigger `table`"));
                for c in [&s.old, &s.new].into_iter().flatten() {
                    v.push((t.clone(), Some(c.clone()), "sync_trigger `old`/`new`"));
                }
            }
            if let (Some(from), Some(to)) = (&s.from, &s.to) {
                v.push((from.clone(), None, "sync_trigger `from`"));
                v.push((to.clone(), None, "sync_trigger `to`"));
            }
            v
        }
        Step::Verify(s) => match &s.compare {
            Some(c) => vec![
                (c.left.clone(), None, "compare `left`"),
                (c.right.clone(), None, "compare `right`"),
                (c.left.clone(), Some(c.key.clone()), "compare `key`"),
            ],
            None => Vec::new(),
        },
        Step::Swap(s) => s
            .renames
            .iter()
            .map(|r| match &r.table {
                Some(t) => (t.clone(), Some(r.from.clone()), "swap `renames`"),
                None => (r.from.clone(), None, "swap `renames`"),
            })
            .collect(),
        Step::Sql(_) | Step::Gate(_) => Vec::new(),
        Step::Replicate(s) => s
            .tables
            .iter()
            .filter(|t| *t != "*")
            .map(|t| (t.clone(), None, "replicate `tables`"))
            .collect(),
        Step::VerifyAcross(s) => vec![
            (s.table.clone(), None, "verify_across `table`"),
            (s.table.clone(), Some(s.key.clone()), "verify_across `key`"),
        ],
        Step::Switchover(_) => Vec::new(),
        // Resolved through the version's earlier renames when they run.
        Step::RenameColumn(_)
        | Step::RenameTable(_)
        | Step::AddColumn(_)
        | Step::DropColumn(_)
        | Step::AlterColumn(_)
        | Step::DropConstraint(_)
        | Step::DropNotNull(_) => Vec::new(),
    }
}

/// Tables and columns: in the database, renamed into place by a swap, or
/// made by an earlier step (`made` learns them from the steps' SQL).
pub(super) struct Known {
    pub(super) tables: HashSet<String>,
    pub(super) columns: HashSet<(String, String)>,
    /// Columns that exist in the database now.
    pub(super) db_columns: HashSet<(String, String)>,
    made: Schema,
}

impl Known {
    pub(super) fn learn_sql(&mut self, text: &str) {
        for stmt in sql::parse(text) {
            self.made.learn(&stmt);
        }
    }

    pub(super) fn has_table(&self, rel: &Rel) -> bool {
        self.tables.contains(&rel.name) || self.made.created(rel)
    }

    pub(super) fn has_column(&self, rel: &Rel, column: &str) -> bool {
        self.columns
            .contains(&(rel.name.clone(), column.to_string()))
            || self.made.column_type(rel, column).is_some()
    }
}

/// A table's columns: (name, type, NOT NULL).
type Columns = Vec<(String, String, bool)>;

async fn table_columns(conn: &Conn, table: &str) -> Result<Option<Columns>, DbError> {
    let exists: bool = conn
        .client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&quote_qualified(table)],
        )
        .await
        .map_err(|e| DbError::sql("looking up a table", e))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let rows = conn
        .client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            &[&quote_qualified(table)],
        )
        .await
        .map_err(|e| DbError::sql("reading a table's columns", e))?;
    Ok(Some(
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect(),
    ))
}

/// Tables the plan names: step fields and the tables its SQL alters.
pub(super) fn tables_named(loaded: &LoadedPlan) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: String| {
        if !names.contains(&n) {
            names.push(n)
        }
    };
    for phase in &loaded.plan.phases {
        for step in &phase.steps {
            for (t, _, _) in needs(step.get_ref()) {
                add(t);
            }
            if let Step::Sql(s) = step.get_ref() {
                for stmt in sql::parse(&s.sql) {
                    let rel = match &stmt.kind {
                        Kind::AlterTable { table, .. }
                        | Kind::CreateIndex { table, .. }
                        | Kind::Update { table, .. }
                        | Kind::Delete { table, .. } => Some(table.clone()),
                        _ => None,
                    };
                    if let Some(rel) = rel {
                        // The SQL's folded name, as an exact plan-style name.
                        add(match &rel.schema {
                            Some(s) => format!("{s}.{}", rel.name),
                            None => rel.name.clone(),
                        });
                    }
                }
            }
        }
    }
    names
}

/// The catalog as the checks need it.
pub(super) struct Catalog {
    /// Tables and columns known to exist (now or made by earlier steps).
    pub(super) known: Known,
    /// Every table the plan names, as written.
    pub(super) named: Vec<String>,
}

/// Reads the plan's tables into `schema` (for the rules: current column
/// types, validated checks) and into the existence checks.
pub(super) async fn read(
    loaded: &LoadedPlan,
    conn: &Conn,
    schema: &mut Schema,
) -> Result<Catalog, DbError> {
    let mut known = Known {
        tables: HashSet::new(),
        columns: HashSet::new(),
        db_columns: HashSet::new(),
        made: Schema::new(schema.pg_major),
    };
    let named = tables_named(loaded);
    for table in &named {
        if let Some(cols) = table_columns(conn, table).await? {
            let rel = Rel::from_plan(table);
            known.tables.insert(rel.name.clone());
            for (c, ty, not_null) in cols {
                schema.set_column_type(&rel, &c, &ty);
                // What the database says, so a DROP DEFAULT on a nullable
                // column is not flagged.
                if not_null {
                    schema.mark_not_null(&rel, &c);
                } else {
                    schema.mark_nullable(&rel, &c);
                }
                known.db_columns.insert((rel.name.clone(), c.clone()));
                known.columns.insert((rel.name.clone(), c));
            }
            let checks = conn
                .client
                .query(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = to_regclass($1) AND contype = 'c' AND convalidated",
                    &[&quote_qualified(table)],
                )
                .await
                .map_err(|e| DbError::sql("reading check constraints", e))?;
            for row in checks {
                // A validated CHECK can prove a partition's bound.
                schema.mark_checked(&rel);
                let def: String = row.get(0);
                let inner = def
                    .trim_start_matches("CHECK")
                    .trim()
                    .trim_matches(|c| c == '(' || c == ')');
                if let Some(col) = inner
                    .strip_suffix(" IS NOT NULL")
                    .map(|c| c.trim_matches('"').to_string())
                {
                    schema.mark_not_null_checked(&rel, &col);
                }
            }
        }
    }
    Ok(Catalog { known, named })
}
