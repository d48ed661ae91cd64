//! `cutover migrate DIR`: the plans (`*.toml`) of a directory, in file-name
//! order, each applied as a run of its own (preflight, gates, journal) unless
//! the journal says it was applied: a run of it finished, or a baseline
//! marked it. Stops at the first plan that does not finish.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::emit;
use crate::cli::{MigrateArgs, RunArgs};
use crate::engine::identity;
use crate::exit;
use crate::journal::history::{self, Applied, AppliedBy};
use crate::plan::LoadedPlan;

/// Where a plan of the directory stands.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanState {
    /// Applied with this very file (or one that differs only in comments,
    /// layout, labels or tuning); the words say how.
    Applied(String),
    /// Applied, but the file now does something else: what changed.
    Changed(Vec<String>),
    /// Not applied yet (never run, or its run has not finished).
    Pending,
}

/// The directory's plans in file-name order; an unreadable or invalid plan,
/// or two files with the same plan `name`, refuses the whole directory.
/// Hidden files (`.name.toml`: editor backups, stashed drafts) are not plans.
pub fn read_dir(dir: &Path) -> Result<Vec<LoadedPlan>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the plan directory {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(format!("{} has no plans (*.toml files)", dir.display()));
    }
    let mut plans: Vec<LoadedPlan> = Vec::new();
    for file in files {
        let loaded = crate::plan::load(&file).map_err(|e| e.to_string())?;
        if let Some(twin) = plans.iter().find(|p| p.plan.name == loaded.plan.name) {
            return Err(format!(
                "{} and {} both name their plan \"{}\": the journal knows a plan by its name, so \
                 give each file its own",
                twin.path.display(),
                loaded.path.display(),
                loaded.plan.name
            ));
        }
        plans.push(loaded);
    }
    Ok(plans)
}

/// Where `loaded` stands, given what the journal says was applied.
pub async fn state_of(
    client: &tokio_postgres::Client,
    loaded: &LoadedPlan,
    applied: &[Applied],
) -> Result<PlanState, crate::db::DbError> {
    let Some(done) = applied.iter().rev().find(|a| a.plan == loaded.plan.name) else {
        return Ok(PlanState::Pending);
    };
    let how = match done.how {
        AppliedBy::Run { run_id } => format!("run #{run_id} finished {}", done.finished_at),
        AppliedBy::Baseline => format!("marked by a baseline {}", done.finished_at),
    };
    if done.hash == loaded.hash {
        return Ok(PlanState::Applied(how));
    }
    Ok(match done.how {
        AppliedBy::Run { run_id } => {
            let rows = crate::journal::steps(client, run_id).await?;
            let changed = identity::plan_changes(&identity::planned(&loaded.plan), &rows);
            if changed.is_empty() {
                PlanState::Applied(format!(
                    "{how}; the file changed since, but no step changed what it does"
                ))
            } else {
                PlanState::Changed(changed.iter().map(ToString::to_string).collect())
            }
        }
        AppliedBy::Baseline => PlanState::Changed(vec![format!(
            "the file differs from the one the baseline marked (hash {} then, {} now)",
            short(&done.hash),
            short(&loaded.hash)
        )]),
    })
}

/// The first 12 characters of a hash, for people.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Prints a line (text) or a JSON object (with --json).
fn say(json_mode: bool, event: &str, text: String, data: serde_json::Value) {
    if json_mode {
        let mut obj = json!({ "event": event, "message": text });
        if let (Some(o), serde_json::Value::Object(d)) = (obj.as_object_mut(), data) {
            o.extend(d);
        }
        emit(&format!("{obj}\n"));
    } else {
        emit(&format!("migrate: {text}\n"));
    }
}

/// Connects, creates or upgrades the journal, and reads what was applied;
/// `Err` is the exit code, the error already printed.
pub async fn connect_with_history(
    database_url: Option<&str>,
) -> Result<(crate::db::Conn, Vec<Applied>), i32> {
    let conn = super::remote::connect(database_url).await?;
    if let Err(e) = crate::journal::schema::ensure(&conn.client).await {
        eprintln!("error: {e}");
        return Err(exit::FAILED);
    }
    match history::applied(&conn.client).await {
        Ok(applied) => Ok((conn, applied)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit::FAILED)
        }
    }
}

