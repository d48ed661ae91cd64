//! Safety before the first statement: every statement a plan (or a `.sql`
//! file) would run is parsed (`crate::sql`: PostgreSQL's grammar as
//! squawk's parser reads it), matched against rules for DDL that locks out
//! a live application, and given its lock level. `cutover lint`, `cutover plan`, `cutover check` and `cutover run`
//! all use this.

pub mod fragments;
pub mod locks;
pub mod plan;
pub mod render;

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::sql::{self, Action, ConstraintKind, DomainAction, Kind, Rel, Statement};

/// The PostgreSQL major version rules assume when neither the database nor
/// `--pg-version` says.
pub const DEFAULT_PG_MAJOR: u32 = 15;

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

/// What the statements so far have established (tables created, column
/// types, validated NOT NULL checks), plus what `cutover check` read from
/// the database.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The server's major version.
    pub pg_major: u32,
    created: HashSet<String>,
    columns: HashMap<(String, String), String>,
    not_null_checks: HashMap<String, (String, String)>,
    validated: HashSet<(String, String)>,
    not_null: HashSet<(String, String)>,
    nullable: HashSet<(String, String)>,
    checks: HashMap<String, String>,
    checked: HashSet<String>,
}

impl Schema {
    /// Nothing known yet.
    pub fn new(pg_major: u32) -> Schema {
        Schema {
            pg_major,
            created: HashSet::new(),
            columns: HashMap::new(),
            not_null_checks: HashMap::new(),
            validated: HashSet::new(),
            not_null: HashSet::new(),
            nullable: HashSet::new(),
            checks: HashMap::new(),
            checked: HashSet::new(),
        }
    }

    /// The table was created earlier in the plan (nobody uses it yet).
    pub fn created(&self, table: &Rel) -> bool {
        self.created.contains(&table.name)
    }

    /// Records that a table is new (a plan step such as `copy_rows` made it).
    pub fn mark_created(&mut self, table: &Rel) {
        self.created.insert(table.name.clone());
    }

    /// The column's current type, when known.
    pub fn column_type(&self, table: &Rel, column: &str) -> Option<String> {
        self.columns
            .get(&(table.name.clone(), column.to_string()))
            .cloned()
    }

    /// Records a column's type (from the plan, or from the database).
    pub fn set_column_type(&mut self, table: &Rel, column: &str, ty: &str) {
        self.columns
            .insert((table.name.clone(), column.to_string()), ty.to_string());
    }

    /// A validated `CHECK (column IS NOT NULL)` exists, so SET NOT NULL
    /// needs no scan (PostgreSQL 12+).
    pub fn has_validated_not_null_check(&self, table: &Rel, column: &str) -> bool {
        self.pg_major >= 12
            && self
                .validated
                .contains(&(table.name.clone(), column.to_string()))
    }

    /// Records a validated `CHECK (column IS NOT NULL)`.
    pub fn mark_not_null_checked(&mut self, table: &Rel, column: &str) {
        self.validated
            .insert((table.name.clone(), column.to_string()));
    }

    /// Records that a column is NOT NULL (from the plan, or from the
    /// database).
    pub fn mark_not_null(&mut self, table: &Rel, column: &str) {
        let key = (table.name.clone(), column.to_string());
        self.nullable.remove(&key);
        self.not_null.insert(key);
    }

    /// Records that a column accepts NULL (from the plan, or from the
    /// database).
    pub fn mark_nullable(&mut self, table: &Rel, column: &str) {
        let key = (table.name.clone(), column.to_string());
        self.not_null.remove(&key);
        self.nullable.insert(key);
    }

    /// The column is known to accept NULL.
    pub fn is_nullable(&self, table: &Rel, column: &str) -> bool {
        self.nullable
            .contains(&(table.name.clone(), column.to_string()))
    }

    /// The column is known to be NOT NULL.
    pub fn is_not_null(&self, table: &Rel, column: &str) -> bool {
        self.not_null
            .contains(&(table.name.clone(), column.to_string()))
    }

    /// Records a validated CHECK constraint on a table (which can prove a
    /// partition's bound).
    pub fn mark_checked(&mut self, table: &Rel) {
        self.checked.insert(table.name.clone());
    }

    /// The table has a validated CHECK constraint.
    pub fn has_validated_check(&self, table: &Rel) -> bool {
        self.checked.contains(&table.name)
    }

