//! `create_index`: the concurrent build and its drop.

use crate::db::{quote_ident, quote_literal, quote_qualified};
use crate::plan::model::CreateIndexStep;

/// The index's name, qualified with the table's schema.
pub fn qualified_index_name(spec: &CreateIndexStep) -> String {
    let parts = crate::db::ident::split_qualified(&spec.table);
    match parts.as_slice() {
        [schema, _] => format!("{}.{}", quote_ident(schema), quote_ident(&spec.name)),
        _ => quote_ident(&spec.name),
    }
}

/// One entry of `columns` as SQL: an expression in parentheses is the
/// plan's own SQL; otherwise a column name (quoted, spaces and capitals
/// kept) followed by any of its options: an operator class (`…_ops`),
/// `COLLATE "x"`, `ASC`/`DESC`, `NULLS FIRST`/`NULLS LAST`.
pub fn index_column(entry: &str) -> String {
    let c = entry.trim();
    if c.starts_with('(') {
        return c.to_string();
    }
    let words: Vec<&str> = c.split_whitespace().collect();
    // Peel options off the end; what is left is the name.
    let mut end = words.len();
    loop {
        let upper = |i: usize| words.get(i).map(|w| w.to_uppercase());
        if end >= 2
            && upper(end - 2).as_deref() == Some("NULLS")
            && matches!(upper(end - 1).as_deref(), Some("FIRST" | "LAST"))
        {
            end -= 2;
        } else if end >= 2 && matches!(upper(end - 1).as_deref(), Some("ASC" | "DESC")) {
            end -= 1;
        } else if end >= 3 && upper(end - 2).as_deref() == Some("COLLATE") {
            end -= 2;
        } else if end >= 2 && words[end - 1].to_lowercase().ends_with("_ops") {
            end -= 1;
        } else {
            break;
        }
    }
    let name = words[..end].join(" ");
    let name = if name.starts_with('"') && name.ends_with('"') && name.len() >= 2 {
        name
    } else {
        quote_ident(&name)
    };
    let options = words[end..].join(" ");
    if options.is_empty() {
        name
    } else {
        format!("{name} {options}")
    }
}

/// The build statement.
pub fn build_sql(spec: &CreateIndexStep) -> String {
    let columns: Vec<String> = spec.columns.iter().map(|c| index_column(c)).collect();
    let mut sql = format!(
        "CREATE {}INDEX CONCURRENTLY {} ON {}",
        if spec.unique { "UNIQUE " } else { "" },
        quote_ident(&spec.name),
        quote_qualified(&spec.table)
    );
    if let Some(method) = &spec.using {
        sql.push_str(&format!(" USING {}", quote_ident(method)));
    }
    sql.push_str(&format!(" ({})", columns.join(", ")));
    if !spec.include.is_empty() {
        let include: Vec<String> = spec.include.iter().map(|c| index_column(c)).collect();
        sql.push_str(&format!(" INCLUDE ({})", include.join(", ")));
    }
    if !spec.with.is_empty() {
        let params: Vec<String> = spec
            .with
            .iter()
            .map(|(k, v)| format!("{} = {}", quote_ident(k), storage_value(v)))
            .collect();
        sql.push_str(&format!(" WITH ({})", params.join(", ")));
    }
    if let Some(pred) = &spec.where_ {
        sql.push_str(&format!(" WHERE {pred}"));
    }
    sql
}

/// A storage parameter's value as SQL: numbers and booleans as written,
/// anything else as a quoted string literal.
pub fn storage_value(value: &toml::Value) -> String {
    match value {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::String(s) => quote_literal(s),
        other => quote_literal(&other.to_string()),
    }
}

/// The rollback (and clean-up) statement.
pub fn drop_sql(spec: &CreateIndexStep) -> String {
    format!(
        "DROP INDEX CONCURRENTLY IF EXISTS {}",
        qualified_index_name(spec)
    )
}
#[cfg(test)]
mod tests {
    use super::*;

    fn spec(columns: &[&str]) -> CreateIndexStep {
        CreateIndexStep {
            name: "users_email_idx".into(),
            table: "app.users".into(),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            unique: false,
            ..CreateIndexStep::default()
        }
    }

    #[test]
    fn column_names_are_quoted_and_options_kept() {
        assert_eq!(index_column("my id"), r#""my id""#);
        assert_eq!(index_column("Email"), r#""Email""#);
        assert_eq!(index_column("created_at DESC"), r#""created_at" DESC"#);
        assert_eq!(
            index_column("name text_pattern_ops NULLS LAST"),
            r#""name" text_pattern_ops NULLS LAST"#
        );
        assert_eq!(
            index_column(r#"title COLLATE "C""#),
            r#""title" COLLATE "C""#
        );
        assert_eq!(index_column(r#""already quoted""#), r#""already quoted""#);
        assert_eq!(index_column("(lower(email))"), "(lower(email))");
        assert_eq!(index_column("a;drop table t"), r#""a;drop table t""#);
    }

    #[test]
    fn builds_a_quoted_concurrent_statement() {
        assert_eq!(
            build_sql(&spec(&["email"])),
            r#"CREATE INDEX CONCURRENTLY "users_email_idx" ON "app"."users" ("email")"#
        );
        let mut s = spec(&["(lower(email))", "created_at DESC"]);
        s.unique = true;
        s.using = Some("btree".into());
        s.where_ = Some("deleted_at IS NULL".into());
        assert_eq!(
            build_sql(&s),
            r#"CREATE UNIQUE INDEX CONCURRENTLY "users_email_idx" ON "app"."users" USING "btree" ((lower(email)), "created_at" DESC) WHERE deleted_at IS NULL"#
        );
        assert_eq!(qualified_index_name(&s), r#""app"."users_email_idx""#);
    }

    #[test]
    fn include_and_storage_parameters_are_quoted() {
        let mut s = spec(&["email"]);
        s.include = vec!["name".into(), "Created At".into()];
        s.with.insert("fillfactor".into(), toml::Value::Integer(90));
        s.with
            .insert("deduplicate_items".into(), toml::Value::Boolean(false));
        s.with
            .insert("buffering".into(), toml::Value::String("it's".into()));
        s.where_ = Some("deleted_at IS NULL".into());
        assert_eq!(
            build_sql(&s),
            r#"CREATE INDEX CONCURRENTLY "users_email_idx" ON "app"."users" ("email") INCLUDE ("name", "Created At") WITH ("buffering" = 'it''s', "deduplicate_items" = false, "fillfactor" = 90) WHERE deleted_at IS NULL"#
        );
    }
}
