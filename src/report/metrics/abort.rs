//! Each `[abort]` criterion's value now, beside its limit.

use super::sheet::{Rows, labels, secs};
use crate::engine::progress::Progress;
use crate::plan::Plan;

/// Every set `[abort]` criterion: (its value now, its limit).
pub(super) fn abort_rows(
    plan: &Plan,
    p: &Progress,
    s: &crate::monitor::sample::Sample,
    sample_age: f64,
) -> (Rows, Rows) {
    let a = &plan.abort;
    let worst_lag = s
        .worst_lag()
        .map(|r| secs(r.replay_lag))
        .or(s.own_replay_delay.map(secs))
        .unwrap_or(0.0);
    let worst_bytes = s
        .worst_bytes()
        .map(|r| r.replay_bytes)
        .into_iter()
        .chain(s.slots.iter().map(|sl| sl.retained_bytes))
        .max()
        .unwrap_or(0) as f64;
    let longest = s
        .blocked_behind_us()
        .map(|w| secs(w.waited))
        .fold(0.0, f64::max);
    let criteria: Vec<(&str, f64, Option<f64>)> = vec![
        (
            "replication_lag",
            worst_lag,
            a.replication_lag.map(|d| secs(d.0)),
        ),
        (
            "replication_lag_bytes",
            worst_bytes,
            a.replication_lag_bytes.map(|b| b.0 as f64),
        ),
        ("lock_wait", longest, a.lock_wait.map(|d| secs(d.0))),
        (
            "blocked_sessions",
            s.blocked_behind_us().count() as f64,
            a.blocked_sessions.map(f64::from),
        ),
        (
            "lock_timeouts",
            p.lock_retries as f64,
            a.lock_timeouts.map(f64::from),
        ),
        ("rollback_rate", s.rollbacks_per_sec, a.rollback_rate),
        ("stale_monitor", sample_age, Some(secs(a.stale_monitor.0))),
    ];
    let sub = s.subscription.as_ref();
    let criteria = criteria.into_iter().chain([
        (
            "slot_retained_wal",
            sub.and_then(|x| x.slot_retained_bytes).unwrap_or(0) as f64,
            a.slot_retained_wal.map(|b| b.0 as f64),
        ),
        (
            "apply_lag",
            sub.and_then(|x| x.apply_lag).map_or(0.0, secs),
            a.apply_lag.map(|d| secs(d.0)),
        ),
        (
            "apply_lag_bytes",
            sub.and_then(|x| x.apply_lag_bytes).unwrap_or(0) as f64,
            a.apply_lag_bytes.map(|b| b.0 as f64),
        ),
    ]);
    let mut values = Vec::new();
    let mut limits = Vec::new();
    for (name, value, limit) in criteria {
        if let Some(limit) = limit {
            values.push((labels(&[("criterion", name)]), value));
            limits.push((labels(&[("criterion", name)]), limit));
        }
    }
    (values, limits)
}
