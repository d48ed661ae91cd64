//! The TPC-B benchmark: what a whole plan costs an OLTP application, with
//! and without `[settings] max_stall`, against the load alone.
//!
//!     cargo bench --bench tpcb                      # scale 10 (1M accounts)
//!     cargo bench --bench tpcb -- --scale 1 --baseline 10 --order ab
//!
//! On the sandbox (primary + streaming replica, fsync on): `pgbench -i -s N`,
//! then pgbench's builtin TPC-B at `-c 4 -j 2 -R 200`, every latency logged:
//!   load  the load alone, `--baseline` seconds (default 30);
//!   a     the same load while `cutover run` takes pgbench_accounts through
//!         assets/bench/tpcb_plan.toml (add column, concurrent index,
//!         backfill, NOT NULL, validated CHECK, drop a column at contract);
//!   b     the same plan with `max_stall = "150ms"`;
//!   c     variant b with the lines of `BENCH_TPCB_THROTTLE` added to its
//!         `[throttle]` (to try a setting: `max_rows_per_second = 80000`).
//! Each run prints the application's p99 step by step and what its
//! sessions and cutover's waited on.
//! The plan runs are alternated `--order abba` (the default) so that
//! neither variant always runs later: the order effect benches/README.md
//! describes. pgbench_accounts is rebuilt before each run.
//!
//! Prints a table and writes target/bench/tpcb-s<scale>.json.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use cutover::db::{Conn, Source, Target};
use cutover::monitor::probe::percentile;
use cutover::sandbox::{Sandbox, SandboxOptions};
use serde::Serialize;

#[path = "common/settle.rs"]
mod settle;
#[path = "common/waits.rs"]
mod waits;
use settle::settle;
use waits::{Waits, spawn_wait_sampler};

/// The stall budget of variant b.
const MAX_STALL: &str = "150ms";

/// The longest a plan may run before the benchmark gives up on it.
const PLAN_LIMIT: Duration = Duration::from_secs(20 * 60);

#[derive(Debug, Serialize, Default)]
struct Row {
    run: String,
    plan_s: f64,
    app_transactions: usize,
    failed_transactions: u64,
    app_p50_ms: f64,
    app_p99_ms: f64,
    app_max_ms: f64,
    p99_vs_load_alone: f64,
    /// The plan's steps, one by one.
    steps: Vec<StepRow>,
    /// What the application's sessions waited on.
    app_waits: Waits,
    /// What cutover's sessions waited on.
    cutover_waits: Waits,
}

/// What one stretch of load measured.
struct Load {
    /// Each transaction's latency, with when it completed.
    latencies: Vec<(SystemTime, Duration)>,
    failed: u64,
}

impl Load {
    fn all(&self) -> Vec<Duration> {
        self.latencies.iter().map(|(_, l)| *l).collect()
    }
}

/// One step of a plan run: when it ran, and what the load saw meanwhile.
#[derive(Debug, Serialize)]
struct StepRow {
    step: String,
    step_s: f64,
    app_transactions: usize,
    app_p99_ms: f64,
    app_max_ms: f64,
}

