//! One worker of a batched step run with `workers = N`: its key range and
//! checkpoint, and its own session, opened like the migration session
//! (statement timeout, bulk settings, the batches' lock patience) and
//! opened again when it drops.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::session::bulk_session;
use super::transaction::{Prepared, Worker};
use crate::db::{Conn, DbError, Target};
use crate::journal::ranges::RangeRow;
use crate::plan::Plan;
use crate::statements::batch::{BatchJob, KeyInfo, worker_batch_sql};

/// A worker's session with its statements prepared.
pub(super) struct LaneConn {
    pub(super) conn: Arc<Conn>,
    /// The statements of a batch from the start of the key (worker 0's
    /// first batch only).
    pub(super) first: Prepared,
    /// The statements of a batch after a last key done.
    pub(super) next: Prepared,
}

/// A worker: where it stands, and its session (None while it reconnects).
pub(super) struct Lane {
    pub(super) worker: Worker,
    pub(super) last_key: Option<String>,
    /// Keys it walked since its range was recorded.
    pub(super) rows_done: i64,
    pub(super) conn: Option<LaneConn>,
    pub(super) busy: bool,
    pub(super) finished: bool,
    /// A batch that met a held row waits its backoff before the next.
    pub(super) not_before: Instant,
    pub(super) lock_waits: u32,
    /// The keys its last batch was given (charged to the pace).
    pub(super) asked: i64,
}

impl Lane {
    /// A worker for a recorded range, with its session.
    pub(super) fn new(row: &RangeRow, conn: LaneConn) -> Lane {
        Lane {
            worker: Worker {
                id: row.worker,
                hi: row.range.hi.clone(),
            },
            last_key: row.last_key.clone(),
            rows_done: row.rows_done,
            conn: Some(conn),
            busy: false,
            finished: false,
            not_before: Instant::now(),
            lock_waits: 0,
            asked: 0,
        }
    }

    /// Ready to be given a batch.
    pub(super) fn idle(&self, now: Instant) -> bool {
        !self.busy && !self.finished && self.conn.is_some() && self.not_before <= now
    }
}

/// Opens a worker's session on `target` and prepares its batch.
pub(super) async fn open(
    target: &Target,
    plan: &Plan,
    spec: &BatchJob,
    key: &KeyInfo,
    bounded: bool,
) -> Result<LaneConn, DbError> {
    let conn = Conn::connect(target).await?;
    crate::db::retry::set_statement_timeout(&conn, plan.settings.statement_timeout.0).await?;
    bulk_session(&conn, true).await;
    crate::db::retry::set_lock_timeout(&conn, plan.settings.batch_lock_timeout.0).await?;
    let prepare = async |resume: bool| {
        let sql = worker_batch_sql(spec, key, resume, bounded);
        let one = async |what: &str, text: &str| {
            conn.client.prepare(text).await.map_err(|e| {
                DbError::sql(
                    format!(
                        "preparing a worker's batch {what} statement (check the step's `set` and `where`)"
                    ),
                    e,
                )
            })
        };
        Ok::<_, DbError>(Prepared {
            range: one("range", &sql.range).await?,
            work: one("work", &sql.work).await?,
            checkpoint: one("checkpoint", &sql.checkpoint).await?,
        })
    };
    let first = prepare(false).await?;
    let next = prepare(true).await?;
    Ok(LaneConn {
        conn: Arc::new(conn),
        first,
        next,
    })
}

/// Opens a worker's session again after it dropped, with backoff, for at
/// most `bound`; gives up early when `cancel` fires.
pub(super) async fn reopen(
    target: Target,
    plan: Plan,
    spec: BatchJob,
    key: KeyInfo,
    bounded: bool,
    bound: Duration,
    cancel: CancellationToken,
) -> Result<LaneConn, DbError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(250);
    loop {
        match open(&target, &plan, &spec, &key, bounded).await {
            Ok(lane) => return Ok(lane),
            Err(e) => {
                let left = bound.saturating_sub(started.elapsed());
                if left.is_zero() || cancel.is_cancelled() {
                    return Err(e);
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait.min(left)) => {}
                    _ = cancel.cancelled() => return Err(e),
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The workers' backends among the run's own for as long as the step runs
/// (the monitor counts sessions blocked behind them, the Locks pane marks
/// them ours).
pub(super) struct OurPids {
    focus: Arc<Mutex<crate::monitor::Focus>>,
    pids: Vec<i32>,
}

impl OurPids {
    /// Nothing added yet.
    pub(super) fn new(focus: &Arc<Mutex<crate::monitor::Focus>>) -> OurPids {
        OurPids {
            focus: focus.clone(),
            pids: Vec::new(),
        }
    }

    /// Adds a worker's backend (replacing `old`, a session that dropped).
    pub(super) fn swap(&mut self, old: Option<i32>, new: i32) {
        if let Ok(mut f) = self.focus.lock() {
            if let Some(old) = old {
                f.ours.retain(|p| *p != old);
                self.pids.retain(|p| *p != old);
            }
            f.ours.push(new);
            self.pids.push(new);
        }
    }
}

impl Drop for OurPids {
    fn drop(&mut self) {
        if let Ok(mut f) = self.focus.lock() {
            f.ours.retain(|p| !self.pids.contains(p));
        }
    }
}

/// Each worker's share done, 0 to 1, for the cockpit's divided bar: its keys
/// walked against an equal share of the estimated total (the ranges are cut
/// at quantiles), 1 once its range is exhausted.
pub(super) fn shares(lanes: &[Lane], total: Option<i64>) -> Vec<f64> {
    let share = total.map(|t| t as f64 / lanes.len().max(1) as f64);
    lanes
        .iter()
        .map(|l| match (l.finished, share) {
            (true, _) => 1.0,
            (false, Some(s)) if s > 0.0 => (l.rows_done as f64 / s).clamp(0.0, 1.0),
            _ => 0.0,
        })
        .collect()
}