/// `cutover migrate DIR`.
pub async fn migrate(args: MigrateArgs, database_url: Option<&str>, databases: &[String]) -> i32 {
    let plans = match read_dir(&args.dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let (conn, applied) = match connect_with_history(database_url).await {
        Ok(found) => found,
        Err(code) => return code,
    };
    // Decide every plan's fate before running any: a changed plan anywhere
    // refuses the whole directory, so nothing half-applies around it.
    let mut pending = Vec::new();
    let mut refusals = Vec::new();
    for loaded in &plans {
        let file = loaded.path.display().to_string();
        let state = match state_of(&conn.client, loaded, &applied).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILED;
            }
        };
        match state {
            PlanState::Applied(how) => say(
                args.json,
                "migrate_skipped",
                format!("{file}: already applied ({how})"),
                json!({ "file": file, "plan": loaded.plan.name }),
            ),
            PlanState::Changed(what) if args.force_changed_plan => say(
                args.json,
                "migrate_skipped",
                format!(
                    "warning: {file}: applied, and changed since ({}); counted as applied \
                     (--force-changed-plan): write a new plan for the new change",
                    what.join("; ")
                ),
                json!({ "file": file, "plan": loaded.plan.name, "changed": what }),
            ),
            PlanState::Changed(what) => refusals.push(format!(
                "  - {file} (plan \"{}\"):\n      {}",
                loaded.plan.name,
                what.join("\n      ")
            )),
            PlanState::Pending => pending.push(loaded.path.clone()),
        }
    }
    drop(conn);
    if !refusals.is_empty() {
        eprintln!(
            "error: cutover migrate: these plans were applied and their files changed since:\n{}\n\
             Nothing was run. Restore the files (a change belongs in a new plan), or pass \
             --force-changed-plan to count them as applied anyway",
            refusals.join("\n")
        );
        return exit::USAGE;
    }
    let total = pending.len();
    for (i, path) in pending.iter().enumerate() {
        let file = path.display().to_string();
        say(
            args.json,
            "migrate_plan",
            format!("applying {file} ({} of {total})", i + 1),
            json!({ "file": file, "index": i + 1, "of": total }),
        );
        let run = RunArgs {
            plan: path.clone(),
            yes: args.yes,
            headless: args.headless,
            json: args.json,
            metrics: None,
            events: None,
            force_changed_plan: args.force_changed_plan,
        };
        let code = super::run::run(run, database_url, databases).await;
        if code != exit::OK {
            let what = match code {
                exit::ABORTED => "was aborted",
                exit::DETACHED => "was detached (paused and let go)",
                exit::USAGE => "was refused before it started",
                _ => "failed",
            };
            let rest: Vec<String> = pending[i + 1..]
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            say(
                args.json,
                "migrate_stopped",
                format!(
                    "stopped: {file} {what}. Fix the cause, then run `cutover migrate {}` again: \
                     it resumes {file} from its checkpoint{}",
                    args.dir.display(),
                    if rest.is_empty() {
                        String::new()
                    } else {
                        format!(", then applies {}", rest.join(", "))
                    }
                ),
                json!({ "file": file, "exit_code": code, "not_started": rest }),
            );
            return code;
        }
    }
    say(
        args.json,
        "migrate_done",
        format!("{} applied, {} already applied", total, plans.len() - total),
        json!({ "applied": total, "skipped": plans.len() - total }),
    );
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::read_dir;

    #[test]
    fn hidden_files_in_the_plan_directory_are_not_plans() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = "name = \"p\"\n[[phases]]\nname = \"a\"\n[[phases.steps]]\nkind = \"gate\"\nmessage = \"m\"\n";
        std::fs::write(dir.path().join("001_p.toml"), plan).expect("write plan");
        std::fs::write(dir.path().join(".hidden.toml"), "not a plan [").expect("write dotfile");
        let plans = read_dir(dir.path()).expect("the dotfile is skipped");
        let names: Vec<_> = plans.iter().map(|p| p.plan.name.as_str()).collect();
        assert_eq!(names, ["p"]);
    }

    #[test]
    fn a_directory_of_only_hidden_files_has_no_plans() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(".draft.toml"), "name = \"d\"\n").expect("write dotfile");
        let err = read_dir(dir.path()).expect_err("no plans");
        assert!(err.contains("has no plans"), "{err}");
    }
}
