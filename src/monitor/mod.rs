//! Samplers on their own connections: lock waits, replication, activity,
//! the migrated table, and a canary probe. About once a second the monitor
//! publishes an owned [`MonitorState`] on a `watch` channel. No ratatui here.

pub mod activity;
pub mod history;
pub mod locks;
pub mod probe;
pub mod replication;
pub mod sample;
pub mod subscription;
pub mod table;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::Statement;

use crate::db::{Conn, DbError, Target};
use history::History;
use probe::ProbeWindow;
use sample::Sample;

/// How often the monitor samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What the monitor should look at, set by the engine as it goes.
#[derive(Debug, Clone, Default)]
pub struct Focus {
    /// The migration's own backends.
    pub ours: Vec<i32>,
    /// The table being migrated (probe and table stats).
    pub table: Option<String>,
    /// Its key (for the probe's point reads).
    pub key: Option<String>,
    /// Replicas the operator released from the limits after they were lost.
    pub released: Vec<String>,
    /// What the probe reads when no batched step points it anywhere (at a
    /// gate, between steps): the plan's main table and its key.
    pub resting: Option<(String, String)>,
    /// A move's subscription on another database, while one runs.
    pub subscription: Option<subscription::SubscriptionFocus>,
}

/// The latest sample and the history behind it.
#[derive(Debug, Clone, Default)]
pub struct MonitorState {
    /// The newest sample (seq 0 = none yet).
    pub sample: Sample,
    /// The last minutes, for charts.
    pub history: History,
}

/// Stops the monitor's tasks when dropped.
pub struct MonitorHandle {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the sampler and the probe.
pub fn spawn(
    target: Target,
    focus: Arc<Mutex<Focus>>,
    publish: watch::Sender<Arc<MonitorState>>,
) -> MonitorHandle {
    let window = Arc::new(Mutex::new(ProbeWindow::default()));
    let probe = tokio::spawn(probe::run(target.clone(), focus.clone(), window.clone()));
    let sampler = tokio::spawn(sample_loop(target, focus, window, publish));
    MonitorHandle {
        tasks: vec![sampler, probe],
    }
}

/// The monitor's statements, prepared once per connection.
struct Prepared {
    recovery: Statement,
    locks: Statement,
    replicas: Statement,
    slots: Statement,
    xacts: Statement,
    counts: Statement,
    index: Statement,
    table: Statement,
    size: Statement,
}

/// Per-connection memory of the sampler.
#[derive(Default)]
pub struct Sampler {
    seq: u64,
    rates: activity::Rates,
    replay: replication::ReplayTracker,
    prepared: Option<Prepared>,
}

impl Sampler {
    async fn prepare(conn: &Conn) -> Result<Prepared, DbError> {
        let version = conn.server_version_num() as i32;
        let c = &conn.client;
        let ctx = |e| DbError::sql("preparing the monitor's queries", e);
        let replicas = replication::sql(replication::REPLICAS);
        let slots = replication::sql(replication::SLOTS);
        let recovery = replication::sql(replication::RECOVERY);
        let (recovery, locks, replicas, slots, xacts, counts, index, table, size) =
            tokio::try_join!(
                c.prepare(&recovery),
                c.prepare(locks::sql(version)),
                c.prepare(&replicas),
                c.prepare(&slots),
                c.prepare(activity::OPEN_XACTS),
                c.prepare(activity::COUNTS),
                c.prepare(table::INDEX_PROGRESS),
                c.prepare(table::TABLE_STATS),
                c.prepare(table::TABLE_SIZE),
            )
            .map_err(ctx)?;
        Ok(Prepared {
            recovery,
            locks,
            replicas,
            slots,
            xacts,
            counts,
            index,
            table,
            size,
        })
    }

