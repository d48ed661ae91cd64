//! Abort criteria: pure functions over monitor samples. A criterion must
//! hold on two consecutive samples before it trips (one re-check, like
//! gh-ost's critical-load interval), except staleness, which is about time.

use std::collections::HashSet;
use std::time::Duration;

use super::subscription_guard::Reading;
use crate::engine::events::short_duration;
use crate::monitor::sample::{LockWait, Sample};
use crate::plan::model::AbortLimits;
use crate::plan::units::{HumanDuration, Size};

/// A tripped criterion: which, its value and its limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    /// The `[abort]` setting.
    pub criterion: &'static str,
    /// The measured value.
    pub value: String,
    /// The limit.
    pub limit: String,
    /// What exactly was over (which replica, which session).
    pub detail: String,
}

impl Trip {
    /// The abort reason shown and journaled.
    pub fn reason(&self) -> String {
        format!(
            "abort criterion {} tripped: {} ({} > {})",
            self.criterion, self.detail, self.value, self.limit
        )
    }
}

fn dur(d: Duration) -> String {
    short_duration(d)
}

/// A limit as the plan writes it (`5s`, not `5.0s`).
fn as_written(d: Duration) -> String {
    HumanDuration(d).to_string()
}

fn bytes(n: i64) -> String {
    Size(n.max(0) as u64).to_string()
}

/// The replica furthest behind in replay, or this standby's own delay.
fn worst_replay(sample: &Sample) -> Option<(String, Duration)> {
    sample
        .worst_lag()
        .map(|r| (r.name.clone(), r.replay_lag))
        .or(sample
            .own_replay_delay
            .map(|d| ("this standby".to_string(), d)))
}

/// WAL bytes behind: the replica furthest behind, then the slot that
/// retains the most.
fn bytes_behind(sample: &Sample) -> [Option<(String, i64)>; 2] {
    let replica = sample
        .worst_bytes()
        .map(|r| (format!("replica {}", r.name), r.replay_bytes));
    let slot = sample
        .slots
        .iter()
        .max_by_key(|s| s.retained_bytes)
        .map(|s| (format!("slot {} retained WAL", s.name), s.retained_bytes));
    [replica, slot]
}

/// The session queued longest behind the migration.
fn longest_wait(sample: &Sample) -> Option<&LockWait> {
    sample.blocked_behind_us().max_by_key(|w| w.waited)
}

/// Every set criterion's reading (value now and limit, as numbers), from
/// the same measurements [`over_limits`] judges; the monitor's silence
/// stands for `stale_monitor`, which always has a limit (zero is off).
pub fn readings(
    limits: &AbortLimits,
    sample: &Sample,
    lock_timeouts: u64,
    silent_for: Duration,
) -> Vec<Reading> {
    let secs = |d: Duration| d.as_secs_f64();
    let bytes = bytes_behind(sample)
        .into_iter()
        .flatten()
        .map(|(_, n)| n)
        .max();
    let criteria = [
        Reading::of(
            "replication_lag",
            worst_replay(sample).map(|(_, d)| secs(d)),
            limits.replication_lag.map(|d| secs(d.0)),
        ),
        Reading::of(
            "replication_lag_bytes",
            bytes.map(|n| n as f64),
            limits.replication_lag_bytes.map(|b| b.0 as f64),
        ),
        Reading::of(
            "lock_wait",
            longest_wait(sample).map(|w| secs(w.waited)),
            limits.lock_wait.map(|d| secs(d.0)),
        ),
        Reading::of(
            "blocked_sessions",
            Some(sample.blocked_behind_us().count() as f64),
            limits.blocked_sessions.map(f64::from),
        ),
        Reading::of(
            "lock_timeouts",
            Some(lock_timeouts as f64),
            limits.lock_timeouts.map(f64::from),
        ),
        Reading::of(
            "rollback_rate",
            Some(sample.rollbacks_per_sec),
            limits.rollback_rate,
        ),
        Reading::of(
            "stale_monitor",
            Some(secs(silent_for)),
            Some(secs(limits.stale_monitor.0)),
        ),
    ];
    criteria
        .into_iter()
        .flatten()
        .chain(super::subscription_guard::readings(limits, sample))
        .collect()
}

