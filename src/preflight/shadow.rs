//! The shadow check: every statement the plan will send, checked by the
//! server against the plan's tables as they will be when it runs — without
//! executing anything on them and without taking a lock that could get in
//! the application's way.
//!
//! In one transaction that is always rolled back, each table the plan names
//! gets an empty copy, `CREATE TEMP TABLE name (LIKE schema.name INCLUDING
//! ALL)`: columns, types, defaults, constraints and indexes, no rows. Reading
//! the definition takes ACCESS SHARE on the real table until the rollback,
//! the same lock a plain `SELECT` takes (it conflicts only with ACCESS
//! EXCLUSIVE); nothing else here touches a real table's lock. The plan's DDL
//! (its `sql` steps and the DDL cutover generates) is then replayed in order
//! on the copies, so a statement that refers to a column an earlier step
//! adds sees it; every DML statement and query (the backfill's batch UPDATE,
//! copy_rows' INSERT … SELECT, the sync triggers' assignments and copies,
//! verify queries and compares) is only *prepared*: parsed, resolved and
//! type-checked by the server, never executed.
//!
//! Names: `pg_temp` is put first on the transaction's `search_path`, so the
//! plan's unqualified names resolve to the copies (and tables a replayed
//! step creates are created there). The statements cutover generates name
//! the copies explicitly (`pg_temp.users`), so the plan's `schema.table`
//! fields are covered too; in the plan's own SQL, a `schema.table` that
//! names a copied table is pointed at its copy before it is sent. A real
//! table the plan's SQL names without a schema (a foreign key's target,
//! say) gets its copy when first met. Anything else that would reach a real
//! relation (a table in another schema, a view, an index) is left alone:
//! DDL on it is only parsed by the server (a utility statement is not
//! resolved when prepared), and a write to it is not sent at all. Queries (`SELECT`, verify `sql`) are prepared
//! as written: a table they read that has no copy gets ACCESS SHARE, as the
//! copies' sources do, and nothing more.
//!
//! An "already exists" on a copy is a warning, not an error: LIKE names
//! the indexes it copies anew, and a step an earlier session half-finished
//! resumes over what it made.

use std::collections::{HashMap, HashSet};

use super::{Level, Preflight};
use crate::db::{Conn, DbError, quote_ident, quote_qualified};
use crate::engine::steps::batch::{self, KeyInfo};
use crate::engine::steps::{
    backfill, constraint, copy_rows, create_index, not_null, swap, sync_trigger, verify,
};
use crate::lint::sql::{self, Action, ConstraintKind, Kind, Rel};
use crate::plan::model::{Rename, SyncTriggerStep};
use crate::plan::{LoadedPlan, Step};

/// How a statement is checked on the copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// DDL on the copies only: replayed, so later statements see it.
    Replay,
    /// Parsed, resolved and type-checked by the server; never executed.
    Prepare,
}

/// One statement to check.
struct Probe {
    /// What it is, for the message.
    what: String,
    /// The plan fields it comes from, for the message.
    field: &'static str,
    sql: String,
    how: Use,
}

impl Probe {
    fn new(what: impl Into<String>, field: &'static str, sql: String, how: Use) -> Probe {
        Probe {
            what: what.into(),
            field,
            sql,
            how,
        }
    }
}

/// The copy of a plan table, as a plan-style name (`pg_temp."users"`).
fn shadow(table: &str) -> String {
    let last = crate::db::ident::split_qualified(table)
        .pop()
        .unwrap_or_default();
    format!("pg_temp.{}", quote_ident(&last))
}

