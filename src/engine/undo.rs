//! What a rollback undoes, read from the journal: each executed step's undo
//! as recorded when it ran (never the plan file's text of today), last
//! first, refusing an irreversible phase that completed. Pure.

use super::identity::{self, ChangedStep};
use crate::journal::steps::Created;
use crate::journal::{StepRow, StepStatus};
use crate::plan::{Plan, Step};
use crate::statements::undo::RecordedUndo;

/// One step a rollback handles.
#[derive(Debug, Clone)]
pub struct Undo {
    /// Phase index (in the journal).
    pub phase: usize,
    /// Step index (in the journal).
    pub step: usize,
    /// Step name.
    pub name: String,
    /// What is done.
    pub action: UndoStep,
}

/// What undoing one step means.
#[derive(Debug, Clone)]
pub enum UndoStep {
    /// A completed step: its recorded undo.
    Undo(RecordedUndo),
    /// An interrupted step: remove the half-made objects it recorded.
    CleanUp {
        /// The step as it ran (for its kind's clean-up).
        step: Box<Step>,
        /// The objects it recorded creating.
        created: Vec<Created>,
    },
    /// A completed step undone by removing what it recorded creating (a
    /// move's subscription, slot, publication and tables).
    DropCreated {
        /// The step as it ran.
        step: Box<Step>,
        /// The objects it recorded creating.
        created: Vec<Created>,
    },
}

impl Undo {
    /// The SQL this runs, for a preview.
    pub fn sql(&self) -> Option<&str> {
        match &self.action {
            UndoStep::Undo(RecordedUndo::Sql { sql }) => Some(sql),
            _ => None,
        }
    }

    /// One line: what happens to the step.
    pub fn describe(&self) -> String {
        match &self.action {
            UndoStep::Undo(RecordedUndo::Sql { sql }) => {
                format!("undo \"{}\": {}", self.name, sql.trim())
            }
            UndoStep::Undo(RecordedUndo::Nothing { why }) => {
                format!("\"{}\": nothing to undo ({why})", self.name)
            }
            UndoStep::Undo(RecordedUndo::Missing { why }) => {
                format!("\"{}\": cannot be undone ({why})", self.name)
            }
            UndoStep::CleanUp { created, .. } if created.is_empty() => {
                format!(
                    "\"{}\": interrupted, nothing half-made to remove",
                    self.name
                )
            }
            UndoStep::CleanUp { .. } => format!(
                "\"{}\": interrupted; remove what it left half-made",
                self.name
            ),
            UndoStep::Undo(RecordedUndo::DropCreated { database }) => {
                format!("undo \"{}\": remove what it made on {database}", self.name)
            }
            UndoStep::DropCreated { created, .. } => format!(
                "undo \"{}\": remove {}",
                self.name,
                describe_created(created)
            ),
        }
    }
}

