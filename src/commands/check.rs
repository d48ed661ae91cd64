//! `cutover check PLAN`: lint with the server's version and catalog, plus
//! read-only preflight checks. `cutover run` runs the same check first and
//! refuses to start when it finds an error.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use crate::cli::CheckArgs;
use crate::db::{Conn, DbError, Target, quote_qualified};
use crate::engine::steps::{batch, vacuum_behind};
use crate::exit;
use crate::journal::{self, StepStatus};
use crate::lint::Schema;
use crate::lint::plan::{Finding, analyze};
use crate::lint::render;
use crate::plan::{LoadedPlan, Step};
use crate::sql::{self, Kind, Rel};

/// How serious a preflight item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The run would fail or do harm: `check` exits 1, `run` refuses.
    Error,
    /// Worth knowing before starting.
    Warning,
    /// What was found.
    Info,
}

/// One preflight result.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// How serious.
    pub level: Level,
    /// The step, setting or server property it is about.
    pub subject: String,
    /// What was found and what to do.
    pub message: String,
}

/// Everything `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    /// The server's major version (the rules used it).
    pub pg_major: u32,
    /// Preflight results.
    pub items: Vec<Item>,
    /// Lint findings (with the server's version and catalog).
    pub findings: Vec<Finding>,
}

impl Preflight {
    /// Errors: preflight errors plus lint findings no `allow_unsafe` covers.
    pub fn errors(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.level == Level::Error)
            .count()
            + self.findings.iter().filter(|f| f.is_error()).count()
    }

    fn push(&mut self, level: Level, subject: impl Into<String>, message: impl Into<String>) {
        self.items.push(Item {
            level,
            subject: subject.into(),
            message: message.into(),
        });
    }
}

/// `cutover check PLAN`.
pub async fn run(args: CheckArgs, database_url: Option<&str>) -> i32 {
    let loaded = match super::run::load_plan(&args.plan) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let target = match super::run::resolve_target(database_url) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let result = match connect_and_check(&loaded, &target, false, args.long_transaction).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    if args.format == crate::cli::Format::Json {
        match serde_json::to_string_pretty(&result) {
            Ok(s) => super::emit(&format!("{s}\n")),
            Err(e) => {
                eprintln!("error: cannot write JSON: {e}");
                return exit::FAILED;
            }
        }
    } else {
        super::emit(&text(&result, &loaded, &target));
    }
    if result.errors() > 0 {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// Connects, checks, and closes.
pub async fn connect_and_check(
    loaded: &LoadedPlan,
    target: &Target,
    for_run: bool,
    long_transaction: Duration,
) -> Result<Preflight, DbError> {
    let conn = Conn::connect(target).await?;
    // Read-only and never in the application's way: catalog reads only, and
    // bounded in case a lock is held on something it touches.
    conn.client
        .batch_execute("SET lock_timeout = '2s'; SET statement_timeout = '60s'")
        .await
        .map_err(|e| DbError::sql("setting the check's timeouts", e))?;
    preflight(loaded, &conn, for_run, long_transaction).await
}

/// The default `--long-transaction`.
pub const LONG_TRANSACTION: Duration = Duration::from_secs(60);

/// The check, for people.
pub fn text(p: &Preflight, loaded: &LoadedPlan, target: &Target) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "check {} against {}\n",
        loaded.path.display(),
        target.display()
    ));
    for f in &p.findings {
        out.push('\n');
        out.push_str(&render::finding(f));
    }
    if !p.findings.is_empty() {
        out.push('\n');
    }
    for item in &p.items {
        let tag = match item.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "ok",
        };
        out.push_str(&format!("{tag:>7}  {}: {}\n", item.subject, item.message));
    }
    let errors = p.errors();
    out.push_str(&if errors == 0 {
        "\nready: no errors\n".to_string()
    } else {
        format!(
            "\nnot ready: {errors} error(s); fix them (or give a flagged `sql` step \
             `allow_unsafe = \"why\"`) and check again\n"
        )
    });
    out
}

/// What a step needs to exist before it runs: (table, column) pairs.
fn needs(step: &Step) -> Vec<(String, Option<String>, &'static str)> {
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
            for c in &s.columns {
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
    }
}