/// Removes the first `CONCURRENTLY` keyword: a concurrent build cannot run
/// in a transaction, and on an empty copy it means nothing.
fn without_concurrently(text: &str) -> String {
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

/// The statement, on one line and cut short, for messages.
fn compact(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 160 {
        format!("{}…", one.chars().take(160).collect::<String>())
    } else {
        one
    }
}

/// Checks every statement of every step not yet done; adds an error per
/// statement the server refuses. `skip`: steps (by subject) that already
/// have an error, whose statements would only fail again for the same
/// reason.
pub(super) async fn check(
    p: &mut Preflight,
    loaded: &LoadedPlan,
    conn: &Conn,
    named: &[String],
    done: &HashSet<(usize, usize)>,
    skip: &HashSet<String>,
) -> Result<(), DbError> {
    conn.client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| DbError::sql("starting the shadow check", e))?;
    let result = replay(p, loaded, conn, named, done, skip).await;
    // Always rolled back: the copies and everything replayed on them go.
    let rollback = conn.client.batch_execute("ROLLBACK").await;
    result?;
    rollback.map_err(|e| DbError::sql("ending the shadow check", e))?;
    Ok(())
}

async fn replay(
    p: &mut Preflight,
    loaded: &LoadedPlan,
    conn: &Conn,
    named: &[String],
    done: &HashSet<(usize, usize)>,
    skip: &HashSet<String>,
) -> Result<(), DbError> {
    let sql_err = |what: &'static str| move |e| DbError::sql(what, e);
    // Which of the plan's tables exist, looked up before any copy exists.
    let mut existing: Vec<(String, Rel, u32)> = Vec::new();
    for table in named {
        let oid: Option<u32> = conn
            .client
            .query_one("SELECT to_regclass($1)::oid", &[&quote_qualified(table)])
            .await
            .map_err(sql_err("looking up a table for the shadow check"))?
            .get(0);
        if let Some(oid) = oid {
            existing.push((table.clone(), Rel::from_plan(table), oid));
        }
    }
    // The anchor makes this session's temporary schema exist, so that
    // tables a replayed step creates go there, never into a real schema.
    if let Err(e) = conn
        .client
        .batch_execute(
            "SELECT set_config('search_path', 'pg_temp, ' || current_setting('search_path'), true);
             CREATE TEMP TABLE cutover_preflight_anchor ()",
        )
        .await
    {
        p.push(
            Level::Warning,
            "statements",
            format!(
                "not checked against the catalog: this role cannot create temporary tables \
                 ({}); `run` will find errors in them only when it sends them — GRANT TEMPORARY \
                 ON DATABASE to the role to have them checked first",
                DbError::sql("CREATE TEMP TABLE", e)
            ),
        );
        return Ok(());
    }
    let mut shadowed: HashSet<String> = HashSet::new();
    // Real table (oid) → its copy, for the plan SQL's qualified names.
    let mut sources: HashMap<u32, String> = HashMap::new();
    for (table, rel, oid) in &existing {
        if !shadowed.insert(rel.name.clone()) {
            p.push(
                Level::Warning,
                format!("table {table}"),
                format!(
                    "another table the plan names is also called {}; statements on {table} are \
                     checked against the first one's copy",
                    rel.name
                ),
            );
            continue;
        }
        let ddl = format!(
            "CREATE TEMP TABLE {} (LIKE {} INCLUDING ALL)",
            quote_ident(&rel.name),
            quote_qualified(table)
        );
        if let Err(e) = conn.client.batch_execute(&ddl).await {
            p.push(
                Level::Warning,
                "statements",
                format!(
                    "not checked against the catalog: copying the definition of {table} failed \
                     ({}); `run` will find errors in them only when it sends them",
                    DbError::sql("CREATE TEMP TABLE … (LIKE …)", e)
                ),
            );
            return Ok(());
        }
        sources.insert(*oid, rel.name.clone());
    }
    let path = loaded.path.display().to_string();
    let mut checked = 0usize;
    for (pi, phase) in loaded.plan.phases.iter().enumerate() {
        for (si, spanned) in phase.steps.iter().enumerate() {
            let step = spanned.get_ref();
            let subject = format!("step `{}` ({})", step.display_name(), phase.name());
            if done.contains(&(pi, si)) || skip.contains(&subject) {
                continue;
            }
            let probes = match probes(conn, step, &sources).await {
                Ok(probes) => probes,
                Err(message) => {
                    p.push(Level::Error, subject.clone(), message);
                    continue;
                }
            };
            for probe in probes {
                checked += 1;
                if let Err(e) = try_probe(conn, &probe).await {
                    report(p, &subject, &path, &probe, &e);
                }
            }
        }
    }
    p.push(
        Level::Info,
        "statements",
        format!(
            "{checked} statement(s) checked against empty copies of the plan's tables (nothing \
             executed on the real ones)"
        ),
    );
    Ok(())
}

