//! Which built-in functions are never VOLATILE (so a column default that
//! calls only these does not rewrite the table on PostgreSQL 11+).

use std::collections::HashSet;
use std::sync::OnceLock;

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{SyntaxKind, SyntaxNode};

use super::syntax::text_of;
use crate::db::ident::fold_qualified;

const NON_VOLATILE: &str = include_str!("non_volatile.txt");

fn names() -> &'static HashSet<&'static str> {
    static NAMES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        NON_VOLATILE
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// `name` (folded, without schema) is a built-in with no volatile overload.
fn is_non_volatile(name: &str) -> bool {
    names().contains(name)
}

/// Whether an expression may be volatile: it calls a function that is not
/// a built-in known to be immutable or stable.
pub(super) fn may_be_volatile(expr: &SyntaxNode) -> bool {
    expr.descendants_with_tokens().any(|e| match e {
        squawk_syntax::SyntaxElement::Node(n) if n.kind() == SyntaxKind::CALL_EXPR => {
            let name = ast::CallExpr::cast(n.clone())
                .and_then(|c| c.expr())
                .map(|e| text_of(e.syntax()))
                .unwrap_or_default();
            let name = fold_qualified(&name).pop().unwrap_or_default();
            // Special forms (EXTRACT, SUBSTRING, …) have no plain name.
            !name.is_empty() && !is_non_volatile(&name)
        }
        _ => false,
    })
}
