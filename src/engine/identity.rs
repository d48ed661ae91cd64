//! Matching journal rows to plan steps by what they do, not where they sit:
//! which executed steps an edited plan changed (rollback and resume refuse,
//! naming them), and how a run is laid out again for an edited plan when the
//! operator forces it.

use crate::journal::steps::{NewStep, Realigned};
use crate::journal::{StepRow, StepStatus};
use crate::plan::identity::{batch_identity_changed, differences, fingerprint, spec};
use crate::plan::{Plan, Step};

/// A plan step with its identity.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// Phase index.
    pub phase: usize,
    /// Step index.
    pub step: usize,
    /// The phase's name.
    pub phase_name: String,
    /// The step's display name.
    pub name: String,
    /// Its kind.
    pub kind: &'static str,
    /// What it does, hashed.
    pub fingerprint: String,
    /// Its identifying fields.
    pub spec: serde_json::Value,
    /// Its phase is irreversible.
    pub irreversible: bool,
    /// Batched (its checkpoint depends on table, key, set, where, columns).
    pub batched: bool,
}

impl PlannedStep {
    /// The journal row to create for it.
    pub fn new_step(&self) -> NewStep<'_> {
        NewStep {
            phase: self.phase as i32,
            step: self.step as i32,
            phase_name: &self.phase_name,
            name: &self.name,
            kind: self.kind,
            fingerprint: self.fingerprint.clone(),
            spec: self.spec.clone(),
            irreversible: self.irreversible,
        }
    }
}

/// Every step of the plan, in order, with its identity.
pub fn planned(plan: &Plan) -> Vec<PlannedStep> {
    plan.phases
        .iter()
        .enumerate()
        .flat_map(|(pi, phase)| {
            phase.steps.iter().enumerate().map(move |(si, s)| {
                let step = s.get_ref();
                PlannedStep {
                    phase: pi,
                    step: si,
                    phase_name: phase.name().to_string(),
                    name: step.display_name(),
                    kind: step.kind(),
                    fingerprint: fingerprint(step),
                    spec: spec(step),
                    irreversible: phase.irreversible,
                    batched: matches!(step, Step::Backfill(_) | Step::CopyRows(_)),
                }
            })
        })
        .collect()
}

/// The step's journal row has run (or started) and so has an effect.
pub fn has_run(row: &StepRow) -> bool {
    matches!(
        row.status,
        StepStatus::Done | StepStatus::Running | StepStatus::Failed
    )
}

/// An executed step the plan file no longer describes as it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedStep {
    /// Its name in the journal.
    pub name: String,
    /// Its phase in the journal.
    pub phase_name: String,
    /// What differs, in words.
    pub what: Vec<String>,
}

impl std::fmt::Display for ChangedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step \"{}\" (phase {}): {}",
            self.name,
            self.phase_name,
            self.what.join("; ")
        )
    }
}

fn at(planned: &[PlannedStep], phase: i32, step: i32) -> Option<&PlannedStep> {
    planned
        .iter()
        .find(|p| p.phase as i32 == phase && p.step as i32 == step)
}

/// Journal rows that ran and whose step the plan no longer has, with what
/// differs from the step now in their place. Rows from journals older than
/// step identities are compared by position (nothing to compare with).
pub fn changed_steps(planned: &[PlannedStep], rows: &[StepRow]) -> Vec<ChangedStep> {
    rows.iter()
        .filter(|r| has_run(r))
        .filter_map(|row| {
            let recorded = row.fingerprint.as_deref()?;
            if planned.iter().any(|p| p.fingerprint == recorded) {
                return None;
            }
            let what = match (at(planned, row.phase, row.step), &row.spec) {
                (Some(now), Some(spec)) => {
                    let d = differences(spec, &now.spec);
                    if d.is_empty() {
                        vec!["its fields changed".into()]
                    } else {
                        d
                    }
                }
                _ => vec!["it is no longer in the plan".into()],
            };
            Some(ChangedStep {
                name: row.name.clone(),
                phase_name: row.phase_name.clone(),
                what,
            })
        })
        .collect()
}

