//! The plan's `[settings]`, `[throttle]` and `[abort]` tables, with their
//! defaults.

use serde::Deserialize;

use super::units::{DurationRange, HumanDuration, Size};

/// `[settings]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Bound of one attempt to take a lock.
    pub lock_timeout: HumanDuration,
    /// Bound of one statement (`0` = none).
    pub statement_timeout: HumanDuration,
    /// Retries after a lock timeout.
    pub lock_retries: u32,
    /// Pause between retries, jittered within this range.
    pub retry_backoff: DurationRange,
    /// How long a run tries to reconnect after its connections drop before
    /// it gives up (the journal stays consistent either way).
    pub reconnect_timeout: HumanDuration,
    /// How long one backfill or copy batch waits for a row an application
    /// holds before it is rolled back and retried.
    pub batch_lock_timeout: HumanDuration,
    /// How many times in a row a batch may meet a held row before the step
    /// fails.
    pub batch_lock_retries: u32,
    /// The longest any application statement may wait behind cutover: each
    /// DDL lock attempt waits at most this (retried with backoff), and
    /// batches are sized to stay under half of it. Unset: `lock_timeout`
    /// and `target_batch_time` alone.
    pub max_stall: Option<HumanDuration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            // Every query behind a DDL waiting for its lock waits too: half a
            // second bounds what an operator who sets nothing imposes (the
            // 1,356 ms TPC-B worst case came from one-second attempts
            // queueing behind a transaction), as pgroll's default does.
            lock_timeout: HumanDuration(std::time::Duration::from_millis(500)),
            statement_timeout: HumanDuration::default(),
            lock_retries: 20,
            retry_backoff: DurationRange {
                min: std::time::Duration::from_millis(250),
                max: std::time::Duration::from_secs(10),
            },
            reconnect_timeout: HumanDuration(std::time::Duration::from_secs(60)),
            batch_lock_timeout: HumanDuration(std::time::Duration::from_millis(500)),
            batch_lock_retries: 100,
            max_stall: None,
        }
    }
}

/// `[throttle]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Throttle {
    /// Pause batches while a replica lags more than this.
    pub replication_lag: Option<HumanDuration>,
    /// Pause batches while a replica (or slot) is this far behind.
    pub replication_lag_bytes: Option<Size>,
    /// Dynamic batch sizing aims at this batch duration.
    pub target_batch_time: HumanDuration,
    /// Largest batch.
    pub max_batch_size: u64,
    /// Smallest batch.
    pub min_batch_size: u64,
    /// Keep the canary probe's p95 under this (gentle mode); unset = full speed.
    pub probe_latency: Option<HumanDuration>,
    /// Never move more rows per second than this (pauses between batches).
    pub max_rows_per_second: Option<u64>,
    /// Hold a cross-database compare and the switchover's write freeze
    /// while the subscription's apply lag is over this.
    pub apply_lag: Option<HumanDuration>,
    /// As `apply_lag`, in bytes of source WAL not yet applied.
    pub apply_lag_bytes: Option<Size>,
}

/// The batch time sizing aims at by default. A batch holds its rows' locks
/// until it commits, and an application write that meets one waits for
/// the whole batch: at 200 ms a full-speed batch held 5 % of a 1M-row
/// table, and the application's p99 was 16–19× its baseline; at 25 ms,
/// 2.3–2.7×, at the same speed (0.97–1.08× one unbatched UPDATE;
/// benches/README.md).
pub const DEFAULT_BATCH_TIME: std::time::Duration = std::time::Duration::from_millis(25);

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            replication_lag: None,
            replication_lag_bytes: None,
            target_batch_time: HumanDuration(DEFAULT_BATCH_TIME),
            max_batch_size: 100_000,
            min_batch_size: 100,
            probe_latency: None,
            max_rows_per_second: None,
            apply_lag: None,
            apply_lag_bytes: None,
        }
    }
}

impl Throttle {
    /// Backfills are paced to a rate: gentle mode or `max_rows_per_second`.
    pub fn paces(&self) -> bool {
        self.probe_latency.is_some() || self.max_rows_per_second.is_some()
    }
}

/// `[abort]`: any one trips → the run aborts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AbortLimits {
    /// Replica lag in time.
    pub replication_lag: Option<HumanDuration>,
    /// Replica lag in bytes.
    pub replication_lag_bytes: Option<Size>,
    /// A session blocked behind us this long.
    pub lock_wait: Option<HumanDuration>,
    /// This many sessions blocked behind us.
    pub blocked_sessions: Option<u32>,
    /// Lock timeouts counted across the run.
    pub lock_timeouts: Option<u32>,
    /// Rolled-back transactions per second on the database.
    pub rollback_rate: Option<f64>,
    /// Fail closed when monitor samples stop for this long.
    pub stale_monitor: HumanDuration,
    /// WAL a replication slot of the run keeps on the source (so the
    /// source's disk never fills behind a slow subscription).
    pub slot_retained_wal: Option<Size>,
    /// The subscription's apply lag in time.
    pub apply_lag: Option<HumanDuration>,
    /// The subscription's apply lag in bytes of source WAL.
    pub apply_lag_bytes: Option<Size>,
}

impl Default for AbortLimits {
    fn default() -> Self {
        AbortLimits {
            replication_lag: None,
            replication_lag_bytes: None,
            lock_wait: None,
            blocked_sessions: None,
            lock_timeouts: None,
            rollback_rate: None,
            stale_monitor: HumanDuration(std::time::Duration::from_secs(15)),
            slot_retained_wal: None,
            apply_lag: None,
            apply_lag_bytes: None,
        }
    }
}