#[tokio::main]
async fn main() {
    let scale: u32 = flag("--scale").and_then(|v| v.parse().ok()).unwrap_or(10);
    let baseline = Duration::from_secs(
        flag("--baseline")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30),
    );
    let order: Vec<char> = flag("--order")
        .unwrap_or_else(|| "abba".into())
        .chars()
        .filter(|c| matches!(c, 'a' | 'b' | 'c'))
        .collect();
    let started = Instant::now();
    let sandbox = tokio::task::spawn_blocking(|| {
        Sandbox::start(&SandboxOptions {
            replica: true,
            durable: true,
            tls: false,
            target: false,
        })
    })
    .await
    .expect("task")
    .expect("sandbox");
    let url = sandbox.primary_url();
    let target = Target::parse(&url, Source::Flag).expect("url");
    let conn = Conn::connect(&target).await.expect("connect");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tpcb-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let plan_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/bench/tpcb_plan.toml"
    ))
    .expect("assets/bench/tpcb_plan.toml");
    println!(
        "TPC-B benchmark: scale {scale}, primary + streaming replica, pgbench -c 4 -j 2 -R 200, order {}",
        order.iter().collect::<String>()
    );

    let mut rows = Vec::new();
    // Recycled WAL segments for every run, as a server in steady state has
    // (a run writes about 350 MB of WAL at scale 10).
    settle::warm_wal(&conn, (u64::from(scale) * 100).clamp(1024, 4096)).await;
    init(&sandbox, &conn, scale).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(&sandbox, dir.join("00-load"), stop.clone());
    tokio::time::sleep(baseline).await;
    stop.store(true, Ordering::Relaxed);
    rows.push(row("load alone", None, &load.await.expect("load task")));
    for (i, variant) in order.iter().enumerate() {
        init(&sandbox, &conn, scale).await;
        let mut text = plan_text.replace(
            "name = \"bench tpcb accounts\"",
            &format!("name = \"bench tpcb {variant} {i}\""),
        );
        let label = match variant {
            'b' => {
                text.push_str(&format!("\n[settings]\nmax_stall = \"{MAX_STALL}\"\n"));
                format!("b plan, max_stall {MAX_STALL}")
            }
            'c' => {
                // An experiment: variant b with more `[throttle]` keys.
                let extra = std::env::var("BENCH_TPCB_THROTTLE").unwrap_or_default();
                text = text.replace("[throttle]\n", &format!("[throttle]\n{extra}\n"));
                text.push_str(&format!("\n[settings]\nmax_stall = \"{MAX_STALL}\"\n"));
                format!("c b + {}", extra.replace('\n', ", "))
            }
            _ => "a plan, no max_stall".to_string(),
        };
        let plan = dir.join(format!("plan-{i}-{variant}.toml"));
        std::fs::write(&plan, text).expect("plan");
        let stop = Arc::new(AtomicBool::new(false));
        let load = spawn_load(
            &sandbox,
            dir.join(format!("{:02}-{variant}", i + 1)),
            stop.clone(),
        );
        let waits = spawn_wait_sampler(target.clone(), stop.clone());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let log = dir.join(format!("cutover-{i}-{variant}.log"));
        let events = dir.join(format!("events-{i}-{variant}.jsonl"));
        let (url, plan2, events2) = (url.clone(), plan.clone(), events.clone());
        let took = tokio::task::spawn_blocking(move || run_plan(&url, &plan2, &log, &events2))
            .await
            .expect("cutover task");
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        let load = load.await.expect("load task");
        let mut r = row(&label, Some(took), &load);
        r.steps = steps(&events, &load);
        (r.app_waits, r.cutover_waits) = waits.await.expect("wait task");
        rows.push(r);
        eprintln!("  done: {label} in {:.1}s", took.as_secs_f64());
    }
    let base_p99 = rows[0].app_p99_ms;
    for r in &mut rows {
        r.p99_vs_load_alone = r.app_p99_ms / base_p99;
    }
    print_table(&rows);
    let out = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out).ok();
    let file = out.join(format!("tpcb-s{scale}.json"));
    std::fs::write(&file, serde_json::to_string_pretty(&rows).expect("json")).expect("write json");
    println!(
        "\nwritten to {}; cutover's progress lines in {}; took {:.0}s",
        file.display(),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    sandbox.stop();
}

