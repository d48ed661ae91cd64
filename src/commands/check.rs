//! `cutover check PLAN`: the preflight (lint with the server's version and
//! catalog, plus read-only checks of the live server), printed as text or
//! JSON. Exit 1 when it finds an error.

use crate::cli::CheckArgs;
use crate::db::Target;
use crate::exit;
use crate::plan;
use crate::preflight;

/// `cutover check PLAN`.
pub async fn run(args: CheckArgs, database_url: Option<&str>, database_flags: &[String]) -> i32 {
    let loaded = match plan::load(&args.plan) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let target = match Target::resolve(database_url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let databases = match super::run::resolve_databases(&loaded, database_flags) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let mut result =
        match preflight::connect_and_check(&loaded, &target, false, args.long_transaction).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILED;
            }
        };
    result
        .items
        .extend(preflight::moving::check(&loaded, &target, &databases).await);
    if args.format == crate::cli::Format::Json {
        match serde_json::to_string_pretty(&result) {
            Ok(s) => super::emit(&format!("{s}\n")),
            Err(e) => {
                eprintln!("error: cannot write JSON: {e}");
                return exit::FAILED;
            }
        }
    } else {
        super::emit(&preflight::text(&result, &loaded, &target));
    }
    if result.errors() > 0 {
        exit::FAILED
    } else {
        exit::OK
    }
}
