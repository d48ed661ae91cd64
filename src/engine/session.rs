//! A run's two connections — one for the work (DDL, batches), one for the
//! journal and the control doorbell — how they are opened with the plan's
//! driver lock, and how they are opened again when they drop mid-run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::control::AbortHandle;
use super::emitter::Emitter;
use super::error::RunError;
use super::events::EventKind;
use crate::db::{Conn, DbError, Target};
use crate::journal;
use crate::plan::LoadedPlan;

pub use crate::journal::JournalSlot;

/// What every session (run or rollback) starts with.
pub(crate) struct Session {
    /// DDL, batches and their checkpoints.
    pub work: Conn,
    /// The journal, the plan's lock and the control doorbell (LISTEN).
    pub journal: Arc<Conn>,
    /// Notifications on the journal connection.
    pub notifications: mpsc::UnboundedReceiver<tokio_postgres::Notification>,
}

impl Session {
    /// The backend pids of both connections.
    pub fn pids(&self) -> Vec<i32> {
        vec![self.work.pid(), self.journal.pid()]
    }
}

/// Connects both connections, prepares the journal, and takes the plan's
/// lock (refusing, with the holder named, if another cutover has it).
/// `own_pids` are backends of this same process from before a reconnect:
/// if one of them still holds the lock (the server has not noticed the
/// connection died), it is terminated and the lock taken over.
pub(crate) async fn open_session(
    plan: &LoadedPlan,
    target: &Target,
    out: &Emitter,
    slot: &JournalSlot,
    own_pids: &[i32],
) -> Result<Session, RunError> {
    let (journal_conn, notifications) = Conn::connect_listening(target).await?;
    let journal_conn = Arc::new(journal_conn);
    if let Ok(mut s) = slot.lock() {
        *s = Some(journal_conn.clone());
    }
    let work = Conn::connect(target).await?;
    let version: String = work
        .client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(|e| DbError::sql("reading the server version", e))?
        .get(0);
    out.emit(EventKind::Connected {
        target: target.display(),
        server_version: version,
    });
    journal::schema::ensure(&journal_conn.client).await?;
    let name = &plan.plan.name;
    let mut holder = journal::try_lock_plan(&journal_conn.client, name).await?;
    if let Some(h) = &holder
        && own_pids.contains(&h.backend_pid)
    {
        // Our own connection from before the drop, still open on the server.
        let _ = journal_conn
            .client
            .execute("SELECT pg_terminate_backend($1, 5000)", &[&h.backend_pid])
            .await;
        holder = journal::try_lock_plan(&journal_conn.client, name).await?;
    }
    if let Some(holder) = holder {
        let driver = journal::unfinished_run(&journal_conn.client, name)
            .await
            .ok()
            .flatten()
            .map(|r| {
                format!(
                    " (run #{} driven by cutover pid {} on {})",
                    r.id, r.os_pid, r.host
                )
            })
            .unwrap_or_default();
        return Err(RunError::Refused(format!(
            "plan \"{name}\" is already being run by another cutover{driver}, database session pid {}{}; \
             only one cutover may drive a plan. Watch it with `cutover status {}`, or stop it with `cutover abort {}`",
            holder.backend_pid,
            holder
                .client_addr
                .map(|a| format!(" from {a}"))
                .unwrap_or_default(),
            plan.path.display(),
            plan.path.display(),
        )));
    }
    journal_conn
        .client
        .batch_execute(&format!("LISTEN {}", journal::CONTROL_CHANNEL))
        .await
        .map_err(|e| DbError::sql("listening for commands from other terminals", e))?;
    Ok(Session {
        work,
        journal: journal_conn,
        notifications,
    })
}

/// Opens the session again after its connections dropped, with backoff, for
/// at most `bound`. Stops early on an abort, or when another cutover has
/// taken the plan (a refusal).
pub(crate) async fn reconnect(
    plan: &LoadedPlan,
    target: &Target,
    out: &Emitter,
    slot: &JournalSlot,
    own_pids: &[i32],
    bound: Duration,
    abort: &AbortHandle,
) -> Result<Session, RunError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(250);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match open_session(plan, target, out, slot, own_pids).await {
            Ok(session) => return Ok(session),
            Err(RunError::Refused(why)) => return Err(RunError::Refused(why)),
            Err(e) => {
                let left = bound.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(e);
                }
                out.emit(EventKind::Notice {
                    message: format!(
                        "reconnect attempt {attempt} failed: {e}; trying again in {} ({}s left)",
                        humantime::format_duration(wait),
                        left.as_secs()
                    ),
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait.min(left)) => {}
                    _ = abort.token().cancelled() => {
                        return Err(RunError::Failed(format!(
                            "{} while reconnecting (after the connection was lost: {e})",
                            abort.reason()
                        )));
                    }
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
