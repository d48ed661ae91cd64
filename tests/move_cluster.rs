//! Moving a table to another cluster with logical replication, end to end
//! through the real binary: the shipped plan under a writing application,
//! and an abort in the middle of the initial copy followed by a rollback.

mod common;

use std::time::Duration;

use common::app::Writer;
use common::moving::source_and_target;
use common::process::{Running, cutover, events};
use common::{PATIENCE, poll_until_async, scalar, shipped_plan, write_plan};

const LONG: Duration = PATIENCE;

/// The clusters are shared by both tests and slots are per cluster: one
/// test at a time, so "no slot left" means this test's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every row of users, in key order, as one hash (the same text on both
/// servers whatever their settings).
const CHECKSUM: &str = "SELECT md5(string_agg(ROW(id, name, email, age, street, city, country, \
     created_at)::text, E'\\n' ORDER BY id)) FROM users";

async fn checksum(conn: &cutover::db::Conn) -> String {
    conn.client
        .batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'")
        .await
        .expect("session settings");
    scalar(conn, CHECKSUM).await
}

/// The run's traces on each side: publications, subscriptions, slots of
/// the source cluster, and tables on the target.
async fn traces(source: &cutover::db::Conn, target: &cutover::db::Conn) -> Vec<String> {
    let mut found = Vec::new();
    for (conn, sql) in [
        (
            source,
            "SELECT 'publication ' || pubname FROM pg_publication",
        ),
        (
            source,
            "SELECT 'slot ' || slot_name FROM pg_replication_slots",
        ),
        (
            source,
            "SELECT 'freeze ' || tgname FROM pg_trigger WHERE tgname LIKE 'cutover_move%'",
        ),
        (
            target,
            "SELECT 'subscription ' || subname FROM pg_subscription",
        ),
        (
            target,
            "SELECT 'relation ' || relname FROM pg_class
             WHERE relnamespace = 'public'::regnamespace",
        ),
    ] {
        for row in conn.client.query(sql, &[]).await.expect("look for traces") {
            found.push(row.get::<_, String>(0));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_move_to_the_target_cluster_while_the_application_writes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (src, dst) = source_and_target("move_users", 20_000).await;
    let plan = shipped_plan("move_to_new_cluster.toml");
    let flag = format!("target={}", dst.url);
    let (code, out, err) = cutover(&src.url, &["check", &plan, "--database", &flag]);
    assert_eq!(code, 0, "check:\n{out}{err}");
    assert!(out.contains("reachable at"), "{out}");

    let writer = Writer::start(&src.url);
    writer.wait_for_writes(50, LONG).await;
    let mut run = Running::spawn(
        &src.url,
        &["run", &plan, "--yes", "--json", "--database", &flag],
    );
    run.wait_for("the copy to finish", LONG, |v| {
        v["event"] == "step_finished" && v["name"] == "replicate users"
    });
    // The application keeps writing on the source while the target streams
    // and the compare runs.
    writer.wait_for_writes(200, LONG).await;
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "the move finishes:\n{}", lines.join("\n"));
    let (writes, errors) = writer.stop().await;
    assert!(
        writes > 250,
        "the application wrote during the move ({writes})"
    );
    // Its only failures: writes refused by the freeze at the switchover.
    assert!(
        errors.iter().all(|e| e.contains("are frozen")),
        "{errors:#?}"
    );
    let evs = events(&lines);
    assert!(
        evs.iter()
            .any(|e| e["event"] == "step_finished" && e["name"] == "compare users"),
        "the compare ran:\n{}",
        lines.join("\n")
    );

    let source = src.connect().await;
    let target = dst.connect().await;
    let count = "SELECT count(*) FROM users";
    let (n_src, n_dst): (i64, i64) = (scalar(&source, count).await, scalar(&target, count).await);
    assert_eq!(n_src, n_dst, "the same rows on both sides");
    assert_eq!(checksum(&source).await, checksum(&target).await);
    let last = "SELECT last_value FROM users_id_seq";
    let (seq_src, seq_dst): (i64, i64) = (scalar(&source, last).await, scalar(&target, last).await);
    assert!(
        seq_dst > seq_src,
        "target sequence {seq_dst} is past the source's {seq_src}"
    );
    // The target takes the application's inserts; the source refuses them.
    target
        .client
        .batch_execute("INSERT INTO users (name, email) VALUES ('after', 'after@example.com')")
        .await
        .expect("the target takes writes");
    let refused = source
        .client
        .batch_execute("UPDATE users SET age = 1 WHERE id = 1")
        .await
        .expect_err("the source refuses writes");
    assert!(
        cutover::db::describe(&refused).contains("are frozen"),
        "{refused}"
    );
    let left = traces(&source, &target).await;
    let replication: Vec<&String> = left
        .iter()
        .filter(|t| {
            t.starts_with("publication") || t.starts_with("slot") || t.starts_with("subscription")
        })
        .collect();
    assert!(replication.is_empty(), "replication detached: {left:?}");
}

/// Every row the target takes in during the copy waits a little, so the
/// copy lasts long enough to be aborted in the middle: an event trigger
/// adds the slow trigger to whatever table the run creates (enabled
/// ALWAYS, as the copy runs with session_replication_role = replica).
const SLOW_COPY: &str = "
CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(0.005); RETURN NEW; END $$;
CREATE FUNCTION slow_new_tables() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' LOOP
    EXECUTE format('CREATE TRIGGER slow_row BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION slow_row()', r.object_identity);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER slow_row', r.object_identity);
  END LOOP;
END $$;
CREATE EVENT TRIGGER slow_new_tables ON ddl_command_end EXECUTE FUNCTION slow_new_tables();";

const MOVE: &str = r#"
name = "move users"
databases = ["target"]
[abort]
slot_retained_wal = "4GB"
[[phases]]
name = "replicate"
[[phases.steps]]
kind = "replicate"
to = "target"
tables = ["users"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abort_mid_copy_and_a_rollback_leave_no_trace_on_either_cluster() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (src, dst) = source_and_target("move_abort", 20_000).await;
    let target = dst.connect().await;
    target
        .client
        .batch_execute(SLOW_COPY)
        .await
        .expect("slow copy");
    let source = src.connect().await;
    let before = traces(&source, &target).await;
    let (_dir, plan) = write_plan(MOVE);
    let flag = format!("target={}", dst.url);
    let mut run = Running::spawn(
        &src.url,
        &["run", &plan, "--yes", "--json", "--database", &flag],
    );
    run.wait_event("step_started", LONG);
    poll_until_async("the initial copy to be under way", LONG, async || {
        let copying: i64 = scalar(
            &target,
            "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate = 'd'",
        )
        .await;
        copying > 0
    })
    .await;
    let (code, out, err) = cutover(&src.url, &["abort", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 3, "aborted:\n{}", lines.join("\n"));
    // The abort stopped the harm at once: no slot keeps the source's WAL.
    let slots: i64 = scalar(&source, "SELECT count(*) FROM pg_replication_slots").await;
    assert_eq!(slots, 0, "{:?}", traces(&source, &target).await);

    let (code, out, err) = cutover(&src.url, &["rollback", &plan, "--yes", "--database", &flag]);
    assert_eq!(code, 0, "rollback:\n{out}{err}");
    assert_eq!(
        traces(&source, &target).await,
        before,
        "both clusters are as they were"
    );
    // The run can start over from scratch afterwards.
    let status: String = scalar(&source, "SELECT status FROM cutover.runs").await;
    assert!(
        status == "rolled_back" || status == "aborted",
        "run status {status}"
    );
}

const MOVE_AND_COMPARE: &str = r#"
name = "move and compare users"
databases = ["target"]
[abort]
slot_retained_wal = "4GB"
[[phases]]
name = "replicate"
gate = "auto"
[[phases.steps]]
kind = "replicate"
to = "target"
tables = ["users"]
[[phases]]
name = "verify"
[[phases.steps]]
kind = "verify_across"
database = "target"
table = "users"
key = "id"
chunk = 500
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_that_differs_for_good_fails_the_compare_naming_its_range_and_key() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (src, dst) = source_and_target("move_differs", 5_000).await;
    let (source, target) = (src.connect().await, dst.connect().await);
    let before = traces(&source, &target).await;
    let (_dir, plan) = write_plan(MOVE_AND_COMPARE);
    let flag = format!("target={}", dst.url);
    let mut run = Running::spawn(&src.url, &["run", &plan, "--json", "--database", &flag]);
    run.wait_for("the gate before the compare", LONG, |v| {
        v["event"] == "gate_waiting" && v["phase"] == 1
    });
    // Someone writes on the target directly: replication will not undo it.
    target
        .client
        .batch_execute("UPDATE users SET name = 'changed on the target' WHERE id = 777")
        .await
        .expect("tamper");
    let (code, out, err) = cutover(&src.url, &["advance", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 3, "a failed compare aborts:\n{}", lines.join("\n"));
    let evs = events(&lines);
    let tripped = evs
        .iter()
        .find(|e| e["event"] == "criterion_tripped")
        .unwrap_or_else(|| panic!("no tripped criterion:\n{}", lines.join("\n")));
    let detail = tripped["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("id 500 (exclusive) to 1000"), "{detail}");
    assert!(detail.contains("id = 777"), "{detail}");
    let (code, out, err) = cutover(&src.url, &["rollback", &plan, "--yes", "--database", &flag]);
    assert_eq!(code, 0, "rollback:\n{out}{err}");
    assert_eq!(traces(&source, &target).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_retaining_more_wal_than_allowed_aborts_the_copy_and_removes_the_replication() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (src, dst) = source_and_target("move_retained", 20_000).await;
    let (source, target) = (src.connect().await, dst.connect().await);
    target
        .client
        .batch_execute(SLOW_COPY)
        .await
        .expect("slow copy");
    let before = traces(&source, &target).await;
    // The application writes WAL while the copy holds the slots back.
    let writer = Writer::start(&src.url);
    let (_dir, plan) = write_plan(&MOVE.replace("\"4GB\"", "\"64kB\""));
    let flag = format!("target={}", dst.url);
    let run = Running::spawn(
        &src.url,
        &["run", &plan, "--yes", "--json", "--database", &flag],
    );
    let (code, lines) = run.wait_exit(LONG);
    let _ = writer.stop().await;
    assert_eq!(code, 3, "the limit aborts the run:\n{}", lines.join("\n"));
    let evs = events(&lines);
    let tripped = evs
        .iter()
        .find(|e| e["event"] == "criterion_tripped")
        .unwrap_or_else(|| panic!("no tripped criterion:\n{}", lines.join("\n")));
    assert_eq!(tripped["criterion"], "slot_retained_wal", "{tripped}");
    // The abort itself removed what the step made: no slot keeps WAL.
    assert_eq!(traces(&source, &target).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_switchover_reports_and_waits_for_a_transaction_that_wrote() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (src, dst) = source_and_target("move_open_writer", 2_000).await;
    let (_dir, plan) = write_plan(&common::moving::move_and_switch("users"));
    let flag = format!("target={}", dst.url);
    let mut run = Running::spawn(&src.url, &["run", &plan, "--json", "--database", &flag]);
    run.wait_for("the gate before the switchover", LONG, |v| {
        v["event"] == "gate_waiting" && v["phase"] == 1
    });
    // An application transaction writes and stays open.
    let app = src.connect().await;
    app.client
        .batch_execute("BEGIN; UPDATE users SET name = 'written before the freeze' WHERE id = 42")
        .await
        .expect("open transaction");
    let pid = app.pid();
    let source = src.connect().await;
    poll_until_async("the transaction to be over a second old", LONG, async || {
        let age: f64 = source
            .client
            .query_one(
                "SELECT extract(epoch FROM now() - xact_start)::float8 FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .expect("age")
            .get(0);
        age > 1.5
    })
    .await;
    let (code, out, err) = cutover(&src.url, &["advance", &plan, "--confirm", "users"]);
    assert_eq!(code, 0, "{out}{err}");
    let notice = run.wait_for("the open writer to be reported", LONG, |v| {
        v["event"] == "notice"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("session {pid} ")))
    });
    assert!(run.is_running(), "the switchover waits: {notice}");
    app.client.batch_execute("COMMIT").await.expect("commit");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let target = dst.connect().await;
    let name: String = scalar(&target, "SELECT name FROM users WHERE id = 42").await;
    assert_eq!(
        name, "written before the freeze",
        "the last write reached the target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_between_two_databases_of_one_server_makes_its_slot_first() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (src, dst) =
        common::moving::source_and_target_on_one_server("move_one_server", 3_000).await;
    let (_dir, plan) = write_plan(&common::moving::move_and_switch("users"));
    let flag = format!("target={}", dst.url);
    let run = Running::spawn(
        &src.url,
        &["run", &plan, "--yes", "--json", "--database", &flag],
    );
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let (source, target) = (src.connect().await, dst.connect().await);
    assert_eq!(checksum(&source).await, checksum(&target).await);
    let slots: i64 = scalar(&source, "SELECT count(*) FROM pg_replication_slots").await;
    assert_eq!(slots, 0, "detached");
}
