//! A move's subscription, sampled with the rest: per-table sync state and
//! the initial copy's bytes (on the other database), the apply lag in
//! bytes (the main database's position minus what the slot's consumer
//! confirmed) and in seconds (since the subscription last heard from the
//! main database), and the WAL the slot retains on the main database.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::db::{Conn, DbError, Target};

/// What the monitor watches of a move, set by its steps.
#[derive(Debug, Clone)]
pub struct SubscriptionFocus {
    /// The plan's name for the other database.
    pub database: String,
    /// How to reach it.
    pub target: Target,
    /// The subscription's (and slot's, and publication's) name.
    pub name: String,
    /// The moved tables' size on the main database (the copy's rough total).
    pub copy_total_bytes: Option<i64>,
}

/// One table of the subscription and its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableSync {
    /// The table.
    pub table: String,
    /// `pg_subscription_rel.srsubstate`: i, d, f, s or r.
    pub state: String,
}

impl TableSync {
    /// The state in words.
    pub fn state_text(&self) -> &'static str {
        match self.state.as_str() {
            "i" => "initializing",
            "d" => "copying",
            "f" => "copied",
            "s" => "synchronized",
            "r" => "streaming",
            _ => "unknown",
        }
    }
}

/// The initial copy's progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyProgress {
    /// Bytes the other side has taken in so far (`pg_stat_progress_copy`).
    pub bytes: i64,
    /// The tables' size on the main database (a rough total).
    pub total: Option<i64>,
    /// Bytes per second since the previous sample.
    pub rate: f64,
    /// At that rate, until `total`.
    pub eta: Option<Duration>,
}

/// The subscription as one sample saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionSample {
    /// Its name.
    pub name: String,
    /// The plan's name for the other database.
    pub database: String,
    /// Each table's sync state.
    pub tables: Vec<TableSync>,
    /// While tables are being copied.
    pub copy: Option<CopyProgress>,
    /// Bytes of the main database's WAL not yet confirmed applied.
    pub apply_lag_bytes: Option<i64>,
    /// Time since the subscription last heard from the main database,
    /// when it is behind (zero when caught up).
    pub apply_lag: Option<Duration>,
    /// WAL the slot keeps on the main database.
    pub slot_retained_bytes: Option<i64>,
    /// Why part of it could not be read (its limits then count as exceeded).
    pub error: Option<String>,
}

/// The slot on the main database: (bytes not confirmed, bytes retained).
/// The initial copy's own slots (`pg_<subid>_sync_<relid>_…`) retain WAL
/// too while it runs: the largest retention counts.
const SLOT: &str = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,
       (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), o.restart_lsn))::bigint
          FROM pg_replication_slots o
         WHERE o.slot_name = s.slot_name OR o.slot_name LIKE 'pg\\_%\\_sync\\_%')
     FROM pg_replication_slots s WHERE s.slot_name = $1";

/// The subscription's worker on the other database: seconds since its
/// last message from the main database.
const WORKER: &str = "SELECT extract(epoch FROM now() - max(latest_end_time))::float8
     FROM pg_stat_subscription WHERE subname = $1 AND relid IS NULL";

/// Bytes taken in by the initial copy's COPY commands on the other side.
const COPY: &str = "SELECT coalesce(sum(bytes_processed), 0)::bigint
     FROM pg_stat_progress_copy WHERE datname = current_database()";

/// The sampler's memory between samples: the other connection, and the
/// last copy reading (for the rate).
#[derive(Default)]
pub struct SubscriptionSampler {
    conn: Option<(String, Conn)>,
    copied: Option<(Instant, i64, i64)>,
}

impl SubscriptionSampler {
    /// Samples the focused subscription: the slot from `source`, the rest
    /// from the other database.
    pub async fn sample(&mut self, source: &Conn, focus: &SubscriptionFocus) -> SubscriptionSample {
        let mut s = SubscriptionSample {
            name: focus.name.clone(),
            database: focus.database.clone(),
            tables: Vec::new(),
            copy: None,
            apply_lag_bytes: None,
            apply_lag: None,
            slot_retained_bytes: None,
            error: None,
        };
        match source.client.query_opt(SLOT, &[&focus.name]).await {
            Ok(Some(r)) => {
                s.apply_lag_bytes = r.get(0);
                s.slot_retained_bytes = r.get(1);
            }
            Ok(None) => s.error = Some(format!("slot {} not found", focus.name)),
            Err(e) => s.error = Some(DbError::sql("reading the slot", e).to_string()),
        }
        if let Err(e) = self.sample_other(focus, &mut s).await {
            self.conn = None;
            s.error = Some(format!("database {}: {e}", focus.database));
        }
        s
    }

