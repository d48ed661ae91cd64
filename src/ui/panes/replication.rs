//! Replication pane: each standby's lag (seconds and bytes) against the
//! throttle and abort limits, a lag chart, and slots' retained WAL.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Widget};

use crate::engine::events::short_duration;
use crate::plan::model::{AbortLimits, Throttle};
use crate::plan::units::{HumanDuration, Size};
use crate::ui::app::{App, Pane};
use crate::ui::panes::frame::{framed, stale_title};
use crate::ui::text::fit;
use crate::ui::theme;

/// The `[throttle]` and `[abort]` lag limits in words: the replicas', then
/// a move's (its subscription's apply lag and its slot's retained WAL).
pub fn limits_line(t: &Throttle, a: &AbortLimits) -> String {
    let either = |a: Option<String>, b: Option<String>| match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a} or {b}")),
        (a, b) => a.or(b),
    };
    let time = |d: Option<HumanDuration>| d.map(|d| d.to_string());
    let size = |b: Option<Size>| b.map(|b| b.to_string());
    let move_abort = [
        either(time(a.apply_lag), size(a.apply_lag_bytes)).map(|x| format!("above {x} apply lag")),
        size(a.slot_retained_wal).map(|x| format!("when the slot retains over {x} of WAL")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let parts: Vec<String> = [
        either(time(t.replication_lag), size(t.replication_lag_bytes))
            .map(|h| format!("batches hold above {h} behind")),
        either(time(a.replication_lag), size(a.replication_lag_bytes))
            .map(|x| format!("the run aborts above {x}")),
        either(time(t.apply_lag), size(t.apply_lag_bytes))
            .map(|h| format!("the compare and switchover hold above {h} apply lag")),
        (!move_abort.is_empty()).then(|| format!("the run aborts {}", move_abort.join(", or "))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        return "no lag limits: set [throttle] replication_lag and [abort] replication_lag".into();
    }
    parts.join(" · ")
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
        let limits = limits_line(t, a);
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

#[cfg(test)]
mod tests {
    use super::limits_line;
    use crate::plan::model::{AbortLimits, Throttle};
    use crate::plan::units::{HumanDuration, Size};
    use std::time::Duration;

    fn secs(n: u64) -> Option<HumanDuration> {
        Some(HumanDuration(Duration::from_secs(n)))
    }

    #[test]
    fn no_limits_at_all_says_which_to_set() {
        let line = limits_line(&Throttle::default(), &AbortLimits::default());
        assert!(line.starts_with("no lag limits"), "{line}");
    }

    #[test]
    fn replica_limits_read_as_before() {
        let t = Throttle {
            replication_lag: secs(5),
            ..Throttle::default()
        };
        let a = AbortLimits {
            replication_lag: secs(60),
            ..AbortLimits::default()
        };
        assert_eq!(
            limits_line(&t, &a),
            "batches hold above 5s behind · the run aborts above 1m"
        );
    }

    #[test]
    fn a_moves_limits_are_named_not_called_missing() {
        let t = Throttle {
            apply_lag: secs(2),
            apply_lag_bytes: Some(Size(64 * 1024 * 1024)),
            ..Throttle::default()
        };
        let a = AbortLimits {
            apply_lag: secs(30),
            apply_lag_bytes: Some(Size(512 * 1024 * 1024)),
            slot_retained_wal: Some(Size(2 * 1024 * 1024 * 1024)),
            ..AbortLimits::default()
        };
        let line = limits_line(&t, &a);
        assert!(!line.contains("no lag limits"), "{line}");
        for (setting, shown) in [
            ("[throttle] apply_lag", t.apply_lag.map(|d| d.to_string())),
            (
                "[throttle] apply_lag_bytes",
                t.apply_lag_bytes.map(|b| b.to_string()),
            ),
            ("[abort] apply_lag", a.apply_lag.map(|d| d.to_string())),
            (
                "[abort] apply_lag_bytes",
                a.apply_lag_bytes.map(|b| b.to_string()),
            ),
            (
                "[abort] slot_retained_wal",
                a.slot_retained_wal.map(|b| b.to_string()),
            ),
        ] {
            let shown = shown.expect("set above");
            assert!(
                line.contains(&shown),
                "{setting} ({shown}) missing from: {line}"
            );
        }
    }

    #[test]
    fn the_slot_limit_alone_is_named() {
        let a = AbortLimits {
            slot_retained_wal: Some(Size(4_000_000_000)),
            ..AbortLimits::default()
        };
        let line = limits_line(&Throttle::default(), &a);
        assert!(line.contains("when the slot retains over"), "{line}");
        assert!(!line.contains("no lag limits"), "{line}");
    }
}
