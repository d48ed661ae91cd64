//! Commands from other terminals. A command is a row in `cutover.commands`
//! (only roles granted INSERT on it can write one; the row records who did);
//! the NOTIFY that follows is only a doorbell. A notification without a
//! command row — anyone who can connect can send one — is ignored, and
//! said so.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::control::{AbortHandle, Command};
use super::emitter::Emitter;
use super::events::EventKind;
use super::session::JournalSlot;
use crate::journal::{self, RemoteCommand};

/// How often the command table is read even without a doorbell. The
/// doorbell brings commands at once, and the first read happens as soon as
/// the listener starts (after a reconnect too), so this only catches a
/// NOTIFY lost some other way: it can be slow.
const POLL: Duration = Duration::from_secs(10);

/// Forwards authorized commands for `run_id` to the engine. Ends when the
/// notification stream does (the journal connection dropped): the driver
/// notices the loss on its own statements and reconnects.
pub(crate) fn spawn_listener(
    mut notifications: mpsc::UnboundedReceiver<tokio_postgres::Notification>,
    slot: JournalSlot,
    run_id: i64,
    commands: mpsc::Sender<Command>,
    abort: AbortHandle,
    out: Emitter,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        loop {
            let rang = tokio::select! {
                n = notifications.recv() => match n {
                    Some(n) => Some(n),
                    None => return,
                },
                _ = tick.tick() => None,
            };
            if let Some(n) = &rang
                && journal::RemoteCommand::parse_payload(n.payload())
                    .is_none_or(|(id, _)| id != run_id)
            {
                continue;
            }
            let Some(conn) = slot.lock().ok().and_then(|c| c.clone()) else {
                continue;
            };
            let pending = match journal::control::take_commands(&conn.client, run_id).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("reading commands: {e}");
                    continue;
                }
            };
            if pending.is_empty()
                && let Some(n) = rang
            {
                out.emit(EventKind::Notice {
                    message: format!(
                        "ignored \"{}\" from database session pid {}: commands must come from \
                         `cutover advance|pause|resume|abort|set`, by a role allowed to INSERT \
                         into cutover.commands",
                        n.payload(),
                        n.process_id()
                    ),
                });
                continue;
            }
            for c in pending {
                let by = format!("cutover {} (role {})", c.word, c.sent_by);
                let command = match c.command {
                    Some(RemoteCommand::Abort) => {
                        abort.abort(format!(
                            "aborted from another terminal by role {}",
                            c.sent_by
                        ));
                        continue;
                    }
                    Some(RemoteCommand::Advance) => Command::Advance { by },
                    Some(RemoteCommand::Pause) => Command::Pause { by },
                    Some(RemoteCommand::Resume) => Command::Resume { by },
                    Some(RemoteCommand::ReleaseReplica) => Command::ReleaseReplica {
                        replica: c.argument.unwrap_or_default(),
                        by,
                    },
                    Some(RemoteCommand::Set) => {
                        match super::live::parse_assignment(c.argument.as_deref().unwrap_or("")) {
                            Ok((key, value)) => Command::Set { key, value, by },
                            Err(why) => {
                                out.emit(EventKind::Notice {
                                    message: format!(
                                        "refused a set from role {}: {why}",
                                        c.sent_by
                                    ),
                                });
                                continue;
                            }
                        }
                    }
                    None => {
                        out.emit(EventKind::Notice {
                            message: format!(
                                "ignored command \"{}\" from role {}: this cutover does not know it",
                                c.word, c.sent_by
                            ),
                        });
                        continue;
                    }
                };
                if commands.send(command).await.is_err() {
                    return;
                }
            }
        }
    })
}
