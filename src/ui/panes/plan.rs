//! Plan pane: phases → steps with status glyphs, elapsed times, the current
//! step highlighted, irreversible phases marked, and an overall gauge that
//! counts steps as `cutover status` does. Agrees with the journal: a
//! released gate shows done, the gate waited at shows ⏸.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Widget};

use crate::engine::events::short_duration;
use crate::engine::progress::RunState;
use crate::engine::progress::StepStatus;
use crate::ui::app::App;
use crate::ui::now;
use crate::ui::text::fit;
use crate::ui::theme;

/// The plan pane.
pub struct PlanPane<'a>(pub &'a App);

/// The glyph and style of a step status (the help's legend shows these).
pub fn glyph(status: StepStatus) -> (&'static str, ratatui::style::Style) {
    match status {
        StepStatus::Pending => ("·", theme::dim()),
        StepStatus::Running => ("▶", theme::strong()),
        StepStatus::Done => ("✓", theme::ok()),
        StepStatus::Failed => ("✗", theme::danger()),
        StepStatus::RolledBack => ("↺", theme::warn()),
    }
}

/// Marks an irreversible phase.
pub const IRREVERSIBLE: &str = "⚠ IRREVERSIBLE";

/// The plan as lines, and the index of the current line and of the line
/// that must stay in view with it (the next irreversible phase).
fn plan_lines(app: &App) -> (Vec<Line<'static>>, usize, Option<usize>) {
    let waiting = app.engine_running() && app.progress.state == RunState::WaitingGate;
    let gate = app.progress.gate.as_ref().filter(|_| waiting);
    let lock_wait = now::lock_wait(app);
    let mut lines = Vec::new();
    let mut current = 0;
    let mut keep = None;
    for (pi, phase) in app.plan.phases.iter().enumerate() {
        let statuses = app.progress.statuses.get(pi);
        let status_of = |si: usize| {
            statuses
                .and_then(|p| p.get(si))
                .copied()
                .unwrap_or(StepStatus::Pending)
        };
        // A phase's own gate waits before any of its steps started.
        let phase_gate = gate.is_some_and(|g| {
            g.phase == pi
                && (0..phase.steps.len())
                    .all(|si| matches!(status_of(si), StepStatus::Pending | StepStatus::RolledBack))
        });
        let mut spans = vec![Span::styled(phase.name().to_string(), theme::strong())];
        if phase.irreversible {
            spans.push(Span::styled(format!("  {IRREVERSIBLE}"), theme::danger()));
        }
        if phase_gate {
            spans.push(Span::styled("  ⏸ waiting at its gate (n)", theme::warn()));
            current = lines.len();
        }
        if phase.irreversible
            && keep.is_none()
            && (0..phase.steps.len()).any(|si| status_of(si) != StepStatus::Done)
        {
            keep = Some(lines.len());
        }
        lines.push(Line::from(spans));
        for (si, step) in phase.steps.iter().enumerate() {
            let status = status_of(si);
            let here = app.progress.position == Some((pi, si)) && app.engine_running();
            let (mut g, mut style) = glyph(status);
            // Only the gate step being waited at shows ⏸; a released one
            // is done like any other step.
            let waiting_here = here
                && status == StepStatus::Running
                && step.get_ref().kind() == "gate"
                && gate.is_some_and(|g| g.phase == pi);
            if waiting_here {
                (g, style) = ("⏸", theme::warn());
            }
            let current_step = here && !phase_gate && gate.is_none_or(|_| waiting_here);
            if current_step {
                current = lines.len();
            }
            let name_style = if current_step {
                theme::strong()
            } else {
                theme::normal()
            };
            let mut spans = vec![
                Span::raw(if current_step { " ▸ " } else { "   " }),
                Span::styled(g, style),
                Span::raw(" "),
                Span::styled(step.get_ref().display_name(), name_style),
            ];
            // A lock wait comes right after the name, before anything a
            // narrow pane would cut first.
            match (&lock_wait, current_step) {
                (Some(w), true) => spans.push(Span::styled(
                    match w.retry {
                        Some((n, of)) => format!("  WAITING FOR LOCK (retry {n}/{of})"),
                        None => "  WAITING FOR LOCK".to_string(),
                    },
                    theme::danger(),
                )),
                _ => spans.push(Span::styled(
                    format!("  {}", step.get_ref().kind()),
                    theme::dim(),
                )),
            }
            if let Some(e) = app.step_elapsed(pi, si) {
                spans.push(Span::styled(
                    format!("  {}", short_duration(e)),
                    theme::dim(),
                ));
            }
            lines.push(Line::from(spans));
        }
    }
    (lines, current, keep.filter(|k| *k >= current))
}

/// The first line shown: one line of context above the current line, and
/// the next irreversible phase in view with it when both fit.
fn scroll_offset(current: usize, keep: Option<usize>, height: usize, total: usize) -> usize {
    if total <= height || height == 0 {
        return 0;
    }
    let mut offset = current.saturating_sub(1);
    if let Some(k) = keep
        && k >= offset + height
        && k - current < height
    {
        offset = k + 1 - height;
    }
    offset.min(total - height)
}

impl Widget for PlanPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let block = ratatui::widgets::Block::bordered().title(" Plan ");
        let block_inner = block.inner(area);
        block.render(area, buf);
        let [list, gauge] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(block_inner);
        let (lines, current, keep) = plan_lines(app);
        let height = list.height as usize;
        let offset = scroll_offset(current, keep, height, lines.len());
        let width = list.width as usize;
        let shown: Vec<Line> = lines
            .into_iter()
            .skip(offset)
            .take(height)
            .map(|l| fit(l, width))
            .collect();
        Paragraph::new(shown).render(list, buf);
        let (done, total) = app.steps_done();
        let ratio = if total == 0 {
            0.0
        } else {
            done as f64 / total as f64
        };
        Gauge::default()
            .gauge_style(theme::ok())
            .ratio(ratio.clamp(0.0, 1.0))
            .label(format!("{done}/{total} steps done"))
            .render(gauge, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::scroll_offset;

    #[test]
    fn the_current_step_and_the_irreversible_phase_stay_in_view() {
        // Everything fits: no scrolling.
        assert_eq!(scroll_offset(5, Some(8), 12, 10), 0);
        // Current line 6, irreversible header at 8, 5 rows: 5..=9 shown.
        assert_eq!(scroll_offset(6, Some(8), 5, 10), 5);
        // Header at 9 needs the window to start at 6, the current line.
        assert_eq!(scroll_offset(6, Some(9), 4, 12), 6);
        // Too far apart: the current line wins, with one line above it.
        assert_eq!(scroll_offset(2, Some(9), 4, 12), 1);
    }
}
