//! `cutover set`: a running backfill's pace and limits change from another
//! terminal, validated like the plan file, journalled with who did it.

mod common;

use std::time::Duration;

use common::process::{Running, cutover};
use common::{PATIENCE, scalar, seeded_db, write_plan};

const PACED: &str = r#"
name = "paced fill"
[throttle]
max_rows_per_second = 4000
min_batch_size = 100
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "city = 'set'"
"#;

async fn rows_done(conn: &cutover::db::Conn) -> i64 {
    scalar(
        conn,
        "SELECT coalesce(max(rows_done), 0) FROM cutover.steps",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_changes_a_running_backfills_pace_and_the_progress_follows() {
    let db = seeded_db("live_set", 60_000).await;
    let conn = db.connect().await;
    let (dir, plan) = write_plan(PACED);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_for("some batches", PATIENCE, |v| {
        v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) > 1_000
    });
    // A value the plan file would refuse is refused, and nothing is sent.
    let (code, _, err) = cutover(&db.url, &["set", &plan, "max_rows_per_second=fast"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("max_rows_per_second=fast"), "{err}");
    let (code, _, err) = cutover(&db.url, &["set", &plan, "replication_lag=5s"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("abort.replication_lag"), "{err}");
    let sent: i64 = scalar(&conn, "SELECT count(*) FROM cutover.commands").await;
    assert_eq!(sent, 0);
    // Down to one row a second: the smallest batch (100 rows) then waits
    // 100 s for the next, so the keys walked stop moving.
    let (code, out, err) = cutover(&db.url, &["set", &plan, "max_rows_per_second=1"]);
    assert_eq!(code, 0, "{out}{err}");
    run.wait_for("the change applied", PATIENCE, |v| {
        v["event"] == "setting_changed" && v["key"] == "max_rows_per_second" && v["new"] == "1"
    });
    // Let a batch already under way commit, then nothing more may.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rows_done(&conn).await;
    let mut later = before;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        later = rows_done(&conn).await;
    }
    assert!(
        later - before <= 200,
        "the pace did not follow: {before} → {later} keys at 1 row/s"
    );
    // Lifted: the run goes on to the end.
    let (code, out, err) = cutover(
        &db.url,
        &["set", &plan, "max_rows_per_second=off", "batch_size=auto"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, lines) = run.wait_exit(PATIENCE);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let filled: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE city = 'set'").await;
    assert_eq!(filled, 60_000);
    // Journalled: the old and new value and the role.
    let line: String = scalar(
        &conn,
        "SELECT message FROM cutover.events WHERE message LIKE 'max_rows_per_second changed from 4000 to 1%'",
    )
    .await;
    assert!(line.contains("role postgres"), "{line}");
    drop(dir);
}
