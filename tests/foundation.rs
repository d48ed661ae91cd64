//! The foundation: sandbox, connections, lock-timeout retries, redaction, CLI.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cutover_bin, fresh_db, fresh_db_with_replica};
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
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = replica
            .client
            .query_opt("SELECT v FROM marks", &[])
            .await
            .ok()
            .flatten()
            .map(|r| r.get::<_, String>(0));
        if seen.as_deref() == Some("written on primary") {
            break;
        }
        assert!(Instant::now() < deadline, "row never reached the replica");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
        lock_timeout: Duration::from_millis(200),
        retries: 50,
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
    };
    // Release the lock after ~1.2 s: several attempts must time out first.
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        holder.client.batch_execute("COMMIT").await.unwrap();
        holder
    });
    let mut notices: Vec<RetryNotice> = Vec::new();
    let started = Instant::now();
    let attempts = execute_with_retry(
        &migrator,
        "ALTER TABLE t ADD COLUMN c int",
        &policy,
        &CancellationToken::new(),
        &mut |n| notices.push(n.clone()),
    )
    .await
    .expect("succeeds once the lock is released");
    let _holder = release.await.unwrap();
    assert!(attempts >= 3, "expected several attempts, got {attempts}");
    assert_eq!(
        notices.len() as u32,
        attempts - 1,
        "every retry is reported"
    );
    assert!(notices[0].reason.contains("55P03"), "{:?}", notices[0]);
    assert!(started.elapsed() >= Duration::from_millis(1200));
    // Each attempt is bounded by lock_timeout, never the whole wait.
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
        lock_timeout: Duration::from_millis(100),
        retries: 2,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(20),
    };
    let started = Instant::now();
    let err = execute_with_retry(
        &migrator,
        "ALTER TABLE t ADD COLUMN c int",
        &policy,
        &CancellationToken::new(),
        &mut |_| {},
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("3 attempts"), "{msg}");
    assert!(msg.contains("lock_retries"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by lock_timeout"
    );
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
        lock_timeout: Duration::from_secs(30),
        ..RetryPolicy::default()
    };
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = execute_with_retry(
        &migrator,
        "ALTER TABLE t ADD COLUMN c int",
        &policy,
        &cancel,
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, cutover::db::DbError::Cancelled), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
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

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
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
    wait_until(
        "servers to stop after SIGKILL",
        Duration::from_secs(10),
        || !port_open(port_of(&primary)) && !port_open(port_of(&replica)),
    );
}
