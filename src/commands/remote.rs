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
