//! "Now / next" in words: what the run is doing or waiting for, and what
//! comes after it. Pure: derived from the app state, drawn by the Now pane
//! and the header.

use crate::engine::progress::RunState;
use crate::lint::render;
use crate::plan::model::GateMode;

use super::app::App;
use super::locking::{self, LockRow};
use super::summary;

/// How a line should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Plain.
    Normal,
    /// Look at this.
    Warn,
    /// Act on this.
    Danger,
    /// Good news.
    Ok,
    /// Secondary.
    Dim,
    /// Pacing the operator asked for.
    Paced,
}

/// One line of the Now pane.
#[derive(Debug, Clone, PartialEq)]
pub struct NowLine {
    /// The words.
    pub text: String,
    /// How they look.
    pub tone: Tone,
}

fn line(text: impl Into<String>, tone: Tone) -> NowLine {
    NowLine {
        text: text.into(),
        tone,
    }
}

/// Our DDL waiting for its lock: on what, which retry, behind whom.
#[derive(Debug, Clone, PartialEq)]
pub struct LockWaitView {
    /// The table (or the step, when the table is not known).
    pub on: String,
    /// Retry n of m, from the newest Retry event.
    pub retry: Option<(u32, u32)>,
    /// The root blocker, as last seen.
    pub blocker: Option<LockRow>,
}

impl LockWaitView {
    /// `WAITING FOR LOCK on users (retry 6/20)`.
    pub fn headline(&self) -> String {
        match self.retry {
            Some((n, of)) => format!("WAITING FOR LOCK on {} (retry {n}/{of})", self.on),
            None => format!("WAITING FOR LOCK on {}", self.on),
        }
    }
}

/// The lock wait of the running step, if it is waiting (or between
/// lock-timeout retries).
pub fn lock_wait(app: &App) -> Option<LockWaitView> {
    if !app.engine_running() || app.progress.state != RunState::Running {
        return None;
    }
    let sample = &app.monitor.sample;
    let ours = locking::our_wait(sample)
        .filter(|w| locking::relation(&w.waits_for).is_some() && w.waited.as_secs_f64() >= 1.0);
    if ours.is_none() && app.lock_retry.is_none() {
        return None;
    }
    let on = ours
        .and_then(|w| locking::relation(&w.waits_for))
        .map(str::to_string)
        .or_else(|| app.last_blocked_on.clone())
        .or_else(|| current_relation(app))
        .unwrap_or_else(|| "its table".into());
    Some(LockWaitView {
        on,
        retry: app.lock_retry.as_ref().map(|r| (r.retry, r.of)),
        blocker: locking::our_blocker(sample).or_else(|| app.last_blocker.clone()),
    })
}

/// The first relation the current step's statements lock.
fn current_relation(app: &App) -> Option<String> {
    let (pi, si) = app.progress.position?;
    let step = step_plan(app, pi, si)?;
    step.statements
        .iter()
        .flat_map(|s| s.locks.iter().flatten())
        .map(|l| l.relation.clone())
        .next()
}

fn step_plan(app: &App, pi: usize, si: usize) -> Option<&crate::lint::plan::StepPlan> {
    let index = app
        .plan
        .phases
        .get(..pi)?
        .iter()
        .map(|p| p.steps.len())
        .sum::<usize>()
        + si;
    app.dry_run.as_ref()?.steps.get(index)
}

/// A step's statements and their locks, one line each (its rollback
/// statements too).
pub fn statements_of(app: &App, pi: usize, si: usize) -> Vec<String> {
    statements(app, pi, si, true)
}

fn statements(app: &App, pi: usize, si: usize, with_rollback: bool) -> Vec<String> {
    let Some(step) = step_plan(app, pi, si) else {
        return vec!["(statements not known: the dry run is not loaded)".into()];
    };
    if step.statements.is_empty() {
        return vec!["  runs no statement".into()];
    }
    let mut out = Vec::new();
    for s in step
        .statements
        .iter()
        .filter(|s| with_rollback || !s.label.starts_with("rollback"))
    {
        let label = if s.label.is_empty() {
            String::new()
        } else {
            format!("{}: ", s.label)
        };
        out.push(format!("  {label}{}", locking::one_line(&s.sql)));
        out.extend(
            render::locks(&s.locks)
                .into_iter()
                .map(|l| format!("    {l}")),
        );
    }
    out
}

