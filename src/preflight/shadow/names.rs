//! Names on the copies: which copy a plan name means, whether a name
//! could reach a real relation (making a copy when it is a real table),
//! and the plan SQL's own names read from its text.

use std::collections::{HashMap, HashSet};

use crate::db::{Conn, DbError, quote_ident};
use crate::sql::Rel;

/// The copy of a plan table, as a plan-style name (`pg_temp."users"`).
pub(super) fn shadow(table: &str) -> String {
    let last = crate::db::ident::split_qualified(table)
        .pop()
        .unwrap_or_default();
    format!("pg_temp.{}", quote_ident(&last))
}

/// Removes the first `CONCURRENTLY` keyword: a concurrent build cannot run
/// in a transaction, and on an empty copy it means nothing.
pub(super) fn without_concurrently(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let word = "concurrently";
    let bytes = lower.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'"';
    let mut from = 0;
    while let Some(i) = lower[from..].find(word).map(|i| i + from) {
        let end = i + word.len();
        let before_ok = i == 0 || !is_ident(bytes[i - 1]);
        let after_ok = end >= bytes.len() || !is_ident(bytes[end]);
        if before_ok && after_ok {
            return format!("{}{}", &text[..i], &text[end..]);
        }
        from = end;
    }
    text.to_string()
}

/// Whether a name could reach a real relation rather than a copy. An
/// unqualified name of a real table with no copy yet (one the plan's
/// fields do not name, such as a foreign key's target) gets its copy here,
/// under the same ACCESS SHARE; other schemas and other relation kinds
/// (indexes, views) stay out of reach.
pub(super) async fn reaches_real(conn: &Conn, rel: &Rel) -> Result<bool, String> {
    if let Some(schema) = &rel.schema
        && schema != "pg_temp"
    {
        return Ok(true);
    }
    let row = conn
        .client
        .query_one(
            "SELECT to_regclass('pg_temp.' || quote_ident($1)) IS NOT NULL,
                    (SELECT relkind::text FROM pg_class WHERE oid = to_regclass(quote_ident($1)))",
            &[&rel.name],
        )
        .await
        .map_err(|e| DbError::sql("resolving a name for the shadow check", e).to_string())?;
    let (copy, kind): (bool, Option<String>) = (row.get(0), row.get(1));
    match kind.as_deref() {
        _ if copy => Ok(false),
        None => Ok(false),
        Some("r" | "p") => {
            let name = quote_ident(&rel.name);
            let made = conn
                .client
                .batch_execute(&format!(
                    "SAVEPOINT cutover_copy;
                     CREATE TEMP TABLE {name} (LIKE {name} INCLUDING ALL);
                     RELEASE SAVEPOINT cutover_copy"
                ))
                .await;
            if made.is_err() {
                conn.client
                    .batch_execute("ROLLBACK TO SAVEPOINT cutover_copy")
                    .await
                    .map_err(|e| DbError::sql("the shadow check", e).to_string())?;
            }
            Ok(made.is_err())
        }
        Some(_) => Ok(true),
    }
}

/// The tables named after each `REFERENCES` keyword of a statement, read
/// from its text: a foreign key locks its target, so every target must be
/// a copy before the statement is replayed, however the grammar adapter
/// sees the constraint.
pub(super) fn references_in_text(text: &str) -> Vec<Rel> {
    let lower = text.to_ascii_lowercase();
    let word = "references";
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '"' || c == '$';
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find(word).map(|i| i + from) {
        let end = i + word.len();
        from = end;
        let before = lower[..i].chars().next_back();
        let after = lower[end..].chars().next();
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            continue;
        }
        let rest = text[end..].trim_start();
        let mut name = String::new();
        let mut quoted = false;
        for c in rest.chars() {
            match c {
                '"' => quoted = !quoted,
                c if !quoted && (c.is_whitespace() || matches!(c, '(' | ',' | ')' | ';')) => break,
                _ => {}
            }
            name.push(c);
        }
        if !name.is_empty() {
            out.push(Rel::from_sql(&name));
        }
    }
    out
}

