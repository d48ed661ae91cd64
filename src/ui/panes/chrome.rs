//! Header, footer (the keys that apply now) and dialogs.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use crate::engine::progress::RunState;
use crate::ui::app::{App, Modal};
use crate::ui::keys::BINDINGS;
use crate::ui::theme;

/// The header line.
pub struct Header<'a>(pub &'a App);

fn state_text(app: &App) -> (String, ratatui::style::Style) {
    let p = &app.progress;
    let text = match p.state {
        RunState::Starting => "STARTING".to_string(),
        RunState::Running if p.throttle.is_some() => "THROTTLED".to_string(),
        RunState::Running => "RUNNING".to_string(),
        RunState::WaitingGate => "WAITING AT GATE".to_string(),
        RunState::Reconnecting => "RECONNECTING".to_string(),
        RunState::Paused => "PAUSED".to_string(),
        RunState::Aborting => "ABORTING".to_string(),
        RunState::Aborted => "ABORTED".to_string(),
        RunState::Failed => "FAILED".to_string(),
        RunState::Finished => "FINISHED".to_string(),
        RunState::Detached => "DETACHED".to_string(),
        RunState::RollingBack => "ROLLING BACK".to_string(),
        RunState::RolledBack => "ROLLED BACK".to_string(),
    };
    let style = match p.state {
        RunState::Aborted | RunState::Failed | RunState::Aborting => theme::danger(),
        RunState::WaitingGate | RunState::Paused | RunState::RollingBack => theme::warn(),
        RunState::Running if p.throttle.is_some() => theme::warn(),
        RunState::Finished | RunState::RolledBack => theme::ok(),
        _ => theme::strong(),
    };
    (text, style)
}

impl Widget for Header<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let (state, style) = state_text(app);
        // The state first: it must survive the narrowest terminal.
        let mut spans = vec![
            Span::styled(" cutover ", theme::strong()),
            Span::styled(state, style),
        ];
        if let Some(id) = app.progress.run_id {
            spans.push(Span::raw(format!(" · run #{id}")));
        }
        spans.push(Span::raw(format!(
            " · {} · {}",
            app.plan.name, app.database
        )));
        Line::from(spans).render(area, buf);
    }
}

/// The footer: only the keys that apply now.
pub struct Footer<'a>(pub &'a App);

impl Widget for Footer<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let mut spans = Vec::new();
        let extra = match &app.modal {
            Modal::ConfirmAbort | Modal::ConfirmQuit => Some("y confirm · n/Esc cancel"),
            Modal::ConfirmRollback { .. } | Modal::ConfirmIrreversible { .. } => {
                Some("type the table name · Enter confirm · Esc cancel")
            }
            Modal::Help => Some("? or Esc close help"),
            Modal::None => None,
        };
        if let Some(text) = extra {
            spans.push(Span::styled(format!(" {text}"), theme::strong()));
        } else {
            for b in BINDINGS.iter().filter(|b| (b.applies)(app)) {
                spans.push(Span::styled(format!(" {}", b.keys), theme::strong()));
                spans.push(Span::styled(format!(" {} ", b.what), theme::dim()));
            }
        }
        if let Some(reason) = &app.progress.reason
            && !app.engine_running()
        {
            spans.push(Span::styled(format!(" · {reason}"), theme::danger()));
        }
        Line::from(spans).render(area, buf);
    }
}

/// A centred dialog over the screen.
pub struct Dialog<'a>(pub &'a App);

fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

impl Widget for Dialog<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let (title, lines): (&str, Vec<Line>) = match &app.modal {
            Modal::None => return,
            Modal::ConfirmAbort => (
                " Abort? ",
                vec![
                    Line::raw("Cancel the running statement, clean up the step, stop."),
                    Line::raw("Nothing done so far is undone; `cutover run` resumes."),
                    Line::raw(""),
                    Line::styled("Abort the run? (y/n)", theme::danger()),
                ],
            ),
            Modal::ConfirmQuit => (
                " Quit? ",
                vec![
                    Line::raw("A step is running. Quitting pauses the run at the next"),
                    Line::raw("safe point (never mid-batch) and detaches; `cutover run`"),
                    Line::raw("resumes it."),
                    Line::raw(""),
                    Line::styled("Pause and quit? (y/n)", theme::warn()),
                ],
            ),
            Modal::ConfirmIrreversible { typed } => (
                " Irreversible phase ",
                vec![
                    Line::styled(
                        format!(
                            "Advancing starts {}, which cannot be rolled back.",
                            app.progress
                                .gate
                                .as_ref()
                                .map_or("the next phase", |g| g.name.as_str())
                        ),
                        theme::danger(),
                    ),
                    Line::raw(""),
                    Line::raw(format!(
                        "Type {} and press Enter to go on:",
                        app.confirm_word
                    )),
                    Line::styled(format!("> {typed}▏"), theme::strong()),
                ],
            ),
            Modal::ConfirmRollback {
                undo,
                typed,
                refused,
            } => {
                let mut lines = Vec::new();
                if let Some(why) = refused {
                    lines.push(Line::styled("Rollback refused:", theme::danger()));
                    lines.push(Line::raw(why.clone()));
                    lines.push(Line::raw(""));
                    lines.push(Line::styled("Esc to close", theme::dim()));
                } else {
                    lines.push(Line::raw("Undo these steps, last first:"));
                    for u in undo {
                        lines.push(Line::raw(format!("  {u}")));
                    }
                    lines.push(Line::raw(""));
                    lines.push(Line::raw(format!(
                        "Type {} and press Enter to roll back:",
                        app.confirm_word
                    )));
                    lines.push(Line::styled(format!("> {typed}▏"), theme::strong()));
                }
                (" Roll back ", lines)
            }
            Modal::Help => {
                let mut lines: Vec<Line> = BINDINGS
                    .iter()
                    .map(|b| {
                        Line::from(vec![
                            Span::styled(format!("{:>9}  ", b.keys), theme::strong()),
                            Span::raw(b.what),
                        ])
                    })
                    .collect();
                lines.push(Line::from(vec![
                    Span::styled(format!("{:>9}  ", "Ctrl-C"), theme::strong()),
                    Span::raw("pause and detach; twice: abort now"),
                ]));
                lines.push(Line::raw(""));
                lines.push(Line::styled(
                    format!("log file: {}", crate::ui::log_path().display()),
                    theme::dim(),
                ));
                (" Keys ", lines)
            }
        };
        let height = lines.len() as u16 + 2;
        let width = lines
            .iter()
            .map(|l| l.width() as u16)
            .max()
            .unwrap_or(20)
            .max(30)
            + 4;
        let rect = centred(area, width, height);
        Clear.render(rect, buf);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title))
            .render(rect, buf);
    }
}
