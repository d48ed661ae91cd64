//! What a worker reports back to the coordinator of a step run with
//! `workers = N`, and how each report moves the step on: a committed batch
//! to the totals and controllers, an exhausted range, a checkpoint moved by
//! an earlier session, a held row (retried after a backoff), a lost session
//! (opened again, alone).

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::lane::{self, Lane, LaneConn, OurPids};
use super::transaction::BatchResult;
use super::{Ctx, StepError};
use crate::db::DbError;
use crate::engine::events::EventKind;
use crate::engine::progress::RateWindow;
use crate::engine::throttle::BatchSizer;
use crate::journal::ranges;
use crate::statements::batch::{BatchJob, KeyInfo};

/// What a worker's task reports back.
pub(super) enum Done {
    /// A batch ended: the worker, when it started, how it ended.
    Batch(usize, Instant, Result<BatchResult, DbError>),
    /// A dropped session was opened again (or could not be).
    Reopened(usize, Result<LaneConn, DbError>),
}

/// The step's running totals, moved on by each batch.
pub(super) struct Tally<'a> {
    pub(super) rows_done: &'a mut i64,
    pub(super) rows_updated: &'a mut i64,
    pub(super) batches: &'a mut u64,
    pub(super) elapsed: &'a mut Duration,
    pub(super) rate: &'a mut RateWindow,
    pub(super) sizer: &'a mut BatchSizer,
}

/// Takes one worker's report into the step; when a batch committed, its
/// rate (keys per second).
#[allow(clippy::too_many_arguments)]
pub(super) async fn handle(
    done: Done,
    spec: &BatchJob,
    key: &KeyInfo,
    ctx: &Ctx<'_>,
    lanes: &mut [Lane],
    pids: &mut OurPids,
    set: &mut JoinSet<Done>,
    t: &mut Tally<'_>,
) -> Result<Option<f64>, StepError> {
    match done {
        Done::Reopened(i, Ok(conn)) => {
            let old = lanes[i].conn.as_ref().map(|c| c.conn.pid());
            pids.swap(old, conn.conn.pid());
            ctx.out.emit(EventKind::Notice {
                message: format!(
                    "{}: worker {} reconnected; it goes on from its checkpoint",
                    ctx.name, lanes[i].worker.id
                ),
            });
            lanes[i].conn = Some(conn);
            lanes[i].busy = false;
            Ok(None)
        }
        Done::Reopened(i, Err(e)) => Err(StepError::Lost(DbError::Lost {
            context: format!("worker {} of {}", lanes[i].worker.id, ctx.name),
            reason: e.to_string(),
        })),
        Done::Batch(i, t0, result) => {
            let l = &mut lanes[i];
            l.busy = false;
            match result {
                Ok(BatchResult::Done { hi, keys, rows }) => {
                    l.last_key = Some(hi);
                    l.rows_done += keys;
                    l.lock_waits = 0;
                    *t.rows_done += keys;
                    *t.rows_updated += rows;
                    *t.batches += 1;
                    *t.elapsed = t0.elapsed();
                    t.rate.record(Instant::now(), *t.rows_done);
                    t.sizer.observe(keys as u64, *t.elapsed);
                    Ok(Some(keys as f64 / t.elapsed.as_secs_f64().max(1e-6)))
                }
                Ok(BatchResult::Exhausted) => {
                    l.finished = true;
                    Ok(None)
                }
                Ok(BatchResult::Stale) => {
                    // An earlier session's batch of this worker committed after
                    // we read its checkpoint: go on from where it got to.
                    let (run, phase, step) = (ctx.run_id, ctx.phase as i32, ctx.step as i32);
                    let client = &ctx.journal_conn.client;
                    if let Some(row) = ranges::read_one(client, run, phase, step, l.worker.id)
                        .await
                        .map_err(|e| ctx.db_error(e))?
                    {
                        *t.rows_done += row.rows_done - l.rows_done;
                        l.last_key = row.last_key;
                        l.rows_done = row.rows_done;
                        ctx.out.emit(EventKind::Notice {
                            message: format!(
                                "worker {}'s checkpoint moved under it (an earlier session's last batch committed); continuing after key {}",
                                l.worker.id,
                                l.last_key.as_deref().unwrap_or("-")
                            ),
                        });
                    }
                    Ok(None)
                }
                Err(e)
                    if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) =>
                {
                    l.lock_waits += 1;
                    ctx.counters
                        .lock_timeouts
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let of = ctx.plan.settings.batch_lock_retries;
                    if l.lock_waits > of {
                        return Err(StepError::Failed(format!(
                            "{e}; {of} batches of worker {} in a row waited batch_lock_timeout ({}) for rows another \
                             session holds. Find the session holding them (the Locks pane, pg_locks), or raise \
                             [settings] batch_lock_timeout / batch_lock_retries; `cutover run` resumes from the \
                             last committed batches",
                            l.worker.id, ctx.plan.settings.batch_lock_timeout
                        )));
                    }
                    let wait = ctx.policy.backoff(l.lock_waits.min(8));
                    l.not_before = Instant::now() + wait;
                    ctx.out.emit(EventKind::Retry {
                        name: ctx.name.clone(),
                        retry: l.lock_waits,
                        of,
                        wait_ms: wait.as_millis() as u64,
                        reason: format!(
                            "worker {}'s batch waited batch_lock_timeout ({}) for a row another session holds",
                            l.worker.id, ctx.plan.settings.batch_lock_timeout
                        ),
                    });
                    Ok(None)
                }
                Err(e) if e.is_connection_lost() && !ctx.control.abort.is_aborted() => {
                    // This worker's session alone dropped: it reconnects and
                    // goes on from its checkpoint (a batch whose commit was
                    // lost on the way is seen as a moved checkpoint).
                    let reason = l
                        .conn
                        .as_ref()
                        .and_then(|c| c.conn.closed_reason())
                        .unwrap_or_else(|| e.to_string());
                    ctx.out.emit(EventKind::Notice {
                        message: format!(
                            "{}: worker {}'s session was lost ({reason}); reconnecting for at most {}",
                            ctx.name,
                            l.worker.id,
                            crate::engine::events::short_duration(ctx.plan.settings.reconnect_timeout.0)
                        ),
                    });
                    l.busy = true;
                    let reopen = lane::reopen(
                        ctx.conn.target().clone(),
                        ctx.plan.clone(),
                        spec.clone(),
                        key.clone(),
                        l.worker.hi.is_some(),
                        ctx.plan.settings.reconnect_timeout.0,
                        ctx.control.abort.token().clone(),
                    );
                    set.spawn(async move { Done::Reopened(i, reopen.await) });
                    Ok(None)
                }
                Err(e) => Err(ctx.db_error(e)),
            }
        }
    }
}

/// The pace charged a batch the keys it asked for; one that found fewer
/// gives the rest back, as the single session paces by the keys it walked.
/// Else the open-ended range, fed by the application's inserts, would get
/// a few new keys per slot and never find its end.
pub(super) fn refund(pace_at: Instant, done: &Done, lanes: &[Lane], rate: f64) -> Instant {
    let Done::Batch(i, _, result) = done else {
        return pace_at;
    };
    let walked = match result {
        Ok(BatchResult::Done { keys, .. }) => *keys,
        Ok(BatchResult::Exhausted) => 0,
        _ => return pace_at,
    };
    let unused = (lanes[*i].asked - walked).max(0) as f64;
    pace_at
        .checked_sub(Duration::from_secs_f64(unused / rate))
        .unwrap_or(pace_at)
}
