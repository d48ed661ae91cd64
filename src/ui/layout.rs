//! Where the panes go: everything at once on a large terminal; at 80×24 the
//! plan and backfill stay, the other panes share one tabbed area.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::app::{App, Pane};
use super::panes::activity::ActivityPane;
use super::panes::backfill::BackfillPane;
use super::panes::chrome::{Dialog, Footer, Header};
use super::panes::locks::LocksPane;
use super::panes::log::LogPane;
use super::panes::plan::PlanPane;
use super::panes::replication::ReplicationPane;
use super::theme;

/// Draws the whole cockpit.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let buf = frame.buffer_mut();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    Header(app).render(header, buf);
    if body.width >= 140 && body.height >= 38 {
        large(app, body, buf);
    } else {
        small(app, body, buf);
    }
    Footer(app).render(footer, buf);
    Dialog(app).render(body, buf);
}

fn pane(app: &App, which: Pane, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    match which {
        Pane::Backfill => BackfillPane(app).render(area, buf),
        Pane::Replication => ReplicationPane(app).render(area, buf),
        Pane::Locks => LocksPane(app).render(area, buf),
        Pane::Activity => ActivityPane(app).render(area, buf),
        Pane::Log => LogPane(app).render(area, buf),
    }
}

fn large(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(38), Constraint::Percentage(62)]).areas(area);
    let [plan, log] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(left);
    PlanPane(app).render(plan, buf);
    LogPane(app).render(log, buf);
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(10),
        Constraint::Percentage(45),
        Constraint::Min(6),
    ])
    .areas(right);
    BackfillPane(app).render(top, buf);
    ReplicationPane(app).render(middle, buf);
    let [locks, activity] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);
    LocksPane(app).render(locks, buf);
    ActivityPane(app).render(activity, buf);
}

fn small(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    let [top, tabs, detail] = Layout::vertical([
        Constraint::Percentage(45),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    let [plan, backfill] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    PlanPane(app).render(plan, buf);
    BackfillPane(app).render(backfill, buf);
    // The other panes take turns; tab switches.
    let shown = if app.focus == Pane::Backfill {
        Pane::Log
    } else {
        app.focus
    };
    let mut spans = vec![Span::raw(" ")];
    for p in Pane::ALL.iter().filter(|p| **p != Pane::Backfill) {
        let style = if *p == shown {
            theme::strong()
        } else {
            theme::dim()
        };
        spans.push(Span::styled(format!("[{}] ", p.title()), style));
    }
    Line::from(spans).render(tabs, buf);
    pane(app, shown, detail, buf);
}
