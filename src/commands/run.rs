//! `cutover run` and `cutover rollback`.

use std::io::IsTerminal;

use crate::cli::RunArgs;
use crate::db::Target;
use crate::db::databases::Databases;
use crate::engine::driver::{RunOptions, spawn_run};
use crate::exit;
use crate::plan;
use crate::preflight;
use crate::report::{self, HeadlessOptions};

/// Loads a plan, printing its error (file:line:col) on failure.
pub fn load_plan(path: &std::path::Path) -> Result<plan::LoadedPlan, i32> {
    plan::load(path).map_err(|e| {
        eprintln!("error: {e}");
        exit::USAGE
    })
}

/// Resolves the database, printing what to fix on failure.
pub fn resolve_target(database_url: Option<&str>) -> Result<Target, i32> {
    Target::resolve(database_url).map_err(|e| {
        eprintln!("error: {e}");
        exit::USAGE
    })
}

/// Resolves the plan's other databases, printing what to fix on failure.
pub fn resolve_databases(loaded: &plan::LoadedPlan, flags: &[String]) -> Result<Databases, i32> {
    Databases::resolve(
        &loaded.path,
        &plan::databases::declared(&loaded.plan),
        flags,
    )
    .map_err(|e| {
        eprintln!("error: {e}");
        exit::USAGE
    })
}

/// Headless when asked, or when stdout or stdin is not a terminal (CI,
/// cron, pipes): the cockpit needs a terminal.
pub fn headless(flag: bool, json: bool) -> bool {
    flag || json || !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal()
}

/// `cutover run PLAN`.
pub async fn run(args: RunArgs, database_url: Option<&str>, database_flags: &[String]) -> i32 {
    let loaded = match load_plan(&args.plan) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let target = match resolve_target(database_url) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let databases = match resolve_databases(&loaded, database_flags) {
        Ok(d) => d,
        Err(code) => return code,
    };
    if let Err(code) = preflight(&loaded, &target, &databases).await {
        return code;
    }
    let opts = RunOptions {
        yes: args.yes,
        force_changed_plan: args.force_changed_plan,
        databases,
    };
    let taps = match crate::report::taps::Taps::open(
        &loaded.plan,
        args.metrics.as_deref(),
        args.events.as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    if !headless(args.headless, args.json) {
        return match crate::ui::run_cockpit(loaded, target, opts, taps).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: the cockpit failed: {e:?}");
                exit::FAILED
            }
        };
    }
    let handle = taps.attach(spawn_run(loaded, target, opts));
    report::run(
        handle,
        HeadlessOptions {
            json: args.json,
            plan_path: args.plan.display().to_string(),
            yes: args.yes,
        },
    )
    .await
}

/// The same check as `cutover check`, before anything runs: errors (unsafe
/// statements no `allow_unsafe` covers, missing tables or keys) refuse the
/// run; warnings are printed and the run goes on.
async fn preflight(
    loaded: &plan::LoadedPlan,
    target: &Target,
    databases: &Databases,
) -> Result<(), i32> {
    let mut result =
        match preflight::connect_and_check(loaded, target, true, preflight::LONG_TRANSACTION).await
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: the preflight check failed: {e}");
                return Err(exit::FAILED);
            }
        };
    result
        .items
        .extend(preflight::moving::check(loaded, target, databases).await);
    if result.errors() > 0 {
        eprint!("{}", preflight::text(&result, loaded, target));
        eprintln!(
            "cutover run: refusing to start {}: the check above found {} error(s); nothing was \
             executed",
            loaded.path.display(),
            result.errors()
        );
        return Err(exit::USAGE);
    }
    for item in &result.items {
        if item.level == preflight::Level::Warning {
            eprintln!("warning: {}: {}", item.subject, item.message);
        }
    }
    for f in result.findings.iter().filter(|f| !f.is_error()) {
        eprintln!(
            "allowed: [{}] in step `{}`: {}",
            f.rule_name,
            f.step.as_deref().unwrap_or("?"),
            f.allowed.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
