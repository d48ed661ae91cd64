//! Taps on a running engine for programs outside the frontend: the metrics
//! endpoint follows it, and `--events FILE` receives every event as a JSON
//! line, next to the cockpit or the headless output.

use std::io::Write;

use tokio::sync::mpsc;

use super::metrics::{MetricsSource, serve};
use crate::engine::driver::EngineHandle;
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
    pub fn attach(&self, mut handle: EngineHandle) -> EngineHandle {
        if let Some(m) = &self.metrics {
            m.follow(&handle);
        }
        let Some(path) = self.events.clone() else {
            return handle;
        };
        let (tx, rx) = mpsc::channel(1024);
        let mut from_engine = std::mem::replace(&mut handle.events, rx);
        tokio::spawn(async move {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .ok();
            while let Some(event) = from_engine.recv().await {
                if let Some(f) = file.as_mut()
                    && let Ok(line) = serde_json::to_string(&event)
                    && writeln!(f, "{line}").and_then(|()| f.flush()).is_err()
                {
                    tracing::warn!(
                        "--events {}: write failed; no more events there",
                        path.display()
                    );
                    file = None;
                }
                // The frontend may be gone; the file still gets the rest.
                let _ = tx.send(event).await;
            }
        });
        handle
    }
}
