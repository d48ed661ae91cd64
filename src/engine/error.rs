//! The engine's errors, typed so callers can tell a refusal (nothing
//! changed) from a lost connection (worth a reconnect) from a failure, and
//! so the server's SQLSTATE and message survive to the operator's screen.

use super::control::Stop;
use crate::db::DbError;

/// Why a step did not finish.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Aborted or detached.
    #[error("stopped: {0:?}")]
    Stopped(Stop),
    /// It failed; the message says why and what to do.
    #[error("{0}")]
    Failed(String),
    /// A statement failed (the server's message and SQLSTATE kept).
    #[error("{0}")]
    Db(DbError),
    /// The connection went away mid-step.
    #[error("{0}")]
    Lost(DbError),
}

impl From<Stop> for StepError {
    fn from(stop: Stop) -> Self {
        StepError::Stopped(stop)
    }
}

impl StepError {
    /// The message for the journal and the screen, if it failed.
    pub fn failure(&self) -> Option<String> {
        match self {
            StepError::Stopped(_) => None,
            other => Some(other.to_string()),
        }
    }
}

/// Why a run (or rollback) session ended early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Refused before anything changed (the journal is exactly as it was).
    #[error("{0}")]
    Refused(String),
    /// A database operation of cutover's own failed.
    #[error("{0}")]
    Db(#[from] DbError),
    /// A step's connection went away (the step's own error).
    #[error("{0}")]
    Lost(DbError),
    /// Anything else; the message says what to do.
    #[error("{0}")]
    Failed(String),
}

impl RunError {
    /// The session is gone and a reconnect may heal it.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            RunError::Lost(_) => true,
            RunError::Db(e) => e.is_connection_lost(),
            _ => false,
        }
    }
}

impl From<String> for RunError {
    fn from(message: String) -> Self {
        RunError::Failed(message)
    }
}
