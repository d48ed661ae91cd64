//! Version schemas: both application versions at once. Each kind follows
//! pgroll's lifecycle — start → check → rollback → check → start →
//! complete → check — against the sandbox, with an app writing through
//! `public` and another through `app_v2` during the transition.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::{Running, cutover};
use common::{PATIENCE, TestDb, connect, scalar, seeded_db, shipped_plan, write_plan};
use cutover::db::Conn;

const LONG: Duration = PATIENCE;

/// `pg_dump --schema-only` of everything but the journal: the catalog as an
/// operator would compare it.
fn schema_dump(db: &TestDb) -> String {
    let out = Command::new(pg_dump())
        .args(["--schema-only", "--no-owner", "--exclude-schema=cutover"])
        .arg(format!("--dbname={}", db.url))
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Newer pg_dump frames its output with a random `\restrict` key.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `pg_dump` beside the server binaries the sandbox uses (`PG_BIN`, else
/// the newest `/usr/lib/postgresql/*/bin`), else from `PATH`.
fn pg_dump() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return std::path::Path::new(&dir).join("pg_dump");
    }
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin/pg_dump"))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| "pg_dump".into())
}

/// Every row of a table, as text, in key order.
async fn data(conn: &Conn, table: &str) -> String {
    scalar(
        conn,
        &format!("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM {table} t"),
    )
    .await
}

/// Where each row physically is and which transaction wrote it: unchanged
/// means no row was rewritten.
async fn row_versions(conn: &Conn, table: &str) -> String {
    scalar(
        conn,
        &format!(
            "SELECT md5(string_agg(ctid::text || '/' || xmin::text, ',' ORDER BY id)) FROM {table}"
        ),
    )
    .await
}

/// Updates the statistics collector counted on a table.
async fn updates(conn: &Conn, table: &str) -> i64 {
    conn.client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .expect("clear the stats snapshot");
    scalar(
        conn,
        &format!("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = '{table}'"),
    )
    .await
}

async fn schema_exists(conn: &Conn, name: &str) -> bool {
    scalar(
        conn,
        &format!("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '{name}')"),
    )
    .await
}

/// A session of the new app version.
async fn new_app(db: &TestDb) -> Conn {
    let conn = connect(&db.url).await;
    conn.client
        .batch_execute("SET search_path = app_v2, public")
        .await
        .expect("set the new version's search_path");
    conn
}

/// Runs the plan until the irreversible phase's gate: the transition.
fn start(db: &TestDb, plan: &str) -> Running {
    let mut run = Running::spawn(&db.url, &["run", plan, "--json"]);
    run.wait_for("the contract gate", LONG, |v| {
        v["event"] == "gate_waiting" && v["irreversible"] == true
    });
    run
}