/// Every criterion over its limit in this sample.
pub fn over_limits(limits: &AbortLimits, sample: &Sample, lock_timeouts: u32) -> Vec<Trip> {
    let mut trips = Vec::new();
    if let Some(HumanDuration(limit)) = limits.replication_lag
        && let Some((name, lag)) = worst_replay(sample)
        && lag > limit
    {
        trips.push(Trip {
            criterion: "replication_lag",
            value: dur(lag),
            limit: as_written(limit),
            detail: format!("replica {name} replay lag"),
        });
    }
    if let Some(Size(limit)) = limits.replication_lag_bytes {
        for (what, n) in bytes_behind(sample).into_iter().flatten() {
            if n as u64 > limit {
                trips.push(Trip {
                    criterion: "replication_lag_bytes",
                    value: bytes(n),
                    limit: Size(limit).to_string(),
                    detail: format!("{what} behind"),
                });
                break;
            }
        }
    }
    if let Some(HumanDuration(limit)) = limits.lock_wait
        && let Some(w) = longest_wait(sample)
        && w.waited > limit
    {
        trips.push(Trip {
            criterion: "lock_wait",
            value: dur(w.waited),
            limit: as_written(limit),
            detail: format!(
                "session {} ({}) waits behind the migration",
                w.pid, w.application
            ),
        });
    }
    if let Some(limit) = limits.blocked_sessions {
        let n = sample.blocked_behind_us().count();
        if n > limit as usize {
            trips.push(Trip {
                criterion: "blocked_sessions",
                value: n.to_string(),
                limit: limit.to_string(),
                detail: "sessions queued behind the migration".into(),
            });
        }
    }
    if let Some(limit) = limits.lock_timeouts
        && lock_timeouts > limit
    {
        trips.push(Trip {
            criterion: "lock_timeouts",
            value: lock_timeouts.to_string(),
            limit: limit.to_string(),
            detail: "lock timeouts in this run".into(),
        });
    }
    if let Some(limit) = limits.rollback_rate
        && sample.rollbacks_per_sec > limit
    {
        trips.push(Trip {
            criterion: "rollback_rate",
            value: format!("{:.1}/s", sample.rollbacks_per_sec),
            limit: format!("{limit}/s"),
            detail: "transactions rolling back on the database".into(),
        });
    }
    trips.extend(
        super::subscription_guard::over_limits(limits, sample)
            .into_iter()
            .map(|o| Trip {
                criterion: o.criterion,
                value: o.value,
                limit: o.limit,
                detail: o.detail,
            }),
    );
    trips
}

/// Tracks criteria across samples.
#[derive(Debug, Clone)]
pub struct Guard {
    limits: AbortLimits,
    previous: HashSet<&'static str>,
    last_seq: u64,
}

impl Guard {
    /// A guard for these limits.
    pub fn new(limits: AbortLimits) -> Guard {
        Guard {
            limits,
            previous: HashSet::new(),
            last_seq: 0,
        }
    }

    /// Takes new limits (a live change), keeping what it has seen.
    pub fn set_limits(&mut self, limits: AbortLimits) {
        self.limits = limits;
    }

    /// Looks at a new sample; trips when a criterion was over on this and
    /// the previous sample.
    pub fn observe(&mut self, sample: &Sample, lock_timeouts: u32) -> Option<Trip> {
        if sample.seq == self.last_seq {
            return None;
        }
        self.last_seq = sample.seq;
        let now = over_limits(&self.limits, sample, lock_timeouts);
        self.track(now)
    }

