//! Version schemas for changed columns (`alter_column`): pgroll's lifecycle — start → check → rollback →
//! check → start → complete → check — with an app writing through
//! `public` and another through `app_v2` at the same time, each seeing its
//! own shape and the other's writes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::dump::schema_dump;
use common::versions::{
    OLD_SHAPE, column_type, complete, data, hidden_objects, new_app, roll_back, schema_exists,
    start,
};
use common::{TestDb, scalar, seeded_db, shipped_plan};

/// The old app updating ages until told to stop: writes land before,
/// during and after the backfill. Returns how many it made.
fn old_app_keeps_writing(db: &TestDb, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<i64> {
    let url = db.url.clone();
    tokio::spawn(async move {
        let conn = common::connect(&url).await;
        let mut n = 0;
        let mut id: i64 = 1;
        while !stop.load(Ordering::Relaxed) {
            // Every third write sets NULL: the new version sees `up`'s 0.
            let age: Option<i32> = (id % 3 != 0).then_some((id % 90) as i32);
            conn.client
                .execute("UPDATE users SET age = $1 WHERE id = $2", &[&age, &id])
                .await
                .expect("the old app writes age during the transition");
            n += 1;
            id = id % 20_000 + 7;
        }
        n
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_column_serves_both_versions_and_swaps_at_contract() {
    let db = seeded_db("versions_alter_column", 20_000).await;
    let admin = db.connect().await;
    let plan = shipped_plan("versions_alter_column.toml");
    let dump_before = schema_dump(&db);

    // start, with the old app writing all through the backfill.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = old_app_keeps_writing(&db, stop.clone());
    let run = start(&db, &plan);
    stop.store(true, Ordering::Relaxed);
    let old_writes = writer.await.expect("the old app's writer");
    assert!(old_writes > 0);
    let out_of_step: i64 = scalar(
        &admin,
        "SELECT count(*) FROM users WHERE _cutover_new_age IS DISTINCT FROM coalesce(age, 0)",
    )
    .await;
    assert_eq!(out_of_step, 0, "every row's copy is `up` of the old value");

    // check: both versions at once, each its own shape.
    let old = db.connect().await;
    let new = new_app(&db).await;
    let new_type: String = scalar(&new, "SELECT pg_typeof(age)::text FROM users LIMIT 1").await;
    let old_type: String = scalar(&old, "SELECT pg_typeof(age)::text FROM users LIMIT 1").await;
    assert_eq!(
        (old_type.as_str(), new_type.as_str()),
        ("integer", "bigint")
    );
    let (a, b) = tokio::join!(
        old.client.execute(
            "INSERT INTO users (id, name, email, age) VALUES (30001, 'v1', 'v1@example.com', NULL)",
            &[]
        ),
        new.client.execute(
            "INSERT INTO users (id, name, email, age) VALUES (30002, 'v2', 'v2@example.com', 41)",
            &[]
        ),
    );
    a.expect("the old app inserts a NULL age");
    b.expect("the new app inserts a bigint age");
    new.client
        .execute("UPDATE users SET age = 77 WHERE id = 2", &[])
        .await
        .expect("the new app updates age");
    let seen_by_new: i64 = scalar(&new, "SELECT age FROM users WHERE id = 30001").await;
    assert_eq!(
        seen_by_new, 0,
        "the old app's NULL reaches the new one through up"
    );
    let seen_by_old: i32 = scalar(&old, "SELECT age FROM users WHERE id = 30002").await;
    assert_eq!(
        seen_by_old, 41,
        "the new app's write reaches the old one through down"
    );
    let updated_for_old: i32 = scalar(&old, "SELECT age FROM users WHERE id = 2").await;
    assert_eq!(updated_for_old, 77);
    let e = new
        .client
        .execute("UPDATE users SET age = -1 WHERE id = 3", &[])
        .await
        .expect_err("the new version's check holds");
    assert_eq!(e.code().map(|c| c.code()), Some("23514"));
    let e = new
        .client
        .execute("UPDATE users SET age = NULL WHERE id = 3", &[])
        .await
        .expect_err("the new version's NOT NULL holds");
    assert_eq!(e.code().map(|c| c.code()), Some("23514"));
    old.client
        .execute("UPDATE users SET age = NULL WHERE id = 3", &[])
        .await
        .expect("the old version may still write NULL");

    // rollback → check: catalog and data byte for byte as before.
    let data_before_rollback = data(&admin, OLD_SHAPE).await;
    roll_back(&db, &plan, run);
    assert_eq!(schema_dump(&db), dump_before, "the catalog is as before");
    assert_eq!(data(&admin, OLD_SHAPE).await, data_before_rollback);
    assert!(!schema_exists(&admin, "app_v2").await);
    assert_eq!(hidden_objects(&admin).await, 0);

    // start → complete → check: the copy is the column.
    complete(&db, &plan);
    assert_eq!(column_type(&admin, "users", "age").await, "bigint NOT NULL");
    let check: String = scalar(
        &admin,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = 'public.users'::regclass AND conname = 'users_age_check' AND convalidated",
    )
    .await;
    assert_eq!(check, "CHECK ((age >= 0))");
    assert_eq!(
        hidden_objects(&admin).await,
        0,
        "no hidden column, trigger or constraint"
    );
    let nulls_now_zero: i64 = scalar(&admin, "SELECT age FROM users WHERE id = 3").await;
    assert_eq!(nulls_now_zero, 0);
    let new = new_app(&db).await;
    new.client
        .execute(
            "INSERT INTO users (id, name, email, age) VALUES (30003, 'v2', 'v3@example.com', 5000000000)",
            &[],
        )
        .await
        .expect("the new app writes a bigint after contract");
    let through_view: i64 = scalar(&new, "SELECT age FROM users WHERE id = 30003").await;
    assert_eq!(through_view, 5_000_000_000);
}

const INTERRUPTED: &str = r#"
name = "users.age to bigint, interrupted"
[versions]
old = "public"
new = "app_v2"
[throttle]
max_batch_size = 500
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "alter_column"
table = "users"
column = "age"
type = "bigint"
not_null = true
unique = false
up = "coalesce(age, 0)"
[[phases]]
name = "contract"
irreversible = true
[[phases.steps]]
kind = "gate"
message = "retire the old app"
[[phases.steps]]
kind = "verify"
name = "the old shape lasts until the irreversible phase completes"
sql = "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = '_cutover_new_age' AND NOT attisdropped"
expect = 1
"#;

fn rows_past(rows: i64) -> impl Fn(&serde_json::Value) -> bool {
    move |v| v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) >= rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alter_column_killed_mid_backfill_rolls_back_to_nothing() {
    let db = seeded_db("versions_alter_killed_rollback", 50_000).await;
    let admin = db.connect().await;
    admin
        .client
        .batch_execute(&common::count_and_slow())
        .await
        .expect("slow the batches");
    let dump_before = schema_dump(&db);
    let (_dir, plan) = common::write_plan(INTERRUPTED);
    let mut run = common::process::Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for(
        "backfill progress",
        common::versions::LONG,
        rows_past(5_000),
    );
    run.kill9();
    assert!(
        hidden_objects(&admin).await > 0,
        "killed with the copy half made"
    );
    let (code, out, err) = common::process::cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(schema_dump(&db), dump_before, "nothing of the copy is left");
    assert_eq!(hidden_objects(&admin).await, 0);
    assert!(!schema_exists(&admin, "app_v2").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alter_column_killed_mid_backfill_resumes_and_touches_each_row_once() {
    let db = seeded_db("versions_alter_killed_resume", 50_000).await;
    let admin = db.connect().await;
    admin
        .client
        .batch_execute(&common::count_and_slow())
        .await
        .expect("count and slow the batches");
    let (_dir, plan) = common::write_plan(INTERRUPTED);
    let mut run = common::process::Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for(
        "backfill progress",
        common::versions::LONG,
        rows_past(5_000),
    );
    run.kill9();
    let status: String = scalar(&admin, "SELECT status FROM cutover.steps WHERE phase = 0").await;
    assert_eq!(status, "running");
    let (code, out, err) = common::process::cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let not_once: i64 = scalar(&admin, "SELECT count(*) FROM users WHERE touches <> 1").await;
    assert_eq!(
        not_once, 0,
        "every row backfilled exactly once across the two runs"
    );
    let keys: i64 = scalar(
        &admin,
        "SELECT rows_done FROM cutover.steps WHERE phase = 0",
    )
    .await;
    assert_eq!(keys, 50_000, "the second run went on from the checkpoint");
    assert_eq!(column_type(&admin, "users", "age").await, "bigint NOT NULL");
    assert_eq!(hidden_objects(&admin).await, 0);
}

const UNIQUE_AND_FK: &str = r#"
name = "unique email, team foreign key"
[versions]
old = "public"
new = "app_v2"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "alter_column"
table = "users"
column = "email"
type = "varchar(320)"
unique = { name = "users_email_key" }
comment = "the login"
[[phases.steps]]
kind = "alter_column"
table = "users"
column = "team_id"
default = "1"
references = { table = "teams", column = "id", on_delete = "RESTRICT" }
[[phases]]
name = "contract"
irreversible = true
[[phases.steps]]
kind = "gate"
message = "retire the old app"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_column_builds_unique_and_foreign_keys_safely_and_names_them_at_contract() {
    let db = seeded_db("versions_alter_unique_fk", 3_000).await;
    let admin = db.connect().await;
    admin
        .client
        .batch_execute(
            "CREATE TABLE teams (id int PRIMARY KEY);
             INSERT INTO teams SELECT generate_series(1, 3);
             ALTER TABLE users ADD COLUMN team_id int;
             UPDATE users SET team_id = 1 + id % 3",
        )
        .await
        .expect("teams");
    let (_dir, plan) = common::write_plan(UNIQUE_AND_FK);
    let dump_before = schema_dump(&db);

    let run = start(&db, &plan);
    let new = new_app(&db).await;
    let e = new
        .client
        .execute(
            "INSERT INTO users (id, name, email) VALUES (9001, 'dup', 'user5@example.com')",
            &[],
        )
        .await
        .expect_err("the new version's email is unique");
    assert_eq!(e.code().map(|c| c.code()), Some("23505"));
    let e = new
        .client
        .execute("UPDATE users SET team_id = 99 WHERE id = 1", &[])
        .await
        .expect_err("the new version's team must exist");
    assert_eq!(e.code().map(|c| c.code()), Some("23503"));
    new.client
        .execute(
            "INSERT INTO users (id, name, email) VALUES (9002, 'v2', 'v2@example.com')",
            &[],
        )
        .await
        .expect("the new app inserts");
    let team: i32 = scalar(&admin, "SELECT team_id FROM users WHERE id = 9002").await;
    assert_eq!(
        team, 1,
        "the new default reaches the old column through down"
    );

    roll_back(&db, &plan, run);
    assert_eq!(schema_dump(&db), dump_before, "the catalog is as before");
    assert_eq!(hidden_objects(&admin).await, 0);

    complete(&db, &plan);
    let constraints: Vec<String> = admin
        .client
        .query(
            "SELECT conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
             FROM pg_constraint WHERE conrelid = 'public.users'::regclass AND contype IN ('u', 'f')
             ORDER BY conname",
            &[],
        )
        .await
        .expect("constraints")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        constraints,
        [
            "users_email_key UNIQUE (email) true",
            "users_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE RESTRICT true"
        ]
    );
    assert_eq!(
        column_type(&admin, "users", "email").await,
        "character varying(320) NOT NULL"
    );
    let comment: String = scalar(
        &admin,
        "SELECT col_description('public.users'::regclass, attnum) FROM pg_attribute
         WHERE attrelid = 'public.users'::regclass AND attname = 'email'",
    )
    .await;
    assert_eq!(comment, "the login");
    let default: String = scalar(
        &admin,
        "SELECT column_default FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'team_id'",
    )
    .await;
    assert_eq!(default, "1");
    assert_eq!(hidden_objects(&admin).await, 0);
}
