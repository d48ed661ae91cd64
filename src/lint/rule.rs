//! The rules, and a rule that matched.

use serde::Serialize;

/// The rules. Each one names the safe alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Rule {
    /// CREATE INDEX without CONCURRENTLY on an existing table.
    CreateIndexNotConcurrently,
    /// DROP INDEX without CONCURRENTLY.
    DropIndexNotConcurrently,
    /// A CONCURRENTLY (or other non-transactional) statement that would
    /// run inside a transaction block.
    ConcurrentlyInTransaction,
    /// ADD CONSTRAINT CHECK / FOREIGN KEY without NOT VALID.
    ConstraintWithoutNotValid,
    /// SET NOT NULL without a validated CHECK (… IS NOT NULL).
    SetNotNullScans,
    /// ADD COLUMN with a volatile default, or a stored generated column.
    AddColumnRewrites,
    /// ADD COLUMN … NOT NULL without a default.
    AddColumnNotNull,
    /// ALTER COLUMN … TYPE that rewrites the table.
    AlterTypeRewrites,
    /// ADD UNIQUE / PRIMARY KEY without USING INDEX.
    UniqueWithoutIndex,
    /// RENAME of a column or table before the contract phase.
    RenameBeforeContract,
    /// DROP COLUMN / TABLE before the irreversible phase.
    DropBeforeContract,
    /// UPDATE without WHERE.
    UpdateWithoutWhere,
    /// DELETE without WHERE.
    DeleteWithoutWhere,
    /// VACUUM FULL.
    VacuumFull,
    /// CLUSTER.
    Cluster,
    /// REINDEX without CONCURRENTLY.
    ReindexNotConcurrently,
    /// Text the grammar does not accept.
    Unparsable,
    /// A plan's SQL fragment that escapes the statement built around it.
    FragmentEscapes,
    /// A plan's SQL fragment that is not what its field stands for.
    FragmentUnparsable,
    /// VALIDATE CONSTRAINT in the transaction that added it NOT VALID.
    ValidateInSameTransaction,
    /// DETACH PARTITION without CONCURRENTLY.
    DetachPartitionNotConcurrently,
    /// ATTACH PARTITION without a validated CHECK that proves the bound.
    AttachPartitionScans,
    /// ALTER DOMAIN … ADD CONSTRAINT without NOT VALID (or SET NOT NULL).
    DomainConstraintWithoutNotValid,
    /// CREATE DOMAIN with a CHECK constraint.
    CreateDomainWithCheck,
    /// ADD CONSTRAINT … EXCLUDE.
    ExcludeConstraint,
    /// TRUNCATE.
    Truncate,
    /// DROP DEFAULT on a NOT NULL column.
    DropDefaultNotNull,
    /// DROP NOT NULL before the contract phase.
    DropNotNullBeforeContract,
    /// DROP DATABASE.
    DropDatabase,
    /// DROP SCHEMA … CASCADE.
    DropSchemaCascade,
    /// SET LOGGED / SET UNLOGGED.
    SetLoggedRewrites,
    /// SET TABLESPACE.
    SetTablespaceRewrites,
    /// REFRESH MATERIALIZED VIEW without CONCURRENTLY.
    RefreshNotConcurrently,
    /// BEGIN without COMMIT by the end of the file or step.
    TransactionLeftOpen,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 34] = [
        Rule::CreateIndexNotConcurrently,
        Rule::DropIndexNotConcurrently,
        Rule::ConcurrentlyInTransaction,
        Rule::ConstraintWithoutNotValid,
        Rule::SetNotNullScans,
        Rule::AddColumnRewrites,
        Rule::AddColumnNotNull,
        Rule::AlterTypeRewrites,
        Rule::UniqueWithoutIndex,
        Rule::RenameBeforeContract,
        Rule::DropBeforeContract,
        Rule::UpdateWithoutWhere,
        Rule::DeleteWithoutWhere,
        Rule::VacuumFull,
        Rule::Cluster,
        Rule::ReindexNotConcurrently,
        Rule::Unparsable,
        Rule::FragmentEscapes,
        Rule::FragmentUnparsable,
        Rule::ValidateInSameTransaction,
        Rule::DetachPartitionNotConcurrently,
        Rule::AttachPartitionScans,
        Rule::DomainConstraintWithoutNotValid,
        Rule::CreateDomainWithCheck,
        Rule::ExcludeConstraint,
        Rule::Truncate,
        Rule::DropDefaultNotNull,
        Rule::DropNotNullBeforeContract,
        Rule::DropDatabase,
        Rule::DropSchemaCascade,
        Rule::SetLoggedRewrites,
        Rule::SetTablespaceRewrites,
        Rule::RefreshNotConcurrently,
        Rule::TransactionLeftOpen,
    ];

    /// The rule's name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Rule::CreateIndexNotConcurrently => "create-index-not-concurrently",
            Rule::DropIndexNotConcurrently => "drop-index-not-concurrently",
            Rule::ConcurrentlyInTransaction => "concurrently-in-transaction",
            Rule::ConstraintWithoutNotValid => "constraint-without-not-valid",
            Rule::SetNotNullScans => "set-not-null-scans",
            Rule::AddColumnRewrites => "add-column-rewrites",
            Rule::AddColumnNotNull => "add-column-not-null",
            Rule::AlterTypeRewrites => "alter-type-rewrites",
            Rule::UniqueWithoutIndex => "unique-without-index",
            Rule::RenameBeforeContract => "rename-before-contract",
            Rule::DropBeforeContract => "drop-before-contract",
            Rule::UpdateWithoutWhere => "update-without-where",
            Rule::DeleteWithoutWhere => "delete-without-where",
            Rule::VacuumFull => "vacuum-full",
            Rule::Cluster => "cluster",
            Rule::ReindexNotConcurrently => "reindex-not-concurrently",
            Rule::Unparsable => "unparsable",
            Rule::FragmentEscapes => "fragment-escapes",
            Rule::FragmentUnparsable => "fragment-unparsable",
            Rule::ValidateInSameTransaction => "validate-in-same-transaction",
            Rule::DetachPartitionNotConcurrently => "detach-partition-not-concurrently",
            Rule::AttachPartitionScans => "attach-partition-scans",
            Rule::DomainConstraintWithoutNotValid => "domain-constraint-without-not-valid",
            Rule::CreateDomainWithCheck => "create-domain-with-check",
            Rule::ExcludeConstraint => "exclude-constraint",
            Rule::Truncate => "truncate",
            Rule::DropDefaultNotNull => "drop-default-not-null",
            Rule::DropNotNullBeforeContract => "drop-not-null-before-contract",
            Rule::DropDatabase => "drop-database",
            Rule::DropSchemaCascade => "drop-schema-cascade",
            Rule::SetLoggedRewrites => "set-logged-rewrites",
            Rule::SetTablespaceRewrites => "set-tablespace-rewrites",
            Rule::RefreshNotConcurrently => "refresh-matview-not-concurrently",
            Rule::TransactionLeftOpen => "transaction-left-open",
        }
    }
}

/// A rule that matched, located in the SQL text it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The rule.
    pub rule: Rule,
    /// What is wrong.
    pub message: String,
    /// The safe alternative.
    pub help: String,
    /// Byte offset of the statement in the SQL text.
    pub offset: usize,
    /// The statement.
    pub statement: String,
}
