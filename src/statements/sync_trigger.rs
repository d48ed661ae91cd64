//! `sync_trigger`: the function and trigger that keep old and new in step,
//! named `cutover_sync_<name>`, and the statements that drop them.

use crate::db::{quote_ident, quote_qualified};
use crate::plan::model::SyncTriggerStep;

/// The function and trigger name.
pub fn object_name(spec: &SyncTriggerStep) -> String {
    format!("cutover_sync_{}", spec.name)
}

/// The table's schema, when the plan names it (`app.users`).
fn schema_of(table: &str) -> Option<String> {
    let mut parts = crate::db::ident::split_qualified(table);
    (parts.len() == 2).then(|| parts.remove(0))
}

/// The function, in the trigger table's schema when that is named (the
/// engine schema-qualifies the spec from the catalog before creating).
pub fn function_name(spec: &SyncTriggerStep) -> String {
    let name = quote_ident(&object_name(spec));
    match schema_of(&trigger_table(spec)) {
        Some(schema) => format!("{}.{name}", quote_ident(&schema)),
        None => name,
    }
}

/// The function's own `search_path`: fixed, whatever the writer's is (both
/// app versions write with different paths; an attacker's schema early on
/// a writer's path must not capture a name): pg_catalog first, then the
/// table's schema for the plan's own unqualified names, pg_temp last.
fn pinned_path(spec: &SyncTriggerStep) -> String {
    match schema_of(&trigger_table(spec)) {
        Some(schema) => format!("pg_catalog, {}, pg_temp", quote_ident(&schema)),
        None => "pg_catalog, pg_temp".into(),
    }
}

/// The table the trigger is on.
pub fn trigger_table(spec: &SyncTriggerStep) -> String {
    spec.from
        .clone()
        .or_else(|| spec.table.clone())
        .unwrap_or_default()
}

/// Splits a SET list at its top-level commas (not inside parentheses or
/// quotes): `"a = f(x, y), b = 'p,q'"` → `["a = f(x, y)", "b = 'p,q'"]`.
pub fn split_assignments(set: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut depth, mut quote) = (0i32, None::<char>);
    for c in set.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_string());
    }
    parts
}

/// `col = expr` → `NEW."col" := expr;`
fn assignment(part: &str) -> Result<String, String> {
    let (col, expr) = part
        .split_once('=')
        .ok_or_else(|| format!("`{part}` in `set` is not `column = expression`"))?;
    let col = col.trim().trim_start_matches("NEW.").trim_matches('"');
    Ok(format!("NEW.{} := {};", quote_ident(col), expr.trim()))
}

