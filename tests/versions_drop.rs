//! Version schemas for constraints the new version stops enforcing
//! (`drop_not_null`, `drop_constraint`): pgroll's lifecycle — start →
//! check → rollback → check → start → complete → check — with an app
//! writing through `public` and another through `app_v2` at the same time.
//! The mechanism is `alter_column`'s: the new version gets its own copy of
//! the column without the constraint; the old column keeps it until
//! contract, so a rollback leaves it exactly as it was.

mod common;

use common::dump::schema_dump;
use common::versions::{
    OLD_SHAPE, column_type, complete, data, hidden_objects, new_app, roll_back, start,
};
use common::{scalar, seeded_db, shipped_plan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_not_null_lets_only_the_new_version_write_null() {
    let db = seeded_db("versions_drop_not_null", 3_000).await;
    let admin = db.connect().await;
    let plan = shipped_plan("versions_drop_not_null.toml");
    let dump_before = schema_dump(&db);

    let run = start(&db, &plan);
    let old = db.connect().await;
    let new = new_app(&db).await;
    let (a, b) = tokio::join!(
        new.client.execute(
            "INSERT INTO users (id, name, email) VALUES (9001, 'v2', NULL)",
            &[]
        ),
        old.client.execute(
            "INSERT INTO users (id, name, email) VALUES (9002, 'v1', 'v1@example.com')",
            &[]
        ),
    );
    a.expect("the new version may write a NULL email");
    b.expect("the old app writes as before");
    let for_old: String = scalar(&old, "SELECT email FROM users WHERE id = 9001").await;
    assert_eq!(
        for_old, "unknown@example.com",
        "the old version sees `down`"
    );
    let for_new: Option<String> = scalar(&new, "SELECT email FROM users WHERE id = 9001").await;
    assert_eq!(for_new, None);
    let from_old: String = scalar(&new, "SELECT email FROM users WHERE id = 9002").await;
    assert_eq!(from_old, "v1@example.com");
    let e = old
        .client
        .execute("UPDATE users SET email = NULL WHERE id = 1", &[])
        .await
        .expect_err("the old version keeps its NOT NULL");
    assert_eq!(e.code().map(|c| c.code()), Some("23502"));

    let data_before_rollback = data(&admin, OLD_SHAPE).await;
    roll_back(&db, &plan, run);
    assert_eq!(schema_dump(&db), dump_before);
    assert_eq!(data(&admin, OLD_SHAPE).await, data_before_rollback);
    assert_eq!(hidden_objects(&admin).await, 0);

    complete(&db, &plan);
    assert_eq!(column_type(&admin, "users", "email").await, "text");
    admin
        .client
        .execute("UPDATE users SET email = NULL WHERE id = 1", &[])
        .await
        .expect("after contract the column takes NULL");
    assert_eq!(hidden_objects(&admin).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_constraint_keeps_the_old_versions_check_until_contract() {
    let db = seeded_db("versions_drop_constraint", 3_000).await;
    let admin = db.connect().await;
    admin
        .client
        .batch_execute(
            "ALTER TABLE users ADD CONSTRAINT users_city_short CHECK (length(city) <= 5) NOT VALID;
             UPDATE users SET city = 'Lima' WHERE length(city) > 5;
             ALTER TABLE users VALIDATE CONSTRAINT users_city_short",
        )
        .await
        .expect("a check on city");
    let plan = shipped_plan("versions_drop_constraint.toml");
    let dump_before = schema_dump(&db);

    let run = start(&db, &plan);
    let old = db.connect().await;
    let new = new_app(&db).await;
    let (a, b) = tokio::join!(
        new.client
            .execute("UPDATE users SET city = 'Ouagadougou' WHERE id = 1", &[]),
        old.client
            .execute("UPDATE users SET city = 'Oslo' WHERE id = 2", &[]),
    );
    a.expect("the new version no longer has the check");
    b.expect("the old app writes as before");
    let for_old: String = scalar(&old, "SELECT city FROM users WHERE id = 1").await;
    assert_eq!(
        for_old, "Ouaga",
        "the old version sees `down`, which its check accepts"
    );
    let for_new: String = scalar(&new, "SELECT city FROM users WHERE id = 1").await;
    assert_eq!(for_new, "Ouagadougou");
    let from_old: String = scalar(&new, "SELECT city FROM users WHERE id = 2").await;
    assert_eq!(from_old, "Oslo");
    let e = old
        .client
        .execute("UPDATE users SET city = 'Wellington' WHERE id = 3", &[])
        .await
        .expect_err("the old version keeps its check");
    assert_eq!(e.code().map(|c| c.code()), Some("23514"));

    let data_before_rollback = data(&admin, OLD_SHAPE).await;
    roll_back(&db, &plan, run);
    assert_eq!(
        schema_dump(&db),
        dump_before,
        "the check is back exactly as it was (validated, not NOT VALID)"
    );
    assert_eq!(data(&admin, OLD_SHAPE).await, data_before_rollback);
    assert_eq!(hidden_objects(&admin).await, 0);

    complete(&db, &plan);
    let checks: i64 = scalar(
        &admin,
        "SELECT count(*) FROM pg_constraint WHERE conname = 'users_city_short'",
    )
    .await;
    assert_eq!(checks, 0, "the constraint is gone after contract");
    // The rollback kept what the old version saw (`down`'s value).
    let city: String = scalar(&admin, "SELECT city FROM users WHERE id = 1").await;
    assert_eq!(city, "Ouaga");
    admin
        .client
        .execute("UPDATE users SET city = 'Wellington' WHERE id = 3", &[])
        .await
        .expect("after contract nothing limits city");
    assert_eq!(hidden_objects(&admin).await, 0);
}
