//! Monitors, throttling, dynamic batches and abort criteria, on the
//! sandbox's primary and streaming replica.

mod common;

use std::time::Duration;

use common::app::Writer;
use common::locks::{wait_for_lock_wait, wait_until_blocked_by};
use common::process::{Running, cutover, events};
use common::{
    PATIENCE, connect, holds_throughout, poll_until_async, scalar, seeded_db,
    seeded_db_with_replica, slow_batches, write_plan,
};
use cutover::monitor::{Focus, Sampler};
use serde_json::Value;

const LONG: Duration = PATIENCE;

/// Replication lag is a property of the whole cluster, not of one test's
/// database: tests here pause replay or produce heavy WAL, so they take
/// turns.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Slows every batch by 50 ms so the backfill lasts long enough to act on.
fn slow() -> String {
    slow_batches(0.05)
}

fn backfill_plan(extra: &str) -> String {
    format!(
        r#"
name = "watched backfill"
{extra}
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "email = upper(email)"
batch_size = 2000
"#
    )
}

fn is(event: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["event"] == event
}

async fn rows_done(conn: &cutover::db::Conn) -> i64 {
    scalar(conn, "SELECT rows_done FROM cutover.steps").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_on_replica_lag() {
    let _turn = CLUSTER.lock().await;
    let db = seeded_db_with_replica("throttle_lag", 300_000).await;
    let conn = db.connect().await;
    conn.client.batch_execute(&slow()).await.unwrap();
    let replica = db.connect_replica().await;
    let (_dir, plan) = write_plan(&backfill_plan(
        "[throttle]\nreplication_lag = \"1s\"\nreplication_lag_bytes = \"256kB\"\nmax_batch_size = 2000",
    ));
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for("progress", LONG, |v| {
        v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) > 0
    });
    replica
        .client
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let throttled = run.wait_for("throttled", LONG, is("throttled"));
    let reason = throttled["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("replica replica1"), "{reason}");
    // Batches are held before they start: from the event on, none commits.
    let held = rows_done(&conn).await;
    holds_throughout(
        "no batch committing while throttled",
        Duration::from_secs(2),
        async || rows_done(&conn).await == held,
    )
    .await;
    replica
        .client
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    run.wait_for("unthrottled", LONG, is("unthrottled"));
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let upper: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users WHERE email = upper(email)",
    )
    .await;
    assert_eq!(upper, 300_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_on_replica_lag() {
    let _turn = CLUSTER.lock().await;
    let db = seeded_db_with_replica("abort_lag", 300_000).await;
    let conn = db.connect().await;
    conn.client.batch_execute(&slow()).await.unwrap();
    let replica = db.connect_replica().await;
    let (_dir, plan) = write_plan(&backfill_plan(
        "[throttle]\nmax_batch_size = 2000\n[abort]\nreplication_lag_bytes = \"4MB\"",
    ));
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for("progress", LONG, |v| {
        v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) > 0
    });
    replica
        .client
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 3, "{}", lines.join("\n"));
    let evs = events(&lines);
    let trip = evs
        .iter()
        .find(|e| e["event"] == "criterion_tripped")
        .expect("criterion_tripped event");
    assert_eq!(trip["criterion"], "replication_lag_bytes");
    assert_eq!(trip["limit"], "4.0 MB");
    assert!(trip["value"].as_str().unwrap().ends_with("B"), "{trip}");
    let (status, reason): (String, String) = {
        let r = conn
            .client
            .query_one("SELECT status, reason FROM cutover.runs", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, "aborted");
    assert!(
        reason.contains("replication_lag_bytes") && reason.contains("4.0 MB"),
        "{reason}"
    );
    replica
        .client
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    // Let the replica catch up, then the same plan finishes.
    poll_until_async("the replica to catch up", LONG, async || {
        let behind: i64 = scalar(
            &conn,
            "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint FROM pg_stat_replication",
        )
        .await;
        behind < 100_000
    })
    .await;
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let upper: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users WHERE email = upper(email)",
    )
    .await;
    assert_eq!(upper, 300_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_on_blocked_sessions() {
    let _turn = CLUSTER.lock().await;
    let db = seeded_db_with_replica("abort_blocked", 1_000).await;
    let holder = db.connect().await;
    holder
        .client
        .batch_execute("BEGIN; SELECT count(*) FROM users;")
        .await
        .unwrap();
    let (_dir, plan) = write_plan(
        r#"
name = "blocked ddl"
[settings]
lock_timeout = "10min"
lock_retries = 1
[abort]
blocked_sessions = 1
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN x int"
rollback = "ALTER TABLE users DROP COLUMN x"
"#,
    );
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_event("step_started", LONG);
    // Wait until our ALTER is queued on the lock, then put readers behind it.
    let watcher = db.connect().await;
    wait_for_lock_wait(&watcher, "a.query LIKE 'ALTER TABLE users ADD COLUMN x%'").await;
    let mut readers = Vec::new();
    for _ in 0..2 {
        let url = db.url.clone();
        readers.push(tokio::spawn(async move {
            let c = connect(&url).await;
            c.client
                .query_one("SELECT count(*) FROM users", &[])
                .await
                .is_ok()
        }));
    }
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 3, "{}", lines.join("\n"));
    let evs = events(&lines);
    let trip = evs
        .iter()
        .find(|e| e["event"] == "criterion_tripped")
        .expect("criterion_tripped");
    assert_eq!(trip["criterion"], "blocked_sessions");
    assert_eq!(trip["value"], "2");
    assert_eq!(trip["limit"], "1");
    // The abort cancelled the ALTER: its lock_timeout (ten minutes) never
    // ran out, and the readers got through while the holder's transaction
    // is still open.
    assert!(
        !evs.iter().any(|e| e["event"] == "retry"),
        "the ALTER timed out instead of being cancelled:\n{}",
        lines.join("\n")
    );
    for r in readers {
        let read = tokio::time::timeout(LONG, r)
            .await
            .expect("reader still blocked after the abort")
            .expect("reader task");
        assert!(read, "the reader's query failed");
    }
    let holding: String = scalar(
        &watcher,
        &format!(
            "SELECT state FROM pg_stat_activity WHERE pid = {}",
            holder.pid()
        ),
    )
    .await;
    assert_eq!(holding, "idle in transaction", "the holder still holds");
    holder.client.batch_execute("COMMIT").await.unwrap();
}

/// `max_rows_per_second` paces batches: each holds at most a twentieth of
/// a second's rows, and the backfill is never ahead of the pace. Checked
/// against the run's own events, so a slow machine only makes the run
/// fall further behind the pace, never fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rows_per_second_paces_the_backfill() {
    let _turn = CLUSTER.lock().await;
    let db = seeded_db("paced", 40_000).await;
    let (_dir, plan) = write_plan(&backfill_plan("[throttle]\nmax_rows_per_second = 20000"));
    let (code, lines) = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]).wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let evs = events(&lines);
    // The plan starts at 2,000 rows a batch; the pace caps it at 1,000.
    const SLICE: i64 = 1_000;
    let sizes: Vec<i64> = evs
        .iter()
        .filter(|e| e["event"] == "progress")
        .filter_map(|e| e["batch_size"].as_i64())
        .collect();
    assert!(
        sizes.iter().all(|n| *n <= SLICE),
        "a batch over a twentieth of a second's rows: {sizes:?}"
    );
    let finished = evs
        .iter()
        .find(|e| e["event"] == "step_finished")
        .expect("step_finished");
    let detail = finished["detail"].as_str().unwrap_or_default();
    let batches = number_before(detail, " batches").expect("batch count in the detail");
    assert!(batches >= 40_000 / SLICE, "{detail}");
    // Never ahead of the pace: by each report, at most the first batch plus
    // 20,000 rows per second since the step started (the reports' clock
    // has millisecond steps: one more batch of slack).
    let at = |e: &Value| {
        humantime::parse_rfc3339(e["at"].as_str().unwrap_or_default()).expect("event time")
    };
    let started = at(evs
        .iter()
        .find(|e| e["event"] == "step_started")
        .expect("step_started"));
    for e in evs
        .iter()
        .filter(|e| e["event"] == "progress" || e["event"] == "step_finished")
    {
        let done = e["rows_done"].as_i64().unwrap_or(40_000);
        let since = at(e).duration_since(started).unwrap_or_default();
        let allowed = 2 * SLICE + (20_000.0 * since.as_secs_f64()) as i64;
        assert!(done <= allowed, "ahead of the pace: {e}");
    }
    let said: Vec<String> = evs
        .iter()
        .filter_map(|e| e["throttle"].as_str().map(str::to_string))
        .collect();
    assert!(
        said.iter()
            .any(|t| t == "paced: ≤ 20000 rows/s (max_rows_per_second)"),
        "{said:?}"
    );
    let conn = db.connect().await;
    let upper: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users WHERE email = upper(email)",
    )
    .await;
    assert_eq!(upper, 40_000, "the backfill completed");
}