    /// Takes in what a statement establishes.
    pub fn learn(&mut self, stmt: &Statement) {
        match &stmt.kind {
            Kind::CreateTable {
                table,
                columns,
                not_null,
                ..
            } => {
                self.mark_created(table);
                for (c, ty) in columns {
                    self.set_column_type(table, c, ty);
                }
                for c in not_null {
                    self.mark_not_null(table, c);
                }
            }
            Kind::AlterTable { table, actions } => {
                for a in actions {
                    match a {
                        Action::AddColumn {
                            column,
                            ty,
                            not_null,
                            constraints,
                            ..
                        } => {
                            self.set_column_type(table, column, ty);
                            if *not_null || constraints.contains(&ConstraintKind::PrimaryKey) {
                                self.mark_not_null(table, column);
                            } else {
                                self.mark_nullable(table, column);
                            }
                        }
                        Action::SetNotNull { column } => self.mark_not_null(table, column),
                        Action::DropNotNull { column } => self.mark_nullable(table, column),
                        Action::SetType { column, ty, .. } => {
                            self.set_column_type(table, column, ty)
                        }
                        Action::AddConstraint {
                            kind: ConstraintKind::Check,
                            name,
                            not_valid,
                            check: Some(expr),
                            ..
                        } => {
                            if !not_valid {
                                self.mark_checked(table);
                            }
                            if let Some(name) = name {
                                self.checks.insert(name.clone(), table.name.clone());
                            }
                            if let Some(column) = not_null_column(expr) {
                                if !not_valid {
                                    self.mark_not_null_checked(table, &column);
                                }
                                if let Some(name) = name {
                                    self.not_null_checks
                                        .insert(name.clone(), (table.name.clone(), column));
                                }
                            }
                        }
                        Action::ValidateConstraint { name } => {
                            if let Some(t) = self.checks.get(name).cloned() {
                                self.checked.insert(t);
                            }
                            if let Some(pair) = self.not_null_checks.get(name) {
                                self.validated.insert(pair.clone());
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// `col IS NOT NULL` (in any parentheses) → `col`.
fn not_null_column(expr: &str) -> Option<String> {
    let flat: String = expr.chars().filter(|c| *c != '(' && *c != ')').collect();
    let words: Vec<&str> = flat.split_whitespace().collect();
    match words.as_slice() {
        [col, is, not, null]
            if is.eq_ignore_ascii_case("is")
                && not.eq_ignore_ascii_case("not")
                && null.eq_ignore_ascii_case("null") =>
        {
            crate::db::ident::fold_qualified(col).pop()
        }
        _ => None,
    }
}

/// Where the statements run, which decides some rules.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The phase (None for a `.sql` file).
    pub phase: Option<String>,
    /// The phase is irreversible (contract).
    pub irreversible: bool,
    /// What the SQL is.
    pub role: Role,
}

/// What a piece of SQL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A `sql` step: sent as one query, so several statements share one
    /// transaction.
    Step,
    /// A step's `rollback`: undoes what the step made, so dropping it is
    /// the point.
    Rollback,
    /// A `.sql` file: statements autocommit unless inside BEGIN … COMMIT.
    File,
}

/// A type change rewrites the table: `Some(false)` when the new type is
/// binary-compatible with the old (varchar widening, varchar → text, …),
/// `None` when the old type is not known and it could be.
pub fn type_change_rewrites(old: Option<&str>, new: &str, using: bool) -> Option<bool> {
    let new = TypeName::parse(new);
    let compatible_family = ["varchar", "text", "numeric", "varbit", "inet"];
    let Some(old) = old else {
        return if compatible_family.contains(&new.base.as_str()) && !using {
            None
        } else {
            Some(true)
        };
    };
    if using {
        return Some(true);
    }
    let old = TypeName::parse(old);
    let widened = |o: &[u64], n: &[u64]| match (o, n) {
        (_, []) => true,
        ([], _) => false,
        ([a], [b]) => b >= a,
        ([p, s], [p2, s2]) => s2 == s && p2 >= p,
        ([p], [p2, s2]) => *s2 == 0 && p2 >= p,
        _ => false,
    };
    let same_base = old.base == new.base;
    let ok = (same_base
        && ["varchar", "numeric", "varbit", "bit_len"].contains(&new.base.as_str())
        && widened(&old.args, &new.args))
        || (same_base && old.args == new.args)
        || (old.base == "varchar" && new.base == "text")
        || (old.base == "text" && new.base == "varchar" && new.args.is_empty())
        || (old.base == "cidr" && new.base == "inet");
    Some(!ok)
}

/// A type name reduced to a canonical base and its numeric arguments.
#[derive(Debug, PartialEq)]
struct TypeName {
    base: String,
    args: Vec<u64>,
}

impl TypeName {
    fn parse(text: &str) -> TypeName {
        let lower = text.trim().to_lowercase();
        let (head, args) = match lower.find('(') {
            Some(i) => (
                lower[..i].trim().to_string(),
                lower[i + 1..]
                    .trim_end_matches(|c: char| c == ')' || c.is_whitespace())
                    .split(',')
                    .filter_map(|a| a.trim().parse().ok())
                    .collect(),
            ),
            None => (lower.clone(), Vec::new()),
        };
        let head = head.split_whitespace().collect::<Vec<_>>().join(" ");
        let head = head.rsplit('.').next().unwrap_or(&head).to_string();
        let base = match head.as_str() {
            "character varying" | "varchar" => "varchar",
            "int" | "integer" | "int4" => "int4",
            "bigint" | "int8" => "int8",
            "smallint" | "int2" => "int2",
            "decimal" | "numeric" => "numeric",
            "bit varying" | "varbit" => "varbit",
            "character" | "char" | "bpchar" => "bpchar",
            "timestamp" | "timestamp without time zone" => "timestamp",
            "timestamptz" | "timestamp with time zone" => "timestamptz",
            "double precision" | "float8" => "float8",
            "real" | "float4" => "float4",
            "bool" | "boolean" => "bool",
            other => other,
        }
        .to_string();
        TypeName { base, args }
    }
}

/// Lints one piece of SQL (a step's statement, its rollback, or a file),
/// learning as it goes.
pub fn lint_sql(text: &str, schema: &mut Schema, scope: &Scope) -> (Vec<Statement>, Vec<Hit>) {
    let statements = sql::parse(text);
    let mut hits = Vec::new();
    let mut in_block = false;
    let mut opened_at: Option<&Statement> = None;
    let shared_transaction = scope.role != Role::File && statements.len() > 1;
    // Constraints added NOT VALID in the transaction still open.
    let mut not_valid_here: Vec<String> = Vec::new();
    for stmt in &statements {
        match stmt.kind {
            Kind::Begin => {
                in_block = true;
                opened_at = Some(stmt);
                not_valid_here.clear();
            }
            Kind::End => {
                in_block = false;
                opened_at = None;
                not_valid_here.clear();
            }
            _ => {}
        }
        let in_transaction = in_block || shared_transaction;
        if !in_transaction {
            not_valid_here.clear();
        }
        for (name, target) in validated_in_same_transaction(stmt, schema, &mut not_valid_here) {
            hits.push(Hit {
                rule: Rule::ValidateInSameTransaction,
                message: format!(
                    "VALIDATE CONSTRAINT {name} runs in the same transaction as the ADD … NOT VALID \
                     that created it: the scan then runs while the ADD's lock on {target} is still \
                     held (ACCESS EXCLUSIVE for a CHECK, SHARE ROW EXCLUSIVE for a foreign key), \
                     so NOT VALID saves nothing"
                ),
                help: "commit in between: VALIDATE CONSTRAINT in a later `sql` step (or after \
                       COMMIT); a `constraint` step does both, each in its own transaction"
                    .to_string(),
                offset: stmt.offset,
                statement: stmt.text.clone(),
            });
        }
        check(
            stmt,
            schema,
            scope,
            in_transaction,
            &mut |rule, message, help| {
                hits.push(Hit {
                    rule,
                    message,
                    help: help.to_string(),
                    offset: stmt.offset,
                    statement: stmt.text.clone(),
                })
            },
        );
        schema.learn(stmt);
    }
    if let (true, Some(begin)) = (in_block, opened_at) {
        let place = if scope.role == Role::File {
            "the end of the file"
        } else {
            "the end of the step"
        };
        hits.push(Hit {
            rule: Rule::TransactionLeftOpen,
            message: format!(
                "this BEGIN has no COMMIT before {place}: the transaction stays open, holding \
                 every lock its statements took (and holding back VACUUM) until the session ends, \
                 and its work is lost if the session drops"
            ),
            help: "end the transaction with COMMIT (or ROLLBACK) in the same file or step"
                .to_string(),
            offset: begin.offset,
            statement: begin.text.clone(),
        });
    }
    (statements, hits)
}

/// Constraints this statement validates that were added NOT VALID earlier
/// in the same transaction (`not_valid_here`, which it updates): (name,
/// table or domain).
fn validated_in_same_transaction(
    stmt: &Statement,
    schema: &Schema,
    not_valid_here: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match &stmt.kind {
        Kind::AlterTable { table, actions } if !schema.created(table) => {
            for a in actions {
                match a {
                    Action::AddConstraint {
                        name: Some(name),
                        not_valid: true,
                        ..
                    } => not_valid_here.push(format!("{}.{name}", table.name)),
                    Action::ValidateConstraint { name }
                        if not_valid_here.contains(&format!("{}.{name}", table.name)) =>
                    {
                        out.push((name.clone(), table.to_string()))
                    }
                    _ => {}
                }
            }
        }
        Kind::AlterDomain { domain, action } => match action {
            DomainAction::AddConstraint {
                name: Some(name),
                not_valid: true,
            } => not_valid_here.push(format!("domain {}.{name}", domain.name)),
            DomainAction::ValidateConstraint { name }
                if not_valid_here.contains(&format!("domain {}.{name}", domain.name)) =>
            {
                out.push((name.clone(), format!("the tables using domain {domain}")))
            }
            _ => {}
        },
        _ => {}
    }
    out
}

fn check(
    stmt: &Statement,
    schema: &Schema,
    scope: &Scope,
    in_transaction: bool,
    report: &mut dyn FnMut(Rule, String, &str),
) {
    let phase = || match &scope.phase {
        Some(p) => format!("phase `{p}`, which is reversible"),
        None => "a plain SQL file (no phases)".to_string(),
    };
    let contract_rules = scope.role != Role::Rollback && !scope.irreversible;
    if in_transaction && stmt.needs_autocommit() {
        let why = if scope.role == Role::File {
            "after BEGIN"
        } else {
            "the step has several statements, which run as one transaction"
        };
        report(
            Rule::ConcurrentlyInTransaction,
            format!(
                "{} cannot run inside a transaction block, and here it would ({why})",
                first_words(&stmt.text, 4)
            ),
            "give it a `sql` step of its own: a step with one statement runs outside a transaction",
        );
    }
    match &stmt.kind {
        Kind::Unparsed { message } => report(
            Rule::Unparsable,
            format!(
                "cutover cannot parse this statement ({message}), so it cannot tell which locks it \
                 takes; it is treated as unsafe"
            ),
            "fix the syntax; if PostgreSQL accepts it and you have checked its locks, give the step \
             `allow_unsafe = \"why\"`",
        ),
        Kind::CreateIndex {
            table,
            concurrently: false,
        } if !schema.created(table) => report(
            Rule::CreateIndexNotConcurrently,
            format!(
                "CREATE INDEX on {table} without CONCURRENTLY holds a SHARE lock for the whole \
                 build: every write to {table} waits"
            ),
            "use a `create_index` step (it builds CONCURRENTLY and removes an INVALID index \
             after an abort), or write CREATE INDEX CONCURRENTLY in a `sql` step of its own",
        ),
        Kind::DropIndex {
            indexes,
            concurrently: false,
        } => report(
            Rule::DropIndexNotConcurrently,
            format!(
                "DROP INDEX {} without CONCURRENTLY takes ACCESS EXCLUSIVE on its table: reads and \
                 writes wait, and queue behind it while it waits for running queries",
                names(indexes)
            ),
            "write DROP INDEX CONCURRENTLY, in a `sql` step of its own",
        ),
        Kind::Reindex {
            target,
            rel,
            concurrently: false,
        } => report(
            Rule::ReindexNotConcurrently,
            format!(
                "REINDEX {target} {} without CONCURRENTLY blocks writes to the table, and reads \
                 that use the index, for the whole rebuild",
                rel.as_ref().map(ToString::to_string).unwrap_or_default()
            ),
            if schema.pg_major >= 12 {
                "write REINDEX … CONCURRENTLY, in a `sql` step of its own"
            } else {
                "build a new index with a `create_index` step and drop the old one \
                 CONCURRENTLY (REINDEX CONCURRENTLY needs PostgreSQL 12+)"
            },
        ),
        Kind::Vacuum { full: true, tables } => report(
            Rule::VacuumFull,
            format!(
                "VACUUM FULL {} rewrites the table under ACCESS EXCLUSIVE: reads and writes wait \
                 until it is done",
                names(tables)
            ),
            "use plain VACUUM (ANALYZE), which runs alongside reads and writes; to shrink a table \
             online use pg_repack",
        ),
        Kind::Cluster { table } => report(
            Rule::Cluster,
            format!(
                "CLUSTER {} rewrites the table under ACCESS EXCLUSIVE: reads and writes wait \
                 until it is done",
                table.as_ref().map(ToString::to_string).unwrap_or_default()
            ),
            "use pg_repack --order-by to reorder online; or run it in a maintenance window and say \
             so with `allow_unsafe`",
        ),
        Kind::Update {
            table,
            has_where: false,
        } if scope.role != Role::Rollback && !schema.created(table) => report(
            Rule::UpdateWithoutWhere,
            format!(
                "UPDATE {table} without WHERE changes every row in one transaction: all rows stay \
                 locked until it commits, and it writes a burst of WAL (replica lag) and a dead \
                 copy of each row"
            ),
            "use a `backfill` step: it updates in key-range batches with a checkpoint, paced by \
             batch time and throttled on replica lag",
        ),
        Kind::Delete {
            table,
            has_where: false,
        } if scope.role != Role::Rollback && !schema.created(table) => report(
            Rule::DeleteWithoutWhere,
            format!(
                "DELETE FROM {table} without WHERE deletes every row in one transaction, holding \
                 every row lock until it commits"
            ),
            "delete in key-range batches, or if the table is retired drop it in the irreversible \
             contract phase",
        ),
        Kind::DropTable { tables } if contract_rules => {
            let old: Vec<&Rel> = tables.iter().filter(|t| !schema.created(t)).collect();
            if !old.is_empty() {
                report(
                    Rule::DropBeforeContract,
                    format!(
                        "DROP TABLE {} in {}: its data cannot be brought back by a rollback, and \
                         code still using it fails",
                        old.iter()
                            .map(|t| t.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        phase()
                    ),
                    "move it to the irreversible contract phase (`irreversible = true`), after \
                     the application stops using it",
                )
            }
        }
        Kind::AlterTable { table, actions } => {
            for a in actions {
                alter_action(table, a, schema, scope, &phase, report);
            }
        }
        Kind::Truncate { tables, cascade } if scope.role != Role::Rollback => {
            let old: Vec<Rel> = tables
                .iter()
                .filter(|t| !schema.created(t))
                .cloned()
                .collect();
            if !old.is_empty() || *cascade {
                report(
                    Rule::Truncate,
                    format!(
                        "TRUNCATE {} deletes every row at once under ACCESS EXCLUSIVE{}; a \
                         rollback cannot bring the rows back",
                        names(tables),
                        if *cascade {
                            ", and CASCADE empties every table with a foreign key to it as well"
                        } else {
                            ""
                        }
                    ),
                    "delete in key-range batches (DELETE … WHERE key BETWEEN …, a step at a \
                     time); if the table is retired, drop it in the irreversible contract phase",
                );
            }
        }
        Kind::Refresh {
            view,
            concurrently: false,
        } if !schema.created(view) => report(
            Rule::RefreshNotConcurrently,
            format!(
                "REFRESH MATERIALIZED VIEW {view} without CONCURRENTLY rebuilds it under ACCESS \
                 EXCLUSIVE: every read of the view waits until the refresh is done"
            ),
            "write REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index on the view, \
             which a `create_index` step can build); reads go on while it runs",
        ),
        Kind::AlterDomain { domain, action } => match action {
            DomainAction::AddConstraint {
                not_valid: false, ..
            } => report(
                Rule::DomainConstraintWithoutNotValid,
                format!(
                    "ALTER DOMAIN {domain} ADD CONSTRAINT without NOT VALID checks every column of \
                     every table that uses the domain, holding a SHARE lock on each: their writes \
                     wait until it is done"
                ),
                "add it NOT VALID (new values are checked at once), then ALTER DOMAIN … VALIDATE \
                 CONSTRAINT in a later `sql` step, in its own transaction",
            ),
            DomainAction::SetNotNull => report(
                Rule::DomainConstraintWithoutNotValid,
                format!(
                    "ALTER DOMAIN {domain} SET NOT NULL checks every column of every table that \
                     uses the domain, holding a SHARE lock on each: their writes wait until it is \
                     done"
                ),
                "add CHECK (VALUE IS NOT NULL) NOT VALID to the domain, then VALIDATE CONSTRAINT \
                 in a later `sql` step",
            ),
            _ => {}
        },
        Kind::CreateDomain {
            domain,
            check: true,
        } if contract_rules || scope.role == Role::File => report(
            Rule::CreateDomainWithCheck,
            format!(
                "CREATE DOMAIN {domain} with a CHECK: a column of an existing table moved to this \
                 domain is checked row by row under ACCESS EXCLUSIVE, and a CHECK changed later \
                 must be checked against every column that uses it"
            ),
            "create the domain without the constraint, then ALTER DOMAIN … ADD CONSTRAINT … NOT \
             VALID and VALIDATE CONSTRAINT in a later step; or put the CHECK on the table's \
             column with a `constraint` step",
        ),
        Kind::DropSchema {
            schemas,
            cascade: true,
        } if scope.role != Role::Rollback => report(
            Rule::DropSchemaCascade,
            format!(
                "DROP SCHEMA {} CASCADE drops every table, view and function in it, with their \
                 data, whatever they are: nothing lists them first and a rollback cannot bring \
                 them back",
                schemas.join(", ")
            ),
            "drop the objects you mean by name, in the irreversible contract phase; then DROP \
             SCHEMA without CASCADE (it fails if anything is left)",
        ),
        Kind::DropDatabase { name } => report(
            Rule::DropDatabase,
            format!(
                "DROP DATABASE {name} removes a whole database and every row in it; no \
                 migration step can undo it"
            ),
            "do not drop databases from a migration: retire it by hand after a backup, outside \
             cutover",
        ),
        _ => {}
    }
}

fn alter_action(
    table: &Rel,
    a: &Action,
    schema: &Schema,
    scope: &Scope,
    phase: &dyn Fn() -> String,
    report: &mut dyn FnMut(Rule, String, &str),
) {
    let new_table = schema.created(table);
    let rollback = scope.role == Role::Rollback;
    let contract_rules = !rollback && !scope.irreversible;
    match a {
        Action::AddColumn {
            column,
            default,
            not_null,
            generated,
            constraints,
            references,
            ..
        } if !new_table => {
            if *generated {
                report(
                    Rule::AddColumnRewrites,
                    format!(
                        "ADD COLUMN {column} as a generated or identity column fills every row: \
                         {table} is rewritten under ACCESS EXCLUSIVE (reads and writes wait)"
                    ),
                    "add a plain nullable column, keep it filled for new writes with a \
                     `sync_trigger`, and fill existing rows with a `backfill` step",
                );
            } else if let Some((expr, volatile)) = default {
                if *volatile {
                    report(
                        Rule::AddColumnRewrites,
                        format!(
                            "ADD COLUMN {column} with the volatile default {expr} rewrites \
                             {table} under ACCESS EXCLUSIVE (reads and writes wait)"
                        ),
                        "add the column without a default, then SET DEFAULT for new rows in a \
                         second statement, and fill existing rows with a `backfill` step",
                    );
                } else if schema.pg_major < 11 {
                    report(
                        Rule::AddColumnRewrites,
                        format!(
                            "ADD COLUMN {column} with a default rewrites {table} on PostgreSQL \
                             {} (only 11 and later add it without a rewrite)",
                            schema.pg_major
                        ),
                        "add the column without a default, then SET DEFAULT for new rows in a \
                         second statement, and fill existing rows with a `backfill` step",
                    );
                }
            }
            if *not_null && default.is_none() && !generated {
                report(
                    Rule::AddColumnNotNull,
                    format!(
                        "ADD COLUMN {column} NOT NULL without a default fails on a table that has \
                         rows, and checks every row under ACCESS EXCLUSIVE"
                    ),
                    "add it nullable, fill it with a `backfill` step, then use a `not_null` step",
                );
            }
            let has_default = default
                .as_ref()
                .is_some_and(|(expr, _)| !expr.trim().eq_ignore_ascii_case("null"));
            if constraints.contains(&ConstraintKind::ForeignKey) && has_default {
                report(
                    Rule::ConstraintWithoutNotValid,
                    format!(
                        "ADD COLUMN {column} with a DEFAULT and REFERENCES {}: every row gets the \
                         default, and the foreign key is validated with a full scan while {table} \
                         is locked ACCESS EXCLUSIVE (reads and writes wait)",
                        references
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    ),
                    "add the column plainly (no default: there is nothing to validate), then add \
                     the foreign key with a `constraint` step (NOT VALID, then VALIDATE), and set \
                     the default afterwards",
                );
            }
            if constraints.contains(&ConstraintKind::Check) {
                report(
                    Rule::ConstraintWithoutNotValid,
                    format!(
                        "ADD COLUMN {column} with an inline CHECK: the check is validated against \
                         every row while {table} is locked ACCESS EXCLUSIVE (reads and writes wait)"
                    ),
                    "add the column plainly, then add the CHECK with a `constraint` step (NOT \
                     VALID, then VALIDATE in its own transaction)",
                );
            }
            if let Some(kind) = constraints
                .iter()
                .find(|k| matches!(k, ConstraintKind::Unique | ConstraintKind::PrimaryKey))
            {
                report(
                    Rule::UniqueWithoutIndex,
                    format!(
                        "ADD COLUMN {column} {} builds its index under ACCESS EXCLUSIVE",
                        kind.sql()
                    ),
                    "add the column plainly, then use a `constraint` step with UNIQUE (…) (index \
                     built CONCURRENTLY, then attached USING INDEX)",
                );
            }
        }
        Action::SetType { column, ty, using } if !new_table => {
            let old = schema.column_type(table, column);
            match type_change_rewrites(old.as_deref(), ty, *using) {
                Some(false) => {}
                Some(true) => report(
                    Rule::AlterTypeRewrites,
                    format!(
                        "ALTER COLUMN {column} TYPE {ty}{} rewrites {table} and its indexes under \
                         ACCESS EXCLUSIVE: reads and writes wait until it is done",
                        old.map(|o| format!(" (from {o})")).unwrap_or_default()
                    ),
                    "add a column of the new type, keep it in step with a `sync_trigger`, \
                     `backfill` it and `swap` the names (see plans/change_type_int_to_bigint.toml)",
                ),
                None => report(
                    Rule::AlterTypeRewrites,
                    format!(
                        "ALTER COLUMN {column} TYPE {ty} may rewrite {table} under ACCESS \
                         EXCLUSIVE: the column's current type is not known offline"
                    ),
                    "run `cutover check`, which reads the current type from the database (a \
                     binary-compatible change such as varchar widening or varchar → text does \
                     not rewrite); otherwise add a new column, sync, backfill and `swap`",
                ),
            }
        }
        Action::SetNotNull { column }
            if !new_table && !schema.has_validated_not_null_check(table, column) =>
        {
            report(
                Rule::SetNotNullScans,
                format!(
                    "SET NOT NULL on {table}.{column} scans the whole table under ACCESS \
                     EXCLUSIVE: reads and writes wait until it is done"
                ),
                "use a `not_null` step: it validates CHECK (… IS NOT NULL) first without \
                 blocking, so SET NOT NULL needs no scan",
            )
        }
        Action::AddConstraint {
            kind: kind @ (ConstraintKind::Check | ConstraintKind::ForeignKey),
            not_valid: false,
            ..
        } if !new_table => report(
            Rule::ConstraintWithoutNotValid,
            format!(
                "ADD CONSTRAINT … {} on {table} without NOT VALID checks every row under {}: \
                 writes wait until it is done",
                kind.sql(),
                if *kind == ConstraintKind::Check {
                    "ACCESS EXCLUSIVE (reads wait too)"
                } else {
                    "SHARE ROW EXCLUSIVE on both tables"
                }
            ),
            "use a `constraint` step (NOT VALID, then VALIDATE in its own transaction), or add \
             NOT VALID here and VALIDATE CONSTRAINT in a later step",
        ),
        Action::AddConstraint {
            kind: kind @ (ConstraintKind::Unique | ConstraintKind::PrimaryKey),
            using_index: false,
            ..
        } if !new_table => report(
            Rule::UniqueWithoutIndex,
            format!(
                "ADD {} on {table} builds its index under ACCESS EXCLUSIVE: reads and writes wait \
                 for the whole build",
                kind.sql()
            ),
            "use a `constraint` step with UNIQUE (…): it builds the index CONCURRENTLY, then adds \
             the constraint USING INDEX",
        ),
        Action::AddConstraint {
            kind: ConstraintKind::Exclude,
            ..
        } if !new_table => report(
            Rule::ExcludeConstraint,
            format!(
                "ADD CONSTRAINT … EXCLUDE on {table} builds its index under ACCESS EXCLUSIVE: \
                 reads and writes wait for the whole build (an exclusion constraint cannot be \
                 added NOT VALID or USING INDEX)"
            ),
            "if uniqueness is enough, use a `constraint` step with UNIQUE (built CONCURRENTLY); \
             otherwise add the exclusion constraint on a new table (copy_rows, sync_trigger, \
             swap), or in a maintenance window with `allow_unsafe`",
        ),
        Action::DetachPartition {
            partition,
            concurrently: false,
        } if !new_table => report(
            Rule::DetachPartitionNotConcurrently,
            format!(
                "DETACH PARTITION {partition} without CONCURRENTLY takes ACCESS EXCLUSIVE on \
                 {table}: every read and write of the partitioned table waits{}",
                if schema.pg_major < 14 {
                    format!(
                        " (CONCURRENTLY needs PostgreSQL 14; this is {})",
                        schema.pg_major
                    )
                } else {
                    String::new()
                }
            ),
            if schema.pg_major >= 14 {
                "write ALTER TABLE … DETACH PARTITION … CONCURRENTLY in a `sql` step of its own \
                 (it runs outside a transaction, which cutover does for a one-statement step)"
            } else {
                "upgrade to PostgreSQL 14+ for DETACH … CONCURRENTLY; until then detach in a \
                 quiet moment with a short lock_timeout, and say so with `allow_unsafe`"
            },
        ),
        Action::AttachPartition { partition }
            if !new_table
                && !rollback
                && !schema.created(partition)
                && !schema.has_validated_check(partition) =>
        {
            report(
                Rule::AttachPartitionScans,
                format!(
                    "ATTACH PARTITION {partition} scans {partition} under ACCESS EXCLUSIVE to \
                     prove every row fits the partition bound{}",
                    if schema.pg_major < 12 {
                        format!(
                            ", and on PostgreSQL {} holds ACCESS EXCLUSIVE on {table} as well",
                            schema.pg_major
                        )
                    } else {
                        String::new()
                    }
                ),
                "first add a CHECK matching the bound to the partition (NOT VALID, then VALIDATE \
                 in a later step, or a `constraint` step); ATTACH then skips the scan, and the \
                 CHECK can be dropped afterwards",
            )
        }
        Action::Logged if !new_table => report(
            Rule::SetLoggedRewrites,
            format!(
                "SET LOGGED / SET UNLOGGED rewrites {table} and its indexes under ACCESS \
                 EXCLUSIVE (reads and writes wait); SET LOGGED also writes the whole table to the \
                 WAL, which replicas must replay"
            ),
            "create a new table with the persistence you want, fill it with `copy_rows` kept \
             current by a `sync_trigger`, and `swap` the names",
        ),
        Action::SetTablespace if !new_table => report(
            Rule::SetTablespaceRewrites,
            format!(
                "SET TABLESPACE copies every file of {table} under ACCESS EXCLUSIVE: reads and \
                 writes wait until the copy is done"
            ),
            "move it online with pg_repack --tablespace, or copy it (`copy_rows` + \
             `sync_trigger` + `swap`) into a table created in the new tablespace",
        ),
        Action::DropDefault { column }
            if !new_table && contract_rules && !schema.is_nullable(table, column) =>
        {
            report(
                Rule::DropDefaultNotNull,
                if schema.is_not_null(table, column) {
                    format!(
                        "DROP DEFAULT on {table}.{column}, which is NOT NULL, in {}: the running \
                         application's inserts that leave {column} out start failing",
                        phase()
                    )
                } else {
                    format!(
                        "DROP DEFAULT on {table}.{column} in {}: if the column is NOT NULL (not \
                         known offline), the running application's inserts that leave {column} \
                         out start failing; if not, they start writing NULL",
                        phase()
                    )
                },
                "keep the default until the application always writes the column; drop it in the \
                 irreversible contract phase (or DROP NOT NULL first, there too)",
            )
        }
        Action::DropNotNull { column } if !new_table && contract_rules => report(
            Rule::DropNotNullBeforeContract,
            format!(
                "DROP NOT NULL on {table}.{column} in {}: code that relies on it may read NULLs \
                 as soon as anyone writes one, and rolling back means SET NOT NULL again, which \
                 scans the table under ACCESS EXCLUSIVE",
                phase()
            ),
            "move it to the irreversible contract phase (`irreversible = true`), after the \
             application no longer needs the column filled",
        ),
        Action::RenameColumn | Action::RenameTable if contract_rules && !new_table => report(
            Rule::RenameBeforeContract,
            format!(
                "RENAME on {table} in {}: code using the old name fails the moment it commits",
                phase()
            ),
            "add the new name alongside (new column + `sync_trigger` + `backfill`, or `swap` a \
             copy), and retire the old one in the irreversible contract phase",
        ),
        Action::DropColumn { column } if contract_rules && !new_table => report(
            Rule::DropBeforeContract,
            format!(
                "DROP COLUMN {table}.{column} in {}: its data cannot be brought back by a \
                 rollback, and code still using it fails",
                phase()
            ),
            "move it to the irreversible contract phase (`irreversible = true`), after the \
             application stops using the column",
        ),
        _ => {}
    }
}

fn names(rels: &[Rel]) -> String {
    rels.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