/// The value after `name` on the command line.
fn flag(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// A row of the table from one stretch of load.
fn row(run: &str, plan: Option<Duration>, load: &Load) -> Row {
    let all = load.all();
    Row {
        run: run.to_string(),
        plan_s: plan.map_or(0.0, |d| d.as_secs_f64()),
        app_transactions: all.len(),
        failed_transactions: load.failed,
        app_p50_ms: ms(percentile(&all, 0.50)),
        app_p99_ms: ms(percentile(&all, 0.99)),
        app_max_ms: ms(all.iter().copied().max().unwrap_or_default()),
        ..Row::default()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The plan's steps from its `--events` file, each with the latencies of
/// the transactions that completed while it ran.
fn steps(events: &Path, load: &Load) -> Vec<StepRow> {
    let text = std::fs::read_to_string(events).unwrap_or_default();
    let mut started: Option<(String, SystemTime)> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let at = v["at"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339(t).ok());
        let name = || {
            format!(
                "{} {}",
                v["kind"].as_str().unwrap_or(""),
                v["name"].as_str().unwrap_or("")
            )
        };
        match (v["event"].as_str(), at) {
            (Some("step_started"), Some(at)) => started = Some((name(), at)),
            (Some("step_finished"), Some(end)) => {
                let Some((step, begin)) = started.take() else {
                    continue;
                };
                let within: Vec<Duration> = load
                    .latencies
                    .iter()
                    .filter(|(t, _)| *t >= begin && *t <= end)
                    .map(|(_, l)| *l)
                    .collect();
                out.push(StepRow {
                    step,
                    step_s: end.duration_since(begin).unwrap_or_default().as_secs_f64(),
                    app_transactions: within.len(),
                    app_p99_ms: ms(percentile(&within, 0.99)),
                    app_max_ms: ms(within.iter().copied().max().unwrap_or_default()),
                });
            }
            _ => {}
        }
    }
    out
}

/// A fresh pgbench database of `scale` (no cutover journal), checkpointed,
/// the replica caught up.
async fn init(sandbox: &Sandbox, conn: &Conn, scale: u32) {
    let c = &conn.client;
    let _ = c
        .batch_execute("DROP SCHEMA IF EXISTS cutover CASCADE")
        .await;
    let out = Command::new(sandbox.bin.join("pgbench"))
        .args(["-i", "-q", "-s", &scale.to_string()])
        .args(["-h", "127.0.0.1", "-p", &sandbox.primary.port.to_string()])
        .args(["-U", "postgres", "postgres"])
        .output()
        .expect("pgbench -i");
    assert!(
        out.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.batch_execute("CHECKPOINT").await.expect("checkpoint");
    loop {
        let behind: i64 = c
            .query_one(
                "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint
                 FROM pg_stat_replication",
                &[],
            )
            .await
            .expect("lag")
            .get(0);
        if behind < 1_000_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settle(conn, sandbox.replica_url()).await;
}

/// Runs the plan headless to its end; returns how long it took.
fn run_plan(url: &str, plan: &Path, log: &Path, events: &Path) -> Duration {
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["run", "--yes", "--headless", "--events"])
        .arg(events)
        .arg(plan)
        .env("DATABASE_URL", url)
        .stdout(std::fs::File::create(log).expect("cutover log"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn cutover");
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(
                status.success(),
                "cutover failed on {}; its lines are in {}",
                plan.display(),
                log.display()
            );
            return t0.elapsed();
        }
        if t0.elapsed() > PLAN_LIMIT {
            let _ = child.kill();
            panic!(
                "{} did not finish within {} s; its lines are in {}",
                plan.display(),
                PLAN_LIMIT.as_secs(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// pgbench's builtin TPC-B in back-to-back 2 s chunks until `stop` (each
/// chunk's per-transaction log is complete); returns every latency and the
/// failed transactions (pgbench's count, plus one per aborted client).
fn spawn_load(
    sandbox: &Sandbox,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Load> {
    let pgbench = sandbox.bin.join("pgbench");
    let port = sandbox.primary.port.to_string();
    std::fs::create_dir_all(&dir).expect("log dir");
    tokio::task::spawn_blocking(move || {
        let mut failed = 0;
        let mut chunk = 0;
        while !stop.load(Ordering::Relaxed) {
            chunk += 1;
            let out = Command::new(&pgbench)
                .args(["-n", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
                .args([
                    "-b",
                    "tpcb-like",
                    "-R",
                    "200",
                    "-c",
                    "4",
                    "-j",
                    "2",
                    "-T",
                    "2",
                    "-l",
                ])
                .arg(format!("--log-prefix={}/c{chunk}", dir.display()))
                .arg("postgres")
                .current_dir(&dir)
                .output()
                .expect("pgbench");
            let text = String::from_utf8_lossy(&out.stdout);
            let errors = String::from_utf8_lossy(&out.stderr);
            failed += failures(&text, &errors);
        }
        let mut latencies = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("logs").flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.lines() {
                // client_id transaction_no time_us script_no epoch epoch_us [lag]:
                // the time of a transaction that did not complete is a word
                // ("failed"), counted in the summary instead; epoch and
                // epoch_us say when it completed.
                let f: Vec<&str> = line.split_whitespace().collect();
                let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
                if let (Some(us), Some(s), Some(sub)) = (num(2), num(4), num(5)) {
                    let done = SystemTime::UNIX_EPOCH
                        + Duration::from_secs(s)
                        + Duration::from_micros(sub);
                    latencies.push((done, Duration::from_micros(us)));
                }
            }
        }
        Load { latencies, failed }
    })
}

/// Failed transactions in one pgbench run's output: its summary's count,
/// and one for each client that aborted (an error pgbench does not retry).
fn failures(stdout: &str, stderr: &str) -> u64 {
    let counted: u64 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("number of failed transactions: "))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    let aborted = stderr
        .lines()
        .filter(|l| l.contains("aborted in command"))
        .count() as u64;
    counted + aborted
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<28} {:>8} {:>8} {:>7} {:>8} {:>8} {:>9} {:>6}",
        "run", "plan s", "txns", "failed", "p50 ms", "p99 ms", "max ms", "p99×"
    );
    for r in rows {
        println!(
            "{:<28} {:>8.1} {:>8} {:>7} {:>8.2} {:>8.2} {:>9.1} {:>6.2}",
            r.run,
            r.plan_s,
            r.app_transactions,
            r.failed_transactions,
            r.app_p50_ms,
            r.app_p99_ms,
            r.app_max_ms,
            r.p99_vs_load_alone
        );
    }
    for r in rows.iter().filter(|r| !r.steps.is_empty()) {
        println!("\n{}, step by step:", r.run);
        for s in &r.steps {
            println!(
                "  {:<44} {:>6.1}s {:>6} txns  p99 {:>7.2} ms  max {:>7.1} ms",
                s.step, s.step_s, s.app_transactions, s.app_p99_ms, s.app_max_ms
            );
        }
        println!("  waits: app {}", waits::show(&r.app_waits));
        println!("         cutover {}", waits::show(&r.cutover_waits));
    }
    let mean = |prefix: char| {
        let d: Vec<f64> = rows
            .iter()
            .filter(|r| r.run.starts_with(prefix))
            .map(|r| r.plan_s)
            .collect();
        (!d.is_empty()).then(|| d.iter().sum::<f64>() / d.len() as f64)
    };
    if let (Some(a), Some(b)) = (mean('a'), mean('b')) {
        println!(
            "\nplan duration with max_stall ÷ without (means of the runs): {:.2} ({b:.1}s ÷ {a:.1}s)",
            b / a
        );
    }
}
