//! Replication pane: each standby's lag (seconds and bytes) against the
//! throttle and abort limits, a lag chart, and slots' retained WAL.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Widget};

use crate::engine::events::short_duration;
use crate::plan::units::Size;
use crate::ui::app::{App, Pane};
use crate::ui::panes::frame::{framed, stale_title};
use crate::ui::text::fit;
use crate::ui::theme;

/// The `[throttle]` and `[abort]` lag limits in words.
pub fn limits_line(
    hold_s: Option<String>,
    hold_b: Option<String>,
    abort_s: Option<String>,
    abort_b: Option<String>,
) -> String {
    let either = |a: Option<String>, b: Option<String>| match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a} or {b}")),
        (a, b) => a.or(b),
    };
    match (either(hold_s, hold_b), either(abort_s, abort_b)) {
        (None, None) => {
            "no lag limits: set [throttle] replication_lag and [abort] replication_lag".into()
        }
        (hold, abort) => [
            hold.map(|h| format!("batches hold above {h} behind")),
            abort.map(|a| format!("the run aborts above {a}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · "),
    }
}

/// The replication pane.
pub struct ReplicationPane<'a>(pub &'a App);

impl Widget for ReplicationPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let inner = framed(
            app,
            Pane::Replication,
            stale_title("Replication", app),
            area,
            buf,
        );
        let s = &app.monitor.sample;
        let (t, a) = (app.throttle(), app.abort_limits());
        let secs = |d: Option<crate::plan::units::HumanDuration>| d.map(|d| d.0.as_secs_f64());
        let bytes = |b: Option<Size>| b.map(|b| b.0 as f64);
        let mut lines = Vec::new();
        if s.seq == 0 {
            lines.push(Line::styled("waiting for the first sample…", theme::dim()));
        } else if s.replicas.is_empty() && s.own_replay_delay.is_none() {
            lines.push(Line::styled("no replicas", theme::dim()));
        } else if !s.replicas.is_empty() {
            lines.push(Line::styled(
                format!(
                    "{:<12} {:>10}  {:>12}  state",
                    "replica", "replay lag", "WAL behind"
                ),
                theme::dim(),
            ));
        }
        for r in &s.replicas {
            // A role without pg_read_all_stats sees the standby but not its
            // state or positions: its lag would read 0 (`check` says so too).
            if r.state.is_empty() {
                lines.push(Line::from(vec![
                    Span::raw(format!("{:<12} ", r.name)),
                    Span::styled("lag hidden from this role: GRANT pg_monitor", theme::warn()),
                ]));
                continue;
            }
            let lag = r.replay_lag.as_secs_f64();
            lines.push(Line::from(vec![
                Span::raw(format!("{:<12} ", r.name)),
                Span::styled(
                    format!("{:>10}", short_duration(r.replay_lag)),
                    theme::against(lag, secs(t.replication_lag), secs(a.replication_lag)),
                ),
                Span::raw("  "),
                Span::styled(
                    format!("{:>12}", Size(r.replay_bytes.max(0) as u64).to_string()),
                    theme::against(
                        r.replay_bytes as f64,
                        bytes(t.replication_lag_bytes),
                        bytes(a.replication_lag_bytes),
                    ),
                ),
                Span::styled(format!("  {}", r.state), theme::dim()),
            ]));
        }
        if let Some(d) = s.own_replay_delay {
            lines.push(Line::raw(format!(
                "this standby replays {} behind",
                short_duration(d)
            )));
        }
        for slot in &s.slots {
            lines.push(Line::from(vec![
                Span::raw(format!("slot {} ({}) retains ", slot.name, slot.kind)),
                Span::styled(
                    Size(slot.retained_bytes.max(0) as u64).to_string(),
                    theme::against(
                        slot.retained_bytes as f64,
                        bytes(t.replication_lag_bytes),
                        bytes(a.replication_lag_bytes),
                    ),
                ),
            ]));
        }
        if let Some(sub) = &s.subscription {
            lines.extend(super::subscription::lines(sub, t, a));
        }
        let limits = limits_line(
            t.replication_lag.map(|d| d.to_string()),
            t.replication_lag_bytes.map(|b| b.to_string()),
            a.replication_lag.map(|d| d.to_string()),
            a.replication_lag_bytes.map(|b| b.to_string()),
        );
        lines.push(Line::styled(limits, theme::dim()));
        let text_height = (lines.len() as u16).min(inner.height);
        let [text, chart] =
            Layout::vertical([Constraint::Length(text_height), Constraint::Min(0)]).areas(inner);
        let width = text.width as usize;
        let lines: Vec<Line> = lines.into_iter().map(|l| fit(l, width)).collect();
        Paragraph::new(lines).render(text, buf);
        if chart.height < 4 {
            return;
        }
        let now = std::time::Instant::now();
        let points = app.monitor.history.lag_seconds.points(now);
        let mut ymax = points.iter().map(|p| p.1).fold(1.0f64, f64::max);
        let xmin = points.first().map_or(-60.0, |p| p.0.min(-60.0));
        let mut sets = vec![
            Dataset::default()
                .name("lag s")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(theme::ok())
                .data(&points),
        ];
        let throttle_line;
        if let Some(tl) = secs(t.replication_lag) {
            ymax = ymax.max(tl * 1.2);
            throttle_line = [(xmin, tl), (0.0, tl)];
            sets.push(
                Dataset::default()
                    .name("throttle")
                    .graph_type(GraphType::Line)
                    .style(ratatui::style::Style::default().fg(Color::Yellow))
                    .data(&throttle_line),
            );
        }
        let abort_line;
        if let Some(al) = secs(a.replication_lag) {
            ymax = ymax.max(al * 1.1);
            abort_line = [(xmin, al), (0.0, al)];
            sets.push(
                Dataset::default()
                    .name("abort")
                    .graph_type(GraphType::Line)
                    .style(ratatui::style::Style::default().fg(Color::Red))
                    .data(&abort_line),
            );
        }
        Chart::new(sets)
            .x_axis(Axis::default().bounds([xmin, 0.0]))
            .y_axis(
                Axis::default()
                    .bounds([0.0, ymax])
                    .labels(["0".to_string(), format!("{ymax:.0}s")]),
            )
            .render(chart, buf);
    }
}
