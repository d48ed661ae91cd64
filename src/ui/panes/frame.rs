//! The border every pane shares: its title, the focus marker, and the
//! stale mark when the monitor's samples stopped.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Widget};

use crate::ui::app::{App, Pane};
use crate::ui::text::fit;
use crate::ui::theme;

/// Draws a pane's border and title (highlighted and marked ▶ when the pane
/// has focus, as k9s and lazygit do) and returns the area inside.
pub fn framed<'t>(
    app: &App,
    pane: Pane,
    title: impl Into<Line<'t>>,
    area: Rect,
    buf: &mut Buffer,
) -> Rect {
    let focused = app.focus == pane;
    let mut title: Line = title.into();
    if focused {
        title.spans.insert(0, "▶".into());
    }
    let title = fit(title, area.width.saturating_sub(2) as usize);
    let block = Block::bordered().title(title);
    let block = if focused {
        block.border_style(theme::focus())
    } else {
        block
    };
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

/// A title marked stale: the data stopped arriving at `at`.
pub fn stale_title(name: &str, app: &App) -> Line<'static> {
    if app.monitor_stale() {
        Line::from(vec![
            format!(" {name} ").into(),
            ratatui::text::Span::styled(
                format!(
                    "· stale since {} ",
                    crate::ui::text::clock(app.monitor.sample.at)
                ),
                theme::dim(),
            ),
        ])
    } else {
        Line::from(format!(" {name} "))
    }
}
