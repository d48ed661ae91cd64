//! A replica the run has seen that goes away for good: under a replication
//! limit the run holds (it cannot measure what it cannot see), says which
//! replica and since when, until the operator releases it deliberately; an
//! `[abort]` limit trips once the lost replica's lag lower bound passes it.
//!
//! Its own test binary: the sandbox's replica is cut off from its primary
//! here, which would disturb any other test using it.

mod common;

use std::time::Duration;

use common::process::{Running, cutover};
use common::{PATIENCE, TestDb, holds_throughout, poll_until_async, scalar, write_plan};
use serde_json::Value;

/// One test at a time drives the shared replica.
static REPLICA: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The replica's own `primary_conninfo`, kept when a test clears it.
static CONNINFO: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

const ROWS: i64 = 30_000;

fn plan(limits: &str) -> String {
    format!(
        r#"
name = "fill city"
{limits}
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "city = 'filled'"
batch_size = 500
"#
    )
}

/// Waits until the primary sees `replica1` streaming.
async fn replica_streaming(primary: &cutover::db::Conn) {
    poll_until_async("replica1 streaming", PATIENCE, async || {
        let n: i64 = scalar(
            primary,
            "SELECT count(*) FROM pg_stat_replication
             WHERE application_name = 'replica1' AND state = 'streaming'",
        )
        .await;
        n == 1
    })
    .await;
}

/// Cuts the replica off from its primary for good: no primary to stream
/// from, and its WAL receiver stopped.
async fn lose_replica(db: &TestDb, primary: &cutover::db::Conn) {
    let replica = db.connect_replica().await;
    let conninfo: String = scalar(&replica, "SHOW primary_conninfo").await;
    assert!(!conninfo.is_empty(), "the replica streams from a primary");
    if let Ok(mut saved) = CONNINFO.lock() {
        saved.get_or_insert(conninfo);
    }
    replica
        .client
        .batch_execute("ALTER SYSTEM SET primary_conninfo = ''")
        .await
        .expect("clear primary_conninfo on the replica");
    replica
        .client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .expect("reload the replica");
    poll_until_async(
        "replica1 to leave pg_stat_replication",
        PATIENCE,
        async || {
            let n: i64 = scalar(
                primary,
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'replica1'",
            )
            .await;
            n == 0
        },
    )
    .await;
}

/// Lets the sandbox's replica stream again (a test before this one may
/// have cut it off, and failed before it restored it).
async fn restore_replica() {
    let (primary_url, replica_url) = common::sandbox_urls();
    let replica_url = replica_url.as_deref().expect("the sandbox has a replica");
    let primary = common::connect(primary_url).await;
    let replica = common::connect(replica_url).await;
    let saved = CONNINFO.lock().ok().and_then(|s| s.clone());
    if let Some(conninfo) = saved {
        replica
            .client
            .batch_execute(&format!(
                "ALTER SYSTEM SET primary_conninfo = {}",
                cutover::db::quote_literal(&conninfo)
            ))
            .await
            .expect("restore primary_conninfo");
    }
    replica
        .client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .expect("reload the replica");
    replica_streaming(&primary).await;
}

async fn rows_done(conn: &cutover::db::Conn) -> i64 {
    scalar(
        conn,
        "SELECT coalesce(max(rows_done), 0) FROM cutover.steps",
    )
    .await
}

fn progress_past(rows: i64) -> impl Fn(&Value) -> bool {
    move |v| v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) >= rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_replica_holds_the_run_until_it_is_released() {
    let _turn = REPLICA.lock().await;
    restore_replica().await;
    let db = common::seeded_db_with_replica("lost_release", ROWS).await;
    let conn = db.connect().await;
    replica_streaming(&conn).await;
    conn.client
        .batch_execute(&common::slow_batches(0.2))
        .await
        .unwrap();
    let (dir, plan_path) = write_plan(&plan(
        "[throttle]\nreplication_lag = \"10min\"\nmax_batch_size = 500",
    ));
    let mut run = Running::spawn(&db.url, &["run", &plan_path, "--yes", "--json"]);
    // The run has seen the replica by the time batches go.
    run.wait_for("some batches", PATIENCE, progress_past(1_000));
    lose_replica(&db, &conn).await;
    let held = run.wait_for("the hold on the lost replica", PATIENCE, |v| {
        v["event"] == "throttled"
            && v["reason"]
                .as_str()
                .is_some_and(|r| r.contains("replica replica1 gone since"))
    });
    let reason = held["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("holding"), "{reason}");
    // Batches are held before they start: from the event on, none commits.
    let at_hold = rows_done(&conn).await;
    assert!(at_hold < ROWS, "the backfill was still under way");
    holds_throughout(
        "no batch committing while the replica is gone",
        Duration::from_secs(3),
        async || rows_done(&conn).await == at_hold,
    )
    .await;
    let (code, out, err) = cutover(&db.url, &["release-replica", &plan_path, "replica1"]);
    assert_eq!(code, 0, "{out}{err}");
    run.wait_event("replica_released", PATIENCE);
    let (code, lines) = run.wait_exit(PATIENCE);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let filled: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE city = 'filled'").await;
    assert_eq!(filled, ROWS, "the run finished its backfill");
    let journalled: i64 = scalar(
        &conn,
        "SELECT count(*) FROM cutover.events
         WHERE data->>'event' = 'replica_released' AND data->>'replica' = 'replica1'
           AND data->>'by' LIKE '%role postgres%'",
    )
    .await;
    assert_eq!(journalled, 1, "the release is in cutover.events");
    let command: (String, String, String) = {
        let r = conn
            .client
            .query_one(
                "SELECT command, coalesce(argument, ''), sent_by::text FROM cutover.commands",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(
        command,
        (
            "release_replica".to_string(),
            "replica1".to_string(),
            "postgres".to_string()
        ),
        "the release is in cutover.commands with its role"
    );
    restore_replica().await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_replica_trips_the_abort_lag_limit() {
    let _turn = REPLICA.lock().await;
    restore_replica().await;
    let db = common::seeded_db_with_replica("lost_abort", ROWS).await;
    let conn = db.connect().await;
    replica_streaming(&conn).await;
    conn.client
        .batch_execute(&common::slow_batches(0.2))
        .await
        .unwrap();
    let (dir, plan_path) = write_plan(&plan(
        "[throttle]\nmax_batch_size = 500\n[abort]\nreplication_lag = \"5s\"",
    ));
    let mut run = Running::spawn(&db.url, &["run", &plan_path, "--yes", "--json"]);
    run.wait_for("some batches", PATIENCE, progress_past(1_000));
    lose_replica(&db, &conn).await;
    let (code, lines) = run.wait_exit(PATIENCE);
    assert_eq!(code, 3, "{}", lines.join("\n"));
    let evs = common::process::events(&lines);
    let trip = evs
        .iter()
        .find(|e| e["event"] == "criterion_tripped")
        .unwrap_or_else(|| panic!("no criterion_tripped event:\n{}", lines.join("\n")));
    assert_eq!(trip["criterion"], "replication_lag", "{trip}");
    assert!(
        trip["limit"]
            .as_str()
            .is_some_and(|l| l == "5s" || l == "5.0s"),
        "{trip}"
    );
    let (status, reason): (String, String) = {
        let r = conn
            .client
            .query_one("SELECT status, coalesce(reason, '') FROM cutover.runs", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, "aborted");
    assert!(reason.contains("replication_lag"), "{reason}");
    let filled: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE city = 'filled'").await;
    assert!(filled < ROWS, "aborted mid-backfill");
    restore_replica().await;
    drop(dir);
}
