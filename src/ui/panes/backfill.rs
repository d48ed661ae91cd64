//! Backfill pane: rows done / total, %, rows/s with a sparkline, ETA, batch
//! size and time (against the target), and the throttle with its reason.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Sparkline, Widget};

use crate::engine::events::short_duration;
use crate::ui::app::App;
use crate::ui::theme;

/// The backfill pane.
pub struct BackfillPane<'a>(pub &'a App);

impl Widget for BackfillPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let block = Block::bordered().title(" Backfill ");
        let inner = block.inner(area);
        block.render(area, buf);
        let Some(b) = &app.progress.batch else {
            let text = match &app.monitor.sample.index_build {
                Some(ix) => format!(
                    "index build: {}  blocks {}/{}  tuples {}/{}",
                    ix.phase, ix.blocks.0, ix.blocks.1, ix.tuples.0, ix.tuples.1
                ),
                None => "no batched step running".into(),
            };
            let mut lines = vec![Line::styled(text, theme::dim())];
            if let Some(reason) = &app.progress.throttle {
                lines.push(Line::styled(reason.clone(), theme::danger()));
            }
            Paragraph::new(lines).render(inner, buf);
            return;
        };
        let [gauge, text, spark] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(5),
            Constraint::Min(0),
        ])
        .areas(inner);
        let label = match (b.rows_total, b.percent()) {
            (Some(t), Some(p)) => format!("{} {} / {t} keys  {p:.1}%", b.table, b.rows_done),
            _ => format!("{} {} keys", b.table, b.rows_done),
        };
        Gauge::default()
            .gauge_style(theme::ok())
            .ratio((b.percent().unwrap_or(0.0) / 100.0).clamp(0.0, 1.0))
            .label(label)
            .render(gauge, buf);
        let batch_style = if b.last_batch > b.target_batch * 2 {
            theme::warn()
        } else {
            theme::normal()
        };
        let sizing = if app.progress.batch_override.is_some() {
            "operator"
        } else {
            "auto"
        };
        let throttle = match &app.progress.throttle {
            Some(reason) => Span::styled(reason.clone(), theme::danger()),
            None => Span::styled("full speed", theme::ok()),
        };
        // The throttle and its reason first: it is the line that matters.
        let lines = vec![
            Line::from(throttle),
            Line::from(vec![
                Span::styled(format!("{:.0} rows/s", b.rows_per_sec), theme::strong()),
                Span::raw(format!(
                    "  ETA {}  {} changed",
                    b.eta.map_or("-".into(), short_duration),
                    b.rows_updated
                )),
            ]),
            Line::from(vec![
                Span::raw(format!("batch {} ({sizing}) ", b.batch_size)),
                Span::styled(short_duration(b.last_batch), batch_style),
                Span::raw(format!(
                    "/{} target, {} batches",
                    short_duration(b.target_batch),
                    b.batches
                )),
            ]),
        ];
        // The throttle's reason wraps rather than being cut off.
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .render(text, buf);
        let data: Vec<u64> = app.rate_history.iter().copied().collect();
        let width = spark.width as usize;
        let shown = &data[data.len().saturating_sub(width)..];
        Sparkline::default()
            .data(shown)
            .style(theme::ok())
            .render(spark, buf);
    }
}
