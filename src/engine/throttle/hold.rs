//! The lag throttle: batches wait while a replica or replication slot is
//! over the `[throttle]` limits, while the monitor is silent (fail
//! closed), or, under `max_stall`, while the canary probe's commits wait
//! longer than the budget.

use std::time::Duration;

/// Why batches must wait now, if they must: a replica or slot over the
/// `[throttle]` limits, no fresh monitor sample (fail closed), or the
/// probe over the stall budget.
pub fn hold_reason(
    limits: &crate::plan::model::Throttle,
    abort: &crate::plan::model::AbortLimits,
    max_stall: Option<Duration>,
    sample: &crate::monitor::sample::Sample,
    silent_for: Duration,
) -> Option<String> {
    use crate::engine::events::short_duration;
    use crate::plan::units::Size;
    if silent_for > STALE_AFTER {
        return Some(format!(
            "throttled: no monitor sample for {} (failing closed)",
            short_duration(silent_for)
        ));
    }
    // A replica that went away cannot be measured: under any replication
    // limit of the plan, that counts as over it until the operator releases
    // it (or it comes back).
    let limited = limits.replication_lag.is_some()
        || limits.replication_lag_bytes.is_some()
        || abort.replication_lag.is_some()
        || abort.replication_lag_bytes.is_some();
    if limited
        && let Some((r, since)) = sample
            .replicas
            .iter()
            .find_map(|r| r.gone_since.map(|t| (r, t)))
    {
        return Some(format!(
            "throttled: replica {} gone since {}: holding (release it with the cockpit's `L` or \
             `cutover release-replica PLAN {}`)",
            r.name,
            crate::engine::events::clock(since),
            r.name
        ));
    }
    if let Some(limit) = limits.replication_lag
        && let Some(r) = sample.worst_lag()
        && r.replay_lag > limit.0
    {
        return Some(format!(
            "throttled: replica {} lag {} > {}",
            r.name,
            short_duration(r.replay_lag),
            limit
        ));
    }
    if let Some(limit) = limits.replication_lag_bytes {
        if let Some(r) = sample.worst_bytes()
            && r.replay_bytes as u64 > limit.0
        {
            return Some(format!(
                "throttled: replica {} {} behind > {}",
                r.name,
                Size(r.replay_bytes as u64),
                limit
            ));
        }
        if let Some(s) = sample.slots.iter().max_by_key(|s| s.retained_bytes)
            && s.retained_bytes as u64 > limit.0
        {
            return Some(format!(
                "throttled: slot {} retains {} > {}",
                s.name,
                Size(s.retained_bytes as u64),
                limit
            ));
        }
    }
    // The probe commits a tiny write: its latency includes waiting for the
    // WAL in front of it to reach the disk, which the batches put there.
    // Over the budget, the application's commits wait longer than the
    // plan allows behind cutover's writes: hold until they do not.
    if let Some(budget) = max_stall
        && let Some(p) = &sample.probe
        && p.samples >= MIN_PROBES
        && p.p95 > budget
    {
        return Some(format!(
            "throttled: probe p95 {} > max_stall {} (commits wait behind the batches' writes)",
            short_duration(p.p95),
            short_duration(budget)
        ));
    }
    None
}

/// The probe's p95 counts for the stall budget once its window holds this
/// many probes (a second's worth).
const MIN_PROBES: usize = 10;

/// Batches wait when the newest monitor sample is older than this.
pub const STALE_AFTER: Duration = Duration::from_secs(4);
#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::sample::{ReplicaLag, Sample, SlotInfo};
    use crate::plan::model::{AbortLimits, Throttle};
    use crate::plan::units::{HumanDuration, Size};

    fn throttle() -> Throttle {
        Throttle {
            replication_lag: Some(HumanDuration(Duration::from_secs(5))),
            replication_lag_bytes: Some(Size(1_000_000)),
            ..Throttle::default()
        }
    }

    fn with_replica(lag_ms: u64, bytes: i64) -> Sample {
        Sample {
            replicas: vec![ReplicaLag {
                name: "r1".into(),
                state: "streaming".into(),
                sent_bytes: 0,
                replay_bytes: bytes,
                write_lag: Duration::ZERO,
                flush_lag: Duration::ZERO,
                replay_lag: Duration::from_millis(lag_ms),
                gone_since: None,
            }],
            ..Sample::default()
        }
    }

    #[test]
    fn holds_while_a_replica_lags_and_says_why() {
        let fresh = Duration::from_millis(500);
        assert_eq!(
            hold_reason(
                &throttle(),
                &AbortLimits::default(),
                None,
                &with_replica(100, 0),
                fresh
            ),
            None
        );
        assert_eq!(
            hold_reason(
                &throttle(),
                &AbortLimits::default(),
                None,
                &with_replica(7200, 0),
                fresh
            )
            .as_deref(),
            Some("throttled: replica r1 lag 7.2s > 5s")
        );
        let r = hold_reason(
            &throttle(),
            &AbortLimits::default(),
            None,
            &with_replica(0, 3_000_000),
            fresh,
        )
        .unwrap();
        assert!(
            r.starts_with("throttled: replica r1 3.0 MB behind > 1.0 MB"),
            "{r}"
        );
    }

    #[test]
    fn holds_on_slot_retention() {
        let mut s = Sample::default();
        s.slots.push(SlotInfo {
            name: "cdc".into(),
            kind: "logical".into(),
            active: false,
            retained_bytes: 5_000_000,
        });
        let r = hold_reason(
            &throttle(),
            &AbortLimits::default(),
            None,
            &s,
            Duration::ZERO,
        )
        .unwrap();
        assert!(r.contains("slot cdc retains"), "{r}");
    }

    #[test]
    fn fails_closed_without_fresh_samples() {
        let r = hold_reason(
            &throttle(),
            &AbortLimits::default(),
            None,
            &Sample::default(),
            Duration::from_secs(9),
        )
        .unwrap();
        assert!(r.contains("failing closed"), "{r}");
    }

    #[test]
    fn unset_limits_never_hold() {
        assert_eq!(
            hold_reason(
                &Throttle::default(),
                &AbortLimits::default(),
                None,
                &with_replica(999_999, i64::MAX / 4),
                Duration::ZERO
            ),
            None
        );
    }

    #[test]
    fn under_a_stall_budget_holds_while_the_probe_is_over_it() {
        let mut s = with_replica(0, 0);
        s.probe = Some(crate::monitor::sample::ProbeStats {
            p95: Duration::from_millis(400),
            samples: 50,
            ..Default::default()
        });
        let budget = Some(Duration::from_millis(150));
        let r = hold_reason(
            &throttle(),
            &AbortLimits::default(),
            budget,
            &s,
            Duration::ZERO,
        )
        .expect("held");
        assert!(r.contains("probe p95 400ms > max_stall 150ms"), "{r}");
        assert_eq!(
            hold_reason(
                &throttle(),
                &AbortLimits::default(),
                None,
                &s,
                Duration::ZERO
            ),
            None,
            "without a budget the probe alone never holds"
        );
        s.probe = Some(crate::monitor::sample::ProbeStats {
            p95: Duration::from_millis(20),
            samples: 50,
            ..Default::default()
        });
        assert_eq!(
            hold_reason(
                &throttle(),
                &AbortLimits::default(),
                budget,
                &s,
                Duration::ZERO
            ),
            None
        );
    }
}
