//! Whether a planned statement fits `[settings] max_stall`.

use super::Planned;
use crate::lint::locks::{Blocks, Work};

/// Whether a statement can keep the application's waits under the stall
/// budget: `Err` says why not (a lock that blocks the application held
/// while the table is scanned or rewritten).
pub fn verdict(st: &Planned, budget: std::time::Duration) -> Result<String, String> {
    let budget = crate::plan::units::HumanDuration(budget);
    let Some(locks) = &st.locks else {
        return Err(format!(
            "its locks are not known to cutover: it may not meet max_stall {budget}"
        ));
    };
    for l in locks {
        let blocks = !matches!(l.blocks, Blocks::Nothing);
        if blocks && matches!(l.work, Work::Scan | Work::Rewrite | Work::Unknown) {
            return Err(format!(
                "holds {} on {} while it {} ({}): it cannot meet max_stall {budget}",
                l.mode.sql(),
                l.relation,
                l.work.describe(),
                l.blocks.describe()
            ));
        }
    }
    Ok(if st.label.contains("batch") {
        format!(
            "within max_stall {budget}: batches are sized under half of it and run half the time"
        )
    } else if locks.iter().any(|l| !matches!(l.blocks, Blocks::Nothing)) {
        format!(
            "within max_stall {budget}: brief once granted; each attempt waits for a gap, then at most {budget}"
        )
    } else {
        format!("within max_stall {budget}: blocks no reads or writes")
    })
}
