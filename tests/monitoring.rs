//! Watching a run from outside: the `/metrics` endpoint scraped over HTTP
//! and parsed as Prometheus text, `--events FILE` next to the headless
//! output, and `cutover status --json` (and `--watch`) against the journal.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::locks::wait_for_lock_wait;
use common::process::{Running, cutover, events};
use common::{
    Deadline, PATIENCE, TestDb, connect, poll_until_async, scalar, seeded_db,
    seeded_db_with_replica, write_plan,
};
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::Value as Json;

const LONG: Duration = PATIENCE;

/// A loopback address no one listens on right now.
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let addr = listener.local_addr().expect("local address");
    addr.to_string()
}

/// One GET of `/metrics`, parsed; `None` while the server is not up yet.
fn scrape(addr: &str) -> Option<Scrape> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(LONG)).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    Some(Scrape::parse(lines).unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{body}")))
}

/// Scrapes until `pick` finds what it looks for in one scrape.
async fn scrape_until<T>(addr: &str, what: &str, mut pick: impl FnMut(&Scrape) -> Option<T>) -> T {
    let deadline = Deadline::new(what, LONG);
    loop {
        if let Some(found) = scrape(addr).as_ref().and_then(&mut pick) {
            return found;
        }
        deadline.next().await;
    }
}

/// The first scrape that answers.
async fn first_scrape(addr: &str) -> Scrape {
    let deadline = Deadline::new("the metrics endpoint", LONG);
    loop {
        if let Some(s) = scrape(addr) {
            return s;
        }
        deadline.next().await;
    }
}

