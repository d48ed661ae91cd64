//! Findings and dry runs as text (compiler style) and JSON.

use std::fmt::Write as _;

use super::locks::LockEffect;
use super::plan::{Finding, PlanReport};

/// One finding, the way a compiler prints an error.
pub fn finding(f: &Finding) -> String {
    let mut out = String::new();
    let level = if f.is_error() { "error" } else { "allowed" };
    let _ = writeln!(out, "{level}[{}]: {}", f.rule_name, f.message);
    let place = match (&f.phase, &f.step) {
        (Some(p), Some(s)) => format!(" (phase `{p}`, step `{s}`)"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "  --> {}:{}:{}{place}",
        f.file.display(),
        f.line,
        f.column
    );
    let gutter = " ".repeat(f.line.to_string().len());
    let _ = writeln!(out, "{gutter} |");
    let _ = writeln!(out, "{} | {}", f.line, f.line_text);
    let pad: String = f
        .line_text
        .chars()
        .take(f.column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let _ = writeln!(out, "{gutter} | {pad}^");
    let _ = writeln!(out, "{gutter} = help: {}", f.help);
    if let Some(reason) = &f.allowed {
        let _ = writeln!(out, "{gutter} = allowed by the step: {reason}");
    }
    out
}

/// The closing line of `cutover lint`.
pub fn summary(findings: &[Finding], files: usize, pg_major: u32) -> String {
    let errors = findings.iter().filter(|f| f.is_error()).count();
    let allowed = findings.len() - errors;
    let files = match files {
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    let mut parts = vec![match errors {
        0 => "no unsafe statements".to_string(),
        1 => "1 unsafe statement".to_string(),
        n => format!("{n} unsafe statements"),
    }];
    if allowed > 0 {
        parts.push(format!("{allowed} allowed by `allow_unsafe`"));
    }
    format!(
        "{} in {files} (rules for PostgreSQL {pg_major}; --pg-version to change)",
        parts.join(", ")
    )
}

/// Locks as one line each.
pub fn locks(effects: &Option<Vec<LockEffect>>) -> Vec<String> {
    match effects {
        None => vec!["locks: not known to cutover (check them yourself)".into()],
        Some(e) if e.is_empty() => vec!["locks: no table locks beyond reads".into()],
        Some(e) => e
            .iter()
            .map(|l| {
                format!(
                    "lock: {} on {} — {}, {}",
                    l.mode.sql(),
                    l.relation,
                    l.work.describe(),
                    l.blocks.describe()
                )
            })
            .collect(),
    }
}

/// The dry run, for people.
pub fn plan(report: &PlanReport, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "Nothing is executed. Statements exactly as cutover sends them."
    );
    let mut phase = "";
    for (i, step) in report.steps.iter().enumerate() {
        if step.phase != phase {
            phase = &step.phase;
            let _ = writeln!(
                out,
                "\n== phase {phase}{}",
                if step.irreversible {
                    " (irreversible: typed confirmation)"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(out, "\n[{}] {} ({})", i + 1, step.name, step.kind);
        if let Some(reason) = &step.allow_unsafe {
            let _ = writeln!(out, "    allow_unsafe: {reason}");
        }
        for st in &step.statements {
            if !st.label.is_empty() {
                let _ = writeln!(out, "    -- {}", st.label);
            }
            for line in st.sql.lines() {
                let _ = writeln!(out, "    {line}");
            }
            for l in locks(&st.locks) {
                let _ = writeln!(out, "      {l}");
            }
            if let Some(budget) = report.max_stall
                && st.label != "rollback"
            {
                match super::plan::stall::verdict(st, budget) {
                    Ok(ok) => {
                        let _ = writeln!(out, "      stall: {ok}");
                    }
                    Err(why) => {
                        let _ = writeln!(out, "      STALL: {why}");
                    }
                }
            }
            for &f in &st.findings {
                if let Some(f) = report.findings.get(f) {
                    let level = if f.is_error() { "UNSAFE" } else { "allowed" };
                    let _ = writeln!(out, "      {level} [{}] {}", f.rule_name, f.message);
                    let _ = writeln!(out, "        help: {}", f.help);
                }
            }
        }
        if step.kind == "gate" {
            let _ = writeln!(out, "    waits for the operator");
        }
        match &step.reversible {
            Ok(how) => {
                let _ = writeln!(out, "    reversible: yes — {how}");
            }
            Err(why) => {
                let _ = writeln!(out, "    reversible: no — {why}");
            }
        }
    }
    let errors = report.errors();
    let allowed = report.findings.len() - errors;
    let _ = writeln!(
        out,
        "\n{} step(s); {}{}",
        report.steps.len(),
        match errors {
            0 => "no unsafe statements".to_string(),
            n => format!("{n} unsafe statement(s): `cutover run` refuses this plan"),
        },
        if allowed > 0 {
            format!(", {allowed} allowed by allow_unsafe")
        } else {
            String::new()
        }
    );
    out
}
