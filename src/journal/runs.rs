//! Run rows: one per attempt to take a plan through its phases.

use tokio_postgres::Client;

use super::RunStatus;
use super::steps::NewStep;
use crate::db::DbError;

/// A run row.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// The plan's `name`.
    pub plan_name: String,
    /// SHA-256 of the plan file when the run started.
    pub plan_hash: String,
    /// The plan file's path when the run started.
    pub plan_path: String,
    /// Where it stands.
    pub status: RunStatus,
    /// Current phase index.
    pub phase: i32,
    /// Current step index.
    pub step: i32,
    /// Why it stopped (abort reason, error).
    pub reason: Option<String>,
    /// The machine driving (or last driving) it.
    pub host: String,
    /// The cutover process id there.
    pub os_pid: i32,
    /// When it started.
    pub started_at: std::time::SystemTime,
    /// Last change.
    pub updated_at: std::time::SystemTime,
}

const RUN_COLUMNS: &str = "id, plan_name, plan_hash, plan_path, status, phase, step, reason, host, os_pid, started_at, updated_at";

fn run_from_row(r: &tokio_postgres::Row) -> RunRow {
    RunRow {
        id: r.get(0),
        plan_name: r.get(1),
        plan_hash: r.get(2),
        plan_path: r.get(3),
        status: RunStatus::parse(r.get::<_, &str>(4)).unwrap_or(RunStatus::Failed),
        phase: r.get(5),
        step: r.get(6),
        reason: r.get(7),
        host: r.get(8),
        os_pid: r.get(9),
        started_at: r.get(10),
        updated_at: r.get(11),
    }
}

/// The unfinished run of a plan, if any.
pub async fn unfinished_run(client: &Client, plan_name: &str) -> Result<Option<RunRow>, DbError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM cutover.runs
         WHERE plan_name = $1 AND status NOT IN ('finished', 'rolled_back')"
    );
    let row = client
        .query_opt(&sql, &[&plan_name])
        .await
        .map_err(|e| DbError::sql("reading the run of this plan", e))?;
    Ok(row.as_ref().map(run_from_row))
}

/// The most recent run of a plan, finished or not.
pub async fn latest_run(client: &Client, plan_name: &str) -> Result<Option<RunRow>, DbError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM cutover.runs WHERE plan_name = $1 ORDER BY id DESC LIMIT 1"
    );
    let row = client
        .query_opt(&sql, &[&plan_name])
        .await
        .map_err(|e| DbError::sql("reading the latest run of this plan", e))?;
    Ok(row.as_ref().map(run_from_row))
}

/// Every run, newest first (optionally of one plan).
pub async fn list_runs(client: &Client, plan_name: Option<&str>) -> Result<Vec<RunRow>, DbError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM cutover.runs WHERE $1::text IS NULL OR plan_name = $1
         ORDER BY id DESC LIMIT 100"
    );
    let rows = client
        .query(&sql, &[&plan_name])
        .await
        .map_err(|e| DbError::sql("listing runs", e))?;
    Ok(rows.iter().map(run_from_row).collect())
}

/// A run by its id.
pub async fn run_by_id(client: &Client, run_id: i64) -> Result<Option<RunRow>, DbError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM cutover.runs WHERE id = $1");
    let row = client
        .query_opt(&sql, &[&run_id])
        .await
        .map_err(|e| DbError::sql("reading the run", e))?;
    Ok(row.as_ref().map(run_from_row))
}

/// Creates a run with all its steps pending.
pub async fn create_run(
    client: &Client,
    plan_name: &str,
    plan_hash: &str,
    plan_path: &str,
    steps: &[NewStep<'_>],
) -> Result<RunRow, DbError> {
    let ctx = |e| DbError::sql("recording the new run", e);
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into());
    let os_pid = std::process::id() as i32;
    super::in_transaction(client, "recording the new run", async {
        let sql = format!(
            "INSERT INTO cutover.runs (plan_name, plan_hash, plan_path, status, host, os_pid)
             VALUES ($1, $2, $3, 'running', $4, $5) RETURNING {RUN_COLUMNS}"
        );
        let row = client
            .query_one(&sql, &[&plan_name, &plan_hash, &plan_path, &host, &os_pid])
            .await
            .map_err(ctx)?;
        let run = run_from_row(&row);
        for s in steps {
            client
                .execute(
                    "INSERT INTO cutover.steps
                         (run_id, phase, step, phase_name, name, kind, fingerprint, spec, irreversible)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        &run.id,
                        &s.phase,
                        &s.step,
                        &s.phase_name,
                        &s.name,
                        &s.kind,
                        &s.fingerprint,
                        &s.spec,
                        &s.irreversible,
                    ],
                )
                .await
                .map_err(ctx)?;
        }
        Ok::<RunRow, DbError>(run)
    })
    .await
}

/// Sets a run's status, position and reason; claims it for this process.
pub async fn set_run_status(
    client: &Client,
    run_id: i64,
    status: RunStatus,
    position: Option<(usize, usize)>,
    reason: Option<&str>,
) -> Result<(), DbError> {
    let (phase, step) = position.map_or((None, None), |(p, s)| (Some(p as i32), Some(s as i32)));
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into());
    client
        .execute(
            "UPDATE cutover.runs SET status = $2, phase = coalesce($3, phase), step = coalesce($4, step),
                 reason = $5, updated_at = now(), host = $6, os_pid = $7,
                 finished_at = CASE WHEN $2 IN ('finished', 'rolled_back') THEN now() END
             WHERE id = $1",
            &[
                &run_id,
                &status.as_str(),
                &phase,
                &step,
                &reason,
                &host,
                &(std::process::id() as i32),
            ],
        )
        .await
        .map_err(|e| DbError::sql("recording the run's status", e))?;
    Ok(())
}

/// Records the plan file's new hash (a resume with `--force-changed-plan`).
pub async fn set_plan_hash(client: &Client, run_id: i64, plan_hash: &str) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE cutover.runs SET plan_hash = $2 WHERE id = $1",
            &[&run_id, &plan_hash],
        )
        .await
        .map_err(|e| DbError::sql("recording the edited plan's hash", e))?;
    Ok(())
}

/// Records the driver's latest progress for `cutover status`.
pub async fn set_snapshot(
    client: &Client,
    run_id: i64,
    snapshot: &serde_json::Value,
) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE cutover.runs SET snapshot = $2, snapshot_at = now() WHERE id = $1",
            &[&run_id, snapshot],
        )
        .await
        .map_err(|e| DbError::sql("recording the run's progress", e))?;
    Ok(())
}

/// The driver's latest progress and how old it is (seconds).
pub async fn snapshot(
    client: &Client,
    run_id: i64,
) -> Result<Option<(serde_json::Value, f64)>, DbError> {
    let row = client
        .query_opt(
            "SELECT snapshot, extract(epoch FROM now() - snapshot_at)::float8 FROM cutover.runs
             WHERE id = $1 AND snapshot IS NOT NULL",
            &[&run_id],
        )
        .await
        .map_err(|e| DbError::sql("reading the run's progress", e))?;
    Ok(row.map(|r| (r.get(0), r.get::<_, Option<f64>>(1).unwrap_or(0.0))))
}
