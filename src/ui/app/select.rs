//! Moving around: log scrolling, the selected Locks row, and what Enter
//! inspects.

use super::{App, Inspect, Modal, Pane};
use crate::ui::locking::{self, LockRow};

impl App {
    pub(super) fn scroll_log_up(&mut self, n: usize) {
        self.log_scroll = self
            .log_scroll
            .saturating_add(n)
            .min(self.log.len().saturating_sub(1));
    }

    pub(super) fn scroll_log_down(&mut self, n: usize) {
        self.log_scroll = self.log_scroll.saturating_sub(n);
        if self.log_scroll == 0 {
            self.log_unseen = 0;
        }
    }

    /// The Locks pane's rows: root blockers first, then the waiters.
    pub fn lock_rows(&self) -> Vec<LockRow> {
        locking::rows(&self.monitor.sample)
    }

    /// The selected Locks row's session, when it is not one of ours.
    pub fn selected_other_session(&self) -> Option<i32> {
        if self.focus != Pane::Locks {
            return None;
        }
        let rows = self.lock_rows();
        let row = rows.get(self.lock_selected.min(rows.len().saturating_sub(1)))?;
        (!row.ours).then_some(row.pid)
    }

    /// What Enter opens: the selected lock row on the Locks pane, else
    /// the run's now / next.
    pub(super) fn inspect(&self) -> Modal {
        if self.focus == Pane::Locks {
            let rows = self.lock_rows();
            if let Some(row) = rows.get(self.lock_selected.min(rows.len().saturating_sub(1))) {
                return Modal::Inspect(Inspect::Session(row.pid));
            }
        }
        Modal::Inspect(Inspect::NowNext)
    }
}