/// The number just before `suffix` in `text`.
fn number_before(text: &str, suffix: &str) -> Option<i64> {
    let head = &text[..text.find(suffix)?];
    let digits: String = head
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().ok()
}

/// Gentle mode's ceiling in a progress line's throttle reason
/// ("gentle: probe p95 … pacing ≤ N rows/s").
fn gentle_ceiling(v: &Value) -> Option<i64> {
    let reason = v["throttle"].as_str()?.strip_prefix("gentle: probe p95 ")?;
    number_before(reason, " rows/s")
}

/// Gentle mode paces the backfill by the canary probe, while the
/// application keeps writing: over budget it cuts its ceiling and says so;
/// within budget it runs the backfill to the end. Bounded work: the run
/// over budget is aborted once a cut shows, and the rest is done within
/// budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gentle_mode_paces_by_the_probe() {
    let _turn = CLUSTER.lock().await;
    const ROWS: i64 = 50_000;
    let db = seeded_db("gentle", ROWS).await;
    let conn = db.connect().await;
    // Slow batches (at most 2,000 rows/s in batches of the minimum 100
    // rows): the table lasts well past the probe's second time over budget.
    conn.client
        .batch_execute(&slow_batches(0.05))
        .await
        .unwrap();
    let writer = Writer::start_on(&db.url, ROWS as u64);
    writer.wait_for_writes(20, LONG).await;

    // A budget no probe meets.
    let (dir, plan) = write_plan(&backfill_plan("[throttle]\nprobe_latency = \"1us\""));
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    let first = run.wait_for("gentle mode's first ceiling", LONG, |v| {
        v["event"] == "progress" && gentle_ceiling(v).is_some()
    });
    let ceiling = gentle_ceiling(&first).unwrap_or_default();
    let cut = run.wait_for("gentle mode to cut its ceiling", LONG, |v| {
        v["event"] == "progress" && gentle_ceiling(v).is_some_and(|c| c < ceiling)
    });
    eprintln!("gentle: {first} then {cut}");
    // Batches were capped to the pace: never more than the minimum batch
    // or a twentieth of the ceiling's rows per second.
    let cap = |v: &Value| (gentle_ceiling(v).unwrap_or_default() / 20).max(100);
    assert!(
        cut["batch_size"].as_i64().unwrap_or(i64::MAX) <= cap(&cut),
        "{cut}"
    );
    let (code, out, err) = cutover(&db.url, &["abort", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 3, "{}", lines.join("\n"));

    // Within budget: the rest of the backfill runs to the end, paced.
    conn.client
        .batch_execute("DROP TRIGGER slow_batch ON users")
        .await
        .unwrap();
    std::fs::write(
        dir.path().join("plan.toml"),
        backfill_plan("[throttle]\nprobe_latency = \"10s\""),
    )
    .unwrap();
    let run = Running::spawn(
        &db.url,
        &["run", &plan, "--yes", "--json", "--force-changed-plan"],
    );
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let (writes, errors) = writer.stop().await;
    assert!(errors.is_empty(), "the application saw errors: {errors:#?}");
    assert!(writes > 20, "the application kept writing");
    let stale: i64 = scalar(
        &conn,
        &format!(
            "SELECT count(*) FROM users WHERE id <= {ROWS} AND email IS DISTINCT FROM upper(email)"
        ),
    )
    .await;
    assert_eq!(stale, 0, "the backfill completed");
}

