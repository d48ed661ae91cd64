//! Moving around: log scrolling, the selected Locks row, and what Enter
//! inspects.

use super::{App, Modal, Pane};
use crate::ui::locking::{self, LockRow};
use crate::ui::now;

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

    /// What Enter opens: the selected lock row in full on the Locks pane,
    /// else the current step's statements and their locks.
    pub(super) fn inspect(&self) -> Modal {
        if self.focus == Pane::Locks {
            let rows = self.lock_rows();
            if let Some(row) = rows.get(self.lock_selected.min(rows.len().saturating_sub(1))) {
                return Modal::Inspect {
                    title: format!(" Session {} ", row.pid),
                    lines: row.describe(),
                };
            }
        }
        let mut lines: Vec<String> = now::lines(self).into_iter().map(|l| l.text).collect();
        if let Some((pi, si)) = self.progress.position
            && let Some(step) = self.plan.phases.get(pi).and_then(|p| p.steps.get(si))
        {
            lines.push(String::new());
            lines.push(format!(
                "current: {} \"{}\" in phase {}",
                step.get_ref().kind(),
                step.get_ref().display_name(),
                self.plan.phases[pi].name()
            ));
            lines.extend(now::statements_of(self, pi, si));
        }
        Modal::Inspect {
            title: " Now / next ".into(),
            lines,
        }
    }
}
