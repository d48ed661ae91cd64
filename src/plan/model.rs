//! The plan file's types: the TOML format *is* these types. This file
//! holds the plan, its phases and the `Step` enum; each table's and each
//! kind's fields are in the sibling modules it re-exports.

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use super::altered::{
    AlterColumnStep, CheckSpec, DropConstraintStep, DropNotNullStep, ReferencesSpec, UniqueSpec,
};
pub use super::kinds::{
    BackfillStep, ColumnMap, Compare, ConstraintStep, CopyRowsStep, CreateIndexStep, GateStep,
    NotNullStep, Rename, SqlStep, SwapStep, SyncTriggerStep, VerifyStep,
};
pub use super::moving::{ReplicateStep, SwitchoverStep, VerifyAcrossStep};
pub use super::settings::{AbortLimits, Settings, Throttle};
pub use super::versioned::{AddColumnStep, DropColumnStep, RenameColumnStep, RenameTableStep};

/// A migration plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Identifies the plan's runs in the journal.
    pub name: String,
    /// What the plan does, for people.
    #[serde(default)]
    pub description: String,
    /// How statements are run.
    #[serde(default)]
    pub settings: Settings,
    /// When batches slow down or wait.
    #[serde(default)]
    pub throttle: Throttle,
    /// When the run stops itself.
    #[serde(default)]
    pub abort: AbortLimits,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// `[versions]`: both application versions at once, through a version
    /// schema of views.
    #[serde(default)]
    pub versions: Option<Versions>,
    /// Other databases the plan touches, by name (`databases = ["target"]`);
    /// each one's URL comes from `--database NAME=URL` or
    /// `CUTOVER_DATABASE_<NAME>`. The journal stays in the main database.
    #[serde(default)]
    pub databases: Vec<String>,
}

/// `[versions]`: the schema today's app uses and the one the new app will
/// put first on its `search_path`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    /// The schema holding the tables today's app uses (usually `public`).
    pub old: String,
    /// The version schema cutover creates for the new app.
    pub new: String,
}

/// How a phase starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMode {
    /// Wait for the operator (or `--yes`).
    #[default]
    Manual,
    /// Start as soon as the previous phase ends.
    Auto,
}

/// One phase: a list of steps, entered through a gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Unique within the plan.
    pub name: Spanned<String>,
    /// What the phase is for.
    #[serde(default)]
    pub description: String,
    /// Contract-like: once done, never rolled back.
    #[serde(default)]
    pub irreversible: bool,
    /// Wait for the operator before starting (default) or not.
    #[serde(default)]
    pub gate: GateMode,
    /// The steps, in order.
    pub steps: Vec<Spanned<Step>>,
}

impl Phase {
    /// The phase's name.
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
}

/// A step; `kind` selects the variant.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// One SQL statement, with an optional rollback.
    Sql(SqlStep),
    /// `CREATE INDEX CONCURRENTLY`.
    CreateIndex(CreateIndexStep),
    /// `UPDATE` in key-range batches.
    Backfill(BackfillStep),
    /// `INSERT … SELECT` in key-range batches.
    CopyRows(CopyRowsStep),
    /// A trigger keeping old and new in step.
    SyncTrigger(SyncTriggerStep),
    /// SET NOT NULL without a scan under ACCESS EXCLUSIVE.
    NotNull(NotNullStep),
    /// A constraint added NOT VALID, then validated.
    Constraint(ConstraintStep),
    /// A query and its expected value, or a chunked table compare.
    Verify(VerifyStep),
    /// Renames in one short transaction.
    Swap(SwapStep),
    /// Wait for the operator.
    Gate(GateStep),
    /// A column renamed for the new version only (catalog change at contract).
    RenameColumn(RenameColumnStep),
    /// A table renamed for the new version only (catalog change at contract).
    RenameTable(RenameTableStep),
    /// A column the new version sees; the old version's writes get `up`.
    AddColumn(AddColumnStep),
    /// A column hidden from the new version, dropped at contract.
    DropColumn(DropColumnStep),
    /// A column changed for the new version (type, constraints, default):
    /// a hidden copy kept in step by `up`/`down`, swapped in at contract.
    AlterColumn(AlterColumnStep),
    /// A constraint the new version no longer enforces (dropped at contract).
    DropConstraint(DropConstraintStep),
    /// A NOT NULL the new version no longer enforces (dropped at contract).
    DropNotNull(DropNotNullStep),
    /// Logical replication of tables to another database.
    Replicate(ReplicateStep),
    /// A chunked compare of a table with its copy on another database.
    VerifyAcross(VerifyAcrossStep),
    /// Writes frozen, last write applied, sequences advanced, replication detached.
    Switchover(SwitchoverStep),
}

/// The step kinds, for messages.
pub const STEP_KINDS: &[&str] = &[
    "sql",
    "create_index",
    "backfill",
    "copy_rows",
    "sync_trigger",
    "not_null",
    "constraint",
    "verify",
    "swap",
    "gate",
    "rename_column",
    "rename_table",
    "add_column",
    "drop_column",
    "alter_column",
    "drop_constraint",
    "drop_not_null",
    "replicate",
    "verify_across",
    "switchover",
];

