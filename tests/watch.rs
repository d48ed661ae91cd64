//! Monitors, throttling, dynamic batches and abort criteria, on the
//! sandbox's primary and streaming replica.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::process::{Running, cutover, events};
use common::{connect, scalar, seeded_db, seeded_db_with_replica, write_plan};
use cutover::monitor::{Focus, Sampler};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(90);

/// Replication lag is a property of the whole cluster, not of one test's
/// database: tests here pause replay or produce heavy WAL, so they take
/// turns.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Slows every batch by 50 ms so the backfill lasts long enough to act on.
const SLOW: &str = "
    CREATE FUNCTION slow_batch() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$;
    CREATE TRIGGER slow_batch AFTER UPDATE ON users
        FOR EACH STATEMENT EXECUTE FUNCTION slow_batch();";

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
    conn.client.batch_execute(SLOW).await.unwrap();
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
    let paused_at = Instant::now();
    let throttled = run.wait_for("throttled", LONG, is("throttled"));
    let reaction = paused_at.elapsed();
    let reason = throttled["reason"].as_str().unwrap().to_string();
    eprintln!("throttled {reaction:?} after replay paused: {reason}");
    assert!(reason.contains("replica replica1"), "{reason}");
    assert!(
        reaction < Duration::from_secs(4),
        "took {reaction:?} to throttle"
    );
    // No batch commits while held (one in flight may land).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = rows_done(&conn).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rows_done(&conn).await, held, "batches ran while throttled");
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
    conn.client.batch_execute(SLOW).await.unwrap();
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
    let deadline = Instant::now() + LONG;
    loop {
        let behind: i64 = scalar(
            &conn,
            "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint FROM pg_stat_replication",
        )
        .await;
        if behind < 100_000 {
            break;
        }
        assert!(Instant::now() < deadline, "replica never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
lock_timeout = "8s"
lock_retries = 3
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
    let deadline = Instant::now() + LONG;
    loop {
        let waiting: i64 = scalar(
            &watcher,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE users ADD COLUMN x%' AND wait_event_type = 'Lock'",
        )
        .await;
        if waiting == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "ALTER never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let url = db.url.clone();
        readers.push(tokio::spawn(async move {
            let c = connect(&url).await;
            let t = Instant::now();
            c.client
                .query_one("SELECT count(*) FROM users", &[])
                .await
                .unwrap();
            t.elapsed()
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
    // The abort cancelled the waiting ALTER: the readers got through while
    // the holder's transaction is still open.
    for r in readers {
        let waited = tokio::time::timeout(Duration::from_secs(10), r)
            .await
            .expect("reader still blocked after the abort")
            .unwrap();
        assert!(waited < Duration::from_secs(8), "reader waited {waited:?}");
    }
    holder.client.batch_execute("COMMIT").await.unwrap();
}

/// `max_rows_per_second` paces batches: 40,000 rows at 20,000 rows/s take
/// about 2 s (unpaced, this table backfills in well under half a second),
/// and the reason is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rows_per_second_paces_the_backfill() {
    let _turn = CLUSTER.lock().await;
    let db = seeded_db("paced", 40_000).await;
    let (_dir, plan) = write_plan(&backfill_plan("[throttle]\nmax_rows_per_second = 20000"));
    let started = Instant::now();
    let (code, lines) = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]).wait_exit(LONG);
    let took = started.elapsed();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    // The first batch (2,000 rows) goes at once; the other 38,000 at
    // 20,000/s take at least 1.9 s.
    assert!(took >= Duration::from_millis(1900), "took {took:?}");
    let said: Vec<String> = events(&lines)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gentle_mode_holds_probe_latency() {
    let _turn = CLUSTER.lock().await;
    let db = seeded_db_with_replica("gentle", 400_000).await;
    // Synthetic application load: point reads by random id, ~100/s.
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let load = {
        let (url, stop, measuring) = (db.url.clone(), stop.clone(), measuring.clone());
        tokio::spawn(async move {
            let c = connect(&url).await;
            let stmt = c
                .client
                .prepare("SELECT name FROM users WHERE id = $1")
                .await
                .unwrap();
            let (mut idle, mut busy) = (Vec::new(), Vec::new());
            let mut i: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                i = (i * 7919 + 104_729) % 400_000;
                let t = Instant::now();
                c.client.query_opt(&stmt, &[&(i + 1)]).await.unwrap();
                let d = t.elapsed();
                if measuring.load(Ordering::Relaxed) {
                    busy.push(d);
                } else {
                    idle.push(d);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (idle, busy)
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let setting = Duration::from_millis(3);
    let (_dir, plan) = write_plan(&backfill_plan(&format!(
        "[throttle]\nprobe_latency = \"{}ms\"",
        setting.as_millis()
    )));
    measuring.store(true, Ordering::Relaxed);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    let (code, lines) = {
        run.wait_event("step_started", LONG);
        run.wait_exit(Duration::from_secs(300))
    };
    stop.store(true, Ordering::Relaxed);
    let (idle, busy) = load.await.unwrap();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let p95 = |v: &[Duration]| cutover::monitor::probe::percentile(v, 0.95);
    let gentle_said = events(&lines)
        .iter()
        .filter(|e| e["event"] == "progress")
        .filter_map(|e| e["throttle"].as_str().map(str::to_string))
        .next_back();
    eprintln!(
        "app p95 idle {:?}, during gentle backfill {:?} (setting {setting:?}, {} reads); last throttle: {gentle_said:?}",
        p95(&idle),
        p95(&busy),
        busy.len()
    );
    assert!(busy.len() > 50, "the load kept running");
    assert!(
        p95(&busy) <= setting.mul_f64(2.0),
        "app p95 {:?} during a gentle backfill exceeds 2× {setting:?}",
        p95(&busy)
    );
    let conn = db.connect().await;
    let upper: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users WHERE email = upper(email)",
    )
    .await;
    assert_eq!(upper, 400_000, "the backfill completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_size_converges() {
    let _turn = CLUSTER.lock().await;
    let db = seeded_db_with_replica("converge", 1_000_000).await;
    let (_dir, plan) = write_plan(&backfill_plan("[throttle]\ntarget_batch_time = \"100ms\""));
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    let batches: Vec<(i64, u64)> = events(&lines)
        .iter()
        .filter(|e| e["event"] == "progress")
        .map(|e| {
            let ms = e["last_batch"]["secs"].as_u64().unwrap_or(0) * 1000
                + e["last_batch"]["nanos"].as_u64().unwrap_or(0) / 1_000_000;
            (e["batch_size"].as_i64().unwrap_or(0), ms)
        })
        .collect();
    eprintln!("(batch size, batch ms) once a second: {batches:?}");
    assert!(batches.len() >= 3, "too few progress lines: {out}");
    let settled: Vec<u64> = batches[2..].iter().map(|(_, ms)| *ms).collect();
    let mut sorted = settled.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    assert!(
        (50..=150).contains(&median),
        "median batch time {median}ms after settling, target 100ms: {batches:?}"
    );
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let migration_pid: i32 = scalar(
        &ours,
        "SELECT pid FROM pg_stat_activity WHERE query LIKE '%ALTER TABLE users ADD COLUMN y%' AND pid <> pg_backend_pid()",
    )
    .await;
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
    tokio::time::sleep(Duration::from_millis(300)).await;
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
    let sample = sampler.sample(&mon, &focus).await.unwrap();
    eprintln!("one sample took {:?}", sample.cost);
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
    assert!(
        sample.cost < Duration::from_secs(1),
        "the monitor queued behind the DDL: {:?}",
        sample.cost
    );
    // Rates need two samples.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = sampler.sample(&mon, &focus).await.unwrap();
    assert!(second.tps > 0.0, "tps from pg_stat_database deltas");
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