/// Runs one probe inside a savepoint, so a refused statement leaves the
/// copies as they were.
async fn try_probe(conn: &Conn, probe: &Probe) -> Result<(), tokio_postgres::Error> {
    conn.client.batch_execute("SAVEPOINT cutover_probe").await?;
    let r = match probe.how {
        Use::Replay => conn.client.batch_execute(&probe.sql).await,
        Use::Prepare => conn.client.prepare(&probe.sql).await.map(|_| ()),
    };
    match r {
        Ok(()) => {
            conn.client
                .batch_execute("RELEASE SAVEPOINT cutover_probe")
                .await
        }
        Err(e) => {
            conn.client
                .batch_execute("ROLLBACK TO SAVEPOINT cutover_probe")
                .await?;
            Err(e)
        }
    }
}

fn report(p: &mut Preflight, subject: &str, path: &str, probe: &Probe, e: &tokio_postgres::Error) {
    let (message, code, hint) = match e.as_db_error() {
        Some(db) => (
            db.message().to_string(),
            db.code().code().to_string(),
            db.hint()
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default(),
        ),
        None => (e.to_string(), String::new(), String::new()),
    };
    // Names, types and syntax are the plan's to fix; anything else (a
    // feature an empty temporary copy lacks) is worth a word, not a refusal.
    // An object "already exists" on a copy may be the copy's own doing
    // (LIKE names the indexes it copies anew) or a step an earlier session
    // half-finished, which the step resumes: worth a word, not a refusal.
    let duplicate = probe.how == Use::Replay && (code == "42P07" || code == "42710");
    let level = if !duplicate && ["42", "22", "23"].iter().any(|c| code.starts_with(c)) {
        Level::Error
    } else {
        Level::Warning
    };
    let code = if code.is_empty() {
        String::new()
    } else {
        format!(" [SQLSTATE {code}]")
    };
    p.push(
        level,
        subject.to_string(),
        format!(
            "{} would fail: {message}{code}{hint} — fix {} of this step in {path} (the \
             statement: {})",
            probe.what,
            probe.field,
            compact(&probe.sql)
        ),
    );
}

