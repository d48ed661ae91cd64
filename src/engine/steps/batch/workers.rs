//! A batched step with `workers = N`: the key is cut into disjoint ranges
//! when the step first starts (recorded in the journal and reused on every
//! resume), and each range is walked by its own session, its checkpoint in
//! its own row. One coordinator gives the workers their batches, so the
//! controllers apply to all of them together: one batch-size controller,
//! one pace (the plan's rate limit and gentle mode count every worker's
//! rows), one throttle; a pause or an abort stops them all at batch
//! boundaries (a pause is acknowledged once no batch is in flight).

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::lane::{self, Lane, OurPids, shares};
use super::reports::{Done, Tally, handle, refund};
use super::throttled::{batch_target, hold_while_throttled, publish, repace, retune, steer};
use super::{Ctx, DEFAULT_BATCH, StepError};
use crate::db::DbError;
use crate::engine::events::EventKind;
use crate::engine::progress::RateWindow;
use crate::engine::steps::vacuum_behind::VacuumBehind;
use crate::engine::throttle::{BatchSizer, Gentle};
use crate::journal::ranges::{self, RangeRow};
use crate::statements::batch::{BatchJob, KeyInfo, Work};
use crate::statements::split::{self, KeyRange};

/// The step's ranges: those recorded when it first started, else a new cut
/// (after a single session's last key, if it had one), recorded first.
async fn ranges_of(
    spec: &BatchJob,
    key: &KeyInfo,
    total: Option<i64>,
    ctx: &Ctx<'_>,
) -> Result<Vec<RangeRow>, StepError> {
    let (run, phase, step) = (ctx.run_id, ctx.phase as i32, ctx.step as i32);
    let journal = &ctx.journal_conn.client;
    let recorded = ranges::read(journal, run, phase, step)
        .await
        .map_err(|e| ctx.db_error(e))?;
    if !recorded.is_empty() {
        if recorded.len() as u32 != spec.workers {
            ctx.out.emit(EventKind::Notice {
                message: format!(
                    "{}: continuing with the {} key ranges recorded when the step started \
                     (the plan now says workers = {}); the split never changes mid-step",
                    ctx.name,
                    recorded.len(),
                    spec.workers
                ),
            });
        }
        return Ok(recorded);
    }
    let start = ctx.journal.and_then(|j| j.last_key.clone());
    let sql = split::split_sql(spec, key);
    let fractions = split::fractions(spec.workers);
    let mut percent = split::sample_percent(total);
    let bounds = loop {
        let row = ctx
            .conn
            .client
            .query_one(&sql, &[&fractions, &percent, &start])
            .await
            .map_err(|e| {
                ctx.db_error(DbError::sql(
                    format!(
                        "sampling {} to cut its key into ranges (step `workers`)",
                        spec.table
                    ),
                    e,
                ))
            })?;
        let bounds: Vec<String> = row
            .get::<_, Option<Vec<Option<String>>>>(0)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect();
        // A sample of too few pages can miss the quantiles: all of it then.
        if bounds.len() + 1 >= spec.workers as usize || percent >= 100.0 {
            break bounds;
        }
        percent = 100.0;
    };
    let cut: Vec<KeyRange> = split::ranges(start, &bounds);
    ranges::record(journal, run, phase, step, &cut)
        .await
        .map_err(|e| ctx.db_error(e))?;
    let at: Vec<&str> = bounds.iter().map(String::as_str).collect();
    ctx.out.emit(EventKind::Notice {
        message: format!(
            "{}: {} workers on {} key ranges, cut at {} = {}",
            ctx.name,
            cut.len(),
            cut.len(),
            spec.key,
            if at.is_empty() {
                "(nothing: one range)".into()
            } else {
                at.join(", ")
            }
        ),
    });
    ranges::read(journal, run, phase, step)
        .await
        .map_err(|e| ctx.db_error(e))
}

