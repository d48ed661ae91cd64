//! The foundation: sandbox, connections, lock-timeout retries, redaction, CLI.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::locks::wait_for_lock_wait;
use common::{
    PATIENCE, cutover_bin, fresh_db, fresh_db_with_replica, poll_until, poll_until_async,
};
use cutover::db::{RetryNotice, RetryPolicy, execute_with_retry};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn write_on_primary_becomes_visible_on_replica() {
    let db = fresh_db_with_replica("replication").await;
    let primary = db.connect().await;
    primary
        .client
        .batch_execute(
            "CREATE TABLE marks (v text); INSERT INTO marks VALUES ('written on primary')",
        )
        .await
        .unwrap();
    let replica = db.connect_replica().await;
    let in_recovery: bool = replica
        .client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery, "the replica URL must point at a standby");
    poll_until_async("the row to reach the replica", PATIENCE, async || {
        let seen = replica
            .client
            .query_opt("SELECT v FROM marks", &[])
            .await
            .ok()
            .flatten()
            .map(|r| r.get::<_, String>(0));
        seen.as_deref() == Some("written on primary")
    })
    .await;
    let streaming: i64 = primary
        .client
        .query_one(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = 'replica1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(streaming, 1);
}

#[tokio::test]
async fn every_connection_is_named_cutover() {
    let db = fresh_db("appname").await;
    let conn = db.connect().await;
    let name: String = conn
        .client
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "cutover");
}

#[tokio::test]
async fn lock_timeout_retry_waits_for_a_held_lock_then_succeeds() {
    let db = fresh_db("retry").await;
    let holder = db.connect().await;
    holder
        .client
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    holder
        .client
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    let migrator = db.connect().await;
    let policy = RetryPolicy {
        hold: None,
        lock_timeout: Duration::from_millis(200),
        retries: 50,
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        gap: None,
    };
    // Release the lock once three attempts have timed out on it.
    let retried = AtomicU32::new(0);
    let release = async {
        poll_until_async("three lock timeouts", PATIENCE, async || {
            retried.load(Ordering::Relaxed) >= 3
        })
        .await;
        holder.client.batch_execute("COMMIT").await.unwrap();
    };
    let mut notices: Vec<RetryNotice> = Vec::new();
    let never = CancellationToken::new();
    let mut report = |n: &RetryNotice| {
        notices.push(n.clone());
        retried.fetch_add(1, Ordering::Relaxed);
    };
    let attempt = execute_with_retry(
        &migrator,
        "ALTER TABLE t ADD COLUMN c int",
        &policy,
        &never,
        &mut report,
    );
    let (attempts, ()) = tokio::join!(attempt, release);
    let attempts = attempts.expect("succeeds once the lock is released");
    assert!(attempts >= 4, "expected several attempts, got {attempts}");
    assert_eq!(
        notices.len() as u32,
        attempts - 1,
        "every retry is reported"
    );
    // Each attempt is bounded by lock_timeout, never the whole wait.
    assert!(
        notices.iter().all(|n| n.reason.contains("55P03")),
        "{notices:?}"
    );
    let col: i64 = migrator
        .client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'c'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(col, 1);
}

#[tokio::test]
async fn lock_timeout_retry_gives_up_with_a_clear_error() {
    let db = fresh_db("retry_gives_up").await;
    let holder = db.connect().await;
    holder
        .client
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    holder
        .client
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    let migrator = db.connect().await;
    let policy = RetryPolicy {
        hold: None,
        lock_timeout: Duration::from_millis(100),
        retries: 2,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(20),
        gap: None,
    };
    // Bounded by lock_timeout: it gives up while the lock is still held.
    let err = tokio::time::timeout(
        PATIENCE,
        execute_with_retry(
            &migrator,
            "ALTER TABLE t ADD COLUMN c int",
            &policy,
            &CancellationToken::new(),
            &mut |_| {},
        ),
    )
    .await
    .expect("gave up instead of waiting for the lock")
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("3 attempts"), "{msg}");
    assert!(msg.contains("lock_retries"), "{msg}");
}

