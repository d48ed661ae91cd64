//! Replication: standbys' lag in bytes and time, slots' retained WAL, or —
//! on a standby — its own replay delay.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

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
FROM pg_stat_replication
-- Logical walsenders (a move's subscription and its initial copy) are
-- watched as the subscription, not as standbys: the copy's go away when
-- done, which must not read as a lost replica.
WHERE pid NOT IN (SELECT active_pid FROM pg_replication_slots
                  WHERE slot_type = 'logical' AND active_pid IS NOT NULL)
  AND coalesce(application_name, '') NOT LIKE 'cutover\\_move\\_%'
  AND coalesce(application_name, '') NOT LIKE 'pg\\_%\\_sync\\_%'
ORDER BY application_name";

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
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8,
       (CURRENT_LSN)::text";

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
    seen: HashMap<String, Seen>,
}

/// The last sight of a standby.
#[derive(Debug, Clone)]
struct Seen {
    replay_lsn: Option<String>,
    replay_lag: Duration,
    at: Instant,
    wall: SystemTime,
}

/// Parses an LSN (`16/B374D848`) into its byte position.
pub fn parse_lsn(lsn: &str) -> Option<u64> {
    let (hi, lo) = lsn.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) + u64::from_str_radix(lo, 16).ok()?)
}

impl ReplayTracker {
    /// Standbys seen earlier that are no longer connected, as rows whose lag
    /// is what can be known for sure: at least the time since they were last
    /// seen (plus their lag then), and at least the WAL written since their
    /// last replayed position. A limit cutover cannot measure counts as
    /// exceeded; released names are left out. Remembers the present ones.
    pub fn gone(
        &mut self,
        present: &[ReplicaLag],
        current_lsn: Option<&str>,
        released: &[String],
        now: Instant,
    ) -> Vec<ReplicaLag> {
        for r in present {
            let lsn = self.last.get(&r.name).map(|(l, _)| l.clone());
            self.seen.insert(
                r.name.clone(),
                Seen {
                    replay_lsn: lsn.filter(|l| !l.is_empty()),
                    replay_lag: r.replay_lag,
                    at: now,
                    wall: SystemTime::now(),
                },
            );
        }
        let current = current_lsn.and_then(parse_lsn);
        let mut gone: Vec<ReplicaLag> = self
            .seen
            .iter()
            .filter(|(name, _)| {
                !present.iter().any(|r| &r.name == *name) && !released.contains(*name)
            })
            .map(|(name, seen)| {
                let behind = match (current, seen.replay_lsn.as_deref().and_then(parse_lsn)) {
                    (Some(now_lsn), Some(then)) => now_lsn.saturating_sub(then) as i64,
                    _ => 0,
                };
                ReplicaLag {
                    name: name.clone(),
                    state: "gone".into(),
                    sent_bytes: behind,
                    replay_bytes: behind,
                    write_lag: Duration::ZERO,
                    flush_lag: Duration::ZERO,
                    replay_lag: seen.replay_lag + now.saturating_duration_since(seen.at),
                    gone_since: Some(seen.wall),
                }
            })
            .collect();
        gone.sort_by(|a, b| a.name.cmp(&b.name));
        gone
    }

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
                gone_since: None,
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

    fn row(name: &str, lag: u64) -> ReplicaLag {
        ReplicaLag {
            name: name.into(),
            state: "streaming".into(),
            sent_bytes: 0,
            replay_bytes: 0,
            write_lag: Duration::ZERO,
            flush_lag: Duration::ZERO,
            replay_lag: Duration::from_secs(lag),
            gone_since: None,
        }
    }

    #[test]
    fn a_replica_that_disappears_counts_as_behind_since_it_was_last_seen() {
        let mut t = ReplayTracker::default();
        let t0 = Instant::now();
        t.stalled_for("r1", "0/1000", 0, t0);
        assert!(t.gone(&[row("r1", 1)], Some("0/1000"), &[], t0).is_empty());
        let gone = t.gone(&[], Some("0/5000"), &[], t0 + Duration::from_secs(9));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].state, "gone");
        assert!(gone[0].gone_since.is_some());
        assert_eq!(gone[0].replay_lag, Duration::from_secs(10));
        assert_eq!(gone[0].replay_bytes, 0x4000);
        // Released by the operator: no longer counted.
        assert!(
            t.gone(
                &[],
                Some("0/5000"),
                &["r1".into()],
                t0 + Duration::from_secs(10)
            )
            .is_empty()
        );
        // Back again: an ordinary row, nothing synthesised.
        assert!(t.gone(&[row("r1", 0)], Some("0/5000"), &[], t0).is_empty());
    }

    #[test]
    fn lsns_parse_to_byte_positions() {
        assert_eq!(parse_lsn("0/10"), Some(16));
        assert_eq!(parse_lsn("1/0"), Some(1 << 32));
        assert_eq!(parse_lsn("zz"), None);
    }

    #[test]
    fn null_lag_is_zero() {
        assert_eq!(secs(None), Duration::ZERO);
        assert_eq!(secs(Some(1.5)), Duration::from_millis(1500));
    }
}
