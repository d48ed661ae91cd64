//! Replication: standbys' lag in bytes and time, slots' retained WAL, or —
//! on a standby — its own replay delay.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::sample::{ReplicaLag, SlotInfo};
use crate::db::{Conn, DbError};

const REPLICAS: &str = "
SELECT coalesce(application_name, ''), coalesce(state, ''),
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn), 0)::bigint,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint,
       extract(epoch FROM write_lag)::float8,
       extract(epoch FROM flush_lag)::float8,
       extract(epoch FROM replay_lag)::float8,
       replay_lsn::text
FROM pg_stat_replication ORDER BY application_name";

const SLOTS: &str = "
SELECT slot_name::text, slot_type, active,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint
FROM pg_replication_slots ORDER BY slot_name";

const OWN_DELAY: &str = "
SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8";

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

/// Samples standbys (on a primary).
pub async fn replicas(
    conn: &Conn,
    tracker: &mut ReplayTracker,
) -> Result<Vec<ReplicaLag>, DbError> {
    let rows = conn
        .client
        .query(REPLICAS, &[])
        .await
        .map_err(|e| DbError::sql("sampling replication", e))?;
    let now = Instant::now();
    Ok(rows
        .iter()
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
        .collect())
}

/// Samples replication slots (on a primary).
pub async fn slots(conn: &Conn) -> Result<Vec<SlotInfo>, DbError> {
    let rows = conn
        .client
        .query(SLOTS, &[])
        .await
        .map_err(|e| DbError::sql("sampling replication slots", e))?;
    Ok(rows
        .iter()
        .map(|r| SlotInfo {
            name: r.get(0),
            kind: r.get(1),
            active: r.get(2),
            retained_bytes: r.get(3),
        })
        .collect())
}

/// On a standby: how far behind its own replay is.
pub async fn own_delay(conn: &Conn) -> Result<Duration, DbError> {
    let row = conn
        .client
        .query_one(OWN_DELAY, &[])
        .await
        .map_err(|e| DbError::sql("sampling replay delay", e))?;
    Ok(secs(row.get(0)))
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
