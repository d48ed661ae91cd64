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

mod names;
mod probes;

use std::collections::{HashMap, HashSet};

use super::{Level, Preflight};
use crate::db::{Conn, DbError, quote_ident, quote_qualified};
use crate::plan::LoadedPlan;
use crate::sql::Rel;

/// How a statement is checked on the copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// DDL on the copies only: replayed, so later statements see it.
    Replay,
    /// Parsed, resolved and type-checked by the server; never executed.
    Prepare,
}

/// One statement to check.
pub(super) struct Probe {
    /// What it is, for the message.
    what: String,
    /// The plan fields it comes from, for the message.
    field: &'static str,
    sql: String,
    how: Use,
}

impl Probe {
    pub(super) fn new(
        what: impl Into<String>,
        field: &'static str,
        sql: String,
        how: Use,
    ) -> Probe {
        Probe {
            what: what.into(),
            field,
            sql,
            how,
        }
    }
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
            let probes = match probes::probes(conn, step, &sources).await {
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
