//! The backfill benchmark: how fast each strategy moves rows and how much
//! the application feels it, side by side, on the sandbox (primary +
//! streaming replica, fsync on), under the same pgbench point load.
//!
//!     cargo bench --bench backfill                 # 1M rows
//!     cargo bench --bench backfill -- --rows 4000000
//!
//! Strategies, each on an identical fresh `users` table:
//!   1. load only (baseline latency)
//!   2. one unbatched `UPDATE users SET full_name = name`
//!   3. the articles' loop: keyset batches of 1,000 with a 50 ms sleep
//!   4. cutover's backfill, default settings
//!   5. cutover's backfill, gentle mode (probe_latency ≈ 3× idle probe p95)
//!   6. cutover's backfill with a sync trigger on the table
//!   7. gentle mode with `vacuum_behind = false` (what vacuum behind
//!      saves, and what it costs)
//!   8. cutover's backfill at a fixed `max_rows_per_second`: a quarter of
//!      strategy 2's rate, gentle mode's speed target (what that rate
//!      costs the application, whatever the controller does)
//!   9. the same with `vacuum_behind = false`
//!  10. (`a`) cutover's backfill, default settings, `workers = 2`
//!  11. (`b`) the same with `workers = 4`
//!
//! Prints a table and writes target/bench/backfill-<rows>.json.
//!
//! For experiments: `--only 2,5` runs just those strategies (and the
//! baseline), strategies 4–9, a and b in the order given, repeats included
//! (`--only 2,8,9,9,8`, `--only 2,4,b,b,4`); `BENCH_PRIMARY_SETTINGS` / `BENCH_REPLICA_SETTINGS` =
//! `name=value,…` are set with ALTER SYSTEM on that server first.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cutover::db::{Conn, Source, Target};
use cutover::monitor::probe::percentile;
use cutover::sandbox::{Sandbox, SandboxOptions, seed};
use serde::Serialize;

#[path = "common/settle.rs"]
mod settle;
#[path = "common/waits.rs"]
mod waits;
use settle::settle;
use waits::spawn_wait_sampler;

/// How long the load runs alone. This machine's disk stalls a commit for
/// 30–60 ms every 5–10 s even with nothing else running, so a short
/// baseline's p99 depends on how many stalls it happens to catch (5–29 ms
/// over 10 s); 30 s catches several.
const BASELINE: Duration = Duration::from_secs(30);

/// The longest a cutover strategy may run before the benchmark stops it.
const STRATEGY_LIMIT: Duration = Duration::from_secs(15 * 60);

const LOAD_SCRIPT: &str = "\\set id random(1, :rows)
BEGIN;
SELECT name FROM users WHERE id = :id;
UPDATE users SET age = age WHERE id = :id;
END;
";

#[derive(Debug, Serialize, Default)]
struct Row {
    strategy: String,
    wall_s: f64,
    rows_per_s: f64,
    speed_vs_unbatched: f64,
    app_p50_ms: f64,
    app_p99_ms: f64,
    app_max_ms: f64,
    p99_vs_baseline: f64,
    max_replay_lag_bytes: i64,
    max_replay_lag_s: f64,
    wal_bytes: i64,
    table_bytes_after: i64,
    cutover_peak_rss_mb: Option<f64>,
    app_transactions: usize,
    checkpoints: i64,
    buffers_written_by_backends: i64,
    /// What the application's backends were doing, sampled every 10 ms
    /// while active: wait event (or "CPU") and its share of the samples.
    app_waits: Vec<(String, f64)>,
    /// The same for cutover's own sessions.
    cutover_waits: Vec<(String, f64)>,
}

struct Bench {
    sandbox: Sandbox,
    target: Target,
    conn: Conn,
    rows: i64,
    dir: PathBuf,
    /// Strategies measured so far: each gets its own pgbench log directory,
    /// so a strategy run twice (`--only 2,8,9,9,8`) reads only its own.
    measured: AtomicUsize,
}

