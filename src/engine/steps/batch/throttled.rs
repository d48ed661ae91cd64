//! The throttle controllers applied to the batch loop: hold on lag or a
//! silent monitor, steer gentle mode by the probe, and publish progress.

use std::time::{Duration, Instant};

use super::{BatchJob, Ctx, StepError};
use crate::engine::events::EventKind;
use crate::engine::progress::{BatchProgress, RateWindow};
use crate::engine::throttle::{BatchSizer, Gentle, hold_reason, pace_limit, stall_duty};

/// Holds batches while a replica or slot is over the `[throttle]` limits
/// or the monitor is silent, saying why; honours pause and abort meanwhile.
pub(super) async fn hold_while_throttled(
    ctx: &mut Ctx<'_>,
    held: &mut Option<Instant>,
) -> Result<(), StepError> {
    loop {
        let state = ctx.monitor.borrow().clone();
        let silent = if state.sample.seq == 0 {
            ctx.monitor_started.elapsed()
        } else {
            state.sample.taken.elapsed()
        };
        let throttle = ctx.control.throttle(&ctx.plan.throttle);
        let abort = ctx.control.abort_limits(&ctx.plan.abort);
        let budget = ctx.plan.settings.max_stall.map(|b| b.0);
        match hold_reason(&throttle, &abort, budget, &state.sample, silent) {
            None => {
                if let Some(since) = held.take() {
                    ctx.out.emit(EventKind::Unthrottled {
                        held_ms: since.elapsed().as_millis() as u64,
                    });
                    ctx.out.progress(|p| p.throttle = None);
                }
                return Ok(());
            }
            Some(reason) => {
                if held.is_none() {
                    *held = Some(Instant::now());
                    ctx.out.emit(EventKind::Throttled {
                        reason: reason.clone(),
                    });
                }
                ctx.out.progress(|p| p.throttle = Some(reason));
                let cancel = ctx.control.abort.token().clone();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = cancel.cancelled() => {}
                }
                ctx.control.safe_point(ctx.out).await?;
            }
        }
    }
}

/// The pace the next batch runs at, which also caps the batch size: the
/// plan's `max_rows_per_second`, gentle mode's ceiling and, under
/// `max_stall`, half the speed `lanes` sessions' batches show. Says so when
/// the stall budget is what paces.
pub(super) fn repace(
    ctx: &Ctx<'_>,
    throttle: &crate::plan::model::Throttle,
    gentle: Option<&Gentle>,
    sizer: &mut BatchSizer,
    lanes: usize,
) -> Option<f64> {
    let ceiling = gentle.and_then(Gentle::ceiling);
    let duty = stall_duty(ctx.plan.settings.max_stall.is_some(), sizer.rate(), lanes);
    let limit = pace_limit(throttle.max_rows_per_second, ceiling, duty);
    sizer.pace(limit);
    if let Some(d) = duty
        && limit == Some(d)
    {
        ctx.out.progress(|p| {
            p.throttle = Some(format!(
                "paced: ≤ {d:.0} rows/s, half the batches' speed (max_stall)"
            ))
        });
    }
    limit
}

/// Why batches are paced by the plan's rate limit.
pub(super) fn paced_by_plan(rows_per_second: u64) -> String {
    format!("paced: ≤ {rows_per_second} rows/s (max_rows_per_second)")
}

/// Gentle mode learns from the monitor's newest probe sample, if it has
/// not seen it yet (about one a second), given the rows/s achieved
/// recently, and shows what paces the batches.
pub(super) fn steer(ctx: &Ctx<'_>, g: &mut Gentle, seen: &mut u64, achieved: f64) {
    // Only the two values, not a copy of the whole sample: this runs
    // after every batch.
    let (seq, p95) = {
        let state = ctx.monitor.borrow();
        (state.sample.seq, state.sample.probe.as_ref().map(|p| p.p95))
    };
    let Some(p95) = p95 else {
        return;
    };
    if seq == *seen {
        return;
    }
    *seen = seq;
    g.observe(p95, achieved, Instant::now());
    let reason = match ctx.control.throttle(&ctx.plan.throttle).max_rows_per_second {
        Some(r) if g.ceiling().is_some_and(|c| (r as f64) < c) => Some(paced_by_plan(r)),
        _ => g.reason(p95),
    };
    ctx.out.progress(|p| p.throttle = reason);
}

