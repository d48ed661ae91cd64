//! Splitting SQL into statements with squawk's parser.

use squawk_syntax::SourceFile;
use squawk_syntax::ast::{self, AstNode};

use super::{Kind, Statement};

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