    /// As [`Guard::observe`], with only a move's criteria: at a gate or a
    /// pause cutover causes nothing else, but its slot still keeps WAL.
    pub fn observe_move(&mut self, sample: &Sample) -> Option<Trip> {
        if sample.seq == self.last_seq {
            return None;
        }
        self.last_seq = sample.seq;
        let now = super::subscription_guard::over_limits(&self.limits, sample)
            .into_iter()
            .map(|o| Trip {
                criterion: o.criterion,
                value: o.value,
                limit: o.limit,
                detail: o.detail,
            })
            .collect();
        self.track(now)
    }

    fn track(&mut self, now: Vec<Trip>) -> Option<Trip> {
        let tripped = now
            .iter()
            .find(|t| self.previous.contains(t.criterion))
            .cloned();
        self.previous = now.iter().map(|t| t.criterion).collect();
        tripped
    }

    /// Fails closed when samples stop arriving for `stale_monitor`.
    pub fn stale(&self, silent_for: Duration) -> Option<Trip> {
        let limit = self.limits.stale_monitor.0;
        (!limit.is_zero() && silent_for > limit).then(|| Trip {
            criterion: "stale_monitor",
            value: dur(silent_for),
            limit: as_written(limit),
            detail: "no monitor sample (the monitor cannot reach the database)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::sample::{ReplicaLag, SlotInfo};

    fn limits() -> AbortLimits {
        AbortLimits {
            replication_lag: Some(HumanDuration(Duration::from_secs(60))),
            replication_lag_bytes: Some(Size(1_000_000)),
            lock_wait: Some(HumanDuration(Duration::from_secs(5))),
            blocked_sessions: Some(2),
            lock_timeouts: Some(10),
            rollback_rate: Some(50.0),
            stale_monitor: HumanDuration(Duration::from_secs(15)),
            ..AbortLimits::default()
        }
    }

    fn replica(lag: u64, bytes: i64) -> ReplicaLag {
        ReplicaLag {
            name: "r1".into(),
            state: "streaming".into(),
            sent_bytes: 0,
            replay_bytes: bytes,
            write_lag: Duration::ZERO,
            flush_lag: Duration::ZERO,
            replay_lag: Duration::from_secs(lag),
            gone_since: None,
        }
    }

    fn waiter(pid: i32, secs: u64, behind_us: bool) -> LockWait {
        LockWait {
            pid,
            application: "app".into(),
            waits_for: "relation users".into(),
            mode: "RowExclusiveLock".into(),
            blocked_by: vec![1],
            waited: Duration::from_secs(secs),
            query: "UPDATE users …".into(),
            behind_us,
            ours: false,
        }
    }

    fn sample(seq: u64) -> Sample {
        Sample {
            seq,
            ..Sample::default()
        }
    }

    #[test]
    fn a_criterion_must_hold_on_two_consecutive_samples() {
        let mut g = Guard::new(limits());
        let mut s = sample(1);
        s.replicas = vec![replica(65, 0)];
        assert_eq!(g.observe(&s, 0), None, "first sample over: not yet");
        let mut s2 = sample(2);
        s2.replicas = vec![replica(70, 0)];
        let trip = g.observe(&s2, 0).expect("second sample over: trips");
        assert_eq!(trip.criterion, "replication_lag");
        assert_eq!(trip.value, "1m10s");
        assert_eq!(trip.limit, "1m");
        assert!(trip.reason().contains("replica r1"), "{}", trip.reason());
    }

    #[test]
    fn a_blip_does_not_trip() {
        let mut g = Guard::new(limits());
        let mut over = sample(1);
        over.replicas = vec![replica(65, 0)];
        assert_eq!(g.observe(&over, 0), None);
        let mut under = sample(2);
        under.replicas = vec![replica(1, 0)];
        assert_eq!(g.observe(&under, 0), None);
        over.seq = 3;
        assert_eq!(
            g.observe(&over, 0),
            None,
            "over, under, over: never twice in a row"
        );
    }

    #[test]
    fn the_same_sample_seen_twice_counts_once() {
        let mut g = Guard::new(limits());
        let mut s = sample(1);
        s.replicas = vec![replica(65, 0)];
        assert_eq!(g.observe(&s, 0), None);
        assert_eq!(g.observe(&s, 0), None);
    }

    #[test]
    fn bytes_behind_on_replica_or_slot() {
        let mut s = sample(1);
        s.replicas = vec![replica(0, 2_000_000)];
        let t = over_limits(&limits(), &s, 0);
        assert_eq!(t[0].criterion, "replication_lag_bytes");
        let mut s = sample(1);
        s.slots = vec![SlotInfo {
            name: "cdc".into(),
            kind: "logical".into(),
            active: false,
            retained_bytes: 5_000_000,
        }];
        let t = over_limits(&limits(), &s, 0);
        assert!(t[0].detail.contains("slot cdc"), "{:?}", t);
    }

    #[test]
    fn lock_waits_count_only_sessions_behind_us() {
        let mut s = sample(1);
        s.lock_waits = vec![waiter(10, 9, false), waiter(11, 3, true)];
        assert!(over_limits(&limits(), &s, 0).is_empty());
        s.lock_waits.push(waiter(12, 6, true));
        let t = over_limits(&limits(), &s, 0);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].criterion, "lock_wait");
        assert!(t[0].detail.contains("session 12"));
        s.lock_waits.push(waiter(13, 1, true));
        let t = over_limits(&limits(), &s, 0);
        assert!(
            t.iter()
                .any(|t| t.criterion == "blocked_sessions" && t.value == "3")
        );
    }

    #[test]
    fn lock_timeouts_and_rollback_rate() {
        let mut s = sample(1);
        assert!(over_limits(&limits(), &s, 10).is_empty());
        assert_eq!(over_limits(&limits(), &s, 11)[0].criterion, "lock_timeouts");
        s.rollbacks_per_sec = 80.0;
        assert_eq!(over_limits(&limits(), &s, 0)[0].criterion, "rollback_rate");
    }

    #[test]
    fn unset_limits_never_trip() {
        let none = AbortLimits::default();
        let mut s = sample(1);
        s.replicas = vec![replica(10_000, i64::MAX / 2)];
        s.lock_waits = vec![waiter(1, 10_000, true)];
        s.rollbacks_per_sec = 1e9;
        assert!(over_limits(&none, &s, u32::MAX).is_empty());
    }

    #[test]
    fn readings_hold_each_set_limit_with_its_value_now() {
        let mut s = sample(1);
        s.replicas = vec![replica(7, 300)];
        s.lock_waits = vec![waiter(10, 9, false), waiter(11, 3, true)];
        let r = readings(&limits(), &s, 4, Duration::from_secs(2));
        let got: Vec<_> = r.iter().map(|r| (r.criterion, r.value, r.limit)).collect();
        assert_eq!(
            got,
            [
                ("replication_lag", Some(7.0), 60.0),
                ("replication_lag_bytes", Some(300.0), 1_000_000.0),
                ("lock_wait", Some(3.0), 5.0),
                ("blocked_sessions", Some(1.0), 2.0),
                ("lock_timeouts", Some(4.0), 10.0),
                ("rollback_rate", Some(0.0), 50.0),
                ("stale_monitor", Some(2.0), 15.0),
            ]
        );
        let none = readings(&AbortLimits::default(), &s, 0, Duration::ZERO);
        let names: Vec<_> = none.iter().map(|r| r.criterion).collect();
        assert_eq!(names, ["stale_monitor"]);
    }

    #[test]
    fn stale_monitor_fails_closed() {
        let g = Guard::new(limits());
        assert_eq!(g.stale(Duration::from_secs(14)), None);
        let t = g.stale(Duration::from_secs(16)).unwrap();
        assert_eq!(t.criterion, "stale_monitor");
    }
}
