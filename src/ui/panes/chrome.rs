//! Header, footer (the keys that apply now) and dialogs.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use crate::engine::progress::RunState;
use crate::engine::progress::StepStatus;
use crate::ui::action::Action;
use crate::ui::app::{App, Inspect, Modal};
use crate::ui::keys::BINDINGS;
use crate::ui::panes::plan::{IRREVERSIBLE, glyph};
use crate::ui::text::fit;
use crate::ui::{locking, now, theme};

/// What the glyphs and colours mean, for the help.
fn legend() -> Vec<Line<'static>> {
    let mut glyphs = vec![Span::styled("  steps: ", theme::strong())];
    for (status, what) in [
        (StepStatus::Pending, "pending"),
        (StepStatus::Running, "running"),
        (StepStatus::Done, "done"),
        (StepStatus::Failed, "failed"),
        (StepStatus::RolledBack, "rolled back"),
    ] {
        let (g, style) = glyph(status);
        glyphs.push(Span::styled(g, style));
        glyphs.push(Span::raw(format!(" {what}  ")));
    }
    glyphs.push(Span::styled("⏸", theme::warn()));
    glyphs.push(Span::raw(" gate waiting  ▸ current"));
    vec![
        Line::styled("Legend", theme::strong()),
        Line::from(glyphs),
        Line::from(vec![
            Span::styled(format!("  {IRREVERSIBLE}"), theme::danger()),
            Span::raw(" a phase that cannot be rolled back (typed confirmation)"),
        ]),
        Line::from(vec![
            Span::raw("  "),
            Span::styled("red", theme::danger()),
            Span::raw(" over a throttle or abort limit, a root blocker, failure   "),
        ]),
        Line::from(vec![
            Span::raw("  "),
            Span::styled("amber", theme::warn()),
            Span::raw(" past half an abort limit, paused, waiting, warnings"),
        ]),
        Line::from(vec![
            Span::raw("  "),
            Span::styled("blue", theme::paced()),
            Span::raw(" pacing you asked for (max_rows_per_second, gentle mode)"),
        ]),
        Line::from(vec![
            Span::raw("  "),
            Span::styled("cyan", theme::ours()),
            Span::raw(" cutover's own sessions; a cyan border has focus (tab)"),
        ]),
        Line::from(vec![
            Span::raw("  "),
            Span::styled("grey", theme::dim()),
            Span::raw(" secondary; \"stale since\" = no new sample since then"),
        ]),
        Line::raw("  sparkline: rows/s per second, scale above it; blank = nothing moved"),
    ]
}

/// The header line.
pub struct Header<'a>(pub &'a App);

fn state_text(app: &App) -> (String, ratatui::style::Style) {
    let p = &app.progress;
    if let Some(wait) = now::lock_wait(app) {
        return (wait.headline(), theme::danger());
    }
    let text = match p.state {
        RunState::Starting => "STARTING".to_string(),
        RunState::Running if app.held_by_limit() => "THROTTLED".to_string(),
        RunState::Running if p.throttle.is_some() => "RUNNING (paced)".to_string(),
        RunState::Running => "RUNNING".to_string(),
        RunState::WaitingGate => match &p.gate {
            Some(g) if g.irreversible => "WAITING AT GATE (next: IRREVERSIBLE)".to_string(),
            _ => "WAITING AT GATE".to_string(),
        },
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
        RunState::Running if app.held_by_limit() => theme::danger(),
        RunState::Running if p.throttle.is_some() => theme::paced(),
        RunState::WaitingGate
        | RunState::Paused
        | RunState::RollingBack
        | RunState::Reconnecting => theme::warn(),
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
        if app.quitting && app.engine_running() {
            spans.push(Span::styled(
                " · detaching at the next safe point…",
                theme::warn(),
            ));
        }
        if let Some(id) = app.progress.run_id {
            spans.push(Span::raw(format!(" · run #{id}")));
        }
        // The stall budget and the worst wait cutover caused so far.
        let p = &app.progress;
        if let Some(budget) = p.stall_budget {
            let over = p.worst_stall > budget;
            spans.push(Span::styled(
                format!(
                    " · stall {} / {}",
                    crate::engine::events::short_duration(p.worst_stall),
                    crate::engine::events::short_duration(budget)
                ),
                if over { theme::danger() } else { theme::dim() },
            ));
        }
        spans.push(Span::raw(format!(
            " · {} · {}",
            app.plan.name, app.database
        )));
        fit(Line::from(spans), area.width as usize).render(area, buf);
    }
}

/// The footer: only the keys that apply now.
pub struct Footer<'a>(pub &'a App);

