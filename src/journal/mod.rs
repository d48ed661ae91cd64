//! Durable run state in the target database (schema `cutover`): runs, step
//! states with backfill checkpoints, events, the per-plan advisory lock, and
//! the control channel other terminals use (`cutover advance|pause|…`).

pub mod schema;

use serde::Serialize;
use tokio_postgres::Client;

use crate::db::DbError;

/// Status of a run, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Steps are executing.
    Running,
    /// Waiting at a gate for the operator.
    Waiting,
    /// Paused by the operator, or detached; `cutover run` resumes.
    Paused,
    /// Stopped by an abort; `cutover run` resumes.
    Aborted,
    /// A step failed; fix the cause, then `cutover run` resumes.
    Failed,
    /// Undoing steps.
    RollingBack,
    /// Every step done.
    Finished,
    /// Every step undone.
    RolledBack,
}

impl RunStatus {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Paused => "paused",
            RunStatus::Aborted => "aborted",
            RunStatus::Failed => "failed",
            RunStatus::RollingBack => "rolling_back",
            RunStatus::Finished => "finished",
            RunStatus::RolledBack => "rolled_back",
        }
    }

    /// Parses the stored word.
    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "running" => RunStatus::Running,
            "waiting" => RunStatus::Waiting,
            "paused" => RunStatus::Paused,
            "aborted" => RunStatus::Aborted,
            "failed" => RunStatus::Failed,
            "rolling_back" => RunStatus::RollingBack,
            "finished" => RunStatus::Finished,
            "rolled_back" => RunStatus::RolledBack,
            _ => return None,
        })
    }
}

/// Status of one step, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started (or undone and to be redone).
    Pending,
    /// Started, not finished (a backfill may have a checkpoint).
    Running,
    /// Finished.
    Done,
    /// Failed; retried on resume.
    Failed,
    /// Undone by a rollback.
    RolledBack,
}

impl StepStatus {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::RolledBack => "rolled_back",
        }
    }

    /// Parses the stored word.
    pub fn parse(s: &str) -> StepStatus {
        match s {
            "running" => StepStatus::Running,
            "done" => StepStatus::Done,
            "failed" => StepStatus::Failed,
            "rolled_back" => StepStatus::RolledBack,
            _ => StepStatus::Pending,
        }
    }
}

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