/// `schema.name` pairs in SQL text, outside string literals, comments and
/// dollar-quoted bodies: (start, end, schema, name), names folded as SQL
/// folds them.
pub(super) fn qualified_names(text: &str) -> Vec<(usize, usize, String, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    // The identifier that ended at `prev_end`, with its start.
    let mut prev: Option<(usize, usize, String)> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let ident = match c {
            b'\'' => {
                i += 1;
                while i < b.len() && !(b[i] == b'\'' && b.get(i + 1) != Some(&b'\'')) {
                    i += if b[i] == b'\'' { 2 } else { 1 };
                }
                i += 1;
                None
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                None
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                None
            }
            b'$' => {
                let tag_end = text[i + 1..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .map(|e| i + 1 + e);
                match tag_end {
                    Some(e) if b[e] == b'$' => {
                        let tag = &text[i..=e];
                        i = text[e + 1..]
                            .find(tag)
                            .map_or(b.len(), |f| e + 1 + f + tag.len());
                    }
                    _ => i += 1,
                }
                None
            }
            b'"' => {
                let mut name = String::new();
                i += 1;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            name.push('"');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    let ch = text[i..].chars().next().unwrap_or(' ');
                    name.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
                Some(name)
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || b[i] == b'$'
                        || b[i] >= 0x80)
                {
                    i += 1;
                }
                Some(text[start..i].to_lowercase())
            }
            _ => {
                i += 1;
                if c != b'.' {
                    prev = None;
                }
                continue;
            }
        };
        match ident {
            Some(name) => {
                let i = i.min(b.len());
                if let Some((p_start, p_end, schema)) = prev.take()
                    && p_end < b.len()
                    && b[p_end] == b'.'
                    && p_end + 1 == start
                {
                    out.push((p_start, i, schema, name.clone()));
                }
                prev = Some((start, i, name));
            }
            None => prev = None,
        }
    }
    out
}

/// The plan's SQL with every `schema.table` that names a copied table
/// pointed at its copy, so that it is checked, never run, on the real one.
pub(super) async fn to_copies(
    conn: &Conn,
    text: &str,
    sources: &HashMap<u32, String>,
) -> Result<String, String> {
    let copies: HashSet<&String> = sources.values().collect();
    let mut out = text.to_string();
    let mut pairs = qualified_names(text);
    pairs.retain(|(_, _, schema, name)| schema != "pg_temp" && copies.contains(name));
    for (start, end, schema, name) in pairs.into_iter().rev() {
        let oid: Option<u32> = conn
            .client
            .query_one(
                "SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2))::oid",
                &[&schema, &name],
            )
            .await
            .map_err(|e| DbError::sql("resolving a name for the shadow check", e).to_string())?
            .get(0);
        if let Some(copy) = oid.and_then(|o| sources.get(&o)) {
            out.replace_range(start..end, &format!("pg_temp.{}", quote_ident(copy)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrently_goes_only_as_a_keyword() {
        assert_eq!(
            without_concurrently("CREATE INDEX CONCURRENTLY i ON t (a)"),
            "CREATE INDEX  i ON t (a)"
        );
        assert_eq!(
            without_concurrently("create index concurrently_x on t (a)"),
            "create index concurrently_x on t (a)"
        );
    }

    #[test]
    fn foreign_key_targets_are_read_from_the_text() {
        let rels = references_in_text(
            r#"CREATE TABLE n (a int REFERENCES orgs (id), b int REFERENCES app."Teams"(id),
               c int, FOREIGN KEY (c) REFERENCES users)"#,
        );
        let names: Vec<String> = rels.iter().map(|r| r.to_string()).collect();
        assert_eq!(names, vec!["orgs", r#"app."Teams""#, "users"]);
        assert!(references_in_text("SELECT references_count FROM t").is_empty());
    }

    #[test]
    fn qualified_names_are_found_outside_literals_and_bodies() {
        let text = r#"ALTER TABLE App."Users" ADD c int; -- app.x
            SELECT 'app.y', $f$ app.z $f$, u.id FROM app.users u /* app.w */"#;
        let found: Vec<(String, String)> = qualified_names(text)
            .into_iter()
            .map(|(s, e, schema, name)| {
                assert!(text[s..e].contains('.'));
                (schema, name)
            })
            .collect();
        assert_eq!(
            found,
            vec![
                ("app".to_string(), "Users".to_string()),
                ("u".to_string(), "id".to_string()),
                ("app".to_string(), "users".to_string()),
            ]
        );
    }

    #[test]
    fn copies_are_named_in_pg_temp() {
        assert_eq!(shadow("app.users"), r#"pg_temp."users""#);
        assert_eq!(shadow("Users"), r#"pg_temp."Users""#);
    }
}
