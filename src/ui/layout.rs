//! Where the panes go: everything at once on a large terminal; at 100×30
//! and 80×24 the plan and backfill stay, the other panes share one tabbed
//! area. "Now / next" is always right under the header.

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
use super::panes::now::{NowPane, wanted_height};
use super::panes::plan::PlanPane;
use super::panes::replication::ReplicationPane;
use super::theme;

/// Draws the whole cockpit.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let buf = frame.buffer_mut();
    let large = area.width >= 140 && area.height >= 40;
    let now_height = if large {
        wanted_height(app, true).clamp(3, 13)
    } else {
        // Taller terminals give the strip more rows: at a gate it lists
        // what advancing runs.
        let most = match area.height {
            36.. => 6,
            28..=35 => 4,
            _ => 3,
        };
        wanted_height(app, false).clamp(1, most)
    };
    let [header, now, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(now_height),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    Header(app).render(header, buf);
    NowPane {
        app,
        bordered: large,
    }
    .render(now, buf);
    if large {
        self::large(app, body, buf);
    } else {
        small(app, body, buf);
    }
    Footer(app).render(footer, buf);
    // Dialogs may cover everything but the footer, which says how to
    // answer them.
    let [above_footer, _] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    Dialog(app).render(above_footer, buf);
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
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(left);
    PlanPane(app).render(plan, buf);
    LogPane(app).render(log, buf);
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(10),
        Constraint::Percentage(45),
        Constraint::Min(6),
    ])
    .areas(right);
    BackfillPane(app).render(top, buf);
    let [replication, activity] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(middle);
    ReplicationPane(app).render(replication, buf);
    ActivityPane(app).render(activity, buf);
    // Locks get the full width: the blocker's query is what matters.
    LocksPane(app).render(bottom, buf);
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
            theme::focus()
        } else {
            theme::dim()
        };
        spans.push(Span::styled(format!("[{}] ", p.title()), style));
    }
    spans.push(Span::styled("tab switches", theme::dim()));
    Line::from(spans).render(tabs, buf);
    pane(app, shown, detail, buf);
}
