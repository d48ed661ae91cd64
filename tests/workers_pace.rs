//! Batched steps with `workers = N` under a pace (`max_rows_per_second`):
//! every worker gets its turn, and the open-ended last range finds its end
//! while the application inserts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::process::Running;
use common::{PATIENCE, poll_until_async, scalar, seeded_db, write_plan};

const ROWS: i64 = 40_000;

/// Four workers, held to a pace far below what the server can do, in
/// batches of a fixed size.
const PACED: &str = r#"
name = "paced workers"
[throttle]
max_rows_per_second = 4000
min_batch_size = 500
max_batch_size = 500
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "city = upper(city)"
batch_size = 500
workers = 4
"#;

/// Each worker's keys walked, and whether its bounded range is walked to
/// its upper key (none before the run has made its journal).
async fn lanes(conn: &cutover::db::Conn) -> Vec<(i64, bool)> {
    let ranges = conn
        .client
        .query(
            "SELECT rows_done, coalesce(last_key = hi, false) FROM cutover.step_ranges
             ORDER BY worker",
            &[],
        )
        .await;
    match ranges {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => vec![],
        Err(e) => panic!("read the ranges: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_workers_take_turns_instead_of_one_range_at_a_time() {
    let db = seeded_db("workers_turns", ROWS).await;
    let conn = db.connect().await;
    let (_dir, plan) = write_plan(PACED);
    let run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    // Stop looking once every worker has walked keys or a range is done.
    let mut seen = Vec::new();
    poll_until_async(
        "every worker started or a range done",
        PATIENCE,
        async || {
            seen = lanes(&conn).await;
            seen.len() == 4 && seen.iter().all(|(n, done)| *n > 0 || *done)
                || seen.iter().any(|(_, done)| *done)
        },
    )
    .await;
    assert!(
        seen.iter().all(|(n, _)| *n > 0),
        "every worker walked keys before any range was done: {seen:?}"
    );
    let (code, lines) = run.wait_exit(PATIENCE);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let walked: i64 = scalar(&conn, "SELECT rows_done FROM cutover.steps").await;
    assert_eq!(walked, ROWS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_workers_finish_while_the_application_inserts() {
    let db = seeded_db("workers_inserts", ROWS).await;
    let conn = db.connect().await;
    let app = db.connect().await;
    let stop = Arc::new(AtomicBool::new(false));
    let inserting = stop.clone();
    // About a hundred new keys a second at the end of the key, each after
    // the last worker's range started.
    let inserter = tokio::spawn(async move {
        let mut inserted = 0i64;
        while !inserting.load(Ordering::Relaxed) {
            app.client
                .execute(
                    "INSERT INTO users (name, email) VALUES ('app', 'app@example.com')",
                    &[],
                )
                .await
                .expect("the application's insert");
            inserted += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        inserted
    });
    let (_dir, plan) = write_plan(PACED);
    let run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    let (code, lines) = run.wait_exit(PATIENCE);
    stop.store(true, Ordering::Relaxed);
    let inserted = inserter.await.expect("the inserter ended");
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(inserted > 0, "the application inserted while the step ran");
    let left: i64 = scalar(
        &conn,
        &format!("SELECT count(*) FROM users WHERE id <= {ROWS} AND city <> upper(city)"),
    )
    .await;
    assert_eq!(left, 0, "every row there when the step started was updated");
}
