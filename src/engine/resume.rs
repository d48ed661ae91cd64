//! Finding the plan's run in the journal, or creating it: a resume checks
//! that the plan file still describes what ran (refusing, naming each
//! changed step), and a forced resume lays the run out again by identity.

use super::emitter::Emitter;
use super::error::RunError;
use super::events::EventKind;
use super::identity::{self, PlannedStep};
use super::run::{Outcome, RunOptions};
use crate::db::Conn;
use crate::journal::{self, RunRow, RunStatus};
use crate::plan::LoadedPlan;

/// The changed steps of a run, as one refusal.
fn changed_refusal(plan: &LoadedPlan, run: &RunRow, changed: &[identity::ChangedStep]) -> String {
    let list: Vec<String> = changed.iter().map(|c| format!("  - {c}")).collect();
    format!(
        "{} changed since run #{} started:\n{}\nReview the change; restore the plan file, or pass \
         --force-changed-plan to resume with the new file (changed batched steps start over; a \
         changed step that already ran stays done; a rollback runs the undo recorded in the \
         journal, never the file's new text)",
        plan.path.display(),
        run.id,
        list.join("\n")
    )
}

pub(crate) async fn find_or_create_run(
    plan: &LoadedPlan,
    opts: &RunOptions,
    journal_conn: &Conn,
    out: &Emitter,
) -> Result<Result<(RunRow, bool), Outcome>, RunError> {
    let name = &plan.plan.name;
    let client = &journal_conn.client;
    let planned = identity::planned(&plan.plan);
    if let Some(run) = journal::unfinished_run(client, name).await? {
        if run.plan_hash == plan.hash {
            return Ok(Ok((run, true)));
        }
        let rows = journal::steps(client, run.id).await?;
        let changed = identity::plan_changes(&planned, &rows);
        if changed.is_empty() {
            // Comments, layout, labels or tuning only.
            out.emit(EventKind::Notice {
                message: format!(
                    "{} changed since run #{} started, but no step changed what it does; resuming",
                    plan.path.display(),
                    run.id
                ),
            });
            journal::runs::set_plan_hash(client, run.id, &plan.hash).await?;
            return Ok(Ok((run, true)));
        }
        if !opts.force_changed_plan {
            return Err(RunError::Refused(changed_refusal(plan, &run, &changed)));
        }
        let layout = identity::realign(&planned, &rows).map_err(RunError::Refused)?;
        journal::steps::realign(client, run.id, &layout.steps).await?;
        journal::runs::set_plan_hash(client, run.id, &plan.hash).await?;
        for message in layout.notices {
            out.emit(EventKind::Notice { message });
        }
        return Ok(Ok((run, true)));
    }
    if let Some(last) = journal::latest_run(client, name).await?
        && last.status == RunStatus::Finished
        && last.plan_hash == plan.hash
    {
        return Ok(Err(Outcome::AlreadyFinished { run_id: last.id }));
    }
    let new_steps: Vec<_> = planned.iter().map(PlannedStep::new_step).collect();
    let run = journal::create_run(
        client,
        name,
        &plan.hash,
        &plan.path.display().to_string(),
        &new_steps,
    )
    .await?;
    Ok(Ok((run, false)))
}
