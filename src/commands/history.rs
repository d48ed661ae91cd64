//! `cutover history`: the plans applied to the database (finished runs and
//! baselines); and `cutover baseline DIR PLAN`: marks a database that
//! already has a directory's changes up to PLAN as having applied them.

use std::path::Path;

use super::emit;
use super::migrate::{PlanState, read_dir, short, state_of};
use super::remote::{connect, has_journal};
use crate::cli::{BaselineArgs, HistoryArgs};
use crate::exit;
use crate::journal::history::{self, Applied, AppliedBy, BaselineMark};

/// One line per applied plan, oldest first.
pub fn text(applied: &[Applied]) -> String {
    if applied.is_empty() {
        return "no plan applied yet\n".into();
    }
    let rows: Vec<[String; 6]> = applied
        .iter()
        .map(|a| {
            let by = a.by.clone().unwrap_or_else(|| "?".into());
            [
                a.finished_at.clone(),
                a.plan.clone(),
                a.file.clone(),
                short(&a.hash).to_string(),
                match &a.host {
                    Some(host) => format!("{by}@{host}"),
                    None => by,
                },
                match a.how {
                    AppliedBy::Run { run_id } => format!("run #{run_id}"),
                    AppliedBy::Baseline => "baseline".into(),
                },
            ]
        })
        .collect();
    let head = ["FINISHED (UTC)", "PLAN", "FILE", "HASH", "BY", "HOW"].map(String::from);
    let mut widths = head.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `cutover history [--json]`.
pub async fn history(args: HistoryArgs, database_url: Option<&str>) -> i32 {
    let conn = match connect(database_url).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let applied = if has_journal(&conn).await {
        if let Err(e) = crate::journal::schema::ensure(&conn.client).await {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
        match history::applied(&conn.client).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILED;
            }
        }
    } else {
        Vec::new()
    };
    if args.json {
        match serde_json::to_string_pretty(&applied) {
            Ok(s) => emit(&format!("{s}\n")),
            Err(e) => {
                eprintln!("error: cannot write the history as JSON: {e}");
                return exit::FAILED;
            }
        }
    } else {
        emit(&text(&applied));
    }
    exit::OK
}

/// The index of `plan` among the directory's plans (same file, or the same
/// file name when `plan` is given without a directory).
fn position(plans: &[crate::plan::LoadedPlan], plan: &Path) -> Option<usize> {
    let wanted = plan.canonicalize().ok();
    plans.iter().position(|p| {
        (wanted.is_some() && p.path.canonicalize().ok() == wanted)
            || (plan.parent().is_none_or(|d| d.as_os_str().is_empty())
                && p.path.file_name() == plan.file_name())
    })
}

/// `cutover baseline DIR PLAN`.
pub async fn baseline(args: BaselineArgs, database_url: Option<&str>) -> i32 {
    let plans = match read_dir(&args.dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let Some(last) = position(&plans, &args.plan) else {
        let names: Vec<String> = plans
            .iter()
            .filter_map(|p| p.path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        eprintln!(
            "error: {} is not one of the plans of {} ({})",
            args.plan.display(),
            args.dir.display(),
            names.join(", ")
        );
        return exit::USAGE;
    };
    let (conn, applied) = match super::migrate::connect_with_history(database_url).await {
        Ok(found) => found,
        Err(code) => return code,
    };
    let mut marks = Vec::new();
    for loaded in &plans[..=last] {
        let file = loaded.path.display().to_string();
        let state = state_of(&conn.client, loaded, &applied).await;
        let unfinished = crate::journal::unfinished_run(&conn.client, &loaded.plan.name).await;
        match (state, unfinished) {
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: {e}");
                return exit::FAILED;
            }
            (Ok(PlanState::Applied(_) | PlanState::Changed(_)), _) => {
                emit(&format!("baseline: {file}: already applied\n"));
            }
            (Ok(PlanState::Pending), Ok(Some(run))) => {
                eprintln!(
                    "error: {file} (plan \"{}\") has an unfinished run #{} ({}): a baseline \
                     says its changes are already in the database. Finish it (`cutover run \
                     {file}`) or roll it back (`cutover rollback {file}`) first; nothing was \
                     marked",
                    loaded.plan.name,
                    run.id,
                    run.status.as_str()
                );
                return exit::USAGE;
            }
            (Ok(PlanState::Pending), Ok(None)) => marks.push(BaselineMark {
                plan: loaded.plan.name.clone(),
                file,
                hash: loaded.hash.clone(),
            }),
        }
    }
    match history::record_baseline(&conn.client, &marks).await {
        Ok(_) => {
            for m in &marks {
                emit(&format!(
                    "baseline: {} (plan \"{}\") marked as applied\n",
                    m.file, m.plan
                ));
            }
            emit(&format!(
                "baseline: the database is at {}; `cutover migrate {}` applies the plans after it\n",
                args.plan.display(),
                args.dir.display()
            ));
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lines_up_one_plan_per_line() {
        let entry = |plan: &str, how: AppliedBy, host: Option<&str>| Applied {
            plan: plan.into(),
            file: format!("plans/{plan}.toml"),
            hash: "0123456789abcdef0123".into(),
            finished_at: "2026-12-02T10:00:00Z".into(),
            by: Some("deploy".into()),
            host: host.map(str::to_string),
            how,
        };
        let out = text(&[
            entry("items", AppliedBy::Baseline, None),
            entry("items.price", AppliedBy::Run { run_id: 7 }, Some("ci-1")),
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("FINISHED (UTC)        PLAN"), "{out}");
        assert!(lines[1].contains("0123456789ab  deploy") && lines[1].ends_with("baseline"));
        assert!(
            lines[2].contains("deploy@ci-1") && lines[2].ends_with("run #7"),
            "{out}"
        );
        assert_eq!(text(&[]), "no plan applied yet\n");
    }
}
