//! Samplers on their own connections: lock waits, replication, activity,
//! the migrated table, and a canary probe. About once a second the monitor
//! publishes an owned [`MonitorState`] on a `watch` channel. No ratatui here.

pub mod activity;
pub mod history;
pub mod locks;
pub mod probe;
pub mod replication;
pub mod sample;
pub mod table;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

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

/// Per-connection memory of the sampler.
#[derive(Default)]
pub struct Sampler {
    seq: u64,
    rates: activity::Rates,
    replay: replication::ReplayTracker,
    version: i32,
}

impl Sampler {
    /// Takes one sample.
    pub async fn sample(&mut self, conn: &Conn, focus: &Focus) -> Result<Sample, DbError> {
        let started = Instant::now();
        if self.version == 0 {
            self.version = conn
                .client
                .query_one("SHOW server_version_num", &[])
                .await
                .map_err(|e| DbError::sql("reading server_version_num", e))?
                .get::<_, String>(0)
                .parse()
                .unwrap_or(0);
        }
        let in_recovery: bool = conn
            .client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(|e| DbError::sql("sampling recovery state", e))?
            .get(0);
        let lock_waits = locks::sample(conn, self.version, &focus.ours).await?;
        let (replicas, slots, own_replay_delay) = if in_recovery {
            (
                Vec::new(),
                Vec::new(),
                Some(replication::own_delay(conn).await?),
            )
        } else {
            (
                replication::replicas(conn, &mut self.replay).await?,
                replication::slots(conn).await?,
                None,
            )
        };
        let act = activity::sample(conn, &mut self.rates).await?;
        let index_build = if focus.ours.is_empty() {
            None
        } else {
            table::index_build(conn, &focus.ours).await?
        };
        let table = match &focus.table {
            Some(t) => table::stats(conn, t).await?,
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
            lock_waits,
            replicas,
            slots,
            open_xacts: act.open_xacts,
            active: act.active,
            idle_in_xact: act.idle_in_xact,
            tps: act.tps,
            rollbacks_per_sec: act.rollbacks_per_sec,
            index_build,
            table,
            probe: None,
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
    loop {
        tick.tick().await;
        if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            match Conn::connect(&target).await {
                Ok(c) => {
                    let _ = c.client.batch_execute("SET statement_timeout = '5s'").await;
                    conn = Some(c);
                    sampler = Sampler {
                        seq: sampler.seq,
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
        let now = Instant::now();
        sample.probe = window.lock().ok().and_then(|w| w.stats(now));
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
