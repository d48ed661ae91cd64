//! Safety before the first statement: the lock table checked against a live
//! server's pg_locks, `lint` / `plan` / `check` from the command line, and
//! `run` refusing an unsafe plan.

mod common;

use std::time::{Duration, Instant};

use common::process::cutover;
use common::{
    TestDb, connect, fresh_db, scalar, seeded_db, seeded_db_with_replica, shipped_plan, write_plan,
};
use cutover::db::Conn;
use cutover::lint::Schema;
use cutover::lint::locks::{LockMode, effects};
use cutover::sql;

fn unsafe_plan() -> String {
    format!("{}/tests/plans/unsafe.toml", env!("CARGO_MANIFEST_DIR"))
}

/// `users` (seeded) plus what the statements below act on.
async fn lock_db(test: &str) -> TestDb {
    let db = seeded_db(test, 200).await;
    db.connect()
        .await
        .client
        .batch_execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);
             CREATE INDEX users_email_idx ON users (email);
             CREATE UNIQUE INDEX users_email_uq ON users (email);
             ALTER TABLE users ADD CONSTRAINT users_age_nonneg CHECK (age >= 0) NOT VALID;
             CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
             CREATE TRIGGER users_noop BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION noop();",
        )
        .await
        .expect("set up");
    db
}

async fn oid(conn: &Conn, rel: &str) -> u32 {
    scalar::<u32>(conn, &format!("SELECT '{rel}'::regclass::oid")).await
}

/// The strongest mode this backend holds (or waits for) on a relation.
async fn strongest(conn: &Conn, pid: i32, rel_oid: u32, granted: bool) -> Option<LockMode> {
    conn.client
        .query(
            "SELECT mode FROM pg_locks WHERE pid = $1 AND locktype = 'relation'
               AND relation = $2 AND granted = $3",
            &[&pid, &rel_oid, &granted],
        )
        .await
        .expect("pg_locks")
        .iter()
        .filter_map(|r| LockMode::parse(r.get::<_, &str>(0)))
        .max()
}

