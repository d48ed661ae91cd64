//! Vacuum behind a backfill, on a real server: a pass frees the rewritten
//! rows' old versions, so the next batches reuse that space instead of
//! extending the table; a role that may not VACUUM is told why up front.

mod common;

use std::time::Duration;

use common::{PATIENCE, fresh_db, poll_until_async, scalar};
use cutover::engine::steps::vacuum_behind::{VacuumBehind, unavailable};
use tokio_util::sync::CancellationToken;

const ROWS: i64 = 20_000;

async fn heap_bytes(conn: &cutover::db::Conn) -> i64 {
    scalar(conn, "SELECT pg_relation_size('users')").await
}

/// Fills `users` (no free space left in its pages) and returns its size.
async fn full_table(conn: &cutover::db::Conn) -> i64 {
    conn.client
        .batch_execute(&format!(
            "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, full_name text);
             INSERT INTO users SELECT g, 'user ' || g FROM generate_series(1, {ROWS}) g;"
        ))
        .await
        .expect("table");
    // On its own: VACUUM refuses a multi-statement query (an implicit
    // transaction block).
    conn.client
        .batch_execute("VACUUM ANALYZE users")
        .await
        .expect("vacuum");
    heap_bytes(conn).await
}

async fn update_half(conn: &cutover::db::Conn, first: bool) {
    let range = if first {
        format!("id <= {}", ROWS / 2)
    } else {
        format!("id > {}", ROWS / 2)
    };
    conn.client
        .batch_execute(&format!(
            "UPDATE users SET full_name = name || ' (full)' WHERE {range}"
        ))
        .await
        .expect("update");
}

/// The sandbox's replica runs with `hot_standby_feedback`: until it next
/// reports (every `wal_receiver_status_interval`, 10 s), its xmin keeps
/// the rows just rewritten from being vacuumed. Waits until no replica
/// holds back the update just committed.
async fn replicas_past_the_update(conn: &cutover::db::Conn) {
    let xid: String = scalar(conn, "SELECT pg_current_xact_id()::text").await;
    let held = format!(
        "SELECT count(*) FROM pg_stat_replication
         WHERE backend_xmin IS NOT NULL AND age(backend_xmin) >= age('{xid}'::xid)"
    );
    poll_until_async(
        &format!("the replica's xmin to pass xid {xid}"),
        PATIENCE,
        async || scalar::<i64>(conn, &held).await == 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_batches_reuse_the_space_a_pass_frees() {
    // Without vacuum behind: each half of the rewrite extends the table
    // by about the same amount.
    let plain = fresh_db("vb_plain").await;
    let c = plain.connect().await;
    let start = full_table(&c).await;
    update_half(&c, true).await;
    let half = heap_bytes(&c).await;
    update_half(&c, false).await;
    let end = heap_bytes(&c).await;
    let first_growth = half - start;
    assert!(
        first_growth > start / 4,
        "the first half should extend the table: {start} → {half} bytes"
    );
    assert!(
        end - half > first_growth / 2,
        "without vacuum the second half extends it as much: {half} → {end} bytes"
    );

    // With a pass between the halves, the second half fits in the space
    // the pass freed.
    let db = fresh_db("vb_pass").await;
    let c = db.connect().await;
    let start = full_table(&c).await;
    let mut vacuum = VacuumBehind::open(&c, "users", CancellationToken::new(), 0)
        .await
        .expect("the owner may vacuum")
        .with_interval(Duration::ZERO);
    update_half(&c, true).await;
    replicas_past_the_update(&c).await;
    vacuum.tick(ROWS / 2).await.expect("a pass starts");
    assert!(vacuum.is_running(), "a pass is due after {} rows", ROWS / 2);
    vacuum.finish().await.expect("the pass succeeds");
    assert_eq!(vacuum.passes, 1);
    let half = heap_bytes(&c).await;
    update_half(&c, false).await;
    let end = heap_bytes(&c).await;
    assert!(
        half - start > start / 4,
        "the first half extends the table: {start} → {half} bytes"
    );
    // The new versions are longer than the old (full_name was NULL), so
    // the freed space holds only part of them; without the pass the second
    // half grows the table as much as the first.
    assert!(
        end - half < (half - start) / 2,
        "after the pass the second half should reuse the freed space: \
         {start} → {half} → {end} bytes"
    );
    let vacuums: i64 = scalar(
        &c,
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'users'",
    )
    .await;
    assert!(vacuums >= 2, "setup + the pass: {vacuums}");

    // Too few rows since the last pass: none starts.
    vacuum.tick(ROWS / 2 + 10).await.expect("tick");
    assert!(!vacuum.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_vacuum_is_told_why() {
    let db = fresh_db("vb_role").await;
    let c = db.connect().await;
    full_table(&c).await;
    let role = format!("vb_reader_{}", std::process::id());
    c.client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role}; GRANT SELECT, UPDATE ON users TO {role};
             SET ROLE {role}"
        ))
        .await
        .expect("role");
    let why = unavailable(&c, "users").await.expect("refused");
    assert!(
        why.contains(&role) && why.contains("may not VACUUM users"),
        "{why}"
    );
    assert!(
        VacuumBehind::open(&c, "users", CancellationToken::new(), 0)
            .await
            .is_err()
    );
    c.client
        .batch_execute(&format!(
            "RESET ROLE; DROP OWNED BY {role}; DROP ROLE {role}"
        ))
        .await
        .expect("drop role");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_plan_vacuums_behind_unless_told_not_to() {
    let db = common::seeded_db("vb_plan", 36_000).await;
    let plan = |vacuum: &str| {
        format!(
            "name = \"paced backfill\"\n[throttle]\nmax_rows_per_second = 3000\n\
             [[phases]]\nname = \"migrate\"\ngate = \"auto\"\n[[phases.steps]]\n\
             kind = \"backfill\"\ntable = \"users\"\nkey = \"id\"\nset = \"city = upper(city)\"\n{vacuum}"
        )
    };
    let conn = db.connect().await;
    let vacuums = "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'users'";
    let before: i64 = scalar(&conn, vacuums).await;
    // The default: 12 s at 3,000 rows/s, so a pass after 10 s.
    let (_dir, default) = common::write_plan(&plan(""));
    let (code, out, err) =
        common::process::cutover(&db.url, &["run", &default, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("vacuum passes behind it took"), "{out}");
    let after: i64 = scalar(&conn, vacuums).await;
    assert!(after > before, "vacuum_count {before} → {after}");
    // Turned off: no pass.
    conn.client
        .batch_execute("DROP SCHEMA cutover CASCADE")
        .await
        .expect("forget the run");
    let (_dir, off) = common::write_plan(&plan("vacuum_behind = false\n"));
    let (code, out, err) = common::process::cutover(&db.url, &["run", &off, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("rows updated"), "{out}");
    assert!(!out.contains("vacuum passes"), "{out}");
    assert_eq!(scalar::<i64>(&conn, vacuums).await, after);
}
