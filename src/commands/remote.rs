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

/// `cutover advance|pause|resume|abort PLAN`.
pub async fn send(cmd: RemoteCommand, plan_path: &Path, database_url: Option<&str>) -> i32 {
    send_with(cmd, plan_path, None, database_url).await
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

/// `cutover advance PLAN [--confirm NAME]`: the gate of an irreversible
/// phase is released only with the name the cockpit asks for — given, or
/// typed at a prompt — and otherwise nothing is sent.
pub async fn advance(plan_path: &Path, confirm: Option<&str>, database_url: Option<&str>) -> i32 {
    use std::io::{BufRead, IsTerminal, Write};
    let loaded = match load_plan(plan_path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let conn = match connect(database_url).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let run = if has_journal(&conn).await {
        journal::unfinished_run(&conn.client, &loaded.plan.name)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    if let Some(run) = &run
        && let Some((phase, true)) = waiting_gate(&conn, run.id).await
    {
        let expected = crate::plan::main_table(&loaded.plan);
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
                     sent. Confirm with `cutover advance {} --confirm {expected}`",
                    run.id,
                    plan_path.display()
                );
                return exit::FAILED;
            }
        };
        if typed != expected {
            eprintln!(
                "error: \"{typed}\" is not \"{expected}\"; the irreversible gate of {phase} stays \
                 closed and nothing was sent"
            );
            return exit::FAILED;
        }
    }
    send_with(RemoteCommand::Advance, plan_path, None, database_url).await
}

/// Sends a command (with an argument) to the run of a plan.
pub async fn send_with(
    cmd: RemoteCommand,
    plan_path: &Path,
    argument: Option<&str>,
    database_url: Option<&str>,
) -> i32 {
    let loaded = match load_plan(plan_path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let conn = match connect(database_url).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let name = &loaded.plan.name;
    let run = if has_journal(&conn).await {
        journal::unfinished_run(&conn.client, name)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let Some(run) = run else {
        eprintln!(
            "error: plan \"{name}\" has no unfinished run in {}; start one with `cutover run {}`",
            conn.target().display(),
            plan_path.display()
        );
        return exit::FAILED;
    };
    let live = journal::lock_holder(&conn.client, name)
        .await
        .ok()
        .flatten()
        .is_some();
    if !live {
        eprintln!(
            "error: no cutover is driving run #{} (status {}); `cutover run {}` resumes it{}",
            run.id,
            run.status.as_str(),
            plan_path.display(),
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
    println!("sent {} to run #{} of \"{name}\"", cmd.as_str(), run.id);
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
    let run = if !has_journal(&conn).await {
        None
    } else if let Some(id) = args.run {
        journal::run_by_id(&conn.client, id).await.ok().flatten()
    } else if let Some(l) = &loaded {
        journal::unfinished_run(&conn.client, &l.plan.name)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let Some(run) = run else {
        eprintln!(
            "error: no unfinished run to change in {} (see `cutover status`)",
            conn.target().display()
        );
        return exit::FAILED;
    };
    let alive = journal::lock_holder(&conn.client, &run.plan_name)
        .await
        .ok()
        .flatten()
        .is_some();
    if !alive {
        eprintln!(
            "error: no cutover is driving run #{} (status {}); change the plan file and resume it instead",
            run.id,
            run.status.as_str()
        );
        return exit::FAILED;
    }
    for (key, value) in &pairs {
        let argument = format!("{key}={value}");
        if let Err(e) =
            journal::send_remote(&conn.client, run.id, RemoteCommand::Set, Some(&argument)).await
        {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
        println!(
            "sent set {argument} to run #{} of \"{}\"",
            run.id, run.plan_name
        );
    }
    exit::OK
}
