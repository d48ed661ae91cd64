//! Trust at the edges, end to end against real PostgreSQL: an edited plan
//! never changes what a rollback or resume does behind the operator's back,
//! a refused command changes nothing, dropped connections heal, clean-up is
//! modest, names of every shape are quoted, and only authorized roles steer.

mod common;

use std::time::{Duration, Instant};

use common::process::{Running, cutover};
use common::{scalar, seeded_db, write_plan};
use nix::sys::signal::Signal;

const LONG: Duration = Duration::from_secs(90);

/// The journal as a comparable text: runs, steps and how many events.
async fn journal_snapshot(conn: &cutover::db::Conn) -> String {
    let rows = conn
        .client
        .query(
            "SELECT r.id::text || ' ' || r.status || ' ' || coalesce(r.reason, '') || ' ' || r.plan_hash
                    || ' | ' || (SELECT string_agg(s.phase || '.' || s.step || ':' || s.status || ':'
                                  || coalesce(s.fingerprint, '') || ':' || coalesce(s.undo::text, ''), ', '
                                  ORDER BY s.phase, s.step)
                                 FROM cutover.steps s WHERE s.run_id = r.id)
                    || ' | events ' || (SELECT count(*) FROM cutover.events e WHERE e.run_id = r.id)
             FROM cutover.runs r ORDER BY r.id",
            &[],
        )
        .await
        .expect("journal readable");
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn column_exists(conn: &cutover::db::Conn, column: &str) -> bool {
    conn.client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = $1",
            &[&column],
        )
        .await
        .map(|r| r.get::<_, i64>(0) == 1)
        .unwrap_or(false)
}

