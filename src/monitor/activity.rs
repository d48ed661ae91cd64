//! Activity: long transactions (they stall concurrent index builds and
//! validation), session counts, and tps / rollbacks from counter deltas.

use std::time::{Duration, Instant};

use super::sample::OpenXact;

pub const OPEN_XACTS: &str = "
SELECT pid, coalesce(state, ''), extract(epoch FROM now() - xact_start)::float8,
       age(backend_xmin), coalesce(application_name, ''), left(coalesce(query, ''), 200)
FROM pg_stat_activity
WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'
ORDER BY xact_start LIMIT 5";

pub const COUNTS: &str = "
SELECT count(*) FILTER (WHERE state = 'active'),
       count(*) FILTER (WHERE state LIKE 'idle in transaction%'),
       (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()),
       (SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database())
FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND coalesce(application_name, '') <> 'cutover'";

/// Transactions cutover itself rolled back (lock-timeout retries, probe and
/// monitor statements that gave up): the database's rollback counter
/// includes them, the application's rate must not.
static OWN_ROLLBACKS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Counts one transaction cutover rolled back.
pub fn count_own_rollback() {
    OWN_ROLLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// cutover's rollbacks so far.
pub fn own_rollbacks() -> i64 {
    OWN_ROLLBACKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Turns cumulative counters into rates.
#[derive(Debug, Default)]
pub struct Rates {
    last: Option<(Instant, i64, i64)>,
}

impl Rates {
    /// Records totals; returns (transactions/s, rollbacks/s) since last time.
    pub fn update(&mut self, at: Instant, xacts: i64, rollbacks: i64) -> (f64, f64) {
        let rates = match self.last {
            Some((t, x, r)) if at > t => {
                let dt = at.duration_since(t).as_secs_f64();
                (
                    ((xacts - x).max(0)) as f64 / dt,
                    ((rollbacks - r).max(0)) as f64 / dt,
                )
            }
            _ => (0.0, 0.0),
        };
        self.last = Some((at, xacts, rollbacks));
        rates
    }
}

/// What the activity queries return.
pub struct Activity {
    /// Oldest open transactions.
    pub open_xacts: Vec<OpenXact>,
    /// Sessions running a query.
    pub active: i64,
    /// Sessions idle in a transaction.
    pub idle_in_xact: i64,
    /// Transactions per second.
    pub tps: f64,
    /// Rollbacks per second.
    pub rollbacks_per_sec: f64,
}

/// Reads the two activity results.
pub fn parse(
    xacts: &[tokio_postgres::Row],
    counts: &tokio_postgres::Row,
    rates: &mut Rates,
) -> Activity {
    // The application's rollbacks: the database's, less cutover's own.
    let (tps, rollbacks_per_sec) = rates.update(
        Instant::now(),
        counts.get::<_, Option<i64>>(2).unwrap_or(0),
        counts.get::<_, Option<i64>>(3).unwrap_or(0) - own_rollbacks(),
    );
    Activity {
        open_xacts: xacts
            .iter()
            .map(|r| OpenXact {
                pid: r.get(0),
                state: r.get(1),
                age: Duration::from_secs_f64(r.get::<_, Option<f64>>(2).unwrap_or(0.0).max(0.0)),
                xmin_age: r.get(3),
                application: r.get(4),
                query: r.get(5),
            })
            .collect(),
        active: counts.get(0),
        idle_in_xact: counts.get(1),
        tps,
        rollbacks_per_sec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_deltas() {
        let mut r = Rates::default();
        let t0 = Instant::now();
        assert_eq!(r.update(t0, 1000, 10), (0.0, 0.0));
        let (tps, rb) = r.update(t0 + Duration::from_secs(2), 1600, 30);
        assert!((tps - 300.0).abs() < 1e-9 && (rb - 10.0).abs() < 1e-9);
        // A stats reset never yields negative rates.
        assert_eq!(r.update(t0 + Duration::from_secs(3), 0, 0), (0.0, 0.0));
    }
}
