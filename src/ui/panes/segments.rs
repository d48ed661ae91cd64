//! The progress bar of a batched step run by several workers: one bar cut
//! into a segment per worker, each filled to its worker's share done, the
//! step's label over the whole.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;

use crate::ui::theme;

/// A bar of `shares.len()` segments, each filled to its share (0 to 1).
pub struct Segments<'a> {
    /// Each worker's share done.
    pub shares: &'a [f64],
    /// The step's label, centred over the bar.
    pub label: &'a str,
}

/// Where segment `i` of `n` starts in a bar `width` wide.
fn edge(i: usize, n: usize, width: u16) -> u16 {
    (i * width as usize / n.max(1)) as u16
}

impl Widget for Segments<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let n = self.shares.len();
        if n == 0 || area.width == 0 || area.height == 0 {
            return;
        }
        let fill = Style::default().bg(theme::ok().fg.unwrap_or_default());
        let y = area.y;
        for (i, share) in self.shares.iter().enumerate() {
            let (from, to) = (edge(i, n, area.width), edge(i + 1, n, area.width));
            let filled = from + ((to - from) as f64 * share.clamp(0.0, 1.0)).round() as u16;
            for x in from..to {
                let Some(cell) = buf.cell_mut((area.x + x, y)) else {
                    continue;
                };
                // A thin mark between segments, in the empty part only.
                let symbol = if x == from && i > 0 && x >= filled {
                    "▏"
                } else {
                    " "
                };
                cell.set_symbol(symbol);
                if x < filled {
                    cell.set_style(fill);
                }
            }
        }
        let width = self.label.chars().count() as u16;
        let start = area.x + area.width.saturating_sub(width) / 2;
        for (k, ch) in self.label.chars().take(area.width as usize).enumerate() {
            if let Some(cell) = buf.cell_mut((start + k as u16, y)) {
                cell.set_char(ch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_segment_fills_to_its_own_share() {
        let area = Rect::new(0, 0, 20, 1);
        let mut buf = Buffer::empty(area);
        Segments {
            shares: &[1.0, 0.5, 0.0, 0.2],
            label: "",
        }
        .render(area, &mut buf);
        let filled: String = (0..20)
            .map(|x| {
                if buf[(x, 0)].bg == theme::ok().fg.unwrap_or_default() {
                    '#'
                } else {
                    '.'
                }
            })
            .collect();
        // Four segments of five cells: all, half (rounded up), none, a fifth.
        assert_eq!(filled, "########.......#....");
    }
}