/// Dynamic batch sizing follows the batch time: every row costs at least
/// 0.5 ms (a trigger sleeps that long per row updated), so at a 1 s target
/// no batch may hold more than 2,000 rows; batches of 100 rows, far under
/// target, must grow. Neither bound depends on the machine's speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_size_follows_the_batch_time() {
    let _turn = CLUSTER.lock().await;
    let db = seeded_db("converge", 20_000).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute(
            "CREATE FUNCTION per_row() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM pg_sleep((SELECT count(*) FROM changed) * 0.0005); RETURN NULL; END $$;
             CREATE TRIGGER per_row AFTER UPDATE ON users REFERENCING NEW TABLE AS changed
                 FOR EACH STATEMENT EXECUTE FUNCTION per_row();",
        )
        .await
        .unwrap();
    let (_dir, plan) = write_plan(
        r#"
name = "sized backfill"
[throttle]
target_batch_time = "1s"
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "email = upper(email)"
batch_size = 100
"#,
    );
    let (code, lines) = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]).wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let sizes: Vec<i64> = events(&lines)
        .iter()
        .filter(|e| e["event"] == "progress")
        .filter_map(|e| e["batch_size"].as_i64())
        .collect();
    eprintln!("batch size once a second: {sizes:?}");
    assert!(
        sizes.iter().any(|n| *n > 200),
        "batches far under target never grew: {sizes:?}"
    );
    assert!(
        sizes.iter().all(|n| *n <= 2_000),
        "a batch bigger than the target time allows: {sizes:?}"
    );
    let upper: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users WHERE email = upper(email)",
    )
    .await;
    assert_eq!(upper, 20_000, "the backfill completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_sees_replicas_lock_waits_and_activity() {
    let _turn = CLUSTER.lock().await;
    let db = seeded_db_with_replica("monitor", 1_000).await;
    let ours = db.connect().await;
    let holder = db.connect().await;
    holder
        .client
        .batch_execute("BEGIN; LOCK TABLE users IN SHARE MODE;")
        .await
        .unwrap();
    // "Our" migration session queues an ALTER behind the holder …
    let alter = {
        let url = db.url.clone();
        let pid_tx = ours.pid();
        tokio::spawn(async move {
            let c = connect(&url).await;
            let pid = c.pid();
            let r = c
                .client
                .batch_execute("SET lock_timeout = '5s'; ALTER TABLE users ADD COLUMN y int")
                .await;
            (pid, pid_tx, r.is_ok())
        })
    };
    let migration_pid =
        wait_for_lock_wait(&ours, "a.query LIKE '%ALTER TABLE users ADD COLUMN y%'")
            .await
            .pid;
    // … and an application read queues behind our ALTER.
    let reader = {
        let url = db.url.clone();
        tokio::spawn(async move {
            let c = connect(&url).await;
            c.client
                .query_one("SELECT count(*) FROM users", &[])
                .await
                .is_ok()
        })
    };
    wait_until_blocked_by(&ours, migration_pid).await;
    let mon = connect(&db.url).await;
    mon.client
        .batch_execute("SET lock_timeout = '100ms'")
        .await
        .unwrap();
    let mut sampler = Sampler::default();
    let focus = Focus {
        ours: vec![migration_pid],
        table: Some("users".into()),
        key: Some("id".into()),
        ..Focus::default()
    };
    // The monitor's session gives up on a lock after 100 ms: had a query
    // queued behind the DDL, the sample would fail.
    let sample = sampler
        .sample(&mon, &focus)
        .await
        .expect("a sample while the DDL waits");
    assert!(!sample.in_recovery);
    let r = sample
        .replicas
        .iter()
        .find(|r| r.name == "replica1")
        .expect("replica1 seen");
    assert_eq!(r.state, "streaming");
    let ours_waiting = sample
        .lock_waits
        .iter()
        .find(|w| w.pid == migration_pid)
        .expect("our ALTER waits");
    assert!(ours_waiting.ours);
    assert!(ours_waiting.waits_for.contains("users"), "{ours_waiting:?}");
    let behind: Vec<_> = sample.blocked_behind_us().collect();
    assert_eq!(
        behind.len(),
        1,
        "the reader queues behind our ALTER: {:?}",
        sample.lock_waits
    );
    assert!(behind[0].waited > Duration::ZERO);
    assert!(
        sample.open_xacts.iter().any(|x| x.pid == holder.pid()),
        "holder's open transaction"
    );
    let table = sample.table.expect("table stats");
    assert_eq!(
        table.total_bytes, None,
        "size needs a lock: skipped, not waited for"
    );
    // Rates need two samples, and committed transactions between them
    // (the server publishes its counters about once a second).
    poll_until_async("tps from pg_stat_database deltas", LONG, async || {
        let next = sampler
            .sample(&mon, &focus)
            .await
            .expect("a sample while the DDL waits");
        next.tps > 0.0
    })
    .await;
    holder.client.batch_execute("COMMIT").await.unwrap();
    assert!(reader.await.unwrap());
    let _ = alter.await.unwrap();
    // On the standby the monitor reports its own replay delay instead.
    let standby = db.connect_replica().await;
    let s = Sampler::default()
        .sample(&standby, &Focus::default())
        .await
        .unwrap();
    assert!(s.in_recovery);
    assert!(s.own_replay_delay.is_some());
    assert!(s.replicas.is_empty());
}
