//! The journal's view: an unfinished run of this plan resumes (its finished
//! steps are not checked again), a live driver blocks `check`, and other
//! plans' unfinished runs are worth a warning.

use std::collections::HashSet;

use super::{Level, Preflight};
use crate::db::{Conn, DbError};
use crate::journal::{self, StepStatus};
use crate::plan::LoadedPlan;

/// Reports the journal's state; returns the (phase, step) pairs already done.
pub(super) async fn check(
    p: &mut Preflight,
    loaded: &LoadedPlan,
    conn: &Conn,
    for_run: bool,
) -> Result<HashSet<(usize, usize)>, DbError> {
    let plan = &loaded.plan;
    // The journal: an unfinished run resumes; its finished steps are not
    // checked again (their objects may be renamed or gone by now).
    let mut done: HashSet<(usize, usize)> = HashSet::new();
    let journal_exists: bool = conn
        .client
        .query_one("SELECT to_regclass('cutover.runs') IS NOT NULL", &[])
        .await
        .map_err(|e| DbError::sql("looking for the journal", e))?
        .get(0);
    if journal_exists {
        if let Some(run) = journal::unfinished_run(&conn.client, &plan.name).await? {
            for s in journal::steps(&conn.client, run.id).await? {
                if matches!(s.status, StepStatus::Done) {
                    done.insert((s.phase as usize, s.step as usize));
                }
            }
            let holder = journal::lock_holder(&conn.client, &plan.name).await?;
            match holder {
                Some(h) if !for_run => p.push(
                    Level::Error,
                    "journal",
                    format!(
                        "run #{} of this plan is being driven right now (server pid {}); watch it \
                         with `cutover status`, or stop it with `cutover abort`",
                        run.id, h.backend_pid
                    ),
                ),
                Some(_) => {}
                None => p.push(
                    Level::Info,
                    "journal",
                    format!(
                        "run #{} ({}) will resume; {} finished step(s) are not checked again",
                        run.id,
                        run.status.as_str(),
                        done.len()
                    ),
                ),
            }
        } else if let Some(last) = journal::latest_run(&conn.client, &plan.name)
            .await?
            .filter(|r| r.status == journal::RunStatus::Finished && r.plan_hash == loaded.hash)
        {
            for (pi, phase) in plan.phases.iter().enumerate() {
                for si in 0..phase.steps.len() {
                    done.insert((pi, si));
                }
            }
            p.push(
                Level::Info,
                "journal",
                format!(
                    "run #{} already finished this plan file; `cutover run` has nothing to do",
                    last.id
                ),
            );
        } else {
            p.push(Level::Info, "journal", "no unfinished run of this plan");
        }
        let others = conn
            .client
            .query(
                "SELECT plan_name, status FROM cutover.runs
                 WHERE plan_name <> $1 AND status NOT IN ('finished', 'rolled_back')",
                &[&plan.name],
            )
            .await
            .map_err(|e| DbError::sql("reading other runs", e))?;
        for r in others {
            let (name, status): (String, String) = (r.get(0), r.get(1));
            p.push(
                Level::Warning,
                "journal",
                format!("plan \"{name}\" has an unfinished run ({status}) on this database"),
            );
        }
    } else {
        p.push(
            Level::Info,
            "journal",
            "no runs recorded yet (the journal is created on the first run)",
        );
    }

    Ok(done)
}
