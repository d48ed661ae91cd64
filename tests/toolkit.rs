//! The expand/contract toolkit: every shipped plan under live writes,
//! rollback from every gate, abort inside every step kind, the safe NOT
//! NULL's locks, and the checksum compare.

mod common;

use std::time::Duration;

use common::app::Writer;
use common::locks::{wait_for_lock_wait, wait_until_not_running};
use common::process::{Running, cutover, events};
use common::{PATIENCE, TestDb, catalog, scalar, seeded_db, shipped_plan, write_plan};

const LONG: Duration = PATIENCE;

/// Runs a plan, releasing gates with `cutover advance` while the writer
/// runs; before an irreversible phase, stops the writer and runs `check`
/// (no row lost or stale). Returns the writes done.
async fn run_with_writer(db: &TestDb, plan: &str, check: &str) -> u64 {
    let writer = Writer::start(&db.url);
    let mut run = Running::spawn(&db.url, &["run", plan, "--json"]);
    let mut writer = Some(writer);
    let mut writes = 0;
    loop {
        let v = run.wait_for("a gate or the end", LONG, |v| {
            v["event"] == "gate_waiting"
                || v["event"] == "finished"
                || v["event"] == "failed"
                || v["event"] == "aborted"
        });
        if v["event"] != "gate_waiting" {
            break;
        }
        // Let the application write in every phase, the one before an
        // irreversible gate included.
        if let Some(w) = &writer {
            w.wait_for_writes(60, LONG).await;
        }
        if v["irreversible"] == true
            && let Some(w) = writer.take()
        {
            let (n, errors) = w.stop().await;
            writes = n;
            assert!(errors.is_empty(), "the application saw errors: {errors:#?}");
            let conn = db.connect().await;
            let stale: i64 = scalar(&conn, check).await;
            assert_eq!(stale, 0, "rows lost or stale after {n} writes ({check})");
        }
        // An irreversible gate is released with the name the cockpit asks for.
        let word = confirm_word(plan);
        let (code, out, err) = cutover(&db.url, &["advance", plan, "--confirm", &word]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    if let Some(w) = writer.take() {
        let (n, errors) = w.stop().await;
        writes = n;
        assert!(errors.is_empty(), "the application saw errors: {errors:#?}");
        let conn = db.connect().await;
        let stale: i64 = scalar(&conn, check).await;
        assert_eq!(stale, 0, "rows lost or stale after {n} writes ({check})");
    }
    assert!(writes > 50, "the writer barely ran ({writes} writes)");
    writes
}

/// The table name `cutover advance --confirm` wants for a plan's
/// irreversible gate (ignored at other gates).
fn confirm_word(plan: &str) -> String {
    let loaded = cutover::plan::load(std::path::Path::new(plan)).expect("plan loads");
    cutover::plan::main_table(&loaded.plan)
}

async fn columns(db: &TestDb, table: &str) -> Vec<String> {
    let conn = db.connect().await;
    conn.client
        .query(
            "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns
             WHERE table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn not_null_column_plan_under_writes() {
    let db = seeded_db("tk_not_null", 20_000).await;
    run_with_writer(
        &db,
        &shipped_plan("not_null_column.toml"),
        "SELECT count(*) FROM users WHERE status IS NULL",
    )
    .await;
    assert!(
        columns(&db, "users")
            .await
            .contains(&"status text NO".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn rename_column_with_trigger_plan_under_writes() {
    let db = seeded_db("tk_rename", 20_000).await;
    run_with_writer(
        &db,
        &shipped_plan("rename_column_with_trigger.toml"),
        "SELECT count(*) FROM users WHERE full_name IS DISTINCT FROM name",
    )
    .await;
    let cols = columns(&db, "users").await;
    assert!(cols.contains(&"full_name text NO".to_string()), "{cols:?}");
    assert!(!cols.iter().any(|c| c.starts_with("name ")), "{cols:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn change_type_plan_under_writes() {
    let db = seeded_db("tk_type", 20_000).await;
    run_with_writer(
        &db,
        &shipped_plan("change_type_int_to_bigint.toml"),
        "SELECT count(*) FROM users WHERE age IS DISTINCT FROM age_old",
    )
    .await;
    let cols = columns(&db, "users").await;
    assert!(cols.contains(&"age bigint YES".to_string()), "{cols:?}");
    assert!(!cols.iter().any(|c| c.starts_with("age_old")), "{cols:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn split_table_plan_under_writes() {
    let db = seeded_db("tk_split", 20_000).await;
    run_with_writer(
        &db,
        &shipped_plan("split_table.toml"),
        "SELECT count(*) FROM users u FULL JOIN addresses a ON a.user_id = u.id
         WHERE a.user_id IS NULL OR u.id IS NULL
            OR (u.street, u.city, u.country) IS DISTINCT FROM (a.street, a.city, a.country)",
    )
    .await;
    let cols = columns(&db, "users").await;
    assert!(!cols.iter().any(|c| c.starts_with("street")), "{cols:?}");
    let conn = db.connect().await;
    let fk: bool = scalar(
        &conn,
        "SELECT convalidated FROM pg_constraint WHERE conname = 'addresses_user_id_fkey'",
    )
    .await;
    assert!(fk, "the foreign key is validated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn table_rewrite_plan_under_writes() {
    let db = seeded_db("tk_rewrite", 20_000).await;
    run_with_writer(
        &db,
        &shipped_plan("table_rewrite_v2.toml"),
        "SELECT count(*) FROM users n FULL JOIN users_old o ON o.id = n.id
         WHERE n.id IS NULL OR o.id IS NULL
            OR (n.name, n.email, n.age, n.street, n.city, n.country, n.created_at)
               IS DISTINCT FROM (o.name, o.email, o.age, o.street, o.city, o.country, o.created_at)",
    )
    .await;
    let conn = db.connect().await;
    let opts: Vec<String> = scalar(
        &conn,
        "SELECT reloptions FROM pg_class WHERE relname = 'users'",
    )
    .await;
    assert_eq!(opts, ["fillfactor=90"]);
    let old: i64 = scalar(
        &conn,
        "SELECT count(*) FROM pg_class WHERE relname = 'users_old'",
    )
    .await;
    assert_eq!(old, 0);
    // New rows still get ids from the same sequence.
    let next: i64 = scalar(
        &conn,
        "INSERT INTO users (name, email) VALUES ('after', 'after@example.com') RETURNING id",
    )
    .await;
    assert!(next > 20_000);
}

/// Stops a run at its n-th gate (aborting it there), rolls it back, and
/// compares the catalog with the one before. Returns false once the plan
/// finishes before reaching that gate (then a rollback must be refused if
/// the plan has an irreversible phase).
async fn rollback_at_gate(plan_file: &str, n: usize) -> bool {
    let db = seeded_db(
        &format!("rb_{}_{n}", plan_file.trim_end_matches(".toml")),
        3_000,
    )
    .await;
    let conn = db.connect().await;
    let before = catalog(&conn).await;
    let plan = shipped_plan(plan_file);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    let mut seen = 0;
    let reached = loop {
        let v = run.wait_for("gate or end", LONG, |v| {
            v["event"] == "gate_waiting" || v["event"] == "finished"
        });
        if v["event"] == "finished" {
            break false;
        }
        seen += 1;
        if seen == n {
            break true;
        }
        cutover(
            &db.url,
            &["advance", &plan, "--confirm", &confirm_word(&plan)],
        );
    };
    if reached {
        let (code, _, _) = cutover(&db.url, &["abort", &plan]);
        assert_eq!(code, 0);
        assert_eq!(run.wait_exit(LONG).0, 3);
    } else {
        assert_eq!(run.wait_exit(LONG).0, 0);
    }
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    let irreversible = std::fs::read_to_string(&plan)
        .unwrap()
        .contains("irreversible = true");
    if !reached && irreversible {
        assert_eq!(
            code, 1,
            "{plan_file}: rollback of a finished plan must be refused\n{out}{err}"
        );
        assert!(err.contains("irreversible"), "{out}{err}");
        return false;
    }
    assert_eq!(code, 0, "{plan_file} gate {n}: {out}{err}");
    let after = catalog(&conn).await;
    assert_eq!(
        after, before,
        "{plan_file}: rollback at gate {n} left the schema changed"
    );
    reached
}

async fn rollback_from_every_gate(plan_file: &str) {
    let mut n = 1;
    while rollback_at_gate(plan_file, n).await {
        n += 1;
    }
    assert!(n >= 2, "{plan_file} has no gate to stop at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_from_every_phase_of_not_null_column() {
    rollback_from_every_gate("not_null_column.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_from_every_phase_of_rename_column_with_trigger() {
    rollback_from_every_gate("rename_column_with_trigger.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_from_every_phase_of_change_type() {
    rollback_from_every_gate("change_type_int_to_bigint.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_from_every_phase_of_split_table() {
    rollback_from_every_gate("split_table.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_from_every_phase_of_table_rewrite() {
    rollback_from_every_gate("table_rewrite_v2.toml").await;
}

/// How an abort meets a step blocked on its lock.
#[derive(Clone, Copy, PartialEq)]
enum Blocked {
    /// The abort cancels the waiting statement.
    Cancelled,
    /// The step finishes its short critical section first.
    FinishesFirst,
}

/// A one-step plan of `step` (TOML of one `[[phases.steps]]` body), run
/// while another session holds ACCESS EXCLUSIVE on users, then aborted.
async fn abort_while_blocked(
    test: &str,
    setup: &str,
    step: &str,
    blocked: Blocked,
) -> (TestDb, Vec<String>, Vec<String>) {
    let db = seeded_db(test, 2_000).await;
    let conn = db.connect().await;
    if !setup.is_empty() {
        conn.client.batch_execute(setup).await.unwrap();
    }
    let before = catalog(&conn).await;
    let holder = db.connect().await;
    holder
        .client
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    let (_dir, plan) = write_plan(&format!(
        "name = \"abort {test}\"\n[settings]\nlock_timeout = \"30s\"\n[[phases]]\nname = \"p\"\ngate = \"auto\"\n[[phases.steps]]\n{step}\n"
    ));
    // A step that finishes first must meet the abort at its gate, not run on.
    let args: &[&str] = match blocked {
        Blocked::Cancelled => &["run", &plan, "--yes", "--json"],
        Blocked::FinishesFirst => &["run", &plan, "--json"],
    };
    let mut run = Running::spawn(&db.url, args);
    run.wait_event("step_started", LONG);
    let step_waits = wait_for_lock_wait(&conn, "a.application_name = 'cutover'").await;
    let (code, _, _) = cutover(&db.url, &["abort", &plan]);
    assert_eq!(code, 0);
    if blocked == Blocked::Cancelled {
        // Released only once the abort has cancelled the waiting statement
        // (else the step could take the lock and finish first); clean-up
        // may need the lock too.
        wait_until_not_running(&conn, step_waits.pid, &step_waits.query).await;
    }
    holder.client.batch_execute("COMMIT").await.unwrap();
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 3, "{}", lines.join("\n"));
    let after = catalog(&conn).await;
    (db, before, after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_inside_each_step_kind_leaves_nothing_behind() {
    let cases: [(&str, &str, &str); 5] = [
        (
            "ab_sql",
            "",
            "kind = \"sql\"\nsql = \"ALTER TABLE users ADD COLUMN x int\"\nrollback = \"ALTER TABLE users DROP COLUMN x\"",
        ),
        (
            "ab_trigger",
            "ALTER TABLE users ADD COLUMN full_name text",
            "kind = \"sync_trigger\"\nname = \"t\"\ntable = \"users\"\nold = \"name\"\nnew = \"full_name\"",
        ),
        (
            "ab_not_null",
            "",
            "kind = \"not_null\"\ntable = \"users\"\ncolumn = \"street\"",
        ),
        (
            "ab_check",
            "",
            "kind = \"constraint\"\nname = \"age_ok\"\ntable = \"users\"\ndefinition = \"CHECK (age >= 0)\"",
        ),
        (
            "ab_unique",
            "",
            "kind = \"constraint\"\nname = \"users_email_key\"\ntable = \"users\"\ndefinition = \"UNIQUE (email)\"",
        ),
    ];
    for (test, setup, step) in cases {
        let (_db, before, after) = abort_while_blocked(test, setup, step, Blocked::Cancelled).await;
        assert_eq!(after, before, "{test}: abort left an artifact");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_inside_a_swap_waits_for_the_swap_to_end() {
    let (db, before, after) = abort_while_blocked(
        "ab_swap",
        "ALTER TABLE users ADD COLUMN age_new bigint",
        "kind = \"swap\"\nrenames = [{ table = \"users\", from = \"age\", to = \"age_old\" }, { table = \"users\", from = \"age_new\", to = \"age\" }]\n[[phases.steps]]\nkind = \"gate\"\nmessage = \"after the swap\"",
        // Whether the abort arrives inside the swap or after it, at the
        // gate (released by no --yes), the swap is whole and the run stops.
        Blocked::FinishesFirst,
    )
    .await;
    // The swap completed as one transaction; the abort took effect after it.
    assert_ne!(after, before);
    let cols = columns(&db, "users").await;
    assert!(cols.contains(&"age bigint YES".to_string()), "{cols:?}");
    assert!(
        cols.contains(&"age_old integer YES".to_string()),
        "{cols:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_validation_cleans_up_half_made_constraints() {
    let db = seeded_db("half_made", 2_000).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute("UPDATE users SET street = NULL WHERE id = 7; UPDATE users SET email = 'dup@example.com' WHERE id IN (1, 2)")
        .await
        .unwrap();
    let before = catalog(&conn).await;
    for (what, step) in [
        (
            "not_null with NULLs left",
            "kind = \"not_null\"\ntable = \"users\"\ncolumn = \"street\"",
        ),
        (
            "check that rows violate",
            "kind = \"constraint\"\nname = \"c\"\ntable = \"users\"\ndefinition = \"CHECK (street IS NOT NULL)\"",
        ),
        (
            "unique with duplicates",
            "kind = \"constraint\"\nname = \"users_email_key\"\ntable = \"users\"\ndefinition = \"UNIQUE (email)\"",
        ),
    ] {
        let (_dir, plan) = write_plan(&format!(
            "name = \"{what}\"\n[[phases]]\nname = \"p\"\ngate = \"auto\"\n[[phases.steps]]\n{step}\n"
        ));
        let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
        assert_eq!(code, 1, "{what}: {out}{err}");
        assert_eq!(
            catalog(&conn).await,
            before,
            "{what}: left a half-made constraint\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_null_never_scans_under_access_exclusive() {
    let db = seeded_db("nn_locks", 1_000_000).await;
    let (_dir, plan) = write_plan(
        "name = \"street not null\"\n[[phases]]\nname = \"p\"\ngate = \"auto\"\n[[phases.steps]]\nkind = \"not_null\"\ntable = \"users\"\ncolumn = \"street\"\n",
    );
    // At the end of each DDL command, still inside its transaction, record
    // the locks its session holds on users: every lock the command took.
    // (Sampling pg_locks from outside can miss a fast scan.)
    let admin = db.connect().await;
    admin
        .client
        .batch_execute(
            "CREATE TABLE ddl_locks (query text, mode text);
             CREATE FUNCTION log_ddl_locks() RETURNS event_trigger LANGUAGE plpgsql AS $$
             BEGIN
               INSERT INTO public.ddl_locks
               SELECT current_query(), mode FROM pg_locks
                WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted
                  AND relation = 'public.users'::regclass;
             END $$;
             CREATE EVENT TRIGGER log_ddl_locks ON ddl_command_end
               EXECUTE FUNCTION log_ddl_locks();",
        )
        .await
        .unwrap();
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let rows = admin
        .client
        .query(
            "SELECT DISTINCT mode FROM ddl_locks WHERE query ILIKE '%VALIDATE CONSTRAINT%'",
            &[],
        )
        .await
        .unwrap();
    let during_validate: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        during_validate,
        ["ShareUpdateExclusiveLock"],
        "the scan (VALIDATE) held only SHARE UPDATE EXCLUSIVE on users"
    );
    let not_null: bool = scalar(
        &admin,
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'street'",
    )
    .await;
    assert!(not_null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_finds_one_changed_row_in_a_million() {
    let db = seeded_db("checksum", 1_000_000).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute(
            "CREATE TABLE users_copy AS SELECT * FROM users;
             ALTER TABLE users_copy ADD PRIMARY KEY (id);
             UPDATE users_copy SET city = 'Changed' WHERE id = 654321;",
        )
        .await
        .unwrap();
    let (_dir, plan) = write_plan(
        "name = \"compare\"\n[[phases]]\nname = \"p\"\ngate = \"auto\"\n[[phases.steps]]\nkind = \"verify\"\ncompare = { left = \"users\", right = \"users_copy\", key = \"id\" }\n",
    );
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--json"]);
    assert_eq!(code, 3, "a mismatch aborts: {out}{err}");
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    let trip = events(&lines)
        .into_iter()
        .find(|e| e["event"] == "criterion_tripped")
        .expect("criterion_tripped");
    assert_eq!(trip["criterion"], "failed_verification");
    assert_eq!(trip["value"], "1 mismatching range(s)");
    let detail = trip["detail"].as_str().unwrap();
    // "… differ in id 650000 (exclusive) to 700000: 50000 rows left, 50000 right"
    let nums: Vec<i64> = detail
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    assert!(nums.len() >= 2, "{detail}");
    let (lo, hi) = (nums[0], nums[1]);
    assert!(
        lo < 654_321 && 654_321 <= hi,
        "range {lo}..{hi} misses the row: {detail}"
    );
    // An identical pair passes.
    conn.client
        .batch_execute("UPDATE users_copy SET city = (SELECT city FROM users WHERE id = 654321) WHERE id = 654321")
        .await
        .unwrap();
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("match: 1000000 rows in 20 chunks"), "{out}");
}