#[tokio::main]
async fn main() {
    let rows: i64 = flag("--rows")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // `--only 2,5`: run just these strategies (the baseline always runs:
    // gentle mode's setting and every p99× come from it).
    let only: Option<Vec<char>> =
        flag("--only").map(|v| v.chars().filter(char::is_ascii_alphanumeric).collect());
    let wanted = |label: &str| {
        only.as_ref()
            .is_none_or(|o| label.chars().next().is_some_and(|c| o.contains(&c)))
    };
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
    let target = Target::parse(&sandbox.primary_url(), Source::Flag).expect("url");
    let conn = Conn::connect(&target).await.expect("connect");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("backfill-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(
        dir.join("load.sql"),
        LOAD_SCRIPT.replace(":rows", &rows.to_string()),
    )
    .expect("script");
    for (var, url) in [
        ("BENCH_PRIMARY_SETTINGS", Some(sandbox.primary_url())),
        ("BENCH_REPLICA_SETTINGS", sandbox.replica_url()),
    ] {
        if let (Ok(list), Some(url)) = (std::env::var(var), url) {
            let t = Target::parse(&url, Source::Flag).expect("url");
            let c = Conn::connect(&t).await.expect("connect");
            for kv in list.split(',').filter(|s| !s.is_empty()) {
                let (k, v) = kv.split_once('=').expect("name=value");
                c.client
                    .batch_execute(&format!("ALTER SYSTEM SET {k} = '{v}'"))
                    .await
                    .expect("alter system");
                println!("{var}: {k} = {v}");
            }
            c.client
                .batch_execute("SELECT pg_reload_conf()")
                .await
                .expect("reload");
        }
    }
    let b = Bench {
        sandbox,
        target,
        conn,
        rows,
        dir,
        measured: AtomicUsize::new(0),
    };
    println!(
        "backfill benchmark: {rows} rows, primary + streaming replica, pgbench -R 300 -c 4 -j 2"
    );

    let mut results: Vec<Row> = Vec::new();
    // Recycled WAL segments for every strategy, as a server in steady
    // state has: a strategy's WAL, about 440 MB a million rows, twice over.
    settle::warm_wal(&b.conn, (rows as u64 / 1_000_000).clamp(1, 4) * 1024).await;
    // 1. Baseline: load only.
    b.fresh_table(false).await;
    // Meanwhile, the canary's point read, as cutover's probe does it.
    let probe = std::sync::Mutex::new(Vec::new());
    let conn = &b.conn;
    let (base, _) = b
        .measure("1 load only (baseline)", async {
            let t = Instant::now();
            while t.elapsed() < BASELINE {
                let id = (t.elapsed().as_micros() as i64 % b.rows) + 1;
                let q = Instant::now();
                // What cutover's probe does: a point read and a committed
                // heartbeat write.
                conn.client
                    .execute(
                        "WITH r AS (SELECT 1 FROM users WHERE id = $1::text::bigint)
                         INSERT INTO cutover.heartbeat (pid, beat)
                         SELECT pg_backend_pid(), now() FROM (SELECT count(*) FROM r) c
                         ON CONFLICT (pid) DO UPDATE SET beat = excluded.beat",
                        &[&id.to_string()],
                    )
                    .await
                    .expect("probe");
                probe.lock().expect("probe").push(q.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        })
        .await;
    let probe_p95 = percentile(&probe.lock().expect("probe"), 0.95);
    results.push(base);
    // 2. One unbatched UPDATE.
    const UNBATCHED: &str = "2 unbatched UPDATE";
    if wanted(UNBATCHED) {
        b.fresh_table(false).await;
        let (r, _) = b
            .measure(UNBATCHED, async {
                conn.client
                    .batch_execute("UPDATE users SET full_name = name")
                    .await
                    .expect("update");
                None
            })
            .await;
        results.push(r);
    }
    // 3. The articles' loop.
    const ARTICLES: &str = "3 1,000-row batches + 50 ms sleep";
    if wanted(ARTICLES) {
        b.fresh_table(false).await;
        let (r, _) = b
            .measure(ARTICLES, async {
            let mut last: i64 = 0;
            loop {
                let row = conn
                    .client
                    .query_one(
                        "WITH b AS (SELECT id FROM users WHERE id > $1 ORDER BY id LIMIT 1000),
                              u AS (UPDATE users SET full_name = name WHERE id IN (SELECT id FROM b))
                         SELECT max(id) FROM b",
                        &[&last],
                    )
                    .await
                    .expect("batch");
                match row.get::<_, Option<i64>>(0) {
                    Some(hi) => last = hi,
                    None => break,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        })
        .await;
        results.push(r);
    }
    // 4–6. cutover.
    let gentle_ms = (probe_p95.as_secs_f64() * 1000.0 * 3.0).max(1.0);
    let gentle = format!(
        "[throttle]\nprobe_latency = \"{}us\"\n",
        (gentle_ms * 1000.0) as u64
    );
    // 8–9: a fixed pace at the gentle target's rate, to tell what the
    // rate itself costs the application from what gentle mode's
    // controller does.
    let unbatched_rate = results
        .iter()
        .find(|r| r.strategy == UNBATCHED)
        .map(|r| r.rows_per_s);
    let paced = unbatched_rate.map(|r| {
        format!(
            "[throttle]\nmax_rows_per_second = {}\n",
            (r * 0.25).max(100.0) as u64
        )
    });
    let experiment_step = std::env::var("BENCH_BACKFILL_STEP").unwrap_or_default() + "\n";
    let cutover_strategies = [
        ("4 cutover, default", Some(String::new()), false, ""),
        ("5 cutover, gentle", Some(gentle.clone()), false, ""),
        ("6 cutover + sync trigger", Some(String::new()), true, ""),
        (
            "7 cutover, gentle, no vacuum behind",
            Some(gentle),
            false,
            "vacuum_behind = false\n",
        ),
        ("8 cutover, paced at 0.25× upd", paced.clone(), false, ""),
        (
            "9 paced 0.25× upd, no vacuum behind",
            paced,
            false,
            "vacuum_behind = false\n",
        ),
        (
            "a cutover, default, workers = 2",
            Some(String::new()),
            false,
            "workers = 2\n",
        ),
        (
            "b cutover, default, workers = 4",
            Some(String::new()),
            false,
            "workers = 4\n",
        ),
        // An experiment: `BENCH_BACKFILL_THROTTLE` as the plan's
        // `[throttle]` lines, `BENCH_BACKFILL_STEP` as the step's.
        (
            "x cutover, experiment",
            Some(format!(
                "[throttle]\n{}\n",
                std::env::var("BENCH_BACKFILL_THROTTLE").unwrap_or_default()
            )),
            false,
            experiment_step.as_str(),
        ),
    ];
    // In the order `--only` names them, repeats included: of two
    // strategies, the one run later has measured gentler whichever it was
    // (README, Performance), so an A/B pair is best run A B B A
    // (`--only 2,8,9,9,8`).
    let order: Vec<usize> = match &only {
        Some(o) => o
            .iter()
            .filter_map(|c| {
                cutover_strategies
                    .iter()
                    .position(|(label, ..)| label.starts_with(*c))
            })
            .collect(),
        // The experiment runs only when `--only` names it.
        None => (0..cutover_strategies.len())
            .filter(|i| !cutover_strategies[*i].0.starts_with('x'))
            .collect(),
    };
    for (run, i) in order.into_iter().enumerate() {
        let (label, throttle, trigger, step) = cutover_strategies[i].clone();
        let Some(throttle) = throttle else {
            println!("{label}: skipped, it needs strategy 2's rate (add 2 to --only)");
            continue;
        };
        b.fresh_table(trigger).await;
        let plan = b.dir.join(format!("plan{}.toml", &label[..1]));
        std::fs::write(
            &plan,
            format!(
                "name = \"bench {label}\"\n{throttle}[[phases]]\nname = \"migrate\"\ngate = \"auto\"\n\
                 [[phases.steps]]\nkind = \"backfill\"\ntable = \"users\"\nkey = \"id\"\nset = \"full_name = name\"\n{step}"
            ),
        )
        .expect("plan");
        let url = b.sandbox.primary_url();
        let log = b.dir.join(format!("cutover{}-{run}.log", &label[..1]));
        let (r, _) = b
            .measure(label, async move { Some(run_cutover(&url, &plan, &log)) })
            .await;
        results.push(r);
    }

    // Without strategy 2 in this run there is nothing to divide by.
    let unbatched = unbatched_rate.unwrap_or(f64::NAN);
    let base_p99 = results[0].app_p99_ms;
    for r in results.iter_mut().skip(1) {
        r.speed_vs_unbatched = r.rows_per_s / unbatched;
        r.p99_vs_baseline = r.app_p99_ms / base_p99;
    }
    results[0].p99_vs_baseline = 1.0;
    print_table(&results, gentle_ms);
    let out = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out).ok();
    let file = out.join(format!("backfill-{rows}.json"));
    std::fs::write(&file, serde_json::to_string_pretty(&results).expect("json"))
        .expect("write json");
    println!(
        "\nwritten to {}; took {:.0}s",
        file.display(),
        started.elapsed().as_secs_f64()
    );
    b.sandbox.stop();
}

/// The value after `name` on the command line.
fn flag(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// Checkpoints so far, and buffers backends had to write themselves.
async fn bgwriter(c: &tokio_postgres::Client) -> (i64, i64) {
    let r = c
        .query_one(
            "SELECT checkpoints_timed + checkpoints_req, buffers_backend FROM pg_stat_bgwriter",
            &[],
        )
        .await
        .expect("bgwriter");
    (r.get(0), r.get(1))
}

/// Runs `cutover run` headless; returns its peak RSS in MB.
/// Its progress lines (throttle and gentle-mode reasons included) go to
/// `log`.
fn run_cutover(url: &str, plan: &Path, log: &Path) -> f64 {
    let child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["run", "--yes", "--headless"])
        .arg(plan)
        .env("DATABASE_URL", url)
        .stdout(std::fs::File::create(log).expect("cutover log"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn cutover");
    let pid = child.id() as i32;
    // The benchmark stops by itself: a strategy that runs past the limit
    // (gentle mode crawling on a disk that stalls whatever it does) is
    // stopped, and the run ends with a message instead of a table.
    let finished = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (finished, timed_out) = (finished.clone(), timed_out.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            while !finished.load(Ordering::Relaxed) {
                if t.elapsed() > STRATEGY_LIMIT {
                    timed_out.store(true, Ordering::Relaxed);
                    // cutover detaches on SIGTERM: the run stays resumable.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 gives the child's own peak RSS (ru_maxrss, KB).
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    finished.store(true, Ordering::Relaxed);
    watchdog.join().expect("watchdog");
    assert_eq!(waited, pid, "wait4");
    assert!(
        !timed_out.load(Ordering::Relaxed),
        "{} did not finish within {} s; its progress is in {}",
        plan.display(),
        STRATEGY_LIMIT.as_secs(),
        log.display()
    );
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "cutover failed"
    );
    std::mem::forget(child);
    usage.ru_maxrss as f64 / 1024.0
}

impl Bench {
    /// A fresh `users` (same rows every time) with `full_name` added,
    /// vacuumed and checkpointed; optionally with a two-way sync trigger.
    async fn fresh_table(&self, trigger: bool) {
        let c = &self.conn.client;
        let _ = c
            .batch_execute("DROP SCHEMA IF EXISTS cutover CASCADE")
            .await;
        cutover::journal::schema::ensure(c).await.expect("journal");
        seed::seed_users(c, self.rows, true, &mut |_| {})
            .await
            .expect("seed");
        c.batch_execute("ALTER TABLE users ADD COLUMN full_name text")
            .await
            .expect("add column");
        if trigger {
            c.batch_execute(
                "CREATE FUNCTION sync_name() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   IF TG_OP = 'INSERT' THEN
                     IF NEW.full_name IS NULL THEN NEW.full_name := NEW.name; END IF;
                   ELSIF NEW.name IS DISTINCT FROM OLD.name AND NEW.full_name IS NOT DISTINCT FROM OLD.full_name THEN
                     NEW.full_name := NEW.name;
                   ELSIF NEW.full_name IS DISTINCT FROM OLD.full_name AND NEW.name IS NOT DISTINCT FROM OLD.name THEN
                     NEW.name := NEW.full_name;
                   END IF;
                   RETURN NEW;
                 END $$;
                 CREATE TRIGGER sync_name BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION sync_name();",
            )
            .await
            .expect("trigger");
        } else {
            let _ = c
                .batch_execute("DROP FUNCTION IF EXISTS sync_name() CASCADE")
                .await;
        }
        c.batch_execute("VACUUM ANALYZE users")
            .await
            .expect("vacuum");
        c.batch_execute("CHECKPOINT").await.expect("checkpoint");
        // Let the replica catch up before measuring.
        loop {
            let behind: i64 = c
                .query_one(
                    "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint FROM pg_stat_replication",
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
        settle(&self.conn, self.sandbox.replica_url()).await;
    }

    /// Runs `work` under the pgbench load, sampling replica lag; returns the
    /// row of the table and the app's p95 (for gentle mode's setting).
    async fn measure(
        &self,
        label: &str,
        work: impl std::future::Future<Output = Option<f64>>,
    ) -> (Row, Duration) {
        let c = &self.conn.client;
        let wal0: String = c
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .expect("lsn")
            .get(0);
        let (ckpt0, backend0) = bgwriter(c).await;
        let stop = Arc::new(AtomicBool::new(false));
        let run = self.measured.fetch_add(1, Ordering::Relaxed);
        let load = spawn_load(&self.sandbox, &self.dir, run, label, stop.clone());
        let lag = spawn_lag_sampler(self.target.clone(), stop.clone());
        let waits = spawn_wait_sampler(self.target.clone(), stop.clone());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t0 = Instant::now();
        let rss = work.await;
        let wall = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        let latencies = load.await.expect("load task");
        let (lag_bytes, lag_s) = lag.await.expect("lag task");
        let (app_waits, cutover_waits) = waits.await.expect("wait task");
        let row = c
            .query_one(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)::bigint, pg_total_relation_size('users')",
                &[&wal0],
            )
            .await
            .expect("wal");
        let (ckpt1, backend1) = bgwriter(c).await;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p95 = percentile(&latencies, 0.95);
        let r = Row {
            strategy: label.to_string(),
            wall_s: wall.as_secs_f64(),
            rows_per_s: if label.starts_with('1') {
                0.0
            } else {
                self.rows as f64 / wall.as_secs_f64()
            },
            app_p50_ms: ms(percentile(&latencies, 0.50)),
            app_p99_ms: ms(percentile(&latencies, 0.99)),
            app_max_ms: ms(latencies.iter().copied().max().unwrap_or_default()),
            max_replay_lag_bytes: lag_bytes,
            max_replay_lag_s: lag_s,
            wal_bytes: row.get(0),
            table_bytes_after: row.get(1),
            cutover_peak_rss_mb: rss,
            app_transactions: latencies.len(),
            checkpoints: ckpt1 - ckpt0,
            buffers_written_by_backends: backend1 - backend0,
            app_waits,
            cutover_waits,
            ..Row::default()
        };
        eprintln!("  done: {label} in {:.1}s", wall.as_secs_f64());
        (r, p95)
    }
}

/// pgbench in back-to-back 2 s chunks until `stop` (each chunk's
/// per-transaction log is complete); returns every latency. The logs go to
/// a directory of this strategy's run (`run`) alone.
fn spawn_load(
    sandbox: &Sandbox,
    dir: &Path,
    run: usize,
    label: &str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Duration>> {
    let pgbench = sandbox.bin.join("pgbench");
    let port = sandbox.primary.port.to_string();
    let dir = dir.join(format!(
        "{run:02}-{}",
        label
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    ));
    std::fs::create_dir_all(&dir).expect("log dir");
    let script = dir.parent().expect("parent").join("load.sql");
    tokio::task::spawn_blocking(move || {
        let mut chunk = 0;
        while !stop.load(Ordering::Relaxed) {
            chunk += 1;
            let out = Command::new(&pgbench)
                .args([
                    "-n",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-R",
                    "300",
                    "-c",
                    "4",
                    "-j",
                    "2",
                    "-T",
                    "2",
                    "-l",
                ])
                .arg(format!("--log-prefix={}/c{chunk}", dir.display()))
                .arg("-f")
                .arg(&script)
                .arg("postgres")
                .current_dir(&dir)
                .output()
                .expect("pgbench");
            assert!(
                out.status.success(),
                "pgbench: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut latencies = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("logs").flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.lines() {
                // client_id transaction_no time_us script_no epoch epoch_us [lag]
                if let Some(us) = line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    latencies.push(Duration::from_micros(us));
                }
            }
        }
        latencies
    })
}

/// Samples the worst replica replay lag every 100 ms until `stop`.
fn spawn_lag_sampler(target: Target, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(i64, f64)> {
    tokio::spawn(async move {
        let c = Conn::connect(&target).await.expect("connect");
        let mut tracker_lsn = String::new();
        let mut stuck_since = Instant::now();
        let (mut max_bytes, mut max_s) = (0i64, 0f64);
        while !stop.load(Ordering::Relaxed) {
            if let Ok(Some(r)) = c
                .client
                .query_opt(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, replay_lsn::text,
                            coalesce(extract(epoch FROM replay_lag), 0)::float8
                     FROM pg_stat_replication LIMIT 1",
                    &[],
                )
                .await
            {
                let bytes: i64 = r.get::<_, Option<i64>>(0).unwrap_or(0);
                let lsn: String = r.get::<_, Option<String>>(1).unwrap_or_default();
                let lag: f64 = r.get(2);
                if lsn != tracker_lsn || bytes == 0 {
                    tracker_lsn = lsn;
                    stuck_since = Instant::now();
                }
                max_bytes = max_bytes.max(bytes);
                max_s = max_s.max(lag.max(if bytes > 0 { stuck_since.elapsed().as_secs_f64() } else { 0.0 }));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (max_bytes, max_s)
    })
}

fn print_table(rows: &[Row], gentle_ms: f64) {
    println!(
        "\n{:<36} {:>7} {:>10} {:>6} {:>8} {:>8} {:>9} {:>7} {:>10} {:>7} {:>9} {:>9} {:>7} {:>5} {:>9}",
        "strategy",
        "wall s",
        "rows/s",
        "×upd",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p99×",
        "lag bytes",
        "lag s",
        "WAL MB",
        "table MB",
        "RSS MB",
        "ckpt",
        "bk bufs"
    );
    for r in rows {
        println!(
            "{:<36} {:>7.1} {:>10.0} {:>6.2} {:>8.2} {:>8.2} {:>9.1} {:>7.2} {:>10} {:>7.2} {:>9.0} {:>9.0} {:>7} {:>5} {:>9}",
            r.strategy,
            r.wall_s,
            r.rows_per_s,
            r.speed_vs_unbatched,
            r.app_p50_ms,
            r.app_p99_ms,
            r.app_max_ms,
            r.p99_vs_baseline,
            r.max_replay_lag_bytes,
            r.max_replay_lag_s,
            r.wal_bytes as f64 / 1e6,
            r.table_bytes_after as f64 / 1e6,
            r.cutover_peak_rss_mb
                .map_or("-".into(), |m| format!("{m:.1}")),
            r.checkpoints,
            r.buffers_written_by_backends,
        );
    }
    println!("gentle mode's probe_latency: {gentle_ms:.2} ms (3× the idle probe p95)");
    println!("\nwhat active sessions waited on (share of 10 ms samples):");
    for r in rows {
        println!("  {:<36} app: {}", r.strategy, waits::show(&r.app_waits));
        if !r.cutover_waits.is_empty() {
            println!("  {:<36} cutover: {}", "", waits::show(&r.cutover_waits));
        }
    }
}