/// Aborts the waiting run and rolls the plan back.
fn roll_back(db: &TestDb, plan: &str, mut run: Running) {
    let (code, out, err) = cutover(&db.url, &["abort", plan]);
    assert_eq!(code, 0, "{out}{err}");
    // The journal says aborted once the event is out; the process itself
    // is not waited for (see the report: a stopped run lingers in this tree).
    run.wait_event("aborted", LONG);
    run.kill9();
    let (code, out, err) = cutover(&db.url, &["rollback", plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// Runs the plan again, through the irreversible phase.
fn complete(db: &TestDb, plan: &str) {
    let (code, out, err) = cutover(&db.url, &["run", plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_column_serves_both_versions_without_rewriting_a_row() {
    let db = seeded_db("versions_rename_column", 3_000).await;
    let admin = db.connect().await;
    let plan = shipped_plan("versions_rename_column.toml");
    let dump_before = schema_dump(&db);
    let rows_before = row_versions(&admin, "users").await;
    let updates_before = updates(&admin, "users").await;

    // start → check: both versions read and write at the same time.
    let run = start(&db, &plan);
    assert_eq!(row_versions(&admin, "users").await, rows_before);
    assert_eq!(updates(&admin, "users").await, updates_before);
    let old = db.connect().await;
    let new = new_app(&db).await;
    let old_writes = async {
        for i in 0..25 {
            old.client
                .execute(
                    "INSERT INTO users (name, email) VALUES ($1, $2)",
                    &[&format!("old {i}"), &format!("old{i}@example.com")],
                )
                .await
                .expect("the old app writes name");
        }
    };
    let new_writes = async {
        for i in 0..25 {
            new.client
                .execute(
                    "INSERT INTO users (full_name, email) VALUES ($1, $2)",
                    &[&format!("new {i}"), &format!("new{i}@example.com")],
                )
                .await
                .expect("the new app writes full_name");
        }
    };
    tokio::join!(old_writes, new_writes);
    new.client
        .execute(
            "UPDATE users SET full_name = 'renamed by v2' WHERE id = 1",
            &[],
        )
        .await
        .expect("the new app updates through its view");
    let seen_by_old: String = scalar(&old, "SELECT name FROM users WHERE id = 1").await;
    assert_eq!(seen_by_old, "renamed by v2");
    let new_rows_by_old: i64 =
        scalar(&old, "SELECT count(*) FROM users WHERE name LIKE 'new %'").await;
    assert_eq!(new_rows_by_old, 25);
    let old_rows_by_new: i64 = scalar(
        &new,
        "SELECT count(*) FROM users WHERE full_name LIKE 'old %'",
    )
    .await;
    assert_eq!(old_rows_by_new, 25);
    // Each version sees its own shape only.
    let e = new
        .client
        .query("SELECT name FROM users", &[])
        .await
        .expect_err("the new version has no name");
    assert_eq!(e.code().map(|c| c.code()), Some("42703"));
    let e = old
        .client
        .query("SELECT full_name FROM users", &[])
        .await
        .expect_err("the old version has no full_name");
    assert_eq!(e.code().map(|c| c.code()), Some("42703"));

    // rollback → check: the catalog as before, the data untouched.
    let data_before_rollback = data(&admin, "users").await;
    let versions_before_rollback = row_versions(&admin, "users").await;
    roll_back(&db, &plan, run);
    assert_eq!(schema_dump(&db), dump_before, "the catalog is as before");
    assert_eq!(data(&admin, "users").await, data_before_rollback);
    assert_eq!(
        row_versions(&admin, "users").await,
        versions_before_rollback,
        "the rollback rewrote no row"
    );
    assert!(!schema_exists(&admin, "app_v2").await);

    // start → complete → check: the column is renamed in place, and the
    // new version's view still works.
    let updates_before_complete = updates(&admin, "users").await;
    complete(&db, &plan);
    let physical: i64 = scalar(
        &admin,
        "SELECT count(*) FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'full_name'",
    )
    .await;
    assert_eq!(physical, 1, "the rename is physical");
    let new = new_app(&db).await;
    let through_view: String = scalar(&new, "SELECT full_name FROM users WHERE id = 1").await;
    assert_eq!(through_view, "renamed by v2");
    assert_eq!(
        row_versions(&admin, "users").await,
        versions_before_rollback,
        "completing rewrote no row"
    );
    assert_eq!(updates(&admin, "users").await, updates_before_complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_table_serves_both_versions_and_rolls_back_byte_for_byte() {
    let db = seeded_db("versions_rename_table", 2_000).await;
    let admin = db.connect().await;
    let plan = shipped_plan("versions_rename_table.toml");
    let dump_before = schema_dump(&db);
    let rows_before = row_versions(&admin, "users").await;

    let run = start(&db, &plan);
    let old = db.connect().await;
    let new = new_app(&db).await;
    let (a, b) = tokio::join!(
        old.client.execute(
            "INSERT INTO users (name, email) VALUES ('from v1', 'v1@example.com')",
            &[]
        ),
        new.client.execute(
            "INSERT INTO people (name, email) VALUES ('from v2', 'v2@example.com')",
            &[]
        ),
    );
    a.expect("the old app writes users");
    b.expect("the new app writes people");
    let in_people: i64 = scalar(
        &new,
        "SELECT count(*) FROM people WHERE name LIKE 'from v%'",
    )
    .await;
    let in_users: i64 = scalar(&old, "SELECT count(*) FROM users WHERE name LIKE 'from v%'").await;
    assert_eq!((in_people, in_users), (2, 2));
    let data_before_rollback = data(&admin, "users").await;
    roll_back(&db, &plan, run);
    assert_eq!(schema_dump(&db), dump_before);
    assert_eq!(data(&admin, "users").await, data_before_rollback);

    complete(&db, &plan);
    let renamed: i64 = scalar(&admin, "SELECT count(*) FROM public.people").await;
    assert_eq!(renamed, 2_002);
    let new = new_app(&db).await;
    let through_view: i64 = scalar(&new, "SELECT count(*) FROM people").await;
    assert_eq!(through_view, 2_002);
    let _ = rows_before;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_step_without_versions_names_the_table_to_add() {
    let db = seeded_db("versions_missing", 100).await;
    let (_dir, plan) = write_plan(
        r#"
name = "no versions"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "rename_column"
table = "users"
from = "name"
to = "full_name"
"#,
    );
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    let failed = run.wait_event("step_failed", LONG);
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("[versions]"), "{failed}");
}