    async fn sample_other(
        &mut self,
        focus: &SubscriptionFocus,
        s: &mut SubscriptionSample,
    ) -> Result<(), DbError> {
        if self
            .conn
            .as_ref()
            .is_none_or(|(name, c)| name != &focus.name || c.client.is_closed())
        {
            let c = Conn::connect(&focus.target).await?;
            let _ = c
                .client
                .batch_execute("SET statement_timeout = '5s'; SET lock_timeout = '100ms'")
                .await;
            self.conn = Some((focus.name.clone(), c));
            self.copied = None;
        }
        let Some((_, c)) = self.conn.as_ref() else {
            return Ok(());
        };
        let ctx = |e| DbError::sql("sampling the subscription", e);
        let name = [&focus.name as &(dyn tokio_postgres::types::ToSql + Sync)];
        let (states, worker, copy) = tokio::join!(
            c.client
                .query(crate::statements::replication::SYNC_STATES, &name),
            c.client.query_one(WORKER, &name),
            c.client.query_one(COPY, &[]),
        );
        s.tables = states
            .map_err(ctx)?
            .iter()
            .map(|r| TableSync {
                table: r.get(0),
                state: r.get(1),
            })
            .collect();
        let since: Option<f64> = worker.map_err(ctx)?.get(0);
        s.apply_lag = match (s.apply_lag_bytes, since) {
            (Some(0), _) => Some(Duration::ZERO),
            (_, Some(secs)) => Some(Duration::from_secs_f64(secs.max(0.0))),
            _ => None,
        };
        let copy = copy.map_err(ctx)?;
        let bytes: i64 = copy.get(0);
        let copying = s.tables.iter().any(|t| t.state != "r" && t.state != "s");
        s.copy = copying.then(|| self.copy_progress(bytes, focus.copy_total_bytes));
        Ok(())
    }

    /// Progress of the copy, counting bytes across COPY commands: when a
    /// table's copy ends its bytes leave `pg_stat_progress_copy`.
    fn copy_progress(&mut self, bytes: i64, total: Option<i64>) -> CopyProgress {
        let now = Instant::now();
        let (rate, done) = match self.copied {
            Some((at, before, done_before)) => {
                // A COPY finished (fewer bytes than before): keep its bytes.
                let done = if bytes < before {
                    done_before + before
                } else {
                    done_before
                };
                let delta = (done + bytes) - (done_before + before);
                let secs = now.duration_since(at).as_secs_f64();
                (
                    if secs > 0.0 {
                        delta.max(0) as f64 / secs
                    } else {
                        0.0
                    },
                    done,
                )
            }
            None => (0.0, 0),
        };
        self.copied = Some((now, bytes, done));
        let copied = done + bytes;
        let eta = match total {
            Some(t) if rate > 0.0 && t > copied => {
                Some(Duration::from_secs_f64((t - copied) as f64 / rate))
            }
            _ => None,
        };
        CopyProgress {
            bytes: copied,
            total,
            rate,
            eta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_bytes_add_up_across_tables_and_give_an_eta() {
        let mut s = SubscriptionSampler::default();
        let first = s.copy_progress(1000, Some(10_000));
        assert_eq!(first.bytes, 1000);
        assert_eq!(first.eta, None, "no rate yet");
        std::thread::sleep(Duration::from_millis(20));
        let second = s.copy_progress(3000, Some(10_000));
        assert_eq!(second.bytes, 3000);
        assert!(second.rate > 0.0);
        assert!(second.eta.is_some());
        // The first table's COPY ended; the next one started over at 500.
        let third = s.copy_progress(500, Some(10_000));
        assert_eq!(third.bytes, 3500);
    }

    #[test]
    fn states_read_as_words() {
        let t = |s: &str| TableSync {
            table: "users".into(),
            state: s.into(),
        };
        assert_eq!(t("d").state_text(), "copying");
        assert_eq!(t("r").state_text(), "streaming");
    }
}