const ADD_C: &str = r#"
name = "add c"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN c int"
rollback = "ALTER TABLE users DROP COLUMN c"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_runs_the_recorded_undo_never_an_edited_file() {
    let db = seeded_db("edge_edited_rollback", 1_000).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute("ALTER TABLE users ADD COLUMN important text DEFAULT 'keep me'")
        .await
        .unwrap();
    let (dir, plan) = write_plan(ADD_C);
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    // Someone edits the rollback line after the run.
    std::fs::write(
        &plan,
        ADD_C.replace(
            "rollback = \"ALTER TABLE users DROP COLUMN c\"",
            "rollback = \"ALTER TABLE users DROP COLUMN important\"",
        ),
    )
    .unwrap();
    let before = journal_snapshot(&conn).await;
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 1, "refused: {out}{err}");
    assert!(err.contains("`rollback`"), "names the field: {err}");
    assert!(
        err.contains("DROP COLUMN important"),
        "shows the edit: {err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        journal_snapshot(&conn).await,
        before,
        "the journal is as it was"
    );
    assert!(column_exists(&conn, "important").await && column_exists(&conn, "c").await);
    // Forced: the undo recorded when the step ran, not the file's text.
    let (code, out, err) = cutover(
        &db.url,
        &["rollback", &plan, "--yes", "--force-changed-plan"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("DROP COLUMN c"), "{out}");
    assert!(!column_exists(&conn, "c").await, "the run's column is gone");
    let kept: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users WHERE important = 'keep me'",
    )
    .await;
    assert_eq!(
        kept, 1_000,
        "the unrelated column and its data are untouched"
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_rollback_leaves_a_finished_run_finished() {
    let db = seeded_db("edge_refused_rollback", 2_000).await;
    let plan = common::shipped_plan("add_column_backfill.toml");
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let conn = db.connect().await;
    let before = journal_snapshot(&conn).await;
    assert!(before.contains("finished"), "{before}");
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("irreversible"), "{err}");
    assert_eq!(
        journal_snapshot(&conn).await,
        before,
        "status and events unchanged"
    );
    // --dry-run shows and changes nothing either.
    let (code, _, err) = cutover(&db.url, &["rollback", &plan, "--dry-run"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(journal_snapshot(&conn).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_without_a_terminal_needs_yes_and_dry_run_previews() {
    let db = seeded_db("edge_rollback_guard", 500).await;
    let conn = db.connect().await;
    let (dir, plan) = write_plan(ADD_C);
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ALTER TABLE users DROP COLUMN c"), "{out}");
    assert!(out.contains("ACCESS EXCLUSIVE"), "the lock is shown: {out}");
    assert!(column_exists(&conn, "c").await, "dry run changed nothing");
    let (code, out, err) = cutover(&db.url, &["rollback", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("--yes"), "{err}");
    assert!(
        column_exists(&conn, "c").await,
        "nothing undone without --yes"
    );
    drop(dir);
}

const BACKFILL: &str = r#"
name = "fill city"
[throttle]
max_batch_size = 500
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "city = 'one'"
batch_size = 500
"#;

fn progress_past(rows: i64) -> impl Fn(&serde_json::Value) -> bool {
    move |v| v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) >= rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_resume_restarts_a_backfill_whose_set_changed() {
    let db = seeded_db("edge_forced_resume", 20_000).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute(&common::count_and_slow())
        .await
        .unwrap();
    let (dir, plan) = write_plan(BACKFILL);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_for("some batches", LONG, progress_past(2_000));
    run.signal(Signal::SIGINT);
    assert_eq!(run.wait_exit(LONG).0, 130);
    std::fs::write(&plan, BACKFILL.replace("city = 'one'", "city = 'two'")).unwrap();
    let before = journal_snapshot(&conn).await;
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("`set`"), "names the changed field: {out}");
    assert_eq!(
        journal_snapshot(&conn).await,
        before,
        "a refused resume changes nothing"
    );
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--force-changed-plan"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("starts over from the first key"), "{out}");
    let two: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE city = 'two'").await;
    assert_eq!(two, 20_000, "every row has the new value");
    drop(dir);
}

/// The pids of this database's cutover sessions (driver, monitor, probe).
async fn terminate_cutover_sessions(conn: &cutover::db::Conn, db: &str) -> i64 {
    conn.client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'cutover' AND datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reconnects_after_its_sessions_are_terminated_and_applies_each_batch_once() {
    let db = seeded_db("edge_reconnect", 20_000).await;
    let admin = db.connect().await;
    admin
        .client
        .batch_execute(&common::count_and_slow())
        .await
        .unwrap();
    let (dir, plan) = write_plan(BACKFILL);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_for("some batches", LONG, progress_past(2_000));
    // As a failover or a pooler restart does: every session at once.
    let killed = terminate_cutover_sessions(&admin, &db.name).await;
    assert!(killed >= 2, "terminated {killed} sessions");
    run.wait_for("the loss is reported", LONG, |v| {
        v["event"] == "connection_lost"
    });
    run.wait_for("it reconnects", LONG, |v| v["event"] == "reconnected");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let twice: i64 = scalar(&admin, "SELECT count(*) FROM users WHERE touches <> 1").await;
    assert_eq!(twice, 0, "every row updated exactly once");
    let status: String = scalar(&admin, "SELECT status FROM cutover.runs").await;
    assert_eq!(status, "finished");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_meets_a_held_row_waits_and_retries_instead_of_failing() {
    let db = seeded_db("edge_batch_patience", 5_000).await;
    let holder = db.connect().await;
    let (dir, plan) = write_plan(&BACKFILL.replace(
        "[throttle]",
        "[settings]\nbatch_lock_timeout = \"100ms\"\n[throttle]",
    ));
    // An application transaction holds a row the first batch needs.
    holder
        .client
        .batch_execute("BEGIN; SELECT * FROM users WHERE id = 10 FOR UPDATE")
        .await
        .unwrap();
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_for("a counted retry", LONG, |v| {
        v["event"] == "retry"
            && v["reason"]
                .as_str()
                .is_some_and(|r| r.contains("batch_lock_timeout"))
    });
    holder.client.batch_execute("COMMIT").await.unwrap();
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let conn = db.connect().await;
    let one: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE city = 'one'").await;
    assert_eq!(one, 5_000);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorized_role_cannot_release_a_gate() {
    let db = seeded_db("edge_authorized", 500).await;
    let admin = db.connect().await;
    let role = format!("nobody_{}", db.name);
    admin
        .client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN;
             GRANT CONNECT ON DATABASE {} TO {role}",
            db.name
        ))
        .await
        .unwrap();
    let (dir, plan) = write_plan(ADD_C);
    let gated = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("gate = \"auto\"\n", "");
    std::fs::write(&plan, gated).unwrap();
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    let waiting = run.wait_event("gate_waiting", LONG);
    let run_id: i64 = scalar(&admin, "SELECT id FROM cutover.runs").await;
    // The unprivileged role rings the doorbell the old way, and tries a row.
    let nobody_url =
        common::with_dbname(&db.url, &db.name).replacen("postgres@", &format!("{role}@"), 1);
    let nobody = common::connect(&nobody_url).await;
    nobody
        .client
        .execute(
            "SELECT pg_notify('cutover_control', $1)",
            &[&format!("{run_id} advance")],
        )
        .await
        .unwrap();
    let denied = nobody
        .client
        .execute(
            "INSERT INTO cutover.commands (run_id, command) VALUES ($1, 'advance')",
            &[&run_id],
        )
        .await;
    assert!(denied.is_err(), "the role may not write commands");
    run.wait_for("the ignored notice", LONG, |v| {
        v["event"] == "notice"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("ignored"))
    });
    assert!(!column_exists(&admin, "c").await, "the gate held");
    // The operator's own role releases it, and the journal says who.
    let (code, out, err) = cutover(&db.url, &["advance", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(column_exists(&admin, "c").await);
    let by: String = scalar(&admin, "SELECT sent_by::text FROM cutover.commands").await;
    assert_eq!(by, "postgres");
    drop((dir, waiting));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_irreversible_gate_needs_the_confirmation_from_the_cli() {
    let db = seeded_db("edge_irreversible_cli", 500).await;
    let admin = db.connect().await;
    let (dir, plan) = write_plan(&format!(
        "{ADD_C}\n[[phases]]\nname = \"contract\"\nirreversible = true\n[[phases.steps]]\nkind = \"sql\"\nsql = \"ALTER TABLE users DROP COLUMN c\"\n"
    ));
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_for("the contract gate", LONG, |v| {
        v["event"] == "gate_waiting" && v["irreversible"] == true
    });
    let (code, out, err) = cutover(&db.url, &["advance", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("--confirm add c"), "{err}");
    let (code, _, err) = cutover(&db.url, &["advance", &plan, "--confirm", "orders"]);
    assert_eq!(code, 1, "{err}");
    assert!(column_exists(&admin, "c").await, "nothing ran");
    let (code, out, err) = cutover(&db.url, &["advance", &plan, "--confirm", "add c"]);
    // The plan names no table in a step kind: its name is what is asked.
    assert_eq!(code, 0, "{out}{err}");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(!column_exists(&admin, "c").await);
    drop(dir);
}

/// Names with spaces, capitals, quotes and a semicolon, through the step
/// kinds that compose SQL from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_names_are_quoted_through_every_step_kind() {
    let db = common::fresh_db("edge_names").await;
    let conn = db.connect().await;
    conn.client
        .batch_execute(
            r#"CREATE SCHEMA "Odd Schema";
               CREATE TABLE "Odd Schema"."My ""T""; x" ("my id" bigint PRIMARY KEY, "Val" int, "co;py" int);
               INSERT INTO "Odd Schema"."My ""T""; x" SELECT g, g, NULL FROM generate_series(1, 3000) g;
               CREATE TABLE "Odd Schema"."Copy To" ("my id" bigint PRIMARY KEY, "Val" int);"#,
        )
        .await
        .unwrap();
    // A plan writes a name with a quote in it quoted, as SQL does.
    let t = r#"Odd Schema."My ""T""; x""#;
    let plan_text = format!(
        r#"
name = "odd names"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sync_trigger"
name = "odd_copy"
from = {t:?}
to = "Odd Schema.Copy To"
key = "my id"
columns = ["my id", "Val"]
[[phases.steps]]
kind = "backfill"
table = {t:?}
key = "my id"
set = '"co;py" = "Val" * 2'
[[phases.steps]]
kind = "copy_rows"
from = {t:?}
to = "Odd Schema.Copy To"
key = "my id"
columns = ["my id", "Val"]
[[phases.steps]]
kind = "create_index"
name = "Odd; Idx"
table = {t:?}
columns = ["Val", "co;py DESC"]
[[phases.steps]]
kind = "not_null"
table = {t:?}
column = "co;py"
[[phases.steps]]
kind = "constraint"
name = "Odd Check"
table = {t:?}
definition = 'CHECK ("Val" > 0)'
[[phases.steps]]
kind = "verify"
compare = {{ left = {t:?}, right = "Odd Schema.Copy To", key = "my id", columns = ["my id", "Val"] }}
"#
    );
    let (dir, plan) = write_plan(&plan_text);
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let doubled: i64 = scalar(
        &conn,
        r#"SELECT count(*) FROM "Odd Schema"."My ""T""; x" WHERE "co;py" = "Val" * 2"#,
    )
    .await;
    assert_eq!(doubled, 3000);
    let copied: i64 = scalar(&conn, r#"SELECT count(*) FROM "Odd Schema"."Copy To""#).await;
    assert_eq!(copied, 3000);
    let valid: bool = scalar(
        &conn,
        r#"SELECT indisvalid FROM pg_index WHERE indexrelid = '"Odd Schema"."Odd; Idx"'::regclass"#,
    )
    .await;
    assert!(valid);
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    drop(dir);
}

/// The sync trigger writes where the plan meant, whatever the writer's
/// search_path finds first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_trigger_ignores_the_writers_search_path() {
    let db = seeded_db("edge_search_path", 100).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute(
            "CREATE TABLE addresses (user_id bigint PRIMARY KEY, city text);
             CREATE SCHEMA decoy;
             CREATE TABLE decoy.addresses (user_id bigint PRIMARY KEY, city text);",
        )
        .await
        .unwrap();
    let (dir, plan) = write_plan(
        r#"
name = "copy addresses"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sync_trigger"
name = "addresses"
from = "users"
to = "addresses"
key = "id"
to_key = "user_id"
columns = { user_id = "id", city = "city" }
"#,
    );
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let writer = db.connect().await;
    writer
        .client
        .batch_execute(
            "SET search_path = decoy, public; UPDATE public.users SET city = 'Lyon' WHERE id = 7",
        )
        .await
        .unwrap();
    let real: i64 = scalar(
        &conn,
        "SELECT count(*) FROM public.addresses WHERE city = 'Lyon'",
    )
    .await;
    let decoy: i64 = scalar(&conn, "SELECT count(*) FROM decoy.addresses").await;
    assert_eq!((real, decoy), (1, 0));
    // A cascade from a parent reaches the copy (no pg_trigger_depth skip).
    conn.client
        .batch_execute(
            "CREATE TABLE accounts (id bigint PRIMARY KEY);
             INSERT INTO accounts SELECT id FROM users;
             ALTER TABLE users ADD COLUMN account_id bigint REFERENCES accounts ON DELETE CASCADE;
             UPDATE users SET account_id = id WHERE id = 7;
             DELETE FROM accounts WHERE id = 7;",
        )
        .await
        .unwrap();
    let gone: i64 = scalar(
        &conn,
        "SELECT count(*) FROM public.addresses WHERE user_id = 7",
    )
    .await;
    assert_eq!(gone, 0, "the cascaded delete reached the copy");
    drop(dir);
}

/// An interrupted concurrent build in a `sql` step leaves no INVALID index
/// once the step runs again; a pre-existing index is never dropped by
/// clean-up or rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_concurrent_build_in_a_sql_step_is_cleaned_up() {
    let db = seeded_db("edge_cic_sql", 50_000).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute("CREATE INDEX theirs ON users (email)")
        .await
        .unwrap();
    let blocker = db.connect().await;
    // A long transaction makes the concurrent build wait in its last phase.
    blocker
        .client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM users")
        .await
        .unwrap();
    let (dir, plan) = write_plan(
        r#"
name = "cic in sql"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sql"
sql = "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_city_idx ON users (city)"
rollback = "DROP INDEX CONCURRENTLY IF EXISTS users_city_idx"
"#,
    );
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_event("step_started", LONG);
    let deadline = Instant::now() + LONG;
    loop {
        let building: i64 =
            scalar(&conn, "SELECT count(*) FROM pg_stat_progress_create_index").await;
        if building > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the build never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.kill9();
    let (invalid, _) = wait_invalid(&conn).await;
    assert_eq!(
        invalid, 1,
        "kill -9 left the INVALID index this test is about"
    );
    blocker.client.batch_execute("COMMIT").await.unwrap();
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let valid: bool = scalar(
        &conn,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_city_idx'::regclass",
    )
    .await;
    assert!(valid, "rebuilt valid, not marked done over an INVALID one");
    let theirs: i64 = scalar(
        &conn,
        "SELECT count(*) FROM pg_class WHERE relname = 'theirs'",
    )
    .await;
    assert_eq!(theirs, 1);
    drop(dir);
}

async fn wait_invalid(conn: &cutover::db::Conn) -> (i64, ()) {
    let deadline = Instant::now() + LONG;
    loop {
        let n: i64 = scalar(
            conn,
            "SELECT count(*) FROM pg_index WHERE NOT indisvalid AND indrelid = 'users'::regclass",
        )
        .await;
        let building: i64 =
            scalar(conn, "SELECT count(*) FROM pg_stat_progress_create_index").await;
        if building == 0 || Instant::now() > deadline {
            return (n, ());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_runs_read_only_and_needs_exactly_one_value() {
    let db = seeded_db("edge_verify", 100).await;
    let conn = db.connect().await;
    let (dir, plan) = write_plan(
        r#"
name = "sneaky verify"
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "verify"
sql = "WITH d AS (DELETE FROM users WHERE id > 0 RETURNING 1) SELECT count(*) FROM d"
expect = 0
"#,
    );
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("read-only transaction"), "{out}");
    let left: i64 = scalar(&conn, "SELECT count(*) FROM users").await;
    assert_eq!(left, 100, "nothing deleted");
    let (dir2, plan2) = write_plan(
        r#"
name = "many rows verify"
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "verify"
sql = "SELECT id FROM users ORDER BY id"
expect = 1
"#,
    );
    let (code, out, err) = cutover(&db.url, &["run", &plan2, "--yes"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("100 rows"), "{out}");
    drop((dir, dir2));
}
