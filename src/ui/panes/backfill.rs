//! Batched-step pane: rows done / total, %, rows/s with a sparkline (gaps
//! while nothing moves) and its scale, ETA, batch size and time against the
//! target, and the throttle with its reason. A verify (chunked compare) and
//! a copy get their own words instead of a backfill's.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Sparkline, Widget};

use crate::engine::events::short_duration;
use crate::engine::progress::RunState;
use crate::ui::app::{App, Pane};
use crate::ui::panes::frame::framed;
use crate::ui::text::fit;
use crate::ui::theme;

/// The batched-step pane.
pub struct BackfillPane<'a>(pub &'a App);

/// Why nothing moves, in words, or None while batches run.
fn still_reason(app: &App) -> Option<String> {
    if !app.engine_running() {
        return Some("run stopped".into());
    }
    match app.progress.state {
        RunState::Paused => Some("paused".into()),
        RunState::WaitingGate => Some("at a gate".into()),
        _ if app.held_by_limit() => app.throttle_reason(),
        _ => None,
    }
}

/// A rate as people read it: 950, 12.3k, 1.2M.
pub fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.1}M", r / 1e6)
    } else if r >= 1e4 {
        format!("{:.0}k", r / 1e3)
    } else if r >= 1e3 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

impl Widget for BackfillPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let kind = app.current_kind().unwrap_or("backfill");
        let title = match (&app.progress.batch, kind) {
            (Some(_), "verify") => " Verify ",
            (Some(_), "copy_rows") => " Copy ",
            _ => " Backfill ",
        };
        let inner = framed(app, Pane::Backfill, title, area, buf);
        let width = inner.width as usize;
        let Some(b) = &app.progress.batch else {
            let text = match &app.monitor.sample.index_build {
                Some(ix) => format!(
                    "index build: {}  blocks {}/{}  tuples {}/{}",
                    ix.phase, ix.blocks.0, ix.blocks.1, ix.tuples.0, ix.tuples.1
                ),
                None => "no batched step running".into(),
            };
            let mut lines = vec![fit(Line::styled(text, theme::dim()), width)];
            // After the run stopped: where the last batched step got to,
            // marked with the time it stopped.
            if !app.engine_running()
                && let Some(last) = &app.last_batch
            {
                let total = last
                    .rows_total
                    .map_or(String::new(), |t| format!(" / ~{t}"));
                lines.push(fit(
                    Line::styled(
                        format!(
                            "{}: {}{total} keys, {} changed; stopped {}",
                            last.table,
                            last.rows_done,
                            last.rows_updated,
                            crate::ui::text::clock(app.clock())
                        ),
                        theme::dim(),
                    ),
                    width,
                ));
            }
            if let Some(reason) = &app.progress.throttle {
                lines.push(fit(Line::styled(reason.clone(), theme::danger()), width));
            }
            Paragraph::new(lines).render(inner, buf);
            return;
        };
        let [gauge, text, scale, spark] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(4),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(inner);
        let unit = if kind == "verify" { "rows" } else { "keys" };
        let label = match (b.rows_total, b.percent()) {
            (Some(t), Some(p)) => format!("{} {} / ~{t} {unit}  {p:.1}%", b.table, b.rows_done),
            _ => format!("{} {} {unit}", b.table, b.rows_done),
        };
        if b.workers.len() > 1 {
            // Several workers: the bar cut into one segment per worker.
            let label = format!("{label}  ({} workers)", b.workers.len());
            super::segments::Segments {
                shares: &b.workers,
                label: &crate::ui::text::ellipsize(&label, width),
            }
            .render(gauge, buf);
        } else {
            Gauge::default()
                .gauge_style(theme::ok())
                .ratio((b.percent().unwrap_or(0.0) / 100.0).clamp(0.0, 1.0))
                .label(crate::ui::text::ellipsize(&label, width))
                .render(gauge, buf);
        }
        let still = still_reason(app);
        let per_sec = app.rows_per_sec();
        // The state of the pace first: it is the line that matters.
        let pace = match (&still, &app.progress.throttle) {
            (Some(r), Some(_)) if app.held_by_limit() => {
                Line::styled(format!("THROTTLED: {r}"), theme::danger())
            }
            (Some(r), _) => Line::styled(format!("nothing moves: {r}"), theme::warn()),
            (None, Some(t)) => Line::styled(t.clone(), theme::paced()),
            (None, None) => Line::styled("full speed", theme::ok()),
        };
        let eta = match (&still, app.eta()) {
            (Some(r), _) if app.held_by_limit() => format!("ETA — (throttled: {r})"),
            (Some(r), _) => format!("ETA — ({r})"),
            (None, Some(e)) => format!("ETA {}", short_duration(e)),
            (None, None) => "ETA —".into(),
        };
        let mut lines = vec![
            pace,
            Line::from(vec![
                Span::styled(format!("{} {unit}/s", rate(per_sec)), theme::strong()),
                Span::raw(format!("  {eta}")),
            ]),
        ];
        match kind {
            "verify" => lines.push(Line::raw(format!(
                "{} chunks compared, chunk {} rows; mismatches are listed when it ends",
                b.batches, b.batch_size
            ))),
            _ => {
                let sizing = if app.progress.batch_override.is_some() {
                    "operator"
                } else {
                    "auto"
                };
                let batch_style = if b.last_batch > b.target_batch * 2 {
                    theme::warn()
                } else {
                    theme::normal()
                };
                lines.push(Line::raw(format!(
                    "{} {}, {} batches",
                    b.rows_updated,
                    if kind == "copy_rows" {
                        "rows copied"
                    } else {
                        "rows changed"
                    },
                    b.batches
                )));
                lines.push(Line::from(vec![
                    Span::raw(format!("batch {} ({sizing}) ", b.batch_size)),
                    Span::styled(short_duration(b.last_batch), batch_style),
                    Span::raw(format!("/{} target", short_duration(b.target_batch))),
                ]));
            }
        }
        let lines: Vec<Line> = lines.into_iter().map(|l| fit(l, width)).collect();
        Paragraph::new(lines).render(text, buf);
        let points = spark.width as usize;
        let data: Vec<Option<u64>> = app
            .rate_history
            .iter()
            .skip(app.rate_history.len().saturating_sub(points))
            .copied()
            .collect();
        let max = data.iter().flatten().copied().max().unwrap_or(0);
        let gaps = data.iter().any(Option::is_none);
        Line::styled(
            crate::ui::text::ellipsize(
                &format!(
                    "{unit}/s, last {}s, top = {}{}",
                    data.len(),
                    rate(max as f64),
                    if gaps { " · gap = nothing moved" } else { "" }
                ),
                width,
            ),
            theme::dim(),
        )
        .render(scale, buf);
        Sparkline::default()
            .data(data)
            .max(max.max(1))
            .absent_value_symbol(" ")
            .style(theme::ok())
            .render(spark, buf);
    }
}