impl Widget for Footer<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let mut spans = Vec::new();
        let extra = match &app.modal {
            Modal::ConfirmAbort | Modal::ConfirmQuit | Modal::ConfirmSignal { .. } => {
                Some("y confirm · n/Esc cancel")
            }
            Modal::Inspect(_) => Some("Enter/Esc close"),
            Modal::ConfirmRollback { .. } | Modal::ConfirmIrreversible { .. } => {
                Some("type the table name · Enter confirm · Esc cancel")
            }
            Modal::Help => Some("? or Esc close help"),
            Modal::None => None,
        };
        if let Some(text) = extra {
            spans.push(Span::styled(format!(" {text}"), theme::strong()));
        } else {
            // Keys that apply, in the keymap's order; when they do not all
            // fit, the later ones give way, but help and quit always stay.
            let applying: Vec<_> = BINDINGS.iter().filter(|b| (b.applies)(app)).collect();
            let cost =
                |b: &crate::ui::keys::Binding| b.keys.chars().count() + b.what.chars().count() + 3;
            let kept_for_last: usize = applying
                .iter()
                .filter(|b| matches!(b.action, Action::Help | Action::Quit))
                .map(|b| cost(b))
                .sum();
            let mut room = (area.width as usize).saturating_sub(kept_for_last);
            for b in applying {
                let always = matches!(b.action, Action::Help | Action::Quit);
                if !always {
                    if cost(b) > room {
                        continue;
                    }
                    room -= cost(b);
                }
                spans.push(Span::styled(format!(" {}", b.keys), theme::strong()));
                spans.push(Span::styled(format!(" {} ", b.what), theme::dim()));
            }
        }
        if let Some(reason) = &app.progress.reason
            && !app.engine_running()
        {
            spans.push(Span::styled(format!(" · {reason}"), theme::danger()));
        }
        fit(Line::from(spans), area.width as usize).render(area, buf);
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
                if now::lock_wait(app).is_some() {
                    vec![
                        Line::raw("A statement is retrying its lock. Quitting stops at the"),
                        Line::raw("next retry and detaches; `cutover run` resumes it."),
                        Line::raw(""),
                        Line::styled("Stop retrying and quit? (y/n)", theme::warn()),
                    ]
                } else {
                    vec![
                        Line::raw("A step is running. Quitting pauses the run at the next"),
                        Line::raw("safe point (never mid-batch) and detaches; `cutover run`"),
                        Line::raw("resumes it."),
                        Line::raw(""),
                        Line::styled("Pause and quit? (y/n)", theme::warn()),
                    ]
                },
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
            Modal::ConfirmSignal { pid, terminate } => (
                if *terminate {
                    " End session? "
                } else {
                    " Cancel query? "
                },
                {
                    let mut lines: Vec<Line> = app
                        .lock_rows()
                        .iter()
                        .find(|r| r.pid == *pid)
                        .map(|r| vec![Line::raw(locking::session_line(r))])
                        .unwrap_or_default();
                    lines.push(Line::raw(if *terminate {
                        format!("pg_terminate_backend({pid}): its transaction rolls back and its connection closes.")
                    } else {
                        format!("pg_cancel_backend({pid}): its running statement is cancelled.")
                    }));
                    lines.push(Line::raw(""));
                    lines.push(Line::styled(
                        if *terminate {
                            format!("End session {pid}? (y/n)")
                        } else {
                            format!("Cancel the query of {pid}? (y/n)")
                        },
                        theme::danger(),
                    ));
                    lines
                },
            ),
            Modal::Inspect(Inspect::Session(pid)) => (
                " Session ",
                app.lock_rows()
                    .iter()
                    .find(|r| r.pid == *pid)
                    .map_or_else(
                        || vec![format!("session {pid} no longer waits or blocks")],
                        |r| r.describe(),
                    )
                    .into_iter()
                    .map(Line::raw)
                    .collect(),
            ),
            Modal::Inspect(Inspect::NowNext) => (
                " Now / next ",
                now::inspect_lines(app).into_iter().map(Line::raw).collect(),
            ),
            Modal::Help => {
                // Two keys a line, so keys and legend fit at 80×24.
                let key = |keys: &str, what: &str| {
                    vec![
                        Span::styled(format!("{keys:>13}  "), theme::strong()),
                        Span::raw(format!("{what:<22}")),
                    ]
                };
                let mut entries: Vec<Vec<Span>> =
                    BINDINGS.iter().map(|b| key(b.keys, b.what)).collect();
                entries.push(key("Home/g", "oldest log entry"));
                entries.push(key("Ctrl-C", "detach; twice: abort"));
                let mut lines: Vec<Line> = entries
                    .chunks(2)
                    .map(|pair| Line::from(pair.concat()))
                    .collect();
                lines.push(Line::raw(""));
                lines.extend(legend());
                lines.push(Line::styled(
                    format!("log file: {}", crate::report::log_file::path().display()),
                    theme::dim(),
                ));
                (" Keys ", lines)
            }
        };
        let width = lines
            .iter()
            .map(|l| l.width() as u16)
            .max()
            .unwrap_or(20)
            .max(30)
            + 4;
        let rect = centred(area, width, lines.len() as u16 + 2);
        // Wrapped rows past the bottom would vanish: say so instead.
        let inner_width = rect.width.saturating_sub(2).max(1) as usize;
        let rows: usize = lines
            .iter()
            .map(|l| l.width().max(1).div_ceil(inner_width))
            .sum();
        let rect = centred(area, width, rows as u16 + 2);
        let room = rect.height.saturating_sub(2) as usize;
        let mut lines = lines;
        if rows > room && room > 0 {
            let mut used = 0;
            let mut kept = Vec::new();
            for l in lines {
                let r = l.width().max(1).div_ceil(inner_width);
                if used + r > room.saturating_sub(1) {
                    break;
                }
                used += r;
                kept.push(l);
            }
            kept.push(Line::styled(
                "… (more than fits: enlarge the terminal)",
                theme::dim(),
            ));
            lines = kept;
        }
        Clear.render(rect, buf);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title))
            .render(rect, buf);
    }
}
