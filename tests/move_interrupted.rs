//! A move interrupted. A switchover that fails at its very end, on either
//! side of its point of no return: before it, writes come back with the
//! replication whole; after it, the freeze stays (superusers and
//! replica-role sessions included), a rollback refuses to drop the tables
//! the application now writes to, and `cutover run` finishes the detach.
//! A copy whose connection to the target is lost carries on. And a slot
//! over `[abort] slot_retained_wal` while the run waits at a gate is
//! dropped.

mod common;

use std::time::Duration;

use common::moving::source_and_target;
use common::process::{Running, cutover, events};
use common::{PATIENCE, poll_until_async, scalar, write_plan};

const LONG: Duration = PATIENCE;

/// The clusters are shared by the tests of this binary and slots are per
/// cluster: one test at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An event trigger refusing one kind of DDL statement (`TAG`).
const REFUSE: &str = "
CREATE FUNCTION refuse_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'refused by the test: %', tg_tag; END $$;
CREATE EVENT TRIGGER refuse_ddl ON ddl_command_start WHEN TAG IN ('TAG')
  EXECUTE FUNCTION refuse_ddl();";

const LET_GO: &str = "DROP EVENT TRIGGER refuse_ddl";

const COUNT: &str = "SELECT count(*) FROM users";

/// Every row of users as one hash.
const CHECKSUM: &str = "SELECT md5(string_agg(ROW(id, name, email, age)::text, E'\\n' ORDER BY id)) \
     FROM users";

/// The move's replication objects left on either side.
async fn replication(source: &cutover::db::Conn, target: &cutover::db::Conn) -> Vec<String> {
    let mut found = Vec::new();
    for (conn, sql) in [
        (
            source,
            "SELECT 'publication ' || pubname FROM pg_publication",
        ),
        (
            source,
            "SELECT 'slot ' || slot_name FROM pg_replication_slots
             WHERE database = current_database()",
        ),
        (
            target,
            "SELECT 'subscription ' || subname FROM pg_subscription
             WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        ),
    ] {
        for row in conn.client.query(sql, &[]).await.expect("replication") {
            found.push(row.get::<_, String>(0));
        }
    }
    found
}

