//! Version schemas: both application versions at once. Each kind follows
//! pgroll's lifecycle — start → check → rollback → check → start →
//! complete → check — against the sandbox, with an app writing through
//! `public` and another through `app_v2` during the transition.

mod common;

use common::dump::schema_dump;
use common::process::cutover;
use common::versions::{
    complete, data, new_app, roll_back, row_versions, schema_exists, start, updates,
};
use common::{scalar, seeded_db, shipped_plan, write_plan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_column_serves_both_versions_without_rewriting_a_row() {
    let db = seeded_db("versions_rename_column", 3_000).await;
    let admin = db.connect().await;
    let plan = shipped_plan("versions_rename_column.toml");
    let dump_before = schema_dump(&db);
    let rows_before = row_versions(&admin, "users").await;
    let updates_before = updates(&admin, "users").await;

    // start → check: both versions read and write at the same time.
    let run = start(&db, &plan);
    assert_eq!(row_versions(&admin, "users").await, rows_before);
    assert_eq!(updates(&admin, "users").await, updates_before);
    let old = db.connect().await;
    let new = new_app(&db).await;
    let old_writes = async {
        for i in 0..25 {
            old.client
                .execute(
                    "INSERT INTO users (name, email) VALUES ($1, $2)",
                    &[&format!("old {i}"), &format!("old{i}@example.com")],
                )
                .await
                .expect("the old app writes name");
        }
    };
    let new_writes = async {
        for i in 0..25 {
            new.client
                .execute(
                    "INSERT INTO users (full_name, email) VALUES ($1, $2)",
                    &[&format!("new {i}"), &format!("new{i}@example.com")],
                )
                .await
                .expect("the new app writes full_name");
        }
    };
    tokio::join!(old_writes, new_writes);
    new.client
        .execute(
            "UPDATE users SET full_name = 'renamed by v2' WHERE id = 1",
            &[],
        )
        .await
        .expect("the new app updates through its view");
    let seen_by_old: String = scalar(&old, "SELECT name FROM users WHERE id = 1").await;
    assert_eq!(seen_by_old, "renamed by v2");
    let new_rows_by_old: i64 =
        scalar(&old, "SELECT count(*) FROM users WHERE name LIKE 'new %'").await;
    assert_eq!(new_rows_by_old, 25);
    let old_rows_by_new: i64 = scalar(
        &new,
        "SELECT count(*) FROM users WHERE full_name LIKE 'old %'",
    )
    .await;
    assert_eq!(old_rows_by_new, 25);
    // Each version sees its own shape only.
    let e = new
        .client
        .query("SELECT name FROM users", &[])
        .await
        .expect_err("the new version has no name");
    assert_eq!(e.code().map(|c| c.code()), Some("42703"));
    let e = old
        .client
        .query("SELECT full_name FROM users", &[])
        .await
        .expect_err("the old version has no full_name");
    assert_eq!(e.code().map(|c| c.code()), Some("42703"));

    // rollback → check: the catalog as before, the data untouched.
    let data_before_rollback = data(&admin, "users").await;
    let versions_before_rollback = row_versions(&admin, "users").await;
    roll_back(&db, &plan, run);
    assert_eq!(schema_dump(&db), dump_before, "the catalog is as before");
    assert_eq!(data(&admin, "users").await, data_before_rollback);
    assert_eq!(
        row_versions(&admin, "users").await,
        versions_before_rollback,
        "the rollback rewrote no row"
    );
    assert!(!schema_exists(&admin, "app_v2").await);

    // start → complete → check: the column is renamed in place, and the
    // new version's view still works.
    let updates_before_complete = updates(&admin, "users").await;
    complete(&db, &plan);
    let physical: i64 = scalar(
        &admin,
        "SELECT count(*) FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'full_name'",
    )
    .await;
    assert_eq!(physical, 1, "the rename is physical");
    let new = new_app(&db).await;
    let through_view: String = scalar(&new, "SELECT full_name FROM users WHERE id = 1").await;
    assert_eq!(through_view, "renamed by v2");
    assert_eq!(
        row_versions(&admin, "users").await,
        versions_before_rollback,
        "completing rewrote no row"
    );
    assert_eq!(updates(&admin, "users").await, updates_before_complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_table_serves_both_versions_and_rolls_back_byte_for_byte() {
    let db = seeded_db("versions_rename_table", 2_000).await;
    let admin = db.connect().await;
    let plan = shipped_plan("versions_rename_table.toml");
    let dump_before = schema_dump(&db);
    let rows_before = row_versions(&admin, "users").await;

    let run = start(&db, &plan);
    let old = db.connect().await;
    let new = new_app(&db).await;
    let (a, b) = tokio::join!(
        old.client.execute(
            "INSERT INTO users (name, email) VALUES ('from v1', 'v1@example.com')",
            &[]
        ),
        new.client.execute(
            "INSERT INTO people (name, email) VALUES ('from v2', 'v2@example.com')",
            &[]
        ),
    );
    a.expect("the old app writes users");
    b.expect("the new app writes people");
    let in_people: i64 = scalar(
        &new,
        "SELECT count(*) FROM people WHERE name LIKE 'from v%'",
    )
    .await;
    let in_users: i64 = scalar(&old, "SELECT count(*) FROM users WHERE name LIKE 'from v%'").await;
    assert_eq!((in_people, in_users), (2, 2));
    let data_before_rollback = data(&admin, "users").await;
    roll_back(&db, &plan, run);
    assert_eq!(schema_dump(&db), dump_before);
    assert_eq!(data(&admin, "users").await, data_before_rollback);

    complete(&db, &plan);
    let renamed: i64 = scalar(&admin, "SELECT count(*) FROM public.people").await;
    assert_eq!(renamed, 2_002);
    let new = new_app(&db).await;
    let through_view: i64 = scalar(&new, "SELECT count(*) FROM people").await;
    assert_eq!(through_view, 2_002);
    let _ = rows_before;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_step_without_versions_names_the_table_to_add() {
    let db = seeded_db("versions_missing", 100).await;
    let (_dir, plan) = write_plan(
        r#"
name = "no versions"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "rename_column"
table = "users"
from = "name"
to = "full_name"
"#,
    );
    // A plan error: refused before anything runs, naming the step.
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--json"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("add `[versions]`"), "{out}{err}");
    assert!(err.contains("rename users.name to full_name"), "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_column_gives_the_old_versions_writes_up_and_keeps_the_new_ones() {
    let db = seeded_db("versions_add_column", 3_000).await;
    let admin = db.connect().await;
    let plan = shipped_plan("versions_add_column.toml");
    let dump_before = schema_dump(&db);

    let run = start(&db, &plan);
    let old = db.connect().await;
    let new = new_app(&db).await;
    let existing: String = scalar(&new, "SELECT display FROM users WHERE id = 7").await;
    assert_eq!(existing, "USER 7", "existing rows were given `up`");
    let (a, b) = tokio::join!(
        old.client.execute(
            "INSERT INTO users (id, name, email) VALUES (5001, 'from v1', 'v1@example.com')",
            &[]
        ),
        new.client.execute(
            "INSERT INTO users (id, name, email, display) VALUES (5002, 'from v2', 'v2@example.com', 'Chosen')",
            &[]
        ),
    );
    a.expect("the old app inserts without display");
    b.expect("the new app inserts its own display");
    let via_up: String = scalar(&new, "SELECT display FROM users WHERE id = 5001").await;
    assert_eq!(via_up, "FROM V1");
    let kept: String = scalar(&new, "SELECT display FROM users WHERE id = 5002").await;
    assert_eq!(
        kept, "Chosen",
        "the new version's own value is never overwritten"
    );
    let seen: String = scalar(&old, "SELECT name FROM users WHERE id = 5002").await;
    assert_eq!(seen, "from v2");
    let e = old
        .client
        .query("SELECT display FROM users", &[])
        .await
        .expect_err("the old version has no display");
    assert_eq!(e.code().map(|c| c.code()), Some("42703"));

    let data_before_rollback = data(&admin, common::versions::OLD_SHAPE).await;
    roll_back(&db, &plan, run);
    assert_eq!(schema_dump(&db), dump_before, "the catalog is as before");
    assert_eq!(data(&admin, "users").await, data_before_rollback);

    complete(&db, &plan);
    let physical: String = scalar(&admin, "SELECT display FROM public.users WHERE id = 5001").await;
    assert_eq!(physical, "FROM V1");
    let hidden: i64 = scalar(
        &admin,
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.users'::regclass
         AND attname LIKE '\\_cutover%' AND NOT attisdropped",
    )
    .await;
    assert_eq!(hidden, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_column_hides_it_from_the_new_version_until_contract() {
    let db = seeded_db("versions_drop_column", 3_000).await;
    let admin = db.connect().await;
    let plan = shipped_plan("versions_drop_column.toml");
    let dump_before = schema_dump(&db);

    let run = start(&db, &plan);
    let old = db.connect().await;
    let new = new_app(&db).await;
    let (a, b) = tokio::join!(
        old.client.execute(
            "INSERT INTO users (id, name, email, city) VALUES (5001, 'v1', 'v1@example.com', 'Lima')",
            &[]
        ),
        new.client.execute(
            "INSERT INTO users (id, name, email) VALUES (5002, 'v2', 'v2@example.com')",
            &[]
        ),
    );
    a.expect("the old app writes city");
    b.expect("the new app writes without city");
    let via_down: String = scalar(&old, "SELECT city FROM users WHERE id = 5002").await;
    assert_eq!(via_down, "Nowhere");
    let from_old: String = scalar(&new, "SELECT name FROM users WHERE id = 5001").await;
    assert_eq!(from_old, "v1");
    let e = new
        .client
        .query("SELECT city FROM users", &[])
        .await
        .expect_err("the new version has no city");
    assert_eq!(e.code().map(|c| c.code()), Some("42703"));

    let data_before_rollback = data(&admin, "users").await;
    roll_back(&db, &plan, run);
    assert_eq!(schema_dump(&db), dump_before, "the catalog is as before");
    assert_eq!(data(&admin, "users").await, data_before_rollback);

    complete(&db, &plan);
    let left: i64 = scalar(
        &admin,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'city'",
    )
    .await;
    assert_eq!(left, 0, "the column is dropped at contract");
}
