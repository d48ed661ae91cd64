//! The adapter between PostgreSQL's grammar (as squawk's Rust parser reads
//! it) and the rest of cutover: SQL text in, a list of statements described
//! in our own terms out. Lint, the dry run, the preflight check and the
//! engine all use it; nothing outside `src/sql/` sees the parser's syntax
//! tree.

mod alter;
mod describe;
pub mod fragment;
mod parse;
mod refs;
mod rel;
mod syntax;
mod volatility;

pub use parse::parse;
pub use refs::rename_column_refs;
pub use rel::Rel;

/// One statement of a piece of SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Its text, without the trailing `;`.
    pub text: String,
    /// Byte offset of its first character in the parsed text.
    pub offset: usize,
    /// What it is.
    pub kind: Kind,
}

/// What a statement does, as far as locks and rules care.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `CREATE [UNIQUE] INDEX [CONCURRENTLY]`.
    CreateIndex {
        /// The indexed table.
        table: Rel,
        /// Built without blocking writes.
        concurrently: bool,
    },
    /// `DROP INDEX [CONCURRENTLY]`.
    DropIndex {
        /// The indexes.
        indexes: Vec<Rel>,
        /// Dropped without blocking.
        concurrently: bool,
    },
    /// `REINDEX [CONCURRENTLY]`.
    Reindex {
        /// `TABLE`, `INDEX`, `SCHEMA`, …
        target: String,
        /// The table or index.
        rel: Option<Rel>,
        /// Rebuilt without blocking writes.
        concurrently: bool,
    },
    /// `ALTER TABLE`.
    AlterTable {
        /// The table.
        table: Rel,
        /// Its sub-commands.
        actions: Vec<Action>,
    },
    /// `CREATE TABLE`.
    CreateTable {
        /// The new table.
        table: Rel,
        /// Its columns and their types.
        columns: Vec<(String, String)>,
        /// Its columns declared NOT NULL (or PRIMARY KEY).
        not_null: Vec<String>,
        /// Tables it references (foreign keys) or copies (`LIKE`).
        references: Vec<Rel>,
        /// The `LIKE` sources.
        like: Vec<Rel>,
    },
    /// `DROP TABLE`.
    DropTable {
        /// The tables.
        tables: Vec<Rel>,
    },
    /// `UPDATE`.
    Update {
        /// The table.
        table: Rel,
        /// Has a WHERE clause.
        has_where: bool,
    },
    /// `DELETE`.
    Delete {
        /// The table.
        table: Rel,
        /// Has a WHERE clause.
        has_where: bool,
    },
    /// `INSERT`.
    Insert {
        /// The table.
        table: Rel,
    },
    /// `SELECT`, `VALUES`, `TABLE`, `SHOW`, `EXPLAIN` (without ANALYZE).
    Read,
    /// `VACUUM`.
    Vacuum {
        /// `FULL` (a rewrite).
        full: bool,
        /// The tables (none = all).
        tables: Vec<Rel>,
    },
    /// `CLUSTER`.
    Cluster {
        /// The table (none = all previously clustered).
        table: Option<Rel>,
    },
    /// `TRUNCATE`.
    Truncate {
        /// The tables.
        tables: Vec<Rel>,
        /// `CASCADE`: tables referencing them are emptied too.
        cascade: bool,
    },
    /// `REFRESH MATERIALIZED VIEW [CONCURRENTLY]`.
    Refresh {
        /// The view.
        view: Rel,
        /// Readers go on while it refreshes.
        concurrently: bool,
    },
    /// `ALTER DOMAIN`.
    AlterDomain {
        /// The domain.
        domain: Rel,
        /// What it does.
        action: DomainAction,
    },
    /// `CREATE DOMAIN`.
    CreateDomain {
        /// The domain.
        domain: Rel,
        /// It has a CHECK constraint.
        check: bool,
    },
    /// `DROP SCHEMA`.
    DropSchema {
        /// The schemas.
        schemas: Vec<String>,
        /// `CASCADE`: everything in them goes too.
        cascade: bool,
    },
    /// `DROP DATABASE`.
    DropDatabase {
        /// The database.
        name: String,
    },
    /// `LOCK TABLE`.
    Lock {
        /// The tables.
        tables: Vec<Rel>,
        /// The mode as written (`ACCESS EXCLUSIVE` when omitted).
        mode: String,
    },
    /// `CREATE TRIGGER`.
    CreateTrigger {
        /// The table.
        table: Option<Rel>,
    },
    /// `DROP TRIGGER`.
    DropTrigger {
        /// The table.
        table: Option<Rel>,
    },
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `ROLLBACK`, `END`.
    End,
    /// `SET`, `RESET`.
    Set,
    /// Anything else that parsed (`CREATE FUNCTION`, `ALTER SEQUENCE`, …).
    Other {
        /// The statement's kind in words, e.g. `CREATE FUNCTION`.
        what: String,
    },
    /// Text the grammar does not accept.
    Unparsed {
        /// The parser's complaint.
        message: String,
    },
}

