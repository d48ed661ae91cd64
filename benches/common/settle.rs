//! Starting each measured run from a quiet disk, for the benchmarks.

use std::time::{Duration, Instant};

use cutover::db::{Conn, Source, Target};

/// The replica's restartpoint writes out what replaying the set-up
/// dirtied, sync(2) flushes the rest (the machine's other writes
/// included), then waits until commits are quick again: no run, the
/// baseline least of all, pays for the set-up's write-back.
pub async fn settle(primary: &Conn, replica_url: Option<String>) {
    if let Some(url) = replica_url {
        let t = Target::parse(&url, Source::Flag).expect("replica url");
        let r = Conn::connect(&t).await.expect("connect replica");
        r.client
            .batch_execute("CHECKPOINT")
            .await
            .expect("restartpoint");
    }
    tokio::task::spawn_blocking(|| unsafe { libc::sync() })
        .await
        .expect("sync");
    quiet_disk(primary).await;
}

/// Waits (up to a minute) until three seconds in a row pass with every
/// commit under 10 ms. Dropping the last run's table (1.2 GB at 4M rows)
/// lets the disk discard its blocks, and on this machine a baseline
/// measured while that went on had p99 128–155 ms instead of 9–28 ms.
async fn quiet_disk(conn: &Conn) {
    let c = &conn.client;
    let t = Instant::now();
    let mut calm = 0;
    while calm < 3 {
        if t.elapsed() > Duration::from_secs(60) {
            eprintln!("  the disk did not quiet down in 60 s; measuring anyway");
            return;
        }
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let q = Instant::now();
            // Assigning an xid makes the commit write and flush WAL.
            c.batch_execute("SELECT pg_current_xact_id()")
                .await
                .expect("commit");
            worst = worst.max(q.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        calm = if worst < Duration::from_millis(10) {
            calm + 1
        } else {
            0
        };
    }
    eprintln!("  disk quiet after {:.0}s", t.elapsed().as_secs_f64());
}