impl Step {
    /// Whether the kind works through the version schema (needs `[versions]`).
    pub fn is_versioned(&self) -> bool {
        matches!(
            self,
            Step::RenameColumn(_)
                | Step::RenameTable(_)
                | Step::AddColumn(_)
                | Step::DropColumn(_)
                | Step::AlterColumn(_)
                | Step::DropConstraint(_)
                | Step::DropNotNull(_)
        )
    }

    /// The kind, as written in the plan.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Sql(_) => "sql",
            Step::CreateIndex(_) => "create_index",
            Step::Backfill(_) => "backfill",
            Step::Verify(_) => "verify",
            Step::Gate(_) => "gate",
            Step::CopyRows(_) => "copy_rows",
            Step::SyncTrigger(_) => "sync_trigger",
            Step::NotNull(_) => "not_null",
            Step::Constraint(_) => "constraint",
            Step::Swap(_) => "swap",
            Step::RenameColumn(_) => "rename_column",
            Step::RenameTable(_) => "rename_table",
            Step::AddColumn(_) => "add_column",
            Step::DropColumn(_) => "drop_column",
            Step::AlterColumn(_) => "alter_column",
            Step::DropConstraint(_) => "drop_constraint",
            Step::DropNotNull(_) => "drop_not_null",
            Step::Replicate(_) => "replicate",
            Step::VerifyAcross(_) => "verify_across",
            Step::Switchover(_) => "switchover",
        }
    }

    /// The name given in the plan, or one made from what the step does.
    pub fn display_name(&self) -> String {
        match self {
            Step::Sql(s) => s.name.clone().unwrap_or_else(|| summarize(&s.sql)),
            Step::CreateIndex(s) => format!("index {}", s.name),
            Step::Backfill(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("backfill {}", s.table)),
            Step::Verify(s) => s.name.clone().unwrap_or_else(|| match &s.compare {
                Some(c) => format!("compare {} with {}", c.left, c.right),
                None => "verify".into(),
            }),
            Step::Gate(s) => s.name.clone().unwrap_or_else(|| "gate".into()),
            Step::CopyRows(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("copy {} to {}", s.from, s.to)),
            Step::SyncTrigger(s) => format!("sync trigger {}", s.name),
            Step::NotNull(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("{}.{} NOT NULL", s.table, s.column)),
            Step::Constraint(s) => format!("constraint {}", s.name),
            Step::Swap(s) => s.name.clone().unwrap_or_else(|| {
                let r: Vec<String> = s
                    .renames
                    .iter()
                    .map(|r| format!("{}→{}", r.from, r.to))
                    .collect();
                format!("swap {}", r.join(", "))
            }),
            Step::RenameColumn(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("rename {}.{} to {}", s.table, s.from, s.to)),
            Step::RenameTable(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("rename {} to {}", s.from, s.to)),
            Step::AddColumn(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("add {}.{}", s.table, s.column)),
            Step::DropColumn(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("drop {}.{}", s.table, s.column)),
            Step::AlterColumn(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("alter {}.{}", s.table, s.column)),
            Step::DropConstraint(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("drop constraint {} of {}", s.constraint, s.table)),
            Step::DropNotNull(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("drop NOT NULL of {}.{}", s.table, s.column)),
            Step::Replicate(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("replicate {} to {}", s.describe_tables(), s.to)),
            Step::VerifyAcross(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("compare {} with {}", s.table, s.database)),
            Step::Switchover(s) => s
                .name
                .clone()
                .unwrap_or_else(|| format!("switch over to {}", s.database)),
        }
    }

    /// The explicit `name`, if any.
    pub fn explicit_name(&self) -> Option<&str> {
        match self {
            Step::Sql(s) => s.name.as_deref(),
            Step::CreateIndex(s) => Some(&s.name),
            Step::Backfill(s) => s.name.as_deref(),
            Step::Verify(s) => s.name.as_deref(),
            Step::Gate(s) => s.name.as_deref(),
            Step::CopyRows(s) => s.name.as_deref(),
            Step::SyncTrigger(s) => Some(&s.name),
            Step::NotNull(s) => s.name.as_deref(),
            Step::Constraint(s) => Some(&s.name),
            Step::Swap(s) => s.name.as_deref(),
            Step::RenameColumn(s) => s.name.as_deref(),
            Step::RenameTable(s) => s.name.as_deref(),
            Step::AddColumn(s) => s.name.as_deref(),
            Step::DropColumn(s) => s.name.as_deref(),
            Step::AlterColumn(s) => s.name.as_deref(),
            Step::DropConstraint(s) => s.name.as_deref(),
            Step::DropNotNull(s) => s.name.as_deref(),
            Step::Replicate(s) => s.name.as_deref(),
            Step::VerifyAcross(s) => s.name.as_deref(),
            Step::Switchover(s) => s.name.as_deref(),
        }
    }
}

/// The first words of a statement, for a default step name.
fn summarize(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(6).collect();
    let mut s = words.join(" ");
    if sql.split_whitespace().count() > 6 {
        s.push('…');
    }
    s
}
