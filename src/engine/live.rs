//! Settings a running plan takes from outside (`cutover set`, the cockpit's
//! pace keys): the `[throttle]` pace and limits and the `[abort]` limits,
//! validated like the plan file, shared with the batch loop and the guard,
//! each change journalled with the old and new value and who made it.

use std::sync::{Arc, RwLock};

use crate::plan::model::{AbortLimits, Throttle};
use crate::plan::units::{HumanDuration, Size};

/// The live copy of a plan's pace and limits, with a version that moves on
/// every change (so readers notice without comparing fields).
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// `[throttle]` as it stands now.
    pub throttle: Throttle,
    /// `[abort]` as it stands now.
    pub abort: AbortLimits,
    /// Bumped on every change.
    pub version: u64,
}

/// Shared between the driver, the batch loop and the guard.
pub type Live = Arc<RwLock<LiveSettings>>;

/// A fresh live copy of a plan's settings.
pub fn from_plan(throttle: &Throttle, abort: &AbortLimits) -> Live {
    Arc::new(RwLock::new(LiveSettings {
        throttle: throttle.clone(),
        abort: abort.clone(),
        version: 0,
    }))
}

/// The keys `cutover set` accepts, for messages and `--help`.
pub const KEYS: &[&str] = &[
    "max_rows_per_second",
    "batch_size",
    "target_batch_time",
    "probe_latency",
    "max_batch_size",
    "min_batch_size",
    "throttle.replication_lag",
    "throttle.replication_lag_bytes",
    "abort.replication_lag",
    "abort.replication_lag_bytes",
    "lock_wait",
    "blocked_sessions",
    "lock_timeouts",
    "rollback_rate",
    "stale_monitor",
    "release_replica",
    "throttle.apply_lag_bytes",
    "abort.apply_lag_bytes",
    "slot_retained_wal",
];

/// Splits `key=value`, naming what is wrong.
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE (keys: {})", KEYS.join(", ")))?;
    let (k, v) = (k.trim(), v.trim());
    if v.is_empty() {
        return Err(format!("`{text}`: no value (use `off` to unset a limit)"));
    }
    Ok((canonical_key(k)?, v.to_string()))
}

/// The full key name: `replication_lag` is ambiguous between `[throttle]`
/// and `[abort]`; `abort.lock_wait` and `lock_wait` are the same.
fn canonical_key(key: &str) -> Result<String, String> {
    let k = key.trim().to_lowercase();
    if matches!(
        k.as_str(),
        "replication_lag" | "replication_lag_bytes" | "apply_lag_bytes"
    ) {
        return Err(format!(
            "`{key}` is in both [throttle] and [abort]: write throttle.{k} or abort.{k}"
        ));
    }
    let short = k
        .strip_prefix("throttle.")
        .or_else(|| k.strip_prefix("abort."))
        .unwrap_or(&k);
    let full = if short.starts_with("replication_lag") || short.starts_with("apply_lag") {
        k.clone()
    } else {
        short.to_string()
    };
    if KEYS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(format!(
            "unknown setting `{key}`; known: {}",
            KEYS.join(", ")
        ))
    }
}

fn is_off(v: &str) -> bool {
    matches!(
        v.to_lowercase().as_str(),
        "off" | "none" | "unset" | "unlimited"
    )
}

fn duration(key: &str, v: &str) -> Result<HumanDuration, String> {
    let d = HumanDuration::parse(v).map_err(|e| format!("{key}={v}: {e}"))?;
    if d.0.is_zero() {
        return Err(format!("{key}={v}: must be more than 0 (or `off`)"));
    }
    Ok(d)
}

fn count<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| format!("{key}={v}: not a whole number"))
}

fn opt_duration(key: &str, v: &str) -> Result<Option<HumanDuration>, String> {
    if is_off(v) {
        Ok(None)
    } else {
        duration(key, v).map(Some)
    }
}

fn opt_size(key: &str, v: &str) -> Result<Option<Size>, String> {
    if is_off(v) {
        Ok(None)
    } else {
        Size::parse(v)
            .map(Some)
            .map_err(|e| format!("{key}={v}: {e}"))
    }
}