/// One `ALTER TABLE` sub-command.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `ADD COLUMN`.
    AddColumn {
        /// The column.
        column: String,
        /// Its type as written.
        ty: String,
        /// The default expression, and whether it may be volatile.
        default: Option<(String, bool)>,
        /// `NOT NULL`.
        not_null: bool,
        /// `GENERATED ALWAYS AS (…) STORED`.
        generated: bool,
        /// `PRIMARY KEY` / `UNIQUE` / `REFERENCES` / `CHECK` inline.
        constraints: Vec<ConstraintKind>,
        /// The table an inline `REFERENCES` names.
        references: Option<Rel>,
    },
    /// `DROP COLUMN`.
    DropColumn {
        /// The column.
        column: String,
    },
    /// `ALTER COLUMN … TYPE`.
    SetType {
        /// The column.
        column: String,
        /// The new type as written.
        ty: String,
        /// A `USING` expression was given.
        using: bool,
    },
    /// `ALTER COLUMN … SET NOT NULL`.
    SetNotNull {
        /// The column.
        column: String,
    },
    /// `ALTER COLUMN … DROP NOT NULL`.
    DropNotNull {
        /// The column.
        column: String,
    },
    /// `ALTER COLUMN … SET DEFAULT`.
    SetDefault,
    /// `ALTER COLUMN … DROP DEFAULT`.
    DropDefault {
        /// The column.
        column: String,
    },
    /// `ADD CONSTRAINT`.
    AddConstraint {
        /// CHECK, FOREIGN KEY, …
        kind: ConstraintKind,
        /// Its name, when given.
        name: Option<String>,
        /// `NOT VALID`.
        not_valid: bool,
        /// `USING INDEX`.
        using_index: bool,
        /// A CHECK's expression.
        check: Option<String>,
        /// The table a FOREIGN KEY references.
        references: Option<Rel>,
    },
    /// `VALIDATE CONSTRAINT`.
    ValidateConstraint {
        /// The constraint.
        name: String,
    },
    /// `DROP CONSTRAINT`.
    DropConstraint,
    /// `RENAME COLUMN`.
    RenameColumn,
    /// `RENAME TO`.
    RenameTable,
    /// `RENAME CONSTRAINT`.
    RenameConstraint,
    /// `ENABLE` / `DISABLE TRIGGER`.
    Trigger,
    /// `SET (…)` / `RESET (…)` storage parameters.
    StorageParams,
    /// `SET STATISTICS`.
    Statistics,
    /// `SET LOGGED` / `SET UNLOGGED` (a rewrite).
    Logged,
    /// `SET TABLESPACE` (a copy of the table's files).
    SetTablespace,
    /// `ATTACH PARTITION`.
    AttachPartition {
        /// The table attached.
        partition: Rel,
    },
    /// `DETACH PARTITION … FINALIZE`: completes an interrupted concurrent
    /// detach.
    DetachFinalize,
    /// `DETACH PARTITION [CONCURRENTLY]`.
    DetachPartition {
        /// The table detached.
        partition: Rel,
        /// Without ACCESS EXCLUSIVE.
        concurrently: bool,
    },
    /// Anything else.
    Other {
        /// The sub-command as written.
        text: String,
    },
}

/// One `ALTER DOMAIN` sub-command.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainAction {
    /// `ADD CONSTRAINT`.
    AddConstraint {
        /// Its name, when given.
        name: Option<String>,
        /// `NOT VALID`: existing values are not checked.
        not_valid: bool,
    },
    /// `VALIDATE CONSTRAINT`.
    ValidateConstraint {
        /// The constraint.
        name: String,
    },
    /// `SET NOT NULL` (checks every column of the domain).
    SetNotNull,
    /// Anything else (catalog only).
    Other,
}

/// The kinds of table constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    /// CHECK.
    Check,
    /// FOREIGN KEY / REFERENCES (and the table it references).
    ForeignKey,
    /// UNIQUE.
    Unique,
    /// PRIMARY KEY.
    PrimaryKey,
    /// EXCLUDE.
    Exclude,
    /// NOT NULL (a column constraint).
    NotNull,
}

impl ConstraintKind {
    /// As written in SQL.
    pub fn sql(self) -> &'static str {
        match self {
            ConstraintKind::Check => "CHECK",
            ConstraintKind::ForeignKey => "FOREIGN KEY",
            ConstraintKind::Unique => "UNIQUE",
            ConstraintKind::PrimaryKey => "PRIMARY KEY",
            ConstraintKind::Exclude => "EXCLUDE",
            ConstraintKind::NotNull => "NOT NULL",
        }
    }
}

impl Statement {
    /// Statements PostgreSQL refuses inside a transaction block.
    pub fn needs_autocommit(&self) -> bool {
        match &self.kind {
            Kind::CreateIndex { concurrently, .. } | Kind::DropIndex { concurrently, .. } => {
                *concurrently
            }
            Kind::Reindex {
                concurrently,
                target,
                ..
            } => *concurrently || target == "DATABASE" || target == "SYSTEM",
            Kind::Vacuum { .. } => true,
            Kind::AlterTable { actions, .. } => actions.iter().any(|a| {
                matches!(
                    a,
                    Action::DetachPartition {
                        concurrently: true,
                        ..
                    }
                )
            }),
            Kind::DropDatabase { .. } => true,
            Kind::Other { what } => matches!(
                what.as_str(),
                "CREATE DATABASE" | "ALTER SYSTEM" | "CREATE TABLESPACE" | "DROP TABLESPACE"
            ),
            Kind::Cluster { table } => table.is_none(),
            _ => false,
        }
    }

    /// Foreign keys this statement adds point at these tables (which are
    /// locked too).
    pub fn referenced(&self) -> Vec<Rel> {
        match &self.kind {
            Kind::CreateTable { references, .. } => references.clone(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
