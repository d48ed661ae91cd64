//! Index and constraint primitives against the sandbox: an index with
//! INCLUDE columns and storage parameters; a PRIMARY KEY added to a table
//! without one while the application writes, and rolled back to the
//! catalog it started from; an EXCLUDE constraint, refused without
//! `allow_unsafe` and built with it.

mod common;

use common::app::Writer;
use common::dump::schema_dump;
use common::process::cutover;
use common::{PATIENCE, connect, fresh_db, scalar, seeded_db, shipped_plan, write_plan};

/// The index's definition as PostgreSQL prints it, and its storage options.
async fn index_def(conn: &cutover::db::Conn, name: &str) -> (String, Vec<String>) {
    let row = conn
        .client
        .query_one(
            "SELECT i.indexdef, coalesce(c.reloptions, '{}')
             FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname
             WHERE i.indexname = $1",
            &[&name],
        )
        .await
        .unwrap_or_else(|e| panic!("index {name}: {e}"));
    (row.get(0), row.get(1))
}

/// Records the text of every DDL statement from now on (an event trigger),
/// to tell the safe path (a NOT NULL proved by a validated check) from a
/// plain ADD PRIMARY KEY, which ends in the same catalog.
async fn log_ddl(conn: &cutover::db::Conn) {
    conn.client
        .batch_execute(
            "CREATE TABLE ddl_log (id serial, query text);
             CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO ddl_log (query) VALUES (current_query()); END $$;
             CREATE EVENT TRIGGER log_ddl ON ddl_command_end EXECUTE FUNCTION log_ddl();",
        )
        .await
        .expect("log DDL");
}

