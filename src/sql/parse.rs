//! Splitting SQL into statements with squawk's parser, and the small
//! helpers every description of a syntax node uses.

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{SourceFile, SyntaxKind, SyntaxNode};

use super::rel::Rel;
use super::{Kind, Statement};
use crate::db::ident::fold_qualified;

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
            kind: super::describe::describe(&stmt),
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

pub(super) fn text_of(node: &SyntaxNode) -> String {
    node.text().to_string()
}

pub(super) fn rel(node: Option<&SyntaxNode>) -> Option<Rel> {
    node.map(|n| Rel::from_sql(&text_of(n)))
}

pub(super) fn has_token(node: &SyntaxNode, kind: SyntaxKind) -> bool {
    node.descendants_with_tokens().any(|t| t.kind() == kind)
}

/// The statement's leading keywords, e.g. `CREATE FUNCTION`.
pub(super) fn leading_words(node: &SyntaxNode) -> String {
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

/// An unquoted name folded to lower case, a quoted one kept exactly.
pub(super) fn fold_one(name: &str) -> String {
    fold_qualified(name).pop().unwrap_or_default()
}
