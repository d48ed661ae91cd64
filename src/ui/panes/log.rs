//! Event log pane: timestamps, severity colours, scrollable. Entries are
//! wrapped first and the tail that fits is shown, so the newest entry is
//! always on screen unless the operator scrolled away (then the title says
//! how many arrived below).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::engine::events::Level;
use crate::ui::app::{App, Pane};
use crate::ui::panes::frame::framed;
use crate::ui::text::{clock, wrap};
use crate::ui::theme;

/// The log pane.
pub struct LogPane<'a>(pub &'a App);

/// Width of the `HH:MM:SS ` prefix; wrapped rows indent under the text.
const STAMP: usize = 9;

/// The rows the log shows in a `width` × `height` area: entries up to the
/// scroll position, wrapped, and the last `height` rows of them.
pub fn visible_rows(app: &App, width: usize, height: usize) -> Vec<Line<'static>> {
    let end = app.log.len().saturating_sub(app.log_scroll);
    let text_width = width.saturating_sub(STAMP).max(1);
    let mut rows: Vec<Line<'static>> = Vec::new();
    // Newest first until the area is full, then put back in order.
    for entry in app.log.range(..end).rev() {
        let style = match entry.level {
            Level::Info => theme::normal(),
            Level::Warn => theme::warn(),
            Level::Error => theme::danger(),
        };
        let wrapped = wrap(&entry.text, text_width);
        let mut lines: Vec<Line<'static>> = wrapped
            .into_iter()
            .enumerate()
            .map(|(i, text)| {
                let stamp = if i == 0 {
                    Span::styled(format!("{} ", clock(entry.at)), theme::dim())
                } else {
                    Span::raw(" ".repeat(STAMP))
                };
                Line::from(vec![stamp, Span::styled(text, style)])
            })
            .collect();
        lines.reverse();
        rows.extend(lines);
        if rows.len() >= height {
            break;
        }
    }
    rows.truncate(height);
    rows.reverse();
    rows
}

impl Widget for LogPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let title = if app.log_scroll > 0 {
            let new = if app.log_unseen > 0 {
                format!("{} new · ", app.log_unseen)
            } else {
                String::new()
            };
            format!(
                " Log · scrolled {} up · {new}End/G: latest ",
                app.log_scroll
            )
        } else {
            " Log ".to_string()
        };
        let inner = framed(app, Pane::Log, title, area, buf);
        let rows = visible_rows(app, inner.width as usize, inner.height as usize);
        Paragraph::new(rows).render(inner, buf);
    }
}
