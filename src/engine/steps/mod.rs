//! One file per step kind: each runs its statements against the database
//! (resuming where an earlier session stopped) and cleans up after an
//! abort. The statements themselves, and each step's undo, are built in
//! [`crate::statements`], which the dry run shares.

pub mod altered;
pub mod backfill;
pub mod batch;
pub mod constraint;
pub mod copy_rows;
pub mod create_index;
pub mod detach;
pub mod gate;
pub mod not_null;
pub mod primary_key;
pub mod replicate;
pub mod sql;
pub mod swap;
pub mod switchover;
pub mod sync_trigger;
pub mod vacuum_behind;
pub mod verify;
pub mod verify_across;
pub mod versions;

use super::control::{Control, Stop};
use super::emitter::Emitter;
use super::events::EventKind;
use crate::db::{Conn, DbError, RetryNotice, RetryPolicy};
use crate::journal::steps::Created;
use crate::journal::{StepRow, StepStatus};
use crate::plan::{Plan, Step};

pub use super::error::StepError;
/// How each step is undone (built with its statements, run by rollback).
pub use crate::statements::RecordedUndo;

/// What a step needs from the engine.
pub struct Ctx<'a> {
    /// The migration connection (DDL, batches, their checkpoints).
    pub conn: &'a Conn,
    /// The journal connection (records made apart from the work).
    pub journal_conn: &'a Conn,
    /// The plan.
    pub plan: &'a Plan,
    /// Journal run id.
    pub run_id: i64,
    /// Phase index.
    pub phase: usize,
    /// Step index.
    pub step: usize,
    /// The step's journal row (checkpoint of an interrupted backfill).
    pub journal: Option<&'a StepRow>,
    /// Lock-timeout retry policy from `[settings]`.
    pub policy: RetryPolicy,
    /// Inbox and abort.
    pub control: &'a mut Control,
    /// Events and progress.
    pub out: &'a Emitter,
    /// Step name, for messages.
    pub name: String,
    /// The latest monitor sample.
    pub monitor: &'a tokio::sync::watch::Receiver<std::sync::Arc<crate::monitor::MonitorState>>,
    /// What the monitor looks at.
    pub focus: &'a std::sync::Arc<std::sync::Mutex<crate::monitor::Focus>>,
    /// Run-wide counters for the guard.
    pub counters: &'a std::sync::Arc<super::control::Counters>,
    /// When the monitor started (for staleness before its first sample).
    pub monitor_started: std::time::Instant,
    /// The plan's other databases.
    pub databases: &'a crate::db::databases::Databases,
}

impl Ctx<'_> {
    /// Converts a database error: a cancel is the abort (or detach) that
    /// caused it; anything else fails the step.
    pub fn db_error(&self, e: DbError) -> StepError {
        // An abort wins over whatever the cancel did to the connection.
        if self.control.abort.is_aborted()
            && (matches!(e, DbError::Cancelled) || e.is_connection_lost())
        {
            return StepError::Stopped(Stop::Aborted(self.control.abort.reason()));
        }
        match e {
            DbError::Cancelled => StepError::Stopped(Stop::Detached),
            // The query only says "connection closed": the server's reason
            // (57P01 "terminating connection due to administrator command")
            // came on the connection itself.
            other if other.is_connection_lost() => match self.conn.closed_reason() {
                Some(reason) => StepError::Lost(DbError::Lost {
                    context: other.to_string(),
                    reason,
                }),
                None => StepError::Lost(other),
            },
            other => StepError::Db(other),
        }
    }

    /// Reports a lock-timeout retry.
    pub fn retry_reporter(&self) -> impl FnMut(&RetryNotice) + Send + 'static {
        let out = self.out.clone();
        let name = self.name.clone();
        let counters = self.counters.clone();
        move |n: &RetryNotice| {
            counters
                .lock_timeouts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            out.emit(EventKind::Retry {
                name: name.clone(),
                retry: n.retry,
                of: n.of,
                wait_ms: n.wait.as_millis() as u64,
                reason: n.reason.clone(),
            })
        }
    }

    /// Records, before the statement that creates it, an object this step
    /// creates: a clean-up after an interruption drops only such objects.
    pub async fn record_created(&self, object: &Created) -> Result<(), StepError> {
        crate::journal::steps::record_created(
            &self.journal_conn.client,
            self.run_id,
            self.phase,
            self.step,
            object,
        )
        .await
        .map_err(|e| self.db_error(e))
    }

    /// Every object this step has recorded creating, in any session, as
    /// the journal holds them now (empty if it cannot be read).
    pub async fn created_so_far(&self) -> Vec<Created> {
        crate::journal::steps(&self.journal_conn.client, self.run_id)
            .await
            .ok()
            .and_then(|rows| {
                rows.into_iter()
                    .find(|r| r.phase == self.phase as i32 && r.step == self.step as i32)
                    .map(|r| r.created)
            })
            .unwrap_or_default()
    }

    /// Objects this step recorded creating in an earlier session.
    pub fn created_before(&self) -> &[Created] {
        self.journal.map_or(&[], |r| r.created.as_slice())
    }

    /// Replaces the undo recorded when the step started (a step that found
    /// its object already there, made by someone else, must not drop it).
    pub async fn record_undo(&self, undo: &RecordedUndo) -> Result<(), StepError> {
        self.journal_conn
            .client
            .execute(
                "UPDATE cutover.steps SET undo = $4 WHERE run_id = $1 AND phase = $2 AND step = $3",
                &[
                    &self.run_id,
                    &(self.phase as i32),
                    &(self.step as i32),
                    &serde_json::to_value(undo).unwrap_or_default(),
                ],
            )
            .await
            .map_err(|e| self.db_error(DbError::sql("recording the step's undo", e)))?;
        Ok(())
    }

    /// SQL that marks this step done in the journal, appended to a
    /// transactional step so the work and its record commit together.
    pub fn mark_done_sql(&self) -> String {
        mark_sql(self.run_id, self.phase, self.step, StepStatus::Done)
    }
}

