//! Locks pane: waiting sessions — pid, what they wait for, who blocks them,
//! how long, the query — ours highlighted, and the queue behind us.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Row, Table, Widget};

use crate::engine::events::short_duration;
use crate::ui::app::App;
use crate::ui::theme;

/// The locks pane.
pub struct LocksPane<'a>(pub &'a App);

impl Widget for LocksPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let s = &app.monitor.sample;
        let behind = s.blocked_behind_us().count();
        let limit = app.abort_limits().blocked_sessions.map(f64::from);
        let title = Line::from(vec![
            ratatui::text::Span::raw(" Locks · "),
            ratatui::text::Span::styled(
                format!("{behind} queued behind the migration "),
                theme::against(behind as f64, None, limit),
            ),
        ]);
        let block = Block::bordered().title(title);
        let wait_limit = app.abort_limits().lock_wait.map(|d| d.0.as_secs_f64());
        let rows: Vec<Row> = s
            .lock_waits
            .iter()
            .map(|w| {
                let style = if w.ours {
                    theme::ours()
                } else if w.behind_us {
                    theme::against(w.waited.as_secs_f64(), None, wait_limit).patch(theme::warn())
                } else {
                    theme::normal()
                };
                Row::new(vec![
                    w.pid.to_string(),
                    format!("{} {}", w.mode.trim_end_matches("Lock"), w.waits_for),
                    w.blocked_by
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    short_duration(w.waited),
                    w.query.replace('\n', " "),
                ])
                .style(style)
            })
            .collect();
        if rows.is_empty() {
            let inner = block.inner(area);
            block.render(area, buf);
            Line::styled("no session waits for a lock", theme::dim()).render(inner, buf);
            return;
        }
        Table::new(
            rows,
            [
                Constraint::Length(7),
                Constraint::Length(28),
                Constraint::Length(10),
                Constraint::Length(7),
                Constraint::Min(10),
            ],
        )
        .header(Row::new(["pid", "waits for", "blocked by", "wait", "query"]).style(theme::dim()))
        .block(block)
        .render(area, buf);
    }
}
