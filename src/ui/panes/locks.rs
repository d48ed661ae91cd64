//! Locks pane: root blockers as their own rows (the session at the head of
//! a wait chain, with its state, age and query), then every waiting
//! session: what it waits for, behind whom, how long; ours highlighted.
//! With focus, ↑/↓ select a row, Enter shows it in full, c/k act on it.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table, Widget};

use crate::engine::events::short_duration;
use crate::ui::app::{App, Pane};
use crate::ui::locking::{one_line, pids};
use crate::ui::panes::frame::{framed, stale_title};
use crate::ui::text::ellipsize;
use crate::ui::theme;

/// The locks pane.
pub struct LocksPane<'a>(pub &'a App);

impl Widget for LocksPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let s = &app.monitor.sample;
        let behind = s.blocked_behind_us().count();
        let limit = app.abort_limits().blocked_sessions.map(f64::from);
        let mut title = stale_title("Locks", app);
        title.spans.push(Span::styled(
            format!("· {behind} queued behind the migration "),
            theme::against(behind as f64, None, limit),
        ));
        let inner = framed(app, Pane::Locks, title, area, buf);
        let rows = app.lock_rows();
        if rows.is_empty() {
            Line::styled(" no session waits for a lock", theme::dim()).render(inner, buf);
            return;
        }
        let wait_limit = app.abort_limits().lock_wait.map(|d| d.0.as_secs_f64());
        let widths = [7u16, 10, 26, 10, 7];
        let fixed: u16 = widths.iter().sum::<u16>() + widths.len() as u16;
        let query_width = inner.width.saturating_sub(fixed).max(5) as usize;
        let selected = (app.focus == Pane::Locks).then_some(app.lock_selected);
        let table_rows: Vec<Row> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut style = if r.ours {
                    theme::ours()
                } else if r.root {
                    theme::danger()
                } else if r.behind_us {
                    theme::against(r.age.map_or(0.0, |a| a.as_secs_f64()), None, wait_limit)
                        .patch(theme::warn())
                } else {
                    theme::normal()
                };
                if selected == Some(i) {
                    style = style.patch(theme::selected());
                }
                let what = if r.root {
                    format!("ROOT: {}", r.what)
                } else {
                    r.what.clone()
                };
                let by = if r.root {
                    format!("blocks {}", r.blocking)
                } else {
                    pids(&r.blocked_by)
                };
                Row::new(vec![
                    r.pid.to_string(),
                    ellipsize(&r.application, widths[1] as usize),
                    ellipsize(&what, widths[2] as usize),
                    ellipsize(&by, widths[3] as usize),
                    r.age.map_or("-".into(), short_duration),
                    ellipsize(&one_line(&r.query), query_width),
                ])
                .style(style)
            })
            .collect();
        Table::new(
            table_rows,
            [
                Constraint::Length(widths[0]),
                Constraint::Length(widths[1]),
                Constraint::Length(widths[2]),
                Constraint::Length(widths[3]),
                Constraint::Length(widths[4]),
                Constraint::Min(5),
            ],
        )
        .header(
            Row::new([
                "pid",
                "app",
                "waits for/state",
                "blocked by",
                "age",
                "query",
            ])
            .style(theme::dim()),
        )
        .render(inner, buf);
    }
}
