//! Plans, the engine and the journal, end to end through the real binary.

mod common;

use std::time::Duration;

use common::locks::{wait_for_lock_wait, wait_until_blocked_by, wait_until_not_running};
use common::process::{Running, cutover, events};
use common::{
    PATIENCE, catalog, count_and_slow, holds_throughout, poll_until_async, scalar, seeded_db,
    shipped_plan, write_plan,
};
use nix::sys::signal::Signal;

const LONG: Duration = PATIENCE;

/// A backfill that touches every row once, in batches of at most 2,000.
const SLOW_BACKFILL: &str = r#"
name = "touch every row"
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
"#;

fn progress_past(rows: i64) -> impl Fn(&serde_json::Value) -> bool {
    move |v| v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) >= rows
}

async fn touched_exactly_once(conn: &cutover::db::Conn, rows: i64) {
    let once: i64 = scalar(conn, "SELECT count(*) FROM users WHERE touches = 1").await;
    let other: i64 = scalar(conn, "SELECT count(*) FROM users WHERE touches <> 1").await;
    assert_eq!(other, 0, "rows updated twice or never");
    assert_eq!(once, rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_column_backfill_plan_runs_to_completion() {
    let db = seeded_db("plan_add_column", 50_000).await;
    let plan = shipped_plan("add_column_backfill.toml");
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("finished in"), "{out}");
    let conn = db.connect().await;
    let falses: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users WHERE email_verified = false",
    )
    .await;
    assert_eq!(falses, 50_000);
    let nullable: String = scalar(
        &conn,
        "SELECT is_nullable FROM information_schema.columns
         WHERE table_name = 'users' AND column_name = 'email_verified'",
    )
    .await;
    assert_eq!(nullable, "NO");
    let status: String = scalar(&conn, "SELECT status FROM cutover.runs").await;
    assert_eq!(status, "finished");
    // Running it again does nothing and says so.
    let (code, out, _) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0);
    assert!(out.contains("already finished"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_column_plan_runs_to_completion() {
    let db = seeded_db("plan_rename", 30_000).await;
    let (code, out, err) = cutover(
        &db.url,
        &["run", &shipped_plan("rename_column.toml"), "--yes"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let conn = db.connect().await;
    let wrong: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users WHERE full_name IS DISTINCT FROM 'user ' || id",
    )
    .await;
    assert_eq!(wrong, 0);
    let old: i64 = scalar(
        &conn,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'name'",
    )
    .await;
    assert_eq!(old, 0, "contract dropped the old column");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_index_plan_runs_to_completion() {
    let db = seeded_db("plan_index", 30_000).await;
    let (code, out, err) = cutover(
        &db.url,
        &["run", &shipped_plan("concurrent_index.toml"), "--yes"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let conn = db.connect().await;
    let def: String = scalar(
        &conn,
        "SELECT pg_get_indexdef(indexrelid) || ' ' || indisvalid FROM pg_index
         WHERE indexrelid = 'users_email_idx'::regclass",
    )
    .await;
    assert_eq!(
        def,
        "CREATE INDEX users_email_idx ON public.users USING btree (email) true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_resumes_after_kill() {
    let db = seeded_db("resume_kill", 200_000).await;
    let conn = db.connect().await;
    conn.client.batch_execute(&count_and_slow()).await.unwrap();
    let (_dir, plan) = write_plan(SLOW_BACKFILL);
    let mut first = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    first.wait_for("backfill progress", LONG, progress_past(20_000));
    first.kill9();
    let (status, last_key, done): (String, Option<String>, i64) = {
        let row = conn
            .client
            .query_one(
                "SELECT s.status, s.checkpoint->>'last_key', s.rows_done
                 FROM cutover.steps s JOIN cutover.runs r ON r.id = s.run_id",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(status, "running");
    assert!(last_key.is_some(), "a checkpoint was recorded");
    assert!(
        (20_000..200_000).contains(&done),
        "killed mid-backfill: {done} keys done"
    );
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let evs = events(&out.lines().map(str::to_string).collect::<Vec<_>>());
    assert!(
        evs.iter()
            .any(|e| e["event"] == "run_started" && e["resumed"] == true),
        "{out}"
    );
    let resumed_from_scratch = evs
        .iter()
        .filter(|e| e["event"] == "progress")
        .any(|e| e["rows_done"].as_i64().unwrap_or(0) < done);
    assert!(!resumed_from_scratch, "the second run started over:\n{out}");
    touched_exactly_once(&conn, 200_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_mid_backfill_stops_at_a_batch_boundary_and_a_later_run_finishes() {
    let db = seeded_db("abort_backfill", 200_000).await;
    let conn = db.connect().await;
    conn.client.batch_execute(&count_and_slow()).await.unwrap();
    let (_dir, plan) = write_plan(SLOW_BACKFILL);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for("backfill progress", LONG, progress_past(10_000));
    let (code, out, err) = cutover(&db.url, &["abort", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 3, "aborted runs exit 3:\n{}", lines.join("\n"));
    let evs = events(&lines);
    let aborted = evs
        .iter()
        .find(|e| e["event"] == "aborted")
        .expect("aborted event");
    assert!(
        aborted["reason"]
            .as_str()
            .unwrap()
            .contains("another terminal"),
        "{aborted}"
    );
    // Stopped at a batch boundary: every committed batch is in the
    // checkpoint, nothing beyond it was touched.
    let (status, updated): (String, i64) = {
        let r = conn
            .client
            .query_one(
                "SELECT r.status, s.rows_updated FROM cutover.steps s JOIN cutover.runs r ON r.id = s.run_id",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, "aborted");
    let touched: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE touches = 1").await;
    assert_eq!(
        touched, updated,
        "rows touched = rows the checkpoint accounts for"
    );
    assert!(updated < 200_000);
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    touched_exactly_once(&conn, 200_000).await;
}

/// A killed cutover's last batch can still be running on the server when
/// a new session resumes, and commit after the new session read the
/// checkpoint. Emulated here: this test's session holds the checkpoint
/// row, does the next 5,000 rows itself and moves the checkpoint while the
/// running cutover waits for the row. The batch then does nothing, and the
/// run continues after the moved checkpoint: no range twice, none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_finds_the_checkpoint_moved_continues_from_there() {
    let db = seeded_db("moved_checkpoint", 100_000).await;
    let conn = db.connect().await;
    conn.client.batch_execute(&count_and_slow()).await.unwrap();
    let (_dir, plan) = write_plan(SLOW_BACKFILL);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for("backfill progress", LONG, progress_past(5_000));
    let other = db.connect().await;
    other.client.batch_execute("BEGIN").await.unwrap();
    let last: i64 = scalar(
        &other,
        "SELECT (checkpoint->>'last_key')::bigint FROM cutover.steps
         WHERE status = 'running' FOR UPDATE",
    )
    .await;
    // cutover's next batch waits for the checkpoint row.
    wait_until_blocked_by(&conn, other.pid()).await;
    other
        .client
        .batch_execute(&format!(
            "UPDATE users SET city = upper(city) WHERE id > {last} AND id <= {last} + 5000;
             UPDATE cutover.steps
             SET checkpoint = jsonb_build_object('last_key', ({last} + 5000)::text),
                 rows_done = rows_done + 5000, rows_updated = rows_updated + 5000
             WHERE status = 'running';
             COMMIT"
        ))
        .await
        .unwrap();
    let (code, lines) = run.wait_exit(LONG);
    let out = lines.join("\n");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("continuing after key {}", last + 5000)),
        "{out}"
    );
    touched_exactly_once(&conn, 100_000).await;
    let done: i64 = scalar(&conn, "SELECT rows_done FROM cutover.steps").await;
    assert_eq!(done, 100_000);
}

/// A batch that fails (here: division by zero at id 15,000) leaves nothing
/// behind; the run fails naming the batch, keeps every batch before it, and
/// the fixed plan resumes after the last good one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_rolls_back_and_the_run_resumes_after_the_last_good_one() {
    let db = seeded_db("failing_batch", 20_000).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute("ALTER TABLE users ADD COLUMN inv numeric")
        .await
        .unwrap();
    let plan_with = |set: &str| {
        format!(
            r#"
name = "inverse"
[throttle]
max_batch_size = 2000
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "{set}"
batch_size = 1000
"#
        )
    };
    let (dir, plan) = write_plan(&plan_with("inv = 1.0 / (id - 15000)"));
    // Bounded waits: a batch that left its transaction open would hang
    // the journal's next write behind its lock.
    let run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    let (code, lines) = run.wait_exit(LONG);
    let all = lines.join("\n");
    assert_eq!(code, 1, "{all}");
    assert!(all.contains("division by zero"), "{all}");
    assert!(all.contains("backfill batch on users after key"), "{all}");
    let (run_status, step_status, last_key, done): (String, String, i64, i64) = {
        let r = conn
            .client
            .query_one(
                "SELECT r.status, s.status, (s.checkpoint->>'last_key')::bigint, s.rows_done
                 FROM cutover.steps s JOIN cutover.runs r ON r.id = s.run_id",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    assert_eq!(
        (run_status.as_str(), step_status.as_str()),
        ("failed", "failed")
    );
    assert!(last_key < 15_000 && done == last_key, "{last_key} {done}");
    let filled: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE inv IS NOT NULL").await;
    assert_eq!(filled, last_key, "the failed batch left nothing behind");
    // The same plan file, fixed: it resumes after the last good batch.
    std::fs::write(
        dir.path().join("plan.toml"),
        plan_with("inv = 1.0 / nullif(id - 15000, 0)"),
    )
    .unwrap();
    let run = Running::spawn(
        &db.url,
        &["run", &plan, "--yes", "--json", "--force-changed-plan"],
    );
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let filled: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE inv IS NOT NULL").await;
    assert_eq!(filled, 19_999, "every row but id 15,000");
    let done: i64 = scalar(&conn, "SELECT rows_done FROM cutover.steps").await;
    assert_eq!(done, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_pauses_detaches_and_the_run_resumes() {
    let db = seeded_db("detach", 100_000).await;
    let conn = db.connect().await;
    conn.client.batch_execute(&count_and_slow()).await.unwrap();
    let (_dir, plan) = write_plan(SLOW_BACKFILL);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for("backfill progress", LONG, progress_past(5_000));
    run.signal(Signal::SIGINT);
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 130, "{}", lines.join("\n"));
    assert!(events(&lines).iter().any(|e| e["event"] == "detached"));
    let status: String = scalar(&conn, "SELECT status FROM cutover.runs").await;
    assert_eq!(status, "paused");
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    touched_exactly_once(&conn, 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_mid_create_index_leaves_no_invalid_index() {
    let db = seeded_db("abort_index", 10_000).await;
    let conn = db.connect().await;
    // An open writing transaction makes the concurrent build wait.
    let holder = db.connect().await;
    holder
        .client
        .batch_execute("BEGIN; UPDATE users SET age = age WHERE id = 1;")
        .await
        .unwrap();
    let (_dir, plan) = write_plan(
        r#"
name = "slow index"
[settings]
lock_timeout = "60s"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "create_index"
name = "users_email_idx"
table = "users"
columns = ["email"]
"#,
    );
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_event("step_started", LONG);
    poll_until_async("the build to start", LONG, async || {
        let invalid: i64 = scalar(
            &conn,
            "SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('users_email_idx') AND NOT indisvalid",
        )
        .await;
        invalid == 1
    })
    .await;
    // The build waits for the holder's transaction.
    let build = wait_for_lock_wait(
        &conn,
        "a.application_name = 'cutover' AND a.query ILIKE 'CREATE INDEX%'",
    )
    .await;
    let (code, out, err) = cutover(&db.url, &["abort", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    // Released only once the abort cancelled the build (else the build
    // could finish first); the leftover can only be dropped once the
    // blocking transaction ends.
    wait_until_not_running(&conn, build.pid, &build.query).await;
    holder.client.batch_execute("COMMIT").await.unwrap();
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 3, "{}", lines.join("\n"));
    let left: i64 = scalar(
        &conn,
        "SELECT count(*) FROM pg_class WHERE relname = 'users_email_idx'",
    )
    .await;
    assert_eq!(left, 0, "INVALID index left behind:\n{}", lines.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_migrate_restores_the_schema() {
    let db = seeded_db("rollback", 20_000).await;
    let conn = db.connect().await;
    let before = catalog(&conn).await;
    let plan = shipped_plan("rename_column.toml");
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_event("gate_waiting", LONG);
    // Released from another terminal.
    let (code, out, err) = cutover(&db.url, &["advance", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    run.wait_for("the app-deploy gate", LONG, |v| {
        v["event"] == "gate_waiting" && v["name"] == "deploy the app"
    });
    let copied: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE full_name = name").await;
    assert_eq!(copied, 20_000, "migrate ran");
    let (code, _, _) = cutover(&db.url, &["abort", &plan]);
    assert_eq!(code, 0);
    assert_eq!(run.wait_exit(LONG).0, 3);
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("rolled back: every step undone"), "{out}");
    assert_eq!(
        catalog(&conn).await,
        before,
        "the schema is as before the run"
    );
    let status: String = scalar(&conn, "SELECT status FROM cutover.runs").await;
    assert_eq!(status, "rolled_back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_across_a_completed_irreversible_phase_is_refused() {
    let db = seeded_db("rollback_refused", 5_000).await;
    let plan = shipped_plan("add_column_backfill.toml");
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let conn = db.connect().await;
    let before = catalog(&conn).await;
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("contract is irreversible"), "{out}{err}");
    assert_eq!(catalog(&conn).await, before, "nothing was undone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_the_same_plan_is_refused() {
    let db = seeded_db("two_runs", 1_000).await;
    let plan = shipped_plan("rename_column.toml");
    let mut first = Running::spawn(&db.url, &["run", &plan, "--json"]);
    first.wait_event("gate_waiting", LONG);
    // Refused, not queued behind the first: it ends while the first still
    // waits at its gate.
    let (code, lines) = Running::spawn(&db.url, &["run", &plan, "--yes"]).wait_exit(LONG);
    let out = lines.join("\n");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("already being run by another cutover"),
        "{out}"
    );
    assert!(out.contains("pid"), "names the holder: {out}");
    assert!(first.is_running(), "the first run is untouched");
    cutover(&db.url, &["abort", &plan]);
    assert_eq!(first.wait_exit(LONG).0, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_statement_retries_within_lock_timeout_then_succeeds() {
    let db = seeded_db("lock_retry", 1_000).await;
    let holder = db.connect().await;
    holder
        .client
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    let (_dir, plan) = write_plan(
        r#"
name = "blocked add column"
[settings]
lock_timeout = "200ms"
lock_retries = 50
retry_backoff = "50ms..200ms"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN c int"
rollback = "ALTER TABLE users DROP COLUMN c"
"#,
    );
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    // Several attempts time out while the lock is held.
    run.wait_events("retry", 3, LONG);
    holder.client.batch_execute("COMMIT").await.unwrap();
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let evs = events(&lines);
    let retries: Vec<&serde_json::Value> = evs.iter().filter(|e| e["event"] == "retry").collect();
    assert!(
        retries.len() >= 3,
        "expected several retries:\n{}",
        lines.join("\n")
    );
    // Each attempt gave up at lock_timeout (SQLSTATE 55P03) rather than
    // waiting for the lock, and said so.
    for r in &retries {
        let reason = r["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("55P03"), "{r}");
    }
    let conn = db.connect().await;
    let col: i64 = scalar(
        &conn,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'c'",
    )
    .await;
    assert_eq!(col, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plans_fail_with_a_position_and_change_nothing() {
    let db = seeded_db("bad_plans", 100).await;
    let conn = db.connect().await;
    let before = catalog(&conn).await;
    let good = "name = \"p\"\n[settings]\nlock_timeout = \"2s\"\n[[phases]]\nname = \"a\"\n[[phases.steps]]\nkind = \"backfill\"\ntable = \"users\"\nkey = \"id\"\nset = \"age = 1\"\n";
    let cases = [
        ("syntax error", good.replace("[[phases]]", "[[phases]"), 4),
        (
            "unknown kind",
            good.replace("\"backfill\"", "\"backfil\""),
            6,
        ),
        ("missing field", good.replace("key = \"id\"\n", ""), 6),
        ("bad duration", good.replace("\"2s\"", "\"2 sex\""), 3),
    ];
    for (what, text, line) in cases {
        let (_dir, plan) = write_plan(&text);
        let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
        assert_eq!(code, 2, "{what}: {out}{err}");
        let located = format!("{plan}:{line}:");
        let reported = err.contains(&located) || err.contains(&format!("{plan}:{}:", line + 1));
        assert!(reported, "{what}: expected {located} in:\n{err}");
    }
    let journal: bool = scalar(&conn, "SELECT to_regclass('cutover.runs') IS NULL").await;
    assert!(journal, "a bad plan created the journal");
    assert_eq!(catalog(&conn).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_from_another_terminal() {
    let db = seeded_db("remote_pause", 100_000).await;
    let conn = db.connect().await;
    conn.client.batch_execute(&count_and_slow()).await.unwrap();
    let (_dir, plan) = write_plan(SLOW_BACKFILL);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for("backfill progress", LONG, progress_past(5_000));
    let (code, out, err) = cutover(&db.url, &["pause", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    run.wait_event("paused", LONG);
    let status: String = scalar(&conn, "SELECT status FROM cutover.runs").await;
    assert_eq!(status, "paused");
    // No batch commits while paused (the pause takes effect between
    // batches).
    let done = "SELECT rows_done FROM cutover.steps";
    let at_pause: i64 = scalar(&conn, done).await;
    holds_throughout(
        "no batch committing while paused",
        Duration::from_secs(1),
        async || scalar::<i64>(&conn, done).await == at_pause,
    )
    .await;
    let (out_status, _, _) = cutover(&db.url, &["status", &plan]);
    assert_eq!(out_status, 0);
    let (code, out, err) = cutover(&db.url, &["resume", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    run.wait_event("resumed", LONG);
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    touched_exactly_once(&conn, 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_plan_is_not_resumed_without_force() {
    let db = seeded_db("changed_plan", 1_000).await;
    let (dir, plan) = write_plan(
        r#"
name = "two gates"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN c int"
rollback = "ALTER TABLE users DROP COLUMN c"
[[phases.steps]]
kind = "gate"
message = "check things"
"#,
    );
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_event("gate_waiting", LONG);
    run.signal(Signal::SIGINT);
    assert_eq!(run.wait_exit(LONG).0, 130);
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(&plan, text.replace("check things", "check other things")).unwrap();
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("changed since run #1"), "{out}");
    assert!(out.contains("--force-changed-plan"), "{out}");
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--force-changed-plan"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("resuming run #1"), "{out}");
    drop(dir);
}

/// The batches record the session settings they ran under (in `city`),
/// and a later step records what the session was reset to (in `street`).
const SETTINGS_PLAN: &str = r#"
name = "bulk session settings"
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "city = concat_ws(',', current_setting('synchronous_commit'), current_setting('backend_flush_after'), current_setting('wal_compression'))"
[[phases.steps]]
kind = "sql"
sql = "UPDATE users SET street = concat_ws(',', current_setting('synchronous_commit'), current_setting('backend_flush_after'), current_setting('wal_compression')) WHERE id = 1"
"#;

async fn settings_seen(conn: &cutover::db::Conn) -> (Vec<String>, String) {
    let rows = conn
        .client
        .query("SELECT DISTINCT city FROM users ORDER BY 1", &[])
        .await
        .expect("batch settings");
    let during = rows.iter().map(|r| r.get(0)).collect();
    let after = scalar(conn, "SELECT street FROM users WHERE id = 1").await;
    (during, after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_run_with_bulk_settings_and_the_session_is_reset_after() {
    // The sandbox, whatever DATABASE_URL says: the second half logs in as
    // a role of its own, which its trust authentication allows.
    let db = common::fresh_db_with_replica("bulk_settings").await;
    let conn = db.connect().await;
    cutover::sandbox::seed::seed_users(&conn.client, 5_000, false, &mut |_| {})
        .await
        .expect("seed users");
    let server = |name: &str| format!("SELECT setting FROM pg_settings WHERE name = '{name}'");
    let flush_unit: String = scalar(&conn, &server("backend_flush_after")).await;
    let lz4: bool = scalar(
        &conn,
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'wal_compression'",
    )
    .await;
    let default_compression: String = scalar(&conn, &server("wal_compression")).await;
    assert_eq!(flush_unit, "0", "the sandbox primary keeps the default");
    // The server's defaults, as `current_setting` shows them.
    let reset = format!("on,0,{default_compression}");

    // A superuser: every setting takes.
    let (_dir, plan) = write_plan(SETTINGS_PLAN);
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    let expected = format!(
        "off,256kB,{}",
        if lz4 { "lz4" } else { &default_compression }
    );
    assert_eq!(settings_seen(&conn).await, (vec![expected], reset.clone()));

    // A role that owns the table but is no superuser may not set
    // wal_compression: the rest still takes, and the run goes on.
    let role = format!("bulk_owner_{}", std::process::id());
    conn.client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN;
             GRANT ALL ON SCHEMA public TO {role}; GRANT CREATE ON DATABASE {db} TO {role};
             ALTER TABLE users OWNER TO {role}; ALTER SEQUENCE users_id_seq OWNER TO {role};
             DROP SCHEMA cutover CASCADE;",
            db = cutover::db::quote_ident(&db.name)
        ))
        .await
        .expect("role");
    let url = db
        .url
        .replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    assert_ne!(url, db.url, "the sandbox URL names user postgres");
    let (code, out, err) = cutover(&url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        settings_seen(&conn).await,
        (vec![format!("off,256kB,{default_compression}")], reset)
    );
    // That role cannot see the replica's lag: the run above was warned,
    // and a plan that throttles on lag is refused until it may.
    let hidden = format!("role {role} may not see their state or lag");
    assert!(format!("{out}{err}").contains(&hidden), "{out}{err}");
    let (_lag_dir, lag_plan) = write_plan(&SETTINGS_PLAN.replace(
        "[[phases]]",
        "[throttle]\nreplication_lag = \"5s\"\n[[phases]]",
    ));
    let (code, out, err) = cutover(&url, &["check", &lag_plan]);
    assert_ne!(code, 0, "{out}{err}");
    let refused = format!("{out}{err}");
    assert!(
        refused.contains(&hidden) && refused.contains(&format!("GRANT pg_monitor TO {role}")),
        "{refused}"
    );
    conn.client
        .batch_execute(&format!("GRANT pg_monitor TO {role}"))
        .await
        .expect("grant");
    let (code, out, err) = cutover(&url, &["check", &lag_plan]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("replay lag"), "{out}");
    conn.client
        .batch_execute(&format!(
            "REASSIGN OWNED BY {role} TO postgres; DROP OWNED BY {role}; DROP ROLE {role}"
        ))
        .await
        .expect("drop role");
}
