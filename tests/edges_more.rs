//! More trust at the edges (issue 17), found by trying to break a run:
//! reconnecting past its bound, copy checkpoints through abort and Ctrl-C,
//! a swap's retries that an abort ends, what `status` says of a killed
//! driver and how it meets a closed pipe, colours in headless output, and
//! the third Ctrl-C.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{Running, cutover};
use common::{PATIENCE, cutover_bin, poll_until_async, scalar, seeded_db, write_plan};
use nix::sys::signal::Signal;
use serde_json::Value;

const BACKFILL: &str = r#"
name = "fill city"
[settings]
reconnect_timeout = "3s"
[throttle]
max_batch_size = 500
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "city = 'one'"
batch_size = 500
"#;

fn progress_past(rows: i64) -> impl Fn(&Value) -> bool {
    move |v| v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) >= rows
}

/// A cutover process with stdout and stderr both captured as they come.
struct Captured {
    child: std::process::Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Captured {
    fn spawn(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> Captured {
        let mut child = Command::new(cutover_bin())
            .args(args)
            .env("DATABASE_URL", db_url)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cutover");
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for (pipe, into) in [
            (
                Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
                out.clone(),
            ),
            (
                Box::new(child.stderr.take().expect("stderr")) as Box<dyn Read + Send>,
                err.clone(),
            ),
        ] {
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut s) = into.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            }));
        }
        Captured {
            child,
            out,
            err,
            readers,
        }
    }

    fn stdout(&self) -> String {
        self.out.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn wait_for_stdout(&self, what: &str, needle: &str) {
        let end = Instant::now() + PATIENCE;
        while !self.stdout().contains(needle) {
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; stdout:\n{}",
                self.stdout()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn signal(&self, sig: Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig)
            .expect("signal");
    }

    /// Waits for the exit; (code, stdout, stderr).
    fn wait(mut self, limit: Duration) -> (i32, String, String) {
        let end = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!(
                    "cutover did not exit in {limit:?}; stdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.err.lock().map(|s| s.clone()).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in std::mem::take(&mut self.readers) {
            let _ = r.join();
        }
        let err = self.err.lock().map(|s| s.clone()).unwrap_or_default();
        (status.code().unwrap_or(-1), self.stdout(), err)
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Terminates every cutover session of the database, once the work session
/// is inside a batch statement (so the step itself has an error to report).
async fn terminate_cutover_sessions_mid_batch(conn: &cutover::db::Conn, db: &str) -> i64 {
    let mut killed = 0;
    poll_until_async("a batch to be running", PATIENCE, async || {
        killed = conn
            .client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = 'cutover' AND datname = $1 AND pid <> pg_backend_pid()
                   AND EXISTS (SELECT 1 FROM pg_stat_activity
                               WHERE application_name = 'cutover' AND datname = $1
                                 AND wait_event = 'PgSleep')",
                &[&db],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        killed > 0
    })
    .await;
    killed
}

fn has_ansi(s: &str) -> bool {
    s.contains('\u{1b}')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_past_its_bound_exits_1_with_the_steps_error_and_resumes_later() {
    past_the_reconnect_bound("more_reconnect_bound").await;
}

async fn past_the_reconnect_bound(test: &str) {
    let db = seeded_db(test, 20_000).await;
    let admin = db.connect().await;
    admin
        .client
        .batch_execute(&common::count_and_slow_by(0.3))
        .await
        .unwrap();
    let (dir, plan) = write_plan(BACKFILL);
    // Warnings go to stderr (the log file cannot be opened): they must
    // carry no colour either.
    let log = dir.path().join("no such dir").join("cutover.log");
    let log = log.display().to_string();
    let run = Captured::spawn(&db.url, &["run", &plan], &[("CUTOVER_LOG_FILE", &log)]);
    poll_until_async("some batches", PATIENCE, async || {
        // The journal's tables may not exist yet.
        let done: i64 = admin
            .client
            .query_one("SELECT coalesce(max(rows_done), 0) FROM cutover.steps", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        done >= 1_000
    })
    .await;
    // No connection may be made again: not even a superuser's.
    // (from another database: a database's own sessions may not close it)
    let server = common::connect(&common::with_dbname(&db.url, "postgres")).await;
    server
        .client
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            cutover::db::quote_ident(&db.name)
        ))
        .await
        .unwrap();
    let killed = terminate_cutover_sessions_mid_batch(&admin, &db.name).await;
    assert!(killed >= 2, "terminated {killed} sessions");
    let (code, out, err) = run.wait(PATIENCE);
    let all = format!("{out}{err}");
    assert_eq!(code, 1, "{all}");
    assert!(
        all.contains("failed: backfill batch on users after key"),
        "the step's own error: {all}"
    );
    assert!(
        all.contains("reconnecting for 3.0s failed") || all.contains("reconnecting for 3s failed"),
        "the bound: {all}"
    );
    // The connection's own last word is kept (the server's message when it
    // arrived; a reset socket discards it, so either may show).
    assert!(
        all.contains("the connection was lost (") || all.contains("connection closed"),
        "why the connection ended: {all}"
    );
    assert!(
        all.contains(&format!("cutover run {plan}")),
        "the command that resumes: {all}"
    );
    assert!(!has_ansi(&out), "no colour in headless output: {out:?}");
    assert!(err.contains("WARN"), "warnings were logged: {err}");
    assert!(!has_ansi(&err), "no colour in its warnings: {err:?}");
    server
        .client
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            cutover::db::quote_ident(&db.name)
        ))
        .await
        .unwrap();
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let once: i64 = scalar(&admin, "SELECT count(*) FROM users WHERE touches = 1").await;
    assert_eq!(once, 20_000, "every row updated exactly once");
    let status: String = scalar(&admin, "SELECT status FROM cutover.runs").await;
    assert_eq!(status, "finished");
    drop(dir);
}

/// A copy target that records every row the copy offers it (rolled back
/// with a batch that does not commit), and slows each batch.
const COPY_TARGET: &str = "
    CREATE TABLE copy (id bigint PRIMARY KEY, city text);
    CREATE TABLE offered (id bigint);
    CREATE FUNCTION record_offer() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN INSERT INTO offered VALUES (NEW.id); RETURN NEW; END $$;
    CREATE TRIGGER record_offer BEFORE INSERT ON copy
        FOR EACH ROW EXECUTE FUNCTION record_offer();
    CREATE FUNCTION slow_copy() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN PERFORM pg_sleep(0.1); RETURN NULL; END $$;
    CREATE TRIGGER slow_copy AFTER INSERT ON copy
        FOR EACH STATEMENT EXECUTE FUNCTION slow_copy();";

const COPY: &str = r#"
name = "copy users"
[throttle]
max_batch_size = 500
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "copy_rows"
from = "users"
to = "copy"
key = "id"
columns = { id = "id", city = "city" }
batch_size = 500
"#;

/// Interrupts a copy mid-way with `interrupt`, resumes it, and checks no
/// row was offered twice: the copy went on from its checkpoint.
async fn copy_resumes_from_its_checkpoint(test: &str, interrupt: Interrupt) {
    let db = seeded_db(test, 10_000).await;
    let conn = db.connect().await;
    conn.client.batch_execute(COPY_TARGET).await.unwrap();
    let (dir, plan) = write_plan(COPY);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_for("some batches", PATIENCE, progress_past(2_000));
    let expected = match interrupt {
        Interrupt::CtrlC => {
            run.signal(Signal::SIGINT);
            130
        }
        Interrupt::Abort => {
            let (code, out, err) = cutover(&db.url, &["abort", &plan]);
            assert_eq!(code, 0, "{out}{err}");
            3
        }
    };
    let (code, lines) = run.wait_exit(PATIENCE);
    assert_eq!(code, expected, "{}", lines.join("\n"));
    let copied: i64 = scalar(&conn, "SELECT count(*) FROM copy").await;
    assert!(copied > 0 && copied < 10_000, "stopped mid-copy: {copied}");
    let checkpoint: i64 = scalar(
        &conn,
        "SELECT coalesce(max(rows_done), 0) FROM cutover.steps",
    )
    .await;
    assert!(checkpoint > 0, "the checkpoint was kept: {checkpoint}");
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let (offered, distinct): (i64, i64) = {
        let r = conn
            .client
            .query_one("SELECT count(*), count(DISTINCT id) FROM offered", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(
        (offered, distinct),
        (10_000, 10_000),
        "each row was copied once: the resume went on from the checkpoint"
    );
    drop(dir);
}

enum Interrupt {
    CtrlC,
    Abort,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_rows_keeps_its_checkpoint_through_ctrl_c() {
    copy_resumes_from_its_checkpoint("more_copy_ctrl_c", Interrupt::CtrlC).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_rows_keeps_its_checkpoint_through_an_abort() {
    copy_resumes_from_its_checkpoint("more_copy_abort", Interrupt::Abort).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_ends_a_swaps_lock_retries() {
    let db = seeded_db("more_swap_abort", 500).await;
    let conn = db.connect().await;
    let holder = db.connect().await;
    // An application transaction holds the table the swap renames; with
    // this many retries the swap would wait for hours.
    holder
        .client
        .batch_execute("BEGIN; SELECT count(*) FROM users")
        .await
        .unwrap();
    let (dir, plan) = write_plan(
        r#"
name = "swap users"
[settings]
lock_timeout = "100ms"
lock_retries = 10000
[[phases]]
name = "switch"
gate = "auto"
[[phases.steps]]
kind = "swap"
renames = [{ from = "users", to = "people" }]
"#,
    );
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_events("retry", 2, PATIENCE);
    let (code, out, err) = cutover(&db.url, &["abort", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, lines) = run.wait_exit(PATIENCE);
    assert_eq!(code, 3, "{}", lines.join("\n"));
    // Still inside the application's transaction: the retries were cut
    // short, not run out.
    let n: i64 = scalar(&holder, "SELECT count(*) FROM users").await;
    assert_eq!(n, 500);
    holder.client.batch_execute("COMMIT").await.unwrap();
    let status: String = scalar(&conn, "SELECT status FROM cutover.runs").await;
    assert_eq!(status, "aborted");
    let renamed: Option<String> = scalar(&conn, "SELECT to_regclass('people')::text").await;
    assert_eq!(renamed, None, "nothing was renamed");
    drop(dir);
}

const GATED: &str = r#"
name = "add c"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN c int"
rollback = "ALTER TABLE users DROP COLUMN c"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_a_killed_driver_says_no_cutover_drives_it() {
    let db = seeded_db("more_status_killed", 100).await;
    let (dir, plan) = write_plan(GATED);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_event("gate_waiting", PATIENCE);
    let (code, out, err) = cutover(&db.url, &["status", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("waiting at the gate"), "alive first: {out}");
    run.kill9();
    let mut last = String::new();
    let end = Instant::now() + PATIENCE;
    loop {
        let (code, out, err) = cutover(&db.url, &["status", &plan, "--json"]);
        assert_eq!(code, 0, "{out}{err}");
        let v: Value = serde_json::from_str(out.trim()).unwrap_or(Value::Null);
        if v["runs"][0]["driver_alive"] == false {
            break;
        }
        last = out;
        assert!(
            Instant::now() < end,
            "status never saw the driver gone: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out, err) = cutover(&db.url, &["status", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no cutover drives it"), "{out}");
    assert!(
        !out.lines()
            .any(|l| l.contains("running") && l.contains("pid")),
        "no \"running … pid N\" for a dead driver: {out}"
    );
    assert!(out.contains(&format!("cutover run {plan}")), "{out}");
    drop((dir, last));
}

fn finished_status_output_exits_cleanly(args: &[&str], url: &str) {
    let mut child = Command::new(cutover_bin())
        .args(args)
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn status");
    let mut first = String::new();
    {
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut first).expect("first line");
        // The reader goes: as `head -1` does, the pipe closes.
    }
    let mut err = String::new();
    let end = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("status kept running after its reader went: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    use std::os::unix::process::ExitStatusExt;
    let ok = status.code() == Some(0) || status.code() == Some(141) || status.signal() == Some(13);
    assert!(ok, "{args:?}: {status:?}\n{err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(!first.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_into_a_closed_pipe_exits_without_a_panic() {
    let db = seeded_db("more_status_pipe", 100).await;
    let (dir, plan) =
        write_plan(&GATED.replace("name = \"expand\"", "name = \"expand\"\ngate = \"auto\""));
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    // `cutover status | head -1`, through a shell.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' status '{plan}' 2>\"$0\" | head -1; echo \"rc=${{PIPESTATUS[0]}}\"",
            cutover_bin()
        ))
        .arg(dir.path().join("stderr"))
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run the pipe");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    assert!(
        text.contains("rc=0") || text.contains("rc=141"),
        "{text}\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // With --watch it keeps writing: the closed pipe must end it quietly.
    finished_status_output_exits_cleanly(&["status", &plan, "--watch", "--interval", "1"], &db.url);
    finished_status_output_exits_cleanly(
        &["status", &plan, "--watch", "--json", "--interval", "1"],
        &db.url,
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_ctrl_c_exits_at_once_and_the_journal_stays_consistent() {
    let db = seeded_db("more_third_ctrl_c", 5_000).await;
    let conn = db.connect().await;
    // A batch that shrugs off the first cancel: the abort's clean-up would
    // have to wait for it.
    conn.client
        .batch_execute(
            "ALTER TABLE users ADD COLUMN touches int NOT NULL DEFAULT 0;
             CREATE FUNCTION count_touch() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN NEW.touches := OLD.touches + 1; RETURN NEW; END $$;
             CREATE TRIGGER count_touch BEFORE UPDATE ON users
                 FOR EACH ROW EXECUTE FUNCTION count_touch();
             CREATE FUNCTION stubborn() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 BEGIN PERFORM pg_sleep(600);
                 EXCEPTION WHEN query_canceled THEN PERFORM pg_sleep(600);
                 END;
                 RETURN NULL;
             END $$;
             CREATE TRIGGER stubborn AFTER UPDATE ON users
                 FOR EACH STATEMENT EXECUTE FUNCTION stubborn();",
        )
        .await
        .unwrap();
    let (dir, plan) = write_plan(&BACKFILL.replace("reconnect_timeout = \"3s\"", ""));
    let run = Captured::spawn(&db.url, &["run", &plan], &[]);
    poll_until_async("a batch sleeping", PATIENCE, async || {
        let n: i64 = conn
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = $1 AND application_name = 'cutover' AND wait_event = 'PgSleep'",
                &[&db.name],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        n > 0
    })
    .await;
    run.signal(Signal::SIGINT);
    run.wait_for_stdout("the first interrupt", "interrupt again");
    run.signal(Signal::SIGINT);
    run.wait_for_stdout("the second interrupt", "interrupt a third time");
    run.signal(Signal::SIGINT);
    let (code, out, err) = run.wait(PATIENCE);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("interrupted three times"), "{out}{err}");
    // The batch the process left behind is rolled back by the server.
    conn.client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND application_name = 'cutover' AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .await
        .unwrap();
    conn.client
        .batch_execute("DROP TRIGGER stubborn ON users")
        .await
        .unwrap();
    let (code, out, err) = cutover(&db.url, &["run", &plan, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let once: i64 = scalar(
        &conn,
        "SELECT count(*) FROM users WHERE touches = 1 AND city = 'one'",
    )
    .await;
    assert_eq!(once, 5_000, "every row updated exactly once");
    drop(dir);
}