/// Every difference in meaning between the run's steps and the plan file:
/// executed steps no plan step matches (as [`changed_steps`]), and steps
/// not yet run whose meaning changed at their position, or that were added
/// or removed. Empty when only comments, layout, labels or tuning changed.
pub fn plan_changes(planned: &[PlannedStep], rows: &[StepRow]) -> Vec<ChangedStep> {
    let mut out = changed_steps(planned, rows);
    for row in rows.iter().filter(|r| !has_run(r)) {
        let Some(recorded) = row.fingerprint.as_deref() else {
            continue;
        };
        match at(planned, row.phase, row.step) {
            Some(now) if now.fingerprint == recorded => {}
            Some(now) => out.push(ChangedStep {
                name: row.name.clone(),
                phase_name: row.phase_name.clone(),
                what: row
                    .spec
                    .as_ref()
                    .map(|s| differences(s, &now.spec))
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| vec!["its fields changed".into()]),
            }),
            None => out.push(ChangedStep {
                name: row.name.clone(),
                phase_name: row.phase_name.clone(),
                what: vec!["it is no longer in the plan".into()],
            }),
        }
    }
    for p in planned {
        if !rows
            .iter()
            .any(|r| r.phase == p.phase as i32 && r.step == p.step as i32)
        {
            out.push(ChangedStep {
                name: p.name.clone(),
                phase_name: p.phase_name.clone(),
                what: vec!["it is new in the plan".into()],
            });
        }
    }
    out
}

/// A run laid out for an edited plan, and what the operator is told.
#[derive(Debug)]
pub struct Layout<'a> {
    /// One entry per plan step.
    pub steps: Vec<Realigned<'a>>,
    /// What happens to the changed steps, in words.
    pub notices: Vec<String>,
}

/// Lays a run out for an edited plan (`--force-changed-plan`): each plan step
/// continues the journal row with the same fingerprint (preferring its own
/// position), else the row at its position (a changed step: a batched one
/// starts over, a done one stays done with its recorded undo), else starts
/// fresh. Refused when a step that ran would have no place.
pub fn realign<'a>(planned: &'a [PlannedStep], rows: &[StepRow]) -> Result<Layout<'a>, String> {
    let mut used = vec![false; rows.len()];
    let mut from: Vec<Option<usize>> = vec![None; planned.len()];
    let same = |p: &PlannedStep, r: &StepRow| r.fingerprint.as_deref() == Some(&p.fingerprint);
    // Exact matches at the same position first, then anywhere.
    for (i, p) in planned.iter().enumerate() {
        if let Some(j) = rows
            .iter()
            .position(|r| r.phase == p.phase as i32 && r.step == p.step as i32 && same(p, r))
        {
            used[j] = true;
            from[i] = Some(j);
        }
    }
    for (i, p) in planned.iter().enumerate() {
        if from[i].is_some() {
            continue;
        }
        if let Some(j) = (0..rows.len()).find(|&j| !used[j] && same(p, &rows[j])) {
            used[j] = true;
            from[i] = Some(j);
        }
    }
    let mut notices = Vec::new();
    let mut restart = vec![false; planned.len()];
    for (i, p) in planned.iter().enumerate() {
        if from[i].is_some() {
            continue;
        }
        let Some(j) = (0..rows.len()).find(|&j| {
            !used[j]
                && rows[j].phase == p.phase as i32
                && rows[j].step == p.step as i32
                && rows[j].kind == p.kind
        }) else {
            continue;
        };
        let row = &rows[j];
        used[j] = true;
        from[i] = Some(j);
        if !has_run(row) {
            continue;
        }
        let moved = row
            .spec
            .as_ref()
            .map(|s| batch_identity_changed(s, &p.spec));
        match row.status {
            StepStatus::Done => notices.push(format!(
                "step \"{}\" changed after it ran; it stays done and its recorded undo is kept \
                 (roll back first to run the new version)",
                p.name
            )),
            _ if p.batched => {
                let fields = moved.flatten().unwrap_or_else(|| vec!["its fields".into()]);
                restart[i] = true;
                notices.push(format!(
                    "step \"{}\" starts over from the first key: {} changed since its checkpoint",
                    p.name,
                    fields.join(", ")
                ));
            }
            _ => notices.push(format!(
                "step \"{}\" changed after it was interrupted; it runs again as the plan now says",
                p.name
            )),
        }
    }
    let orphans: Vec<String> = rows
        .iter()
        .enumerate()
        .filter(|(j, r)| !used[*j] && has_run(r))
        .map(|(_, r)| format!("\"{}\" ({})", r.name, r.status.as_str()))
        .collect();
    if !orphans.is_empty() {
        return Err(format!(
            "the edited plan no longer has step(s) {} that this run executed; restore them in the \
             plan, or roll the run back first (`cutover rollback`)",
            orphans.join(", ")
        ));
    }
    let steps = planned
        .iter()
        .enumerate()
        .map(|(i, p)| Realigned {
            phase: p.phase as i32,
            step: p.step as i32,
            from: from[i].map(|j| (rows[j].phase, rows[j].step)),
            new: p.new_step(),
            restart: restart[i],
        })
        .collect();
    Ok(Layout { steps, notices })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan(text: &str) -> Plan {
        crate::plan::parse(Path::new("p.toml"), text).expect("plan parses")
    }

    const BASE: &str = r#"
