//! Migration history: what was applied, derived from the runs that finished
//! plus the plans a baseline marked as applied without running them.

use serde::Serialize;
use tokio_postgres::Client;

use crate::db::DbError;

/// How a plan came to count as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum AppliedBy {
    /// A run of it finished.
    Run {
        /// The run.
        run_id: i64,
    },
    /// A baseline marked it.
    Baseline,
}

/// One applied plan.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The plan's `name`.
    pub plan: String,
    /// The plan file, as given when it was applied.
    pub file: String,
    /// SHA-256 of the file then.
    pub hash: String,
    /// When it finished (or was marked), RFC 3339 UTC.
    pub finished_at: String,
    /// The database role that applied (or marked) it; `None` for runs
    /// recorded before the journal kept it.
    pub by: Option<String>,
    /// The machine it ran from (a run), if known.
    pub host: Option<String>,
    /// A run, or a baseline.
    pub how: AppliedBy,
}

/// Every plan's latest finished run, and every baseline mark, oldest first
/// (a baseline's marks in the order they were made).
const APPLIED: &str = "
SELECT plan_name, plan_path, plan_hash,
       to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
       db_user::text, host, id, finished_at AS at, 1 AS source
FROM (SELECT DISTINCT ON (plan_name) * FROM cutover.runs
      WHERE status = 'finished' ORDER BY plan_name, id DESC) r
UNION ALL
SELECT plan_name, plan_path, plan_hash,
       to_char(marked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
       marked_by::text, NULL, id, marked_at, 0
FROM cutover.baselines
ORDER BY at, source, id";

/// What was applied, oldest first (one entry per plan run to the end, and
/// one per baselined plan).
pub async fn applied(client: &Client) -> Result<Vec<Applied>, DbError> {
    let rows = client
        .query(APPLIED, &[])
        .await
        .map_err(|e| DbError::sql("reading the migration history", e))?;
    Ok(rows
        .iter()
        .map(|r| Applied {
            plan: r.get(0),
            file: r.get(1),
            hash: r.get(2),
            finished_at: r.get::<_, Option<String>>(3).unwrap_or_default(),
            by: r.get(4),
            host: r.get(5),
            how: match r.get::<_, i32>(8) {
                1 => AppliedBy::Run { run_id: r.get(6) },
                _ => AppliedBy::Baseline,
            },
        })
        .collect())
}

/// A plan a baseline marks as applied.
#[derive(Debug, Clone)]
pub struct BaselineMark {
    /// The plan's `name`.
    pub plan: String,
    /// The plan file.
    pub file: String,
    /// SHA-256 of the file.
    pub hash: String,
}

const MARK: &str = "INSERT INTO cutover.baselines (plan_name, plan_path, plan_hash)
     VALUES ($1, $2, $3) ON CONFLICT (plan_name) DO NOTHING";

/// Marks plans as applied, in one transaction; returns how many were new
/// (a plan already marked keeps its first mark).
pub async fn record_baseline(client: &Client, marks: &[BaselineMark]) -> Result<u64, DbError> {
    super::in_transaction(client, "recording the baseline", async {
        let mut new = 0;
        for m in marks {
            new += client
                .execute(MARK, &[&m.plan, &m.file, &m.hash])
                .await
                .map_err(|e| DbError::sql("recording the baseline", e))?;
        }
        Ok(new)
    })
    .await
}
