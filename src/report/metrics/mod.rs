//! `--metrics ADDR`: every figure the cockpit shows that a dashboard would
//! chart, as Prometheus text on `http://ADDR/metrics`. Each scrape reads the
//! engine's latest progress and monitor sample and encodes them with
//! prometheus-client; tiny_http serves it on a thread of its own, so a slow
//! scraper never touches the run. Limits and the pace are the ones in force:
//! the plan's, as `cutover set` (or the cockpit's keys) changed them since.

mod abort;
mod causes;
mod render;
mod sheet;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::engine::driver::EngineHandle;
use crate::engine::events::{Event, EventKind};
use crate::engine::live::{self, LiveSettings};
use crate::engine::progress::Progress;
use crate::monitor::MonitorState;
use crate::plan::Plan;
pub use render::render;

/// What a scrape reads: the engine currently running (a rollback started
/// from the cockpit replaces the run's engine), and the settings in force.
#[derive(Clone)]
pub struct MetricsSource {
    plan: Arc<Plan>,
    feeds: Arc<Mutex<Option<Feeds>>>,
    settings: Arc<Mutex<LiveSettings>>,
}

#[derive(Clone)]
struct Feeds {
    progress: watch::Receiver<Progress>,
    monitor: watch::Receiver<Arc<MonitorState>>,
}

impl MetricsSource {
    /// A source for this plan, with no engine yet.
    pub fn new(plan: &Plan) -> MetricsSource {
        MetricsSource {
            plan: Arc::new(plan.clone()),
            feeds: Arc::default(),
            settings: Arc::new(Mutex::new(plan_settings(plan))),
        }
    }

    /// Reads from this engine from now on (which starts from the plan's
    /// settings, as the engine does).
    pub fn follow(&self, handle: &EngineHandle) {
        if let Ok(mut f) = self.feeds.lock() {
            *f = Some(Feeds {
                progress: handle.progress.clone(),
                monitor: handle.monitor.clone(),
            });
        }
        if let Ok(mut s) = self.settings.lock() {
            *s = plan_settings(&self.plan);
        }
    }

    /// Follows a live change of the pace or a limit (`setting_changed`),
    /// the way the engine applied it.
    pub fn observe(&self, event: &Event) {
        if let EventKind::SettingChanged { key, new, .. } = &event.kind
            && let Ok(mut s) = self.settings.lock()
            && let Err(e) = live::apply(&mut s, key, new)
        {
            tracing::warn!("--metrics: the change of {key} to {new} is not shown: {e}");
        }
    }

    /// The exposition text, now.
    pub fn render(&self) -> String {
        let feeds = self.feeds.lock().ok().and_then(|f| f.clone());
        let (progress, monitor) = match feeds {
            Some(f) => (f.progress.borrow().clone(), f.monitor.borrow().clone()),
            None => (Progress::default(), Arc::new(MonitorState::default())),
        };
        let mut plan = (*self.plan).clone();
        if let Ok(s) = self.settings.lock() {
            plan.throttle = s.throttle.clone();
            plan.abort = s.abort.clone();
        }
        render(&plan, &progress, &monitor)
    }
}

fn plan_settings(plan: &Plan) -> LiveSettings {
    LiveSettings {
        throttle: plan.throttle.clone(),
        abort: plan.abort.clone(),
        version: 0,
    }
}

/// Serves `/metrics` on `addr` until the process ends. Binding happens here,
/// so a bad or taken address is an error the operator sees at once. `:PORT`
/// (as Prometheus exporters are often given) listens on every interface.
pub fn serve(addr: &str, source: MetricsSource) -> Result<(), String> {
    let bind = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    let server = tiny_http::Server::http(bind.as_str()).map_err(|e| {
        format!("--metrics {addr}: cannot listen there ({e}); pick a free HOST:PORT such as 127.0.0.1:9187")
    })?;
    std::thread::Builder::new()
        .name("cutover-metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = if request.url().split('?').next() == Some("/metrics") {
                    let header = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                    )
                    .ok();
                    let mut r = tiny_http::Response::from_string(source.render());
                    if let Some(h) = header {
                        r = r.with_header(h);
                    }
                    r
                } else {
                    tiny_http::Response::from_string("cutover: metrics are at /metrics\n")
                        .with_status_code(404)
                };
                let _ = request.respond(response);
            }
        })
        .map_err(|e| format!("--metrics {addr}: cannot start the server thread: {e}"))?;
    Ok(())
}
