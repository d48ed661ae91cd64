//! Durable run state in the target database (schema `cutover`): runs, step
//! states with backfill checkpoints, events, the per-plan advisory lock, and
//! the control channel other terminals use (`cutover advance|pause|…`).

pub mod control;
pub mod events;
pub mod history;
pub mod lock;
pub mod ranges;
pub mod runs;
pub mod schema;
pub mod steps;

use serde::Serialize;
use tokio_postgres::Client;

use crate::db::DbError;

/// Runs `work` in one transaction on `client`: committed when it succeeds,
/// rolled back (its error returned) when it fails.
pub(crate) async fn in_transaction<T>(
    client: &Client,
    context: &str,
    work: impl std::future::Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| DbError::sql(context, e))?;
    match work.await {
        Ok(value) => {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| DbError::sql(context, e))?;
            Ok(value)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// The journal connection of a run, shared with the event forwarder and
/// swapped when the run reconnects.
pub type JournalSlot = std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<crate::db::Conn>>>>;

pub use control::{CONTROL_CHANNEL, RemoteCommand, send_remote};
pub use events::{recent_events, record_event};
pub use lock::{LockHolder, lock_holder, plan_lock_key, try_lock_plan};
pub use runs::{
    RunRow, create_run, latest_run, list_runs, run_by_id, set_run_status, unfinished_run,
};
pub use steps::{NewStep, StepRow, set_step_status, steps};

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
