//! `constraint`: CHECK and FOREIGN KEY added NOT VALID, then validated;
//! UNIQUE as a concurrent index build, then attached; PRIMARY KEY as UNIQUE
//! plus NOT NULL proved by validated checks; EXCLUDE as the one statement
//! PostgreSQL offers (no NOT VALID, no USING INDEX exists for it).

use super::{create_index, not_null};
use crate::db::{quote_ident, quote_qualified};
use crate::plan::model::{ConstraintStep, CreateIndexStep, NotNullStep};

/// How a definition is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// CHECK or FOREIGN KEY: NOT VALID, then VALIDATE.
    Validated,
    /// UNIQUE: index built CONCURRENTLY, then attached.
    Unique,
    /// PRIMARY KEY: as UNIQUE, with each key column made NOT NULL the safe
    /// way before the index is attached.
    PrimaryKey,
    /// EXCLUDE: built under ACCESS EXCLUSIVE (needs `allow_unsafe`).
    Exclude,
}

/// The definition's shape, by its first word.
pub fn shape(spec: &ConstraintStep) -> Shape {
    let first = spec
        .definition
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_uppercase();
    match first.as_str() {
        "UNIQUE" => Shape::Unique,
        "PRIMARY" => Shape::PrimaryKey,
        "EXCLUDE" => Shape::Exclude,
        _ => Shape::Validated,
    }
}

/// The first parenthesised list of a definition, without its parentheses.
fn first_list(definition: &str) -> Option<&str> {
    let open = definition.find('(')?;
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, c) in definition[open..].char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(definition[open + 1..open + i].trim());
                }
            }
            _ => {}
        }
    }
    None
}

/// The key column list, when the definition is `UNIQUE (…)` or
/// `PRIMARY KEY (…)`.
pub fn unique_columns(spec: &ConstraintStep) -> Option<String> {
    matches!(shape(spec), Shape::Unique | Shape::PrimaryKey)
        .then(|| first_list(&spec.definition).map(str::to_string))
        .flatten()
}

/// The key columns' names (quotes removed) of a PRIMARY KEY definition.
pub fn key_columns(spec: &ConstraintStep) -> Vec<String> {
    if shape(spec) != Shape::PrimaryKey {
        return Vec::new();
    }
    unique_columns(spec)
        .unwrap_or_default()
        .split(',')
        .map(|c| {
            let c = c.trim();
            match c.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
                Some(inner) => inner.replace("\"\"", "\""),
                None => c.to_string(),
            }
        })
        .filter(|c| !c.is_empty())
        .collect()
}

/// The unique index a UNIQUE or PRIMARY KEY definition is built as.
pub fn index_spec(spec: &ConstraintStep, columns: String) -> CreateIndexStep {
    CreateIndexStep {
        name: spec.name.clone(),
        table: spec.table.clone(),
        columns: columns.split(',').map(|c| c.trim().to_string()).collect(),
        unique: true,
        ..CreateIndexStep::default()
    }
}

/// PRIMARY KEY: each key column as a `not_null` step would see it (its
/// temporary check's name and statements).
pub fn not_null_specs(spec: &ConstraintStep) -> Vec<NotNullStep> {
    key_columns(spec)
        .into_iter()
        .map(|column| NotNullStep {
            name: None,
            table: spec.table.clone(),
            column,
        })
        .collect()
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

/// EXCLUDE: the only way there is, one statement that builds the index
/// under ACCESS EXCLUSIVE.
pub fn exclude_sql(spec: &ConstraintStep) -> String {
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} {}",
        quote_qualified(&spec.table),
        quote_ident(&spec.name),
        spec.definition.trim()
    )
}

/// UNIQUE / PRIMARY KEY: the concurrent index build, then attaching it.
pub fn unique_sql(spec: &ConstraintStep) -> Option<(String, String)> {
    let columns = unique_columns(spec)?;
    let what = if shape(spec) == Shape::PrimaryKey {
        "PRIMARY KEY"
    } else {
        "UNIQUE"
    };
    Some((
        create_index::build_sql(&index_spec(spec, columns)),
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {1} {what} USING INDEX {1}",
            quote_qualified(&spec.table),
            quote_ident(&spec.name)
        ),
    ))
}

/// PRIMARY KEY, last, in one transaction: SET NOT NULL on the `columns`
/// that need it (proved by their validated checks, no scan), their checks
/// dropped, and the index attached as the primary key.
pub fn primary_key_finish_sql(spec: &ConstraintStep, columns: &[NotNullStep]) -> Option<String> {
    let (_, attach) = unique_sql(spec)?;
    let mut sql = String::new();
    for c in columns {
        sql.push_str(&not_null::finish_sql(c));
        sql.push_str(";\n");
    }
    sql.push_str(&attach);
    Some(sql)
}