/// Tables and columns: in the database, renamed into place by a swap, or
/// made by an earlier step (`made` learns them from the steps' SQL).
struct Known {
    tables: HashSet<String>,
    columns: HashSet<(String, String)>,
    /// Columns that exist in the database now.
    db_columns: HashSet<(String, String)>,
    made: Schema,
}

impl Known {
    fn learn_sql(&mut self, text: &str) {
        for stmt in sql::parse(text) {
            self.made.learn(&stmt);
        }
    }

    fn has_table(&self, rel: &Rel) -> bool {
        self.tables.contains(&rel.name) || self.made.created(rel)
    }

    fn has_column(&self, rel: &Rel, column: &str) -> bool {
        self.columns
            .contains(&(rel.name.clone(), column.to_string()))
            || self.made.column_type(rel, column).is_some()
    }
}

async fn table_columns(conn: &Conn, table: &str) -> Result<Option<Vec<(String, String)>>, DbError> {
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
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            &[&quote_qualified(table)],
        )
        .await
        .map_err(|e| DbError::sql("reading a table's columns", e))?;
    Ok(Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
}

/// Tables the plan names: step fields and the tables its SQL alters.
fn tables_named(loaded: &LoadedPlan) -> Vec<String> {
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

/// Lint plus preflight. `for_run` leaves out what the engine checks itself
/// (another live run of the plan).
pub async fn preflight(
    loaded: &LoadedPlan,
    conn: &Conn,
    for_run: bool,
    long_transaction: Duration,
) -> Result<Preflight, DbError> {
    let plan = &loaded.plan;
    let pg_major = match conn.server_version_num() {
        0 => crate::lint::DEFAULT_PG_MAJOR,
        v => v / 10000,
    };
    let mut p = Preflight {
        pg_major,
        items: Vec::new(),
        findings: Vec::new(),
    };
    p.push(
        if pg_major >= 12 { Level::Info } else { Level::Warning },
        "server",
        if pg_major >= 12 {
            format!("PostgreSQL {pg_major} (rules use this version)")
        } else {
            format!(
                "PostgreSQL {pg_major}: not_null steps still scan under ACCESS EXCLUSIVE before 12, \
                 and REINDEX CONCURRENTLY needs 12"
            )
        },
    );

    // The catalog, for the rules (current column types, validated checks)
    // and for existence checks.
    let mut schema = Schema::new(pg_major);
    let mut known = Known {
        tables: HashSet::new(),
        columns: HashSet::new(),
        db_columns: HashSet::new(),
        made: Schema::new(pg_major),
    };
    let named = tables_named(loaded);
    for table in &named {
        if let Some(cols) = table_columns(conn, table).await? {
            let rel = Rel::from_plan(table);
            known.tables.insert(rel.name.clone());
            for (c, ty) in cols {
                schema.set_column_type(&rel, &c, &ty);
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
    p.findings = analyze(loaded, &mut schema).findings;

    // The journal: an unfinished run resumes; its finished steps are not
    // checked again (their objects may be renamed or gone by now).
    let mut done: HashSet<(usize, usize)> = HashSet::new();
    let journal_exists: bool = conn
        .client
        .query_one("SELECT to_regclass('cutover.runs') IS NOT NULL", &[])
        .await
        .map_err(|e| DbError::sql("looking for the journal", e))?
        .get(0);
    if journal_exists {
        if let Some(run) = journal::unfinished_run(&conn.client, &plan.name).await? {
            for s in journal::steps(&conn.client, run.id).await? {
                if matches!(s.status, StepStatus::Done) {
                    done.insert((s.phase as usize, s.step as usize));
                }
            }
            let holder = journal::lock_holder(&conn.client, &plan.name).await?;
            match holder {
                Some(h) if !for_run => p.push(
                    Level::Error,
                    "journal",
                    format!(
                        "run #{} of this plan is being driven right now (server pid {}); watch it \
                         with `cutover status`, or stop it with `cutover abort`",
                        run.id, h.backend_pid
                    ),
                ),
                Some(_) => {}
                None => p.push(
                    Level::Info,
                    "journal",
                    format!(
                        "run #{} ({}) will resume; {} finished step(s) are not checked again",
                        run.id,
                        run.status.as_str(),
                        done.len()
                    ),
                ),
            }
        } else if let Some(last) = journal::latest_run(&conn.client, &plan.name)
            .await?
            .filter(|r| r.status == journal::RunStatus::Finished && r.plan_hash == loaded.hash)
        {
            for (pi, phase) in plan.phases.iter().enumerate() {
                for si in 0..phase.steps.len() {
                    done.insert((pi, si));
                }
            }
            p.push(
                Level::Info,
                "journal",
                format!(
                    "run #{} already finished this plan file; `cutover run` has nothing to do",
                    last.id
                ),
            );
        } else {
            p.push(Level::Info, "journal", "no unfinished run of this plan");
        }
        let others = conn
            .client
            .query(
                "SELECT plan_name, status FROM cutover.runs
                 WHERE plan_name <> $1 AND status NOT IN ('finished', 'rolled_back')",
                &[&plan.name],
            )
            .await
            .map_err(|e| DbError::sql("reading other runs", e))?;
        for r in others {
            let (name, status): (String, String) = (r.get(0), r.get(1));
            p.push(
                Level::Warning,
                "journal",
                format!("plan \"{name}\" has an unfinished run ({status}) on this database"),
            );
        }
    } else {
        p.push(
            Level::Info,
            "journal",
            "no runs recorded yet (the journal is created on the first run)",
        );
    }

    // Every table and column a step names: there, or made earlier.
    for (pi, phase) in plan.phases.iter().enumerate() {
        for (si, spanned) in phase.steps.iter().enumerate() {
            let step = spanned.get_ref();
            let subject = format!("step `{}` ({})", step.display_name(), phase.name());
            let finished = done.contains(&(pi, si));
            if !finished {
                let mut missing = Vec::new();
                for (table, column, field) in needs(step) {
                    let rel = Rel::from_plan(&table);
                    let present = match &column {
                        None => known.has_table(&rel),
                        Some(c) => !known.has_table(&rel) || known.has_column(&rel, c),
                    };
                    if !present {
                        missing.push(match column {
                            None => format!("table {table} ({field})"),
                            Some(c) => format!("column {table}.{c} ({field})"),
                        });
                    }
                }
                missing.dedup();
                for m in missing {
                    p.push(
                        Level::Error,
                        subject.clone(),
                        format!(
                            "{m} does not exist, and no earlier step creates it; fix the name in \
                             the plan"
                        ),
                    );
                }
                let key = match step {
                    Step::Backfill(s) => Some((&s.table, &s.key)),
                    Step::CopyRows(s) => Some((&s.from, &s.key)),
                    _ => None,
                };
                let table_exists = key.is_some_and(|(table, k)| {
                    known
                        .db_columns
                        .contains(&(Rel::from_plan(table).name, k.clone()))
                });
                if let Some((table, k)) = key
                    && table_exists
                    && let Err(e) = batch::check_key(conn, table, k).await
                {
                    p.push(Level::Error, subject.clone(), e);
                }
                if let Step::Backfill(s) = step
                    && table_exists
                    && s.vacuum_behind
                    && plan.throttle.paces()
                    && let Some(why) = vacuum_behind::unavailable(conn, &s.table).await
                {
                    p.push(
                        Level::Warning,
                        subject.clone(),
                        format!(
                            "no vacuum behind this backfill: {why}; the table will grow by the \
                             rows rewritten — VACUUM it afterwards, or set vacuum_behind = false"
                        ),
                    );
                }
            }
            // Later steps may use what this one makes.
            match step {
                Step::Sql(s) => known.learn_sql(&s.sql),
                Step::Swap(s) => {
                    for r in &s.renames {
                        match &r.table {
                            Some(t) => {
                                known.columns.insert((Rel::from_plan(t).name, r.to.clone()));
                            }
                            None => {
                                known.tables.insert(Rel::from_plan(&r.to).name);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    // Replicas and the settings that watch them. A role without
    // pg_read_all_stats sees a standby's row with its state and positions
    // NULL.
    let replicas = conn
        .client
        .query(
            "SELECT coalesce(application_name, ''), coalesce(client_addr::text, 'local'),
                    coalesce(state, ''), coalesce(extract(epoch FROM replay_lag), 0)::float8,
                    state IS NULL, current_user::text
             FROM pg_stat_replication",
            &[],
        )
        .await
        .map_err(|e| DbError::sql("reading pg_stat_replication", e))?;
    let watches = plan.throttle.replication_lag.is_some()
        || plan.throttle.replication_lag_bytes.is_some()
        || plan.abort.replication_lag.is_some()
        || plan.abort.replication_lag_bytes.is_some();
    if replicas.is_empty() {
        p.push(
            if watches { Level::Warning } else { Level::Info },
            "replicas",
            if watches {
                "none visible in pg_stat_replication, so the replication-lag throttle and abort \
                 limits have nothing to watch (replicas behind a cascade or on another primary \
                 are not seen)"
            } else {
                "none visible in pg_stat_replication"
            },
        );
    }
    let hidden = replicas.iter().filter(|r| r.get::<_, bool>(4)).count();
    if let Some(r) = replicas.first()
        && hidden > 0
    {
        let role: String = r.get(5);
        p.push(
            if watches {
                Level::Error
            } else {
                Level::Warning
            },
            "replicas",
            format!(
                "{hidden} replica(s) streaming, but role {role} may not see their state or lag, so \
                 the lag on the screen{} would always read 0 — GRANT pg_monitor TO {role} (or \
                 pg_read_all_stats)",
                if watches {
                    " and the plan's replication-lag throttle and abort limits"
                } else {
                    ""
                }
            ),
        );
    }
    for r in replicas.iter().filter(|r| !r.get::<_, bool>(4)) {
        let (name, addr, state, lag): (String, String, String, f64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        p.push(
            Level::Info,
            "replica",
            format!("{name} at {addr}: {state}, replay lag {lag:.1}s"),
        );
    }

    // Long transactions stall CREATE INDEX CONCURRENTLY and validations
    // (they wait for every older transaction to end).
    let long = conn
        .client
        .query(
            "SELECT pid, coalesce(application_name, ''), extract(epoch FROM now() - xact_start)::float8,
                    left(regexp_replace(query, '\\s+', ' ', 'g'), 80)
             FROM pg_stat_activity
             WHERE xact_start < now() - make_interval(secs => $1) AND pid <> pg_backend_pid()
               AND backend_type = 'client backend'
             ORDER BY xact_start",
            &[&long_transaction.as_secs_f64()],
        )
        .await
        .map_err(|e| DbError::sql("reading pg_stat_activity", e))?;
    for r in long {
        let (pid, app, age, query): (i32, String, f64, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        p.push(
            Level::Warning,
            "long transaction",
            format!(
                "pid {pid} ({app}) has been in a transaction for {}: concurrent index builds and \
                 validations wait for it to end — {query}",
                humantime::format_duration(Duration::from_secs(age as u64))
            ),
        );
    }
    if p.items.iter().all(|i| i.subject != "long transaction") {
        p.push(
            Level::Info,
            "long transactions",
            format!(
                "none open for more than {}",
                humantime::format_duration(long_transaction)
            ),
        );
    }

    // Estimated rows of each existing table the plan names.
    for table in &named {
        let row = conn
            .client
            .query_opt(
                // From pg_class only: pg_total_relation_size would take a
                // lock and wait behind the application's DDL.
                "SELECT c.reltuples::float8,
                        ((c.relpages + coalesce((SELECT sum(i.relpages) FROM pg_index x
                                                 JOIN pg_class i ON i.oid = x.indexrelid
                                                 WHERE x.indrelid = c.oid), 0))
                         * current_setting('block_size')::bigint)::bigint
                 FROM pg_class c WHERE c.oid = to_regclass($1)",
                &[&quote_qualified(table)],
            )
            .await
            .map_err(|e| DbError::sql("reading table statistics", e))?;
        if let Some(r) = row {
            let (tuples, bytes): (f64, i64) = (r.get(0), r.get(1));
            p.push(
                Level::Info,
                format!("table {table}"),
                if tuples < 0.0 {
                    format!(
                        "never analyzed; run ANALYZE {table} for an estimate of its rows and size"
                    )
                } else {
                    format!(
                        "about {} rows, about {} with indexes",
                        tuples as i64,
                        bytesize::ByteSize(bytes.max(0) as u64)
                    )
                },
            );
        }
    }
    Ok(p)
}
