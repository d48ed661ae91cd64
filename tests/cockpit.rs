//! The cockpit end to end: the real binary in tmux, driven by keys, read
//! back with capture-pane (polling, never fixed sleeps).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    PATIENCE, cutover_bin, poll_until, poll_until_async, scalar, seeded_db, slow_batches,
    write_plan,
};

struct Tmux {
    socket: String,
    session: &'static str,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let t = Tmux {
            socket: format!("cutover-test-{}", std::process::id()),
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
    // The gate, and the panes around it.
    tmux.wait_for_all(&["WAITING AT GATE", "Plan", "Backfill", "Log"], PATIENCE);
    tmux.keys(&["n"]);
    tmux.wait_for("rows/s", PATIENCE);
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
    assert!(
        !tmux.screen().contains("ROLLED BACK"),
        "the cockpit is still on screen"
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
