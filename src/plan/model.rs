//! The plan file's types: the TOML format *is* these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use super::altered::{
    AlterColumnStep, CheckSpec, DropConstraintStep, DropNotNullStep, ReferencesSpec, UniqueSpec,
};
pub use super::moving::{ReplicateStep, SwitchoverStep, VerifyAcrossStep};
use super::units::{DurationRange, HumanDuration, Size};

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

/// `[settings]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Bound of one attempt to take a lock.
    pub lock_timeout: HumanDuration,
    /// Bound of one statement (`0` = none).
    pub statement_timeout: HumanDuration,
    /// Retries after a lock timeout.
    pub lock_retries: u32,
    /// Pause between retries, jittered within this range.
    pub retry_backoff: DurationRange,
    /// How long a run tries to reconnect after its connections drop before
    /// it gives up (the journal stays consistent either way).
    pub reconnect_timeout: HumanDuration,
    /// How long one backfill or copy batch waits for a row an application
    /// holds before it is rolled back and retried.
    pub batch_lock_timeout: HumanDuration,
    /// How many times in a row a batch may meet a held row before the step
    /// fails.
    pub batch_lock_retries: u32,
    /// The longest any application statement may wait behind cutover: each
    /// DDL lock attempt waits at most this (retried with backoff), and
    /// batches are sized to stay under half of it. Unset: `lock_timeout`
    /// and `target_batch_time` alone.
    pub max_stall: Option<HumanDuration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            // Every query behind a DDL waiting for its lock waits too: half a
            // second bounds what an operator who sets nothing imposes (the
            // 1,356 ms TPC-B worst case came from one-second attempts
            // queueing behind a transaction), as pgroll's default does.
            lock_timeout: HumanDuration(std::time::Duration::from_millis(500)),
            statement_timeout: HumanDuration::default(),
            lock_retries: 20,
            retry_backoff: DurationRange {
                min: std::time::Duration::from_millis(250),
                max: std::time::Duration::from_secs(10),
            },
            reconnect_timeout: HumanDuration(std::time::Duration::from_secs(60)),
            batch_lock_timeout: HumanDuration(std::time::Duration::from_millis(500)),
            batch_lock_retries: 100,
            max_stall: None,
        }
    }
}

/// `[throttle]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Throttle {
    /// Pause batches while a replica lags more than this.
    pub replication_lag: Option<HumanDuration>,
    /// Pause batches while a replica (or slot) is this far behind.
    pub replication_lag_bytes: Option<Size>,
    /// Dynamic batch sizing aims at this batch duration.
    pub target_batch_time: HumanDuration,
    /// Largest batch.
    pub max_batch_size: u64,
    /// Smallest batch.
    pub min_batch_size: u64,
    /// Keep the canary probe's p95 under this (gentle mode); unset = full speed.
    pub probe_latency: Option<HumanDuration>,
    /// Never move more rows per second than this (pauses between batches).
    pub max_rows_per_second: Option<u64>,
    /// Hold a cross-database compare and the switchover's write freeze
    /// while the subscription's apply lag is over this.
    pub apply_lag: Option<HumanDuration>,
    /// As `apply_lag`, in bytes of source WAL not yet applied.
    pub apply_lag_bytes: Option<Size>,
}

/// The batch time sizing aims at by default. A batch holds its rows' locks
/// until it commits, and an application write that meets one waits for
/// the whole batch: at 200 ms a full-speed batch held 5 % of a 1M-row
/// table, and the application's p99 was 16–19× its baseline; at 25 ms,
/// 2.3–2.7×, at the same speed (0.97–1.08× one unbatched UPDATE;
/// benches/README.md).
pub const DEFAULT_BATCH_TIME: std::time::Duration = std::time::Duration::from_millis(25);

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            replication_lag: None,
            replication_lag_bytes: None,
            target_batch_time: HumanDuration(DEFAULT_BATCH_TIME),
            max_batch_size: 100_000,
            min_batch_size: 100,
            probe_latency: None,
            max_rows_per_second: None,
            apply_lag: None,
            apply_lag_bytes: None,
        }
    }
}

impl Throttle {
    /// Backfills are paced to a rate: gentle mode or `max_rows_per_second`.
    pub fn paces(&self) -> bool {
        self.probe_latency.is_some() || self.max_rows_per_second.is_some()
    }
}

