//! The cockpit end to end: the real binary in tmux, driven by keys, read
//! back with capture-pane (polling, never fixed sleeps).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    PATIENCE, cutover_bin, poll_until, poll_until_async, scalar, seeded_db, slow_batches,
    write_plan,
};

static NEXT_SOCKET: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Tmux {
    socket: String,
    session: &'static str,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let t = Tmux {
            // One tmux server per test: tests run in parallel.
            socket: format!(
                "cutover-test-{}-{}",
                std::process::id(),
                NEXT_SOCKET.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            ),
            session: "cockpit",
        };
        let ok = t
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                t.session,
                "-x",
                "120",
                "-y",
                "40",
                command,
            ])
            .status
            .success();
        assert!(ok, "tmux new-session failed (is tmux installed?)");
        t
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", self.session]).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    /// Polls the screen until it shows `what`; returns that screen.
    fn wait_for(&self, what: &str, limit: Duration) -> String {
        self.wait_for_all(&[what], limit)
    }

    /// Polls the screen until one frame shows every one of `whats` (parts
    /// of the screen may be drawn a frame apart); returns that screen.
    fn wait_for_all(&self, whats: &[&str], limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if whats.iter().all(|w| screen.contains(w)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {whats:?}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_gate_backfill_abort_rollback_quit() {
    let db = seeded_db("cockpit", 100_000).await;
    let conn = db.connect().await;
    // Slow batches, so there is time to act mid-backfill.
    conn.client.batch_execute(&slow_batches(0.1)).await.unwrap();
    let before = common::catalog(&conn).await;
    let (_dir, plan) = write_plan(
        r#"
name = "cockpit e2e"
[throttle]
max_batch_size = 1000
[[phases]]
name = "expand"
description = "Check the dashboards, then advance."
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN nickname text"
rollback = "ALTER TABLE users DROP COLUMN IF EXISTS nickname"
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "nickname = lower(name)"
batch_size = 1000
"#,
    );
    let exit_file = tempfile::NamedTempFile::new().unwrap();
    let exit_path = exit_file.path().display().to_string();
    let log_file = format!("{exit_path}.log");
    let command = format!(
        "env DATABASE_URL='{}' CUTOVER_LOG_FILE='{log_file}' {} run {plan}; echo EXIT=$? > {exit_path}; sleep 600",
        db.url,
        cutover_bin()
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for_all(&["WAITING AT GATE", "Plan", "Backfill", "Log"], PATIENCE);
    // The gate's message is on screen, with what advancing runs.
    let screen = tmux.wait_for("Check the dashboards, then advance.", PATIENCE);
    assert!(
        screen.contains("ALTER TABLE users ADD COLUMN nickname text"),
        "the next statement is shown:\n{screen}"
    );
    // Enter inspects; it never releases the gate.
    tmux.keys(&["Enter"]);
    tmux.wait_for("Enter/Esc close", PATIENCE);
    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for("n advance gate", PATIENCE);
    assert!(screen.contains("WAITING AT GATE"), "{screen}");
    tmux.keys(&["n"]);
    tmux.wait_for("keys/s", PATIENCE);
    // The pane appears before the first batch commits: abort only once
    // some batches are in, so it lands mid-backfill.
    poll_until_async("a batch to commit", PATIENCE, async || {
        let n: i64 = scalar(
            &conn,
            "SELECT count(*) FROM users WHERE nickname IS NOT NULL",
        )
        .await;
        n > 0
    })
    .await;
    // Paused: nothing moves, and the screen says so instead of the last
    // rate.
    tmux.keys(&["p"]);
    let screen = tmux.wait_for("ETA — (paused)", PATIENCE);
    let rate_line = screen
        .lines()
        .find(|l| l.contains("keys/s  ETA"))
        .unwrap_or_default();
    assert!(
        rate_line.contains("│0 keys/s"),
        "no running rate while paused:\n{screen}"
    );
    tmux.keys(&["p"]);
    tmux.wait_for("RUNNING", PATIENCE);
    tmux.keys(&["a"]);
    tmux.wait_for("Abort the run? (y/n)", PATIENCE);
    tmux.keys(&["y"]);
    // The state and its reason, on screen.
    tmux.wait_for_all(&["ABORTED", "aborted by the operator"], PATIENCE);
    let done: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users WHERE nickname IS NOT NULL",
    )
    .await;
    assert!(
        done > 0 && done < 100_000,
        "aborted mid-backfill ({done} rows)"
    );
    tmux.keys(&["r"]);
    // The confirmation shows what will be undone.
    tmux.wait_for_all(
        &["Type users", "undo \"ALTER TABLE users ADD COLUMN"],
        PATIENCE,
    );
    tmux.keys(&["users", "Enter"]);
    tmux.wait_for("ROLLED BACK", PATIENCE);
    tmux.keys(&["q"]);
    poll_until("cutover to exit", PATIENCE, || {
        std::fs::read_to_string(&exit_path).is_ok_and(|t| t.starts_with("EXIT="))
    });
    let exit = std::fs::read_to_string(&exit_path)
        .unwrap_or_default()
        .trim()
        .to_string();
    assert_eq!(exit, "EXIT=0", "rolled back, then quit");
    // The terminal is restored: alternate screen off, cursor back.
    let alt = tmux.cmd(&[
        "display-message",
        "-p",
        "-t",
        tmux.session,
        "#{alternate_on}",
    ]);
    assert_eq!(String::from_utf8_lossy(&alt.stdout).trim(), "0");
    let screen = tmux.screen();
    assert!(
        !screen.contains("ROLLED BACK"),
        "the cockpit is still on screen"
    );
    // The exit summary is on the normal screen.
    assert!(
        screen.contains("\"cockpit e2e\" rolled back") && screen.contains("next: cutover run"),
        "no exit summary:\n{screen}"
    );
    assert_eq!(
        common::catalog(&conn).await,
        before,
        "the rollback restored the schema"
    );
    // Logs went to the file, not the screen.
    assert!(
        std::fs::metadata(&log_file).is_ok(),
        "no log file at {log_file}"
    );
    let _ = std::fs::remove_file(&log_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_irreversible_gate_needs_the_table_name() {
    let db = seeded_db("cockpit_irreversible", 2_000).await;
    let conn = db.connect().await;
    let (_dir, plan) = write_plan(
        r#"
name = "cockpit irreversible"
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN nickname text"
rollback = "ALTER TABLE users DROP COLUMN IF EXISTS nickname"
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "nickname = lower(name)"
[[phases]]
name = "contract"
irreversible = true
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users DROP COLUMN nickname"
"#,
    );
    let exit_file = tempfile::NamedTempFile::new().unwrap();
    let exit_path = exit_file.path().display().to_string();
    let log_file = format!("{exit_path}.log");
    let command = format!(
        "env DATABASE_URL='{}' CUTOVER_LOG_FILE='{log_file}' {} run {plan}; echo EXIT=$? > {exit_path}; sleep 30",
        db.url,
        cutover_bin()
    );
    let tmux = Tmux::start(&command);
    let screen = tmux.wait_for("IRREVERSIBLE phase (type users", Duration::from_secs(60));
    assert!(
        screen.contains("ALTER TABLE users DROP COLUMN nickname"),
        "the irreversible statement is shown before advancing:\n{screen}"
    );
    assert!(screen.contains("ACCESS EXCLUSIVE on users"), "{screen}");
    tmux.keys(&["n"]);
    tmux.wait_for("Type users and press Enter", Duration::from_secs(10));
    // A wrong word does nothing.
    tmux.keys(&["user", "Enter"]);
    let screen = tmux.wait_for("> user", Duration::from_secs(10));
    assert!(screen.contains("Irreversible phase"), "{screen}");
    let still: i64 = scalar(
        &conn,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'",
    )
    .await;
    assert_eq!(still, 1, "nothing ran on a wrong confirmation");
    tmux.keys(&["s", "Enter"]);
    tmux.wait_for("FINISHED", Duration::from_secs(30));
    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        let text = std::fs::read_to_string(&exit_path).unwrap_or_default();
        if text.starts_with("EXIT=") {
            break text.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "cutover did not exit:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(exit, "EXIT=0");
    let screen = tmux.screen();
    assert!(
        screen.contains("\"cockpit irreversible\" finished") && screen.contains("(3/3 steps done)"),
        "no exit summary:\n{screen}"
    );
    let gone: i64 = scalar(
        &conn,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'",
    )
    .await;
    assert_eq!(gone, 0, "the contract phase ran after the confirmation");
    let _ = std::fs::remove_file(&log_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_names_the_session_a_ddl_waits_behind() {
    let db = seeded_db("cockpit_lock_wait", 1_000).await;
    let conn = db.connect().await;
    let (_dir, plan) = write_plan(
        r#"
name = "cockpit lock wait"
[settings]
lock_timeout = "300ms"
lock_retries = 200
retry_backoff = "100ms..300ms"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN nickname text"
rollback = "ALTER TABLE users DROP COLUMN IF EXISTS nickname"
"#,
    );
    let exit_file = tempfile::NamedTempFile::new().unwrap();
    let exit_path = exit_file.path().display().to_string();
    let log_file = format!("{exit_path}.log");
    let command = format!(
        "env DATABASE_URL='{}' CUTOVER_LOG_FILE='{log_file}' {} run {plan}; echo EXIT=$? > {exit_path}; sleep 30",
        db.url,
        cutover_bin()
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("WAITING AT GATE", Duration::from_secs(30));
    // A session idle in a transaction that read the table: the DDL's
    // ACCESS EXCLUSIVE lock waits behind it.
    let holder = db.connect().await;
    holder
        .client
        .batch_execute(
            "SET application_name = 'report-job'; BEGIN; SELECT count(*) FROM users WHERE id < 10",
        )
        .await
        .unwrap();
    let pid: i32 = scalar(&holder, "SELECT pg_backend_pid()").await;
    tmux.keys(&["n"]);
    let screen = tmux.wait_for("WAITING FOR LOCK on users (retry", Duration::from_secs(30));
    assert!(
        screen
            .lines()
            .next()
            .unwrap_or_default()
            .contains("WAITING FOR LOCK"),
        "the header says it:\n{screen}"
    );
    let screen = tmux.wait_for(
        &format!("blocked by pid {pid} report-job"),
        Duration::from_secs(30),
    );
    assert!(
        screen.contains("idle in transaction"),
        "the blocker's state is named:\n{screen}"
    );
    holder.client.batch_execute("ROLLBACK").await.unwrap();
    tmux.wait_for("FINISHED", Duration::from_secs(30));
    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&exit_path).unwrap_or_default();
        if text.starts_with("EXIT=") {
            assert_eq!(text.trim(), "EXIT=0");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cutover did not exit:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(conn);
    let _ = std::fs::remove_file(&log_file);
}

#[test]
fn demo_runs_end_to_end_headless() {
    let out = Command::new(cutover_bin())
        .args(["demo", "--headless", "--yes", "--rows", "20000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("users: 20000 rows seeded"), "{stderr}");
    assert!(stdout.contains("step \"backfill users\" done"), "{stdout}");
    assert!(stdout.contains("finished in"), "{stdout}");
    assert!(stderr.contains("stopping the sandbox"), "{stderr}");
}
