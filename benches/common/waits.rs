//! What the application's and cutover's sessions wait on, sampled from
//! `pg_stat_activity`, for the benchmarks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cutover::db::{Conn, Target};

/// Wait events (or "CPU") with their share of the samples, largest first.
pub type Waits = Vec<(String, f64)>;

/// Samples what active sessions wait on every 10 ms until `stop`; returns
/// the application's (pgbench) and cutover's top waits.
pub fn spawn_wait_sampler(
    target: Target,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(Waits, Waits)> {
    tokio::spawn(async move {
        let c = Conn::connect(&target).await.expect("connect");
        let mut app = std::collections::BTreeMap::<String, u64>::new();
        let mut ours = std::collections::BTreeMap::<String, u64>::new();
        while !stop.load(Ordering::Relaxed) {
            if let Ok(rows) = c
                .client
                .query(
                    "SELECT application_name, coalesce(wait_event_type || ':' || wait_event, 'CPU')
                     FROM pg_stat_activity
                     WHERE state = 'active' AND pid <> pg_backend_pid()
                       AND application_name IN ('pgbench', 'cutover')",
                    &[],
                )
                .await
            {
                for r in rows {
                    let who: String = r.get(0);
                    let what: String = r.get(1);
                    let map = if who == "pgbench" {
                        &mut app
                    } else {
                        &mut ours
                    };
                    *map.entry(what).or_default() += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let top = |m: std::collections::BTreeMap<String, u64>| {
            let total: u64 = m.values().sum();
            let mut v: Vec<(String, f64)> = m
                .into_iter()
                .map(|(k, n)| (k, n as f64 / total.max(1) as f64))
                .collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1));
            v.truncate(5);
            v
        };
        (top(app), top(ours))
    })
}

/// The waits as one line: `IO:WALSync 40%, CPU 30%`.
pub fn show(w: &[(String, f64)]) -> String {
    w.iter()
        .map(|(k, f)| format!("{k} {:.0}%", f * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}
