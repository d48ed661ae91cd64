//! `constraint`: CHECK and FOREIGN KEY added NOT VALID, then validated;
//! UNIQUE as a concurrent index build, then attached.

use super::create_index;
use crate::db::{quote_ident, quote_qualified};
use crate::plan::model::{ConstraintStep, CreateIndexStep};

/// The UNIQUE column list, when the definition is `UNIQUE (…)`.
pub fn unique_columns(spec: &ConstraintStep) -> Option<String> {
    let def = spec.definition.trim();
    if !def.to_uppercase().starts_with("UNIQUE") {
        return None;
    }
    let open = def.find('(')?;
    let close = def.rfind(')')?;
    Some(def[open + 1..close].trim().to_string())
}

/// The unique index a UNIQUE definition is built as.
pub fn index_spec(spec: &ConstraintStep, columns: String) -> CreateIndexStep {
    CreateIndexStep {
        name: spec.name.clone(),
        table: spec.table.clone(),
        columns: columns.split(',').map(|c| c.trim().to_string()).collect(),
        unique: true,
        where_: None,
        using: None,
    }
}

/// CHECK / FOREIGN KEY, first statement: added NOT VALID (no scan).
pub fn add_sql(spec: &ConstraintStep) -> String {
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID",
        quote_qualified(&spec.table),
        quote_ident(&spec.name),
        spec.definition.trim()
    )
}

/// CHECK / FOREIGN KEY, second: validation under SHARE UPDATE EXCLUSIVE.
pub fn validate_sql(spec: &ConstraintStep) -> String {
    format!(
        "ALTER TABLE {} VALIDATE CONSTRAINT {}",
        quote_qualified(&spec.table),
        quote_ident(&spec.name)
    )
}

/// UNIQUE: the concurrent index build, then attaching it.
pub fn unique_sql(spec: &ConstraintStep) -> Option<(String, String)> {
    let columns = unique_columns(spec)?;
    Some((
        create_index::build_sql(&index_spec(spec, columns)),
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {1} UNIQUE USING INDEX {1}",
            quote_qualified(&spec.table),
            quote_ident(&spec.name)
        ),
    ))
}

/// Rollback: drop the constraint (a unique constraint takes its index along).
pub fn undo_sql(spec: &ConstraintStep) -> String {
    format!(
        "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
        quote_qualified(&spec.table),
        quote_ident(&spec.name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_definitions_become_concurrent_indexes() {
        let spec = ConstraintStep {
            name: "users_email_key".into(),
            table: "users".into(),
            definition: "UNIQUE (email, country)".into(),
        };
        assert_eq!(unique_columns(&spec).as_deref(), Some("email, country"));
        let sql = create_index::build_sql(&index_spec(&spec, "email, country".into()));
        assert_eq!(
            sql,
            r#"CREATE UNIQUE INDEX CONCURRENTLY "users_email_key" ON "users" ("email", "country")"#
        );
        let check = ConstraintStep {
            definition: "CHECK (age >= 0)".into(),
            ..spec
        };
        assert_eq!(unique_columns(&check), None);
    }
}
