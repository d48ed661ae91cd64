//! The adapter between PostgreSQL's grammar (squawk's parser) and the
//! rules: SQL text in, a list of statements described in our own terms out.
//! Nothing outside this file sees the parser's syntax tree.

use std::fmt;

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{SourceFile, SyntaxKind, SyntaxNode};

use crate::db::ident::fold_qualified;

/// A relation as SQL names it (unquoted parts folded to lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rel {
    /// `schema.` when written.
    pub schema: Option<String>,
    /// The relation.
    pub name: String,
}

impl Rel {
    /// From SQL text such as `public."Users"`.
    pub fn from_sql(text: &str) -> Rel {
        let mut parts = fold_qualified(text);
        let name = parts.pop().unwrap_or_default();
        Rel {
            schema: parts.pop(),
            name,
        }
    }

    /// From a plan field, where names are exact (`table = "Users"`).
    pub fn from_plan(text: &str) -> Rel {
        let mut parts = crate::db::ident::split_qualified(text);
        let name = parts.pop().unwrap_or_default();
        Rel {
            schema: parts.pop(),
            name,
        }
    }

    /// Whether two names can mean the same relation (a missing schema
    /// matches any).
    pub fn same(&self, other: &Rel) -> bool {
        self.name == other.name
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |s: &str| {
            let plain = s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !s.is_empty();
            if plain {
                s.to_string()
            } else {
                crate::db::quote_ident(s)
            }
        };
        match &self.schema {
            Some(schema) => write!(f, "{}.{}", show(schema), show(&self.name)),
            None => write!(f, "{}", show(&self.name)),
        }
    }
}

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
        /// `PRIMARY KEY` / `UNIQUE` / `REFERENCES` inline.
        constraint: Option<ConstraintKind>,
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
    DropNotNull,
    /// `ALTER COLUMN … SET DEFAULT` / `DROP DEFAULT`.
    Default,
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
    /// `ATTACH PARTITION`.
    AttachPartition,
    /// `DETACH PARTITION [CONCURRENTLY]`.
    DetachPartition {
        /// Without ACCESS EXCLUSIVE.
        concurrently: bool,
    },
    /// Anything else.
    Other {
        /// The sub-command as written.
        text: String,
    },
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
            Kind::AlterTable { actions, .. } => actions
                .iter()
                .any(|a| matches!(a, Action::DetachPartition { concurrently: true })),
            Kind::Other { what } => matches!(
                what.as_str(),
                "CREATE DATABASE"
                    | "DROP DATABASE"
                    | "ALTER SYSTEM"
                    | "CREATE TABLESPACE"
                    | "DROP TABLESPACE"
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

/// Splits SQL into statements. A part the grammar rejects becomes an
/// [`Kind::Unparsed`] statement: never silently dropped.
pub fn parse(text: &str) -> Vec<Statement> {
    let parse = SourceFile::parse(text);
    let mut out: Vec<Statement> = Vec::new();
    for stmt in parse.tree().stmts() {
        let range = stmt.syntax().text_range();
        let (start, end) = (usize::from(range.start()), usize::from(range.end()));
        if matches!(stmt, ast::Stmt::EmptyStmt(_)) {
            continue;
        }
        let (offset, body) = trim(text, start, end);
        if body.is_empty() {
            continue;
        }
        out.push(Statement {
            text: body.to_string(),
            offset,
            kind: describe(&stmt),
        });
    }
    for error in parse.errors() {
        let at = usize::from(error.range().start()).min(text.len());
        let message = error.message().to_string();
        if let Some(s) = out
            .iter_mut()
            .find(|s| at >= s.offset && at <= s.offset + s.text.len())
        {
            if !matches!(s.kind, Kind::Unparsed { .. }) {
                s.kind = Kind::Unparsed { message };
            }
            continue;
        }
        // Text between statements that the parser skipped: from the end of
        // the statement before to the start of the one after.
        let before = out
            .iter()
            .filter(|s| s.offset + s.text.len() <= at)
            .map(|s| s.offset + s.text.len())
            .max()
            .unwrap_or(0);
        let after = out
            .iter()
            .filter(|s| s.offset > at)
            .map(|s| s.offset)
            .min()
            .unwrap_or(text.len());
        let (offset, body) = trim(text, before, after);
        let body = body.trim_start_matches(';').trim_start();
        let offset = offset
            + (text[offset..].len() - text[offset..].trim_start_matches(';').trim_start().len());
        if body.is_empty() {
            continue;
        }
        out.push(Statement {
            text: body.to_string(),
            offset,
            kind: Kind::Unparsed { message },
        });
        out.sort_by_key(|s| s.offset);
    }
    out
}

/// The statement's text without surrounding blanks and trailing `;`.
fn trim(text: &str, start: usize, end: usize) -> (usize, &str) {
    let raw = text.get(start..end).unwrap_or("");
    let lead = raw.len() - raw.trim_start().len();
    let body = raw.trim().trim_end_matches(';').trim_end();
    (start + lead, body)
}

fn text_of(node: &SyntaxNode) -> String {
    node.text().to_string()
}

fn rel(node: Option<&SyntaxNode>) -> Option<Rel> {
    node.map(|n| Rel::from_sql(&text_of(n)))
}

fn has_token(node: &SyntaxNode, kind: SyntaxKind) -> bool {
    node.descendants_with_tokens().any(|t| t.kind() == kind)
}

/// The statement's leading keywords, e.g. `CREATE FUNCTION`.
fn leading_words(node: &SyntaxNode) -> String {
    let mut words = Vec::new();
    for token in node
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
    {
        if token.kind() == SyntaxKind::WHITESPACE || token.kind() == SyntaxKind::COMMENT {
            continue;
        }
        let t = token.text();
        if words.len() == 2 || !t.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
            break;
        }
        if words.len() == 1 && ["OR", "REPLACE"].contains(&t.to_uppercase().as_str()) {
            continue;
        }
        words.push(t.to_uppercase());
    }
    words.join(" ")
}