/// Rollback: drop the constraint (a unique or primary key constraint takes
/// its index along).
pub fn undo_sql(spec: &ConstraintStep) -> String {
    format!(
        "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
        quote_qualified(&spec.table),
        quote_ident(&spec.name)
    )
}

/// PRIMARY KEY rollback: drop the constraint (and its index), then DROP
/// NOT NULL on the key columns that were nullable before the step.
pub fn primary_key_undo_sql(spec: &ConstraintStep, made_not_null: &[String]) -> String {
    let mut sql = undo_sql(spec);
    if !made_not_null.is_empty() {
        let drops: Vec<String> = made_not_null
            .iter()
            .map(|c| format!("ALTER COLUMN {} DROP NOT NULL", quote_ident(c)))
            .collect();
        sql.push_str(&format!(
            ";\nALTER TABLE {} {}",
            quote_qualified(&spec.table),
            drops.join(", ")
        ));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(definition: &str) -> ConstraintStep {
        ConstraintStep {
            name: "users_key".into(),
            table: "app.users".into(),
            definition: definition.into(),
            allow_unsafe: None,
        }
    }

    #[test]
    fn unique_definitions_become_concurrent_indexes() {
        let spec = step("UNIQUE (email, country)");
        assert_eq!(unique_columns(&spec).as_deref(), Some("email, country"));
        let sql = create_index::build_sql(&index_spec(&spec, "email, country".into()));
        assert_eq!(
            sql,
            r#"CREATE UNIQUE INDEX CONCURRENTLY "users_key" ON "app"."users" ("email", "country")"#
        );
        assert_eq!(unique_columns(&step("CHECK (age >= 0)")), None);
        assert_eq!(shape(&step("check(age >= 0)")), Shape::Validated);
        assert_eq!(
            shape(&step("FOREIGN KEY (a) REFERENCES b")),
            Shape::Validated
        );
    }

    #[test]
    fn a_primary_key_is_a_unique_index_attached_after_not_null() {
        let spec = step(r#"PRIMARY KEY (id, "Tenant Id")"#);
        assert_eq!(shape(&spec), Shape::PrimaryKey);
        assert_eq!(key_columns(&spec), vec!["id", "Tenant Id"]);
        let (build, attach) = unique_sql(&spec).expect("a key list");
        assert_eq!(
            build,
            r#"CREATE UNIQUE INDEX CONCURRENTLY "users_key" ON "app"."users" ("id", "Tenant Id")"#
        );
        assert_eq!(
            attach,
            r#"ALTER TABLE "app"."users" ADD CONSTRAINT "users_key" PRIMARY KEY USING INDEX "users_key""#
        );
        let checks = not_null_specs(&spec);
        let finish = primary_key_finish_sql(&spec, &checks[1..]).expect("a key list");
        assert_eq!(
            finish,
            "ALTER TABLE \"app\".\"users\" ALTER COLUMN \"Tenant Id\" SET NOT NULL;\n\
             ALTER TABLE \"app\".\"users\" DROP CONSTRAINT IF EXISTS \"users_Tenant Id_not_null\";\n\
             ALTER TABLE \"app\".\"users\" ADD CONSTRAINT \"users_key\" PRIMARY KEY USING INDEX \"users_key\""
        );
        assert_eq!(
            primary_key_undo_sql(&spec, &["Tenant Id".to_string()]),
            "ALTER TABLE \"app\".\"users\" DROP CONSTRAINT IF EXISTS \"users_key\";\n\
             ALTER TABLE \"app\".\"users\" ALTER COLUMN \"Tenant Id\" DROP NOT NULL"
        );
        assert_eq!(
            primary_key_undo_sql(&spec, &[]),
            r#"ALTER TABLE "app"."users" DROP CONSTRAINT IF EXISTS "users_key""#
        );
    }

    #[test]
    fn an_exclusion_constraint_is_one_statement() {
        let spec = step("EXCLUDE USING gist (room WITH =, during WITH &&)");
        assert_eq!(shape(&spec), Shape::Exclude);
        assert_eq!(unique_columns(&spec), None);
        assert_eq!(
            exclude_sql(&spec),
            r#"ALTER TABLE "app"."users" ADD CONSTRAINT "users_key" EXCLUDE USING gist (room WITH =, during WITH &&)"#
        );
    }

    #[test]
    fn the_key_list_ends_at_its_own_parenthesis() {
        assert_eq!(
            first_list("UNIQUE (a, (b)) WITH (fillfactor = 90)"),
            Some("a, (b)")
        );
        assert_eq!(first_list(r#"UNIQUE ("a)")"#), Some(r#""a)""#));
        assert_eq!(first_list("UNIQUE (a"), None);
    }
}
