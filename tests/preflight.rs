//! The preflight against a real server: every statement a plan will send is
//! checked by the server against empty copies of its tables (nothing runs,
//! nothing changes), and `check` reports the live risks a run would meet.

mod common;

use common::process::cutover;
use common::{catalog, connect, seeded_db, shipped_plan, write_plan};

/// A step that takes no lock worth a warning.
const QUIET_STEP: &str = r#"[[phases.steps]]
kind = "verify"
sql = "SELECT 1"
expect = 1"#;

/// `expand` adds a column; `migrate` holds the step under test.
fn plan_with(step: &str) -> String {
    format!(
        r#"
name = "preflight test"
[abort]
lock_wait = "10s"
[throttle]
replication_lag = "60s"

[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
name = "add nickname"
sql = "ALTER TABLE users ADD COLUMN nickname text"
rollback = "ALTER TABLE users DROP COLUMN IF EXISTS nickname"

[[phases]]
name = "migrate"
gate = "auto"
{step}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_every_shipped_plan() {
    let db = seeded_db("pf_shipped", 200).await;
    let mut plans: Vec<String> = std::fs::read_dir(format!("{}/plans", env!("CARGO_MANIFEST_DIR")))
        .expect("plans/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    plans.sort();
    assert!(!plans.is_empty());
    // The check a shipped plan drops (versions_drop_constraint.toml).
    db.connect()
        .await
        .client
        .batch_execute(
            "ALTER TABLE users ADD CONSTRAINT users_city_short CHECK (length(city) <= 5) NOT VALID",
        )
        .await
        .expect("the plan's constraint");
    let before = catalog(&db.connect().await).await;
    for name in &plans {
        // A plan that moves tables needs a second cluster (tests/move_cluster.rs).
        let text = std::fs::read_to_string(shipped_plan(name)).expect("read the plan");
        if text.contains("\ndatabases = [") {
            continue;
        }
        let (code, out, err) = cutover(&db.url, &["check", &shipped_plan(name)]);
        assert_eq!(code, 0, "{name}:\n{out}{err}");
        assert!(
            out.contains("statement(s) checked against empty copies"),
            "{name}:\n{out}"
        );
        assert!(!out.contains("warning  statements"), "{name}:\n{out}");
        assert!(
            !out.contains("warning  [abort]"),
            "{name} sets abort limits:\n{out}"
        );
        assert!(
            !out.contains("warning  [throttle]"),
            "{name} throttles on lag:\n{out}"
        );
    }
    assert_eq!(
        before,
        catalog(&db.connect().await).await,
        "check changed the schema"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_column_in_set_is_an_error_naming_the_step_and_the_column() {
    let db = seeded_db("pf_set", 100).await;
    let (_dir, plan) = write_plan(&plan_with(
        r#"[[phases.steps]]
kind = "backfill"
name = "fill nickname"
table = "users"
key = "id"
set = "nickname = nmae""#,
    ));
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("step `fill nickname` (migrate)"), "{out}");
    assert!(out.contains(r#"column "nmae" does not exist"#), "{out}");
    assert!(out.contains("SQLSTATE 42703"), "{out}");
    assert!(out.contains("fix `set`/`where`"), "{out}");
    assert!(out.contains(&plan), "the plan file is named:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_column_in_where_is_an_error() {
    let db = seeded_db("pf_where", 100).await;
    let (_dir, plan) = write_plan(&plan_with(
        r#"[[phases.steps]]
kind = "backfill"
name = "fill nickname"
table = "users"
key = "id"
set = "nickname = name"
where = "nickname IS NULL AND emial <> ''""#,
    ));
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(r#"column "emial" does not exist"#), "{out}");
    assert!(out.contains("not ready: 1 error(s)"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_error_is_an_error() {
    let db = seeded_db("pf_type", 100).await;
    let (_dir, plan) = write_plan(&plan_with(
        r#"[[phases.steps]]
kind = "backfill"
name = "age from name"
table = "users"
key = "id"
set = "age = name""#,
    ));
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("step `age from name` (migrate)"), "{out}");
    assert!(out.contains("SQLSTATE 42804"), "{out}");
    assert!(out.contains("integer"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_using_a_column_an_earlier_step_adds_pass() {
    let db = seeded_db("pf_earlier", 100).await;
    let (_dir, plan) = write_plan(&plan_with(
        r#"[[phases.steps]]
kind = "backfill"
name = "fill nickname"
table = "users"
key = "id"
set = "nickname = lower(name)"
where = "nickname IS NULL"
[[phases.steps]]
kind = "create_index"
name = "users_nickname_idx"
table = "users"
columns = ["(lower(nickname))"]
where = "nickname IS NOT NULL"
[[phases.steps]]
kind = "verify"
name = "none left"
sql = "SELECT count(*) FROM users WHERE nickname IS NULL"
expect = 0
[[phases.steps]]
kind = "not_null"
table = "users"
column = "nickname""#,
    ));
    let before = catalog(&db.connect().await).await;
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ready: no errors"), "{out}");
    assert_eq!(
        before,
        catalog(&db.connect().await).await,
        "check changed the schema"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_statements_of_every_kind_are_checked() {
    let db = seeded_db("pf_kinds", 100).await;
    db.connect()
        .await
        .client
        .batch_execute("CREATE TABLE addresses (user_id bigint PRIMARY KEY, street text)")
        .await
        .expect("addresses");
    let (_dir, plan) = write_plan(&plan_with(
        r#"[[phases.steps]]
kind = "copy_rows"
name = "copy streets"
from = "users"
to = "addresses"
key = "id"
columns = { user_id = "id", street = "stret" }
[[phases.steps]]
kind = "create_index"
name = "users_bad_idx"
table = "users"
columns = ["(lower(nicknam))"]
[[phases.steps]]
kind = "sync_trigger"
name = "nick"
table = "users"
set = "nickname = NEW.nme"
[[phases.steps]]
kind = "verify"
name = "count streets"
sql = "SELECT count(*) FROM addresses WHERE steet IS NULL"
expect = 0"#,
    ));
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    for (step, column) in [
        ("copy streets", "stret"),
        ("index users_bad_idx", "nicknam"),
        ("sync trigger nick", "nme"),
        ("count streets", "steet"),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("step `{step}`")))
            .unwrap_or_else(|| panic!("no error for `{step}` in:\n{out}"));
        assert!(
            line.contains(column),
            "`{step}` should name {column}: {line}"
        );
    }
    assert!(out.contains("not ready: 4 error(s)"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_of_a_plan_with_a_bad_fragment_exits_2_and_changes_nothing() {
    let db = seeded_db("pf_run", 100).await;
    let (_dir, plan) = write_plan(&plan_with(
        r#"[[phases.steps]]
kind = "backfill"
name = "fill nickname"
table = "users"
key = "id"
set = "nickname = nmae""#,
    ));
    let conn = db.connect().await;
    let before = catalog(&conn).await;
    let (code, out, err) = cutover(&db.url, &["run", "--headless", "--yes", &plan]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("nothing was executed"), "{err}");
    assert!(err.contains(r#"column "nmae" does not exist"#), "{err}");
    assert_eq!(before, catalog(&conn).await, "the ADD COLUMN must not run");
    let journal: bool = conn
        .client
        .query_one("SELECT to_regclass('cutover.runs') IS NOT NULL", &[])
        .await
        .expect("journal?")
        .get(0);
    if journal {
        let runs: i64 = conn
            .client
            .query_one("SELECT count(*) FROM cutover.runs", &[])
            .await
            .expect("runs")
            .get(0);
        assert_eq!(runs, 0, "no run is recorded");
    }
}

/// Waits until `sql` returns true.
async fn poll_until(conn: &cutover::db::Conn, sql: &str) {
    common::poll_until_async(sql, common::PATIENCE, async || {
        conn.client.query_one(sql, &[]).await.expect(sql).get(0)
    })
    .await;
}

/// A session named `app` that ran `sql` in a transaction it leaves open,
/// once the server shows it idle in that transaction.
async fn idle_in_transaction(db: &common::TestDb, app: &str, sql: &str) -> cutover::db::Conn {
    let session = connect(&db.url).await;
    session
        .client
        .batch_execute(&format!("SET application_name = '{app}'; BEGIN; {sql}"))
        .await
        .expect("open a transaction");
    let watcher = db.connect().await;
    poll_until(
        &watcher,
        &format!(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                 WHERE application_name = '{app}' AND state = 'idle in transaction')"
        ),
    )
    .await;
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_session_holding_a_conflicting_lock() {
    let db = seeded_db("pf_locks", 100).await;
    let (_dir, plan) = write_plan(&plan_with(QUIET_STEP));
    let psql = idle_in_transaction(&db, "forgotten_psql", "SELECT count(*) FROM users").await;
    let watcher = db.connect().await;
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 0, "a warning, not an error: {out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("forgotten_psql") && l.contains("AccessShareLock"))
        .unwrap_or_else(|| panic!("the holder is not named:\n{out}"));
    assert!(line.contains("warning  lock conflict"), "{line}");
    assert!(
        line.contains("ACCESS EXCLUSIVE"),
        "the plan's lock is named: {line}"
    );
    assert!(out.contains("warning(s) above"), "{out}");
    assert!(line.contains("users"), "{line}");
    assert!(line.contains("idle in transaction"), "{line}");
    assert!(line.contains("SELECT count(*) FROM users"), "{line}");
    assert!(line.contains("pid "), "{line}");
    drop(psql);
    poll_until(
        &watcher,
        "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'forgotten_psql')",
    )
    .await;
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("forgotten_psql"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_without_abort_limits_or_lag_throttle_warns() {
    let db = seeded_db("pf_limits", 100).await;
    let (_dir, plan) = write_plan(
        r#"
name = "no limits"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN nickname text"
rollback = "ALTER TABLE users DROP COLUMN IF EXISTS nickname"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "nickname = name"
"#,
    );
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 0, "warnings, not errors: {out}{err}");
    assert!(out.contains("warning  [abort]"), "{out}");
    assert!(out.contains("warning  [throttle]"), "{out}");
    let (_dir2, limited) = write_plan(&plan_with(
        r#"[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "nickname = name""#,
    ));
    let (code, out, err) = cutover(&db.url, &["check", &limited]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("warning  [abort]"), "{out}");
    assert!(!out.contains("warning  [throttle]"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_transaction_without_a_conflicting_lock_is_still_reported() {
    let db = seeded_db("pf_idle", 100).await;
    let (_dir, plan) = write_plan(&plan_with(QUIET_STEP));
    let idle = idle_in_transaction(&db, "idle_app", "SELECT 42").await;
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("idle in transaction:") && l.contains("idle_app"))
        .unwrap_or_else(|| panic!("the idle session is not named:\n{out}"));
    assert!(line.contains("SELECT 42"), "{line}");
    assert!(!out.contains("lock conflict"), "{out}");
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_takes_no_lock_stronger_than_a_select_on_the_real_tables() {
    let db = seeded_db("pf_nolock", 100).await;
    // EXCLUSIVE lets SELECTs (ACCESS SHARE) through and nothing else: a
    // check that prepared the batch UPDATE on the real table, or replayed
    // the ALTER TABLE there, would wait behind it and time out.
    let holder = connect(&db.url).await;
    holder
        .client
        .batch_execute(
            "SET application_name = 'exclusive_holder'; BEGIN; LOCK TABLE users IN EXCLUSIVE MODE",
        )
        .await
        .expect("lock");
    let (_dir, plan) = write_plan(&plan_with(
        r#"[[phases.steps]]
kind = "backfill"
name = "fill nickname"
table = "users"
key = "id"
set = "nickname = name"
[[phases.steps]]
kind = "create_index"
name = "users_nickname_idx"
table = "users"
columns = ["nickname"]"#,
    ));
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("statement(s) checked against empty copies"),
        "{out}"
    );
    assert!(
        out.contains("exclusive_holder"),
        "the holder is reported:\n{out}"
    );
    assert!(!out.contains("lock timeout"), "{out}");
    drop(holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_name_the_copy_chose_itself_does_not_refuse_the_plan() {
    let db = seeded_db("pf_dupname", 100).await;
    // The copy of this index is named users_email_idx (LIKE names copies
    // anew), the very name the shipped plan builds.
    db.connect()
        .await
        .client
        .batch_execute("CREATE INDEX some_other_name ON users (email)")
        .await
        .expect("index");
    let (code, out, err) = cutover(&db.url, &["check", &shipped_plan("concurrent_index.toml")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("already exists"), "said, as a warning:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_the_plan_creates_with_a_foreign_key_elsewhere_is_checked_too() {
    let db = seeded_db("pf_fk", 100).await;
    db.connect()
        .await
        .client
        .batch_execute("CREATE TABLE orgs (id bigint PRIMARY KEY, name text)")
        .await
        .expect("orgs");
    let (_dir, plan) = write_plan(&plan_with(
        r#"[[phases.steps]]
kind = "sql"
name = "notes table"
sql = "CREATE TABLE notes (id bigint PRIMARY KEY, org_id bigint REFERENCES orgs (id), body text)"
rollback = "DROP TABLE notes"
[[phases.steps]]
kind = "backfill"
name = "fill notes"
table = "notes"
key = "id"
set = "body = boddy""#,
    ));
    let before = catalog(&db.connect().await).await;
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("step `fill notes`"))
        .unwrap_or_else(|| panic!("the backfill on the new table is not checked:\n{out}"));
    assert!(line.contains(r#"column "boddy" does not exist"#), "{line}");
    assert!(out.contains("not ready: 1 error(s)"), "{out}");
    assert_eq!(
        before,
        catalog(&db.connect().await).await,
        "check changed the schema"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_constraint_step_is_checked_on_copies_of_both_tables() {
    let db = seeded_db("pf_fk_step", 100).await;
    db.connect()
        .await
        .client
        .batch_execute(
            "CREATE TABLE orgs (id bigint PRIMARY KEY); ALTER TABLE users ADD org_id bigint",
        )
        .await
        .expect("orgs");
    let (_dir, plan) = write_plan(&plan_with(
        r#"[[phases.steps]]
kind = "constraint"
name = "users_org_fk"
table = "users"
definition = "FOREIGN KEY (org_idd) REFERENCES orgs (id)""#,
    ));
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(r#"column "org_idd" referenced in foreign key constraint does not exist"#),
        "{out}"
    );
    let fixed = plan_with(
        r#"[[phases.steps]]
kind = "constraint"
name = "users_org_fk"
table = "users"
definition = "FOREIGN KEY (org_id) REFERENCES orgs (id)""#,
    );
    let (_dir2, fixed) = write_plan(&fixed);
    let (code, out, err) = cutover(&db.url, &["check", &fixed]);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_create_temporary_tables_gets_a_warning_not_a_failure() {
    let db = seeded_db("pf_notemp", 100).await;
    let conn = db.connect().await;
    let role = format!("no_temp_{}", std::process::id());
    conn.client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN;
             REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC;
             GRANT SELECT ON users TO {role}; GRANT pg_monitor TO {role};",
            db = cutover::db::quote_ident(&db.name)
        ))
        .await
        .expect("role");
    let url = db
        .url
        .replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    assert_ne!(url, db.url, "the sandbox URL names user postgres");
    let (_dir, plan) = write_plan(&plan_with(QUIET_STEP));
    let (code, out, err) = cutover(&url, &["check", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("GRANT TEMPORARY"), "{out}");
    conn.client
        .batch_execute(&format!(
            "REVOKE ALL ON users FROM {role}; DROP OWNED BY {role}; DROP ROLE {role}"
        ))
        .await
        .expect("drop role");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_qualified_names_are_checked_on_the_copies() {
    let db = seeded_db("pf_schema", 10).await;
    db.connect()
        .await
        .client
        .batch_execute(
            "CREATE SCHEMA app; CREATE TABLE app.accounts (id bigint PRIMARY KEY, name text);
             INSERT INTO app.accounts VALUES (1, 'a')",
        )
        .await
        .expect("app.accounts");
    let plan = |set: &str| {
        format!(
            r#"
name = "qualified"
[abort]
lock_wait = "10s"
[throttle]
replication_lag = "60s"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
name = "add label"
sql = "ALTER TABLE app.accounts ADD COLUMN label text"
rollback = "ALTER TABLE app.accounts DROP COLUMN label"
[[phases.steps]]
kind = "backfill"
name = "fill label"
table = "app.accounts"
key = "id"
set = "{set}"
[[phases.steps]]
kind = "verify"
sql = "SELECT count(*) FROM app.accounts WHERE label IS NULL"
expect = 0
"#
        )
    };
    let conn = db.connect().await;
    let before = catalog(&conn).await;
    let (_dir, good) = write_plan(&plan("label = upper(name)"));
    let (code, out, err) = cutover(&db.url, &["check", &good]);
    assert_eq!(
        code, 0,
        "the column the first step adds is seen: {out}{err}"
    );
    let (_dir2, bad) = write_plan(&plan("label = upper(nmae)"));
    let (code, out, err) = cutover(&db.url, &["check", &bad]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(r#"column "nmae" does not exist"#), "{out}");
    assert_eq!(before, catalog(&conn).await);
    let label: bool = conn
        .client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                     WHERE table_schema = 'app' AND column_name = 'label')",
            &[],
        )
        .await
        .expect("columns")
        .get(0);
    assert!(!label, "nothing ran on app.accounts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_session_waiting_for_a_conflicting_lock() {
    let db = seeded_db("pf_waiter", 100).await;
    let (_dir, plan) = write_plan(&plan_with(QUIET_STEP));
    let holder = connect(&db.url).await;
    holder
        .client
        .batch_execute("BEGIN; SELECT count(*) FROM users")
        .await
        .expect("hold");
    let waiter = connect(&db.url).await;
    let waiting = tokio::spawn(async move {
        let r = waiter
            .client
            .batch_execute(
                "SET application_name = 'queued_ddl'; BEGIN;
                 LOCK TABLE users IN ACCESS EXCLUSIVE MODE",
            )
            .await;
        (waiter, r)
    });
    let watcher = db.connect().await;
    poll_until(
        &watcher,
        "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                 WHERE a.application_name = 'queued_ddl' AND NOT l.granted)",
    )
    .await;
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 0, "warnings, not errors: {out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("queued_ddl"))
        .unwrap_or_else(|| panic!("the waiting session is not named:\n{out}"));
    assert!(
        line.contains("is waiting for AccessExclusiveLock on users"),
        "{line}"
    );
    drop(holder);
    let (_waiter, r) = waiting.await.expect("waiter task");
    r.expect("the LOCK is granted once the holder is gone");
}
