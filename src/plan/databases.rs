//! The plan's other databases: which it declares, which step works on
//! which, and the rules of the cross-database steps (a name must be
//! declared; one `replicate` per database, before the `verify_across` and
//! `switchover` that need it; the switchover in an irreversible phase).

use std::ops::Range;

use super::{Plan, Step};
use crate::db::databases::Declared;

/// The other database a step works on, if any.
pub fn database_of(step: &Step) -> Option<&str> {
    match step {
        Step::Replicate(s) => Some(&s.to),
        Step::VerifyAcross(s) => Some(&s.database),
        Step::Switchover(s) => Some(&s.database),
        _ => None,
    }
}

/// The declared databases, each with the first step that works on it.
pub fn declared(plan: &Plan) -> Vec<Declared> {
    plan.databases
        .iter()
        .map(|name| Declared {
            name: name.clone(),
            used_by: plan.phases.iter().find_map(|phase| {
                phase.steps.iter().find_map(|s| {
                    let step = s.get_ref();
                    (database_of(step) == Some(name.as_str())).then(|| {
                        format!("step \"{}\" of phase {}", step.display_name(), phase.name())
                    })
                })
            }),
        })
        .collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 20
}

/// Checks the declarations and the cross-database steps; an error carries
/// the offending step's span when there is one.
pub fn validate(plan: &Plan) -> Result<(), (Option<Range<usize>>, String)> {
    for name in &plan.databases {
        if !valid_name(name) {
            return Err((
                None,
                format!(
                    "databases: \"{name}\" must be lower-case letters, digits and _ (at most 20): \
                     it names the publication, subscription and slot"
                ),
            ));
        }
    }
    let mut replicated: Vec<&str> = Vec::new();
    for phase in &plan.phases {
        for spanned in &phase.steps {
            let step = spanned.get_ref();
            let Some(db) = database_of(step) else {
                continue;
            };
            let at = |message: String| Err((Some(spanned.span()), message));
            if !plan.databases.iter().any(|d| d == db) {
                return at(format!(
                    "{} names database `{db}`, which the plan does not declare: add \
                     `databases = [\"{db}\"]` at the top of the plan",
                    step.kind()
                ));
            }
            match step {
                Step::Replicate(s) => {
                    if replicated.contains(&db) {
                        return at(format!(
                            "a second replicate to `{db}`: one replicate step per database \
                             (list every table in it)"
                        ));
                    }
                    if s.tables.is_empty() || s.tables.iter().any(|t| t.trim().is_empty()) {
                        return at(
                            "replicate needs `tables = [\"users\", …]` (or [\"*\"] for all)".into(),
                        );
                    }
                    if phase.irreversible {
                        return at("replicate belongs before the irreversible phase".into());
                    }
                    replicated.push(db);
                }
                Step::VerifyAcross(_) | Step::Switchover(_) if !replicated.contains(&db) => {
                    return at(format!(
                        "{} on `{db}` needs an earlier `replicate` step with `to = \"{db}\"`",
                        step.kind()
                    ));
                }
                Step::VerifyAcross(s) => {
                    if s.table.trim().is_empty() || s.key.trim().is_empty() {
                        return at("verify_across needs `table` and `key`".into());
                    }
                    if s.chunk == Some(0) {
                        return at("verify_across `chunk` must be at least 1".into());
                    }
                }
                Step::Switchover(s) => {
                    if !phase.irreversible {
                        return at(format!(
                            "switchover cannot be undone: put it in a phase with \
                             `irreversible = true` (phase `{}` is not)",
                            phase.name()
                        ));
                    }
                    if let Some(w) = &s.wait
                        && let Err(e) = humantime::parse_duration(w)
                    {
                        return at(format!("switchover `wait = \"{w}\"`: {e} (e.g. \"5m\")"));
                    }
                    if s.sequence_margin.is_some_and(|m| m < 0) {
                        return at("switchover `sequence_margin` must not be negative".into());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn err(text: &str) -> String {
        crate::plan::parse(Path::new("p.toml"), text)
            .expect_err("invalid")
            .to_string()
    }

    const HEAD: &str = "name = \"m\"\ndatabases = [\"target\"]\n[[phases]]\nname = \"copy\"\n";

    #[test]
    fn an_undeclared_database_is_named() {
        let text = HEAD.replace("databases = [\"target\"]\n", "")
            + "[[phases.steps]]\nkind = \"replicate\"\nto = \"target\"\ntables = [\"users\"]\n";
        let e = err(&text);
        assert!(e.contains("does not declare"), "{e}");
        assert!(e.contains("databases = [\"target\"]"), "{e}");
    }

    #[test]
    fn verify_and_switchover_need_a_replicate_first() {
        let text = format!(
            "{HEAD}[[phases.steps]]\nkind = \"verify_across\"\ndatabase = \"target\"\ntable = \"users\"\nkey = \"id\"\n"
        );
        let e = err(&text);
        assert!(e.contains("needs an earlier `replicate`"), "{e}");
    }

    #[test]
    fn a_switchover_outside_an_irreversible_phase_is_refused() {
        let text = format!(
            "{HEAD}[[phases.steps]]\nkind = \"replicate\"\nto = \"target\"\ntables = [\"users\"]\n\
             [[phases.steps]]\nkind = \"switchover\"\ndatabase = \"target\"\n"
        );
        let e = err(&text);
        assert!(e.contains("irreversible = true"), "{e}");
    }

    #[test]
    fn a_bad_database_name_is_refused() {
        let text = HEAD.replace("\"target\"", "\"Target DB\"")
            + "[[phases.steps]]\nkind = \"gate\"\nmessage = \"m\"\n";
        let e = err(&text);
        assert!(e.contains("lower-case"), "{e}");
    }
}
