//! A second version-schema plan after a completed one: the first plan's
//! views still read the table's columns, so a column the second plan's
//! completion drops is held by them. `check` says so before anything runs
//! (not at the irreversible phase, after its gate); with those views gone
//! the plan completes.

mod common;

use common::process::cutover;
use common::{fresh_db, write_plan};

/// Renames a column through schema v1, then completes: v1's view stays.
const FIRST: &str = r#"
name = "items.label to title"
[versions]
old = "public"
new = "v1"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "rename_column"
table = "items"
from = "label"
to = "title"
[[phases]]
name = "contract"
irreversible = true
[[phases.steps]]
kind = "gate"
message = "the old app is gone"
"#;

/// Changes items.qty's type through schema v2: its completion drops the
/// old qty column.
const SECOND: &str = r#"
name = "items.qty to bigint"
[versions]
old = "public"
new = "v2"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "alter_column"
table = "items"
column = "qty"
type = "bigint"
[[phases]]
name = "contract"
irreversible = true
[[phases.steps]]
kind = "gate"
message = "the old app is gone"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_an_earlier_version_view_that_would_stop_the_completion() {
    let db = fresh_db("versions_views").await;
    let conn = db.connect().await;
    conn.client
        .batch_execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, qty int, label text);
             INSERT INTO items SELECT g, g % 7, 'item ' || g FROM generate_series(1, 500) g",
        )
        .await
        .expect("the table");
    let (_d1, first) = write_plan(FIRST);
    let (_d2, second) = write_plan(SECOND);

    let (code, out, err) = cutover(&db.url, &["check", &second]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains("would fail there"),
        "no view reads items.qty yet:\n{out}"
    );

    let (code, out, err) = cutover(&db.url, &["run", &first, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = cutover(&db.url, &["check", &second]);
    assert_eq!(code, 0, "a warning, not an error:\n{out}{err}");
    assert!(
        out.contains("v1.items reads items.qty") && out.contains("would fail there"),
        "the check names the view the completion would trip on:\n{out}"
    );

    conn.client
        .batch_execute("DROP SCHEMA v1 CASCADE")
        .await
        .expect("the first version's schema retired");
    let (code, out, err) = cutover(&db.url, &["run", &second, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    let qty: String = common::scalar(
        &conn,
        "SELECT data_type::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = 'items' AND column_name = 'qty'",
    )
    .await;
    assert_eq!(qty, "bigint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_an_earlier_version_schema_as_old() {
    let db = fresh_db("versions_views_old").await;
    let conn = db.connect().await;
    conn.client
        .batch_execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, qty int, label text);
             INSERT INTO items SELECT g, g % 7, 'item ' || g FROM generate_series(1, 500) g",
        )
        .await
        .expect("the table");
    let (_d1, first) = write_plan(FIRST);
    let (code, out, err) = cutover(&db.url, &["run", &first, "--yes", "--headless"]);
    assert_eq!(code, 0, "{out}{err}");
    // The application now reads v1; a plan naming it as the old version
    // finds views there, not the tables.
    let (_d2, second) = write_plan(&SECOND.replace("old = \"public\"", "old = \"v1\""));
    let (code, out, err) = cutover(&db.url, &["check", &second]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("[versions]")
            && out.contains("no table \"items\"")
            && out.contains("(\"v1\")"),
        "the check names the setting at fault:\n{out}"
    );
    let (code, out, err) = cutover(&db.url, &["run", &second, "--yes", "--headless"]);
    assert_eq!(code, 2, "refused before it started:\n{out}{err}");
    let schemas: i64 = common::scalar(
        &conn,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'v2'",
    )
    .await;
    assert_eq!(schemas, 0, "nothing was executed");
}
