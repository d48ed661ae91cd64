//! The application under a migration: a writer on `users` that runs until
//! stopped and counts what it did, so tests can check it never saw an
//! error and wait for it to have written.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{Deadline, connect};

/// Inserts, updates and deletes on `users` every few milliseconds, with
/// statements valid before and after every shipped plan's swap. Updates
/// and deletes hit ids `1..=rows`; inserts take new ids from the sequence.
pub struct Writer {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Writer {
    /// Starts writing to the `users` table of `url` (seeded with 20,000 rows).
    pub fn start(url: &str) -> Writer {
        Writer::start_on(url, 20_000)
    }

    /// Starts writing to a `users` table seeded with `rows` rows.
    pub fn start_on(url: &str, rows: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let (s, w, url) = (stop.clone(), writes.clone(), url.to_string());
        let rows = rows.max(4);
        let task = tokio::spawn(async move {
            let c = connect(&url).await;
            let mut errors = Vec::new();
            let mut n: u64 = 0;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                let id = (n * 7919) % (rows - 3) + 1;
                let sql = match n % 5 {
                    0 => format!(
                        "INSERT INTO users (name, email, age, street, city, country) \
                         VALUES ('new {n}', 'new{n}@example.com', {}, '{n} New Road', 'Bergen', 'NO')",
                        n % 90
                    ),
                    1 => format!("DELETE FROM users WHERE id = {}", id + 3),
                    _ => format!(
                        "UPDATE users SET name = 'renamed {n}', age = {}, city = 'City {n}' WHERE id = {id}",
                        n % 77
                    ),
                };
                match c.client.simple_query(&sql).await {
                    Ok(_) => {
                        w.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => errors.push(format!("{sql}: {}", cutover::db::describe(&e))),
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            errors
        });
        Writer { stop, writes, task }
    }

    /// Writes that succeeded so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Waits until `more` writes have succeeded since this call.
    pub async fn wait_for_writes(&self, more: u64, within: Duration) {
        let from = self.writes();
        let deadline = Deadline::new(
            format!("the application to write {more} more times"),
            within,
        );
        while self.writes() < from + more {
            deadline.next().await;
        }
    }

    /// Stops it; returns the writes that succeeded and every error seen.
    pub async fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self.task.await.expect("the writer task panicked");
        (self.writes.load(Ordering::Relaxed), errors)
    }
}
