//! What the cockpit prints on the normal screen when it closes: the run's
//! state and reason, where it stopped, the rows done, and the command to
//! type next. Pure, so every exit path prints the same facts.

use crate::engine::progress::RunState;
use crate::engine::walk::position_text;

use super::app::App;

/// The commands that make sense after the run stopped as it did.
pub fn next_commands(app: &App) -> Vec<String> {
    let plan = &app.plan_path;
    // The demo's database is thrown away when it exits.
    if plan.ends_with("(built in)") {
        return vec!["cutover demo  (starts a fresh sandbox and runs it again)".into()];
    }
    match app.progress.state {
        RunState::Finished => vec![format!("cutover status {plan}  (the run is complete)")],
        RunState::RolledBack => vec![format!("cutover run {plan}  (starts the plan again)")],
        RunState::Failed => vec![
            format!("fix the cause above, then cutover run {plan}  (resumes at the failed step)"),
            format!("cutover rollback {plan}  (undoes the completed steps)"),
        ],
        RunState::Aborted | RunState::Aborting => vec![
            format!("cutover run {plan}  (resumes where it stopped)"),
            format!("cutover rollback {plan}  (undoes the completed steps)"),
        ],
        RunState::RollingBack => vec![
            format!("cutover status {plan}  (the rollback was interrupted)"),
            format!("cutover rollback {plan}  (finishes it)"),
        ],
        RunState::Starting => vec![format!(
            "cutover check {plan}  (shows why it could not start)"
        )],
        // Detached, or quit at a gate, a pause or mid-step: resumable.
        _ => vec![format!("cutover run {plan}  (resumes where it stopped)")],
    }
}

fn state_word(app: &App) -> &'static str {
    match app.progress.state {
        RunState::Starting => "did not start",
        RunState::Finished => "finished",
        RunState::RolledBack => "rolled back",
        RunState::Failed => "failed",
        RunState::Aborted | RunState::Aborting => "aborted",
        RunState::RollingBack => "rollback interrupted",
        RunState::WaitingGate => "detached at a gate",
        _ => "detached (paused, resumable)",
    }
}

/// The summary, several lines, each ending in a newline.
pub fn exit_summary(app: &App) -> String {
    let mut out = String::new();
    let run = app
        .progress
        .run_id
        .map_or(String::new(), |id| format!(" run #{id}"));
    out.push_str(&format!(
        "cutover:{run} \"{}\" {}\n",
        app.plan.name,
        state_word(app)
    ));
    if let Some(reason) = &app.progress.reason {
        out.push_str(&format!("  reason: {reason}\n"));
    }
    let (done, total) = app.steps_done();
    let at = match (app.progress.state, app.progress.position) {
        (RunState::Finished, _) => "the end".to_string(),
        (_, Some((pi, si))) => position_text(&app.plan, pi, si),
        (_, None) => "before the first step".to_string(),
    };
    out.push_str(&format!("  stopped at: {at} ({done}/{total} steps done)\n"));
    if let Some(b) = &app.last_batch {
        let total = b.rows_total.map_or(String::new(), |t| format!(" of ~{t}"));
        out.push_str(&format!(
            "  rows: {} keys walked{total}, {} changed ({})\n",
            b.rows_done, b.rows_updated, b.table
        ));
    }
    for (i, c) in next_commands(app).iter().enumerate() {
        out.push_str(if i == 0 { "  next: " } else { "        " });
        out.push_str(c);
        out.push('\n');
    }
    out
}