/// Whether an update of users on `conn` is refused by the freeze, first
/// as it is, then with `session_replication_role = replica`.
async fn frozen(conn: &cutover::db::Conn) -> (bool, bool) {
    let mut refused = Vec::new();
    for role in ["origin", "replica"] {
        let sql = format!(
            "SET session_replication_role = {role}; UPDATE users SET age = 7 WHERE id = 1; \
             RESET session_replication_role"
        );
        let r = conn.client.batch_execute(&sql).await;
        if let Err(e) = &r {
            assert!(cutover::db::describe(e).contains("are frozen"), "{e}");
            conn.client
                .batch_execute("RESET session_replication_role")
                .await
                .expect("reset");
        }
        refused.push(r.is_err());
    }
    (refused[0], refused[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switchover_stopped_past_its_point_of_no_return_stays_frozen_and_a_resume_finishes_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (src, dst) = source_and_target("switch_no_return", 2_000).await;
    let (source, target) = (src.connect().await, dst.connect().await);
    // The target refuses to drop the subscription: the detach stops
    // half-way.
    target
        .client
        .batch_execute(&REFUSE.replace("'TAG'", "'DROP SUBSCRIPTION'"))
        .await
        .expect("refuse");
    let (_dir, plan) = write_plan(&common::moving::move_and_switch("users"));
    let flag = format!("target={}", dst.url);
    let args = ["run", &plan, "--yes", "--json", "--database", &flag];
    let (code, lines) = Running::spawn(&src.url, &args).wait_exit(LONG);
    assert_ne!(code, 0, "the detach fails:\n{}", lines.join("\n"));
    assert_eq!(
        frozen(&source).await,
        (true, true),
        "writes stay refused on the source, replica role included:\n{}",
        lines.join("\n")
    );

    // Rolling back would drop the tables the application now writes to.
    let (code, out, err) = cutover(&src.url, &["rollback", &plan, "--yes", "--database", &flag]);
    assert_ne!(code, 0, "the rollback is refused:\n{out}{err}");
    assert!(
        format!("{out}{err}").contains("switched over"),
        "{out}{err}"
    );
    let rows: i64 = scalar(&target, COUNT).await;
    assert_eq!(rows, 2_000, "the target keeps its table");
    assert_eq!(frozen(&source).await, (true, true), "still frozen");

    target.client.batch_execute(LET_GO).await.expect("let go");
    let (code, lines) = Running::spawn(&src.url, &args).wait_exit(LONG);
    assert_eq!(code, 0, "the resume finishes:\n{}", lines.join("\n"));
    assert_eq!(replication(&source, &target).await, Vec::<String>::new());
    assert_eq!(frozen(&source).await, (true, true), "still frozen");
    let (a, b): (String, String) = (
        scalar(&source, CHECKSUM).await,
        scalar(&target, CHECKSUM).await,
    );
    assert_eq!(a, b, "the same rows on both sides");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switchover_stopped_before_its_point_of_no_return_lifts_the_freeze_with_the_replication_whole()
 {
    let _one = ONE_AT_A_TIME.lock().await;
    let (src, dst) = source_and_target("switch_before_return", 2_000).await;
    let (source, target) = (src.connect().await, dst.connect().await);
    // The source refuses to drop the publication: the switchover's first
    // irreversible statement.
    source
        .client
        .batch_execute(&REFUSE.replace("'TAG'", "'DROP PUBLICATION'"))
        .await
        .expect("refuse");
    let (_dir, plan) = write_plan(&common::moving::move_and_switch("users"));
    let flag = format!("target={}", dst.url);
    let args = ["run", &plan, "--yes", "--json", "--database", &flag];
    let (code, lines) = Running::spawn(&src.url, &args).wait_exit(LONG);
    assert_ne!(code, 0, "the detach fails:\n{}", lines.join("\n"));
    // Writes are allowed again only because the replication still carries
    // them: subscription, slot and publication all in place.
    assert_eq!(frozen(&source).await, (false, false));
    let left = replication(&source, &target).await;
    assert_eq!(left.len(), 3, "the replication is whole: {left:?}");
    source
        .client
        .batch_execute("INSERT INTO users (name, email) VALUES ('after the failure', 'a@b')")
        .await
        .expect("the source takes writes");

    source.client.batch_execute(LET_GO).await.expect("let go");
    let (code, lines) = Running::spawn(&src.url, &args).wait_exit(LONG);
    assert_eq!(code, 0, "the resume switches over:\n{}", lines.join("\n"));
    assert_eq!(replication(&source, &target).await, Vec::<String>::new());
    assert_eq!(frozen(&source).await, (true, true));
    let rows: i64 = scalar(&target, COUNT).await;
    assert_eq!(rows, 2_001, "the write made in between reached the target");
    let (a, b): (String, String) = (
        scalar(&source, CHECKSUM).await,
        scalar(&target, CHECKSUM).await,
    );
    assert_eq!(a, b, "the same rows on both sides");
}

/// Every row the target takes in during the copy waits a little, so the
/// copy lasts long enough to be interrupted (as in tests/move_cluster.rs).
const SLOW_COPY: &str = "
CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$;
CREATE FUNCTION slow_new_tables() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' LOOP
    EXECUTE format('CREATE TRIGGER slow_row BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION slow_row()', r.object_identity);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER slow_row', r.object_identity);
  END LOOP;
END $$;
CREATE EVENT TRIGGER slow_new_tables ON ddl_command_end EXECUTE FUNCTION slow_new_tables();";

/// Ends cutover's own sessions on the target database (not the
/// subscription's workers); returns how many.
const END_CUTOVER_SESSIONS: &str = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'cutover'
       AND pid <> pg_backend_pid()";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_whose_connection_to_the_target_is_lost_carries_on() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (src, dst) = source_and_target("copy_reconnects", 10_000).await;
    let (source, target) = (src.connect().await, dst.connect().await);
    target
        .client
        .batch_execute(SLOW_COPY)
        .await
        .expect("slow copy");
    let (_dir, plan) = write_plan(&common::moving::move_and_switch("users"));
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
    // The target's server restarts, or the network drops cutover's
    // session: the subscription there is untouched.
    let ended: i64 = scalar(&target, END_CUTOVER_SESSIONS).await;
    assert!(ended > 0, "cutover had a session on the target");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "the move carries on:\n{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("connecting to `target` again")),
        "the lost connection is reported:\n{}",
        lines.join("\n")
    );
    assert_eq!(replication(&source, &target).await, Vec::<String>::new());
    let (a, b): (String, String) = (
        scalar(&source, CHECKSUM).await,
        scalar(&target, CHECKSUM).await,
    );
    assert_eq!(a, b, "the same rows on both sides");
}

const MOVE_THEN_GATE: &str = r#"
name = "move users, then wait"
databases = ["target"]
[abort]
slot_retained_wal = "1MB"
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
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_over_its_limit_while_the_run_waits_at_a_gate_is_dropped() {
    slot_over_its_limit_at_a_gate("slot_at_gate", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_over_its_limit_while_a_resumed_run_waits_at_a_gate_is_dropped() {
    slot_over_its_limit_at_a_gate("slot_at_gate_resumed", true).await;
}

/// The run waits at the gate after the copy (in a second session after a
/// kill -9 when `resumed`) while the target stops consuming.
async fn slot_over_its_limit_at_a_gate(test: &str, resumed: bool) {
    let _one = ONE_AT_A_TIME.lock().await;
    let (src, dst) = source_and_target(test, 2_000).await;
    let (source, target) = (src.connect().await, dst.connect().await);
    let (_dir, plan) = write_plan(MOVE_THEN_GATE);
    let flag = format!("target={}", dst.url);
    let args = ["run", &plan, "--json", "--database", &flag];
    let at_gate = |v: &serde_json::Value| v["event"] == "gate_waiting" && v["phase"] == 1;
    let mut run = Running::spawn(&src.url, &args);
    run.wait_for("the gate before the compare", LONG, at_gate);
    if resumed {
        run.kill9();
        run = Running::spawn(&src.url, &args);
        run.wait_for("the resumed run at the gate", LONG, at_gate);
    }
    // The target stops consuming; the application keeps writing here.
    let sub: String = scalar(
        &target,
        "SELECT subname::text FROM pg_subscription
         WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await;
    target
        .client
        .batch_execute(&format!("ALTER SUBSCRIPTION {sub} DISABLE"))
        .await
        .expect("disable");
    source
        .client
        .batch_execute(
            "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS f FROM generate_series(1, 20000) g",
        )
        .await
        .expect("write WAL");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 3, "the limit aborts the run:\n{}", lines.join("\n"));
    let evs = events(&lines);
    assert!(
        evs.iter()
            .any(|e| e["event"] == "criterion_tripped" && e["criterion"] == "slot_retained_wal"),
        "{}",
        lines.join("\n")
    );
    let slots: i64 = scalar(
        &source,
        "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()",
    )
    .await;
    assert_eq!(slots, 0, "no slot keeps WAL:\n{}", lines.join("\n"));
    let (code, out, err) = cutover(&src.url, &["rollback", &plan, "--yes", "--database", &flag]);
    assert_eq!(code, 0, "rollback:\n{out}{err}");
    assert_eq!(replication(&source, &target).await, Vec::<String>::new());
}
