//! Commands from other terminals (`cutover advance|pause|resume|abort`).

use tokio_postgres::Client;

use crate::db::DbError;

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
    /// Stop holding batches for a lost replica (its name is the argument).
    ReleaseReplica,
    /// Change a live setting (the argument is `key=value`).
    Set,
}

impl RemoteCommand {
    /// The word sent.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteCommand::Advance => "advance",
            RemoteCommand::Pause => "pause",
            RemoteCommand::Resume => "resume",
            RemoteCommand::Abort => "abort",
            RemoteCommand::ReleaseReplica => "release_replica",
            RemoteCommand::Set => "set",
        }
    }

    /// Parses a command word.
    pub fn parse_word(word: &str) -> Option<RemoteCommand> {
        Some(match word {
            "advance" => RemoteCommand::Advance,
            "pause" => RemoteCommand::Pause,
            "resume" => RemoteCommand::Resume,
            "abort" => RemoteCommand::Abort,
            "release_replica" => RemoteCommand::ReleaseReplica,
            "set" => RemoteCommand::Set,
            _ => return None,
        })
    }

    /// Parses a NOTIFY payload `"<run id> <command>"` (the doorbell only:
    /// what is done comes from the command rows).
    pub fn parse_payload(payload: &str) -> Option<(i64, RemoteCommand)> {
        let (id, word) = payload.split_once(' ')?;
        Some((id.parse().ok()?, Self::parse_word(word)?))
    }
}

/// Sends a command to the engine driving a run: a row in
/// `cutover.commands` (which only roles granted INSERT on it may write; the
/// row records who sent it), then a NOTIFY that rings the driver's doorbell.
/// Both commit together.
pub async fn send_remote(
    client: &Client,
    run_id: i64,
    cmd: RemoteCommand,
    argument: Option<&str>,
) -> Result<(), DbError> {
    const DOING: &str = "sending the command (needs INSERT on cutover.commands)";
    let ctx = |e| DbError::sql(DOING, e);
    super::in_transaction(client, DOING, async {
        client
            .execute(
                "INSERT INTO cutover.commands (run_id, command, argument) VALUES ($1, $2, $3)",
                &[&run_id, &cmd.as_str(), &argument],
            )
            .await
            .map_err(ctx)?;
        client
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&CONTROL_CHANNEL, &format!("{run_id} {}", cmd.as_str())],
            )
            .await
            .map_err(ctx)?;
        Ok::<(), DbError>(())
    })
    .await
}

/// A command row waiting for the driver.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCommand {
    /// Row id.
    pub id: i64,
    /// What is asked (None: a word this build does not know).
    pub command: Option<RemoteCommand>,
    /// The raw word.
    pub word: String,
    /// Its argument, if any.
    pub argument: Option<String>,
    /// The role that inserted it.
    pub sent_by: String,
}

/// Takes the run's unhandled commands, oldest first, marking them handled;
/// commands older than 30 s (sent while no driver ran) expire unapplied.
pub async fn take_commands(client: &Client, run_id: i64) -> Result<Vec<PendingCommand>, DbError> {
    let rows = client
        .query(
            "UPDATE cutover.commands SET handled_at = now(),
                 outcome = CASE WHEN sent_at < now() - interval '30 seconds'
                                THEN 'expired: no driver took it within 30 s' ELSE 'received' END
             WHERE id IN (SELECT id FROM cutover.commands
                          WHERE run_id = $1 AND handled_at IS NULL
                          ORDER BY id FOR UPDATE SKIP LOCKED)
             RETURNING id, command, argument, sent_by::text, outcome = 'received'",
            &[&run_id],
        )
        .await
        .map_err(|e| DbError::sql("reading commands from other terminals", e))?;
    let mut out: Vec<PendingCommand> = rows
        .iter()
        .filter(|r| r.get::<_, bool>(4))
        .map(|r| {
            let word: String = r.get(1);
            PendingCommand {
                id: r.get(0),
                command: RemoteCommand::parse_word(&word),
                word,
                argument: r.get(2),
                sent_by: r.get(3),
            }
        })
        .collect();
    out.sort_by_key(|c| c.id);
    Ok(out)
}