/// SQL that records a step's new status (done, or rolled back with its
/// checkpoint cleared), for appending to the statement that did the work.
pub fn mark_sql(run_id: i64, phase: usize, step: usize, status: StepStatus) -> String {
    let reset = if status == StepStatus::RolledBack {
        ", checkpoint = NULL, rows_done = 0, rows_updated = 0"
    } else {
        ""
    };
    format!(
        "UPDATE cutover.steps SET status = '{}', finished_at = now(){reset} \
         WHERE run_id = {run_id} AND phase = {phase} AND step = {step}",
        status.as_str()
    )
}

/// Runs a step; returns a one-line account of what it did.
pub async fn run(step: &Step, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    match step {
        Step::Sql(s) => sql::run(s, ctx).await,
        Step::CreateIndex(s) => create_index::run(s, ctx).await,
        Step::Backfill(s) => backfill::run(s, ctx).await,
        Step::Verify(s) => verify::run(s, ctx).await,
        Step::Gate(s) => gate::run(s, ctx).await,
        Step::CopyRows(s) => copy_rows::run(s, ctx).await,
        Step::SyncTrigger(s) => sync_trigger::run(s, ctx).await,
        Step::NotNull(s) => not_null::run(s, ctx).await,
        Step::Constraint(s) => constraint::run(s, ctx).await,
        Step::Swap(s) => swap::run(s, ctx).await,
        Step::RenameColumn(_) | Step::RenameTable(_) | Step::AddColumn(_) | Step::DropColumn(_) => {
            versions::run(step, ctx).await
        }
        Step::AlterColumn(_) | Step::DropConstraint(_) | Step::DropNotNull(_) => {
            altered::run(step, ctx).await
        }
        Step::Replicate(s) => replicate::run(s, ctx).await,
        Step::VerifyAcross(s) => verify_across::run(s, ctx).await,
        Step::Switchover(s) => switchover::run(s, ctx).await,
    }
}

/// Removes what an interrupted step left half-made (an INVALID index, a
/// NOT VALID constraint) — only objects the journal says this run created.
pub async fn clean_up(
    step: &Step,
    created: &[Created],
    conn: &Conn,
    databases: &crate::db::databases::Databases,
) -> Result<Option<String>, DbError> {
    match step {
        // A move: its subscription, slots, publication and tables made on
        // the other side; a switchover's freeze while still attached.
        Step::Replicate(_) | Step::Switchover(_) => detach::remove(created, conn, databases).await,
        Step::NotNull(s) => not_null::clean_up(s, created, conn).await,
        Step::Constraint(s) => constraint::clean_up(s, created, conn).await,
        // An index build (create_index, or a concurrent statement in a sql
        // step): its INVALID leftovers. Everything else is transactional
        // (sql, sync_trigger, swap) or batch-atomic (backfill, copy_rows).
        _ => create_index::clean_up_created(created, conn).await,
    }
}

/// Statements PostgreSQL refuses inside a transaction block; they cannot
/// commit together with their journal record.
pub fn needs_autocommit(sql: &str) -> bool {
    crate::sql::parse(sql)
        .iter()
        .any(crate::sql::Statement::needs_autocommit)
}

#[cfg(test)]
mod tests {
    use super::needs_autocommit;

    #[test]
    fn concurrent_and_vacuum_statements_run_outside_a_transaction() {
        assert!(needs_autocommit("CREATE INDEX CONCURRENTLY i ON t (c)"));
        assert!(needs_autocommit("drop index concurrently i"));
        assert!(needs_autocommit("VACUUM (ANALYZE) users"));
        assert!(!needs_autocommit("ALTER TABLE users ADD COLUMN c int"));
        assert!(!needs_autocommit("UPDATE t SET vacuum = 1 WHERE id = 2"));
    }
}
