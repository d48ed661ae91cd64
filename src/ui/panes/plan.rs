//! Plan pane: phases → steps with status glyphs, elapsed times, the current
//! step highlighted, irreversible phases marked, and an overall gauge.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Widget};

use crate::engine::events::short_duration;
use crate::engine::progress::RunState;
use crate::journal::StepStatus;
use crate::ui::app::App;
use crate::ui::theme;

/// The plan pane.
pub struct PlanPane<'a>(pub &'a App);

fn glyph(status: StepStatus) -> (&'static str, ratatui::style::Style) {
    match status {
        StepStatus::Pending => ("·", theme::dim()),
        StepStatus::Running => ("▶", theme::strong()),
        StepStatus::Done => ("✓", theme::ok()),
        StepStatus::Failed => ("✗", theme::danger()),
        StepStatus::RolledBack => ("↺", theme::warn()),
    }
}

impl Widget for PlanPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let block = Block::bordered().title(" Plan ");
        let inner = block.inner(area);
        block.render(area, buf);
        let [list, gauge] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
        let mut lines = Vec::new();
        for (pi, phase) in app.plan.phases.iter().enumerate() {
            let gate_here = app.progress.gate.as_ref().is_some_and(|g| g.phase == pi)
                && app.progress.state == RunState::WaitingGate;
            let mut spans = vec![Span::styled(phase.name().to_string(), theme::strong())];
            if phase.irreversible {
                spans.push(Span::styled(" [irreversible]", theme::danger()));
            }
            if gate_here && app.progress.position.is_none_or(|(p, s)| p == pi && s == 0) {
                spans.push(Span::styled("  ⏸ gate", theme::warn()));
            }
            lines.push(Line::from(spans));
            for (si, step) in phase.steps.iter().enumerate() {
                let status = app
                    .progress
                    .statuses
                    .get(pi)
                    .and_then(|p| p.get(si))
                    .copied()
                    .unwrap_or(StepStatus::Pending);
                let current = app.progress.position == Some((pi, si)) && app.engine_running();
                let (mut g, mut style) = glyph(status);
                let waiting =
                    current && app.progress.gate.is_some() && step.get_ref().kind() == "gate";
                if waiting {
                    (g, style) = ("⏸", theme::warn());
                }
                let name_style = if current {
                    theme::strong()
                } else {
                    theme::normal()
                };
                let mut spans = vec![
                    Span::raw(if current { " ▸ " } else { "   " }),
                    Span::styled(g, style),
                    Span::raw(" "),
                    Span::styled(step.get_ref().display_name(), name_style),
                    Span::styled(format!("  {}", step.get_ref().kind()), theme::dim()),
                ];
                if let Some(e) = app.step_elapsed(pi, si) {
                    spans.push(Span::styled(
                        format!("  {}", short_duration(e)),
                        theme::dim(),
                    ));
                }
                lines.push(Line::from(spans));
            }
        }
        // Keep the current step in view on short terminals.
        let current_line = app.progress.position.map_or(0, |(pi, si)| {
            app.plan.phases[..pi.min(app.plan.phases.len())]
                .iter()
                .map(|p| p.steps.len() + 1)
                .sum::<usize>()
                + si
                + 1
        });
        let offset = current_line.saturating_sub(list.height.saturating_sub(2) as usize);
        Paragraph::new(lines)
            .scroll((offset as u16, 0))
            .render(list, buf);
        let total: usize = app.plan.phases.iter().map(|p| p.steps.len()).sum();
        let done = app
            .progress
            .statuses
            .iter()
            .flatten()
            .filter(|s| **s == StepStatus::Done)
            .count();
        let ratio = if total == 0 {
            0.0
        } else {
            done as f64 / total as f64
        };
        Gauge::default()
            .gauge_style(theme::ok())
            .ratio(ratio.clamp(0.0, 1.0))
            .label(format!("{done}/{total} steps"))
            .render(gauge, buf);
    }
}
