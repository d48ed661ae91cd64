//! The move's abort criteria over a monitor sample, while a move's
//! subscription is watched: WAL retained by the run's slots (so the main
//! database's disk never fills behind a slow or stopped subscription) and
//! the subscription's apply lag. A limit that cannot be measured then
//! counts as exceeded. Other tools' slots are not the run's business.

use crate::engine::events::short_duration;
use crate::monitor::sample::Sample;
use crate::plan::model::AbortLimits;
use crate::plan::units::{HumanDuration, Size};

/// A criterion over its limit (the guard turns it into a trip).
#[derive(Debug, Clone, PartialEq)]
pub struct Over {
    /// The `[abort]` setting.
    pub criterion: &'static str,
    /// The measured value.
    pub value: String,
    /// The limit.
    pub limit: String,
    /// What exactly was over.
    pub detail: String,
}

/// One set criterion's numeric reading, as the metrics expose it: its value
/// now (`None` when it cannot be measured) and its limit, in seconds,
/// bytes, a count or per second.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The `[abort]` setting.
    pub criterion: &'static str,
    /// The measured value, if there is one.
    pub value: Option<f64>,
    /// The limit.
    pub limit: f64,
}

impl Reading {
    /// A reading when the criterion's limit is set.
    pub fn of(criterion: &'static str, value: Option<f64>, limit: Option<f64>) -> Option<Reading> {
        limit.map(|limit| Reading {
            criterion,
            value,
            limit,
        })
    }
}

/// Every set move criterion's reading in this sample, measured as
/// [`over_limits`] measures it; unmeasured (or no subscription) is `None`.
pub fn readings(limits: &AbortLimits, sample: &Sample) -> Vec<Reading> {
    let s = sample.subscription.as_ref();
    let bytes = |n: i64| n as f64;
    [
        Reading::of(
            "slot_retained_wal",
            s.and_then(|x| x.slot_retained_bytes).map(bytes),
            limits.slot_retained_wal.map(|b| b.0 as f64),
        ),
        Reading::of(
            "apply_lag",
            s.and_then(|x| x.apply_lag).map(|d| d.as_secs_f64()),
            limits.apply_lag.map(|d| d.0.as_secs_f64()),
        ),
        Reading::of(
            "apply_lag_bytes",
            s.and_then(|x| x.apply_lag_bytes).map(bytes),
            limits.apply_lag_bytes.map(|b| b.0 as f64),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn size(n: i64) -> String {
    Size(n.max(0) as u64).to_string()
}

/// Every move criterion over its limit in this sample.
pub fn over_limits(limits: &AbortLimits, sample: &Sample) -> Vec<Over> {
    let mut trips = Vec::new();
    let Some(s) = &sample.subscription else {
        return trips;
    };
    if let Some(Size(limit)) = limits.slot_retained_wal {
        let retained = s
            .slot_retained_bytes
            .map(|n| (s.name.clone(), n))
            .ok_or_else(|| {
                s.error
                    .clone()
                    .unwrap_or_else(|| "slot not measured".into())
            });
        match retained {
            Ok((name, n)) if n.max(0) as u64 > limit => trips.push(Over {
                criterion: "slot_retained_wal",
                value: size(n),
                limit: Size(limit).to_string(),
                detail: format!("replication slot {name} retains WAL on the main database"),
            }),
            Ok(_) => {}
            Err(why) => trips.push(Over {
                criterion: "slot_retained_wal",
                value: "unknown".into(),
                limit: Size(limit).to_string(),
                detail: format!("the slot's retained WAL cannot be measured ({why})"),
            }),
        }
    }
    if let Some(HumanDuration(limit)) = limits.apply_lag {
        match s.apply_lag {
            Some(lag) if lag > limit => trips.push(Over {
                criterion: "apply_lag",
                value: short_duration(lag),
                limit: HumanDuration(limit).to_string(),
                detail: format!("subscription {} on {} applies behind", s.name, s.database),
            }),
            Some(_) => {}
            None => trips.push(Over {
                criterion: "apply_lag",
                value: "unknown".into(),
                limit: HumanDuration(limit).to_string(),
                detail: format!(
                    "the apply lag of {} cannot be measured ({})",
                    s.name,
                    s.error.as_deref().unwrap_or("no reading")
                ),
            }),
        }
    }
    if let Some(Size(limit)) = limits.apply_lag_bytes {
        match s.apply_lag_bytes {
            Some(n) if n.max(0) as u64 > limit => trips.push(Over {
                criterion: "apply_lag_bytes",
                value: size(n),
                limit: Size(limit).to_string(),
                detail: format!("subscription {} on {} applies behind", s.name, s.database),
            }),
            Some(_) => {}
            None => trips.push(Over {
                criterion: "apply_lag_bytes",
                value: "unknown".into(),
                limit: Size(limit).to_string(),
                detail: format!(
                    "the apply lag of {} cannot be measured ({})",
                    s.name,
                    s.error.as_deref().unwrap_or("no reading")
                ),
            }),
        }
    }
    trips
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::subscription::SubscriptionSample;

    fn watched(retained: Option<i64>, lag_bytes: Option<i64>) -> Sample {
        Sample {
            subscription: Some(SubscriptionSample {
                name: "cutover_move_1_target".into(),
                database: "target".into(),
                tables: Vec::new(),
                copy: None,
                apply_lag_bytes: lag_bytes,
                apply_lag: None,
                slot_retained_bytes: retained,
                error: None,
            }),
            ..Sample::default()
        }
    }

    fn limits() -> AbortLimits {
        AbortLimits {
            slot_retained_wal: Some(Size(1_000_000)),
            apply_lag_bytes: Some(Size(500_000)),
            ..AbortLimits::default()
        }
    }

    #[test]
    fn a_slot_retaining_too_much_wal_trips() {
        let trips = over_limits(&limits(), &watched(Some(2_000_000), Some(0)));
        assert_eq!(trips.len(), 1, "{trips:?}");
        assert_eq!(trips[0].criterion, "slot_retained_wal");
        assert!(trips[0].detail.contains("cutover_move_1_target"));
        assert!(over_limits(&limits(), &watched(Some(10), Some(10))).is_empty());
    }

    #[test]
    fn other_tools_slots_are_not_the_run_s_business() {
        let sample = Sample {
            slots: vec![crate::monitor::sample::SlotInfo {
                name: "someone_elses".into(),
                kind: "logical".into(),
                active: false,
                retained_bytes: 50_000_000_000,
            }],
            ..Sample::default()
        };
        assert!(over_limits(&limits(), &sample).is_empty());
    }

    #[test]
    fn apply_lag_over_its_limit_or_unmeasured_trips() {
        let over = over_limits(&limits(), &watched(Some(10), Some(600_000)));
        assert_eq!(over[0].criterion, "apply_lag_bytes");
        let unknown = over_limits(&limits(), &watched(None, None));
        let names: Vec<&str> = unknown.iter().map(|t| t.criterion).collect();
        assert_eq!(names, ["slot_retained_wal", "apply_lag_bytes"]);
    }

    #[test]
    fn readings_cover_only_set_limits_and_leave_unmeasured_empty() {
        let r = readings(&limits(), &watched(Some(2_000_000), None));
        let got: Vec<_> = r.iter().map(|r| (r.criterion, r.value, r.limit)).collect();
        assert_eq!(
            got,
            [
                ("slot_retained_wal", Some(2_000_000.0), 1_000_000.0),
                ("apply_lag_bytes", None, 500_000.0),
            ]
        );
    }
}
