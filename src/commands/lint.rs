//! `cutover lint FILE…` and `cutover plan PLAN`: offline, nothing runs.

use std::path::Path;

use crate::cli::{Format, LintArgs, PlanViewArgs};
use crate::exit;
use crate::lint::plan::{Finding, analyze, lint_sql_file};
use crate::lint::{Schema, render};

/// Lints one file: a plan (`.toml`) or SQL.
fn lint_file(path: &Path, pg_major: u32) -> Result<Vec<Finding>, String> {
    let is_plan = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if is_plan {
        let loaded = crate::plan::load(path).map_err(|e| e.to_string())?;
        Ok(analyze(&loaded, &mut Schema::new(pg_major)).findings)
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "{}: cannot read it: {e} (lint takes .sql files and .toml plans)",
                path.display()
            )
        })?;
        Ok(lint_sql_file(path, &text, &mut Schema::new(pg_major)))
    }
}

/// `cutover lint --rules`.
fn print_rules(format: Format) {
    match format {
        Format::Json => {
            let rules: Vec<_> = crate::lint::Rule::ALL
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "rule": r.name(),
                        "flags": r.flags(),
                        "safe_way": r.safe_way(),
                    })
                })
                .collect();
            super::emit(&format!("{:#}\n", serde_json::json!({ "rules": rules })));
        }
        Format::Text => super::emit(&crate::lint::catalogue::rule_table()),
    }
}

/// `cutover lint`.
pub fn lint(args: LintArgs) -> i32 {
    if args.rules {
        print_rules(args.format);
        return exit::OK;
    }
    let mut findings = Vec::new();
    let mut unreadable = false;
    for path in &args.files {
        match lint_file(path, args.pg_version) {
            Ok(f) => findings.extend(f),
            Err(e) => {
                eprintln!("error: {e}");
                unreadable = true;
            }
        }
    }
    match args.format {
        Format::Json => {
            let doc = serde_json::json!({
                "pg_version": args.pg_version,
                "files": args.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "errors": findings.iter().filter(|f| f.is_error()).count(),
                "allowed": findings.iter().filter(|f| !f.is_error()).count(),
                "findings": findings,
            });
            super::emit(&format!("{doc:#}\n"));
        }
        Format::Text => {
            let mut text = String::new();
            for f in &findings {
                text.push_str(&render::finding(f));
                text.push('\n');
            }
            text.push_str(&render::summary(
                &findings,
                args.files.len(),
                args.pg_version,
            ));
            text.push('\n');
            super::emit(&text);
        }
    }
    if unreadable {
        exit::USAGE
    } else if findings.iter().any(Finding::is_error) {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// `cutover plan`.
pub fn plan(args: PlanViewArgs) -> i32 {
    let loaded = match super::run::load_plan(&args.plan) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let report = analyze(&loaded, &mut Schema::new(args.pg_version));
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => super::emit(&format!("{s}\n")),
            Err(e) => {
                eprintln!("error: cannot write JSON: {e}");
                return exit::FAILED;
            }
        },
        Format::Text => {
            let title = format!(
                "plan \"{}\" ({}), rules for PostgreSQL {}",
                loaded.plan.name,
                args.plan.display(),
                args.pg_version
            );
            super::emit(&render::plan(&report, &title));
        }
    }
    if report.errors() > 0 {
        exit::FAILED
    } else {
        exit::OK
    }
}
