//! Migration directories: `cutover migrate DIR` applies what is not yet
//! applied, in file-name order, and stops at the first plan that fails;
//! `cutover history` lists what was applied; `cutover baseline` marks a
//! database as already at a plan. Against the sandbox, through the binary.

mod common;

use std::path::{Path, PathBuf};

use common::process::cutover;
use common::{connect, fresh_db, scalar};
use serde_json::Value;

/// Each plan needs the one before it: run out of order, its check fails.
const PLANS: [(&str, &str); 4] = [
    (
        "01_items.toml",
        r#"name = "items"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "CREATE TABLE items (id bigint PRIMARY KEY, name text)"
rollback = "DROP TABLE items"
"#,
    ),
    (
        "02_items_price.toml",
        r#"name = "items.price"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE items ADD COLUMN price numeric"
rollback = "ALTER TABLE items DROP COLUMN price"
"#,
    ),
    (
        "03_items_price_index.toml",
        r#"name = "index items.price"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "create_index"
name = "items_price_idx"
table = "items"
columns = ["price"]
"#,
    ),
    (
        "04_items_note.toml",
        r#"name = "items.note"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE items ADD COLUMN note text"
rollback = "ALTER TABLE items DROP COLUMN note"
"#,
    ),
];

/// A directory holding the first `n` plans.
fn plan_dir(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (file, text) in &PLANS[..n] {
        std::fs::write(dir.path().join(file), text).expect("write plan");
    }
    dir
}

fn add_plan(dir: &Path, i: usize) -> PathBuf {
    let (file, text) = PLANS[i];
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write plan");
    path
}

fn migrate(url: &str, dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let dir = dir.display().to_string();
    let mut args = vec!["migrate", dir.as_str(), "--yes", "--headless"];
    args.extend_from_slice(extra);
    cutover(url, &args)
}