fn show_opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("off".to_string(), |v| v.to_string())
}

/// Applies one change; returns (old, new) as the operator reads them.
/// `batch_size` and `release_replica` are not settings here (the caller
/// turns them into their commands).
pub fn apply(s: &mut LiveSettings, key: &str, value: &str) -> Result<(String, String), String> {
    let t = &mut s.throttle;
    let a = &mut s.abort;
    let (old, new) = match key {
        "max_rows_per_second" => {
            let old = show_opt(&t.max_rows_per_second);
            t.max_rows_per_second = if is_off(value) {
                None
            } else {
                let n: u64 = count(key, value)?;
                if n == 0 {
                    return Err(format!("{key}=0 would stop the backfill: pause it instead"));
                }
                Some(n)
            };
            (old, show_opt(&t.max_rows_per_second))
        }
        "target_batch_time" => {
            let old = t.target_batch_time.to_string();
            t.target_batch_time = duration(key, value)?;
            (old, t.target_batch_time.to_string())
        }
        "probe_latency" => {
            let old = show_opt(&t.probe_latency);
            t.probe_latency = opt_duration(key, value)?;
            (old, show_opt(&t.probe_latency))
        }
        "max_batch_size" => {
            let old = t.max_batch_size.to_string();
            let n: u64 = count(key, value)?;
            if n < t.min_batch_size.max(1) {
                return Err(format!(
                    "{key}={n}: below min_batch_size ({})",
                    t.min_batch_size
                ));
            }
            t.max_batch_size = n;
            (old, n.to_string())
        }
        "min_batch_size" => {
            let old = t.min_batch_size.to_string();
            let n: u64 = count(key, value)?;
            if n == 0 || n > t.max_batch_size {
                return Err(format!(
                    "{key}={n}: must be 1..=max_batch_size ({})",
                    t.max_batch_size
                ));
            }
            t.min_batch_size = n;
            (old, n.to_string())
        }
        "throttle.replication_lag" => {
            let old = show_opt(&t.replication_lag);
            t.replication_lag = opt_duration(key, value)?;
            (old, show_opt(&t.replication_lag))
        }
        "throttle.replication_lag_bytes" => {
            let old = show_opt(&t.replication_lag_bytes);
            t.replication_lag_bytes = if is_off(value) {
                None
            } else {
                Some(Size::parse(value).map_err(|e| format!("{key}={value}: {e}"))?)
            };
            (old, show_opt(&t.replication_lag_bytes))
        }
        "abort.replication_lag" => {
            let old = show_opt(&a.replication_lag);
            a.replication_lag = opt_duration(key, value)?;
            (old, show_opt(&a.replication_lag))
        }
        "abort.replication_lag_bytes" => {
            let old = show_opt(&a.replication_lag_bytes);
            a.replication_lag_bytes = if is_off(value) {
                None
            } else {
                Some(Size::parse(value).map_err(|e| format!("{key}={value}: {e}"))?)
            };
            (old, show_opt(&a.replication_lag_bytes))
        }
        "lock_wait" => {
            let old = show_opt(&a.lock_wait);
            a.lock_wait = opt_duration(key, value)?;
            (old, show_opt(&a.lock_wait))
        }
        "blocked_sessions" => {
            let old = show_opt(&a.blocked_sessions);
            a.blocked_sessions = if is_off(value) {
                None
            } else {
                Some(count(key, value)?)
            };
            (old, show_opt(&a.blocked_sessions))
        }
        "lock_timeouts" => {
            let old = show_opt(&a.lock_timeouts);
            a.lock_timeouts = if is_off(value) {
                None
            } else {
                Some(count(key, value)?)
            };
            (old, show_opt(&a.lock_timeouts))
        }
        "rollback_rate" => {
            let old = show_opt(&a.rollback_rate);
            a.rollback_rate = if is_off(value) {
                None
            } else {
                let r: f64 = value
                    .parse()
                    .map_err(|_| format!("{key}={value}: not a number"))?;
                if r.is_nan() || r <= 0.0 {
                    return Err(format!("{key}={value}: must be more than 0 (or `off`)"));
                }
                Some(r)
            };
            (old, show_opt(&a.rollback_rate))
        }
        "stale_monitor" => {
            let old = a.stale_monitor.to_string();
            a.stale_monitor = duration(key, value)?;
            (old, a.stale_monitor.to_string())
        }
        "throttle.apply_lag_bytes" => {
            let old = show_opt(&t.apply_lag_bytes);
            t.apply_lag_bytes = opt_size(key, value)?;
            (old, show_opt(&t.apply_lag_bytes))
        }
        "abort.apply_lag_bytes" => {
            let old = show_opt(&a.apply_lag_bytes);
            a.apply_lag_bytes = opt_size(key, value)?;
            (old, show_opt(&a.apply_lag_bytes))
        }
        "slot_retained_wal" => {
            let old = show_opt(&a.slot_retained_wal);
            a.slot_retained_wal = opt_size(key, value)?;
            (old, show_opt(&a.slot_retained_wal))
        }
        other => return Err(format!("`{other}` is not a live setting")),
    };
    s.version += 1;
    Ok((old, new))
}

