//! Replication: standbys' lag in bytes and time, slots' retained WAL, or —
//! on a standby — its own replay delay.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::sample::{ReplicaLag, SlotInfo};

/// The WAL position "now", on a primary or a (cascading) standby alike.
const CURRENT_LSN: &str =
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END";

/// Standbys streaming from this server.
pub const REPLICAS: &str = "
SELECT coalesce(application_name, ''), coalesce(state, ''),
       coalesce(pg_wal_lsn_diff(CURRENT_LSN, sent_lsn), 0)::bigint,
       coalesce(pg_wal_lsn_diff(CURRENT_LSN, replay_lsn), 0)::bigint,
       extract(epoch FROM write_lag)::float8,
       extract(epoch FROM flush_lag)::float8,
       extract(epoch FROM replay_lag)::float8,
       replay_lsn::text
FROM pg_stat_replication ORDER BY application_name";

/// Replication slots and the WAL each retains.
pub const SLOTS: &str = "
SELECT slot_name::text, slot_type, active,
       coalesce(pg_wal_lsn_diff(CURRENT_LSN, restart_lsn), 0)::bigint
FROM pg_replication_slots ORDER BY slot_name";

/// Recovery state, and on a standby its own replay delay.
pub const RECOVERY: &str = "
SELECT pg_is_in_recovery(),
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8";

/// The SQL with the position expression filled in.
pub fn sql(template: &str) -> String {
    template.replace("CURRENT_LSN", CURRENT_LSN)
}

/// Remembers when each standby's replay position last moved: when replay
/// stops, `replay_lag` freezes at its last value, but a standby whose
/// replay has not moved for T seconds while WAL waits is at least T behind.
#[derive(Debug, Default)]
pub struct ReplayTracker {
    last: HashMap<String, (String, Instant)>,
}

impl ReplayTracker {
    /// How long this standby's replay has been stuck behind.
    fn stalled_for(&mut self, name: &str, replay_lsn: &str, behind: i64, now: Instant) -> Duration {
        let entry = self
            .last
            .entry(name.to_string())
            .or_insert_with(|| (replay_lsn.to_string(), now));
        if entry.0 != replay_lsn || behind == 0 {
            *entry = (replay_lsn.to_string(), now);
            return Duration::ZERO;
        }
        now.duration_since(entry.1)
    }
}

fn secs(v: Option<f64>) -> Duration {
    // NULL lag on an idle primary means the standby has caught up: 0.
    Duration::from_secs_f64(v.unwrap_or(0.0).max(0.0))
}

/// Reads the standbys' rows.
pub fn parse_replicas(
    rows: &[tokio_postgres::Row],
    tracker: &mut ReplayTracker,
) -> Vec<ReplicaLag> {
    let now = Instant::now();
    rows.iter()
        .map(|r| {
            let name: String = r.get(0);
            let replay_bytes: i64 = r.get(3);
            let replay_lsn: Option<String> = r.get(7);
            let stalled = tracker.stalled_for(
                &name,
                replay_lsn.as_deref().unwrap_or(""),
                replay_bytes,
                now,
            );
            ReplicaLag {
                state: r.get(1),
                sent_bytes: r.get(2),
                replay_bytes,
                write_lag: secs(r.get(4)),
                flush_lag: secs(r.get(5)),
                replay_lag: secs(r.get(6)).max(stalled),
                name,
            }
        })
        .collect()
}

/// Reads the slots' rows.
pub fn parse_slots(rows: &[tokio_postgres::Row]) -> Vec<SlotInfo> {
    rows.iter()
        .map(|r| SlotInfo {
            name: r.get(0),
            kind: r.get(1),
            active: r.get(2),
            retained_bytes: r.get(3),
        })
        .collect()
}

/// Reads the recovery row: (in recovery, own replay delay).
pub fn parse_recovery(row: &tokio_postgres::Row) -> (bool, Option<Duration>) {
    let in_recovery: bool = row.get(0);
    let delay: Option<f64> = row.get(1);
    (in_recovery, in_recovery.then(|| secs(delay)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_replay_counts_as_lag() {
        let mut t = ReplayTracker::default();
        let t0 = Instant::now();
        assert_eq!(t.stalled_for("r1", "0/100", 500, t0), Duration::ZERO);
        assert_eq!(
            t.stalled_for("r1", "0/100", 900, t0 + Duration::from_secs(7)),
            Duration::from_secs(7)
        );
        // Replay moved: no longer stalled.
        assert_eq!(
            t.stalled_for("r1", "0/200", 100, t0 + Duration::from_secs(8)),
            Duration::ZERO
        );
        // Caught up: never stalled, however long the position stays put.
        assert_eq!(
            t.stalled_for("r1", "0/200", 0, t0 + Duration::from_secs(60)),
            Duration::ZERO
        );
    }

    #[test]
    fn null_lag_is_zero() {
        assert_eq!(secs(None), Duration::ZERO);
        assert_eq!(secs(Some(1.5)), Duration::from_millis(1500));
    }
}