#[allow(clippy::too_many_arguments)]
pub(super) fn publish(
    ctx: &Ctx<'_>,
    spec: &BatchJob,
    total: Option<i64>,
    rows_done: i64,
    rows_updated: i64,
    rate: &RateWindow,
    sizer: &BatchSizer,
    last_batch: Duration,
    batches: u64,
) {
    let per_sec = rate.rate();
    let eta = total.and_then(|t| {
        let left = (t - rows_done).max(0) as f64;
        (per_sec > 0.0).then(|| Duration::from_secs_f64(left / per_sec))
    });
    let batch = BatchProgress {
        table: spec.table.clone(),
        rows_done,
        rows_updated,
        rows_total: total.map(|t| t.max(rows_done)),
        rows_per_sec: per_sec,
        eta,
        batch_size: sizer.size_with(ctx.control.batch_override),
        last_batch,
        target_batch: sizer.target(),
        batches,
        workers: Vec::new(),
    };
    ctx.out.progress(|p| p.batch = Some(batch));
}

/// The sizing target for a `[throttle]`: its batch time, held under the
/// probe budget in gentle mode (a writer that meets the batch's rows waits
/// for the whole batch).
pub(super) fn batch_target(
    throttle: &crate::plan::model::Throttle,
    max_stall: Option<crate::plan::units::HumanDuration>,
) -> Duration {
    let target = match throttle.probe_latency {
        Some(budget) => throttle.target_batch_time.0.min(budget.0),
        None => throttle.target_batch_time.0,
    };
    // A writer that meets a batch's rows waits for the whole batch: half the
    // stall budget leaves room for the batch that overshoots.
    match max_stall {
        Some(budget) => target.min(budget.0 / 2),
        None => target,
    }
}

/// Takes a live change of `[throttle]` (`cutover set`, the cockpit's pace
/// keys) into the loop's controllers; true when something changed.
pub(super) fn retune(
    ctx: &Ctx<'_>,
    throttle: &mut crate::plan::model::Throttle,
    seen: &mut u64,
    sizer: &mut BatchSizer,
    gentle: &mut Option<Gentle>,
) -> bool {
    let version = ctx.control.live_version();
    if version == *seen {
        return false;
    }
    *seen = version;
    let now = ctx.control.throttle(&ctx.plan.throttle);
    sizer.retarget(
        batch_target(&now, ctx.plan.settings.max_stall),
        now.min_batch_size,
        now.max_batch_size,
    );
    if now.probe_latency != throttle.probe_latency {
        *gentle = now.probe_latency.map(|t| Gentle::new(t.0));
    }
    if now.max_rows_per_second.is_none() && gentle.is_none() {
        ctx.out.progress(|p| p.throttle = None);
    } else if let Some(r) = now.max_rows_per_second
        && gentle.is_none()
    {
        ctx.out.progress(|p| p.throttle = Some(paced_by_plan(r)));
    }
    *throttle = now;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::units::HumanDuration;

    #[test]
    fn batches_stay_under_half_the_stall_budget() {
        let mut t = crate::plan::model::Throttle::default();
        assert_eq!(batch_target(&t, None), Duration::from_millis(25));
        assert_eq!(
            batch_target(&t, Some(HumanDuration(Duration::from_millis(30)))),
            Duration::from_millis(15)
        );
        t.target_batch_time = HumanDuration(Duration::from_millis(200));
        assert_eq!(batch_target(&t, None), Duration::from_millis(200));
        assert_eq!(
            batch_target(&t, Some(HumanDuration(Duration::from_millis(150)))),
            Duration::from_millis(75)
        );
        assert_eq!(
            batch_target(&t, Some(HumanDuration(Duration::from_secs(5)))),
            Duration::from_millis(200)
        );
    }
}