/// `[abort]`: any one trips → the run aborts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AbortLimits {
    /// Replica lag in time.
    pub replication_lag: Option<HumanDuration>,
    /// Replica lag in bytes.
    pub replication_lag_bytes: Option<Size>,
    /// A session blocked behind us this long.
    pub lock_wait: Option<HumanDuration>,
    /// This many sessions blocked behind us.
    pub blocked_sessions: Option<u32>,
    /// Lock timeouts counted across the run.
    pub lock_timeouts: Option<u32>,
    /// Rolled-back transactions per second on the database.
    pub rollback_rate: Option<f64>,
    /// Fail closed when monitor samples stop for this long.
    pub stale_monitor: HumanDuration,
    /// WAL a replication slot of the run keeps on the source (so the
    /// source's disk never fills behind a slow subscription).
    pub slot_retained_wal: Option<Size>,
    /// The subscription's apply lag in time.
    pub apply_lag: Option<HumanDuration>,
    /// The subscription's apply lag in bytes of source WAL.
    pub apply_lag_bytes: Option<Size>,
}

impl Default for AbortLimits {
    fn default() -> Self {
        AbortLimits {
            replication_lag: None,
            replication_lag_bytes: None,
            lock_wait: None,
            blocked_sessions: None,
            lock_timeouts: None,
            rollback_rate: None,
            stale_monitor: HumanDuration(std::time::Duration::from_secs(15)),
            slot_retained_wal: None,
            apply_lag: None,
            apply_lag_bytes: None,
        }
    }
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

/// `kind = "sql"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The statement.
    pub sql: String,
    /// The statement that undoes it.
    pub rollback: Option<String>,
    /// Why a statement the linter flags is acceptable here.
    pub allow_unsafe: Option<String>,
}

/// `kind = "create_index"`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIndexStep {
    /// The index name (also the step's name).
    pub name: String,
    /// The table.
    pub table: String,
    /// Column names or expressions (an expression is written in parentheses).
    pub columns: Vec<String>,
    /// `CREATE UNIQUE INDEX`.
    #[serde(default)]
    pub unique: bool,
    /// Partial index predicate.
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// Index method (`btree`, `gin`, …).
    pub using: Option<String>,
    /// Non-key columns stored in the index (`INCLUDE (…)`), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Storage parameters (`WITH (fillfactor = 90, …)`): name → number,
    /// boolean or string.
    #[serde(default, rename = "with", skip_serializing_if = "BTreeMap::is_empty")]
    pub with: BTreeMap<String, toml::Value>,
}

/// `kind = "backfill"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table to update.
    pub table: String,
    /// A unique, indexed column to walk in key order.
    pub key: String,
    /// The `SET` list (your SQL).
    pub set: String,
    /// Rows that still need the update (your SQL).
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// First batch size (dynamic afterwards).
    pub batch_size: Option<u64>,
    /// VACUUM the table behind the batches while they are paced (default
    /// on), so later batches reuse the space of the rows already rewritten
    /// instead of extending the table.
    #[serde(default = "yes")]
    pub vacuum_behind: bool,
    /// Sessions walking disjoint key ranges at once, each with its own
    /// checkpoint (default 1).
    pub workers: Option<u32>,
}

fn yes() -> bool {
    true
}

/// `kind = "verify"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// A query returning one value.
    pub sql: Option<String>,
    /// The value it must return.
    pub expect: Option<toml::Value>,
    /// Or: compare two tables (or columns) chunk by chunk.
    pub compare: Option<Compare>,
}

/// `compare = { left, right, key, columns? }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// One table.
    pub left: String,
    /// The other.
    pub right: String,
    /// The key both are walked by (unique, indexed on `left`).
    pub key: String,
    /// The key's name in `right`, when different.
    pub right_key: Option<String>,
    /// Columns to compare (default: all of `left`'s).
    pub columns: Option<Vec<String>>,
    /// `right`'s columns, positionally, when named differently.
    pub right_columns: Option<Vec<String>>,
    /// Rows per chunk.
    pub chunk: Option<u64>,
}

/// Target columns and where their values come from: a list of names (the
/// same in both tables) or a table `target = "source expression"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ColumnMap {
    /// The same names on both sides.
    Same(Vec<String>),
    /// `target = "expression over the source"`.
    Mapped(std::collections::BTreeMap<String, String>),
}

