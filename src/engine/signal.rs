//! The engine's inbox: every command is passed on to the run, except a
//! request to cancel or terminate a blocking session, which is done at once
//! (the step it blocks is waiting, not at a safe point).

use tokio::sync::mpsc;

use super::control::Command;
use super::emitter::Emitter;
use super::events::EventKind;
use super::session::JournalSlot;

/// Forwards commands until the frontends or the engine are gone; signals
/// sessions. It ends with the engine, so its copy of the emitter never keeps
/// the event stream open after the run.
pub(crate) async fn inbox(
    mut from_frontends: mpsc::Receiver<Command>,
    to_engine: mpsc::Sender<Command>,
    slot: JournalSlot,
    out: Emitter,
) {
    loop {
        let cmd = tokio::select! {
            cmd = from_frontends.recv() => match cmd {
                Some(cmd) => cmd,
                None => return,
            },
            _ = to_engine.closed() => return,
        };
        match cmd {
            Command::SignalSession { pid, terminate, by } => {
                let message = signal(&slot, pid, terminate, &by).await;
                out.emit(EventKind::Notice { message });
            }
            other => {
                if to_engine.send(other).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Cancels or terminates one session, refusing cutover's own; says what
/// happened.
async fn signal(slot: &JournalSlot, pid: i32, terminate: bool, by: &str) -> String {
    let what = if terminate { "terminate" } else { "cancel" };
    let Some(conn) = slot.lock().ok().and_then(|c| c.clone()) else {
        return format!("cannot {what} session {pid}: not connected yet");
    };
    let row = conn
        .client
        .query_opt(
            "SELECT coalesce(application_name, ''), pid = pg_backend_pid(),
                    CASE WHEN $2 THEN pg_terminate_backend(pid) ELSE pg_cancel_backend(pid) END
             FROM pg_stat_activity WHERE pid = $1 AND coalesce(application_name, '') <> 'cutover'",
            &[&pid, &terminate],
        )
        .await;
    match row {
        Ok(Some(r)) if r.get::<_, bool>(2) => format!(
            "{what} of session {pid} ({}) sent, asked by {by}",
            r.get::<_, String>(0)
        ),
        Ok(Some(_)) => format!(
            "could not {what} session {pid}: the server refused (a role may signal only its own \
             sessions unless it has pg_signal_backend)"
        ),
        Ok(None) => format!(
            "did not {what} session {pid}: it is gone, or it is one of cutover's own sessions"
        ),
        Err(e) => format!("could not {what} session {pid}: {e}"),
    }
}
