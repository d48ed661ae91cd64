//! Batched steps with `workers = N`: every key walked exactly once by
//! disjoint ranges, through a kill, a terminated worker session and a
//! pause, for backfills and copies.

mod common;

use std::time::Duration;

use common::process::{Running, cutover, events};
use common::{
    PATIENCE, count_and_slow, count_and_slow_by, poll_until_async, scalar, seeded_db, write_plan,
};

const LONG: Duration = PATIENCE;
const ROWS: i64 = 200_000;

/// A backfill on four workers that touches every row once.
const FOUR_WORKERS: &str = r#"
name = "touch every row on four workers"
[throttle]
max_batch_size = 2000
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "city = upper(city)"
batch_size = 1000
workers = 4
"#;

fn progress_past(rows: i64) -> impl Fn(&serde_json::Value) -> bool {
    move |v| v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) >= rows
}

fn notice(starting: &'static str) -> impl Fn(&serde_json::Value) -> bool {
    move |v| v["event"] == "notice" && v["message"].as_str().is_some_and(|m| m.contains(starting))
}

async fn touched_exactly_once(conn: &cutover::db::Conn, rows: i64) {
    let other: i64 = scalar(conn, "SELECT count(*) FROM users WHERE touches <> 1").await;
    assert_eq!(other, 0, "rows updated twice or never");
    let once: i64 = scalar(conn, "SELECT count(*) FROM users WHERE touches = 1").await;
    assert_eq!(once, rows);
}

/// Each worker's range (lo, hi) and checkpoint (last key, keys walked).
type Ranges = Vec<(Option<String>, Option<String>, Option<String>, i64)>;

