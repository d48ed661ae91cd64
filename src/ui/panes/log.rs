//! Event log pane: timestamps, severity colours, scrollable.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use crate::engine::events::Level;
use crate::ui::app::App;
use crate::ui::theme;

/// The log pane.
pub struct LogPane<'a>(pub &'a App);

/// `HH:MM:SS` (UTC) of a time.
pub fn clock(t: std::time::SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(11..19).unwrap_or(&s).to_string()
}

impl Widget for LogPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let title = if app.log_scroll > 0 {
            format!(" Log (scrolled {} up) ", app.log_scroll)
        } else {
            " Log ".to_string()
        };
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        block.render(area, buf);
        let height = inner.height as usize;
        let end = app.log.len().saturating_sub(app.log_scroll);
        let start = end.saturating_sub(height);
        let lines: Vec<Line> = app
            .log
            .range(start..end)
            .map(|l| {
                let style = match l.level {
                    Level::Info => theme::normal(),
                    Level::Warn => theme::warn(),
                    Level::Error => theme::danger(),
                };
                Line::from(vec![
                    Span::styled(format!("{} ", clock(l.at)), theme::dim()),
                    Span::styled(l.text.clone(), style),
                ])
            })
            .collect();
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .render(inner, buf);
    }
}
