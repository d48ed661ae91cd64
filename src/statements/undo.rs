//! How a completed step is undone: the statements a rollback runs, as the
//! journal records them when the step starts.

use super::{constraint, create_index, not_null, swap, sync_trigger};
use crate::plan::{Plan, Step};

/// A step's undo as the journal records it when the step starts: exactly
/// what a rollback will run, whatever the plan file says by then.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecordedUndo {
    /// Run this SQL (outside a transaction when it must be).
    Sql {
        /// The statement(s).
        sql: String,
    },
    /// Nothing to undo, and why.
    Nothing {
        /// Why.
        why: String,
    },
    /// It cannot be undone, and what to do.
    Missing {
        /// Why, and what to do.
        why: String,
    },
    /// Remove the objects the step recorded creating, on the main
    /// database and on `database` (a move's replication and tables).
    DropCreated {
        /// The plan's name for the other database.
        database: String,
    },
}

/// The undo to record for a step.
pub fn recorded_undo(step: &Step, plan: &Plan) -> RecordedUndo {
    match inverse(step, plan) {
        Ok(Inverse::Sql(sql)) => RecordedUndo::Sql { sql },
        Ok(Inverse::DropIndex(spec)) => RecordedUndo::Sql {
            sql: create_index::drop_sql(&spec),
        },
        Ok(Inverse::Nothing(why)) => RecordedUndo::Nothing { why: why.into() },
        Ok(Inverse::DropCreated(database)) => RecordedUndo::DropCreated { database },
        Err(why) => RecordedUndo::Missing { why },
    }
}

/// How a completed step is undone, if it can be.
pub fn inverse(step: &Step, plan: &Plan) -> Result<Inverse, String> {
    match step {
        Step::Sql(s) => match &s.rollback {
            Some(sql) => Ok(Inverse::Sql(sql.clone())),
            None => Err(format!(
                "step \"{}\" has no `rollback`; add one to the plan, or undo it by hand",
                step.display_name()
            )),
        },
        Step::CreateIndex(s) => Ok(Inverse::DropIndex(s.clone())),
        Step::Backfill(_) => Ok(Inverse::Nothing(
            "backfilled values stay (the rollback of the step that added the column removes them)",
        )),
        Step::Verify(_) => Ok(Inverse::Nothing("read-only")),
        Step::Gate(_) => Ok(Inverse::Nothing("nothing to undo")),
        Step::RenameColumn(_)
        | Step::RenameTable(_)
        | Step::AddColumn(_)
        | Step::DropColumn(_)
        | Step::AlterColumn(_)
        | Step::DropConstraint(_)
        | Step::DropNotNull(_) => Ok(Inverse::Nothing(
            "the version schema goes back to how it was before the step (recorded when it ran)",
        )),
        Step::CopyRows(_) => Ok(Inverse::Nothing(
            "copied rows go with the target table (the rollback of the step that created it)",
        )),
        Step::SyncTrigger(s) => Ok(Inverse::Sql(sync_trigger::drop_sql(s))),
        Step::NotNull(s) => Ok(Inverse::Sql(not_null::undo_sql(s))),
        Step::Constraint(s) => Ok(Inverse::Sql(constraint::undo_sql(s))),
        Step::Swap(s) => Ok(Inverse::Sql(swap::full_sql(
            plan,
            &swap::inverse(&s.renames),
            &s.sync_triggers,
            true,
        )?)),
        Step::Replicate(s) => Ok(Inverse::DropCreated(s.to.clone())),
        Step::VerifyAcross(_) => Ok(Inverse::Nothing("read-only")),
        Step::Switchover(_) => Err(format!(
            "step \"{}\" detached the replication; the application writes to the other \
             database now, and nothing can undo that",
            step.display_name()
        )),
    }
}

/// The undo of one step.
#[derive(Debug, Clone)]
pub enum Inverse {
    /// Run this SQL (the step's `rollback`).
    Sql(String),
    /// Drop the index concurrently.
    DropIndex(crate::plan::model::CreateIndexStep),
    /// Nothing to do, and why.
    Nothing(&'static str),
    /// Remove what the step recorded creating (here and on this database).
    DropCreated(String),
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const PLAN: &str = r#"
name = "undo"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN full_name text"
rollback = "ALTER TABLE users DROP COLUMN full_name"
[[phases.steps]]
kind = "sql"
sql = "SELECT 1"
[[phases.steps]]
kind = "create_index"
name = "users_email_idx"
table = "app.users"
columns = ["email"]
[[phases.steps]]
kind = "sync_trigger"
name = "full_name"
table = "users"
set = "full_name = NEW.name"
[[phases.steps]]
kind = "gate"
message = "deploy"
"#;

    fn steps() -> (Plan, Vec<Step>) {
        let plan = crate::plan::parse(Path::new("p.toml"), PLAN).expect("the test plan parses");
        let steps = plan.phases[0]
            .steps
            .iter()
            .map(|s| s.get_ref().clone())
            .collect();
        (plan, steps)
    }

    #[test]
    fn each_kind_records_the_undo_a_rollback_runs() {
        let (plan, steps) = steps();
        let undo: Vec<RecordedUndo> = steps.iter().map(|s| recorded_undo(s, &plan)).collect();
        assert_eq!(
            undo[0],
            RecordedUndo::Sql {
                sql: "ALTER TABLE users DROP COLUMN full_name".into()
            }
        );
        assert!(
            matches!(&undo[1], RecordedUndo::Missing { why } if why.contains("has no `rollback`")),
            "{:?}",
            undo[1]
        );
        assert_eq!(
            undo[2],
            RecordedUndo::Sql {
                sql: r#"DROP INDEX CONCURRENTLY IF EXISTS "app"."users_email_idx""#.into()
            }
        );
        assert!(
            matches!(&undo[3], RecordedUndo::Sql { sql } if sql.starts_with("DROP TRIGGER IF EXISTS")),
            "{:?}",
            undo[3]
        );
        assert_eq!(
            undo[4],
            RecordedUndo::Nothing {
                why: "nothing to undo".into()
            }
        );
    }

    #[test]
    fn an_index_is_undone_by_dropping_it_concurrently() {
        let (plan, steps) = steps();
        assert!(matches!(
            inverse(&steps[2], &plan),
            Ok(Inverse::DropIndex(s)) if s.name == "users_email_idx"
        ));
    }

    #[test]
    fn the_recorded_undo_survives_the_journal() {
        let undo = RecordedUndo::Nothing {
            why: "read-only".into(),
        };
        let json = serde_json::to_value(&undo).expect("serializes");
        assert_eq!(json["type"], "nothing");
        let back: RecordedUndo = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, undo);
    }
}