/// What a move's undo removes, in words.
fn describe_created(created: &[Created]) -> String {
    let names: Vec<String> = created
        .iter()
        .filter_map(|c| match c {
            Created::Publication { name } => Some(format!("publication {name}")),
            Created::Subscription { database, name } => {
                Some(format!("subscription {name} on {database} and its slot"))
            }
            Created::OtherTable { database, table } => Some(format!("table {table} on {database}")),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        "nothing it recorded".into()
    } else {
        names.join(", ")
    }
}

/// The phase index a `--to NAME` means, by the journal's phase names.
pub fn to_phase(rows: &[StepRow], plan: &Plan, name: Option<&str>) -> Result<usize, String> {
    let Some(name) = name else { return Ok(0) };
    if let Some(r) = rows.iter().find(|r| r.phase_name == name) {
        return Ok(r.phase as usize);
    }
    let names: Vec<&str> = plan.phases.iter().map(|p| p.name()).collect();
    Err(format!(
        "--to {name}: the plan has no such phase (its phases: {})",
        names.join(", ")
    ))
}

/// The steps to undo back to the start of phase `to_phase`, last first,
/// from the journal. Refused (with why) when an irreversible phase
/// completed a step, or a step has no undo; or, unless `force`, when the
/// plan file no longer describes an executed step as it ran.
pub fn from_journal(
    plan: &Plan,
    rows: &[StepRow],
    to_phase: usize,
    force: bool,
) -> Result<Vec<Undo>, String> {
    let planned = identity::planned(plan);
    let changed: Vec<ChangedStep> = identity::changed_steps(&planned, rows);
    if !changed.is_empty() && !force {
        let list: Vec<String> = changed.iter().map(|c| format!("  - {c}")).collect();
        return Err(format!(
            "the plan file no longer matches what this run executed:\n{}\nRestore the file, or \
             pass --force-changed-plan to run the undo recorded in the journal for each step",
            list.join("\n")
        ));
    }
    let at = |r: &StepRow| -> Option<&Step> {
        plan.phases
            .get(r.phase as usize)
            .and_then(|p| p.steps.get(r.step as usize))
            .map(|s| s.get_ref())
    };
    let mut items = Vec::new();
    let mut missing = Vec::new();
    let mut ordered: Vec<&StepRow> = rows
        .iter()
        .filter(|r| r.phase as usize >= to_phase)
        .collect();
    ordered.sort_by_key(|r| std::cmp::Reverse((r.phase, r.step)));
    for row in ordered {
        let irreversible = row.irreversible
            || plan
                .phases
                .get(row.phase as usize)
                .is_some_and(|p| p.irreversible && p.name() == row.phase_name);
        // The step as it ran: from the journal, else (older journals) the file.
        let recorded_step: Option<Step> = row
            .spec
            .clone()
            .and_then(|s| serde_json::from_value(s).ok())
            .or_else(|| at(row).cloned());
        match row.status {
            StepStatus::Done if irreversible => {
                return Err(format!(
                    "phase {} is irreversible and its step \"{}\" is done; it cannot be rolled back. \
                     Restore from a backup or write a new plan that moves forward",
                    row.phase_name, row.name
                ));
            }
            StepStatus::Done => {
                let undo = match &row.undo {
                    Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                        format!("the journal's undo of \"{}\" is unreadable: {e}", row.name)
                    })?,
                    None => match &recorded_step {
                        Some(step) => crate::statements::undo::recorded_undo(step, plan),
                        None => RecordedUndo::Missing {
                            why: "its step is not in the plan and the journal kept no undo".into(),
                        },
                    },
                };
                if let RecordedUndo::Missing { why } = &undo {
                    missing.push(why.clone());
                }
                let action = match (&undo, &recorded_step) {
                    (RecordedUndo::DropCreated { .. }, Some(step)) => UndoStep::DropCreated {
                        step: Box::new(step.clone()),
                        created: row.created.clone(),
                    },
                    _ => UndoStep::Undo(undo),
                };
                items.push(Undo {
                    phase: row.phase as usize,
                    step: row.step as usize,
                    name: row.name.clone(),
                    action,
                });
            }
            StepStatus::Running | StepStatus::Failed => {
                let Some(step) = recorded_step else { continue };
                // A versioned step records, before it creates anything, an
                // undo that removes all it makes (each statement IF EXISTS):
                // it also removes what an interruption left half-made.
                let recorded: Option<RecordedUndo> = row
                    .undo
                    .clone()
                    .and_then(|u| serde_json::from_value(u).ok());
                if step.is_versioned()
                    && let Some(undo @ RecordedUndo::Sql { .. }) = recorded
                {
                    items.push(Undo {
                        phase: row.phase as usize,
                        step: row.step as usize,
                        name: row.name.clone(),
                        action: UndoStep::Undo(undo),
                    });
                    continue;
                }
                items.push(Undo {
                    phase: row.phase as usize,
                    step: row.step as usize,
                    name: row.name.clone(),
                    action: UndoStep::CleanUp {
                        step: Box::new(step),
                        created: row.created.clone(),
                    },
                });
            }
            StepStatus::Pending | StepStatus::RolledBack => {}
        }
    }
    if !missing.is_empty() {
        return Err(format!("cannot roll back: {}", missing.join("; ")));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const PLAN: &str = r#"
name = "p"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE t ADD COLUMN c int"
rollback = "ALTER TABLE t DROP COLUMN c"
[[phases]]
name = "contract"
irreversible = true
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE t DROP COLUMN old"
"#;

    fn plan(text: &str) -> Plan {
        crate::plan::parse(Path::new("p.toml"), text).expect("plan parses")
    }

    fn rows(plan: &Plan, statuses: &[StepStatus]) -> Vec<StepRow> {
        identity::planned(plan)
            .iter()
            .zip(statuses)
            .map(|(p, s)| {
                let step = plan.phases[p.phase].steps[p.step].get_ref();
                StepRow {
                    phase: p.phase as i32,
                    step: p.step as i32,
                    name: p.name.clone(),
                    kind: p.kind.into(),
                    status: *s,
                    last_key: None,
                    rows_done: 0,
                    rows_updated: 0,
                    phase_name: p.phase_name.clone(),
                    fingerprint: Some(p.fingerprint.clone()),
                    spec: Some(p.spec.clone()),
                    undo: Some(
                        serde_json::to_value(crate::statements::undo::recorded_undo(step, plan))
                            .unwrap(),
                    ),
                    created: vec![],
                    irreversible: p.irreversible,
                }
            })
            .collect()
    }

    #[test]
    fn runs_the_recorded_undo_not_the_files() {
        let ran = plan(PLAN);
        let journal = rows(&ran, &[StepStatus::Done, StepStatus::Pending]);
        let edited = plan(&PLAN.replace("DROP COLUMN c\"", "DROP COLUMN precious\""));
        let refused = from_journal(&edited, &journal, 0, false).unwrap_err();
        assert!(refused.contains("`rollback`"), "{refused}");
        let forced = from_journal(&edited, &journal, 0, true).unwrap();
        assert_eq!(forced[0].sql(), Some("ALTER TABLE t DROP COLUMN c"));
    }

    #[test]
    fn a_done_irreversible_phase_is_refused() {
        let ran = plan(PLAN);
        let journal = rows(&ran, &[StepStatus::Done, StepStatus::Done]);
        let err = from_journal(&ran, &journal, 0, false).unwrap_err();
        assert!(err.contains("contract is irreversible"), "{err}");
    }

    #[test]
    fn unknown_phase_lists_the_phases() {
        let ran = plan(PLAN);
        let err = to_phase(&rows(&ran, &[StepStatus::Done]), &ran, Some("nope")).unwrap_err();
        assert!(err.contains("expand, contract"), "{err}");
    }
}
