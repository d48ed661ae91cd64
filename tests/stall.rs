//! `[settings] max_stall`: a DDL step does not join a lock queue behind an
//! old transaction (every later query would wait behind it); it waits for a
//! gap, then takes its lock at once.

mod common;

use std::time::Duration;

use common::process::Running;
use common::{PATIENCE, holds_throughout, scalar, seeded_db, write_plan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_under_a_stall_budget_waits_for_a_gap_instead_of_queueing() {
    let db = seeded_db("stall_gap", 1_000).await;
    let holder = db.connect().await;
    let watcher = db.connect().await;
    // An application transaction that has read users for a while.
    holder
        .client
        .batch_execute("BEGIN; SELECT count(*) FROM users")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (dir, plan) = write_plan(
        r#"
name = "add under budget"
[settings]
max_stall = "200ms"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN c int"
rollback = "ALTER TABLE users DROP COLUMN c"
"#,
    );
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_event("step_started", PATIENCE);
    // Meanwhile nobody queues for a lock on users: the ALTER has not
    // joined the queue behind the old transaction.
    holds_throughout(
        "no lock waits on users",
        Duration::from_secs(2),
        async || {
            let waiting: i64 = scalar(
                &watcher,
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'users'::regclass",
            )
            .await;
            waiting == 0
        },
    )
    .await;
    holder.client.batch_execute("COMMIT").await.unwrap();
    let (code, lines) = run.wait_exit(PATIENCE);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(
        !lines.iter().any(|l| l.contains("\"event\":\"retry\"")),
        "it attempted while the old transaction held the table:\n{}",
        lines.join("\n")
    );
    let added: i64 = scalar(
        &watcher,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'c'",
    )
    .await;
    assert_eq!(added, 1);
    drop(dir);
}

#[test]
fn plan_and_lint_say_which_statements_cannot_meet_the_budget() {
    let (dir, plan) = write_plan(
        r#"
name = "budgeted"
[settings]
max_stall = "150ms"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN c int"
rollback = "ALTER TABLE users DROP COLUMN c"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ALTER COLUMN age TYPE text"
allow_unsafe = "a test of the stall verdict"
rollback = "SELECT 1"
"#,
    );
    let out = std::process::Command::new(common::cutover_bin())
        .args(["plan", &plan])
        .output()
        .expect("cutover plan");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stall: within max_stall 150ms: brief once granted"),
        "{text}"
    );
    assert!(
        text.contains("STALL: holds ACCESS EXCLUSIVE on users while it"),
        "{text}"
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_that_holds_its_lock_past_the_budget_is_rolled_back_and_retried() {
    let db = seeded_db("stall_hold", 100).await;
    let admin = db.connect().await;
    // Something slow inside the critical section once the lock is granted
    // (here an event trigger, for the first two attempts only: a sequence
    // is not rolled back with them).
    admin
        .client
        .batch_execute(
            "CREATE SEQUENCE slow_ddl;
             CREATE FUNCTION slow_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
                          WHERE object_identity LIKE 'public.users%')
                  AND nextval('slow_ddl') <= 2 THEN
                 PERFORM pg_sleep(5);
               END IF;
             END $$;
             CREATE EVENT TRIGGER slow_ddl ON ddl_command_end EXECUTE FUNCTION slow_ddl();",
        )
        .await
        .unwrap();
    let (dir, plan) = write_plan(
        r#"
name = "swap under budget"
[settings]
max_stall = "300ms"
retry_backoff = "10ms..50ms"
[[phases]]
name = "contract"
gate = "auto"
[[phases.steps]]
kind = "swap"
renames = [{ table = "users", from = "name", to = "full_name" }]
"#,
    );
    let run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    let (code, lines) = run.wait_exit(PATIENCE);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let held_too_long = lines
        .iter()
        .filter(|l| l.contains("\"event\":\"retry\"") && l.contains("past the stall budget"))
        .count();
    assert_eq!(held_too_long, 2, "{}", lines.join("\n"));
    let renamed: bool = scalar(
        &admin,
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                 WHERE table_name = 'users' AND column_name = 'full_name')",
    )
    .await;
    assert!(renamed, "the third attempt renamed the column");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_stall_budget_a_backfill_runs_half_the_time_and_updates_every_row_once() {
    let db = seeded_db("stall_duty", 20_000).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute(&common::count_and_slow_by(0.02))
        .await
        .unwrap();
    let (dir, plan) = write_plan(
        r#"
name = "backfill under budget"
[settings]
max_stall = "150ms"
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "name = upper(name)"
"#,
    );
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    // The pace is on while the step runs, and says what sets it.
    run.wait_for("a progress line paced by the stall budget", PATIENCE, |v| {
        v["event"] == "progress"
            && v["throttle"]
                .as_str()
                .is_some_and(|t| t.contains("half the batches' speed (max_stall)"))
    });
    let (code, lines) = run.wait_exit(PATIENCE);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let once: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE touches = 1").await;
    let other: i64 = scalar(&conn, "SELECT count(*) FROM users WHERE touches <> 1").await;
    assert_eq!((once, other), (20_000, 0), "every row exactly once");
    drop(dir);
}