name = "p"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE t ADD COLUMN c int"
rollback = "ALTER TABLE t DROP COLUMN c"
[[phases.steps]]
kind = "backfill"
table = "t"
key = "id"
set = "c = 1"
"#;

    fn rows_of(plan: &Plan, statuses: &[StepStatus]) -> Vec<StepRow> {
        planned(plan)
            .iter()
            .zip(statuses)
            .map(|(p, s)| StepRow {
                phase: p.phase as i32,
                step: p.step as i32,
                name: p.name.clone(),
                kind: p.kind.to_string(),
                status: *s,
                last_key: None,
                rows_done: 0,
                rows_updated: 0,
                phase_name: p.phase_name.clone(),
                fingerprint: Some(p.fingerprint.clone()),
                spec: Some(p.spec.clone()),
                undo: None,
                created: vec![],
                irreversible: p.irreversible,
            })
            .collect()
    }

    #[test]
    fn an_edited_rollback_of_a_done_step_is_named() {
        let old = plan(BASE);
        let rows = rows_of(&old, &[StepStatus::Done, StepStatus::Pending]);
        let new = plan(&BASE.replace("DROP COLUMN c\"", "DROP COLUMN important\""));
        let changed = changed_steps(&planned(&new), &rows);
        assert_eq!(changed.len(), 1);
        assert!(
            changed[0].to_string().contains("`rollback`"),
            "{}",
            changed[0]
        );
        assert!(changed[0].to_string().contains("DROP COLUMN important"));
    }

    #[test]
    fn moved_steps_match_by_identity_not_position() {
        let old = plan(BASE);
        let rows = rows_of(&old, &[StepStatus::Done, StepStatus::Running]);
        // A verify step inserted first: positions move, identities do not.
        let new = plan(&BASE.replace(
            "[[phases.steps]]\nkind = \"sql\"",
            "[[phases.steps]]\nkind = \"verify\"\nsql = \"SELECT 1\"\nexpect = 1\n[[phases.steps]]\nkind = \"sql\"",
        ));
        let p = planned(&new);
        assert!(changed_steps(&p, &rows).is_empty());
        let layout = realign(&p, &rows).expect("realigns");
        let from: Vec<Option<(i32, i32)>> = layout.steps.iter().map(|s| s.from).collect();
        assert_eq!(from, [None, Some((0, 0)), Some((0, 1))]);
        assert!(layout.notices.is_empty());
    }

    #[test]
    fn a_batched_step_whose_rows_changed_starts_over() {
        let old = plan(BASE);
        let rows = rows_of(&old, &[StepStatus::Done, StepStatus::Running]);
        let new = plan(&BASE.replace("set = \"c = 1\"", "set = \"c = 2\""));
        let p = planned(&new);
        let layout = realign(&p, &rows).expect("realigns");
        assert!(layout.steps[1].restart);
        assert!(
            layout.notices[0].contains("starts over"),
            "{:?}",
            layout.notices
        );
        assert!(layout.notices[0].contains("set"));
    }

    #[test]
    fn a_run_step_missing_from_the_plan_is_refused() {
        let old = plan(BASE);
        let rows = rows_of(&old, &[StepStatus::Done, StepStatus::Pending]);
        let new = plan(&BASE.replace("ADD COLUMN c int", "ADD COLUMN d int").replace(
            "[[phases.steps]]\nkind = \"sql\"",
            "[[phases.steps]]\nkind = \"gate\"\nmessage = \"x\"\n[[phases.steps]]\nkind = \"sql\"",
        ));
        let err = realign(&planned(&new), &rows).unwrap_err();
        assert!(err.contains("no longer has"), "{err}");
    }
}