fn number(s: &Sample) -> f64 {
    match s.value {
        Value::Gauge(v) | Value::Counter(v) | Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

/// The samples of one metric.
fn samples<'a>(scrape: &'a Scrape, metric: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
    scrape.samples.iter().filter(move |s| s.metric == metric)
}

/// The value of a metric without labels that matter (the first sample).
fn value(scrape: &Scrape, metric: &str) -> Option<f64> {
    samples(scrape, metric).next().map(number)
}

/// A metric's value for one label value.
fn labelled(scrape: &Scrape, metric: &str, label: &str, is: &str) -> Option<f64> {
    samples(scrape, metric)
        .find(|s| s.labels.get(label) == Some(is))
        .map(number)
}

const ABORT: &str = r#"[abort]
replication_lag = "60s"
replication_lag_bytes = "1GB"
lock_wait = "30s"
blocked_sessions = 50
lock_timeouts = 100
rollback_rate = 1000
stale_monitor = "20s""#;

/// A backfill of `users` paced to `rate` rows a second, so it lasts long
/// enough to be watched.
fn paced_backfill(name: &str, rate: u64, extra: &str) -> String {
    format!(
        r#"
name = "{name}"
[throttle]
max_rows_per_second = {rate}
{extra}
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
name = "upper emails"
table = "users"
key = "id"
set = "email = upper(email)"
batch_size = 500
"#
    )
}

/// During a real paced backfill, `/metrics` parses as Prometheus text;
/// rows done grows from one scrape to a later one, the lag carries the
/// replica's name, and every `[abort]` criterion the plan sets has its
/// value and its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_paced_backfill() {
    let db = seeded_db_with_replica("metrics", 200_000).await;
    // At most 1,000 rows a second: 200 s at least, however fast the machine.
    let text = paced_backfill("scraped backfill", 1000, ABORT);
    let (_dir, plan) = write_plan(&text);
    let addr = free_addr();
    let mut run = Running::spawn(
        &db.url,
        &["run", &plan, "--yes", "--json", "--metrics", &addr],
    );
    run.wait_for("progress", LONG, |v| {
        v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) > 0
    });

    let first = scrape_until(&addr, "rows done above 0", |s| {
        let rows = labelled(s, "cutover_backfill_rows_done", "table", "users")?;
        (rows > 0.0).then_some(rows)
    })
    .await;
    let later = scrape_until(&addr, "rows done to grow", |s| {
        let rows = labelled(s, "cutover_backfill_rows_done", "table", "users")?;
        (rows > first).then_some(rows)
    })
    .await;
    assert!(later > first);

    let s = first_scrape(&addr).await;
    let info = samples(&s, "cutover_info").next().expect("cutover_info");
    assert_eq!(info.labels.get("plan"), Some("scraped backfill"));
    assert_eq!(info.labels.get("phase"), Some("migrate"));
    assert_eq!(info.labels.get("step"), Some("upper emails"));
    assert_eq!(
        labelled(&s, "cutover_run_state", "state", "running"),
        Some(1.0)
    );
    assert_eq!(
        labelled(&s, "cutover_run_state", "state", "finished"),
        Some(0.0)
    );
    assert_eq!(value(&s, "cutover_steps"), Some(1.0));
    let total = labelled(&s, "cutover_backfill_rows_total", "table", "users").expect("total");
    assert!(total > 0.0, "rows total {total}");
    for metric in [
        "cutover_backfill_rows_updated",
        "cutover_backfill_rows_per_second",
        "cutover_backfill_batch_size",
        "cutover_backfill_batch_seconds",
        "cutover_backfill_target_batch_seconds",
        "cutover_backfill_batches",
        "cutover_lock_timeouts_total",
        "cutover_lock_waiters",
        "cutover_lock_wait_longest_seconds",
        "cutover_sessions_blocked_behind_migration",
        "cutover_tps",
        "cutover_rollbacks_per_second",
        "cutover_monitor_sample_age_seconds",
    ] {
        assert!(value(&s, metric).is_some(), "{metric} missing");
    }

    // The pace shows as a throttle with its reason.
    let (reason, cause) = scrape_until(&addr, "the pace as a throttle reason", |s| {
        let t = samples(s, "cutover_throttled").find(|t| number(t) == 1.0)?;
        Some((
            t.labels.get("reason")?.to_string(),
            t.labels.get("cause")?.to_string(),
        ))
    })
    .await;
    assert!(reason.contains("max_rows_per_second"), "{reason}");
    assert_eq!(cause, "pace");

    // The monitor's first replication sample names the sandbox's standby.
    let lag = scrape_until(&addr, "lag of replica1", |s| {
        labelled(s, "cutover_replication_lag_seconds", "replica", "replica1")
    })
    .await;
    assert!(lag >= 0.0);
    let s = first_scrape(&addr).await;
    assert!(labelled(&s, "cutover_replication_lag_bytes", "replica", "replica1").is_some());
    assert_eq!(
        labelled(&s, "cutover_replica_gone", "replica", "replica1"),
        Some(0.0)
    );

    let parsed = cutover::plan::parse(std::path::Path::new(&plan), &text).expect("plan parses");
    let a = &parsed.abort;
    let limits = [
        (
            "replication_lag",
            a.replication_lag.map(|d| d.0.as_secs_f64()),
        ),
        (
            "replication_lag_bytes",
            a.replication_lag_bytes.map(|b| b.0 as f64),
        ),
        ("lock_wait", a.lock_wait.map(|d| d.0.as_secs_f64())),
        ("blocked_sessions", a.blocked_sessions.map(f64::from)),
        ("lock_timeouts", a.lock_timeouts.map(f64::from)),
        ("rollback_rate", a.rollback_rate),
        ("stale_monitor", Some(a.stale_monitor.0.as_secs_f64())),
    ];
    for (criterion, limit) in limits {
        let limit = limit.unwrap_or_else(|| panic!("the plan sets [abort] {criterion}"));
        assert_eq!(
            labelled(&s, "cutover_abort_limit", "criterion", criterion),
            Some(limit),
            "limit of {criterion}"
        );
        let now = labelled(&s, "cutover_abort_value", "criterion", criterion)
            .unwrap_or_else(|| panic!("no value for {criterion}"));
        assert!(now.is_finite() && now >= 0.0, "{criterion} = {now}");
    }
    assert!(run.is_running(), "the run was still going");

    // `cutover set` moves the pace and a limit; the next scrapes show them.
    assert_eq!(value(&s, "cutover_max_rows_per_second"), Some(1000.0));
    let (code, out, err) = cutover(
        &db.url,
        &["set", &plan, "max_rows_per_second=3000", "lock_wait=45s"],
    );
    assert_eq!(code, 0, "{out}{err}");
    scrape_until(&addr, "the new pace and lock_wait limit", |s| {
        let pace = value(s, "cutover_max_rows_per_second")?;
        let limit = labelled(s, "cutover_abort_limit", "criterion", "lock_wait")?;
        (pace == 3000.0 && limit == 45.0).then_some(())
    })
    .await;
}

