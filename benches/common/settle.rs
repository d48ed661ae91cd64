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

/// Writes `mb` of WAL and checkpoints, so that the server has that much
/// WAL already in recycled segment files, as a server in steady state has.
/// A fresh sandbox creates (and zero-fills) a new 16 MB segment file every
/// 16 MB of WAL, holding the WAL write lock while it does: on this machine
/// the application's commits then waited on `IO:WALInitWrite` for 12 % of
/// their time, and the first plan runs of a benchmark had 3–7× the p99 of
/// the later ones, whichever variant ran first.
pub async fn warm_wal(primary: &Conn, mb: u64) {
    let t = Instant::now();
    let c = &primary.client;
    // Rows of about 2 kB: under the TOAST threshold, stored (and logged)
    // uncompressed.
    let rows = mb * 512;
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS bench_wal_warmup;
         CREATE TABLE bench_wal_warmup AS
           SELECT g, repeat(md5(g::text), 62) AS pad FROM generate_series(1, {rows}) g;
         DROP TABLE bench_wal_warmup;
         CHECKPOINT;"
    ))
    .await
    .expect("warm the WAL");
    eprintln!(
        "  {mb} MB of WAL written and recycled in {:.0}s",
        t.elapsed().as_secs_f64()
    );
}