/// The CREATE FUNCTION and CREATE TRIGGER statements.
pub fn create_sql(spec: &SyncTriggerStep) -> Result<String, String> {
    let name = quote_ident(&object_name(spec));
    let function = function_name(spec);
    let (body, timing, events, table) = if let Some(set) = &spec.set {
        let assigns: Vec<String> = split_assignments(set)
            .iter()
            .map(|p| assignment(p))
            .collect::<Result<_, _>>()?;
        let when = spec.when.as_deref().unwrap_or("TRUE");
        (
            format!(
                "BEGIN\n  IF {when} THEN\n    {}\n  END IF;\n  RETURN NEW;\nEND",
                assigns.join("\n    ")
            ),
            "BEFORE",
            "INSERT OR UPDATE",
            spec.table.clone().unwrap_or_default(),
        )
    } else if let (Some(old), Some(new)) = (&spec.old, &spec.new) {
        let (o, n) = (quote_ident(old), quote_ident(new));
        let forward = spec.forward.clone().unwrap_or(format!("NEW.{o}"));
        let backward = spec.backward.clone().unwrap_or(format!("NEW.{n}"));
        // Whichever side the writer changed wins; a writer that set both is
        // left alone. Assigning to NEW never re-fires the trigger.
        (
            format!(
                "BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.{n} IS NULL THEN NEW.{n} := {forward};
    ELSIF NEW.{o} IS NULL THEN NEW.{o} := {backward};
    END IF;
  ELSIF NEW.{o} IS DISTINCT FROM OLD.{o} AND NEW.{n} IS NOT DISTINCT FROM OLD.{n} THEN
    NEW.{n} := {forward};
  ELSIF NEW.{n} IS DISTINCT FROM OLD.{n} AND NEW.{o} IS NOT DISTINCT FROM OLD.{o} THEN
    NEW.{o} := {backward};
  END IF;
  RETURN NEW;
END"
            ),
            "BEFORE",
            "INSERT OR UPDATE",
            spec.table.clone().unwrap_or_default(),
        )
    } else {
        let (Some(from), Some(to), Some(key), Some(columns)) =
            (&spec.from, &spec.to, &spec.key, &spec.columns)
        else {
            return Err("incomplete sync_trigger".into());
        };
        let to_key = spec.to_key.clone().unwrap_or(key.clone());
        let (qt, qk, qtk) = (quote_qualified(to), quote_ident(key), quote_ident(&to_key));
        let pairs = columns.pairs();
        let targets: Vec<String> = pairs.iter().map(|(c, _)| quote_ident(c)).collect();
        let exprs: Vec<&str> = pairs.iter().map(|(_, e)| e.as_str()).collect();
        let updates: Vec<String> = pairs
            .iter()
            .filter(|(c, _)| *c != to_key)
            .map(|(c, _)| format!("{0} = EXCLUDED.{0}", quote_ident(c)))
            .collect();
        let on_conflict = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        // A reverse copy (to → from) must not echo this trigger's own write
        // back: while it writes, `cutover.sync_from` names the table it
        // copies from, and a trigger whose target is that table stands
        // down. Other nested writes (ON DELETE CASCADE from a parent, an
        // application trigger) are copied like any other.
        let source = plain_name(from);
        let target = plain_name(to);
        (
            format!(
                "DECLARE
  outer_sync text := coalesce(current_setting('cutover.sync_from', true), '');
BEGIN
  IF outer_sync = {target} THEN RETURN NULL; END IF;
  PERFORM set_config('cutover.sync_from', {source}, true);
  IF TG_OP = 'DELETE' THEN
    DELETE FROM {qt} WHERE {qtk} = OLD.{qk};
  ELSE
    IF TG_OP = 'UPDATE' AND NEW.{qk} IS DISTINCT FROM OLD.{qk} THEN
      DELETE FROM {qt} WHERE {qtk} = OLD.{qk};
    END IF;
    INSERT INTO {qt} ({}) SELECT {} FROM (SELECT NEW.*) AS s
      ON CONFLICT ({qtk}) {on_conflict};
  END IF;
  PERFORM set_config('cutover.sync_from', outer_sync, true);
  RETURN NULL;
END",
                targets.join(", "),
                exprs.join(", "),
                target = crate::db::quote_literal(&target),
                source = crate::db::quote_literal(&source),
            ),
            "AFTER",
            "INSERT OR UPDATE OR DELETE",
            from.clone(),
        )
    };
    Ok(format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql\n\
         SET search_path = {} AS $cutover$\n{body}\n$cutover$;\n\
         CREATE TRIGGER {name} {timing} {events} ON {} FOR EACH ROW EXECUTE FUNCTION {function}()",
        pinned_path(spec),
        quote_qualified(&table)
    ))
}

/// A table's name as `schema.table` text without quotes (what
/// `TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME` gives), for the recursion flag.
fn plain_name(table: &str) -> String {
    crate::db::ident::split_qualified(table).join(".")
}

/// Only the function (to re-create it after renames; the trigger stays
/// bound to the function).
pub fn function_sql(spec: &SyncTriggerStep) -> Result<String, String> {
    let full = create_sql(spec)?;
    Ok(full
        .split_once("$cutover$;\n")
        .map(|(f, _)| format!("{f}$cutover$"))
        .unwrap_or(full))
}

/// The spec as it reads after `renames` (tables and columns renamed).
pub fn renamed(spec: &SyncTriggerStep, renames: &[crate::plan::model::Rename]) -> SyncTriggerStep {
    let last = |n: &str| {
        crate::db::ident::split_qualified(n)
            .pop()
            .unwrap_or_default()
    };
    // A renamed table stays in its schema.
    let table_to = |t: &Option<String>| {
        t.as_ref().map(|t| {
            renames
                .iter()
                .filter(|r| r.table.is_none())
                .find(|r| last(&r.from) == last(t))
                .map_or(t.clone(), |r| match schema_of(t) {
                    Some(schema) => format!("{}.{}", quote_ident(&schema), quote_ident(&r.to)),
                    None => r.to.clone(),
                })
        })
    };
    let column_to = |table: &Option<String>, c: &Option<String>| {
        c.as_ref().map(|c| {
            renames
                .iter()
                .filter(|r| r.table.as_deref().map(last) == table.as_deref().map(last))
                .find(|r| r.table.is_some() && &r.from == c)
                .map_or(c.clone(), |r| r.to.clone())
        })
    };
    let mut out = spec.clone();
    out.old = column_to(&spec.table, &spec.old);
    out.new = column_to(&spec.table, &spec.new);
    out.table = table_to(&spec.table);
    out.from = table_to(&spec.from);
    out.to = table_to(&spec.to);
    out
}

