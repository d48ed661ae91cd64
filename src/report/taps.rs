//! Taps on a running engine for programs outside the frontend: the metrics
//! endpoint follows it, and `--events FILE` receives every event (and the
//! backfill's progress) as JSON lines, next to the cockpit or the headless
//! output.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::mpsc;

use super::metrics::{MetricsSource, serve};
use crate::engine::driver::EngineHandle;
use crate::engine::events::Level;
use crate::engine::progress::BatchProgress;
use crate::plan::Plan;

/// What to attach to each engine a command starts.
#[derive(Clone, Default)]
pub struct Taps {
    metrics: Option<MetricsSource>,
    events: Option<std::path::PathBuf>,
}

impl Taps {
    /// Starts the metrics server (when asked) and checks the events file
    /// can be written, so a bad address or path fails before anything runs.
    pub fn open(
        plan: &Plan,
        metrics: Option<&str>,
        events: Option<&std::path::Path>,
    ) -> Result<Taps, String> {
        let metrics = match metrics {
            Some(addr) => {
                let source = MetricsSource::new(plan);
                serve(addr, source.clone())?;
                Some(source)
            }
            None => None,
        };
        if let Some(path) = events {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("--events {}: cannot write there: {e}", path.display()))?;
        }
        Ok(Taps {
            metrics,
            events: events.map(std::path::Path::to_path_buf),
        })
    }

    /// Attaches the taps to an engine; returns the handle the frontend uses.
    /// Every event passes through here on its way to the frontend: the
    /// metrics follow live setting changes, and the events file gets each
    /// event and, at most once a second, the backfill's progress, as the
    /// same JSON lines `--json` prints.
    pub fn attach(&self, mut handle: EngineHandle) -> EngineHandle {
        if let Some(m) = &self.metrics {
            m.follow(&handle);
        }
        if self.metrics.is_none() && self.events.is_none() {
            return handle;
        }
        let (tx, rx) = mpsc::channel(1024);
        let mut from_engine = std::mem::replace(&mut handle.events, rx);
        let metrics = self.metrics.clone();
        let mut file = self.events.clone().map(EventsFile::open);
        let mut progress = handle.progress.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last: Option<(i64, u64)> = None;
            loop {
                tokio::select! {
                    event = from_engine.recv() => {
                        let Some(event) = event else { break };
                        if let Some(m) = &metrics {
                            m.observe(&event);
                        }
                        if let Some(f) = file.as_mut() {
                            f.write(&event);
                        }
                        // The frontend may be gone; the taps still get the rest.
                        let _ = tx.send(event).await;
                    }
                    _ = tick.tick(), if file.is_some() => {
                        let p = progress.borrow_and_update().clone();
                        if let (Some(f), Some(batch)) = (file.as_mut(), &p.batch) {
                            let key = (batch.rows_done, batch.batches);
                            if last != Some(key) {
                                last = Some(key);
                                f.write(&ProgressLine {
                                    at: humantime::format_rfc3339_millis(SystemTime::now())
                                        .to_string(),
                                    level: Level::Info,
                                    event: "progress",
                                    batch,
                                    percent: batch.percent(),
                                    throttle: p.throttle.as_deref(),
                                });
                            }
                        }
                    }
                }
            }
        });
        handle
    }
}

/// A progress line, shaped as the headless `--json` output's.
#[derive(Serialize)]
struct ProgressLine<'a> {
    at: String,
    level: Level,
    event: &'static str,
    #[serde(flatten)]
    batch: &'a BatchProgress,
    percent: Option<f64>,
    throttle: Option<&'a str>,
}

/// The `--events` file, appended to line by line; after a failed write it
/// says so once in the log and takes no more.
struct EventsFile {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl EventsFile {
    fn open(path: PathBuf) -> EventsFile {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| tracing::warn!("--events {}: cannot open it: {e}", path.display()))
            .ok();
        EventsFile { path, file }
    }

    fn write(&mut self, value: &impl Serialize) {
        let Some(f) = self.file.as_mut() else { return };
        let Ok(line) = serde_json::to_string(value) else {
            return;
        };
        if writeln!(f, "{line}").and_then(|()| f.flush()).is_err() {
            tracing::warn!(
                "--events {}: write failed; no more events there",
                self.path.display()
            );
            self.file = None;
        }
    }
}