    /// Takes one sample: every query goes out at once, pipelined on the
    /// one connection, so a sample costs about one round trip.
    pub async fn sample(&mut self, conn: &Conn, focus: &Focus) -> Result<Sample, DbError> {
        let started = Instant::now();
        if self.prepared.is_none() {
            self.prepared = Some(Self::prepare(conn).await?);
        }
        let Some(p) = self.prepared.as_ref() else {
            return Err(DbError::Cancelled);
        };
        let c = &conn.client;
        let table_name = focus.table.as_deref().map(crate::db::quote_qualified);
        let no_table = String::new();
        let name = table_name.as_ref().unwrap_or(&no_table);
        let ctx = |e| DbError::sql("sampling", e);
        let ours = [&focus.ours as &(dyn tokio_postgres::types::ToSql + Sync)];
        let table_param = [name as &(dyn tokio_postgres::types::ToSql + Sync)];
        let (recovery, lock_rows, replica_rows, slot_rows, xact_rows, counts, index, table, size) = tokio::join!(
            c.query_one(&p.recovery, &[]),
            c.query(&p.locks, &[]),
            c.query(&p.replicas, &[]),
            c.query(&p.slots, &[]),
            c.query(&p.xacts, &[]),
            c.query_one(&p.counts, &[]),
            c.query_opt(&p.index, &ours),
            c.query_opt(&p.table, &table_param),
            async {
                if table_name.is_some() {
                    Some(c.query_one(&p.size, &table_param).await)
                } else {
                    None
                }
            },
        );
        let recovery = recovery.map_err(ctx)?;
        let (in_recovery, own_replay_delay) = replication::parse_recovery(&recovery);
        let current_lsn: Option<String> = recovery.get(2);
        let mut replicas =
            replication::parse_replicas(&replica_rows.map_err(ctx)?, &mut self.replay);
        replicas.extend(self.replay.gone(
            &replicas,
            current_lsn.as_deref(),
            &focus.released,
            Instant::now(),
        ));
        let act = activity::parse(
            &xact_rows.map_err(ctx)?,
            &counts.map_err(ctx)?,
            &mut self.rates,
        );
        // The size takes an ACCESS SHARE lock; with the monitor's short
        // lock_timeout it is skipped rather than waited for.
        let size = match size {
            Some(Ok(r)) => r.get::<_, Option<i64>>(0),
            Some(Err(e)) => {
                tracing::debug!("table size skipped: {e}");
                activity::count_own_rollback();
                None
            }
            None => None,
        };
        self.seq += 1;
        Ok(Sample {
            seq: self.seq,
            at: SystemTime::now(),
            taken: Instant::now(),
            cost: started.elapsed(),
            in_recovery,
            own_replay_delay,
            lock_waits: locks::parse(&lock_rows.map_err(ctx)?, &focus.ours),
            replicas,
            slots: replication::parse_slots(&slot_rows.map_err(ctx)?),
            open_xacts: act.open_xacts,
            active: act.active,
            idle_in_xact: act.idle_in_xact,
            tps: act.tps,
            rollbacks_per_sec: act.rollbacks_per_sec,
            index_build: table::parse_index(index.map_err(ctx)?.as_ref()),
            table: focus.table.as_deref().and_then(|t| {
                table::parse_table(t, table.as_ref().ok().and_then(|r| r.as_ref()), size)
            }),
            probe: None,
            subscription: None,
        })
    }
}

async fn sample_loop(
    target: Target,
    focus: Arc<Mutex<Focus>>,
    window: Arc<Mutex<ProbeWindow>>,
    publish: watch::Sender<Arc<MonitorState>>,
) {
    let mut history = History::default();
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<Conn> = None;
    let mut sampler = Sampler::default();
    let mut subscriptions = subscription::SubscriptionSampler::default();
    loop {
        tick.tick().await;
        if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            match Conn::connect(&target).await {
                Ok(c) => {
                    // The monitor must never queue behind a lock (it would
                    // become one more session blocked by the migration).
                    let _ = c
                        .client
                        .batch_execute("SET statement_timeout = '5s'; SET lock_timeout = '100ms'")
                        .await;
                    conn = Some(c);
                    // A new connection re-prepares its statements, but what
                    // was seen (replicas that may since have gone) is kept.
                    sampler = Sampler {
                        seq: sampler.seq,
                        replay: std::mem::take(&mut sampler.replay),
                        ..Sampler::default()
                    };
                }
                Err(e) => {
                    tracing::warn!("monitor cannot connect: {e}");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_ref() else { continue };
        let current = focus.lock().map(|f| f.clone()).unwrap_or_default();
        let mut sample = match sampler.sample(c, &current).await {
            Ok(s) => s,
            Err(e) => {
                // Samples stop arriving; the guard fails closed on staleness.
                tracing::warn!("monitor sample failed: {e}");
                continue;
            }
        };
        if let Some(f) = &current.subscription {
            sample.subscription = Some(subscriptions.sample(c, f).await);
        }
        let now = Instant::now();
        sample.probe = window.lock().ok().and_then(|w| w.stats());
        record(&mut history, &sample, now);
        publish.send_replace(Arc::new(MonitorState {
            sample,
            history: history.clone(),
        }));
    }
}

fn record(history: &mut History, sample: &Sample, now: Instant) {
    let lag = sample
        .worst_lag()
        .map(|r| r.replay_lag)
        .or(sample.own_replay_delay)
        .unwrap_or_default();
    history.lag_seconds.push(now, lag.as_secs_f64());
    history.lag_bytes.push(
        now,
        sample.worst_bytes().map_or(0.0, |r| r.replay_bytes as f64),
    );
    history
        .blocked
        .push(now, sample.blocked_behind_us().count() as f64);
    history.tps.push(now, sample.tps);
    if let Some(p) = &sample.probe {
        history.probe_p95_ms.push(now, p.p95.as_secs_f64() * 1000.0);
    }
}