/// A plan without `[abort]` limits exposes only the one that is always on
/// (stale_monitor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_only_the_criteria_the_plan_sets() {
    let db = seeded_db("metrics_defaults", 50_000).await;
    let (_dir, plan) = write_plan(&paced_backfill("unlimited", 2000, ""));
    let addr = free_addr();
    let mut run = Running::spawn(
        &db.url,
        &["run", &plan, "--yes", "--json", "--metrics", &addr],
    );
    run.wait_event("step_started", LONG);
    let s = first_scrape(&addr).await;
    let criteria: BTreeSet<&str> = samples(&s, "cutover_abort_limit")
        .filter_map(|x| x.labels.get("criterion"))
        .collect();
    assert_eq!(criteria, BTreeSet::from(["stale_monitor"]));
    let values: BTreeSet<&str> = samples(&s, "cutover_abort_value")
        .filter_map(|x| x.labels.get("criterion"))
        .collect();
    assert_eq!(values, criteria);
}

/// `--events FILE` receives the very JSON lines `--json` prints for each
/// event, in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_file_has_the_json_event_lines() {
    let db = seeded_db("events_file", 20_000).await;
    let (_dir, plan) = write_plan(
        r#"
name = "events out"
[throttle]
max_rows_per_second = 8000
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN note text"
rollback = "ALTER TABLE users DROP COLUMN IF EXISTS note"
[[phases]]
name = "migrate"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "note = email"
batch_size = 2000
[[phases.steps]]
kind = "verify"
sql = "SELECT count(*) FROM users WHERE note IS DISTINCT FROM email"
expect = 0
"#,
    );
    let out = tempfile::tempdir().expect("temp dir");
    let file = out.path().join("events.jsonl");
    let file_arg = file.display().to_string();
    let (code, lines) = Running::spawn(
        &db.url,
        &["run", &plan, "--yes", "--json", "--events", &file_arg],
    )
    .wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let written = std::fs::read_to_string(&file).expect("the events file");
    let in_file: Vec<&str> = written.lines().collect();
    // stdout also has progress lines (at most one a second) and notices;
    // every event line is in the file, byte for byte.
    let printed: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| {
            let v: Json = serde_json::from_str(l).unwrap_or_default();
            v["event"] != "progress" && v["event"] != "notice"
        })
        .collect();
    let file_events: Vec<&str> = in_file
        .iter()
        .copied()
        .filter(|l| {
            let v: Json = serde_json::from_str(l).unwrap_or_default();
            v["event"] != "progress"
        })
        .collect();
    assert_eq!(printed, file_events);
    let kinds: Vec<String> = events(&printed.iter().map(|l| l.to_string()).collect::<Vec<_>>())
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .collect();
    for kind in [
        "run_started",
        "gate_released",
        "step_started",
        "step_finished",
        "finished",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    // Progress lines too, shaped as the ones --json prints.
    let keys = |l: &str| -> BTreeSet<String> {
        let v: Json = serde_json::from_str(l).unwrap_or_default();
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let is_progress = |l: &&str| l.contains("\"event\":\"progress\"");
    let printed_progress: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(is_progress)
        .collect();
    let file_progress: Vec<&str> = in_file.iter().copied().filter(is_progress).collect();
    assert!(
        !file_progress.is_empty(),
        "no progress in the file:\n{written}"
    );
    assert!(!printed_progress.is_empty(), "no progress printed");
    for line in &file_progress {
        assert_eq!(keys(line), keys(printed_progress[0]), "{line}");
    }
    // Every line of the file is one JSON object with its kind and time.
    for line in &in_file {
        let v: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["event"].is_string() && v["at"].is_string(), "{line}");
    }
}

