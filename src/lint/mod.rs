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

use crate::sql::{self, Action, ConstraintKind, Kind, Rel, Statement};

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
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 19] = [
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

    /// Takes in what a statement establishes.
    pub fn learn(&mut self, stmt: &Statement) {
        match &stmt.kind {
            Kind::CreateTable { table, columns, .. } => {
                self.mark_created(table);
                for (c, ty) in columns {
                    self.set_column_type(table, c, ty);
                }
            }
            Kind::AlterTable { table, actions } => {
                for a in actions {
                    match a {
                        Action::AddColumn { column, ty, .. } => {
                            self.set_column_type(table, column, ty)
                        }
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
    let shared_transaction = scope.role != Role::File && statements.len() > 1;
    for stmt in &statements {
        match stmt.kind {
            Kind::Begin => in_block = true,
            Kind::End => in_block = false,
            _ => {}
        }
        let in_transaction = in_block || shared_transaction;
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
    (statements, hits)
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
                alter_action(table, a, schema, contract_rules, &phase, report);
            }
        }
        _ => {}
    }
}

fn alter_action(
    table: &Rel,
    a: &Action,
    schema: &Schema,
    contract_rules: bool,
    phase: &dyn Fn() -> String,
    report: &mut dyn FnMut(Rule, String, &str),
) {
    let new_table = schema.created(table);
    match a {
        Action::AddColumn {
            column,
            default,
            not_null,
            generated,
            constraint,
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
            if let Some(kind @ (ConstraintKind::Unique | ConstraintKind::PrimaryKey)) = constraint {
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