/// Checks a change as the engine will apply it, on a scratch copy (for the
/// CLI, before anything is sent).
pub fn validate(
    throttle: &Throttle,
    abort: &AbortLimits,
    key: &str,
    value: &str,
) -> Result<(), String> {
    match key {
        "batch_size" => {
            if value.eq_ignore_ascii_case("auto") {
                return Ok(());
            }
            let n: u64 = count(key, value)?;
            if n == 0 {
                return Err("batch_size=0: use a positive size, or `auto`".into());
            }
            Ok(())
        }
        "release_replica" => Ok(()),
        _ => {
            let mut scratch = LiveSettings {
                throttle: throttle.clone(),
                abort: abort.clone(),
                version: 0,
            };
            apply(&mut scratch, key, value).map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> LiveSettings {
        LiveSettings {
            throttle: Throttle::default(),
            abort: AbortLimits::default(),
            version: 0,
        }
    }

    #[test]
    fn changes_are_validated_like_the_plan_file() {
        let mut s = fresh();
        assert_eq!(
            apply(&mut s, "max_rows_per_second", "500").unwrap(),
            ("off".to_string(), "500".to_string())
        );
        assert_eq!(s.version, 1);
        assert!(apply(&mut s, "max_rows_per_second", "fast").is_err());
        assert!(apply(&mut s, "probe_latency", "5 parsecs").is_err());
        apply(&mut s, "abort.replication_lag", "30s").unwrap();
        assert!(s.abort.replication_lag.is_some());
        apply(&mut s, "abort.replication_lag", "off").unwrap();
        assert!(s.abort.replication_lag.is_none());
        assert!(apply(&mut s, "min_batch_size", "1000000000").is_err());
    }

    #[test]
    fn ambiguous_and_unknown_keys_are_named() {
        let e = parse_assignment("replication_lag=5s").unwrap_err();
        assert!(
            e.contains("throttle.replication_lag or abort.replication_lag"),
            "{e}"
        );
        let e = parse_assignment("speed=9").unwrap_err();
        assert!(e.contains("max_rows_per_second"), "{e}");
        assert_eq!(
            parse_assignment("abort.lock_wait = 10s").unwrap(),
            ("lock_wait".into(), "10s".into())
        );
        assert!(parse_assignment("max_rows_per_second=").is_err());
    }

    #[test]
    fn a_move_s_limits_change_live() {
        let mut s = fresh();
        let (key, value) = parse_assignment("slot_retained_wal=8GB").unwrap();
        apply(&mut s, &key, &value).unwrap();
        assert_eq!(s.abort.slot_retained_wal, Some(Size(8_000_000_000)));
        assert!(
            parse_assignment("apply_lag_bytes=1GB").is_err(),
            "ambiguous"
        );
        let (key, value) = parse_assignment("throttle.apply_lag_bytes=64MB").unwrap();
        apply(&mut s, &key, &value).unwrap();
        assert!(s.throttle.apply_lag_bytes.is_some());
        assert!(apply(&mut s, "abort.apply_lag_bytes", "lots").is_err());
    }
}
