//! The headless frontend: one line per event (or JSON lines), progress at
//! most once a second, Ctrl-C = pause at a safe point and detach.

pub mod log_file;
pub mod metrics;
pub mod taps;

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::engine::control::Command;
use crate::engine::driver::{EngineHandle, Outcome};
use crate::engine::events::{Event, EventKind, Level, short_duration};
use crate::engine::progress::{BatchProgress, Progress};

/// How the headless frontend prints.
#[derive(Debug, Clone)]
pub struct HeadlessOptions {
    /// JSON lines instead of text.
    pub json: bool,
    /// The plan path, for "how to release this gate" hints.
    pub plan_path: String,
    /// Gates release themselves (`--yes`).
    pub yes: bool,
}

/// Drives the engine to its end, printing as it goes; returns the exit code.
pub async fn run(mut handle: EngineHandle, opts: HeadlessOptions) -> i32 {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_printed: Option<(i64, u64)> = None;
    let mut interrupts = 0;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    let mut sigterm =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        tokio::select! {
            event = handle.events.recv() => match event {
                Some(event) => print_event(&event, &opts),
                None => break,
            },
            _ = tick.tick() => {
                let progress = handle.progress.borrow().clone();
                if let Some(batch) = &progress.batch {
                    let key = (batch.rows_done, batch.batches);
                    if last_printed != Some(key) {
                        last_printed = Some(key);
                        print_progress(&progress, batch, &opts);
                    }
                }
            }
            _ = recv(&mut sigint) => {
                interrupts += 1;
                interrupt(&handle, interrupts, &opts).await;
            }
            _ = recv(&mut sigterm) => {
                interrupts += 1;
                interrupt(&handle, interrupts, &opts).await;
            }
        }
    }
    match handle.task.await {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            // A panic in the engine is an emergency: its connections are
            // gone, so the server has cancelled whatever it was running.
            let msg = format!(
                "the engine task crashed ({e}); its statement was cancelled by the server. \
                 `cutover status` shows where the run stands; `cutover run` resumes it"
            );
            print_line(Level::Error, &msg, &opts);
            Outcome::Failed(msg).exit_code()
        }
    }
}

async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn interrupt(handle: &EngineHandle, count: u32, opts: &HeadlessOptions) {
    if count == 1 {
        print_line(
            Level::Warn,
            "interrupted: pausing at the next safe point, then detaching (the run stays resumable); \
             interrupt again to abort now",
            opts,
        );
        handle.abort.detach();
        let _ = handle.commands.send(Command::Detach).await;
    } else if count == 2 {
        print_line(
            Level::Warn,
            "interrupted twice: aborting now (cancelling the running statement, cleaning up the \
             step); interrupt a third time to exit at once",
            opts,
        );
        handle.abort.abort("interrupted twice (Ctrl-C)");
    } else {
        // The journal is consistent at every moment: a batch commits with
        // its checkpoint or not at all, and the server cancels whatever this
        // process's connections were running when they close.
        print_line(
            Level::Error,
            &format!(
                "interrupted three times: exiting now without waiting for the clean-up; the \
                 journal is consistent. `cutover status` shows where the run stands, \
                 `cutover run {}` resumes it",
                opts.plan_path
            ),
            opts,
        );
        std::process::exit(crate::exit::ABORTED);
    }
}

fn print_event(event: &Event, opts: &HeadlessOptions) {
    if opts.json {
        write_json(event);
        return;
    }
    let mut message = event.kind.message();
    if let EventKind::GateWaiting { .. } = &event.kind
        && !opts.yes
    {
        message.push_str(&format!(
            "\n    release it with `cutover advance {}` from another terminal (or run with --yes)",
            opts.plan_path
        ));
    }
    print_line_at(event.at, event.level, &message);
}

fn print_line(level: Level, message: &str, opts: &HeadlessOptions) {
    if opts.json {
        #[derive(Serialize)]
        struct Line<'a> {
            at: String,
            level: Level,
            event: &'static str,
            message: &'a str,
        }
        write_json(&Line {
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            level,
            event: "notice",
            message,
        });
    } else {
        print_line_at(std::time::SystemTime::now(), level, message);
    }
}

fn write_json(value: &impl Serialize) {
    if let Ok(line) = serde_json::to_string(value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn print_line_at(at: std::time::SystemTime, level: Level, message: &str) {
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    let time = stamp.get(11..19).unwrap_or(&stamp);
    let tag = match level {
        Level::Info => "     ",
        Level::Warn => "WARN ",
        Level::Error => "ERROR",
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{time} {tag} {message}");
    let _ = out.flush();
}

/// The progress line: rows, %, rows/s, ETA, batch size and time.
pub fn progress_line(batch: &BatchProgress, throttle: Option<&str>) -> String {
    let mut s = format!("backfill {}: {} keys", batch.table, batch.rows_done);
    if let (Some(total), Some(pct)) = (batch.rows_total, batch.percent()) {
        s = format!(
            "backfill {}: {}/{} keys ({pct:.1}%)",
            batch.table, batch.rows_done, total
        );
    }
    s.push_str(&format!(
        ", {} rows updated, {:.0} rows/s",
        batch.rows_updated, batch.rows_per_sec
    ));
    if let Some(eta) = batch.eta {
        s.push_str(&format!(", ETA {}", short_duration(eta)));
    }
    s.push_str(&format!(
        ", batch {} ({} / target {})",
        batch.batch_size,
        short_duration(batch.last_batch),
        short_duration(batch.target_batch)
    ));
    if let Some(reason) = throttle {
        s.push_str(&format!(", {reason}"));
    }
    s
}

/// The stall budget and the worst wait cutover caused, when either tells
/// something.
pub fn stall_text(p: &Progress) -> String {
    match (p.stall_budget, p.worst_stall.is_zero()) {
        (Some(b), _) => format!(
            ", worst stall {} (budget {})",
            short_duration(p.worst_stall),
            short_duration(b)
        ),
        (None, false) => format!(", worst stall {}", short_duration(p.worst_stall)),
        (None, true) => String::new(),
    }
}

fn print_progress(progress: &Progress, batch: &BatchProgress, opts: &HeadlessOptions) {
    if opts.json {
        #[derive(Serialize)]
        struct Line<'a> {
            at: String,
            level: Level,
            event: &'static str,
            #[serde(flatten)]
            batch: &'a BatchProgress,
            percent: Option<f64>,
            throttle: Option<&'a str>,
        }
        write_json(&Line {
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            level: Level::Info,
            event: "progress",
            batch,
            percent: batch.percent(),
            throttle: progress.throttle.as_deref(),
        });
    } else {
        print_line_at(
            std::time::SystemTime::now(),
            Level::Info,
            &format!(
                "{}{}",
                progress_line(batch, progress.throttle.as_deref()),
                stall_text(progress)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_has_the_numbers_an_operator_needs() {
        let b = BatchProgress {
            table: "users".into(),
            rows_done: 250_000,
            rows_updated: 249_000,
            rows_total: Some(1_000_000),
            rows_per_sec: 50_000.0,
            eta: Some(Duration::from_secs(15)),
            batch_size: 10_000,
            last_batch: Duration::from_millis(190),
            target_batch: Duration::from_millis(200),
            batches: 25,
            workers: Vec::new(),
        };
        assert_eq!(
            progress_line(&b, Some("throttled: replica lag 7.2s > 5s")),
            "backfill users: 250000/1000000 keys (25.0%), 249000 rows updated, 50000 rows/s, \
             ETA 15.0s, batch 10000 (190ms / target 200ms), throttled: replica lag 7.2s > 5s"
        );
    }
}
