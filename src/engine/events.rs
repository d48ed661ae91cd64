//! What the engine tells its frontends: events (never dropped) and the
//! human sentence for each.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// How much an event matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Progress and state changes.
    Info,
    /// Something the operator should look at (retries, throttling).
    Warn,
    /// Failure or abort.
    Error,
}

impl Level {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Something that happened in a run.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When.
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    /// How much it matters.
    pub level: Level,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_rfc3339_millis(*t).to_string())
}

/// The kinds of events.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// Connected to the database.
    Connected {
        /// The target, redacted.
        target: String,
        /// `server_version`.
        server_version: String,
    },
    /// A run began or was resumed.
    RunStarted {
        /// Journal id.
        run_id: i64,
        /// The plan's name.
        plan: String,
        /// Resuming an unfinished run.
        resumed: bool,
        /// Where it resumes, as text.
        from: String,
    },
    /// A phase began.
    PhaseStarted {
        /// Phase index.
        phase: usize,
        /// Phase name.
        name: String,
        /// Contract-like phase.
        irreversible: bool,
    },
    /// Waiting for the operator.
    GateWaiting {
        /// Phase index.
        phase: usize,
        /// What the gate guards (phase name or gate step name).
        name: String,
        /// What to do before advancing.
        message: String,
        /// Advancing starts an irreversible phase.
        irreversible: bool,
    },
    /// The gate was released.
    GateReleased {
        /// Phase index.
        phase: usize,
        /// What it guarded.
        name: String,
        /// Who released it.
        by: String,
    },
    /// A step began.
    StepStarted {
        /// Phase index.
        phase: usize,
        /// Step index.
        step: usize,
        /// Step name.
        name: String,
        /// Step kind.
        kind: String,
    },
    /// A step was already done in an earlier session.
    StepSkipped {
        /// Phase index.
        phase: usize,
        /// Step index.
        step: usize,
        /// Step name.
        name: String,
    },
    /// A step finished.
    StepFinished {
        /// Phase index.
        phase: usize,
        /// Step index.
        step: usize,
        /// Step name.
        name: String,
        /// How long it took, in ms.
        elapsed_ms: u64,
        /// What it did.
        detail: String,
    },
    /// A step failed.
    StepFailed {
        /// Phase index.
        phase: usize,
        /// Step index.
        step: usize,
        /// Step name.
        name: String,
        /// Why.
        error: String,
    },
    /// A statement timed out on its lock and will be retried.
    Retry {
        /// Step name.
        name: String,
        /// Which retry.
        retry: u32,
        /// Retries allowed.
        of: u32,
        /// Wait before the retry, ms.
        wait_ms: u64,
        /// What the server said.
        reason: String,
    },
    /// The operator set (or reset) the batch size.
    BatchSizeSet {
        /// The size, or None for automatic.
        size: Option<u64>,
    },
    /// Batches paused.
    Paused {
        /// Why.
        reason: String,
    },
    /// Batches resumed.
    Resumed {
        /// Who resumed.
        by: String,
    },
    /// Abort requested; stopping.
    Aborting {
        /// Why.
        reason: String,
    },
    /// The run stopped on an abort; `cutover run` resumes it.
    Aborted {
        /// Why.
        reason: String,
        /// Where, as text.
        at: String,
    },
    /// The run failed.
    Failed {
        /// Why, and what to do.
        error: String,
    },
    /// The run paused and this cutover let go of it.
    Detached {
        /// Where, as text.
        at: String,
    },
    /// Every step done.
    Finished {
        /// Total time of this session, ms.
        elapsed_ms: u64,
    },
    /// A rollback began.
    RollbackStarted {
        /// Steps to undo, in order.
        steps: Vec<String>,
    },
    /// A step was undone.
    StepRolledBack {
        /// Phase index.
        phase: usize,
        /// Step index.
        step: usize,
        /// Step name.
        name: String,
        /// What was done.
        detail: String,
    },
    /// Rollback complete.
    RolledBack {
        /// Back to the start of this phase (None = everything).
        to: Option<String>,
        /// That phase's index (0 = everything).
        phase: usize,
    },
    /// An abort criterion tripped (the run aborts).
    CriterionTripped {
        /// The `[abort]` setting.
        criterion: String,
        /// The measured value.
        value: String,
        /// Its limit.
        limit: String,
        /// What was over.
        detail: String,
    },
    /// Batches are held or slowed, and why.
    Throttled {
        /// Why.
        reason: String,
    },
    /// Batches run freely again.
    Unthrottled {
        /// How long they were held, ms.
        held_ms: u64,
    },
    /// Anything else worth a line.
    Notice {
        /// The line.
        message: String,
    },
    /// The run's connections dropped; reconnecting.
    ConnectionLost {
        /// What showed it (the step's own error, when a step was running).
        error: String,
        /// Where the run stood.
        at: String,
        /// How long reconnecting may take, seconds.
        bound_secs: u64,
    },
    /// Connected again; the run goes on from the journal.
    Reconnected {
        /// How long it took, ms.
        after_ms: u64,
    },
    /// A lost replica released from the limits by the operator.
    ReplicaReleased {
        /// The replica.
        replica: String,
        /// Who released it.
        by: String,
    },
    /// A live setting changed (`cutover set`, the cockpit's keys).
    SettingChanged {
        /// The key.
        key: String,
        /// Its value before.
        old: String,
        /// Its value now.
        new: String,
        /// Who changed it.
        by: String,
    },
    /// The command was refused before anything changed.
    Refused {
        /// Why, and what to do.
        reason: String,
    },
}

