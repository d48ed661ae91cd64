//! Helpers for the version-schema tests: the catalog as `pg_dump` shows
//! it, the data and row versions of a table, the two application versions'
//! sessions, and pgroll's lifecycle (start, roll back, complete) driven
//! through the real binary.

use std::time::Duration;

use super::process::{Running, cutover};
use super::{PATIENCE, TestDb, connect, scalar};
use cutover::db::Conn;

/// The seeded table as the old version sees it (hidden columns left out),
/// for [`data`].
pub const OLD_SHAPE: &str =
    "(SELECT id, name, email, age, street, city, country, created_at FROM users)";

/// How long a lifecycle step may take on a loaded machine.
pub const LONG: Duration = PATIENCE;

/// Every row of a table, as text, in key order.
pub async fn data(conn: &Conn, table: &str) -> String {
    scalar(
        conn,
        &format!("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM {table} t"),
    )
    .await
}

/// Where each row physically is and which transaction wrote it: unchanged
/// means no row was rewritten.
pub async fn row_versions(conn: &Conn, table: &str) -> String {
    scalar(
        conn,
        &format!(
            "SELECT md5(string_agg(ctid::text || '/' || xmin::text, ',' ORDER BY id)) FROM {table}"
        ),
    )
    .await
}

/// Updates the statistics collector counted on a table.
pub async fn updates(conn: &Conn, table: &str) -> i64 {
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

/// Whether a schema exists.
pub async fn schema_exists(conn: &Conn, name: &str) -> bool {
    scalar(
        conn,
        &format!("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '{name}')"),
    )
    .await
}

/// A session of the new app version.
pub async fn new_app(db: &TestDb) -> Conn {
    let conn = connect(&db.url).await;
    conn.client
        .batch_execute("SET search_path = app_v2, public")
        .await
        .expect("set the new version's search_path");
    conn
}

/// Runs the plan until the irreversible phase's gate: the transition.
pub fn start(db: &TestDb, plan: &str) -> Running {
    let mut run = Running::spawn(&db.url, &["run", plan, "--json"]);
    run.wait_for("the contract gate", LONG, |v| {
        v["event"] == "gate_waiting" && v["irreversible"] == true
    });
    run
}

/// Aborts the waiting run and rolls the plan back.
pub fn roll_back(db: &TestDb, plan: &str, mut run: Running) {
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
pub fn complete(db: &TestDb, plan: &str) {
    let (code, out, err) = cutover(&db.url, &["run", plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// A column's type, and NOT NULL when it is.
pub async fn column_type(conn: &Conn, table: &str, column: &str) -> String {
    scalar(
        conn,
        &format!(
            "SELECT format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END
             FROM pg_attribute WHERE attrelid = 'public.{table}'::regclass AND attname = '{column}'
             AND NOT attisdropped"
        ),
    )
    .await
}

/// Hidden columns, write-rule triggers, constraints and indexes cutover
/// made for a version; 0 when none is left.
pub async fn hidden_objects(conn: &Conn) -> i64 {
    scalar(
        conn,
        "SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.users'::regclass
                 AND attname LIKE '\\_cutover\\_%' AND NOT attisdropped)
              + (SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\\_cutover\\_%')
              + (SELECT count(*) FROM pg_constraint WHERE conname LIKE '\\_cutover\\_%')
              + (SELECT count(*) FROM pg_class WHERE relname LIKE '\\_cutover\\_%')",
    )
    .await
}
