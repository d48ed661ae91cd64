//! The canary probe: a point read by key on the migrated table and a
//! committed heartbeat write, about every 100 ms on its own connection —
//! the application's view of the impact (a commit waits for the WAL before
//! it to be flushed, the backfill's included).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt;

use super::Focus;
use super::sample::ProbeStats;
use crate::db::{Conn, Target, quote_ident, quote_qualified};

/// How often the probe reads.
pub const PERIOD: Duration = Duration::from_millis(100);
/// The window the displayed distribution covers.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Probe latencies of the last [`WINDOW`].
#[derive(Debug, Default)]
pub struct ProbeWindow {
    points: VecDeque<(Instant, Option<Duration>)>,
}

impl ProbeWindow {
    /// Records one probe (None = it failed).
    pub fn record(&mut self, at: Instant, latency: Option<Duration>) {
        self.points.push_back((at, latency));
        while let Some((t, _)) = self.points.front() {
            if at.duration_since(*t) > WINDOW {
                self.points.pop_front();
            } else {
                break;
            }
        }
    }

    /// Forgets everything (the probed table changed).
    pub fn clear(&mut self) {
        self.points.clear();
    }

    /// The distribution, if there is any data.
    pub fn stats(&self) -> Option<ProbeStats> {
        let all: Vec<Duration> = self.points.iter().filter_map(|(_, l)| *l).collect();
        if all.is_empty() {
            return None;
        }
        Some(ProbeStats {
            p50: percentile(&all, 0.50),
            p95: percentile(&all, 0.95),
            max: all.iter().copied().max().unwrap_or_default(),
            samples: all.len(),
            errors: self.points.iter().filter(|(_, l)| l.is_none()).count(),
        })
    }
}

/// The q-quantile (nearest rank) of some latencies.
pub fn percentile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// What to read, prepared for one table.
struct ProbeTarget {
    table: String,
    key: String,
    sql: String,
    range: Option<(i64, i64)>,
    fixed: Option<String>,
}

async fn prepare(conn: &Conn, table: &str, key: &str) -> Option<ProbeTarget> {
    let qt = quote_qualified(table);
    let qk = quote_ident(key);
    let ty: String = conn
        .client
        .query_opt(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped",
            &[&qt, &key],
        )
        .await
        .ok()??
        .get(0);
    let bounds = conn
        .client
        .query_one(
            &format!("SELECT min({qk})::text, max({qk})::text FROM {qt}"),
            &[],
        )
        .await
        .ok()?;
    let (lo, hi): (Option<String>, Option<String>) = (bounds.get(0), bounds.get(1));
    let integer = matches!(ty.as_str(), "bigint" | "integer" | "smallint");
    let range = if integer {
        lo.as_deref()
            .and_then(|l| l.parse().ok())
            .zip(hi.as_deref().and_then(|h| h.parse().ok()))
    } else {
        None
    };
    Some(ProbeTarget {
        table: table.to_string(),
        key: key.to_string(),
        // A point read by key, and a committed heartbeat write (cutover's
        // own row, never application data): the latency an application's
        // read-then-commit sees, WAL flush included.
        sql: format!(
            "WITH r AS (SELECT 1 FROM {qt} WHERE {qk} = $1::text::{ty})
             INSERT INTO cutover.heartbeat (pid, beat)
             SELECT pg_backend_pid(), now() FROM (SELECT count(*) FROM r) c
             ON CONFLICT (pid) DO UPDATE SET beat = excluded.beat"
        ),
        range,
        fixed: lo,
    })
}

/// Runs the probe until the task is aborted.
pub async fn run(target: Target, focus: Arc<Mutex<Focus>>, window: Arc<Mutex<ProbeWindow>>) {
    let mut conn: Option<Conn> = None;
    let mut current: Option<ProbeTarget> = None;
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The table being migrated, else the plan's main table: the
        // operator wants a health reading at a gate, before advancing.
        let wanted = focus.lock().ok().and_then(|f| {
            f.table
                .clone()
                .zip(f.key.clone())
                .or_else(|| f.resting.clone())
        });
        let Some((table, key)) = wanted else {
            current = None;
            continue;
        };
        if conn.is_none() {
            match Conn::connect(&target).await {
                Ok(c) => {
                    let _ = c.client.batch_execute("SET statement_timeout = '2s'").await;
                    conn = Some(c);
                }
                Err(e) => {
                    tracing::warn!("probe cannot connect: {e}");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_ref() else { continue };
        if current
            .as_ref()
            .is_none_or(|t| t.table != table || t.key != key)
        {
            current = prepare(c, &table, &key).await;
            if let Ok(mut w) = window.lock() {
                w.clear();
            }
        }
        let Some(t) = current.as_ref() else { continue };
        let key_value = match t.range {
            Some((lo, hi)) if hi >= lo => rand::rng().random_range(lo..=hi).to_string(),
            _ => match &t.fixed {
                Some(k) => k.clone(),
                None => continue,
            },
        };
        let started = Instant::now();
        let result = c.client.query_opt(&t.sql, &[&key_value]).await;
        let latency = result.is_ok().then(|| started.elapsed());
        if let Err(e) = &result {
            tracing::debug!("probe failed: {e}");
            super::activity::count_own_rollback();
            if c.client.is_closed() {
                conn = None;
            }
        }
        if let Ok(mut w) = window.lock() {
            w.record(Instant::now(), latency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&v, 0.5), ms(50));
        assert_eq!(percentile(&v, 0.95), ms(95));
        assert_eq!(percentile(&[ms(3)], 0.95), ms(3));
    }

    #[test]
    fn window_keeps_ten_seconds() {
        let t0 = Instant::now();
        let mut w = ProbeWindow::default();
        for i in 0..200u64 {
            // Slow at first, fast for the last 2 s: the window still holds
            // the slow ones.
            let lat = if i < 180 { ms(50) } else { ms(1) };
            w.record(t0 + ms(i * 100), Some(lat));
        }
        w.record(t0 + ms(19_950), None);
        let s = w.stats().unwrap();
        assert_eq!(s.samples, 100, "10 s at 10 probes/s");
        assert_eq!(s.p95, ms(50));
        assert_eq!(s.errors, 1);
    }
}