/// A step row.
#[derive(Debug, Clone)]
pub struct StepRow {
    /// Phase index.
    pub phase: i32,
    /// Step index within the phase.
    pub step: i32,
    /// Step name.
    pub name: String,
    /// Step kind.
    pub kind: String,
    /// Where it stands.
    pub status: StepStatus,
    /// The last key a backfill committed.
    pub last_key: Option<String>,
    /// Keys covered so far.
    pub rows_done: i64,
    /// Rows changed so far.
    pub rows_updated: i64,
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

/// A step of the plan, as the journal records it.
pub struct NewStep<'a> {
    /// Phase index.
    pub phase: i32,
    /// Step index.
    pub step: i32,
    /// Phase name.
    pub phase_name: &'a str,
    /// Step name.
    pub name: &'a str,
    /// Step kind.
    pub kind: &'a str,
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
    client.batch_execute("BEGIN").await.map_err(ctx)?;
    let result = async {
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
                    "INSERT INTO cutover.steps (run_id, phase, step, phase_name, name, kind)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&run.id, &s.phase, &s.step, &s.phase_name, &s.name, &s.kind],
                )
                .await
                .map_err(ctx)?;
        }
        Ok::<RunRow, DbError>(run)
    }
    .await;
    match result {
        Ok(run) => {
            client.batch_execute("COMMIT").await.map_err(ctx)?;
            Ok(run)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// The steps of a run, in order.
pub async fn steps(client: &Client, run_id: i64) -> Result<Vec<StepRow>, DbError> {
    let rows = client
        .query(
            "SELECT phase, step, name, kind, status, checkpoint->>'last_key', rows_done, rows_updated
             FROM cutover.steps WHERE run_id = $1 ORDER BY phase, step",
            &[&run_id],
        )
        .await
        .map_err(|e| DbError::sql("reading the run's steps", e))?;
    Ok(rows
        .iter()
        .map(|r| StepRow {
            phase: r.get(0),
            step: r.get(1),
            name: r.get(2),
            kind: r.get(3),
            status: StepStatus::parse(r.get(4)),
            last_key: r.get(5),
            rows_done: r.get(6),
            rows_updated: r.get(7),
        })
        .collect())
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

/// Sets one step's status (and detail).
pub async fn set_step_status(
    client: &Client,
    run_id: i64,
    phase: usize,
    step: usize,
    status: StepStatus,
    detail: Option<&str>,
) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE cutover.steps SET status = $4, detail = coalesce($5, detail),
                 started_at = CASE WHEN $4 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
                 finished_at = CASE WHEN $4 IN ('done', 'failed', 'rolled_back') THEN now() END,
                 checkpoint = CASE WHEN $4 IN ('rolled_back', 'pending') THEN NULL ELSE checkpoint END,
                 rows_done = CASE WHEN $4 IN ('rolled_back', 'pending') THEN 0 ELSE rows_done END,
                 rows_updated = CASE WHEN $4 IN ('rolled_back', 'pending') THEN 0 ELSE rows_updated END
             WHERE run_id = $1 AND phase = $2 AND step = $3",
            &[
                &run_id,
                &(phase as i32),
                &(step as i32),
                &status.as_str(),
                &detail,
            ],
        )
        .await
        .map_err(|e| DbError::sql("recording a step's status", e))?;
    Ok(())
}

/// Appends an event to the run's log.
pub async fn record_event(
    client: &Client,
    run_id: i64,
    level: &str,
    message: &str,
    data: &serde_json::Value,
) -> Result<(), DbError> {
    client
        .execute(
            "INSERT INTO cutover.events (run_id, level, message, data) VALUES ($1, $2, $3, $4)",
            &[&run_id, &level, &message, data],
        )
        .await
        .map_err(|e| DbError::sql("recording an event", e))?;
    Ok(())
}

/// The last events of a run, oldest first.
pub async fn recent_events(
    client: &Client,
    run_id: i64,
    limit: i64,
) -> Result<Vec<(std::time::SystemTime, String, String)>, DbError> {
    let rows = client
        .query(
            "SELECT at, level, message FROM (
                 SELECT id, at, level, message FROM cutover.events WHERE run_id = $1
                 ORDER BY id DESC LIMIT $2) e ORDER BY id",
            &[&run_id, &limit],
        )
        .await
        .map_err(|e| DbError::sql("reading events", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// The advisory lock key of a plan: one driver per plan per database.
pub fn plan_lock_key(plan_name: &str) -> String {
    format!("cutover plan {plan_name}")
}

/// Who holds a plan's lock.
#[derive(Debug, Clone)]
pub struct LockHolder {
    /// The holder's backend pid.
    pub backend_pid: i32,
    /// Its client address.
    pub client_addr: Option<String>,
    /// Since when it is connected.
    pub backend_start: Option<std::time::SystemTime>,
}

/// Takes the plan's session-level advisory lock, or names who holds it.
pub async fn try_lock_plan(
    client: &Client,
    plan_name: &str,
) -> Result<Option<LockHolder>, DbError> {
    let key = plan_lock_key(plan_name);
    let got: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(|e| DbError::sql("taking the plan's advisory lock", e))?
        .get(0);
    if got {
        return Ok(None);
    }
    Ok(Some(lock_holder(client, plan_name).await?.unwrap_or(
        LockHolder {
            backend_pid: 0,
            client_addr: None,
            backend_start: None,
        },
    )))
}

/// The session holding a plan's advisory lock, if any (a live driver).
pub async fn lock_holder(client: &Client, plan_name: &str) -> Result<Option<LockHolder>, DbError> {
    let key = plan_lock_key(plan_name);
    // A bigint advisory key is stored as classid (high 32 bits) and objid
    // (low 32 bits) with objsubid = 1.
    let row = client
        .query_opt(
            "WITH k AS (SELECT hashtextextended($1, 0) AS key)
             SELECT a.pid, a.client_addr::text, a.backend_start
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid, k
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid::bigint = ((k.key >> 32) & 4294967295)
               AND l.objid::bigint = (k.key & 4294967295)
             LIMIT 1",
            &[&key],
        )
        .await
        .map_err(|e| DbError::sql("finding the plan's driver", e))?;
    Ok(row.map(|r| LockHolder {
        backend_pid: r.get(0),
        client_addr: r.get(1),
        backend_start: r.get(2),
    }))
}

/// The NOTIFY channel remote commands are sent on.
pub const CONTROL_CHANNEL: &str = "cutover_control";

/// A command another terminal sends to a running engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteCommand {
    /// Release the gate.
    Advance,
    /// Pause at the next safe point.
    Pause,
    /// Resume.
    Resume,
    /// Abort now.
    Abort,
}

impl RemoteCommand {
    /// The word sent.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteCommand::Advance => "advance",
            RemoteCommand::Pause => "pause",
            RemoteCommand::Resume => "resume",
            RemoteCommand::Abort => "abort",
        }
    }

    /// Parses a NOTIFY payload `"<run id> <command>"`.
    pub fn parse_payload(payload: &str) -> Option<(i64, RemoteCommand)> {
        let (id, word) = payload.split_once(' ')?;
        let cmd = match word {
            "advance" => RemoteCommand::Advance,
            "pause" => RemoteCommand::Pause,
            "resume" => RemoteCommand::Resume,
            "abort" => RemoteCommand::Abort,
            _ => return None,
        };
        Some((id.parse().ok()?, cmd))
    }
}

/// Sends a command to the engine driving a run (NOTIFY is transactional and
/// reaches every listener within milliseconds).
pub async fn send_remote(client: &Client, run_id: i64, cmd: RemoteCommand) -> Result<(), DbError> {
    client
        .execute(
            "SELECT pg_notify($1, $2)",
            &[&CONTROL_CHANNEL, &format!("{run_id} {}", cmd.as_str())],
        )
        .await
        .map_err(|e| DbError::sql("sending the command", e))?;
    Ok(())
}
