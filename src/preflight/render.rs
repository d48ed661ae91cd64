//! The preflight report for people.

use super::{Level, Preflight};
use crate::db::Target;
use crate::lint::render;
use crate::plan::LoadedPlan;

/// The check, for people.
pub fn text(p: &Preflight, loaded: &LoadedPlan, target: &Target) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "check {} against {}\n",
        loaded.path.display(),
        target.display()
    ));
    for f in &p.findings {
        out.push('\n');
        out.push_str(&render::finding(f));
    }
    if !p.findings.is_empty() {
        out.push('\n');
    }
    for item in &p.items {
        let tag = match item.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "ok",
        };
        out.push_str(&format!("{tag:>7}  {}: {}\n", item.subject, item.message));
    }
    let errors = p.errors();
    let warnings = p.items.iter().filter(|i| i.level == Level::Warning).count();
    out.push_str(&if errors == 0 && warnings > 0 {
        format!("\nready: no errors; {warnings} warning(s) above — read them before starting\n")
    } else if errors == 0 {
        "\nready: no errors\n".to_string()
    } else {
        format!(
            "\nnot ready: {errors} error(s); fix them (or give a flagged `sql` step \
             `allow_unsafe = \"why\"`) and check again\n"
        )
    });
    out
}
