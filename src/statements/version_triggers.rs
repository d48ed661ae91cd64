//! The write rules of a version schema: row triggers on the physical
//! tables that give each version's writes the columns only the other
//! version sees (`up` for the old version's writes, `down` for the new
//! one's). A rule tells the versions apart by the writer's `search_path`,
//! as pgroll does: the version is a property of the session, the same one
//! that decides which view a name resolves to. Telling them apart by the
//! data (which of the two columns an UPDATE changed) was rejected: it says
//! nothing for an INSERT, and cutover's own backfill changes only the copy,
//! so it would look like the new version and rewrite the old app's values
//! through `down`. The cost: a new-version writer must put the version
//! schema on its `search_path` (naming `app_v2.users` alone is not enough).

use crate::db::{quote_ident, quote_literal};
use crate::plan::model::Versions;

/// A trigger condition true when the writing session uses the new version:
/// the new schema comes before the old one on its effective `search_path`.
/// A trigger's `WHEN` runs in the writer's session, unlike the pinned
/// function body, so it sees the writer's path; `current_schemas` resolves
/// quoting and `"$user"` the way name lookup does.
pub fn from_new_version_sql(v: &Versions) -> String {
    let pos = |schema: &str| {
        format!(
            "COALESCE(pg_catalog.array_position(pg_catalog.current_schemas(false), {}::pg_catalog.name), 2147483647)",
            quote_literal(schema)
        )
    };
    format!("{} OPERATOR(pg_catalog.<) {}", pos(&v.new), pos(&v.old))
}

/// The function and trigger name for one versioned write rule.
pub fn trigger_name(direction: &str, table: &str, column: &str) -> String {
    let name = format!("_cutover_{direction}_{table}_{column}");
    // Identifiers are cut at 63 bytes; keep it on a char boundary.
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// Whose writes a write rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Sessions of the old version.
    Old,
    /// Sessions of the new version.
    New,
    /// Every writer (while the new version cannot see the column yet).
    Any,
}

/// The row's columns as the old version names them: (variable, physical).
pub fn old_columns(columns: &[String]) -> Vec<(String, String)> {
    columns.iter().map(|c| (c.clone(), c.clone())).collect()
}

/// A row trigger setting `target` to `expr` (the plan's SQL, over the row's
/// columns by name) on every write of one version. The function pins its
/// `search_path`; the row's columns (`columns`: the name `expr` uses, the
/// physical column) are declared as variables so `expr` reads like
/// pgroll's `up`/`down`.
#[allow(clippy::too_many_arguments)]
pub fn write_rule_sql(
    v: &Versions,
    table: &str,
    label: &str,
    columns: &[(String, String)],
    direction: &str,
    target: &str,
    expr: &str,
    writer: Writer,
) -> String {
    let name = trigger_name(direction, label, target);
    let qtable = format!("{}.{}", quote_ident(&v.old), quote_ident(table));
    let func = format!("{}.{}", quote_ident(&v.new), quote_ident(&name));
    let declare: String = columns
        .iter()
        .map(|(var, c)| {
            format!(
                "    {var} {qtable}.{c}%TYPE := NEW.{c};\n",
                var = quote_ident(var),
                c = quote_ident(c),
                qtable = qtable
            )
        })
        .collect();
    let cond = from_new_version_sql(v);
    let when = match writer {
        Writer::New => format!(" WHEN ({cond})"),
        Writer::Old => format!(" WHEN (NOT ({cond}))"),
        Writer::Any => String::new(),
    };
    format!(
        "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql \
         SET search_path = pg_catalog, pg_temp AS $cutover$\nDECLARE\n{declare}BEGIN\n    \
         NEW.{target} := ({expr});\n    RETURN NEW;\nEND\n$cutover$;\n\
         DROP TRIGGER IF EXISTS {trigger} ON {qtable};\n\
         CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {qtable} FOR EACH ROW\
         {when} EXECUTE FUNCTION {func}();\n",
        target = quote_ident(target),
        trigger = quote_ident(&name),
    )
}

/// Drops a write rule's function and, with it, its trigger (`label`: the
/// table as the step names it).
pub fn drop_write_rule_sql(v: &Versions, label: &str, direction: &str, target: &str) -> String {
    format!(
        "DROP FUNCTION IF EXISTS {}.{}() CASCADE;\n",
        quote_ident(&v.new),
        quote_ident(&trigger_name(direction, label, target))
    )
}
