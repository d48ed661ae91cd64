//! Each `[abort]` criterion's value now, beside its limit, as the guard
//! reads them.

use std::time::Duration;

use super::sheet::{Rows, labels};
use crate::engine::guard::readings;
use crate::engine::progress::Progress;
use crate::plan::Plan;

/// Every set `[abort]` criterion: (its value now, its limit); a value that
/// cannot be measured shows as zero.
pub(super) fn abort_rows(
    plan: &Plan,
    p: &Progress,
    s: &crate::monitor::sample::Sample,
    sample_age: Duration,
) -> (Rows, Rows) {
    let mut values = Vec::new();
    let mut limits = Vec::new();
    for r in readings(&plan.abort, s, p.lock_retries, sample_age) {
        values.push((
            labels(&[("criterion", r.criterion)]),
            r.value.unwrap_or(0.0),
        ));
        limits.push((labels(&[("criterion", r.criterion)]), r.limit));
    }
    (values, limits)
}