fn describe(stmt: &ast::Stmt) -> Kind {
    let node = stmt.syntax();
    match stmt {
        ast::Stmt::CreateIndex(c) => Kind::CreateIndex {
            table: rel(c.table_relation_name().as_ref().map(|t| t.syntax()))
                .unwrap_or_else(|| Rel::from_sql("?")),
            concurrently: c.concurrently_token().is_some(),
        },
        ast::Stmt::DropIndex(d) => Kind::DropIndex {
            indexes: d
                .index_refs()
                .map(|i| Rel::from_sql(&text_of(i.syntax())))
                .collect(),
            concurrently: d.concurrently_token().is_some(),
        },
        ast::Stmt::Reindex(r) => {
            let target = r
                .reindex_target()
                .map(|t| leading_words(t.syntax()))
                .unwrap_or_default();
            let target_word = target.split_whitespace().next().unwrap_or("").to_string();
            let rel = r.reindex_target().and_then(|t| {
                t.syntax()
                    .children()
                    .last()
                    .map(|n| Rel::from_sql(&text_of(&n)))
            });
            Kind::Reindex {
                target: target_word,
                rel,
                concurrently: has_token(node, SyntaxKind::CONCURRENTLY_KW),
            }
        }
        ast::Stmt::AlterTable(a) => Kind::AlterTable {
            table: rel(a.table_relation_name().as_ref().map(|t| t.syntax()))
                .unwrap_or_else(|| Rel::from_sql("?")),
            actions: a.actions().map(|x| action(&x)).collect(),
        },
        ast::Stmt::CreateTable(c) => {
            let mut columns = Vec::new();
            let mut like = Vec::new();
            if let Some(args) = c.table_arg_list() {
                for arg in args.args() {
                    match arg {
                        ast::TableArg::Column(col) => {
                            if let (Some(name), Some(ty)) = (col.name(), col.ty()) {
                                columns.push((
                                    fold_one(&text_of(name.syntax())),
                                    text_of(ty.syntax()),
                                ));
                            }
                        }
                        ast::TableArg::LikeClause(l) => {
                            if let Some(r) = l.relation_name_ref() {
                                like.push(Rel::from_sql(&text_of(r.syntax())));
                            }
                        }
                        ast::TableArg::TableConstraint(_) => {}
                    }
                }
            }
            let references = node
                .descendants()
                .filter_map(|n| {
                    if let Some(fk) = ast::ForeignKeyConstraint::cast(n.clone()) {
                        fk.table_name_ref()
                            .map(|t| Rel::from_sql(&text_of(t.syntax())))
                    } else if let Some(r) = ast::ReferencesConstraint::cast(n) {
                        r.syntax()
                            .children()
                            .find(|c| c.kind() == SyntaxKind::PATH)
                            .map(|t| Rel::from_sql(&text_of(&t)))
                    } else {
                        None
                    }
                })
                .collect();
            Kind::CreateTable {
                table: rel(c.table_name().as_ref().map(|t| t.syntax()))
                    .unwrap_or_else(|| Rel::from_sql("?")),
                columns,
                references,
                like,
            }
        }
        ast::Stmt::DropTable(d) => Kind::DropTable {
            tables: d
                .table_name_refs()
                .map(|t| Rel::from_sql(&text_of(t.syntax())))
                .collect(),
        },
        ast::Stmt::Update(u) => Kind::Update {
            table: relation_of(u.relation_name().as_ref().map(|r| r.syntax())),
            has_where: u.where_clause_or_current_of().is_some(),
        },
        ast::Stmt::Delete(d) => Kind::Delete {
            table: relation_of(d.relation_name().as_ref().map(|r| r.syntax())),
            has_where: d.where_clause_or_current_of().is_some(),
        },
        ast::Stmt::Insert(i) => Kind::Insert {
            table: rel(i.relation_name_ref().as_ref().map(|r| r.syntax()))
                .unwrap_or_else(|| Rel::from_sql("?")),
        },
        ast::Stmt::Select(_)
        | ast::Stmt::CompoundSelect(_)
        | ast::Stmt::ParenSelect(_)
        | ast::Stmt::Values(_)
        | ast::Stmt::Table(_)
        | ast::Stmt::Show(_) => Kind::Read,
        ast::Stmt::Explain(_) if !has_token(node, SyntaxKind::ANALYZE_KW) => Kind::Read,
        ast::Stmt::Vacuum(v) => Kind::Vacuum {
            full: v.full_token().is_some()
                || v.vacuum_option_list()
                    .is_some_and(|o| has_token(o.syntax(), SyntaxKind::FULL_KW)),
            tables: v
                .table_and_columns_list()
                .map(|l| {
                    l.table_and_columnss()
                        .filter_map(|t| t.table_relation_name())
                        .map(|t| Rel::from_sql(&text_of(t.syntax())))
                        .collect()
                })
                .unwrap_or_default(),
        },
        ast::Stmt::Cluster(c) => Kind::Cluster {
            table: c
                .table_name_ref()
                .map(|t| Rel::from_sql(&text_of(t.syntax())))
                .or_else(|| {
                    c.cluster_legacy().and_then(|l| {
                        l.syntax()
                            .children()
                            .find(|n| n.kind() == SyntaxKind::TABLE_NAME_REF)
                            .map(|n| Rel::from_sql(&text_of(&n)))
                    })
                }),
        },
        ast::Stmt::Truncate(t) => Kind::Truncate {
            tables: t
                .table_list()
                .map(|l| {
                    l.syntax()
                        .children()
                        .map(|n| Rel::from_sql(&text_of(&n)))
                        .collect()
                })
                .unwrap_or_default(),
        },
        ast::Stmt::Lock(l) => Kind::Lock {
            tables: l
                .relation_list()
                .map(|r| {
                    r.syntax()
                        .children()
                        .map(|n| Rel::from_sql(&text_of(&n)))
                        .collect()
                })
                .unwrap_or_default(),
            mode: l
                .lock_mode_clause()
                .map(|m| {
                    let words: Vec<String> = m
                        .syntax()
                        .descendants_with_tokens()
                        .filter_map(|e| e.into_token())
                        .filter(|t| t.kind() != SyntaxKind::WHITESPACE)
                        .map(|t| t.text().to_uppercase())
                        .filter(|w| w != "IN" && w != "MODE")
                        .collect();
                    words.join(" ")
                })
                .unwrap_or_else(|| "ACCESS EXCLUSIVE".into()),
        },
        ast::Stmt::CreateTrigger(t) => Kind::CreateTrigger {
            table: t
                .on_relation()
                .and_then(|o| o.syntax().children().last())
                .map(|n| Rel::from_sql(&text_of(&n))),
        },
        ast::Stmt::DropTrigger(t) => Kind::DropTrigger {
            table: t
                .on_relation()
                .and_then(|o| o.syntax().children().last())
                .map(|n| Rel::from_sql(&text_of(&n))),
        },
        ast::Stmt::Begin(_) => Kind::Begin,
        ast::Stmt::Commit(_) | ast::Stmt::Rollback(_) => Kind::End,
        ast::Stmt::Set(_) | ast::Stmt::Reset(_) | ast::Stmt::SetTransaction(_) => Kind::Set,
        _ => Kind::Other {
            what: leading_words(node),
        },
    }
}

