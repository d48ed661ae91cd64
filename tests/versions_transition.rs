//! Version schemas while a step is still running: the new version already
//! writes through the views of the plan's earlier steps while a later
//! `alter_column` backfills its copy, and none of those writes is lost; an
//! `add_column` killed mid-backfill rolls back to nothing.

mod common;

use common::dump::schema_dump;
use common::process::Running;
use common::process::cutover;
use common::versions::{LONG, hidden_objects, new_app, schema_exists};
use common::{count_and_slow, scalar, seeded_db, write_plan};

const TWO_CHANGES: &str = r#"
name = "two changes of users"
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
column = "email"
type = "varchar(320)"
[[phases.steps]]
kind = "alter_column"
table = "users"
column = "age"
type = "bigint"
up = "coalesce(age, 0)"
[[phases]]
name = "contract"
irreversible = true
[[phases.steps]]
kind = "gate"
message = "retire the old app"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_the_views_during_a_later_backfill_are_kept() {
    let db = seeded_db("versions_transition", 50_000).await;
    let admin = db.connect().await;
    admin
        .client
        .batch_execute(&count_and_slow())
        .await
        .expect("slow the batches");
    let (_dir, plan) = write_plan(TWO_CHANGES);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_for("the second step", LONG, |v| {
        v["event"] == "step_started" && v["step"] == 1
    });
    run.wait_for("its backfill under way", LONG, |v| {
        v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) >= 5_000
    });
    // Row 10 is behind the backfill, row 49000 ahead of it; the new
    // version still sees age as the old column (this step is not done).
    let old = db.connect().await;
    let new = new_app(&db).await;
    let (a, b, c) = tokio::join!(
        new.client
            .execute("UPDATE users SET age = 33 WHERE id = 10", &[]),
        new.client
            .execute("UPDATE users SET age = 34 WHERE id = 49000", &[]),
        old.client
            .execute("UPDATE users SET age = NULL WHERE id = 11", &[]),
    );
    a.expect("the new app writes behind the backfill");
    b.expect("the new app writes ahead of the backfill");
    c.expect("the old app writes");
    run.wait_for("the contract gate", LONG, |v| {
        v["event"] == "gate_waiting" && v["irreversible"] == true
    });
    let new = new_app(&db).await;
    let behind: i64 = scalar(&new, "SELECT age FROM users WHERE id = 10").await;
    let ahead: i64 = scalar(&new, "SELECT age FROM users WHERE id = 49000").await;
    let from_old: i64 = scalar(&new, "SELECT age FROM users WHERE id = 11").await;
    assert_eq!((behind, ahead, from_old), (33, 34, 0));
    run.kill9();
}

const ADD_STATUS: &str = r#"
name = "add users.status"
[versions]
old = "public"
new = "app_v2"
[throttle]
max_batch_size = 500
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "add_column"
table = "users"
column = "status"
type = "text"
up = "'active'"
[[phases]]
name = "contract"
irreversible = true
[[phases.steps]]
kind = "gate"
message = "retire the old app"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_column_killed_mid_backfill_rolls_back_to_nothing() {
    let db = seeded_db("versions_add_killed", 50_000).await;
    let admin = db.connect().await;
    admin
        .client
        .batch_execute(&count_and_slow())
        .await
        .expect("slow the batches");
    let dump_before = schema_dump(&db);
    let (_dir, plan) = write_plan(ADD_STATUS);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--yes", "--json"]);
    run.wait_for("backfill progress", LONG, |v| {
        v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) >= 5_000
    });
    run.kill9();
    assert!(
        hidden_objects(&admin).await > 0,
        "killed with the column half filled"
    );
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        schema_dump(&db),
        dump_before,
        "nothing of the column is left"
    );
    assert_eq!(hidden_objects(&admin).await, 0);
    assert!(!schema_exists(&admin, "app_v2").await);
}
