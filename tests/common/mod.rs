//! Test harness: one sandbox per test binary, a fresh database per test.
//!
//! With `DATABASE_URL` set, databases are created on that server instead;
//! tests that need a streaming replica always use the sandbox's.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use cutover::db::{Conn, Source, Target};
use cutover::sandbox::{Sandbox, SandboxOptions};

static SANDBOX: Mutex<Option<Sandbox>> = Mutex::new(None);
static URLS: OnceLock<(String, Option<String>)> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

extern "C" fn stop_sandbox_at_exit() {
    if let Ok(mut guard) = SANDBOX.lock() {
        guard.take();
    }
}

/// The sandbox's primary and replica URLs, starting it on first use.
pub fn sandbox_urls() -> &'static (String, Option<String>) {
    URLS.get_or_init(|| {
        let sandbox = Sandbox::start(&SandboxOptions::default())
            .unwrap_or_else(|e| panic!("cannot start the test sandbox: {e}"));
        let urls = (sandbox.primary_url(), sandbox.replica_url());
        *SANDBOX.lock().unwrap() = Some(sandbox);
        // Statics are never dropped: stop the servers and remove the data
        // when the test binary exits.
        unsafe {
            libc::atexit(stop_sandbox_at_exit);
        }
        urls
    })
}

/// The server tests create their databases on.
fn admin_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => sandbox_urls().0.clone(),
    }
}

/// A database made for one test.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// URL of it on the primary.
    pub url: String,
    /// URL of it on the streaming replica, when the test has one.
    pub replica_url: Option<String>,
}

impl TestDb {
    /// Connects to the primary.
    pub async fn connect(&self) -> Conn {
        connect(&self.url).await
    }

    /// Connects to the replica.
    pub async fn connect_replica(&self) -> Conn {
        connect(
            self.replica_url
                .as_deref()
                .expect("this test has no replica"),
        )
        .await
    }
}

/// Connects to a URL.
pub async fn connect(url: &str) -> Conn {
    let target = Target::parse(url, Source::Flag).expect("test URL parses");
    Conn::connect(&target)
        .await
        .expect("test database reachable")
}

/// A fresh database on `DATABASE_URL`'s server, or the sandbox's.
pub async fn fresh_db(test: &str) -> TestDb {
    create_db(test, &admin_url(), None).await
}

/// A fresh database on the sandbox, with its replica URL.
pub async fn fresh_db_with_replica(test: &str) -> TestDb {
    let (primary, replica) = sandbox_urls();
    create_db(test, primary, replica.as_deref()).await
}

async fn create_db(test: &str, admin: &str, replica_admin: Option<&str>) -> TestDb {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let name = format!("t_{}_{}_{}", test, std::process::id(), n);
    let conn = connect(admin).await;
    conn.client
        .batch_execute(&format!(
            "CREATE DATABASE {}",
            cutover::db::quote_ident(&name)
        ))
        .await
        .expect("create test database");
    if let Some(replica) = replica_admin {
        wait_for_database_on_replica(replica, &name).await;
    }
    TestDb {
        url: with_dbname(admin, &name),
        replica_url: replica_admin.map(|r| with_dbname(r, &name)),
        name,
    }
}

async fn wait_for_database_on_replica(replica_admin: &str, name: &str) {
    let conn = connect(replica_admin).await;
    poll_until_async(
        &format!("database {name} to reach the replica"),
        PATIENCE,
        async || {
            conn.client
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .expect("query the replica")
                .is_some()
        },
    )
    .await;
}

/// The same connection string pointing at another database.
pub fn with_dbname(url: &str, db: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .map(|r| ("postgres://", r))
        .or_else(|| {
            url.strip_prefix("postgresql://")
                .map(|r| ("postgresql://", r))
        })
    {
        let (scheme, rest) = rest;
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let authority = before_query.split('/').next().unwrap_or(before_query);
        match query {
            Some(q) => format!("{scheme}{authority}/{db}?{q}"),
            None => format!("{scheme}{authority}/{db}"),
        }
    } else {
        format!("{url} dbname={db}")
    }
}

/// Path of the built `cutover` binary.
pub fn cutover_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cutover")
}

pub mod app;
pub mod dump;
pub mod locks;
pub mod moving;
pub mod process;
pub mod versions;

/// How long a test waits for anything before it gives up: generous, so a
/// machine busy with other builds only makes tests slower, never red.
pub const PATIENCE: Duration = Duration::from_secs(180);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(25);

/// Waits until `cond` holds, looking again every few milliseconds; panics
/// naming `what` if it still does not after `within`.
pub fn poll_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// A wait's deadline, for polling loops written out by hand (their
/// futures stay `Send`, so they may run in spawned tasks).
pub struct Deadline {
    what: String,
    within: Duration,
    end: Instant,
}

