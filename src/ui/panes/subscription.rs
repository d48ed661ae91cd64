//! A move's lines in the replication pane: per-table sync state, the
//! initial copy's bytes with rate and ETA, the subscription's apply lag
//! (bytes and seconds) and the WAL its slot retains on the main database,
//! each against its `[throttle]` and `[abort]` limits.

use ratatui::text::{Line, Span};

use crate::engine::events::short_duration;
use crate::monitor::subscription::SubscriptionSample;
use crate::plan::model::{AbortLimits, Throttle};
use crate::plan::units::Size;
use crate::ui::theme;

fn size(n: i64) -> String {
    Size(n.max(0) as u64).to_string()
}

/// The lines for a watched subscription.
pub fn lines(s: &SubscriptionSample, t: &Throttle, a: &AbortLimits) -> Vec<Line<'static>> {
    let bytes = |b: Option<Size>| b.map(|b| b.0 as f64);
    let mut out = vec![Line::styled(
        format!("move to {} (subscription {})", s.database, s.name),
        theme::dim(),
    )];
    for table in &s.tables {
        let style = if table.state == "r" {
            theme::ok()
        } else {
            theme::warn()
        };
        out.push(Line::from(vec![
            Span::raw(format!("  {:<24} ", table.table)),
            Span::styled(table.state_text(), style),
        ]));
    }
    if let Some(c) = &s.copy {
        let total = c
            .total
            .map_or(String::new(), |t| format!(" of ≈{}", size(t)));
        let eta = c
            .eta
            .map_or(String::new(), |e| format!(", ETA {}", short_duration(e)));
        out.push(Line::raw(format!(
            "  copied {}{total} at {}/s{eta}",
            size(c.bytes),
            size(c.rate as i64)
        )));
    }
    let lag_s = s.apply_lag.map_or("?".to_string(), short_duration);
    let lag_b = s.apply_lag_bytes.map_or("?".to_string(), size);
    out.push(Line::from(vec![
        Span::raw("  apply lag "),
        Span::styled(
            lag_b,
            theme::against(
                s.apply_lag_bytes.unwrap_or(i64::MAX) as f64,
                bytes(t.apply_lag_bytes),
                bytes(a.apply_lag_bytes),
            ),
        ),
        Span::raw(" / "),
        Span::styled(
            lag_s,
            theme::against(
                s.apply_lag.map_or(f64::MAX, |d| d.as_secs_f64()),
                t.apply_lag.map(|d| d.0.as_secs_f64()),
                a.apply_lag.map(|d| d.0.as_secs_f64()),
            ),
        ),
        Span::raw(" · slot retains "),
        Span::styled(
            s.slot_retained_bytes.map_or("?".to_string(), size),
            theme::against(
                s.slot_retained_bytes.unwrap_or(i64::MAX) as f64,
                None,
                bytes(a.slot_retained_wal),
            ),
        ),
    ]));
    if let Some(e) = &s.error {
        out.push(Line::styled(format!("  {e}"), theme::warn()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::subscription::{CopyProgress, TableSync};
    use std::time::Duration;

    fn text(lines: &[Line]) -> String {
        lines
            .iter()
            .map(|l| {
                l.spans
                    .iter()
                    .map(|s| s.content.as_ref())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_copy_shows_state_bytes_rate_eta_lag_and_retained_wal() {
        let s = SubscriptionSample {
            name: "cutover_move_5_1_target".into(),
            database: "target".into(),
            tables: vec![TableSync {
                table: "public.users".into(),
                state: "d".into(),
            }],
            copy: Some(CopyProgress {
                bytes: 12_000_000,
                total: Some(34_000_000),
                rate: 2_000_000.0,
                eta: Some(Duration::from_secs(11)),
            }),
            apply_lag_bytes: Some(4096),
            apply_lag: Some(Duration::from_millis(300)),
            slot_retained_bytes: Some(52_000),
            error: None,
        };
        let shown = text(&lines(&s, &Throttle::default(), &AbortLimits::default()));
        assert!(shown.contains("move to target"), "{shown}");
        assert!(
            shown.contains("public.users") && shown.contains("copying"),
            "{shown}"
        );
        assert!(
            shown.contains("copied 12.0 MB of ≈34.0 MB at 2.0 MB/s, ETA 11.0s"),
            "{shown}"
        );
        assert!(shown.contains("apply lag 4.1 kB / 300ms"), "{shown}");
        assert!(shown.contains("slot retains 52.0 kB"), "{shown}");
    }
}
