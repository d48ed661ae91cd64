//! `cutover rollback`: shows what will be undone (the SQL the journal
//! recorded and the locks it takes), asks — as the cockpit does — and only
//! then undoes.

use std::io::{BufRead, IsTerminal, Write};

use super::run::{load_plan, resolve_target};
use crate::cli::RollbackArgs;
use crate::engine::error::RunError;
use crate::engine::rollback::{RollbackOptions, preview, spawn_rollback_with};
use crate::engine::undo::Undo;
use crate::exit;
use crate::lint::Schema;
use crate::lint::locks::effects;
use crate::report::{self, HeadlessOptions};

/// The locks one undo statement takes, in words.
fn locks_of(sql: &str) -> String {
    let schema = Schema::new(crate::lint::DEFAULT_PG_MAJOR);
    let locks: Vec<String> = crate::sql::parse(sql)
        .iter()
        .map(|s| match effects(s, &schema) {
            Some(e) if e.is_empty() => "no table lock".to_string(),
            Some(e) => e
                .iter()
                .map(|l| {
                    format!(
                        "{} on {} ({})",
                        l.mode.sql(),
                        l.relation,
                        l.blocks.describe()
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            None => "locks not known".to_string(),
        })
        .collect();
    locks.join("; ")
}

/// The preview, one block per step.
pub fn describe(items: &[Undo]) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(&format!("  - {}\n", item.describe()));
        if let Some(sql) = item.sql() {
            out.push_str(&format!("      locks: {}\n", locks_of(sql)));
        }
    }
    out
}

/// `cutover rollback PLAN [--to PHASE] [--yes] [--dry-run]`.
pub async fn rollback(
    args: RollbackArgs,
    database_url: Option<&str>,
    database_flags: &[String],
) -> i32 {
    let loaded = match load_plan(&args.plan) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let target = match resolve_target(database_url) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let databases = match super::run::resolve_databases(&loaded, database_flags) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let opts = RollbackOptions {
        to: args.to.clone(),
        force_changed_plan: args.force_changed_plan,
        databases,
    };
    let (run, items) = match preview(&loaded, &target, &opts).await {
        Ok(p) => p,
        Err(RunError::Refused(why)) => {
            eprintln!("error: cutover rollback {}: {why}", args.plan.display());
            eprintln!("nothing was changed");
            return exit::FAILED;
        }
        Err(e) => {
            eprintln!("error: cutover rollback {}: {e}", args.plan.display());
            return exit::FAILED;
        }
    };
    println!(
        "rollback of run #{} of \"{}\" ({}): {} step(s), last first:",
        run.id,
        run.plan_name,
        run.status.as_str(),
        items.len()
    );
    print!("{}", describe(&items));
    if args.dry_run {
        println!("--dry-run: nothing was changed");
        return exit::OK;
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: cutover rollback changes the database and there is no terminal to ask on; \
                 review the list above, then pass --yes (or --dry-run to only look)"
            );
            return exit::FAILED;
        }
        let expected = crate::plan::main_table(&loaded.plan);
        print!("type the table name (\"{expected}\") to undo these steps: ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != expected {
            println!("not confirmed; nothing was changed");
            return exit::FAILED;
        }
    }
    let handle = spawn_rollback_with(loaded, target, opts);
    report::run(
        handle,
        HeadlessOptions {
            json: false,
            plan_path: args.plan.display().to_string(),
            yes: false,
        },
    )
    .await
}