/// The DROP statements (rollback).
pub fn drop_sql(spec: &SyncTriggerStep) -> String {
    let name = quote_ident(&object_name(spec));
    format!(
        "DROP TRIGGER IF EXISTS {name} ON {};\nDROP FUNCTION IF EXISTS {}()",
        quote_qualified(&trigger_table(spec)),
        function_name(spec)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SyncTriggerStep {
        SyncTriggerStep {
            name: "full_name".into(),
            table: Some("users".into()),
            set: None,
            when: None,
            old: None,
            new: None,
            forward: None,
            backward: None,
            from: None,
            to: None,
            key: None,
            to_key: None,
            columns: None,
        }
    }

    #[test]
    fn renames_follow_into_the_function() {
        use crate::plan::model::Rename;
        let mut s = spec();
        s.old = Some("age".into());
        s.new = Some("age_new".into());
        let swap = [
            Rename {
                from: "age".into(),
                to: "age_old".into(),
                table: Some("users".into()),
            },
            Rename {
                from: "age_new".into(),
                to: "age".into(),
                table: Some("users".into()),
            },
        ];
        let r = renamed(&s, &swap);
        assert_eq!(
            (r.old.as_deref(), r.new.as_deref()),
            (Some("age_old"), Some("age"))
        );
        let f = function_sql(&r).unwrap();
        assert!(f.starts_with("CREATE OR REPLACE FUNCTION"), "{f}");
        assert!(f.ends_with("$cutover$"), "{f}");
        assert!(!f.contains("CREATE TRIGGER"), "{f}");
        let mut c = spec();
        c.table = None;
        c.from = Some("users".into());
        c.to = Some("users_v2".into());
        let tables = [
            Rename {
                from: "users".into(),
                to: "users_old".into(),
                table: None,
            },
            Rename {
                from: "users_v2".into(),
                to: "users".into(),
                table: None,
            },
        ];
        let r = renamed(&c, &tables);
        assert_eq!(
            (r.from.as_deref(), r.to.as_deref()),
            (Some("users_old"), Some("users"))
        );
    }

    #[test]
    fn set_lists_split_at_top_level_commas() {
        assert_eq!(
            split_assignments("a = f(x, y), b = 'p,q', c = NEW.d"),
            ["a = f(x, y)", "b = 'p,q'", "c = NEW.d"]
        );
    }

    #[test]
    fn one_way_assigns_to_new() {
        let mut s = spec();
        s.set = Some("full_name = NEW.name".into());
        let sql = create_sql(&s).unwrap();
        assert!(sql.contains(r#"NEW."full_name" := NEW.name;"#), "{sql}");
        assert!(
            sql.contains(r#"BEFORE INSERT OR UPDATE ON "users""#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"CREATE OR REPLACE FUNCTION "cutover_sync_full_name"()"#),
            "{sql}"
        );
    }

    #[test]
    fn two_way_follows_whichever_side_changed() {
        let mut s = spec();
        s.old = Some("age".into());
        s.new = Some("age_new".into());
        s.forward = Some("NEW.age::bigint".into());
        let sql = create_sql(&s).unwrap();
        assert!(
            sql.contains(r#"NEW."age_new" := NEW.age::bigint;"#),
            "{sql}"
        );
        assert!(sql.contains(r#"NEW."age" := NEW."age_new";"#), "{sql}");
    }

    #[test]
    fn table_copy_mirrors_writes_and_guards_recursion() {
        let mut s = spec();
        s.table = None;
        s.from = Some("users".into());
        s.to = Some("addresses".into());
        s.key = Some("id".into());
        s.to_key = Some("user_id".into());
        s.columns = Some(crate::plan::model::ColumnMap::Mapped(
            [
                ("user_id".to_string(), "id".to_string()),
                ("city".to_string(), "city".to_string()),
            ]
            .into_iter()
            .collect(),
        ));
        let sql = create_sql(&s).unwrap();
        assert!(
            !sql.contains("pg_trigger_depth"),
            "cascades must reach the copy: {sql}"
        );
        assert!(
            sql.contains("IF outer_sync = 'addresses' THEN RETURN NULL"),
            "{sql}"
        );
        assert!(
            sql.contains("SET search_path = pg_catalog, pg_temp"),
            "{sql}"
        );
        assert!(
            sql.contains(r#"DELETE FROM "addresses" WHERE "user_id" = OLD."id""#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"ON CONFLICT ("user_id") DO UPDATE SET "city" = EXCLUDED."city""#),
            "{sql}"
        );
        assert!(
            sql.contains("AFTER INSERT OR UPDATE OR DELETE ON \"users\""),
            "{sql}"
        );
        assert_eq!(
            drop_sql(&s),
            "DROP TRIGGER IF EXISTS \"cutover_sync_full_name\" ON \"users\";\nDROP FUNCTION IF EXISTS \"cutover_sync_full_name\"()"
        );
    }
}
