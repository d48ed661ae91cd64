//! Now / next: what the run is doing or waiting for, in words (a gate's
//! message and what advancing runs, a lock wait and its blocker, why it
//! stopped and what to type next).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Widget};

use crate::ui::app::App;
use crate::ui::now::{self, Tone};
use crate::ui::text::fit;
use crate::ui::theme;

/// The Now pane: bordered on large screens, a bare strip on small ones.
pub struct NowPane<'a> {
    /// The app.
    pub app: &'a App,
    /// Draw a border and title.
    pub bordered: bool,
}

fn style(tone: Tone) -> Style {
    match tone {
        Tone::Normal => theme::normal(),
        Tone::Warn => theme::warn(),
        Tone::Danger => theme::danger(),
        Tone::Ok => theme::ok(),
        Tone::Dim => theme::dim(),
        Tone::Paced => theme::paced(),
    }
}

/// Rows the pane wants, border included.
pub fn wanted_height(app: &App, bordered: bool) -> u16 {
    now::lines(app).len() as u16 + if bordered { 2 } else { 0 }
}

impl Widget for NowPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let inner = if self.bordered {
            let block = Block::bordered().title(" Now / next ");
            let inner = block.inner(area);
            block.render(area, buf);
            inner
        } else {
            area
        };
        let width = inner.width as usize;
        let mut lines: Vec<Line> = now::lines(self.app)
            .into_iter()
            .map(|l| fit(Line::styled(format!(" {}", l.text), style(l.tone)), width))
            .collect();
        let height = inner.height as usize;
        if lines.len() > height && height >= 3 {
            let hidden = lines.len() - height + 1;
            lines.truncate(height - 1);
            lines.push(Line::styled(
                format!(" … {hidden} more line(s): Enter shows them all"),
                theme::dim(),
            ));
        }
        Paragraph::new(lines).render(inner, buf);
    }
}