impl ColumnMap {
    /// (target column, source expression) pairs.
    pub fn pairs(&self) -> Vec<(String, String)> {
        match self {
            ColumnMap::Same(cols) => cols
                .iter()
                .map(|c| (c.clone(), crate::db::quote_ident(c)))
                .collect(),
            ColumnMap::Mapped(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// `kind = "copy_rows"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRowsStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// Source table.
    pub from: String,
    /// Target table.
    pub to: String,
    /// The source's unique, indexed key.
    pub key: String,
    /// Target columns and their source expressions.
    pub columns: ColumnMap,
    /// Only rows matching this (your SQL).
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// First batch size (dynamic afterwards).
    pub batch_size: Option<u64>,
    /// Sessions walking disjoint key ranges at once, each with its own
    /// checkpoint (default 1).
    pub workers: Option<u32>,
}

/// `kind = "sync_trigger"`: one of three shapes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncTriggerStep {
    /// Required: names the function and trigger `cutover_sync_<name>`.
    pub name: String,
    /// The table (column modes).
    pub table: Option<String>,
    /// One way: assignments to NEW (`"full_name = NEW.name"`).
    pub set: Option<String>,
    /// One way: only when this holds.
    pub when: Option<String>,
    /// Two ways: the old column.
    pub old: Option<String>,
    /// Two ways: the new column.
    pub new: Option<String>,
    /// Two ways: new's value from old (default `NEW.<old>`).
    pub forward: Option<String>,
    /// Two ways: old's value from new (default `NEW.<new>`).
    pub backward: Option<String>,
    /// Table copy: the source table.
    pub from: Option<String>,
    /// Table copy: the target table.
    pub to: Option<String>,
    /// Table copy: the source's key.
    pub key: Option<String>,
    /// Table copy: the target's key (default: same name).
    pub to_key: Option<String>,
    /// Table copy: target columns and source expressions.
    pub columns: Option<ColumnMap>,
}

/// `kind = "not_null"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotNullStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
}

/// `kind = "constraint"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintStep {
    /// The constraint's name (also the step's).
    pub name: String,
    /// The table.
    pub table: String,
    /// `CHECK (…)`, `FOREIGN KEY (…) REFERENCES …`, `UNIQUE (…)`,
    /// `PRIMARY KEY (…)` or `EXCLUDE USING … (…)`.
    pub definition: String,
    /// EXCLUDE only: why building it under ACCESS EXCLUSIVE is acceptable
    /// (an exclusion constraint has no NOT VALID and no USING INDEX).
    pub allow_unsafe: Option<String>,
}

/// One rename of a swap.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// Current name (a table, index or sequence; or a column with `table`).
    pub from: String,
    /// New name (unqualified).
    pub to: String,
    /// For a column rename: its table.
    pub table: Option<String>,
}

/// `kind = "swap"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SwapStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The renames, in order.
    pub renames: Vec<Rename>,
    /// Sync triggers (by name) whose functions follow the renames: they are
    /// re-created in the same transaction with the new names.
    #[serde(default)]
    pub sync_triggers: Vec<String>,
}

/// `kind = "gate"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GateStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// What the operator should do before advancing.
    pub message: String,
}

/// `kind = "rename_column"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RenameColumnStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table, as the new version names it.
    pub table: String,
    /// The column's current name.
    pub from: String,
    /// Its name in the new version.
    pub to: String,
}

/// `kind = "rename_table"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RenameTableStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table's current name.
    pub from: String,
    /// Its name in the new version.
    pub to: String,
}

/// `kind = "add_column"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AddColumnStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table, as the new version names it.
    pub table: String,
    /// The new column's name.
    pub column: String,
    /// Its type (your SQL).
    #[serde(rename = "type")]
    pub type_: String,
    /// The value rows written by the old version (and existing rows) get: an
    /// expression over the row's columns (your SQL); default NULL.
    pub up: Option<String>,
}

/// `kind = "drop_column"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DropColumnStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table, as the new version names it.
    pub table: String,
    /// The column the new version no longer sees.
    pub column: String,
    /// The value rows written by the new version give it until contract: an
    /// expression over the row's columns (your SQL); default: the column's
    /// default.
    pub down: Option<String>,
}

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