/// Asserts the key column's NOT NULL came from `check`, added NOT VALID and
/// validated before the statement that attached the primary key (which
/// also set NOT NULL); then stops logging.
async fn assert_proved_by_check(conn: &cutover::db::Conn, check: &str) {
    let log: Vec<String> = conn
        .client
        .query("SELECT query FROM ddl_log ORDER BY id", &[])
        .await
        .expect("read the log")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let at = |what: &dyn Fn(&str) -> bool| log.iter().position(|q| what(q));
    let add = at(&|q| q.contains(&format!("\"{check}\" CHECK")) && q.contains("NOT VALID"));
    let validate = at(&|q| q.contains(&format!("VALIDATE CONSTRAINT \"{check}\"")));
    let attach = at(&|q| q.contains("PRIMARY KEY USING INDEX") && q.contains("SET NOT NULL"));
    assert!(
        matches!((add, validate, attach), (Some(a), Some(v), Some(k)) if a < v && v < k),
        "{check}: expected NOT VALID, VALIDATE, then SET NOT NULL with the key: {log:#?}"
    );
    conn.client
        .batch_execute("DROP EVENT TRIGGER log_ddl; DROP TABLE ddl_log; DROP FUNCTION log_ddl()")
        .await
        .expect("stop logging");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_gets_its_include_columns_and_storage_parameters() {
    let db = seeded_db("prim_include", 2_000).await;
    let conn = connect(&db.url).await;
    let (_dir, plan) = write_plan(
        r#"
name = "covering email index"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "create_index"
name = "users_email_cover"
table = "users"
columns = ["email", "created_at DESC"]
include = ["name", "city"]
where = "age IS NOT NULL"
with = { fillfactor = 70, deduplicate_items = false }
"#,
    );
    let (code, out, err) = cutover(&db.url, &["plan", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            r#"INCLUDE ("name", "city") WITH ("deduplicate_items" = false, "fillfactor" = 70)"#
        ),
        "{out}"
    );
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    let (def, options) = index_def(&conn, "users_email_cover").await;
    assert!(
        def.contains("(email, created_at DESC) INCLUDE (name, city)"),
        "{def}"
    );
    assert!(def.contains("WHERE (age IS NOT NULL)"), "{def}");
    assert_eq!(options, vec!["deduplicate_items=false", "fillfactor=70"]);
    let valid: bool = scalar(
        &conn,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email_cover'::regclass",
    )
    .await;
    assert!(valid);
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let left: Option<String> = scalar(&conn, "SELECT to_regclass('users_email_cover')::text").await;
    assert_eq!(left, None, "the rollback drops the index");
}

const PRIMARY_KEY_PLAN: &str = r#"
name = "users primary key"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "constraint"
name = "users_pk"
table = "users"
definition = "PRIMARY KEY (id)"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_key_is_added_while_the_app_writes_and_rolled_back_to_the_same_catalog() {
    let db = seeded_db("prim_pk", 20_000).await;
    let conn = connect(&db.url).await;
    // A table without a key, whose key column allows NULL (as a table
    // loaded without constraints would be).
    conn.client
        .batch_execute(
            "ALTER TABLE users DROP CONSTRAINT users_pkey;
             ALTER TABLE users ALTER COLUMN id DROP NOT NULL;",
        )
        .await
        .expect("drop the key");
    let before = schema_dump(&db);
    log_ddl(&conn).await;
    let (_dir, plan) = write_plan(PRIMARY_KEY_PLAN);
    let writer = Writer::start(&db.url);
    writer.wait_for_writes(50, PATIENCE).await;
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    writer.wait_for_writes(50, PATIENCE).await;
    let key: String = scalar(
        &conn,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = 'users'::regclass AND contype = 'p' AND conname = 'users_pk'",
    )
    .await;
    assert_eq!(key, "PRIMARY KEY (id)");
    let not_null: bool = scalar(
        &conn,
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'id'",
    )
    .await;
    assert!(not_null, "the key column is NOT NULL");
    let checks: i64 = scalar(
        &conn,
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'c'",
    )
    .await;
    assert_eq!(checks, 0, "the temporary check is gone");
    assert_proved_by_check(&conn, "users_id_not_null").await;
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let (writes, errors) = writer.stop().await;
    assert!(writes > 100, "the application kept writing ({writes})");
    assert!(errors.is_empty(), "the application saw errors: {errors:?}");
    assert_eq!(
        schema_dump(&db),
        before,
        "the rollback leaves the catalog as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_key_refuses_a_key_column_with_nulls_and_cleans_up() {
    let db = seeded_db("prim_pk_nulls", 2_000).await;
    let conn = connect(&db.url).await;
    conn.client
        .batch_execute(
            "ALTER TABLE users DROP CONSTRAINT users_pkey;
             ALTER TABLE users ALTER COLUMN id DROP NOT NULL;
             UPDATE users SET id = NULL WHERE id = 7;",
        )
        .await
        .expect("a NULL key");
    let before = schema_dump(&db);
    let (_dir, plan) = write_plan(PRIMARY_KEY_PLAN);
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("users.id has NULLs"),
        "{out}{err}"
    );
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        schema_dump(&db),
        before,
        "the unattached index and the check are removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusion_constraint_needs_allow_unsafe_and_is_built() {
    let db = fresh_db("prim_exclude").await;
    let conn = connect(&db.url).await;
    conn.client
        .batch_execute(
            "CREATE TABLE bookings (id bigint PRIMARY KEY, during tstzrange NOT NULL);
             INSERT INTO bookings SELECT g, tstzrange(timestamptz '2026-01-01' + g * interval '1 hour',
                 timestamptz '2026-01-01' + (g + 1) * interval '1 hour')
             FROM generate_series(1, 500) g;",
        )
        .await
        .expect("bookings");
    let text = r#"
name = "no overlapping bookings"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "constraint"
name = "bookings_no_overlap"
table = "bookings"
definition = "EXCLUDE USING gist (during WITH &&)"
"#;
    let (_dir, refused) = write_plan(text);
    let (code, out, err) = cutover(&db.url, &["lint", &refused]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("exclude-constraint"), "{out}");
    let (code, out, err) = cutover(&db.url, &["run", &refused, "--yes", "--headless"]);
    assert_eq!(code, 2, "refused by the check: {out}{err}");
    let (_dir2, allowed) = write_plan(&text.replace(
        "definition =",
        "allow_unsafe = \"500 rows: the build is shorter than lock_timeout\"\ndefinition =",
    ));
    let (code, out, err) = cutover(&db.url, &["run", &allowed, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    let def: String = scalar(
        &conn,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = 'bookings'::regclass AND contype = 'x'",
    )
    .await;
    assert_eq!(def, "EXCLUDE USING gist (during WITH &&)");
    let overlap = conn
        .client
        .batch_execute(
            "INSERT INTO bookings VALUES (1000, tstzrange('2026-01-01 00:30+00', '2026-01-01 01:30+00'))",
        )
        .await;
    assert!(overlap.is_err(), "an overlapping booking is refused");
    let (code, out, err) = cutover(&db.url, &["rollback", &allowed, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let left: i64 = scalar(
        &conn,
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'bookings'::regclass AND contype = 'x'",
    )
    .await;
    assert_eq!(left, 0, "the rollback drops the constraint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_primary_key_plan_runs_and_rolls_back() {
    let db = seeded_db("prim_shipped", 3_000).await;
    let conn = connect(&db.url).await;
    log_ddl(&conn).await;
    let plan = shipped_plan("add_primary_key.toml");
    let (code, out, err) = cutover(&db.url, &["check", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    let key: String = scalar(
        &conn,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = 'user_logins'::regclass AND contype = 'p'",
    )
    .await;
    assert_eq!(key, "PRIMARY KEY (user_id, logged_in_at)");
    let nullable: i64 = scalar(
        &conn,
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'user_logins'::regclass
           AND attnum > 0 AND NOT attnotnull",
    )
    .await;
    assert_eq!(nullable, 0);
    assert_proved_by_check(&conn, "user_logins_user_id_not_null").await;
    let (code, out, err) = cutover(&db.url, &["rollback", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let left: Option<String> = scalar(&conn, "SELECT to_regclass('user_logins')::text").await;
    assert_eq!(left, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusion_constraint_build_longer_than_max_stall_is_cancelled() {
    let db = fresh_db("prim_exclude_stall").await;
    let conn = connect(&db.url).await;
    // Each row's range takes 20 ms to compute: 100 rows make a build of two
    // seconds at least, far beyond the 200 ms budget on any machine.
    conn.client
        .batch_execute(
            "CREATE FUNCTION slow_range(i int) RETURNS int4range LANGUAGE plpgsql IMMUTABLE AS
                 $$ BEGIN PERFORM pg_sleep(0.02); RETURN int4range(i, i + 1); END $$;
             CREATE TABLE slots (id int PRIMARY KEY);
             INSERT INTO slots SELECT generate_series(1, 100);",
        )
        .await
        .expect("slots");
    let (_dir, plan) = write_plan(
        r#"
name = "slow exclusion"
[settings]
max_stall = "200ms"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "constraint"
name = "slots_no_overlap"
table = "slots"
definition = "EXCLUDE USING gist ((slow_range(id)) WITH &&)"
allow_unsafe = "testing the budget"
"#,
    );
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes", "--headless"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("took longer than [settings] max_stall"),
        "{out}{err}"
    );
    let made: i64 = scalar(
        &conn,
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'slots'::regclass AND contype = 'x'",
    )
    .await;
    assert_eq!(made, 0, "nothing was added");
}