/// The plans that have runs, in the order they started.
async fn runs(url: &str) -> Vec<String> {
    connect(url)
        .await
        .client
        .query("SELECT plan_name FROM cutover.runs ORDER BY id", &[])
        .await
        .expect("read runs")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn history(url: &str) -> Vec<Value> {
    let (code, out, err) = cutover(url, &["history", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    match serde_json::from_str(&out) {
        Ok(Value::Array(entries)) => entries,
        other => panic!("history --json is not an array: {other:?}\n{out}"),
    }
}

fn names(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["plan"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_applied_in_order_once_and_a_new_plan_alone() {
    let db = fresh_db("mig_order").await;
    let dir = plan_dir(3);
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 applied, 0 already applied"), "{out}");
    assert_eq!(
        runs(&db.url).await,
        ["items", "items.price", "index items.price"]
    );
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 applied, 3 already applied"), "{out}");
    assert_eq!(runs(&db.url).await.len(), 3, "nothing ran again");
    let fourth = add_plan(dir.path(), 3);
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 applied, 3 already applied"), "{out}");
    assert_eq!(runs(&db.url).await.len(), 4);
    let conn = connect(&db.url).await;
    let note: i64 = scalar(
        &conn,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'",
    )
    .await;
    assert_eq!(note, 1);
    let entries = history(&db.url);
    assert_eq!(
        names(&entries),
        ["items", "items.price", "index items.price", "items.note"]
    );
    for (entry, (file, _)) in entries.iter().zip(PLANS) {
        let path = dir.path().join(file);
        let hash = cutover::plan::load(&path).expect("plan loads").hash;
        assert_eq!(entry["hash"], hash.as_str(), "{entry}");
        assert_eq!(entry["file"], path.display().to_string().as_str());
        assert_eq!(entry["by"], "postgres");
        assert_eq!(entry["how"]["type"], "run");
        assert!(
            entry["finished_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }
    let (code, out, err) = cutover(&db.url, &["history"]);
    assert_eq!(code, 0, "{out}{err}");
    let short = &cutover::plan::load(&fourth).expect("loads").hash[..12];
    assert!(out.contains(short) && out.contains("items.note"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_marks_the_plans_up_to_it_and_migrate_runs_the_rest() {
    let db = fresh_db("mig_baseline").await;
    // The database already has what plans 1 and 2 do.
    connect(&db.url)
        .await
        .client
        .batch_execute("CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric)")
        .await
        .expect("existing schema");
    let dir = plan_dir(4);
    let second = dir.path().join(PLANS[1].0).display().to_string();
    let d = dir.path().display().to_string();
    let (code, out, err) = cutover(&db.url, &["baseline", &d, &second]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 applied, 2 already applied"), "{out}");
    assert_eq!(runs(&db.url).await, ["index items.price", "items.note"]);
    let entries = history(&db.url);
    assert_eq!(
        names(&entries),
        ["items", "items.price", "index items.price", "items.note"]
    );
    let how: Vec<&str> = entries
        .iter()
        .map(|e| e["how"]["type"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(how, ["baseline", "baseline", "run", "run"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_plan_stops_the_chain_and_the_next_migrate_resumes_it() {
    let db = fresh_db("mig_fail").await;
    let dir = plan_dir(3);
    // Plan 2 also checks there is an item, which there is not yet.
    let second = dir.path().join(PLANS[1].0);
    std::fs::write(
        &second,
        format!(
            "{}[[phases.steps]]\nkind = \"verify\"\nname = \"an item exists\"\nsql = \"SELECT count(*) FROM items\"\nexpect = 1\n",
            PLANS[1].1
        ),
    )
    .expect("write plan");
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    // A verify mismatch aborts the run (exit 3).
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains(&format!("stopped: {} was aborted", second.display())),
        "{out}"
    );
    assert!(
        out.contains("03_items_price_index.toml"),
        "names what was not started: {out}"
    );
    assert_eq!(
        runs(&db.url).await,
        ["items", "items.price"],
        "plan 3 did not start"
    );
    connect(&db.url)
        .await
        .client
        .batch_execute("INSERT INTO items (id, name) VALUES (1, 'one')")
        .await
        .expect("an item");
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 applied, 1 already applied"), "{out}");
    assert_eq!(
        runs(&db.url).await,
        ["items", "items.price", "index items.price"],
        "plan 2's run resumed (no second run of it)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_plan_edited_since_is_refused_unless_forced() {
    let db = fresh_db("mig_changed").await;
    let dir = plan_dir(2);
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    let first = dir.path().join(PLANS[0].0);
    // A comment changes nothing a step does.
    std::fs::write(&first, format!("# the items table\n{}", PLANS[0].1)).expect("edit");
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 applied, 2 already applied"), "{out}");
    std::fs::write(&first, PLANS[0].1.replace("name text", "name varchar(80)")).expect("edit");
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&first.display().to_string()) && err.contains("--force-changed-plan"),
        "{err}"
    );
    let (code, out, err) = migrate(&db.url, dir.path(), &["--force-changed-plan"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(runs(&db.url).await.len(), 2, "nothing ran again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_4_journal_is_upgraded_in_place() {
    let db = fresh_db("mig_upgrade").await;
    let dir = plan_dir(1);
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    // The journal as version 4 left it.
    let conn = connect(&db.url).await;
    conn.client
        .batch_execute(
            "ALTER TABLE cutover.runs DROP COLUMN db_user;
             DROP TABLE cutover.baselines;
             DROP TRIGGER forget_ranges ON cutover.steps;
             DROP FUNCTION cutover.forget_ranges();
             DROP TABLE cutover.step_ranges;
             UPDATE cutover.meta SET value = '4' WHERE key = 'schema_version';",
        )
        .await
        .expect("back to v4");
    let entries = history(&db.url);
    assert_eq!(names(&entries), ["items"]);
    assert_eq!(
        entries[0]["by"],
        Value::Null,
        "who ran it was not recorded then"
    );
    let version: String = scalar(
        &conn,
        "SELECT value FROM cutover.meta WHERE key = 'schema_version'",
    )
    .await;
    assert_eq!(version, cutover::journal::schema::VERSION.to_string());
    add_plan(dir.path(), 1);
    let (code, out, err) = migrate(&db.url, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    let entries = history(&db.url);
    assert_eq!(entries[1]["by"], "postgres");
}