/// Runs the step's batches on its workers until every range is exhausted.
pub(super) async fn run(
    spec: &BatchJob,
    key: &KeyInfo,
    total: Option<i64>,
    ctx: &mut Ctx<'_>,
) -> Result<String, StepError> {
    let rows = ranges_of(spec, key, total, ctx).await?;
    let target = ctx.conn.target().clone();
    let mut pids = OurPids::new(ctx.focus);
    let mut lanes = Vec::with_capacity(rows.len());
    for row in &rows {
        let bounded = row.range.hi.is_some();
        // Not a lost connection to heal by reconnecting the run: the run's
        // own sessions are up, and a server out of connections would refuse
        // every attempt the same way.
        let conn = lane::open(&target, ctx.plan, spec, key, bounded)
            .await
            .map_err(|e| {
                StepError::Failed(format!(
                    "opening the session of worker {} of {}: {e}. Each worker needs a connection \
                     of its own: lower the step's `workers`, or free connections on the server \
                     (max_connections); `cutover run` resumes from every worker's checkpoint",
                    row.worker,
                    rows.len()
                ))
            })?;
        pids.swap(None, conn.conn.pid());
        lanes.push(Lane::new(row, conn));
    }
    let mut set = JoinSet::new();
    let result = drive(spec, key, total, ctx, &mut lanes, &mut pids, &mut set).await;
    // Whatever ended the step, no batch outlives it: an abort cancelled
    // them; a detach or failure lets the ones in flight commit or roll back.
    while set.join_next().await.is_some() {}
    ctx.out.progress(|p| p.batch = None);
    result
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    spec: &BatchJob,
    key: &KeyInfo,
    total: Option<i64>,
    ctx: &mut Ctx<'_>,
    lanes: &mut [Lane],
    pids: &mut OurPids,
    set: &mut JoinSet<Done>,
) -> Result<String, StepError> {
    let (mut rows_done, mut rows_updated) = ctx
        .journal
        .map_or((0, 0), |j| (j.rows_done, j.rows_updated));
    let ids = (ctx.run_id, ctx.phase as i32, ctx.step as i32);
    let mut vacuum = match spec.work {
        Work::Update { .. } if spec.vacuum_behind && ctx.plan.throttle.paces() => {
            VacuumBehind::start(ctx, &spec.table, rows_updated).await
        }
        _ => None,
    };
    let mut throttle = ctx.control.throttle(&ctx.plan.throttle);
    let mut live_seen = ctx.control.live_version();
    let mut sizer = BatchSizer::new(
        spec.batch_size.unwrap_or(DEFAULT_BATCH),
        batch_target(&throttle, ctx.plan.settings.max_stall),
        throttle.min_batch_size,
        throttle.max_batch_size,
    );
    let _focus = super::session::FocusOn::new(ctx, &spec.table, &spec.key);
    let mut gentle = throttle.probe_latency.map(|t| Gentle::new(t.0));
    let mut gentle_seq = 0;
    let mut samples = ctx.monitor.clone();
    let mut listening = true;
    let mut limit = repace(ctx, &throttle, None, &mut sizer, lanes.len());
    // The earliest the next batch may start at the pace limit: every
    // batch given out moves it on by its rows at the allowed rate.
    let mut pace_at = Instant::now();
    let mut held: Option<Instant> = None;
    let mut rate = RateWindow::new(Duration::from_secs(10));
    rate.record(Instant::now(), rows_done);
    let mut batches = 0u64;
    let mut turn = 0usize;
    let mut last_elapsed = Duration::ZERO;
    let cancel = ctx.control.abort.token().clone();
    let show = |ctx: &Ctx<'_>, lanes: &[Lane], d, u, r: &RateWindow, s: &BatchSizer, e, b| {
        publish(ctx, spec, total, d, u, r, s, e, b);
        let fractions = shares(lanes, total);
        ctx.out.progress(|p| {
            if let Some(batch) = p.batch.as_mut() {
                batch.workers = fractions;
            }
        });
    };
    show(
        ctx,
        lanes,
        rows_done,
        rows_updated,
        &rate,
        &sizer,
        last_elapsed,
        batches,
    );
    loop {
        ctx.control.drain(ctx.out);
        let c = &ctx.control;
        if c.paused || c.detach || c.abort.is_aborted() {
            // Stop giving out batches; once none is in flight, hold (or stop).
            if let Some(done) = set.join_next().await {
                let done =
                    done.map_err(|e| StepError::Failed(format!("a worker's task ended: {e}")))?;
                handle(
                    done,
                    spec,
                    key,
                    ctx,
                    lanes,
                    pids,
                    set,
                    &mut Tally {
                        rows_done: &mut rows_done,
                        rows_updated: &mut rows_updated,
                        batches: &mut batches,
                        elapsed: &mut last_elapsed,
                        rate: &mut rate,
                        sizer: &mut sizer,
                    },
                )
                .await?;
                show(
                    ctx,
                    lanes,
                    rows_done,
                    rows_updated,
                    &rate,
                    &sizer,
                    last_elapsed,
                    batches,
                );
                continue;
            }
            if ctx.control.paused {
                ctx.out.emit(EventKind::Notice {
                    message: format!(
                        "{}: all {} workers stopped at a batch boundary",
                        ctx.name,
                        lanes.len()
                    ),
                });
            }
            ctx.control.safe_point(ctx.out).await?;
            continue;
        }
        hold_while_throttled(ctx, &mut held).await?;
        if retune(ctx, &mut throttle, &mut live_seen, &mut sizer, &mut gentle) {
            limit = repace(ctx, &throttle, gentle.as_ref(), &mut sizer, lanes.len());
        }
        let now = Instant::now();
        // Lanes take turns: under a pace the first idle lane would
        // otherwise get every slot and walk its range alone.
        let (n, first) = (lanes.len(), turn);
        for i in (0..n).map(|k| (first + k) % n) {
            let l = &mut lanes[i];
            if !l.idle(now) || (limit.is_some() && pace_at > now) {
                continue;
            }
            let size = sizer.size_with(ctx.control.batch_override) as i64;
            if let Some(r) = limit {
                pace_at = pace_at.max(now) + Duration::from_secs_f64(size as f64 / r);
            }
            turn = (i + 1) % n;
            l.asked = size;
            let Some(lc) = &l.conn else { continue };
            let conn = lc.conn.clone();
            let statements = if l.last_key.is_some() {
                lc.next.clone()
            } else {
                lc.first.clone()
            };
            let (last_key, worker, cancel) = (l.last_key.clone(), l.worker.clone(), cancel.clone());
            let table = spec.table.clone();
            l.busy = true;
            set.spawn(async move {
                let t0 = Instant::now();
                let batch = super::transaction::one_batch(
                    &conn.client,
                    &statements,
                    size,
                    ids,
                    &last_key,
                    Some(&worker),
                );
                let r = conn
                    .cancellable(batch, &cancel, || {
                        format!(
                            "worker {}'s batch on {table} after key {}",
                            worker.id,
                            last_key.as_deref().unwrap_or("-")
                        )
                    })
                    .await;
                Done::Batch(i, t0, r)
            });
        }
        if set.is_empty() && lanes.iter().all(|l| l.finished) {
            break;
        }
        // Wake for the first of: a batch ending, the pace or a backoff
        // letting the next start, the abort, or a look at the inbox.
        let mut wake = now + Duration::from_millis(200);
        if lanes.iter().any(|l| l.idle(now)) && limit.is_some() {
            wake = wake.min(pace_at);
        }
        for l in lanes
            .iter()
            .filter(|l| !l.busy && !l.finished && l.not_before > now)
        {
            wake = wake.min(l.not_before);
        }
        tokio::select! {
            done = set.join_next(), if !set.is_empty() => {
                let Some(done) = done else { continue };
                let done = done.map_err(|e| StepError::Failed(format!("a worker's task ended: {e}")))?;
                if let Some(r) = limit {
                    pace_at = refund(pace_at, &done, lanes, r);
                }
                let ended = handle(done, spec, key, ctx, lanes, pids, set, &mut Tally {
                    rows_done: &mut rows_done,
                    rows_updated: &mut rows_updated,
                    batches: &mut batches,
                    elapsed: &mut last_elapsed,
                    rate: &mut rate,
                    sizer: &mut sizer,
                })
                .await?;
                if let Some(batch_rate) = ended {
                    if let Some(g) = gentle.as_mut() {
                        // The workers together can move this many times one
                        // batch's rate.
                        g.start_from(batch_rate * lanes.len() as f64);
                        steer(ctx, g, &mut gentle_seq, rate.rate());
                    }
                    limit = repace(ctx, &throttle, gentle.as_ref(), &mut sizer, lanes.len());
                    show(ctx, lanes, rows_done, rows_updated, &rate, &sizer, last_elapsed, batches);
                    if let Some(v) = vacuum.as_mut()
                        && let Err(e) = v.tick(rows_updated).await
                    {
                        ctx.out.emit(EventKind::Notice {
                            message: format!("vacuum behind the backfill stopped: {e}; the backfill goes on — VACUUM the table afterwards"),
                        });
                        vacuum = None;
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = cancel.cancelled() => {}
            changed = samples.changed(), if gentle.is_some() && listening => {
                listening = changed.is_ok();
                if let Some(g) = gentle.as_mut() {
                    steer(ctx, g, &mut gentle_seq, rate.rate());
                    limit = repace(ctx, &throttle, Some(g), &mut sizer, lanes.len());
                }
            }
        }
    }
    if let Some(mut v) = vacuum
        && let Err(e) = v.finish().await
    {
        ctx.out.emit(EventKind::Notice {
            message: format!("the last vacuum behind the backfill failed: {e}"),
        });
    }
    Ok(format!(
        "{rows_updated} rows {} ({rows_done} keys in {batches} batches by {} workers this session)",
        spec.work.verb(),
        lanes.len()
    ))
}
