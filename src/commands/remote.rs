//! `cutover advance|pause|resume|abort|release-replica`: steer runs from
//! another terminal, through a command row in the journal and a NOTIFY.

use std::path::Path;

use super::run::{load_plan, resolve_target};
use crate::db::Conn;
use crate::exit;
use crate::journal::{self, RemoteCommand};

pub(super) async fn connect(database_url: Option<&str>) -> Result<Conn, i32> {
    let target = resolve_target(database_url)?;
    Conn::connect(&target).await.map_err(|e| {
        eprintln!("error: {e}");
        exit::FAILED
    })
}

pub(super) async fn has_journal(conn: &Conn) -> bool {
    conn.client
        .query_one("SELECT to_regclass('cutover.runs') IS NOT NULL", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(false)
}

/// `cutover pause|resume|abort PLAN|--run N`.
pub async fn send(
    cmd: RemoteCommand,
    plan_path: Option<&Path>,
    run: Option<i64>,
    database_url: Option<&str>,
) -> i32 {
    send_with(cmd, plan_path, run, None, database_url).await
}

/// The gate the run waits at now, from its last gate event: (phase name,
/// irreversible).
async fn waiting_gate(conn: &Conn, run_id: i64) -> Option<(String, bool)> {
    let row = conn
        .client
        .query_opt(
            "SELECT data FROM cutover.events WHERE run_id = $1
               AND data->>'event' IN ('gate_waiting', 'gate_released')
             ORDER BY id DESC LIMIT 1",
            &[&run_id],
        )
        .await
        .ok()??;
    let data: serde_json::Value = row.get(0);
    (data["event"] == "gate_waiting").then(|| {
        (
            data["name"].as_str().unwrap_or("?").to_string(),
            data["irreversible"].as_bool().unwrap_or(false),
        )
    })
}

/// The run a command steers: the plan's unfinished run, or `--run N`; and
/// the plan file, when given.
async fn resolve(
    conn: &Conn,
    plan_path: Option<&Path>,
    run: Option<i64>,
) -> Result<(journal::RunRow, Option<crate::plan::LoadedPlan>), i32> {
    let loaded = plan_path.map(load_plan).transpose()?;
    let found = if !has_journal(conn).await {
        None
    } else if let Some(id) = run {
        journal::run_by_id(&conn.client, id).await.ok().flatten()
    } else if let Some(l) = &loaded {
        journal::unfinished_run(&conn.client, &l.plan.name)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    match found {
        Some(r) => Ok((r, loaded)),
        None => {
            let what = match (run, &loaded) {
                (Some(id), _) => format!("no run #{id}"),
                (None, Some(l)) => format!("plan \"{}\" has no unfinished run", l.plan.name),
                (None, None) => "no run".to_string(),
            };
            eprintln!(
                "error: {what} in {} (see `cutover status`; start one with `cutover run PLAN`)",
                conn.target().display()
            );
            Err(exit::FAILED)
        }
    }
}

/// The word an irreversible gate is confirmed with: the plan's main table
/// (from the file, else from the steps the journal recorded).
async fn confirm_word(
    conn: &Conn,
    run: &journal::RunRow,
    loaded: Option<&crate::plan::LoadedPlan>,
) -> String {
    if let Some(l) = loaded {
        return crate::plan::main_table(&l.plan);
    }
    let steps: Vec<crate::plan::Step> = journal::steps(&conn.client, run.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.spec.and_then(|s| serde_json::from_value(s).ok()))
        .collect();
    crate::plan::main_table_of(steps.iter()).unwrap_or_else(|| run.plan_name.clone())
}

/// Why an irreversible gate stays closed: the word it expects, the one
/// given, and the command that releases it.
fn confirm_mismatch(phase: &str, expected: &str, typed: &str, which: &str) -> String {
    let given = if typed.is_empty() {
        "nothing was given".to_string()
    } else {
        format!("\"{typed}\" was given")
    };
    format!(
        "the irreversible gate of {phase} is confirmed with \"{expected}\", but {given}; the \
         gate stays closed and nothing was sent. To release it, run `cutover advance {which} \
         --confirm \"{expected}\"`"
    )
}

/// `cutover advance PLAN|--run N [--confirm NAME]`: the gate of an
/// irreversible phase is released only with the name the cockpit asks for
/// — given, or typed at a prompt — and otherwise nothing is sent.
pub async fn advance(
    plan_path: Option<&Path>,
    run: Option<i64>,
    confirm: Option<&str>,
    database_url: Option<&str>,
) -> i32 {
    use std::io::{BufRead, IsTerminal, Write};
    let conn = match connect(database_url).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (found, loaded) = match resolve(&conn, plan_path, run).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Some((phase, true)) = waiting_gate(&conn, found.id).await {
        let expected = confirm_word(&conn, &found, loaded.as_ref()).await;
        let which = plan_path.map_or(format!("--run {}", found.id), |p| p.display().to_string());
        let typed = match confirm {
            Some(word) => word.to_string(),
            None if std::io::stdin().is_terminal() => {
                print!(
                    "advancing starts {phase}, which is IRREVERSIBLE (it can never be rolled back).\n\
                     type the table name (\"{expected}\") to go on: "
                );
                let _ = std::io::stdout().flush();
                let mut answer = String::new();
                let _ = std::io::stdin().lock().read_line(&mut answer);
                answer.trim().to_string()
            }
            None => {
                eprintln!(
                    "error: run #{} waits at the gate of {phase}, which is irreversible; nothing was \
                     sent. Confirm with `cutover advance {which} --confirm {expected}`",
                    found.id
                );
                return exit::FAILED;
            }
        };
        if typed != expected {
            eprintln!(
                "error: {}",
                confirm_mismatch(&phase, &expected, &typed, &which)
            );
            return exit::FAILED;
        }
    }
    deliver(&conn, &found, RemoteCommand::Advance, None).await
}

/// `cutover release-replica PLAN REPLICA` or `--run N REPLICA`.
pub async fn release_replica(
    args: crate::cli::ReleaseReplicaArgs,
    database_url: Option<&str>,
) -> i32 {
    let (plan, replica) = match (args.run, args.args.as_slice()) {
        (None, [plan, replica]) => (Some(std::path::PathBuf::from(plan)), replica.clone()),
        (Some(_), [replica]) => (None, replica.clone()),
        _ => {
            eprintln!("error: cutover release-replica needs PLAN REPLICA, or --run N REPLICA");
            return exit::USAGE;
        }
    };
    send_with(
        RemoteCommand::ReleaseReplica,
        plan.as_deref(),
        args.run,
        Some(&replica),
        database_url,
    )
    .await
}

/// Sends a command (with an argument) to a run.
pub async fn send_with(
    cmd: RemoteCommand,
    plan_path: Option<&Path>,
    run: Option<i64>,
    argument: Option<&str>,
    database_url: Option<&str>,
) -> i32 {
    let conn = match connect(database_url).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (found, _) = match resolve(&conn, plan_path, run).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    deliver(&conn, &found, cmd, argument).await
}

/// Sends one command row to a run that a live cutover drives.
async fn deliver(
    conn: &Conn,
    run: &journal::RunRow,
    cmd: RemoteCommand,
    argument: Option<&str>,
) -> i32 {
    let live = journal::lock_holder(&conn.client, &run.plan_name)
        .await
        .ok()
        .flatten()
        .is_some();
    if !live {
        eprintln!(
            "error: no cutover is driving run #{} (status {}); `cutover run {}` resumes it{}",
            run.id,
            run.status.as_str(),
            run.plan_path,
            if cmd == RemoteCommand::Advance {
                " (add --yes to release its gates)"
            } else {
                ""
            }
        );
        return exit::FAILED;
    }
    if let Err(e) = journal::send_remote(&conn.client, run.id, cmd, argument).await {
        eprintln!("error: {e}");
        return exit::FAILED;
    }
    println!(
        "sent {}{} to run #{} of \"{}\"",
        cmd.as_str(),
        argument.map(|a| format!(" {a}")).unwrap_or_default(),
        run.id,
        run.plan_name
    );
    exit::OK
}

/// `cutover set PLAN|--run N KEY=VALUE…`: each pair validated here as the
/// engine will (units, ranges, names), then sent as one command row each.
pub async fn set(args: crate::cli::SetArgs, database_url: Option<&str>) -> i32 {
    use crate::engine::live;
    // `set PLAN K=V…`, or `set --run N K=V…` with no plan file.
    let (plan, settings) = match (args.run, args.args.split_first()) {
        (None, Some((plan, rest))) if !plan.contains('=') => {
            (Some(std::path::PathBuf::from(plan)), rest.to_vec())
        }
        (None, _) => {
            eprintln!("error: cutover set needs a plan file (or --run N) before KEY=VALUE");
            return exit::USAGE;
        }
        (Some(_), _) => (None, args.args.clone()),
    };
    if settings.is_empty() {
        eprintln!(
            "error: cutover set needs at least one KEY=VALUE (keys: {})",
            live::KEYS.join(", ")
        );
        return exit::USAGE;
    }
    let loaded = match plan.as_deref().map(load_plan).transpose() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (throttle, abort) = loaded.as_ref().map_or_else(
        || (Default::default(), Default::default()),
        |l| (l.plan.throttle.clone(), l.plan.abort.clone()),
    );
    let mut pairs = Vec::new();
    for text in &settings {
        match live::parse_assignment(text)
            .and_then(|(k, v)| live::validate(&throttle, &abort, &k, &v).map(|()| (k, v)))
        {
            Ok(pair) => pairs.push(pair),
            Err(why) => {
                eprintln!("error: cutover set: {why}; nothing was sent");
                return exit::USAGE;
            }
        }
    }
    let conn = match connect(database_url).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (run, _) = match resolve(&conn, plan.as_deref(), args.run).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    for (key, value) in &pairs {
        let argument = format!("{key}={value}");
        let code = deliver(&conn, &run, RemoteCommand::Set, Some(&argument)).await;
        if code != exit::OK {
            return code;
        }
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::confirm_mismatch;

    #[test]
    fn a_wrong_confirmation_says_what_was_expected_what_was_given_and_what_to_type() {
        let m = confirm_mismatch("contract", "users", "orders", "plans/p.toml");
        assert!(m.contains("confirmed with \"users\""), "{m}");
        assert!(m.contains("\"orders\" was given"), "{m}");
        assert!(
            m.contains("`cutover advance plans/p.toml --confirm \"users\"`"),
            "{m}"
        );
    }

    #[test]
    fn an_empty_answer_at_the_prompt_reads_as_nothing_given() {
        let m = confirm_mismatch("contract", "add c", "", "--run 7");
        assert!(m.contains("but nothing was given"), "{m}");
        assert!(m.contains("--confirm \"add c\""), "{m}");
    }
}