/// The steps a released gate lets run, up to the next gate.
fn after_gate(app: &App) -> Vec<(usize, usize)> {
    let Some(gate) = &app.progress.gate else {
        return Vec::new();
    };
    let pi = gate.phase;
    let Some(phase) = app.plan.phases.get(pi) else {
        return Vec::new();
    };
    // A gate step waits with the run positioned on it; a phase's own gate
    // waits before any of its steps.
    let first = match app.progress.position {
        Some((p, s))
            if p == pi
                && phase
                    .steps
                    .get(s)
                    .is_some_and(|st| st.get_ref().kind() == "gate") =>
        {
            s + 1
        }
        _ => 0,
    };
    (first..phase.steps.len())
        .take_while(|si| phase.steps[*si].get_ref().kind() != "gate")
        .map(|si| (pi, si))
        .collect()
}

/// What the run does now and next, most important first.
pub fn lines(app: &App) -> Vec<NowLine> {
    let p = &app.progress;
    let mut out = Vec::new();
    if let Some(wait) = lock_wait(app) {
        out.push(line(wait.headline(), Tone::Danger));
        match &wait.blocker {
            Some(b) => {
                out.push(line(
                    format!("blocked by {}", locking::session_line(b)),
                    Tone::Warn,
                ));
                out.push(line(
                    "Locks pane (tab): select the blocker, c cancels its query, k ends it; a aborts the run",
                    Tone::Dim,
                ));
            }
            None => out.push(line(
                "the blocking session is not in the latest sample",
                Tone::Dim,
            )),
        }
        return out;
    }
    let position = p.position.and_then(|(pi, si)| {
        let phase = app.plan.phases.get(pi)?;
        let step = phase.steps.get(si)?.get_ref();
        Some((pi, si, phase, step))
    });
    match p.state {
        RunState::Starting => out.push(line(
            "Connecting, checking the plan, reading the journal…",
            Tone::Dim,
        )),
        RunState::WaitingGate => {
            let (name, message, irreversible) = p
                .gate
                .as_ref()
                .map_or((String::new(), String::new(), false), |g| {
                    (g.name.clone(), g.message.clone(), g.irreversible)
                });
            out.push(line(
                if message.is_empty() {
                    format!("WAITING AT GATE {name}")
                } else {
                    format!("WAITING AT GATE {name}: {message}")
                },
                Tone::Warn,
            ));
            if irreversible {
                out.push(line(
                    format!(
                        "n advances into an IRREVERSIBLE phase (type {} to confirm): it cannot be rolled back",
                        app.confirm_word
                    ),
                    Tone::Danger,
                ));
            } else {
                out.push(line(
                    "n advances; the next steps can be rolled back",
                    Tone::Normal,
                ));
            }
            let next = after_gate(app);
            for (pi, si) in &next {
                let step = app.plan.phases[*pi].steps[*si].get_ref();
                out.push(line(
                    format!("next: {} \"{}\"", step.kind(), step.display_name()),
                    Tone::Normal,
                ));
                out.extend(
                    statements(app, *pi, *si, false)
                        .into_iter()
                        .map(|s| line(s, Tone::Dim)),
                );
            }
            // A gate step ending its phase: the next phase waits at its own
            // gate, so advancing here runs nothing yet.
            if next.is_empty()
                && let Some(g) = &p.gate
            {
                match app.plan.phases.get(g.phase + 1) {
                    Some(ph) => out.push(line(
                        format!(
                            "next: phase {}{}, which {}",
                            ph.name(),
                            if ph.irreversible {
                                " (IRREVERSIBLE)"
                            } else {
                                ""
                            },
                            if ph.gate == GateMode::Manual {
                                "waits at its own gate"
                            } else {
                                "starts at once"
                            }
                        ),
                        Tone::Normal,
                    )),
                    None => out.push(line("next: the end of the plan", Tone::Normal)),
                }
            }
        }
        RunState::Running | RunState::Paused => {
            let doing = match position {
                Some((pi, si, phase, step)) => format!(
                    "{} {} step \"{}\" (phase {}, step {}/{})",
                    if p.state == RunState::Paused {
                        "PAUSED in"
                    } else {
                        "Running"
                    },
                    step.kind(),
                    step.display_name(),
                    phase.name(),
                    si + 1,
                    app.plan.phases[pi].steps.len()
                ),
                None => "Running".into(),
            };
            out.push(line(
                doing,
                if p.state == RunState::Paused {
                    Tone::Warn
                } else {
                    Tone::Normal
                },
            ));
            if p.state == RunState::Paused {
                out.push(line(
                    "batches hold at a safe point; p resumes, q detaches",
                    Tone::Normal,
                ));
            } else if app.held_by_limit() {
                out.push(line(
                    format!(
                        "THROTTLED: {}; batches hold until it clears",
                        app.throttle_reason().unwrap_or_default()
                    ),
                    Tone::Danger,
                ));
            } else if let Some(t) = &p.throttle {
                out.push(line(t.clone(), Tone::Paced));
            }
            if let Some((pi, si, _, _)) = position {
                let next = app.plan.phases[pi]
                    .steps
                    .get(si + 1)
                    .map(|s| (pi, s))
                    .or_else(|| {
                        app.plan
                            .phases
                            .get(pi + 1)
                            .and_then(|ph| ph.steps.first().map(|s| (pi + 1, s)))
                    });
                match next {
                    Some((npi, s)) if npi != pi => out.push(line(
                        format!(
                            "next: phase {}{} (its gate first), then {} \"{}\"",
                            app.plan.phases[npi].name(),
                            if app.plan.phases[npi].irreversible {
                                " [IRREVERSIBLE]"
                            } else {
                                ""
                            },
                            s.get_ref().kind(),
                            s.get_ref().display_name()
                        ),
                        Tone::Dim,
                    )),
                    Some((_, s)) => out.push(line(
                        format!(
                            "next: {} \"{}\"",
                            s.get_ref().kind(),
                            s.get_ref().display_name()
                        ),
                        Tone::Dim,
                    )),
                    None => out.push(line("next: the end of the plan", Tone::Dim)),
                }
            }
        }
        RunState::Aborting => out.push(line(
            "Aborting: cancelling the running statement, cleaning up the step",
            Tone::Danger,
        )),
        RunState::RollingBack => {
            out.push(line("Rolling back completed steps, last first", Tone::Warn))
        }
        _ => {
            let (state, tone) = match p.state {
                RunState::Finished => ("FINISHED: every step done", Tone::Ok),
                RunState::RolledBack => ("ROLLED BACK", Tone::Ok),
                RunState::Detached => ("DETACHED: paused, resumable", Tone::Warn),
                RunState::Failed => ("FAILED", Tone::Danger),
                _ => ("ABORTED", Tone::Danger),
            };
            out.push(line(
                match &p.reason {
                    Some(r) => format!("{state}: {r}"),
                    None => state.to_string(),
                },
                tone,
            ));
            for c in summary::next_commands(app) {
                out.push(line(format!("next: {c}"), Tone::Normal));
            }
        }
    }
    out
}

/// Everything the Now pane knows, for the inspect dialog: the lines and
/// the current step's statements with their locks.
pub fn inspect_lines(app: &App) -> Vec<String> {
    let mut lines: Vec<String> = lines(app).into_iter().map(|l| l.text).collect();
    if let Some((pi, si)) = app.progress.position
        && let Some(step) = app.plan.phases.get(pi).and_then(|p| p.steps.get(si))
    {
        lines.push(String::new());
        lines.push(format!(
            "current: {} \"{}\" in phase {}",
            step.get_ref().kind(),
            step.get_ref().display_name(),
            app.plan.phases[pi].name()
        ));
        lines.extend(statements_of(app, pi, si));
    }
    lines
}
