//! How a run is started, and how it (or a rollback) ended.

/// How a run is started.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Release every gate automatically.
    pub yes: bool,
    /// Resume even though the plan file changed.
    pub force_changed_plan: bool,
    /// The plan's other databases (`--database NAME=URL`).
    pub databases: crate::db::databases::Databases,
}

/// How a run (or rollback) session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every step done.
    Finished,
    /// The plan's last run already finished; nothing to do.
    AlreadyFinished {
        /// That run.
        run_id: i64,
    },
    /// A step (or cutover) failed.
    Failed(String),
    /// Refused before anything changed; the journal is as it was.
    Refused(String),
    /// Aborted, with the reason.
    Aborted(String),
    /// Paused and let go; resumable.
    Detached,
    /// Rollback done.
    RolledBack,
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Finished | Outcome::AlreadyFinished { .. } | Outcome::RolledBack => {
                crate::exit::OK
            }
            Outcome::Failed(_) | Outcome::Refused(_) => crate::exit::FAILED,
            Outcome::Aborted(_) => crate::exit::ABORTED,
            Outcome::Detached => crate::exit::DETACHED,
        }
    }
}