fn relation_of(node: Option<&SyntaxNode>) -> Rel {
    // `ONLY t`, `t *`: the relation is the name inside.
    let text = node.map(text_of).unwrap_or_default();
    let text = text.trim();
    let text = text
        .strip_prefix("ONLY ")
        .or_else(|| text.strip_prefix("only "))
        .unwrap_or(text)
        .trim_end_matches('*')
        .trim();
    Rel::from_sql(text)
}

fn fold_one(name: &str) -> String {
    fold_qualified(name).pop().unwrap_or_default()
}

fn action(a: &ast::AlterTableAction) -> Action {
    use ast::AlterTableAction as A;
    match a {
        A::AddColumn(c) => {
            let mut default = None;
            let mut not_null = false;
            let mut generated = false;
            let mut constraint = None;
            for con in c.constraints() {
                match con {
                    ast::Constraint::DefaultConstraint(d) => {
                        if let Some(expr) = d.expr() {
                            default =
                                Some((text_of(expr.syntax()), may_be_volatile(expr.syntax())));
                        }
                    }
                    ast::Constraint::NotNullConstraint(_) => not_null = true,
                    // Identity columns (GENERATED … AS IDENTITY) fill every
                    // row from a sequence: a rewrite as well.
                    ast::Constraint::GeneratedConstraint(_) => generated = true,
                    ast::Constraint::PrimaryKeyConstraint(_) => {
                        constraint = Some(ConstraintKind::PrimaryKey)
                    }
                    ast::Constraint::UniqueConstraint(_) => {
                        constraint = Some(ConstraintKind::Unique)
                    }
                    ast::Constraint::ReferencesConstraint(_)
                    | ast::Constraint::ForeignKeyConstraint(_) => {
                        constraint = Some(ConstraintKind::ForeignKey)
                    }
                    ast::Constraint::CheckConstraint(_) => {
                        constraint = constraint.or(Some(ConstraintKind::Check))
                    }
                    _ => {}
                }
            }
            if c.ty().is_some_and(|t| {
                let t = text_of(t.syntax()).to_lowercase();
                [
                    "serial",
                    "bigserial",
                    "smallserial",
                    "serial2",
                    "serial4",
                    "serial8",
                ]
                .contains(&t.as_str())
            }) {
                // A serial column's default is nextval(): volatile.
                default = Some(("nextval(…)".into(), true));
            }
            Action::AddColumn {
                column: c
                    .column_name()
                    .map(|n| fold_one(&text_of(n.syntax())))
                    .unwrap_or_default(),
                ty: c.ty().map(|t| text_of(t.syntax())).unwrap_or_default(),
                default,
                not_null,
                generated,
                constraint,
            }
        }
        A::DropColumn(d) => Action::DropColumn {
            column: d
                .column_name_ref()
                .map(|n| fold_one(&text_of(n.syntax())))
                .unwrap_or_default(),
        },
        A::AlterColumn(c) => {
            let column = c
                .column_name_ref()
                .map(|n| fold_one(&text_of(n.syntax())))
                .unwrap_or_default();
            match c.option() {
                Some(ast::AlterColumnOption::SetType(t)) => Action::SetType {
                    column,
                    ty: t.ty().map(|t| text_of(t.syntax())).unwrap_or_default(),
                    using: t.using_expr().is_some(),
                },
                Some(ast::AlterColumnOption::SetNotNull(_)) => Action::SetNotNull { column },
                Some(ast::AlterColumnOption::DropNotNull(_)) => Action::DropNotNull,
                Some(ast::AlterColumnOption::SetDefault(_))
                | Some(ast::AlterColumnOption::DropDefault(_)) => Action::Default,
                Some(ast::AlterColumnOption::SetStatistics(_)) => Action::Statistics,
                _ => Action::Other {
                    text: text_of(a.syntax()),
                },
            }
        }
        A::AddConstraint(c) => {
            let con = c.constraint();
            let kind = match &con {
                Some(ast::Constraint::CheckConstraint(_)) => ConstraintKind::Check,
                Some(ast::Constraint::ForeignKeyConstraint(_))
                | Some(ast::Constraint::ReferencesConstraint(_)) => ConstraintKind::ForeignKey,
                Some(ast::Constraint::UniqueConstraint(_)) => ConstraintKind::Unique,
                Some(ast::Constraint::PrimaryKeyConstraint(_)) => ConstraintKind::PrimaryKey,
                Some(ast::Constraint::ExcludeConstraint(_)) => ConstraintKind::Exclude,
                _ => ConstraintKind::NotNull,
            };
            let using_index = match &con {
                Some(ast::Constraint::UniqueConstraint(u)) => u.using_index().is_some(),
                Some(ast::Constraint::PrimaryKeyConstraint(p)) => p.using_index().is_some(),
                _ => false,
            };
            let check = match &con {
                Some(ast::Constraint::CheckConstraint(ch)) => {
                    ch.expr().map(|e| text_of(e.syntax()))
                }
                _ => None,
            };
            let references = match &con {
                Some(ast::Constraint::ForeignKeyConstraint(fk)) => fk
                    .table_name_ref()
                    .map(|t| Rel::from_sql(&text_of(t.syntax()))),
                _ => None,
            };
            Action::AddConstraint {
                kind,
                references,
                name: con
                    .as_ref()
                    .and_then(|c| c.constraint_name())
                    .map(|n| fold_one(&text_of(n.syntax()))),
                not_valid: con.as_ref().is_some_and(|c| c.is_not_valid()),
                using_index,
                check,
            }
        }
        A::ValidateConstraint(v) => Action::ValidateConstraint {
            name: v
                .constraint_name_ref()
                .map(|n| fold_one(&text_of(n.syntax())))
                .unwrap_or_default(),
        },
        A::DropConstraint(_) => Action::DropConstraint,
        A::RenameColumn(_) => Action::RenameColumn,
        A::TableRenameTo(_) => Action::RenameTable,
        A::RenameConstraint(_) => Action::RenameConstraint,
        A::EnableTrigger(_)
        | A::DisableTrigger(_)
        | A::EnableAlwaysTrigger(_)
        | A::EnableReplicaTrigger(_) => Action::Trigger,
        A::SetOptions(_) | A::ResetOptions(_) => Action::StorageParams,
        A::SetLogged(_) | A::SetUnlogged(_) => Action::Logged,
        A::AttachPartition(_) => Action::AttachPartition,
        A::DetachPartition(d) => Action::DetachPartition {
            concurrently: has_token(d.syntax(), SyntaxKind::CONCURRENTLY_KW),
        },
        other => Action::Other {
            text: text_of(other.syntax()),
        },
    }
}