async fn ranges(conn: &cutover::db::Conn) -> Ranges {
    conn.client
        .query(
            "SELECT lo, hi, last_key, rows_done FROM cutover.step_ranges ORDER BY worker",
            &[],
        )
        .await
        .expect("read the ranges")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// The split alone: each range's bounds.
fn split(r: &Ranges) -> Vec<(Option<String>, Option<String>)> {
    r.iter()
        .map(|(lo, hi, _, _)| (lo.clone(), hi.clone()))
        .collect()
}

async fn step_rows_done(conn: &cutover::db::Conn) -> i64 {
    scalar(conn, "SELECT rows_done FROM cutover.steps").await
}

/// The ranges chain from the start of the key to its end, and the workers'
/// keys add up to the step's.
fn assert_chained(r: &Ranges, total: i64) {
    assert_eq!(r.len(), 4, "four ranges: {r:?}");
    assert_eq!(r[0].0, None, "the first range starts at the first key");
    assert_eq!(r[3].1, None, "the last range is open-ended");
    for w in r.windows(2) {
        assert_eq!(
            w[0].1, w[1].0,
            "ranges meet without a gap or overlap: {r:?}"
        );
    }
    assert!(
        r.iter().all(|(_, _, _, n)| *n > 0),
        "every worker walked keys: {r:?}"
    );
    assert_eq!(r.iter().map(|x| x.3).sum::<i64>(), total, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_touch_every_row_exactly_once() {
    let db = seeded_db("workers_once", ROWS).await;
    let conn = db.connect().await;
    conn.client.batch_execute(&count_and_slow()).await.unwrap();
    let (_dir, plan) = write_plan(FOUR_WORKERS);
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let evs = events(&out.lines().map(str::to_string).collect::<Vec<_>>());
    assert!(
        evs.iter().any(notice("4 workers on 4 key ranges")),
        "the split was announced:\n{out}"
    );
    touched_exactly_once(&conn, ROWS).await;
    assert_eq!(step_rows_done(&conn).await, ROWS);
    assert_chained(&ranges(&conn).await, ROWS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_resume_after_kill_on_the_same_split_exactly_once() {
    let db = seeded_db("workers_kill", ROWS).await;
    let conn = db.connect().await;
    conn.client.batch_execute(&count_and_slow()).await.unwrap();
    let (_dir, plan) = write_plan(FOUR_WORKERS);
    let mut first = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    first.wait_for("backfill progress", LONG, progress_past(20_000));
    first.kill9();
    let before = ranges(&conn).await;
    let done = step_rows_done(&conn).await;
    assert!(
        (20_000..ROWS).contains(&done),
        "killed mid-backfill: {done} keys done"
    );
    assert_eq!(before.iter().map(|x| x.3).sum::<i64>(), done, "{before:?}");
    // The plan now asks for two workers: the recorded split still wins.
    let (_dir2, plan2) = write_plan(&FOUR_WORKERS.replace("workers = 4", "workers = 2"));
    let (code, out, err) = cutover(&db.url, &["run", &plan2, "--yes", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let evs = events(&out.lines().map(str::to_string).collect::<Vec<_>>());
    assert!(
        evs.iter()
            .any(|e| e["event"] == "run_started" && e["resumed"] == true),
        "{out}"
    );
    assert!(
        !evs.iter()
            .filter(|e| e["event"] == "progress")
            .any(|e| e["rows_done"].as_i64().unwrap_or(0) < done),
        "the second run started over:\n{out}"
    );
    let after = ranges(&conn).await;
    assert_eq!(split(&after), split(&before), "the split never changes");
    touched_exactly_once(&conn, ROWS).await;
    assert_eq!(step_rows_done(&conn).await, ROWS);
    assert_chained(&after, ROWS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_worker_session_reconnects_and_finishes_exactly_once() {
    let db = seeded_db("workers_terminated", ROWS).await;
    let conn = db.connect().await;
    // Batches of 0.3 s at least: the test can catch one in flight.
    conn.client
        .batch_execute(&count_and_slow_by(0.3))
        .await
        .unwrap();
    let (_dir, plan) = write_plan(&FOUR_WORKERS.replace(
        "max_batch_size = 2000",
        "max_batch_size = 2000\ntarget_batch_time = \"5s\"",
    ));
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for("backfill progress", LONG, progress_past(10_000));
    // A worker's session, caught in its batch's UPDATE (only workers run
    // it), terminated there.
    poll_until_async(
        "a worker's session terminated mid-batch",
        LONG,
        async || {
            scalar::<Option<bool>>(
                &conn,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND state = 'active'
               AND query LIKE 'UPDATE \"users\" SET city%'
             LIMIT 1",
            )
            .await
            .unwrap_or(false)
        },
    )
    .await;
    run.wait_for("the worker's reconnect", LONG, notice("reconnected"));
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l.contains("session was lost")),
        "the lost session was reported:\n{}",
        lines.join("\n")
    );
    touched_exactly_once(&conn, ROWS).await;
    assert_eq!(step_rows_done(&conn).await, ROWS);
}

/// Batches still inside their transaction (their UPDATE, slowed by the
/// test's trigger, or before their COMMIT).
const IN_FLIGHT: &str = "SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND state IN ('active', 'idle in transaction') AND query LIKE 'UPDATE \"users\" SET city%'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_stops_every_worker_at_a_batch_boundary() {
    let rows = 40_000;
    let db = seeded_db("workers_pause", rows).await;
    let conn = db.connect().await;
    // Batches of a second: a pause arrives while every worker is mid-batch.
    conn.client
        .batch_execute(&count_and_slow_by(1.0))
        .await
        .unwrap();
    let (_dir, plan) = write_plan(&FOUR_WORKERS.replace(
        "max_batch_size = 2000",
        "max_batch_size = 2000\ntarget_batch_time = \"5s\"",
    ));
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for("backfill progress", LONG, progress_past(4_000));
    let (code, out, err) = cutover(&db.url, &["pause", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    run.wait_for(
        "every worker stopped",
        LONG,
        notice("workers stopped at a batch boundary"),
    );
    // Acknowledged only once no batch is in flight.
    let in_flight: i64 = scalar(&conn, IN_FLIGHT).await;
    assert_eq!(
        in_flight, 0,
        "a batch was still running when the pause was acknowledged"
    );
    let status: String = scalar(&conn, "SELECT status FROM cutover.runs").await;
    assert_eq!(status, "paused");
    let first = (ranges(&conn).await, step_rows_done(&conn).await);
    assert!(first.1 < rows, "paused mid-backfill");
    // Another terminal looks at the run; nothing has moved meanwhile.
    let (code, out, err) = cutover(&db.url, &["status", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let second = (ranges(&conn).await, step_rows_done(&conn).await);
    assert_eq!(first, second, "a checkpoint moved while paused");
    let (code, out, err) = cutover(&db.url, &["resume", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    touched_exactly_once(&conn, rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_rows_on_three_workers_copies_every_row_once() {
    let rows = 30_000;
    let db = seeded_db("workers_copy", rows).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute(
            "CREATE TABLE copy (id bigint PRIMARY KEY, city text);
             CREATE TABLE offered (id bigint);
             CREATE FUNCTION record_offer() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN INSERT INTO offered VALUES (NEW.id); RETURN NEW; END $$;
             CREATE TRIGGER record_offer BEFORE INSERT ON copy
                 FOR EACH ROW EXECUTE FUNCTION record_offer();",
        )
        .await
        .unwrap();
    let (_dir, plan) = write_plan(
        r#"
name = "copy users on three workers"
[throttle]
max_batch_size = 1000
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "copy_rows"
from = "users"
to = "copy"
key = "id"
columns = { id = "id", city = "city" }
batch_size = 500
workers = 3
"#,
    );
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let (offered, distinct): (i64, i64) = {
        let r = conn
            .client
            .query_one("SELECT count(*), count(DISTINCT id) FROM offered", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((offered, distinct), (rows, rows), "each row offered once");
    let wrong: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users u FULL JOIN copy c USING (id)
         WHERE c.city IS DISTINCT FROM u.city",
    )
    .await;
    assert_eq!(wrong, 0, "every row copied as it is");
    let workers: i64 = scalar(&conn, "SELECT count(*) FROM cutover.step_ranges").await;
    assert_eq!(workers, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_stops_every_worker_and_a_later_run_finishes_exactly_once() {
    let db = seeded_db("workers_abort", ROWS).await;
    let conn = db.connect().await;
    conn.client.batch_execute(&count_and_slow()).await.unwrap();
    let (_dir, plan) = write_plan(FOUR_WORKERS);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for("backfill progress", LONG, progress_past(10_000));
    let (code, out, err) = cutover(&db.url, &["abort", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 3, "aborted runs exit 3:\n{}", lines.join("\n"));
    // Every batch that committed is in its worker's checkpoint, and no
    // batch outlived the run.
    let in_flight: i64 = scalar(&conn, IN_FLIGHT).await;
    assert_eq!(in_flight, 0);
    let (status, done): (String, i64) = {
        let r = conn
            .client
            .query_one("SELECT status, rows_done FROM cutover.steps", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, "running", "the step keeps its checkpoints");
    let touched: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE touches = 1").await;
    assert_eq!(
        touched, done,
        "touched rows are exactly the checkpointed keys"
    );
    assert!(done < ROWS, "stopped mid-backfill");
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    touched_exactly_once(&conn, ROWS).await;
    assert_eq!(step_rows_done(&conn).await, ROWS);
}
