//! Activity pane: tps, rollbacks/s, sessions, long transactions (they stall
//! concurrent index builds and validation) and the canary probe.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::engine::events::short_duration;
use crate::ui::app::{App, Pane};
use crate::ui::panes::frame::{framed, stale_title};
use crate::ui::text::fit;
use crate::ui::theme;

/// The activity pane.
pub struct ActivityPane<'a>(pub &'a App);

impl Widget for ActivityPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let s = &app.monitor.sample;
        let inner = framed(app, Pane::Activity, stale_title("Activity", app), area, buf);
        let mut lines = vec![Line::from(vec![
            Span::raw(format!("{:.0} tps   ", s.tps)),
            Span::styled(
                format!("{:.1} rollbacks/s", s.rollbacks_per_sec),
                theme::against(s.rollbacks_per_sec, None, app.abort_limits().rollback_rate),
            ),
            Span::raw(format!(
                "   {} active, {} idle in transaction",
                s.active, s.idle_in_xact
            )),
        ])];
        match &s.probe {
            Some(p) => {
                let target = app.throttle().probe_latency.map(|d| d.0.as_secs_f64());
                lines.push(Line::from(vec![
                    Span::raw("probe p50 "),
                    Span::raw(short_duration(p.p50)),
                    Span::raw("  p95 "),
                    Span::styled(
                        short_duration(p.p95),
                        theme::against(p.p95.as_secs_f64(), target, None),
                    ),
                    Span::raw(format!(
                        "  max {}  ({} reads",
                        short_duration(p.max),
                        p.samples
                    )),
                    Span::raw(if p.errors > 0 {
                        format!(", {} failed)", p.errors)
                    } else {
                        ")".into()
                    }),
                ]));
            }
            None => lines.push(Line::styled(
                "probe: idle (no table in focus; it samples during batched steps)",
                theme::dim(),
            )),
        }
        if let Some(t) = &s.table {
            lines.push(Line::styled(
                format!(
                    "{}: {} dead tuples{}",
                    t.table,
                    t.dead_tuples,
                    t.total_bytes
                        .map(|b| format!(", {}", crate::plan::units::Size(b.max(0) as u64)))
                        .unwrap_or_default()
                ),
                theme::dim(),
            ));
        }
        if s.open_xacts.is_empty() {
            lines.push(Line::styled("no open transactions", theme::dim()));
        }
        for x in &s.open_xacts {
            // cutover's sessions connect as application "cutover".
            let ours = x.application == "cutover";
            let style = if ours {
                theme::ours()
            } else if x.age.as_secs() > 60 {
                theme::warn()
            } else {
                theme::normal()
            };
            lines.push(Line::styled(
                format!(
                    "pid {}{} {} {} xmin age {}  {}",
                    x.pid,
                    if ours { " (cutover)" } else { "" },
                    x.state,
                    short_duration(x.age),
                    x.xmin_age.map_or("-".into(), |a| a.to_string()),
                    x.query.replace('\n', " ")
                ),
                style,
            ));
        }
        lines.push(Line::styled(
            "tps and rollbacks/s are database-wide, cutover's own included",
            theme::dim(),
        ));
        let width = inner.width as usize;
        let lines: Vec<Line> = lines.into_iter().map(|l| fit(l, width)).collect();
        Paragraph::new(lines).render(inner, buf);
    }
}
