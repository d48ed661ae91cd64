//! What one monitor sample costs on the sandbox (primary + replica), with a
//! migration-like session holding locks and an application-like load.
//!
//!     cargo bench --bench monitor_cost
//!
//! Prints the mean and p95 time of a whole sample (every monitor query)
//! against the target of 5 ms.

use std::time::{Duration, Instant};

use cutover::db::{Conn, Source, Target};
use cutover::monitor::{Focus, Sampler};
use cutover::sandbox::{Sandbox, SandboxOptions, seed};

const SAMPLES: usize = 200;

#[tokio::main]
async fn main() {
    let sandbox = tokio::task::spawn_blocking(|| Sandbox::start(&SandboxOptions::default()))
        .await
        .expect("start task")
        .expect("sandbox");
    let target = Target::parse(&sandbox.primary_url(), Source::Flag).expect("url");
    let setup = Conn::connect(&target).await.expect("connect");
    seed::seed_users(&setup.client, 100_000, false, &mut |_| {})
        .await
        .expect("seed");
    // Ten busy sessions and one open transaction, so the queries have
    // something to look at.
    let mut load = Vec::new();
    for i in 0..10 {
        let t = target.clone();
        load.push(tokio::spawn(async move {
            let c = Conn::connect(&t).await.expect("connect");
            let mut id: i64 = i;
            loop {
                id = (id * 7919 + 104_729) % 100_000;
                let _ = c
                    .client
                    .execute("UPDATE users SET age = age WHERE id = $1", &[&(id + 1)])
                    .await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let holder = Conn::connect(&target).await.expect("connect");
    holder
        .client
        .batch_execute("BEGIN; SELECT count(*) FROM users WHERE id < 10;")
        .await
        .expect("open transaction");
    let monitor = Conn::connect(&target).await.expect("connect");
    monitor
        .client
        .batch_execute("SET lock_timeout = '100ms'")
        .await
        .expect("set");
    let focus = Focus {
        ours: vec![holder.pid()],
        table: Some("users".into()),
        key: Some("id".into()),
        ..Focus::default()
    };
    let mut sampler = Sampler::default();
    // Warm up: catalogs cached, statements planned.
    for _ in 0..10 {
        sampler.sample(&monitor, &focus).await.expect("sample");
    }
    let mut costs = Vec::with_capacity(SAMPLES);
    let started = Instant::now();
    for _ in 0..SAMPLES {
        let s = sampler.sample(&monitor, &focus).await.expect("sample");
        costs.push(s.cost);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    costs.sort();
    let mean = costs.iter().sum::<Duration>() / SAMPLES as u32;
    let p95 = cutover::monitor::probe::percentile(&costs, 0.95);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "monitor sample cost over {SAMPLES} samples ({:.1}s):",
        wall.as_secs_f64()
    );
    println!(
        "  mean {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        ms(mean),
        ms(p95),
        ms(costs[SAMPLES - 1])
    );
    println!(
        "  ratio to the 5 ms target: mean {:.2}, p95 {:.2}",
        ms(mean) / 5.0,
        ms(p95) / 5.0
    );
    for l in load {
        l.abort();
    }
    drop(holder);
    sandbox.stop();
}
