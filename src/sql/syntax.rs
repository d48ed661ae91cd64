//! The small helpers every description of a squawk syntax node uses.

use squawk_syntax::{SyntaxKind, SyntaxNode};

use super::rel::Rel;
use crate::db::ident::fold_qualified;

/// The node's text, as written.
pub(super) fn text_of(node: &SyntaxNode) -> String {
    node.text().to_string()
}

/// The relation a node names.
pub(super) fn rel(node: Option<&SyntaxNode>) -> Option<Rel> {
    node.map(|n| Rel::from_sql(&text_of(n)))
}

/// Whether a token of this kind is anywhere below the node.
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