impl EventKind {
    /// The level this kind of event has.
    pub fn level(&self) -> Level {
        match self {
            EventKind::Retry { .. }
            | EventKind::Paused { .. }
            | EventKind::Aborting { .. }
            | EventKind::Throttled { .. }
            | EventKind::ReplicaReleased { .. }
            | EventKind::SettingChanged { .. } => Level::Warn,
            EventKind::StepFailed { .. }
            | EventKind::ConnectionLost { .. }
            | EventKind::Refused { .. }
            | EventKind::Failed { .. }
            | EventKind::Aborted { .. }
            | EventKind::CriterionTripped { .. } => Level::Error,
            _ => Level::Info,
        }
    }

    /// One human sentence.
    pub fn message(&self) -> String {
        match self {
            EventKind::Connected {
                target,
                server_version,
            } => format!("connected to {target} (PostgreSQL {server_version})"),
            EventKind::RunStarted {
                run_id,
                plan,
                resumed,
                from,
            } => {
                if *resumed {
                    format!("resuming run #{run_id} of \"{plan}\" at {from}")
                } else {
                    format!("run #{run_id} of \"{plan}\" started")
                }
            }
            EventKind::PhaseStarted {
                name, irreversible, ..
            } => {
                if *irreversible {
                    format!("phase {name} started (irreversible)")
                } else {
                    format!("phase {name} started")
                }
            }
            EventKind::GateWaiting {
                name,
                message,
                irreversible,
                ..
            } => {
                let what = if *irreversible {
                    format!("waiting at the gate of {name} (IRREVERSIBLE)")
                } else {
                    format!("waiting at the gate of {name}")
                };
                if message.is_empty() {
                    what
                } else {
                    format!("{what}: {message}")
                }
            }
            EventKind::GateReleased { name, by, .. } => format!("gate of {name} released by {by}"),
            EventKind::StepStarted { name, kind, .. } => format!("{kind} step \"{name}\" started"),
            EventKind::StepSkipped { name, .. } => format!("step \"{name}\" already done"),
            EventKind::StepFinished {
                name,
                elapsed_ms,
                detail,
                ..
            } => format!(
                "step \"{name}\" done in {}{}",
                short_duration(Duration::from_millis(*elapsed_ms)),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            ),
            EventKind::StepFailed { name, error, .. } => format!("step \"{name}\" failed: {error}"),
            EventKind::Retry {
                name,
                retry,
                of,
                wait_ms,
                reason,
            } => format!(
                "\"{name}\": {reason}; retry {retry}/{of} in {}",
                short_duration(Duration::from_millis(*wait_ms))
            ),
            EventKind::BatchSizeSet { size } => match size {
                Some(n) => format!("batch size set to {n} by the operator"),
                None => "batch size back to automatic".into(),
            },
            EventKind::Paused { reason } => format!("paused: {reason}"),
            EventKind::Resumed { by } => format!("resumed by {by}"),
            EventKind::Aborting { reason } => format!("aborting: {reason}"),
            EventKind::Aborted { reason, at } => {
                format!(
                    "aborted at {at}: {reason}; `cutover run` resumes, `cutover rollback` undoes"
                )
            }
            EventKind::Failed { error } => format!("failed: {error}"),
            EventKind::Detached { at } => {
                format!("paused at {at} and detached; `cutover run` of the same plan resumes")
            }
            EventKind::Finished { elapsed_ms } => format!(
                "finished in {}",
                short_duration(Duration::from_millis(*elapsed_ms))
            ),
            EventKind::RollbackStarted { steps } => {
                format!("rolling back {} step(s): {}", steps.len(), steps.join(", "))
            }
            EventKind::StepRolledBack { name, detail, .. } => {
                format!("undid \"{name}\": {detail}")
            }
            EventKind::RolledBack { to, .. } => match to {
                Some(phase) => format!("rolled back to the start of phase {phase}"),
                None => "rolled back: every step undone".into(),
            },
            EventKind::CriterionTripped {
                criterion,
                value,
                limit,
                detail,
            } => format!("abort criterion {criterion} tripped: {detail} ({value} > {limit})"),
            EventKind::Throttled { reason } => reason.clone(),
            EventKind::Unthrottled { held_ms } => format!(
                "throttle released after {}",
                short_duration(Duration::from_millis(*held_ms))
            ),
            EventKind::Notice { message } => message.clone(),
            EventKind::ConnectionLost {
                error,
                at,
                bound_secs,
            } => format!(
                "lost the connection at {at}: {error}; reconnecting for up to {bound_secs}s \
                 (a batch in flight either committed with its checkpoint or not at all)"
            ),
            EventKind::Reconnected { after_ms } => format!(
                "reconnected after {}; re-read the journal, going on from the checkpoint",
                short_duration(Duration::from_millis(*after_ms))
            ),
            EventKind::ReplicaReleased { replica, by } => format!(
                "replica {replica} released from the replication limits by {by}: batches no longer wait for it"
            ),
            EventKind::Refused { reason } => format!("refused: {reason}"),
            EventKind::SettingChanged { key, old, new, by } => {
                format!("{key} changed from {old} to {new} by {by}")
            }
        }
    }
}

/// `HH:MM:SS` (UTC) of a moment.
pub fn clock(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(11..19).unwrap_or(&s).to_string()
}

/// A duration as an operator reads it: `850ms`, `12.3s`, `4m05s`, `2h10m`.
pub fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(short_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(short_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(short_duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(short_duration(Duration::from_secs(7800)), "2h10m");
    }

    #[test]
    fn events_serialize_as_tagged_json() {
        let e = Event {
            at: SystemTime::UNIX_EPOCH,
            level: Level::Warn,
            kind: EventKind::Paused {
                reason: "operator".into(),
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"at":"1970-01-01T00:00:00.000Z","level":"warn","event":"paused","reason":"operator"}"#
        );
    }
}