impl Deadline {
    /// Gives `what` at most `within`.
    pub fn new(what: impl Into<String>, within: Duration) -> Deadline {
        Deadline {
            what: what.into(),
            within,
            end: Instant::now() + within,
        }
    }

    /// Panics if the deadline has passed, else pauses before the next look.
    pub async fn next(&self) {
        assert!(
            Instant::now() < self.end,
            "timed out after {:?} waiting for {}",
            self.within,
            self.what
        );
        tokio::time::sleep(POLL).await;
    }
}

/// [`poll_until`] for conditions that query: `cond` is awaited each time.
pub async fn poll_until_async(what: &str, within: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Checks that `invariant` keeps holding for all of `window`, looking
/// every few milliseconds; panics naming `what` the moment it does not.
/// For "nothing happens while …" checks: unlike a wait, a slow machine can
/// only make the check less sensitive, never make it fail.
pub async fn holds_throughout(
    what: &str,
    window: Duration,
    mut invariant: impl AsyncFnMut() -> bool,
) {
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(invariant().await, "{what} stopped holding");
        tokio::time::sleep(POLL).await;
    }
    assert!(invariant().await, "{what} stopped holding");
}

/// SQL that makes every statement updating `users` take at least
/// `seconds` longer (a statement-level trigger that sleeps), so a backfill
/// lasts long enough for a test to act in the middle of it.
pub fn slow_batches(seconds: f64) -> String {
    format!(
        "CREATE FUNCTION slow_batch() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN PERFORM pg_sleep({seconds}); RETURN NULL; END $$;
         CREATE TRIGGER slow_batch AFTER UPDATE ON users
             FOR EACH STATEMENT EXECUTE FUNCTION slow_batch();"
    )
}

/// Counts every update of a row of `users` (`touches`), and slows each
/// batch down by 50 ms so a test can act mid-backfill.
pub fn count_and_slow() -> String {
    count_and_slow_by(0.05)
}

/// As [`count_and_slow`], each batch slowed by `seconds`.
pub fn count_and_slow_by(seconds: f64) -> String {
    format!(
        "ALTER TABLE users ADD COLUMN touches int NOT NULL DEFAULT 0;
         CREATE FUNCTION count_touch() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN NEW.touches := OLD.touches + 1; RETURN NEW; END $$;
         CREATE TRIGGER count_touch BEFORE UPDATE ON users
             FOR EACH ROW EXECUTE FUNCTION count_touch();
         {}",
        slow_batches(seconds)
    )
}

/// The public schema's shape: columns, constraints, indexes, triggers and
/// functions, one sorted line each (for before/after comparisons).
pub async fn catalog(conn: &Conn) -> Vec<String> {
    conn.client
        .query(
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
                    || is_nullable || ' ' || coalesce(column_default, '')
             FROM information_schema.columns WHERE table_schema = 'public'
             UNION ALL
             SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'index ' || pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
             WHERE c.relnamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger
             WHERE NOT tgisinternal
               AND tgrelid NOT IN (SELECT oid FROM pg_class WHERE relnamespace::regnamespace::text = 'cutover')
             UNION ALL
             SELECT 'function ' || proname || '(' || pg_get_function_identity_arguments(oid) || ')'
             FROM pg_proc WHERE pronamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'table ' || relname || ' ' || relkind::text FROM pg_class
             WHERE relnamespace = 'public'::regnamespace
             ORDER BY 1",
            &[],
        )
        .await
        .expect("read the catalog")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A fresh database with the demo `users` table of `rows` rows.
pub async fn seeded_db(test: &str, rows: i64) -> TestDb {
    let db = fresh_db(test).await;
    let conn = db.connect().await;
    cutover::sandbox::seed::seed_users(&conn.client, rows, false, &mut |_| {})
        .await
        .expect("seed users");
    db
}

/// A fresh sandbox database (with its replica) holding `users` of `rows` rows.
pub async fn seeded_db_with_replica(test: &str, rows: i64) -> TestDb {
    let db = fresh_db_with_replica(test).await;
    let conn = db.connect().await;
    cutover::sandbox::seed::seed_users(&conn.client, rows, false, &mut |_| {})
        .await
        .expect("seed users");
    db
}

/// Path of a shipped plan.
pub fn shipped_plan(name: &str) -> String {
    format!("{}/plans/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Writes a plan into a temp dir; returns the dir (keep it alive) and path.
pub fn write_plan(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("plan.toml");
    std::fs::write(&path, text).expect("write plan");
    let p = path.display().to_string();
    (dir, p)
}

/// One value from a query.
pub async fn scalar<T: for<'a> tokio_postgres::types::FromSql<'a>>(conn: &Conn, sql: &str) -> T {
    conn.client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}
