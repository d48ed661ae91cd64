//! The batching loop shared by `backfill` (UPDATE) and `copy_rows`
//! (INSERT … SELECT): walk a unique key in ranges; each batch is one
//! transaction — find the range's upper key, do the work, advance the
//! checkpoint — so it commits or rolls back as a whole: a crash can neither
//! skip nor repeat a batch. Throttled on lag, gentle on the probe, paced by
//! dynamic batch sizing.

mod key;
mod lane;
mod reports;
mod session;
mod throttled;
mod transaction;
mod workers;

use std::time::{Duration, Instant};

use super::vacuum_behind::VacuumBehind;
use super::{Ctx, StepError};
use crate::db::DbError;
use crate::engine::events::EventKind;
use crate::engine::progress::RateWindow;
use crate::engine::throttle::{BatchSizer, Gentle};
use crate::statements::batch::{BatchJob, Work, batch_sql};

pub use key::{check_key, estimate_rows};
use session::{FocusOn, bulk_session};
use throttled::{
    batch_target, hold_while_throttled, paced_by_plan, publish, repace, retune, steer,
};
use transaction::{BatchResult, Prepared, one_batch};

/// First batch size when the plan gives none.
pub const DEFAULT_BATCH: u64 = 1000;

/// Runs batches until the key range is exhausted.
pub async fn run(spec: &BatchJob, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let key = check_key(ctx.conn, &spec.table, &spec.key)
        .await
        .map_err(|e| StepError::Failed(format!("{e} (step `table`/`key`)")))?;
    let total = estimate_rows(ctx.conn, &spec.table).await;
    // Several workers, or a step a run with several workers started: the
    // journal's split wins over the plan's number.
    let split = crate::journal::ranges::read(
        &ctx.journal_conn.client,
        ctx.run_id,
        ctx.phase as i32,
        ctx.step as i32,
    )
    .await
    .map_err(|e| ctx.db_error(e))?;
    if spec.workers > 1 || !split.is_empty() {
        return workers::run(spec, &key, total, ctx).await;
    }
    let (mut last_key, mut rows_done, mut rows_updated) = match ctx.journal {
        Some(j) => (j.last_key.clone(), j.rows_done, j.rows_updated),
        None => (None, 0, 0),
    };
    let conn = ctx.conn;
    let prepare_one = async |what: &str, sql: &str| {
        conn.client.prepare(sql).await.map_err(|e| {
            StepError::Failed(
                DbError::sql(
                    format!(
                        "preparing the batch's {what} statement (check the step's `set` and `where`)"
                    ),
                    e,
                )
                .to_string(),
            )
        })
    };
    // The checkpoint statement is the same for the first batch and the
    // rest: prepared once.
    let checkpoint = prepare_one("checkpoint", &batch_sql(spec, &key, false).checkpoint).await?;
    let prepare = async |resume: bool| {
        let sql = batch_sql(spec, &key, resume);
        Ok::<_, StepError>(Prepared {
            range: prepare_one("range", &sql.range).await?,
            work: prepare_one("work", &sql.work).await?,
            checkpoint: checkpoint.clone(),
        })
    };
    let first = prepare(false).await?;
    let next = prepare(true).await?;
    bulk_session(ctx.conn, true).await;
    // Batches have their own lock patience, not the DDL's lock_timeout:
    // a batch that meets an application's row lock waits this long, then
    // is rolled back and tried again.
    crate::db::retry::set_lock_timeout(ctx.conn, ctx.plan.settings.batch_lock_timeout.0)
        .await
        .map_err(|e| ctx.db_error(e))?;
    // Only under a pace: at full speed a pass frees little (the rows are
    // minutes old at most, and replicas' feedback holds back the newest)
    // and competes with the batches for the disk — measured: without it,
    // full speed was faster in four benchmark runs of five.
    let mut vacuum = match spec.work {
        Work::Update { .. } if spec.vacuum_behind && ctx.plan.throttle.paces() => {
            VacuumBehind::start(ctx, &spec.table, rows_updated).await
        }
        _ => None,
    };

    // The plan's `[throttle]` as it stands: `cutover set` may change it.
    let mut throttle = ctx.control.throttle(&ctx.plan.throttle);
    let mut live_seen = ctx.control.live_version();
    let mut sizer = BatchSizer::new(
        spec.batch_size.unwrap_or(DEFAULT_BATCH),
        batch_target(&throttle, ctx.plan.settings.max_stall),
        throttle.min_batch_size,
        throttle.max_batch_size,
    );
    let _focus = FocusOn::new(ctx, &spec.table, &spec.key);
    let mut gentle = throttle.probe_latency.map(|t| Gentle::new(t.0));
    let mut gentle_seq = 0;
    let mut samples = ctx.monitor.clone();
    let mut listening = true;
    // When the last batch started, and its rows: at the pace limit they
    // set when the next may start.
    let mut last_batch: Option<(Instant, f64)> = None;
    // The pace the next batch runs at: the plan's limit until gentle mode
    // has its first batch, then updated after every batch and every probe
    // sample.
    let mut limit = repace(ctx, &throttle, None, &mut sizer, 1);
    let mut held: Option<Instant> = None;
    let started = Instant::now();
    let mut rate = RateWindow::new(Duration::from_secs(10));
    rate.record(started, rows_done);
    let mut batches = 0u64;
    let mut lock_waits = 0u32;
    let (run_id, phase, step) = (ctx.run_id, ctx.phase as i32, ctx.step as i32);
    let cancel = ctx.control.abort.token().clone();
    publish(
        ctx,
        spec,
        total,
        rows_done,
        rows_updated,
        &rate,
        &sizer,
        Duration::ZERO,
        batches,
    );
    loop {
        ctx.control.safe_point(ctx.out).await?;
        hold_while_throttled(ctx, &mut held).await?;
        // Pacing: the previous batch's rows at the allowed rate set when
        // the next may start. Gentle mode keeps steering meanwhile: at a
        // low rate one batch of the smallest size is a pause of seconds,
        // and a ceiling that may rise only after each batch would climb
        // 10 % per pause (measured at 4M rows: from 10 rows/s, one step per
        // 10 s, for minutes after the probe was back at 1 ms).
        while let Some((t0, n)) = last_batch
            && let Some(r) = limit
            && let at = t0 + Duration::from_secs_f64(n / r)
            && at > Instant::now()
        {
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => break,
                _ = cancel.cancelled() => break,
                changed = samples.changed(), if gentle.is_some() && listening => {
                    listening = changed.is_ok();
                }
                // A slow pace is re-timed when the operator changes it.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    ctx.control.drain(ctx.out);
                    if retune(ctx, &mut throttle, &mut live_seen, &mut sizer, &mut gentle) {
                        limit = repace(ctx, &throttle, gentle.as_ref(), &mut sizer, 1);
                    }
                    continue;
                }
            }
            if let Some(g) = gentle.as_mut() {
                steer(ctx, g, &mut gentle_seq, rate.rate());
                limit = repace(ctx, &throttle, Some(g), &mut sizer, 1);
            }
        }
        ctx.control.safe_point(ctx.out).await?;
        if retune(ctx, &mut throttle, &mut live_seen, &mut sizer, &mut gentle) {
            limit = repace(ctx, &throttle, gentle.as_ref(), &mut sizer, 1);
        }
        let size = sizer.size_with(ctx.control.batch_override) as i64;
        let t0 = Instant::now();
        let statements = if last_key.is_some() { &next } else { &first };
        let ids = (run_id, phase, step);
        let outcome = ctx
            .conn
            .cancellable(
                one_batch(&ctx.conn.client, statements, size, ids, &last_key, None),
                &cancel,
                || match &last_key {
                    Some(lo) => format!("backfill batch on {} after key {lo}", spec.table),
                    None => format!("backfill batch on {}", spec.table),
                },
            )
            .await;
        let outcome = match outcome {
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                // A row the application holds: the batch waited its own
                // patience, rolled back, and is tried again — never fatal on
                // the first wait.
                lock_waits += 1;
                ctx.counters
                    .lock_timeouts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let of = ctx.plan.settings.batch_lock_retries;
                if lock_waits > of {
                    return Err(StepError::Failed(format!(
                        "{e}; {of} batches in a row waited batch_lock_timeout ({}) for rows another \
                         session holds. Find the session holding them (the Locks pane, pg_locks), \
                         or raise [settings] batch_lock_timeout / batch_lock_retries; `cutover run` \
                         resumes from the last committed batch",
                        ctx.plan.settings.batch_lock_timeout
                    )));
                }
                let wait = ctx.policy.backoff(lock_waits.min(8));
                ctx.out.emit(EventKind::Retry {
                    name: ctx.name.clone(),
                    retry: lock_waits,
                    of,
                    wait_ms: wait.as_millis() as u64,
                    reason: format!(
                        "a batch waited batch_lock_timeout ({}) for a row another session holds",
                        ctx.plan.settings.batch_lock_timeout
                    ),
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => {}
                }
                continue;
            }
            other => other.map_err(|e| ctx.db_error(e))?,
        };
        lock_waits = 0;
        let (hi, n, updated) = match outcome {
            BatchResult::Done { hi, keys, rows } => (hi, keys, rows),
            BatchResult::Exhausted => break,
            BatchResult::Stale => {
                // Another session moved the checkpoint (a killed cutover's
                // last batch committed after we read it): continue from
                // there.
                let fresh = crate::journal::steps(&ctx.conn.client, run_id)
                    .await
                    .map_err(|e| ctx.db_error(e))?
                    .into_iter()
                    .find(|r| r.phase == phase && r.step == step);
                if let Some(fresh) = fresh {
                    ctx.out.emit(crate::engine::events::EventKind::Notice {
                        message: format!(
                            "the checkpoint moved under us (an earlier session's last batch committed); \
                             continuing after key {}",
                            fresh.last_key.as_deref().unwrap_or("-")
                        ),
                    });
                    last_key = fresh.last_key;
                    rows_done = fresh.rows_done;
                    rows_updated = fresh.rows_updated;
                }
                continue;
            }
        };
        let elapsed = t0.elapsed();
        last_key = Some(hi);
        rows_done += n;
        rows_updated += updated;
        batches += 1;
        rate.record(Instant::now(), rows_done);
        sizer.observe(n as u64, elapsed);
        if let Some(g) = gentle.as_mut() {
            g.start_from(n as f64 / elapsed.as_secs_f64().max(1e-6));
            steer(ctx, g, &mut gentle_seq, rate.rate());
        } else if let Some(r) = throttle.max_rows_per_second {
            ctx.out.progress(|p| p.throttle = Some(paced_by_plan(r)));
        }
        limit = repace(ctx, &throttle, gentle.as_ref(), &mut sizer, 1);
        last_batch = Some((t0, n as f64));
        publish(
            ctx,
            spec,
            total,
            rows_done,
            rows_updated,
            &rate,
            &sizer,
            elapsed,
            batches,
        );
        if let Some(v) = vacuum.as_mut()
            && let Err(e) = v.tick(rows_updated).await
        {
            ctx.out.emit(EventKind::Notice {
                message: format!(
                    "vacuum behind the backfill stopped: {e}; the backfill goes on, and the table \
                     grows by the rows it rewrites from here — VACUUM it afterwards"
                ),
            });
            vacuum = None;
        }
    }
    ctx.out.progress(|p| p.batch = None);
    bulk_session(ctx.conn, false).await;
    let mut vacuumed = String::new();
    if let Some(mut v) = vacuum {
        if let Err(e) = v.finish().await {
            ctx.out.emit(EventKind::Notice {
                message: format!("the last vacuum behind the backfill failed: {e}"),
            });
        }
        if v.passes > 0 {
            vacuumed = format!(
                "; {} vacuum passes behind it took {:.1}s",
                v.passes,
                v.took.as_secs_f64()
            );
        }
    }
    Ok(format!(
        "{rows_updated} rows {} ({rows_done} keys in {batches} batches this session{vacuumed})",
        spec.work.verb()
    ))
}