/// Whether a name could reach a real relation rather than a copy. An
/// unqualified name of a real table with no copy yet (one the plan's
/// fields do not name, such as a foreign key's target) gets its copy here,
/// under the same ACCESS SHARE; other schemas and other relation kinds
/// (indexes, views) stay out of reach.
async fn reaches_real(conn: &Conn, rel: &Rel) -> Result<bool, String> {
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
fn references_in_text(text: &str) -> Vec<Rel> {
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
fn qualified_names(text: &str) -> Vec<(usize, usize, String, String)> {
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
async fn to_copies(
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

/// The plan's own SQL, statement by statement: DDL that touches only
/// copies is replayed; writes and queries are prepared; statements that
/// would reach a real table are parsed only.
async fn plan_sql(
    conn: &Conn,
    text: &str,
    sources: &HashMap<u32, String>,
    what: &str,
    field: &'static str,
) -> Result<Vec<Probe>, String> {
    let text = to_copies(conn, text, sources).await?;
    let mut out = Vec::new();
    for stmt in sql::parse(&text) {
        let rels: Option<Vec<Rel>> = match &stmt.kind {
            Kind::Begin
            | Kind::End
            | Kind::Set
            | Kind::Vacuum { .. }
            | Kind::Cluster { .. }
            | Kind::Lock { .. }
            | Kind::Unparsed { .. } => continue,
            Kind::Read => {
                out.push(Probe::new(what, field, stmt.text.clone(), Use::Prepare));
                continue;
            }
            Kind::Update { table, .. } | Kind::Delete { table, .. } | Kind::Insert { table } => {
                if !reaches_real(conn, table).await? {
                    out.push(Probe::new(what, field, stmt.text.clone(), Use::Prepare));
                }
                continue;
            }
            Kind::AlterTable { table, actions } => {
                let mut rels = vec![table.clone()];
                let mut replayable = true;
                for a in actions {
                    match a {
                        Action::AddConstraint {
                            references: Some(r),
                            ..
                        } => rels.push(r.clone()),
                        Action::AddConstraint {
                            kind: ConstraintKind::ForeignKey,
                            references: None,
                            ..
                        }
                        | Action::AddColumn {
                            constraint: Some(ConstraintKind::ForeignKey),
                            ..
                        }
                        | Action::DetachPartition { .. }
                        | Action::AttachPartition => replayable = false,
                        _ => {}
                    }
                }
                replayable.then_some(rels)
            }
            Kind::CreateIndex { table, .. } => Some(vec![table.clone()]),
            Kind::DropIndex { indexes, .. } => Some(indexes.clone()),
            Kind::Reindex { rel, .. } => rel.clone().map(|r| vec![r]),
            Kind::CreateTable {
                table,
                references,
                like,
                ..
            } => {
                let mut rels = vec![table.clone()];
                rels.extend(references.iter().cloned());
                rels.extend(like.iter().cloned());
                Some(rels)
            }
            Kind::DropTable { tables } | Kind::Truncate { tables } => Some(tables.clone()),
            // Triggers, functions, grants…: their objects may live outside
            // the copies; the server parses them.
            Kind::CreateTrigger { .. } | Kind::DropTrigger { .. } | Kind::Other { .. } => None,
        };
        let rels = rels.map(|mut rels| {
            rels.extend(references_in_text(&stmt.text));
            rels
        });
        let mut replay = rels.is_some();
        for rel in rels.iter().flatten() {
            if reaches_real(conn, rel).await? {
                replay = false;
            }
        }
        out.push(if replay {
            Probe::new(what, field, without_concurrently(&stmt.text), Use::Replay)
        } else {
            Probe::new(what, field, stmt.text.clone(), Use::Prepare)
        });
    }
    Ok(out)
}

/// The key column's type on a copy (None: no such column; the existence
/// check reports that).
async fn key_info(conn: &Conn, table: &str, key: &str) -> Result<Option<KeyInfo>, String> {
    let row = conn
        .client
        .query_opt(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped",
            &[&quote_qualified(table), &key],
        )
        .await
        .map_err(|e| DbError::sql("reading a key's type for the shadow check", e).to_string())?;
    Ok(row.map(|r| KeyInfo {
        sql_type: r.get(0),
        has_max: true,
    }))
}

/// The columns of a copy, in order.
async fn columns_of(conn: &Conn, table: &str) -> Result<Vec<String>, String> {
    let rows = conn
        .client
        .query(
            "SELECT attname::text FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&quote_qualified(table)],
        )
        .await
        .map_err(|e| DbError::sql("reading columns for the shadow check", e).to_string())?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `col = expr, …` (a sync trigger's `set`) as an UPDATE SET list.
fn set_list(set: &str) -> Result<String, String> {
    sync_trigger::split_assignments(set)
        .iter()
        .map(|part| {
            let (col, expr) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` in `set` is not `column = expression`"))?;
            let col = col.trim().trim_start_matches("NEW.").trim_matches('"');
            Ok(format!("{} = {}", quote_ident(col), expr.trim()))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|v| v.join(", "))
}

/// What a sync trigger's function will evaluate, as statements the server
/// can prepare: `NEW`/`OLD` become aliases of the copy.
fn trigger_probes(spec: &SyncTriggerStep, out: &mut Vec<Probe>) -> Result<(), String> {
    if let Some(set) = &spec.set {
        let table = shadow(spec.table.as_deref().unwrap_or_default());
        out.push(Probe::new(
            "the sync trigger's assignments",
            "`set`/`when`",
            format!(
                "UPDATE {} AS new SET {} WHERE {}",
                quote_qualified(&table),
                set_list(set)?,
                spec.when.as_deref().unwrap_or("TRUE")
            ),
            Use::Prepare,
        ));
    } else if let (Some(old), Some(new)) = (&spec.old, &spec.new) {
        let table = shadow(spec.table.as_deref().unwrap_or_default());
        let (o, n) = (quote_ident(old), quote_ident(new));
        let forward = spec.forward.clone().unwrap_or(format!("NEW.{o}"));
        let backward = spec.backward.clone().unwrap_or(format!("NEW.{n}"));
        out.push(Probe::new(
            "the sync trigger's copies between the columns",
            "`old`/`new`/`forward`/`backward`",
            format!(
                "UPDATE {} AS new SET {n} = {forward}, {o} = {backward}",
                quote_qualified(&table)
            ),
            Use::Prepare,
        ));
    } else if let (Some(from), Some(to), Some(key), Some(columns)) =
        (&spec.from, &spec.to, &spec.key, &spec.columns)
    {
        let (from, to) = (quote_qualified(&shadow(from)), quote_qualified(&shadow(to)));
        let to_key = spec.to_key.clone().unwrap_or(key.clone());
        let (qk, qtk) = (quote_ident(key), quote_ident(&to_key));
        let pairs = columns.pairs();
        let targets: Vec<String> = pairs.iter().map(|(c, _)| quote_ident(c)).collect();
        let exprs: Vec<&str> = pairs.iter().map(|(_, e)| e.as_str()).collect();
        out.push(Probe::new(
            "the sync trigger's copy of a row",
            "`columns`/`to_key`",
            format!(
                "INSERT INTO {to} ({}) SELECT {} FROM (SELECT new.* FROM {from} AS new) AS s \
                 ON CONFLICT ({qtk}) DO NOTHING",
                targets.join(", "),
                exprs.join(", ")
            ),
            Use::Prepare,
        ));
        out.push(Probe::new(
            "the sync trigger's delete of a copied row",
            "`key`/`to_key`",
            format!("DELETE FROM {to} WHERE {qtk} = (SELECT old.{qk} FROM {from} AS old LIMIT 1)"),
            Use::Prepare,
        ));
    }
    Ok(())
}

/// Whether an added constraint references a table that is not a copy (a
/// foreign key locks the table it references).
async fn references_real(conn: &Conn, add: &str) -> Result<bool, String> {
    let targets = references_in_text(add);
    for r in &targets {
        if reaches_real(conn, r).await? {
            return Ok(true);
        }
    }
    if !targets.is_empty() {
        return Ok(false);
    }
    for stmt in sql::parse(add) {
        let Kind::AlterTable { actions, .. } = &stmt.kind else {
            continue;
        };
        for a in actions {
            match a {
                Action::AddConstraint {
                    references: Some(r),
                    ..
                } if reaches_real(conn, r).await? => return Ok(true),
                Action::AddConstraint {
                    kind: ConstraintKind::ForeignKey,
                    references: None,
                    ..
                } => return Ok(true),
                _ => {}
            }
        }
    }
    Ok(false)
}

/// The statements a step will send, aimed at the copies.
async fn probes(
    conn: &Conn,
    step: &Step,
    sources: &HashMap<u32, String>,
) -> Result<Vec<Probe>, String> {
    let mut out = Vec::new();
    match step {
        Step::Sql(s) => {
            out.extend(plan_sql(conn, &s.sql, sources, "a statement of `sql`", "`sql`").await?)
        }
        Step::Backfill(s) => {
            let mut spec = s.clone();
            spec.table = shadow(&s.table);
            if let Some(key) = key_info(conn, &spec.table, &spec.key).await? {
                let work = batch::batch_sql(&backfill::job(&spec), &key, true).work;
                out.push(Probe::new(
                    "the batch UPDATE",
                    "`set`/`where`",
                    work,
                    Use::Prepare,
                ));
            }
        }
        Step::CopyRows(s) => {
            let mut spec = s.clone();
            spec.from = shadow(&s.from);
            spec.to = shadow(&s.to);
            if let Some(key) = key_info(conn, &spec.from, &spec.key).await? {
                let work = batch::batch_sql(&copy_rows::job(&spec), &key, true).work;
                out.push(Probe::new(
                    "the batch INSERT … SELECT",
                    "`columns`/`where`",
                    work,
                    Use::Prepare,
                ));
            }
        }
        Step::CreateIndex(s) => {
            let mut spec = s.clone();
            spec.table = shadow(&s.table);
            out.push(Probe::new(
                "the index build",
                "`columns`/`where`/`using`",
                without_concurrently(&create_index::build_sql(&spec)),
                Use::Replay,
            ));
        }
        Step::Constraint(s) => {
            let mut spec = s.clone();
            spec.table = shadow(&s.table);
            if let Some((build, attach)) = constraint::unique_sql(&spec) {
                out.push(Probe::new(
                    "the unique index build",
                    "`definition`",
                    without_concurrently(&build),
                    Use::Replay,
                ));
                out.push(Probe::new(
                    "attaching the index",
                    "`definition`",
                    attach,
                    Use::Replay,
                ));
            } else {
                let add = constraint::add_sql(&spec);
                // A foreign key locks the table it references: replayed
                // only when that is a copy.
                let replay = !references_real(conn, &add).await?;
                if replay {
                    out.push(Probe::new(
                        "adding the constraint",
                        "`definition`",
                        add,
                        Use::Replay,
                    ));
                    out.push(Probe::new(
                        "validating the constraint",
                        "`definition`",
                        constraint::validate_sql(&spec),
                        Use::Replay,
                    ));
                } else {
                    out.push(Probe::new(
                        "adding the constraint",
                        "`definition`",
                        add,
                        Use::Prepare,
                    ));
                }
            }
        }
        Step::NotNull(s) => {
            let mut spec = s.clone();
            spec.table = shadow(&s.table);
            for (what, sql) in [
                ("the NOT VALID check", not_null::add_sql(&spec)),
                ("validating the check", not_null::validate_sql(&spec)),
                ("SET NOT NULL", not_null::finish_sql(&spec)),
            ] {
                out.push(Probe::new(what, "`column`", sql, Use::Replay));
            }
        }
        Step::SyncTrigger(s) => {
            let mut spec = s.clone();
            spec.table = s.table.as_deref().map(shadow);
            spec.from = s.from.as_deref().map(shadow);
            spec.to = s.to.as_deref().map(shadow);
            trigger_probes(&spec, &mut out)?;
            let name = quote_ident(&sync_trigger::object_name(s));
            // The function lives with the copies; the trigger names it
            // explicitly (functions are never looked up in pg_temp).
            let create = sync_trigger::create_sql(&spec)?.replace(
                &format!("FUNCTION {name}("),
                &format!("FUNCTION pg_temp.{name}("),
            );
            out.push(Probe::new(
                "creating the sync trigger",
                "the step's fields",
                create,
                Use::Replay,
            ));
        }
        Step::Verify(s) => {
            if let Some(text) = &s.sql {
                out.extend(plan_sql(conn, text, sources, "the verify query", "`sql`").await?);
            }
            if let Some(c) = &s.compare {
                let mut c2 = c.clone();
                c2.left = shadow(&c.left);
                c2.right = shadow(&c.right);
                if let Some(key) = key_info(conn, &c2.left, &c2.key).await? {
                    let cols = match &c.columns {
                        Some(cols) => cols.clone(),
                        None => columns_of(conn, &c2.left).await?,
                    };
                    let rcols = c.right_columns.clone().unwrap_or_else(|| cols.clone());
                    out.push(Probe::new(
                        "the compare",
                        "`compare`",
                        verify::chunk_sql(&c2, &key, &cols, &rcols, true),
                        Use::Prepare,
                    ));
                }
            }
        }
        Step::Swap(s) => {
            let renames: Vec<Rename> = s
                .renames
                .iter()
                .map(|r| match &r.table {
                    Some(t) => Rename {
                        table: Some(shadow(t)),
                        ..r.clone()
                    },
                    None => Rename {
                        from: shadow(&r.from),
                        ..r.clone()
                    },
                })
                .collect();
            out.push(Probe::new(
                "the renames",
                "`renames`",
                swap::swap_sql(&renames),
                Use::Replay,
            ));
        }
        Step::Gate(_) => {}
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
