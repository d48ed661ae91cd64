//! One monitor sample: what the database looked like at one moment.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

/// A session waiting for a lock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockWait {
    /// The waiting backend.
    pub pid: i32,
    /// Its application_name.
    pub application: String,
    /// What it waits for (`relation users`, `transactionid`, …).
    pub waits_for: String,
    /// The lock mode it wants.
    pub mode: String,
    /// The sessions it waits behind (hard and queue-order blockers).
    pub blocked_by: Vec<i32>,
    /// How long it has waited.
    pub waited: Duration,
    /// Its query (first 200 characters).
    pub query: String,
    /// True when a migration backend of ours is among its blockers.
    pub behind_us: bool,
    /// True when the waiter is one of ours.
    pub ours: bool,
}

/// A standby, as the primary sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaLag {
    /// Its application_name (cluster_name).
    pub name: String,
    /// streaming, catchup, …
    pub state: String,
    /// WAL bytes not yet sent to it.
    pub sent_bytes: i64,
    /// WAL bytes not yet replayed on it.
    pub replay_bytes: i64,
    /// write_lag.
    pub write_lag: Duration,
    /// flush_lag.
    pub flush_lag: Duration,
    /// The replay delay: replay_lag, or how long its replay has been stuck
    /// while WAL waits, whichever is larger (replay_lag freezes when replay
    /// stops).
    pub replay_lag: Duration,
    /// Set when a standby seen earlier is no longer connected: since when
    /// (its lag figures are then lower bounds).
    pub gone_since: Option<SystemTime>,
}

/// A replication slot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotInfo {
    /// Slot name.
    pub name: String,
    /// physical or logical.
    pub kind: String,
    /// A consumer is connected.
    pub active: bool,
    /// WAL the slot keeps from being recycled.
    pub retained_bytes: i64,
}

/// An open transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenXact {
    /// Backend.
    pub pid: i32,
    /// active, idle in transaction, …
    pub state: String,
    /// Age of the transaction.
    pub age: Duration,
    /// age(backend_xmin), in transactions.
    pub xmin_age: Option<i32>,
    /// Its application_name.
    pub application: String,
    /// Its current or last query.
    pub query: String,
}

/// A concurrent index build in progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexBuild {
    /// `pg_stat_progress_create_index.phase`.
    pub phase: String,
    /// Blocks done / total.
    pub blocks: (i64, i64),
    /// Tuples done / total.
    pub tuples: (i64, i64),
    /// Lockers waited for: done / total.
    pub lockers: (i64, i64),
}

/// The table being rewritten.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableStats {
    /// The table.
    pub table: String,
    /// Dead tuples.
    pub dead_tuples: i64,
    /// Live tuples.
    pub live_tuples: i64,
    /// Total size with indexes and TOAST (None when it could not be read
    /// without waiting for a lock).
    pub total_bytes: Option<i64>,
}

/// The canary probe's latency distribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProbeStats {
    /// Median over the display window.
    pub p50: Duration,
    /// 95th percentile over the display window (what gentle mode steers by).
    pub p95: Duration,
    /// Slowest in the display window.
    pub max: Duration,
    /// Probes in the display window.
    pub samples: usize,
    /// Probes that failed (timeouts, errors) in the window.
    pub errors: usize,
}

/// Everything one monitor pass saw.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Sequence number (1 = first).
    pub seq: u64,
    /// Wall clock time of the sample.
    #[serde(skip)]
    pub at: SystemTime,
    /// Monotonic time of the sample (for staleness).
    #[serde(skip)]
    pub taken: Instant,
    /// How long the queries took.
    pub cost: Duration,
    /// Connected to a standby.
    pub in_recovery: bool,
    /// On a standby: how far behind its replay is.
    pub own_replay_delay: Option<Duration>,
    /// Sessions waiting for locks.
    pub lock_waits: Vec<LockWait>,
    /// Standbys.
    pub replicas: Vec<ReplicaLag>,
    /// Replication slots.
    pub slots: Vec<SlotInfo>,
    /// Longest open transactions, oldest first.
    pub open_xacts: Vec<OpenXact>,
    /// Client sessions running a query.
    pub active: i64,
    /// Client sessions idle in a transaction.
    pub idle_in_xact: i64,
    /// Commits + rollbacks per second on this database.
    pub tps: f64,
    /// Rollbacks per second on this database.
    pub rollbacks_per_sec: f64,
    /// A concurrent index build of ours.
    pub index_build: Option<IndexBuild>,
    /// The table being migrated.
    pub table: Option<TableStats>,
    /// The canary probe.
    pub probe: Option<ProbeStats>,
    /// A move's subscription, while one runs.
    pub subscription: Option<super::subscription::SubscriptionSample>,
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            seq: 0,
            at: SystemTime::now(),
            taken: Instant::now(),
            cost: Duration::ZERO,
            in_recovery: false,
            own_replay_delay: None,
            lock_waits: Vec::new(),
            replicas: Vec::new(),
            slots: Vec::new(),
            open_xacts: Vec::new(),
            active: 0,
            idle_in_xact: 0,
            tps: 0.0,
            rollbacks_per_sec: 0.0,
            index_build: None,
            table: None,
            probe: None,
            subscription: None,
        }
    }
}

impl Sample {
    /// Sessions blocked behind a migration backend of ours.
    pub fn blocked_behind_us(&self) -> impl Iterator<Item = &LockWait> {
        self.lock_waits.iter().filter(|w| w.behind_us)
    }

    /// The worst replica by replay delay.
    pub fn worst_lag(&self) -> Option<&ReplicaLag> {
        self.replicas.iter().max_by_key(|r| r.replay_lag)
    }

    /// The replica furthest behind in bytes.
    pub fn worst_bytes(&self) -> Option<&ReplicaLag> {
        self.replicas.iter().max_by_key(|r| r.replay_bytes)
    }
}