#[tokio::test]
async fn cancelling_stops_a_waiting_statement() {
    let db = fresh_db("cancel").await;
    let holder = db.connect().await;
    holder
        .client
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    holder
        .client
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    let migrator = db.connect().await;
    let policy = RetryPolicy {
        hold: None,
        lock_timeout: Duration::from_secs(30),
        ..RetryPolicy::default()
    };
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    // Cancelled once the statement waits for the lock.
    let watcher = common::connect(&db.url).await;
    let migrator_pid = migrator.pid();
    let cancel_when_waiting = async {
        wait_for_lock_wait(&watcher, &format!("a.pid = {migrator_pid}")).await;
        trigger.cancel();
    };
    // Its lock_timeout (30 s) never runs out: the cancel ends the wait.
    let mut ignore = |_: &RetryNotice| {};
    let attempt = tokio::time::timeout(
        PATIENCE,
        execute_with_retry(
            &migrator,
            "ALTER TABLE t ADD COLUMN c int",
            &policy,
            &cancel,
            &mut ignore,
        ),
    );
    let (result, ()) = tokio::join!(attempt, cancel_when_waiting);
    let err = result
        .expect("the cancel ended the wait")
        .expect_err("cancelled");
    assert!(matches!(err, cutover::db::DbError::Cancelled), "{err}");
    // The connection is usable again and no longer waits for the lock.
    let waiting: i64 = holder
        .client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
            &[&migrator.pid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(waiting, 0);
}

#[test]
fn connection_errors_never_print_the_password() {
    // Nothing listens on port 1; the error must name the target, not the secret.
    let out = Command::new(cutover_bin())
        .args([
            "--database-url",
            "postgres://alice:hunter2-secret@127.0.0.1:1/app?sslmode=disable",
            "sandbox",
            "seed",
            "--rows",
            "1",
        ])
        .env("CUTOVER_LOG", "debug")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("postgres://alice@127.0.0.1:1/app"), "{all}");
    assert!(all.contains("--database-url"), "{all}");
    assert!(!all.contains("hunter2"), "password leaked:\n{all}");
}

#[test]
fn bad_connection_string_errors_never_print_the_password() {
    let out = Command::new(cutover_bin())
        .args(["sandbox", "seed"])
        .env(
            "DATABASE_URL",
            "postgres://alice:hunter2-secret@h/app?sslmode=sometimes",
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(err.contains("sslmode=sometimes"), "{err}");
    assert!(!err.contains("hunter2"), "password leaked:\n{err}");
}

#[test]
fn help_lists_every_subcommand() {
    let out = Command::new(cutover_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for cmd in [
        "run", "check", "lint", "plan", "status", "advance", "pause", "resume", "abort",
        "rollback", "demo", "sandbox",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "--help lacks {cmd}:\n{help}"
        );
    }
}

#[test]
fn missing_server_binaries_say_how_to_install_them() {
    let out = Command::new(cutover_bin())
        .args(["sandbox", "start"])
        .env("PG_BIN", "/nonexistent/bin")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("apt-get install postgresql"), "{err}");
    assert!(err.contains("PG_BIN"), "{err}");
}

/// Reads `sandbox start`'s stdout until it has printed both URLs.
fn read_sandbox_urls(child: &mut std::process::Child) -> (String, String, String) {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut primary, mut replica, mut data) = (None, None, None);
    while primary.is_none() || replica.is_none() || data.is_none() {
        let line = lines.next().expect("sandbox printed its URLs").unwrap();
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("primary"), Some(url)) => primary = Some(url.to_string()),
            (Some("replica"), Some(url)) => replica = Some(url.to_string()),
            (Some("data"), Some(dir)) => data = Some(dir.to_string()),
            _ => {}
        }
    }
    (primary.unwrap(), replica.unwrap(), data.unwrap())
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn sandbox_start_serves_until_ctrl_c_then_removes_everything() {
    let mut child = Command::new(cutover_bin())
        .args(["sandbox", "start", "--rows", "2000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (primary, replica, dir) = read_sandbox_urls(&mut child);
    assert!(port_open(port_of(&primary)) && port_open(port_of(&replica)));
    // The seeded table is there, on the replica too.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let count: i64 = rt.block_on(async {
        let conn = common::connect(&primary).await;
        conn.client
            .query_one("SELECT count(*) FROM users", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(count, 2000);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        !port_open(port_of(&primary)),
        "primary still up after Ctrl-C"
    );
    assert!(
        !port_open(port_of(&replica)),
        "replica still up after Ctrl-C"
    );
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
}

#[test]
fn killed_cutover_leaves_no_server_running() {
    let mut child = Command::new(cutover_bin())
        .args(["sandbox", "start"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (primary, replica, _dir) = read_sandbox_urls(&mut child);
    assert!(port_open(port_of(&primary)));
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    poll_until("servers to stop after SIGKILL", PATIENCE, || {
        !port_open(port_of(&primary)) && !port_open(port_of(&replica))
    });
}