/// The journal's view of a run: its status and each step's (phase, name,
/// kind, status), in plan order.
async fn journal_view(db: &TestDb, run_id: i64) -> (String, Vec<(String, String, String, String)>) {
    let conn = db.connect().await;
    let status: String = conn
        .client
        .query_one("SELECT status FROM cutover.runs WHERE id = $1", &[&run_id])
        .await
        .expect("the run row")
        .get(0);
    let steps = conn
        .client
        .query(
            "SELECT phase_name, name, kind, status FROM cutover.steps
             WHERE run_id = $1 ORDER BY phase, step",
            &[&run_id],
        )
        .await
        .expect("the step rows")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    (status, steps)
}

/// `status --json`'s steps as (phase, name, kind, status).
fn status_steps(v: &Json) -> Vec<(String, String, String, String)> {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (f("phase"), f("name"), f("kind"), f("status"))
        })
        .collect()
}

/// `cutover status ARGS --json`, parsed.
fn status_json(db: &TestDb, args: &[&str]) -> Json {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    all.push("--json");
    let (code, out, err) = cutover(&db.url, &all);
    assert_eq!(code, 0, "status failed: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one object: {out}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Polls `status ARGS --json` until `cond` holds on the run object.
async fn status_until(
    db: &TestDb,
    args: &[&str],
    what: &str,
    cond: impl Fn(&Json) -> bool,
) -> Json {
    let deadline = Deadline::new(what, LONG);
    loop {
        let v = status_json(db, args);
        let run = if v.get("runs").is_some() {
            v["runs"][0].clone()
        } else {
            v
        };
        if cond(&run) {
            return run;
        }
        deadline.next().await;
    }
}

const GATED: &str = r#"
name = "status story"
[throttle]
max_rows_per_second = 1000
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sql"
name = "add note"
sql = "ALTER TABLE users ADD COLUMN note text"
rollback = "ALTER TABLE users DROP COLUMN IF EXISTS note"
[[phases.steps]]
kind = "gate"
name = "deploy writers"
message = "Deploy the app that writes note, then advance."
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
name = "fill note"
table = "users"
key = "id"
set = "note = email"
batch_size = 500
"#;

/// `status --json` tells the journal's truth at a gate (the message and
/// the command that releases it), while a backfill runs (progress with %),
/// and after the driver is killed with SIGKILL (no driver, how to resume);
/// `--run N` gives the same run without a plan file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_matches_the_journal() {
    // Paced to 1,000 rows a second: the backfill lasts 150 s at least.
    let db = seeded_db("status_json", 150_000).await;
    let (_dir, plan) = write_plan(GATED);
    let addr = free_addr();
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json", "--metrics", &addr]);
    run.wait_event("gate_waiting", LONG);
    let gate = scrape_until(&addr, "the gate in /metrics", |s| {
        (labelled(s, "cutover_run_state", "state", "waiting_gate")? == 1.0).then_some(())
    });
    gate.await;

    let at_gate = status_until(&db, &[&plan], "the gate's message in status", |r| {
        r["doing"]
            .as_str()
            .is_some_and(|d| d.contains("Deploy the app that writes note"))
    })
    .await;
    let run_id = at_gate["run_id"].as_i64().expect("run id");
    let (journal_status, journal_steps) = journal_view(&db, run_id).await;
    assert_eq!(at_gate["status"], journal_status.as_str());
    assert_eq!(journal_status, "waiting");
    assert_eq!(status_steps(&at_gate), journal_steps);
    let names: Vec<&str> = journal_steps.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(names, ["add note", "deploy writers", "fill note"]);
    assert_eq!(at_gate["driver_alive"], true);
    assert_eq!(
        at_gate["gate_message"],
        "Deploy the app that writes note, then advance."
    );
    assert_eq!(at_gate["steps_done"], 1);
    let next = at_gate["next"].as_str().unwrap_or_default();
    assert!(next.contains(&format!("cutover advance {plan}")), "{next}");

    // The same run by id, without the plan file.
    let by_id = status_json(&db, &["--run", &run_id.to_string()]);
    assert_eq!(by_id["run_id"], run_id);
    assert_eq!(status_steps(&by_id), journal_steps);

    let (code, _, err) = cutover(&db.url, &["advance", &plan]);
    assert_eq!(code, 0, "advance: {err}");
    run.wait_for("progress", LONG, |v| {
        v["event"] == "progress" && v["rows_done"].as_i64().unwrap_or(0) > 0
    });
    let id_arg = run_id.to_string();
    let running = status_until(&db, &["--run", &id_arg], "progress with %", |r| {
        r["progress"]["percent"].as_f64().is_some_and(|p| p > 0.0)
    })
    .await;
    let conn = db.connect().await;
    let walked: i64 = scalar(
        &conn,
        "SELECT rows_done FROM cutover.steps WHERE name = 'fill note'",
    )
    .await;
    let (journal_status, journal_steps) = journal_view(&db, run_id).await;
    assert_eq!(running["status"], journal_status.as_str());
    assert_eq!(journal_status, "running");
    assert_eq!(status_steps(&running), journal_steps);
    assert_eq!(running["driver_alive"], true);
    let p = &running["progress"];
    assert_eq!(p["table"], "users");
    let done = p["rows_done"].as_i64().expect("rows done");
    let total = p["rows_total"].as_i64().expect("rows total");
    let percent = p["percent"].as_f64().expect("percent");
    assert!(
        done > 0 && done <= walked,
        "snapshot {done}, journal {walked}"
    );
    assert!(
        (percent - (done as f64 / total as f64 * 100.0).min(100.0)).abs() < 1e-6,
        "{p}"
    );
    let doing = running["doing"].as_str().unwrap_or_default();
    assert!(!doing.is_empty(), "{running}");
    // The pace, in words, as the reason batches wait.
    let paced = status_until(&db, &["--run", &id_arg], "the pace as throttle", |r| {
        r["throttle"].is_string()
    })
    .await;
    let throttle = paced["throttle"].as_str().unwrap_or_default();
    assert!(throttle.contains("max_rows_per_second"), "{paced}");
    assert_eq!(paced["doing"], throttle);

    // Paused from another terminal: status says so, and how to go on.
    let (code, out, err) = cutover(&db.url, &["pause", &plan]);
    assert_eq!(code, 0, "{out}{err}");
    run.wait_event("paused", LONG);
    let paused = status_until(&db, &["--run", &id_arg], "paused in status", |r| {
        r["status"] == "paused"
    })
    .await;
    let doing = paused["doing"].as_str().unwrap_or_default();
    assert!(doing.starts_with("paused"), "{paused}");
    let next = paused["next"].as_str().unwrap_or_default();
    assert!(next.contains(&format!("cutover resume {plan}")), "{next}");
    // The text form says the same in words.
    let (code, text, err) = cutover(&db.url, &["status", &plan]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains(&format!("run #{run_id} \"status story\": paused")),
        "{text}"
    );
    assert!(text.contains("fill note (backfill)"), "{text}");
    assert!(text.contains("next:  `cutover resume"), "{text}");

    run.kill9();
    let dead = status_until(&db, &["--run", &id_arg], "the driver to be gone", |r| {
        r["driver_alive"] == false
    })
    .await;
    let (journal_status, journal_steps) = journal_view(&db, run_id).await;
    assert_eq!(dead["status"], journal_status.as_str());
    assert_eq!(status_steps(&dead), journal_steps);
    assert!(dead["progress"].is_null(), "no live numbers: {dead}");
    assert!(dead["gate_message"].is_null(), "{dead}");
    let doing = dead["doing"].as_str().unwrap_or_default();
    assert!(doing.contains("no cutover drives it"), "{doing}");
    let next = dead["next"].as_str().unwrap_or_default();
    assert!(next.contains(&format!("cutover run {plan}")), "{next}");
}

/// `status --watch --json` prints one whole object per line, again and
/// again, each about the run asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_json_prints_one_object_per_line() {
    let db = seeded_db("status_watch", 1_000).await;
    let (_dir, plan) = write_plan(GATED);
    let mut run = Running::spawn(&db.url, &["run", &plan, "--json"]);
    run.wait_event("gate_waiting", LONG);
    let listed = status_json(&db, &[&plan]);
    let run_id = listed["runs"][0]["run_id"].as_i64().expect("run id");
    let id_arg = run_id.to_string();
    let mut watch = Running::spawn(
        &db.url,
        &[
            "status",
            "--run",
            &id_arg,
            "--watch",
            "--json",
            "--interval",
            "1",
        ],
    );
    let mut objects = 0;
    watch.wait_for("three objects", LONG, |v| {
        assert_eq!(v["run_id"], run_id, "{v}");
        assert!(v["steps"].is_array(), "{v}");
        objects += 1;
        objects >= 3
    });
    assert!(
        watch
            .seen
            .iter()
            .all(|l| serde_json::from_str::<Json>(l).is_ok()),
        "every line is one JSON object: {:?}",
        watch.seen
    );
    assert!(watch.is_running(), "--watch keeps going");
    drop(watch);
    // A reader that goes away (`| head -1`) ends --watch.
    let mut child = std::process::Command::new(common::cutover_bin())
        .args([
            "status",
            "--run",
            &id_arg,
            "--watch",
            "--json",
            "--interval",
            "1",
        ])
        .env("DATABASE_URL", &db.url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn status --watch");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("a first byte");
    drop(stdout);
    let deadline = Deadline::new("--watch to end with its reader", LONG);
    while child.try_wait().expect("wait").is_none() {
        deadline.next().await;
    }
    let conn = db.connect().await;
    poll_until_async("the run to still wait at its gate", LONG, async || {
        scalar::<String>(&conn, "SELECT status FROM cutover.runs").await == "waiting"
    })
    .await;
}

/// A run id that is not there is an error that names it, whether or not
/// cutover ever ran in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_an_unknown_run_says_so() {
    let db = seeded_db("status_unknown", 100).await;
    let (code, out, err) = cutover(&db.url, &["status", "--run", "41", "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no run #41"), "{err}");
    assert!(out.is_empty(), "{out}");
    let (_dir, plan) = write_plan(&paced_backfill("tiny", 100_000, ""));
    let (code, _, err) = cutover(&db.url, &["run", &plan, "--yes", "--json"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cutover(&db.url, &["status", "--run", "41", "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no run #41"), "{err}");
    let finished = status_json(&db, &[&plan]);
    assert_eq!(finished["runs"][0]["status"], "finished");
    assert_eq!(finished["runs"][0]["driver_alive"], false);
}

/// A DDL step queued behind an open transaction, with readers queued behind
/// it: `/metrics` counts the waiters and the sessions behind the migration,
/// and the lock_wait and blocked_sessions criteria carry those values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_queue_behind_a_waiting_ddl() {
    let db = seeded_db("metrics_queue", 1_000).await;
    let holder = db.connect().await;
    holder
        .client
        .batch_execute("BEGIN; SELECT count(*) FROM users;")
        .await
        .expect("hold a lock on users");
    let (_dir, plan) = write_plan(
        r#"
name = "queued ddl"
[settings]
lock_timeout = "10min"
lock_retries = 1
[abort]
lock_wait = "10min"
blocked_sessions = 50
[[phases]]
name = "expand"
gate = "auto"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN queued int"
rollback = "ALTER TABLE users DROP COLUMN queued"
"#,
    );
    let addr = free_addr();
    let mut run = Running::spawn(
        &db.url,
        &["run", &plan, "--yes", "--json", "--metrics", &addr],
    );
    run.wait_event("step_started", LONG);
    let watcher = db.connect().await;
    wait_for_lock_wait(
        &watcher,
        "a.query LIKE 'ALTER TABLE users ADD COLUMN queued%'",
    )
    .await;
    let mut readers = Vec::new();
    for _ in 0..2 {
        let url = db.url.clone();
        readers.push(tokio::spawn(async move {
            let c = connect(&url).await;
            c.client
                .query_one("SELECT count(*) FROM users", &[])
                .await
                .is_ok()
        }));
    }
    // A wait's start time shows a moment after the wait begins (until then
    // it counts as 0 s), so wait for a scrape where both have moved.
    let (waiters, longest, blocked, waited) =
        scrape_until(&addr, "two sessions waiting behind the migration", |s| {
            let behind = value(s, "cutover_sessions_blocked_behind_migration")?;
            let waited = labelled(s, "cutover_abort_value", "criterion", "lock_wait")?;
            (behind >= 2.0 && waited > 0.0).then(|| {
                (
                    value(s, "cutover_lock_waiters"),
                    value(s, "cutover_lock_wait_longest_seconds"),
                    labelled(s, "cutover_abort_value", "criterion", "blocked_sessions"),
                    waited,
                )
            })
        })
        .await;
    // Our ALTER and the two readers wait.
    assert!(waiters.is_some_and(|n| n >= 3.0), "{waiters:?}");
    assert!(
        longest.is_some_and(|w| w >= waited),
        "{longest:?} < {waited}"
    );
    assert!(blocked.is_some_and(|b| b >= 2.0), "{blocked:?}");
    holder.client.batch_execute("COMMIT").await.expect("commit");
    let (code, lines) = run.wait_exit(LONG);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    for r in readers {
        assert!(r.await.expect("reader task"), "the reader's query failed");
    }
}

/// A cockpit in a tmux session of its own, killed with the test.
struct Cockpit {
    socket: String,
}

impl Cockpit {
    fn start(command: &str, name: &str) -> Cockpit {
        let socket = format!("cutover-monitoring-{}-{name}", std::process::id());
        let ok = std::process::Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-x", "120", "-y", "40"])
            .arg(command)
            .status()
            .expect("run tmux")
            .success();
        assert!(ok, "tmux new-session failed (is tmux installed?)");
        Cockpit { socket }
    }
}

impl Drop for Cockpit {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The lines of the events file whose kind is `event`, once there is one.
async fn wait_in_file(path: &std::path::Path, event: &str) -> Vec<Json> {
    let deadline = Deadline::new(format!("{event} in {}", path.display()), LONG);
    loop {
        let found: Vec<Json> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Json>(l).ok())
            .filter(|v| v["event"] == event)
            .collect();
        if !found.is_empty() {
            return found;
        }
        deadline.next().await;
    }
}

/// A run in the cockpit can be followed from outside: the events file gets
/// its events and progress, `/metrics` its state and rows, while the gate
/// is released from another terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cockpit_run_is_followed_through_its_taps() {
    let db = seeded_db("cockpit_taps", 50_000).await;
    let (dir, plan) = write_plan(
        r#"
name = "followed cockpit"
[throttle]
max_rows_per_second = 1000
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN seen text"
rollback = "ALTER TABLE users DROP COLUMN IF EXISTS seen"
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "seen = email"
batch_size = 500
"#,
    );
    let file = dir.path().join("events.jsonl");
    let addr = free_addr();
    let command = format!(
        "env DATABASE_URL='{}' CUTOVER_LOG_FILE='{}' {} run {plan} --metrics {addr} --events {}; sleep 600",
        db.url,
        dir.path().join("cockpit.log").display(),
        common::cutover_bin(),
        file.display()
    );
    let _cockpit = Cockpit::start(&command, "taps");
    let gate = wait_in_file(&file, "gate_waiting").await;
    assert_eq!(gate[0]["name"], "expand");
    scrape_until(&addr, "the gate in /metrics", |s| {
        (labelled(s, "cutover_run_state", "state", "waiting_gate")? == 1.0).then_some(())
    })
    .await;
    let (code, _, err) = cutover(&db.url, &["advance", &plan]);
    assert_eq!(code, 0, "advance: {err}");
    let progress = wait_in_file(&file, "progress").await;
    assert_eq!(progress[0]["table"], "users");
    scrape_until(&addr, "rows in /metrics", |s| {
        (labelled(s, "cutover_backfill_rows_done", "table", "users")? > 0.0).then_some(())
    })
    .await;
    // The pace kept it going while we looked; lifted, the run ends.
    let (code, out, err) = cutover(&db.url, &["set", &plan, "max_rows_per_second=off"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_in_file(&file, "finished").await;
    let released = wait_in_file(&file, "gate_released").await;
    assert!(
        released[0]["by"].as_str().is_some_and(|b| !b.is_empty()),
        "{released:?}"
    );
    scrape_until(&addr, "finished in /metrics", |s| {
        (labelled(s, "cutover_run_state", "state", "finished")? == 1.0).then_some(())
    })
    .await;
}