/// What cutover's lock table says about `relation` for `statement`.
fn predicted(statement: &str, relation: &str) -> LockMode {
    let stmts = sql::parse(statement);
    assert_eq!(stmts.len(), 1, "{statement}");
    let effects = effects(&stmts[0], &Schema::new(15))
        .unwrap_or_else(|| panic!("no lock-table entry for {statement}"));
    effects
        .iter()
        .find(|e| e.relation.split(' ').next() == Some(relation))
        .unwrap_or_else(|| panic!("{statement}: no entry for {relation}: {effects:?}"))
        .mode
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_table_matches_pg_locks_inside_a_rolled_back_transaction() {
    let db = lock_db("locks_tx").await;
    let conn = db.connect().await;
    let pid: i32 = scalar(&conn, "SELECT pg_backend_pid()").await;
    // (statement, relations whose lock is predicted and observed)
    let cases: &[(&str, &[&str])] = &[
        ("ALTER TABLE users ADD COLUMN c int", &["users"]),
        (
            "ALTER TABLE users ADD COLUMN c int DEFAULT random()",
            &["users"],
        ),
        ("ALTER TABLE users DROP COLUMN street", &["users"]),
        ("ALTER TABLE users ALTER COLUMN age TYPE bigint", &["users"]),
        (
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
            &["users"],
        ),
        (
            "ALTER TABLE users ALTER COLUMN age SET DEFAULT 0",
            &["users"],
        ),
        (
            "ALTER TABLE users ALTER COLUMN age SET STATISTICS 500",
            &["users"],
        ),
        ("ALTER TABLE users SET (fillfactor = 90)", &["users"]),
        (
            "ALTER TABLE users ADD CONSTRAINT c CHECK (age < 200) NOT VALID",
            &["users"],
        ),
        (
            "ALTER TABLE users ADD CONSTRAINT c CHECK (age < 200)",
            &["users"],
        ),
        (
            "ALTER TABLE users VALIDATE CONSTRAINT users_age_nonneg",
            &["users"],
        ),
        (
            "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
            &["orders", "users"],
        ),
        (
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_uq",
            &["users"],
        ),
        ("ALTER TABLE users RENAME COLUMN city TO town", &["users"]),
        ("ALTER TABLE users RENAME TO people", &["users"]),
        ("ALTER TABLE users DISABLE TRIGGER users_noop", &["users"]),
        ("CREATE INDEX users_age_idx ON users (age)", &["users"]),
        ("DROP INDEX users_email_idx", &["users_email_idx"]),
        (
            "CREATE TRIGGER t2 BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION noop()",
            &["users"],
        ),
        ("DROP TRIGGER users_noop ON users", &["users"]),
        ("UPDATE users SET age = age WHERE id = 1", &["users"]),
        ("DELETE FROM users WHERE id = 2", &["users"]),
        (
            "INSERT INTO orders (id, user_id) VALUES (1, 1)",
            &["orders"],
        ),
        ("TRUNCATE orders", &["orders"]),
        ("LOCK TABLE users IN SHARE MODE", &["users"]),
        ("CLUSTER users USING users_pkey", &["users"]),
        ("REINDEX TABLE users", &["users"]),
        ("DROP TABLE orders", &["orders"]),
    ];
    let mut checked = 0;
    for (statement, relations) in cases {
        let mut oids = Vec::new();
        for rel in *relations {
            oids.push((rel, oid(&conn, rel).await));
        }
        conn.client.batch_execute("BEGIN").await.expect("begin");
        conn.client
            .batch_execute(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        for (rel, rel_oid) in &oids {
            let seen = strongest(&conn, pid, *rel_oid, true).await;
            assert_eq!(
                seen,
                Some(predicted(statement, rel)),
                "{statement}: pg_locks on {rel} shows {seen:?}"
            );
            checked += 1;
        }
        conn.client
            .batch_execute("ROLLBACK")
            .await
            .expect("rollback");
    }
    assert!(checked >= 28, "{checked} locks compared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_that_cannot_run_in_a_transaction_request_the_predicted_lock() {
    // Session A holds SHARE UPDATE EXCLUSIVE on users: session B's statement
    // gets its ACCESS SHARE look-ups, then waits at its main lock, and
    // pg_locks shows the mode it asks for.
    let db = lock_db("locks_wait").await;
    let holder = db.connect().await;
    let observer = db.connect().await;
    let users = oid(&observer, "users").await;
    for statement in [
        "CREATE INDEX CONCURRENTLY users_age_idx ON users (age)",
        "REINDEX TABLE CONCURRENTLY users",
        "VACUUM users",
        "VACUUM FULL users",
        "CLUSTER users USING users_pkey",
    ] {
        holder
            .client
            .batch_execute("BEGIN; LOCK TABLE users IN SHARE UPDATE EXCLUSIVE MODE")
            .await
            .expect("hold");
        let worker = db.connect().await;
        let pid: i32 = scalar(&worker, "SELECT pg_backend_pid()").await;
        let task = tokio::spawn(async move {
            let r = worker.client.batch_execute(statement).await;
            drop(worker);
            r.map_err(|e| e.to_string())
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let requested = loop {
            if let Some(m) = strongest(&observer, pid, users, false).await {
                break m;
            }
            assert!(
                Instant::now() < deadline,
                "{statement} never waited on users"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(requested, predicted(statement, "users"), "{statement}");
        holder
            .client
            .batch_execute("ROLLBACK")
            .await
            .expect("release");
        let done = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("statement finished")
            .expect("task");
        assert!(done.is_ok(), "{statement}: {done:?}");
        if statement.starts_with("CREATE INDEX") {
            observer
                .client
                .batch_execute("DROP INDEX users_age_idx")
                .await
                .expect("drop");
        }
    }
}

/// What cutover's lock table says for the first relation `statement` names
/// (for entries named in words: "every table using domain d").
fn predicted_first(statement: &str) -> Option<LockMode> {
    let stmts = sql::parse(statement);
    assert_eq!(stmts.len(), 1, "{statement}");
    effects(&stmts[0], &Schema::new(15))
        .unwrap_or_else(|| panic!("no lock-table entry for {statement}"))
        .first()
        .map(|e| e.mode)
}

/// Partitions, a domain in use, a materialized view, an exclusion-ready
/// table and a schema with a table, beside `users` and `orders`.
async fn newer_forms_db(test: &str) -> TestDb {
    let db = lock_db(test).await;
    db.connect()
        .await
        .client
        .batch_execute(
            "CREATE TABLE m (id int, at date) PARTITION BY RANGE (at);
             CREATE TABLE m_2023 PARTITION OF m FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
             CREATE TABLE m_2024 (id int, at date);
             INSERT INTO m_2024 VALUES (1, '2024-06-01');
             CREATE DOMAIN positive AS int;
             ALTER DOMAIN positive ADD CONSTRAINT positive_nv CHECK (VALUE > -1000) NOT VALID;
             CREATE TABLE amounts (id int NOT NULL, v positive);
             INSERT INTO amounts VALUES (1, 5);
             CREATE MATERIALIZED VIEW user_count AS SELECT count(*) AS n FROM users;
             CREATE UNIQUE INDEX user_count_n ON user_count (n);
             CREATE TABLE bookings (room int, during int4range);
             CREATE SCHEMA legacy;
             CREATE TABLE legacy.t (id int);",
        )
        .await
        .expect("set up");
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_table_matches_pg_locks_for_the_newer_forms() {
    let db = newer_forms_db("locks_newer").await;
    let conn = db.connect().await;
    let pid: i32 = scalar(&conn, "SELECT pg_backend_pid()").await;
    // (statement, relations whose lock is predicted and observed by name)
    let by_name: &[(&str, &[&str])] = &[
        ("ALTER TABLE m DETACH PARTITION m_2023", &["m", "m_2023"]),
        (
            "ALTER TABLE m ATTACH PARTITION m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
            &["m", "m_2024"],
        ),
        (
            "ALTER TABLE users ADD COLUMN n int CHECK (n > 0)",
            &["users"],
        ),
        (
            "ALTER TABLE orders ADD COLUMN u2 bigint DEFAULT 1 REFERENCES users (id)",
            &["orders", "users"],
        ),
        (
            "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&)",
            &["bookings"],
        ),
        ("TRUNCATE orders CASCADE", &["orders"]),
        (
            "ALTER TABLE users ALTER COLUMN age DROP DEFAULT",
            &["users"],
        ),
        (
            "ALTER TABLE amounts ALTER COLUMN id DROP NOT NULL",
            &["amounts"],
        ),
        ("ALTER TABLE users SET UNLOGGED", &["users"]),
        ("ALTER TABLE users SET TABLESPACE pg_default", &["users"]),
        ("REFRESH MATERIALIZED VIEW user_count", &["user_count"]),
        (
            "REFRESH MATERIALIZED VIEW CONCURRENTLY user_count",
            &["user_count"],
        ),
    ];
    // (statement, the relation pg_locks shows for an entry named in words)
    let in_words: &[(&str, &str)] = &[
        (
            "ALTER DOMAIN positive ADD CONSTRAINT positive_check CHECK (VALUE > 0)",
            "amounts",
        ),
        (
            "ALTER DOMAIN positive ADD CONSTRAINT positive_check CHECK (VALUE > 0) NOT VALID",
            "amounts",
        ),
        (
            "ALTER DOMAIN positive VALIDATE CONSTRAINT positive_nv",
            "amounts",
        ),
        ("DROP SCHEMA legacy CASCADE", "legacy.t"),
    ];
    let mut checked = 0;
    let cases = by_name
        .iter()
        .map(|(s, rels)| {
            (
                *s,
                rels.iter()
                    .map(|r| (*r, Some(predicted(s, r))))
                    .collect::<Vec<_>>(),
            )
        })
        .chain(
            in_words
                .iter()
                .map(|(s, rel)| (*s, vec![(*rel, predicted_first(s))])),
        );
    for (statement, expected) in cases {
        let mut oids = Vec::new();
        for (rel, mode) in &expected {
            oids.push((*rel, oid(&conn, rel).await, *mode));
        }
        conn.client.batch_execute("BEGIN").await.expect("begin");
        conn.client
            .batch_execute(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        for (rel, rel_oid, mode) in &oids {
            let seen = strongest(&conn, pid, *rel_oid, true).await;
            assert_eq!(seen, *mode, "{statement}: pg_locks on {rel} shows {seen:?}");
            checked += 1;
        }
        conn.client
            .batch_execute("ROLLBACK")
            .await
            .expect("rollback");
    }
    assert!(checked >= 18, "{checked} locks compared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_partition_concurrently_requests_the_predicted_lock_outside_a_transaction() {
    // It cannot run in a transaction block: hold SHARE UPDATE EXCLUSIVE on
    // the parent, and watch the mode it waits for.
    let db = newer_forms_db("locks_detach").await;
    let holder = db.connect().await;
    let observer = db.connect().await;
    let parent = oid(&observer, "m").await;
    let statement = "ALTER TABLE m DETACH PARTITION m_2023 CONCURRENTLY";
    assert!(sql::parse(statement)[0].needs_autocommit());
    holder
        .client
        .batch_execute("BEGIN; LOCK TABLE m IN SHARE UPDATE EXCLUSIVE MODE")
        .await
        .expect("hold");
    let worker = db.connect().await;
    let pid: i32 = scalar(&worker, "SELECT pg_backend_pid()").await;
    let task = tokio::spawn(async move {
        let r = worker.client.batch_execute(statement).await;
        drop(worker);
        r.map_err(|e| e.to_string())
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let requested = loop {
        if let Some(m) = strongest(&observer, pid, parent, false).await {
            break m;
        }
        assert!(Instant::now() < deadline, "{statement} never waited on m");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(requested, predicted(statement, "m"), "{statement}");
    holder
        .client
        .batch_execute("ROLLBACK")
        .await
        .expect("release");
    let done = tokio::time::timeout(Duration::from_secs(120), task)
        .await
        .expect("statement finished")
        .expect("task");
    assert!(done.is_ok(), "{statement}: {done:?}");
    let attached: bool = scalar(
        &observer,
        "SELECT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = 'm_2023'::regclass)",
    )
    .await;
    assert!(!attached, "the partition is detached");
}

#[test]
fn every_shipped_plan_lints_clean() {
    let plans: Vec<String> = std::fs::read_dir(format!("{}/plans", env!("CARGO_MANIFEST_DIR")))
        .expect("plans/")
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".toml"))
        .collect();
    assert!(plans.len() >= 8, "{plans:?}");
    let mut args = vec!["lint"];
    args.extend(plans.iter().map(String::as_str));
    let (code, out, err) = cutover("postgres://unused@127.0.0.1:1/none", &args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("no unsafe statements in {} files", plans.len())),
        "{out}"
    );
}

#[test]
fn lint_prints_findings_like_a_compiler_and_fails() {
    let plan = unsafe_plan();
    let (code, out, err) = cutover("postgres://unused@127.0.0.1:1/none", &["lint", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    // file:line:col of the statement inside the TOML string, rule, help.
    assert!(
        out.contains("error[create-index-not-concurrently]"),
        "{out}"
    );
    assert!(out.contains("unsafe.toml:11:8 (phase `expand`"), "{out}");
    assert!(out.contains("error[update-without-where]"), "{out}");
    assert!(out.contains("unsafe.toml:19:1"), "{out}");
    assert!(out.contains("help: use a `backfill` step"), "{out}");
    assert!(out.contains("allowed[vacuum-full]"), "{out}");
    assert!(out.contains("allowed by the step: users is 8 kB"), "{out}");

    let (code, json, _) = cutover(
        "postgres://unused@127.0.0.1:1/none",
        &["lint", "--format", "json", &plan],
    );
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(doc["errors"], 3, "{doc:#}");
    assert_eq!(doc["allowed"], 1, "{doc:#}");
    let first = &doc["findings"][0];
    assert_eq!(first["rule_name"], "create-index-not-concurrently");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(11), Some(8))
    );

    // A .sql file, and the version switch.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("m.sql");
    std::fs::write(
        &file,
        "-- add a flag\nALTER TABLE users ADD COLUMN flag boolean DEFAULT false;\n",
    )
    .expect("write");
    let f = file.display().to_string();
    let (code, out, _) = cutover("postgres://unused@127.0.0.1:1/none", &["lint", &f]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = cutover(
        "postgres://unused@127.0.0.1:1/none",
        &["lint", "--pg-version", "10", &f],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("m.sql:2:1"), "{out}");
    assert!(out.contains("add-column-rewrites"), "{out}");
}

#[test]
fn plan_shows_every_statement_with_its_locks_and_runs_nothing() {
    let (code, out, err) = cutover(
        "postgres://unused@127.0.0.1:1/none",
        &["plan", &shipped_plan("rename_column_with_trigger.toml")],
    );
    assert_eq!(code, 0, "{out}{err}");
    for expected in [
        "== phase expand",
        "ALTER TABLE users ADD COLUMN full_name text",
        "lock: ACCESS EXCLUSIVE on users — brief (catalog only), blocks reads and writes",
        "CREATE TRIGGER \"cutover_sync_users_full_name\"",
        "lock: SHARE ROW EXCLUSIVE on users",
        "-- each batch, one transaction",
        "COMMIT",
        "UPDATE \"users\" SET full_name = name",
        "LIMIT $1",
        "lock: ROW EXCLUSIVE on users — the rows it matches, blocks no reads or writes",
        "VALIDATE CONSTRAINT \"users_full_name_not_null\"",
        "lock: SHARE UPDATE EXCLUSIVE on users — scans the table, blocks no reads or writes",
        "reversible: no — phase `contract` is irreversible",
        "no unsafe statements",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let (code, out, _) = cutover(
        "postgres://unused@127.0.0.1:1/none",
        &["plan", &unsafe_plan()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("allow_unsafe: users is 8 kB in this test database"),
        "{out}"
    );
    assert!(
        out.contains("UNSAFE [create-index-not-concurrently]"),
        "{out}"
    );
    assert!(
        out.contains("lock: SHARE on users — scans the table, blocks writes"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_database_and_passes_a_shipped_plan() {
    let db = seeded_db_with_replica("check_ok", 5_000).await;
    let (code, out, err) = cutover(&db.url, &["check", &shipped_plan("rename_column.toml")]);
    assert_eq!(code, 0, "{out}{err}");
    for expected in [
        "PostgreSQL 15",
        "replica",
        "no runs recorded yet",
        "long transactions: none",
        "table users: about 5000 rows",
        "ready: no errors",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let (code, json, _) = cutover(
        &db.url,
        &[
            "check",
            "--format",
            "json",
            &shipped_plan("rename_column.toml"),
        ],
    );
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(doc["pg_major"], 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_missing_objects_bad_keys_and_long_transactions() {
    let db = seeded_db("check_bad", 100).await;
    let conn = db.connect().await;
    conn.client
        .batch_execute("CREATE TABLE logs (n int, msg text); INSERT INTO logs VALUES (1, 'a')")
        .await
        .expect("logs");
    let (_dir, plan) = write_plan(
        r#"
name = "broken"
[[phases]]
name = "migrate"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "nickname = name"
[[phases.steps]]
kind = "backfill"
table = "accounts"
key = "id"
set = "x = 1"
[[phases.steps]]
kind = "backfill"
table = "logs"
key = "n"
set = "msg = 'b'"
[[phases.steps]]
kind = "not_null"
table = "users"
column = "nickname"
"#,
    );
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("table accounts (backfill `table`) does not exist"),
        "{out}"
    );
    assert!(
        out.contains("column users.nickname (not_null `column`) does not exist"),
        "{out}"
    );
    assert!(
        out.contains("backfill key logs.n has no valid unique index"),
        "{out}"
    );
    assert!(out.contains("not ready: 4 error(s)"), "{out}");

    // A column an earlier step adds is fine.
    let (_dir2, plan2) = write_plan(
        r#"
name = "adds first"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN nickname text"
rollback = "ALTER TABLE users DROP COLUMN nickname"
[[phases.steps]]
kind = "not_null"
table = "users"
column = "nickname"
"#,
    );
    let (code, out, err) = cutover(&db.url, &["check", &plan2]);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_about_a_long_transaction() {
    let db = seeded_db("check_long", 100).await;
    let plan = shipped_plan("rename_column.toml");
    let (code, out, _) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("long transactions: none open for more than 1m"),
        "{out}"
    );
    let idle = connect(&db.url).await;
    idle.client
        .batch_execute("SET application_name = 'forgotten_psql'; BEGIN; SELECT 1")
        .await
        .expect("open");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, out, _) = cutover(&db.url, &["check", "--long-transaction", "1s", &plan]);
    assert_eq!(code, 0, "a warning, not an error: {out}");
    assert!(out.contains("warning  long transaction: pid"), "{out}");
    assert!(
        out.contains("(forgotten_psql) has been in a transaction for"),
        "{out}"
    );
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_an_unsafe_plan_and_executes_nothing() {
    let db = seeded_db("run_refuses", 1_000).await;
    let (code, out, err) = cutover(&db.url, &["run", &unsafe_plan(), "--yes", "--headless"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("error[create-index-not-concurrently]"),
        "{err}"
    );
    assert!(err.contains("unsafe.toml:11:8"), "{err}");
    assert!(err.contains("refusing to start"), "{err}");
    let conn = db.connect().await;
    let journal: bool = scalar(&conn, "SELECT to_regclass('cutover.runs') IS NOT NULL").await;
    assert!(!journal, "nothing ran, not even the journal");
    let index: bool = scalar(&conn, "SELECT to_regclass('users_email_idx') IS NOT NULL").await;
    assert!(!index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_statement_runs_and_its_reason_is_journaled() {
    let db = fresh_db("allowed").await;
    let conn = db.connect().await;
    conn.client
        .batch_execute("CREATE TABLE scratch (id int PRIMARY KEY); INSERT INTO scratch VALUES (1)")
        .await
        .expect("scratch");
    let (_dir, plan) = write_plan(
        r#"
name = "allowed"
[[phases]]
name = "tidy"
[[phases.steps]]
kind = "sql"
name = "compact scratch"
sql = "VACUUM FULL scratch"
allow_unsafe = "scratch is a one-row table nobody reads"
"#,
    );
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("allowed: [vacuum-full] in step `compact scratch`"),
        "{err}"
    );
    let journaled: i64 = scalar(
        &conn,
        "SELECT count(*) FROM cutover.events WHERE message LIKE '%allowed because: scratch is a one-row table nobody reads%'",
    )
    .await;
    assert_eq!(journaled, 1);
}

const ESCAPING_FRAGMENT: &str = r#"
name = "escaping fragment"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
name = "add v"
sql = "ALTER TABLE users ADD COLUMN v int"
rollback = "ALTER TABLE users DROP COLUMN v"
[[phases.steps]]
kind = "backfill"
name = "fill v"
table = "users"
key = "id"
set = "v = age"
where = "v IS NULL) OR (true"
"#;

#[test]
fn lint_refuses_a_fragment_that_escapes_its_statement() {
    let (_dir, plan) = write_plan(ESCAPING_FRAGMENT);
    let (code, out, err) = cutover("postgres://unused@127.0.0.1:1/none", &["lint", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("error[fragment-escapes]"), "{out}");
    assert!(out.contains("`where`"), "{out}");
    assert!(
        out.contains("plan.toml:16:10 (phase `expand`, step `fill v`)"),
        "{out}"
    );
    assert!(
        out.contains("closes a parenthesis it did not open"),
        "{out}"
    );

    let bad_set = ESCAPING_FRAGMENT
        .replace("set = \"v = age\"", "set = \"v age\"")
        .replace("v IS NULL) OR (true", "v IS NULL");
    let (_dir2, plan) = write_plan(&bad_set);
    let (code, out, err) = cutover("postgres://unused@127.0.0.1:1/none", &["lint", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("error[fragment-unparsable]"), "{out}");
    assert!(out.contains("`set`"), "{out}");

    let fine = ESCAPING_FRAGMENT.replace("v IS NULL) OR (true", "v IS NULL");
    let (_dir3, plan) = write_plan(&fine);
    let (code, out, err) = cutover("postgres://unused@127.0.0.1:1/none", &["lint", &plan]);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_a_fragment_that_escapes_and_executes_nothing() {
    let db = seeded_db("run_fragment", 100).await;
    let (_dir, plan) = write_plan(ESCAPING_FRAGMENT);
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("error[fragment-escapes]"), "{err}");
    assert!(err.contains("refusing to start"), "{err}");
    let conn = db.connect().await;
    let added: bool = scalar(
        &conn,
        "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'v')",
    )
    .await;
    assert!(!added, "the earlier step's ADD COLUMN must not have run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_step_detaches_a_partition_concurrently_outside_a_transaction() {
    let db = newer_forms_db("run_detach").await;
    let (_dir, plan) = write_plan(
        r#"
name = "retire 2023"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
name = "detach 2023"
sql = "ALTER TABLE m DETACH PARTITION m_2023 CONCURRENTLY"
rollback = "ALTER TABLE m ATTACH PARTITION m_2023 FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')"
"#,
    );
    let (code, out, _) = cutover("postgres://unused@127.0.0.1:1/none", &["lint", &plan]);
    assert_eq!(code, 0, "{out}");
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    let conn = db.connect().await;
    let attached: bool = scalar(
        &conn,
        "SELECT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = 'm_2023'::regclass)",
    )
    .await;
    assert!(!attached, "the partition is detached");
}

/// One case of `tests/lint_cases/reference.sql`.
struct Case {
    name: String,
    expect: String,
    pg: String,
    sql: String,
}

fn reference_cases() -> Vec<Case> {
    let path = format!(
        "{}/tests/lint_cases/reference.sql",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("reference corpus");
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("-- case ") {
            let words: Vec<&str> = head.split_whitespace().collect();
            assert!(
                words.len() >= 3 && words[1] == "expect",
                "bad case line: {line}"
            );
            let pg = match words.get(3..) {
                Some(["pg", v]) => v.to_string(),
                _ => "15".to_string(),
            };
            cases.push(Case {
                name: words[0].to_string(),
                expect: words[2].to_string(),
                pg,
                sql: String::new(),
            });
        } else if let Some(case) = cases.last_mut() {
            case.sql.push_str(line);
            case.sql.push('\n');
        }
    }
    cases
}

#[test]
fn the_reference_corpus_gets_its_verdicts_from_cutover_lint() {
    // Each case is linted end to end, as a user would: `cutover lint FILE
    // --pg-version N --format json`.
    let cases = reference_cases();
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let dir = tempfile::tempdir().expect("tmp");
    let mut wrong = Vec::new();
    for case in &cases {
        let file = dir.path().join(format!("{}.sql", case.name));
        std::fs::write(&file, &case.sql).expect("write case");
        let f = file.display().to_string();
        let (code, json, err) = cutover(
            "postgres://unused@127.0.0.1:1/none",
            &["lint", &f, "--pg-version", &case.pg, "--format", "json"],
        );
        let doc: serde_json::Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{}: {e}: {json}{err}", case.name));
        let rules: Vec<String> = doc["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["rule_name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let agrees = if case.expect == "ok" {
            code == 0 && rules.is_empty()
        } else {
            code == 1 && rules.contains(&case.expect)
        };
        if !agrees {
            wrong.push(format!(
                "{} (expect {}, pg {}): exit {code}, {rules:?}",
                case.name, case.expect, case.pg
            ));
        }
    }
    println!(
        "{} of {} reference cases agree",
        cases.len() - wrong.len(),
        cases.len()
    );
    assert!(wrong.is_empty(), "disagreements:\n{}", wrong.join("\n"));
}

const NEWER_FORMS_PLAN: &str = r#"
name = "newer forms"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
name = "detach 2023"
sql = "ALTER TABLE m DETACH PARTITION m_2023"
rollback = "ALTER TABLE m ATTACH PARTITION m_2023 FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')"
[[phases.steps]]
kind = "sql"
name = "refresh"
sql = "REFRESH MATERIALIZED VIEW user_count"
[[phases.steps]]
kind = "sql"
name = "move"
sql = "ALTER TABLE users SET TABLESPACE pg_default"
[[phases.steps]]
kind = "sql"
name = "domain check"
sql = "ALTER DOMAIN positive ADD CONSTRAINT positive_check CHECK (VALUE > 0)"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_check_flag_the_newer_forms_with_their_locks() {
    let (_dir, plan) = write_plan(NEWER_FORMS_PLAN);
    let (code, out, err) = cutover("postgres://unused@127.0.0.1:1/none", &["plan", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    for expected in [
        "UNSAFE [detach-partition-not-concurrently]",
        "lock: ACCESS EXCLUSIVE on m_2023",
        "UNSAFE [refresh-matview-not-concurrently]",
        "lock: ACCESS EXCLUSIVE on user_count — rewrites the table",
        "UNSAFE [set-tablespace-rewrites]",
        "lock: ACCESS EXCLUSIVE on users — rewrites the table",
        "UNSAFE [domain-constraint-without-not-valid]",
        "lock: SHARE on every table using domain positive — scans the table, blocks writes",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }

    let db = newer_forms_db("check_newer").await;
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 1, "{out}{err}");
    for rule in [
        "detach-partition-not-concurrently",
        "refresh-matview-not-concurrently",
        "set-tablespace-rewrites",
        "domain-constraint-without-not-valid",
    ] {
        assert!(out.contains(&format!("error[{rule}]")), "{rule} in:\n{out}");
    }
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 2, "{out}{err}");
}

#[test]
fn every_fragment_field_is_checked() {
    let (_dir, plan) = write_plan(
        r#"
name = "fragments everywhere"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sync_trigger"
name = "one_way"
table = "users"
set = "full_name = name; DROP TABLE users"
when = "name IS NOT NULL) OR (true"
[[phases.steps]]
kind = "sync_trigger"
name = "two_way"
table = "users"
old = "age"
new = "age_new"
forward = "NEW.age::bigint -- widen"
[[phases.steps]]
kind = "copy_rows"
from = "users"
to = "addresses"
key = "id"
columns = { user_id = "id", street = "upper(street" }
where = "country = 'PT'))"
[[phases.steps]]
kind = "create_index"
name = "users_lower_email"
table = "users"
columns = ["(lower(email)", "id"]
where = "age > 0 /* adults"
[[phases.steps]]
kind = "constraint"
name = "age_ok"
table = "users"
definition = "CHECK (age >= 0); DELETE FROM users"
"#,
    );
    let (code, json, err) = cutover(
        "postgres://unused@127.0.0.1:1/none",
        &["lint", "--format", "json", &plan],
    );
    assert_eq!(code, 1, "{json}{err}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let mut seen: Vec<(String, String)> = doc["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["rule_name"] == "fragment-escapes")
                .map(|f| {
                    (
                        f["step"].as_str().unwrap_or("").to_string(),
                        f["message"]
                            .as_str()
                            .and_then(|m| m.split('`').nth(1))
                            .unwrap_or("")
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    seen.sort();
    let mut expected: Vec<(String, String)> = [
        ("sync trigger one_way", "set"),
        ("sync trigger one_way", "when"),
        ("sync trigger two_way", "forward"),
        ("copy users to addresses", "columns"),
        ("copy users to addresses", "where"),
        ("index users_lower_email", "columns"),
        ("index users_lower_email", "where"),
        ("constraint age_ok", "definition"),
    ]
    .iter()
    .map(|(s, f)| (s.to_string(), f.to_string()))
    .collect();
    expected.sort();
    assert_eq!(seen, expected, "{doc:#}");
}