/// Whether an expression may be volatile: it calls a function that is not
/// a built-in known to be immutable or stable.
fn may_be_volatile(expr: &SyntaxNode) -> bool {
    expr.descendants_with_tokens().any(|e| match e {
        squawk_syntax::SyntaxElement::Node(n) if n.kind() == SyntaxKind::CALL_EXPR => {
            let name = ast::CallExpr::cast(n.clone())
                .and_then(|c| c.expr())
                .map(|e| text_of(e.syntax()))
                .unwrap_or_default();
            let name = fold_qualified(&name).pop().unwrap_or_default();
            // Special forms (EXTRACT, SUBSTRING, …) have no plain name.
            !name.is_empty() && !super::volatility::is_non_volatile(&name)
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Kind {
        let stmts = parse(sql);
        assert_eq!(stmts.len(), 1, "{sql}: {stmts:?}");
        stmts
            .into_iter()
            .next()
            .map(|s| s.kind)
            .unwrap_or(Kind::Read)
    }

    #[test]
    fn statements_split_with_offsets_and_without_semicolons() {
        let sql =
            "CREATE INDEX CONCURRENTLY i ON public.\"Users\" (email);\n  update users set a = 1";
        let stmts = parse(sql);
        assert_eq!(stmts.len(), 2);
        assert_eq!(stmts[0].offset, 0);
        assert_eq!(
            stmts[0].text,
            "CREATE INDEX CONCURRENTLY i ON public.\"Users\" (email)"
        );
        assert_eq!(
            stmts[0].kind,
            Kind::CreateIndex {
                table: Rel {
                    schema: Some("public".into()),
                    name: "Users".into()
                },
                concurrently: true
            }
        );
        assert_eq!(&sql[stmts[1].offset..stmts[1].offset + 6], "update");
        assert_eq!(
            stmts[1].kind,
            Kind::Update {
                table: Rel::from_sql("users"),
                has_where: false
            }
        );
    }

    #[test]
    fn text_the_grammar_rejects_is_kept_as_unparsed() {
        let stmts = parse("this is not sql; SELECT 1");
        assert_eq!(stmts.len(), 2, "{stmts:?}");
        assert!(matches!(stmts[0].kind, Kind::Unparsed { .. }));
        assert_eq!(stmts[0].text, "this is not sql");
        assert_eq!(stmts[1].kind, Kind::Read);
        let stmts = parse("ALTER TABLE users ADD COLUMN");
        assert!(matches!(stmts[0].kind, Kind::Unparsed { .. }), "{stmts:?}");
    }

    #[test]
    fn alter_table_actions_are_described() {
        let Kind::AlterTable { table, actions } = one(
            "ALTER TABLE Users ADD COLUMN x int DEFAULT random() NOT NULL, \
             ADD CONSTRAINT c CHECK (x > 0) NOT VALID, ALTER COLUMN y TYPE bigint USING y::bigint, \
             ADD CONSTRAINT u UNIQUE USING INDEX u_idx",
        ) else {
            panic!("not an ALTER TABLE")
        };
        assert_eq!(table, Rel::from_sql("users"));
        assert_eq!(
            actions[0],
            Action::AddColumn {
                column: "x".into(),
                ty: "int".into(),
                default: Some(("random()".into(), true)),
                not_null: true,
                generated: false,
                constraint: None,
            }
        );
        assert!(matches!(
            &actions[1],
            Action::AddConstraint { kind: ConstraintKind::Check, not_valid: true, name: Some(n), .. } if n == "c"
        ));
        assert_eq!(
            actions[2],
            Action::SetType {
                column: "y".into(),
                ty: "bigint".into(),
                using: true
            }
        );
        assert!(matches!(
            &actions[3],
            Action::AddConstraint {
                kind: ConstraintKind::Unique,
                using_index: true,
                ..
            }
        ));
    }

    #[test]
    fn defaults_are_volatile_only_when_a_call_may_be() {
        let default_of = |sql: &str| match one(sql) {
            Kind::AlterTable { actions, .. } => match &actions[0] {
                Action::AddColumn { default, .. } => default.clone().map(|d| d.1),
                _ => None,
            },
            _ => None,
        };
        assert_eq!(
            default_of("ALTER TABLE t ADD COLUMN a int DEFAULT 0"),
            Some(false)
        );
        assert_eq!(
            default_of("ALTER TABLE t ADD COLUMN a timestamptz DEFAULT now()"),
            Some(false)
        );
        assert_eq!(
            default_of("ALTER TABLE t ADD COLUMN a text DEFAULT lower('X') || 'y'"),
            Some(false)
        );
        assert_eq!(
            default_of("ALTER TABLE t ADD COLUMN a uuid DEFAULT gen_random_uuid()"),
            Some(true)
        );
        assert_eq!(
            default_of("ALTER TABLE t ADD COLUMN a int DEFAULT my_function()"),
            Some(true)
        );
        assert_eq!(
            default_of("ALTER TABLE t ADD COLUMN a bigserial"),
            Some(true)
        );
        assert_eq!(default_of("ALTER TABLE t ADD COLUMN a int"), None);
    }

    #[test]
    fn autocommit_statements_are_known_from_the_grammar() {
        let auto = |sql: &str| parse(sql).iter().any(Statement::needs_autocommit);
        assert!(auto("CREATE INDEX CONCURRENTLY i ON t (c)"));
        assert!(auto("drop index concurrently i"));
        assert!(auto("REINDEX INDEX CONCURRENTLY i"));
        assert!(auto("VACUUM (ANALYZE) users"));
        assert!(auto("vacuum users"));
        assert!(auto("CREATE DATABASE x"));
        assert!(!auto("CREATE INDEX i ON t (c)"));
        assert!(!auto("SELECT 'concurrently'"));
        assert!(!auto("ALTER TABLE users ADD COLUMN c int"));
    }

    #[test]
    fn other_statements_keep_their_leading_words() {
        assert_eq!(
            one(
                "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
            ),
            Kind::Other {
                what: "CREATE FUNCTION".into()
            }
        );
        assert_eq!(
            one("ALTER SEQUENCE users_id_seq OWNED BY users_v2.id"),
            Kind::Other {
                what: "ALTER SEQUENCE".into()
            }
        );
        assert_eq!(
            one("DROP TRIGGER t ON public.users"),
            Kind::DropTrigger {
                table: Some(Rel::from_sql("public.users"))
            }
        );
        assert_eq!(
            one("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"),
            Kind::Lock {
                tables: vec![Rel::from_sql("users")],
                mode: "SHARE ROW EXCLUSIVE".into()
            }
        );
    }
}
