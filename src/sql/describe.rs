//! A whole statement described in our terms: what it is, on which
//! relations.

use squawk_syntax::SyntaxKind;
use squawk_syntax::SyntaxNode;
use squawk_syntax::ast::{self, AstNode};

use super::alter::action;
use super::rel::Rel;
use super::syntax::{fold_one, has_token, leading_words, rel, text_of};
use super::{DomainAction, Kind};

pub(super) fn describe(stmt: &ast::Stmt) -> Kind {
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
            let mut not_null = Vec::new();
            let mut like = Vec::new();
            if let Some(args) = c.table_arg_list() {
                for arg in args.args() {
                    match arg {
                        ast::TableArg::Column(col) => {
                            if let (Some(name), Some(ty)) = (col.name(), col.ty()) {
                                let name = fold_one(&text_of(name.syntax()));
                                if col.syntax().descendants().any(|n| {
                                    ast::NotNullConstraint::can_cast(n.kind())
                                        || ast::PrimaryKeyConstraint::can_cast(n.kind())
                                }) {
                                    not_null.push(name.clone());
                                }
                                columns.push((name, text_of(ty.syntax())));
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
                        r.table().map(|t| Rel::from_sql(&text_of(t.syntax())))
                    } else {
                        None
                    }
                })
                .collect();
            Kind::CreateTable {
                table: rel(c.table_name().as_ref().map(|t| t.syntax()))
                    .unwrap_or_else(|| Rel::from_sql("?")),
                columns,
                not_null,
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
                || v.vacuum_option_list().is_some_and(|o| {
                    o.vacuum_options()
                        .any(|opt| option_on(&text_of(opt.syntax()), "full"))
                }),
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
            cascade: t
                .drop_behavior()
                .is_some_and(|b| has_token(b.syntax(), SyntaxKind::CASCADE_KW)),
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
        ast::Stmt::Refresh(r) => Kind::Refresh {
            view: rel(r.view_ref().as_ref().map(|v| v.syntax()))
                .unwrap_or_else(|| Rel::from_sql("?")),
            concurrently: r.concurrently_token().is_some(),
        },
        ast::Stmt::AlterDomain(d) => Kind::AlterDomain {
            domain: rel(d.domain_ref().as_ref().map(|v| v.syntax()))
                .unwrap_or_else(|| Rel::from_sql("?")),
            action: match d.action() {
                Some(ast::AlterDomainAction::AddConstraint(c)) => DomainAction::AddConstraint {
                    name: c
                        .constraint()
                        .and_then(|c| c.constraint_name())
                        .map(|n| fold_one(&text_of(n.syntax()))),
                    not_valid: c.constraint().is_some_and(|c| c.is_not_valid())
                        || has_token(c.syntax(), SyntaxKind::VALID_KW),
                },
                Some(ast::AlterDomainAction::ValidateConstraint(v)) => {
                    DomainAction::ValidateConstraint {
                        name: v
                            .constraint_name_ref()
                            .map(|n| fold_one(&text_of(n.syntax())))
                            .unwrap_or_default(),
                    }
                }
                Some(ast::AlterDomainAction::SetNotNull(_)) => DomainAction::SetNotNull,
                _ => DomainAction::Other,
            },
        },
        ast::Stmt::CreateDomain(d) => Kind::CreateDomain {
            domain: rel(d.domain().as_ref().map(|v| v.syntax()))
                .unwrap_or_else(|| Rel::from_sql("?")),
            check: has_token(node, SyntaxKind::CHECK_KW),
        },
        ast::Stmt::DropSchema(d) => Kind::DropSchema {
            schemas: d
                .schema_refs()
                .map(|r| fold_one(&text_of(r.syntax())))
                .collect(),
            cascade: d
                .drop_behavior()
                .is_some_and(|b| has_token(b.syntax(), SyntaxKind::CASCADE_KW)),
        },
        ast::Stmt::DropDatabase(d) => Kind::DropDatabase {
            name: d
                .database_ref()
                .map(|r| fold_one(&text_of(r.syntax())))
                .unwrap_or_default(),
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

/// A boolean option as written in an option list (`FULL`, `FULL true`,
/// `FULL off`, `full 0`): whether it is named and switched on.
fn option_on(text: &str, name: &str) -> bool {
    let mut words = text.split_whitespace();
    if !words.next().is_some_and(|w| w.eq_ignore_ascii_case(name)) {
        return false;
    }
    match words.next() {
        None => true,
        Some(v) => {
            let v = v.trim_matches('\'').to_ascii_lowercase();
            !matches!(v.as_str(), "false" | "off" | "0" | "no")
        }
    }
}
