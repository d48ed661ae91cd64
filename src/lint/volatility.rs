//! Which built-in functions are never VOLATILE (so a column default that
//! calls only these does not rewrite the table on PostgreSQL 11+).

use std::collections::HashSet;
use std::sync::OnceLock;

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
pub fn is_non_volatile(name: &str) -> bool {
    names().contains(name)
}
