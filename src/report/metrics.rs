//! `--metrics ADDR`: every figure the cockpit shows that a dashboard would
//! chart, as Prometheus text on `http://ADDR/metrics`. Each scrape reads the
//! engine's latest progress and monitor sample and encodes them with
//! prometheus-client; tiny_http serves it on a thread of its own, so a slow
//! scraper never touches the run. Limits and the pace are the ones in force:
//! the plan's, as `cutover set` (or the cockpit's keys) changed them since.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::engine::driver::EngineHandle;
use crate::engine::events::{Event, EventKind};
use crate::engine::live::{self, LiveSettings};
use crate::engine::progress::StepStatus;
use crate::engine::progress::{Progress, RunState};
use crate::monitor::MonitorState;
use crate::plan::Plan;

type Labels = Vec<(String, String)>;
type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;

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

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A registry of gauges, filled as we go.
struct Sheet {
    registry: Registry,
}

impl Sheet {
    fn gauge(&mut self, name: &str, help: &str, rows: Vec<(Labels, f64)>) {
        let family = FloatGauges::default();
        for (l, v) in rows {
            family.get_or_create(&l).set(v);
        }
        self.registry.register(name, help, family);
    }

    fn one(&mut self, name: &str, help: &str, value: f64) {
        self.gauge(name, help, vec![(Vec::new(), value)]);
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        let c: Counter<u64> = Counter::default();
        c.inc_by(value);
        self.registry.register(name, help, c);
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

const STATES: &[(RunState, &str)] = &[
    (RunState::Starting, "starting"),
    (RunState::Running, "running"),
    (RunState::WaitingGate, "waiting_gate"),
    (RunState::Reconnecting, "reconnecting"),
    (RunState::Paused, "paused"),
    (RunState::Aborting, "aborting"),
    (RunState::Aborted, "aborted"),
    (RunState::Failed, "failed"),
    (RunState::Finished, "finished"),
    (RunState::Detached, "detached"),
    (RunState::RollingBack, "rolling_back"),
    (RunState::RolledBack, "rolled_back"),
];

/// The exposition text for one moment of a run.
pub fn render(plan: &Plan, p: &Progress, m: &MonitorState) -> String {
    let mut sheet = Sheet {
        registry: Registry::default(),
    };
    let state = STATES
        .iter()
        .find(|(s, _)| *s == p.state)
        .map_or("unknown", |(_, n)| n);
    let (phase, step) = match p.position {
        Some((pi, si)) => {
            let phase = plan.phases.get(pi);
            (
                phase.map_or(String::new(), |ph| ph.name().to_string()),
                phase
                    .and_then(|ph| ph.steps.get(si))
                    .map_or(String::new(), |s| s.get_ref().display_name()),
            )
        }
        None => (String::new(), String::new()),
    };
    let run_id = p.run_id.map_or(String::new(), |id| id.to_string());
    sheet.gauge(
        "cutover_info",
        "The run: plan, run id, state, current phase and step (always 1)",
        vec![(
            labels(&[
                ("plan", &plan.name),
                ("run_id", &run_id),
                ("state", state),
                ("phase", &phase),
                ("step", &step),
            ]),
            1.0,
        )],
    );
    sheet.gauge(
        "cutover_run_state",
        "1 for the run's current state, 0 for the others",
        STATES
            .iter()
            .map(|(s, n)| (labels(&[("state", n)]), f64::from(u8::from(*s == p.state))))
            .collect(),
    );
    let total: usize = plan.phases.iter().map(|ph| ph.steps.len()).sum();
    let done = p
        .statuses
        .iter()
        .flatten()
        .filter(|s| **s == StepStatus::Done)
        .count();
    sheet.one("cutover_steps", "Steps in the plan", total as f64);
    sheet.one("cutover_steps_done", "Steps done", done as f64);
    if let Some(b) = &p.batch {
        let l = || labels(&[("step", &step), ("table", &b.table)]);
        sheet.gauge(
            "cutover_backfill_rows_done",
            "Keys the batched step has walked",
            vec![(l(), b.rows_done as f64)],
        );
        sheet.gauge(
            "cutover_backfill_rows_updated",
            "Rows the batched step has changed",
            vec![(l(), b.rows_updated as f64)],
        );
        if let Some(t) = b.rows_total {
            sheet.gauge(
                "cutover_backfill_rows_total",
                "Estimated rows in the table (reltuples)",
                vec![(l(), t as f64)],
            );
        }
        sheet.gauge(
            "cutover_backfill_rows_per_second",
            "Keys per second over the recent window",
            vec![(l(), b.rows_per_sec)],
        );
        if let Some(eta) = b.eta {
            sheet.gauge(
                "cutover_backfill_eta_seconds",
                "Time left at the recent rate",
                vec![(l(), secs(eta))],
            );
        }
        sheet.gauge(
            "cutover_backfill_batch_size",
            "Size of the next batch",
            vec![(l(), b.batch_size as f64)],
        );
        sheet.gauge(
            "cutover_backfill_batch_seconds",
            "Duration of the last batch",
            vec![(l(), secs(b.last_batch))],
        );
        sheet.gauge(
            "cutover_backfill_target_batch_seconds",
            "The batch duration sizing aims at",
            vec![(l(), secs(b.target_batch))],
        );
        sheet.gauge(
            "cutover_backfill_batches",
            "Batches committed in this session",
            vec![(l(), b.batches as f64)],
        );
    }
    let throttle = p.throttle.clone().unwrap_or_default();
    sheet.gauge(
        "cutover_throttled",
        "1 while batches are held or paced, with the reason in words and its cause",
        vec![(
            labels(&[("reason", &throttle), ("cause", throttle_cause(&throttle))]),
            f64::from(u8::from(p.throttle.is_some())),
        )],
    );
    sheet.one(
        "cutover_worst_stall_seconds",
        "The longest any session waited behind cutover in this run",
        secs(p.worst_stall),
    );
    if let Some(b) = p.stall_budget {
        sheet.one(
            "cutover_stall_budget_seconds",
            "[settings] max_stall",
            secs(b),
        );
    }
    let t = &plan.throttle;
    if let Some(pace) = t.max_rows_per_second {
        sheet.one(
            "cutover_max_rows_per_second",
            "The pace batches are held to ([throttle] max_rows_per_second, as set now)",
            pace as f64,
        );
    }
    let throttle_limits: Vec<(Labels, f64)> = [
        ("replication_lag", t.replication_lag.map(|d| secs(d.0))),
        (
            "replication_lag_bytes",
            t.replication_lag_bytes.map(|b| b.0 as f64),
        ),
        ("probe_latency", t.probe_latency.map(|d| secs(d.0))),
    ]
    .into_iter()
    .filter_map(|(name, v)| Some((labels(&[("criterion", name)]), v?)))
    .collect();
    sheet.gauge(
        "cutover_throttle_limit",
        "Each [throttle] limit that holds batches (seconds, bytes), as set now",
        throttle_limits,
    );
    sheet.counter(
        "cutover_lock_timeouts",
        "Lock-timeout retries across the run (DDL attempts and batches)",
        p.lock_retries,
    );
    let s = &m.sample;
    sheet.gauge(
        "cutover_replication_lag_seconds",
        "Replay lag per standby (a gone standby: at least the time since it was seen)",
        s.replicas
            .iter()
            .map(|r| (labels(&[("replica", &r.name)]), secs(r.replay_lag)))
            .collect(),
    );
    sheet.gauge(
        "cutover_replication_lag_bytes",
        "WAL bytes a standby has still to replay",
        s.replicas
            .iter()
            .map(|r| (labels(&[("replica", &r.name)]), r.replay_bytes as f64))
            .collect(),
    );
    sheet.gauge(
        "cutover_replica_gone",
        "1 for a standby the run saw that left pg_stat_replication",
        s.replicas
            .iter()
            .map(|r| {
                (
                    labels(&[("replica", &r.name)]),
                    f64::from(u8::from(r.gone_since.is_some())),
                )
            })
            .collect(),
    );
    sheet.gauge(
        "cutover_slot_retained_bytes",
        "WAL a replication slot holds back",
        s.slots
            .iter()
            .map(|sl| (labels(&[("slot", &sl.name)]), sl.retained_bytes as f64))
            .collect(),
    );
    sheet.one(
        "cutover_lock_waiters",
        "Sessions waiting for a lock",
        s.lock_waits.len() as f64,
    );
    sheet.one(
        "cutover_lock_wait_longest_seconds",
        "The longest current lock wait",
        s.lock_waits
            .iter()
            .map(|w| secs(w.waited))
            .fold(0.0, f64::max),
    );
    sheet.one(
        "cutover_sessions_blocked_behind_migration",
        "Sessions queued behind one of cutover's sessions",
        s.blocked_behind_us().count() as f64,
    );
    if let Some(probe) = &s.probe {
        sheet.gauge(
            "cutover_probe_latency_seconds",
            "The canary probe's latency over its 10 s window",
            vec![
                (labels(&[("quantile", "0.5")]), secs(probe.p50)),
                (labels(&[("quantile", "0.95")]), secs(probe.p95)),
                (labels(&[("quantile", "1")]), secs(probe.max)),
            ],
        );
    }
    sheet.one(
        "cutover_tps",
        "Transactions per second on the database",
        s.tps,
    );
    sheet.one(
        "cutover_rollbacks_per_second",
        "Application rollbacks per second (cutover's own left out)",
        s.rollbacks_per_sec,
    );
    let age = if s.seq == 0 {
        0.0
    } else {
        secs(s.taken.elapsed())
    };
    sheet.one(
        "cutover_monitor_sample_age_seconds",
        "Age of the newest monitor sample",
        age,
    );
    let (values, limits) = abort_rows(plan, p, s, age);
    sheet.gauge(
        "cutover_abort_value",
        "Each abort criterion's current value",
        values,
    );
    sheet.gauge(
        "cutover_abort_limit",
        "Each abort criterion's limit ([abort] in the plan, as set now)",
        limits,
    );
    let mut text = String::new();
    let _ = encode(&mut text, &sheet.registry);
    text
}

/// A throttle reason's cause, one word that stays put while the numbers in
/// the reason move (for alerts and legends): `pace` is the operator's own
/// `max_rows_per_second`; the others hold or slow batches for the database.
fn throttle_cause(reason: &str) -> &'static str {
    if reason.is_empty() {
        ""
    } else if reason.starts_with("paced:") {
        "pace"
    } else if reason.starts_with("gentle:") {
        "probe_latency"
    } else if reason.contains("no monitor sample") {
        "stale_monitor"
    } else if reason.contains(" gone since ") {
        "replica_gone"
    } else if reason.starts_with("throttled: probe p95") {
        "max_stall"
    } else if reason.starts_with("throttled: slot ") {
        "slot_retained"
    } else if reason.contains(" behind > ") {
        "replication_lag_bytes"
    } else if reason.contains(" lag ") {
        "replication_lag"
    } else {
        "other"
    }
}

type Rows = Vec<(Labels, f64)>;

/// Every set `[abort]` criterion: (its value now, its limit).
fn abort_rows(
    plan: &Plan,
    p: &Progress,
    s: &crate::monitor::sample::Sample,
    sample_age: f64,
) -> (Rows, Rows) {
    let a = &plan.abort;
    let worst_lag = s
        .worst_lag()
        .map(|r| secs(r.replay_lag))
        .or(s.own_replay_delay.map(secs))
        .unwrap_or(0.0);
    let worst_bytes = s
        .worst_bytes()
        .map(|r| r.replay_bytes)
        .into_iter()
        .chain(s.slots.iter().map(|sl| sl.retained_bytes))
        .max()
        .unwrap_or(0) as f64;
    let longest = s
        .blocked_behind_us()
        .map(|w| secs(w.waited))
        .fold(0.0, f64::max);
    let criteria: Vec<(&str, f64, Option<f64>)> = vec![
        (
            "replication_lag",
            worst_lag,
            a.replication_lag.map(|d| secs(d.0)),
        ),
        (
            "replication_lag_bytes",
            worst_bytes,
            a.replication_lag_bytes.map(|b| b.0 as f64),
        ),
        ("lock_wait", longest, a.lock_wait.map(|d| secs(d.0))),
        (
            "blocked_sessions",
            s.blocked_behind_us().count() as f64,
            a.blocked_sessions.map(f64::from),
        ),
        (
            "lock_timeouts",
            p.lock_retries as f64,
            a.lock_timeouts.map(f64::from),
        ),
        ("rollback_rate", s.rollbacks_per_sec, a.rollback_rate),
        ("stale_monitor", sample_age, Some(secs(a.stale_monitor.0))),
    ];
    let mut values = Vec::new();
    let mut limits = Vec::new();
    for (name, value, limit) in criteria {
        if let Some(limit) = limit {
            values.push((labels(&[("criterion", name)]), value));
            limits.push((labels(&[("criterion", name)]), limit));
        }
    }
    (values, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::progress::BatchProgress;
    use crate::monitor::sample::ReplicaLag;

    #[test]
    fn the_text_parses_and_carries_the_figures() {
        let plan = crate::plan::parse(
            std::path::Path::new("p.toml"),
            "name = \"p\"\n[abort]\nreplication_lag = \"60s\"\n[[phases]]\nname = \"migrate\"\n[[phases.steps]]\nkind = \"backfill\"\ntable = \"users\"\nkey = \"id\"\nset = \"c = 1\"\n",
        )
        .expect("plan");
        let progress = Progress {
            run_id: Some(7),
            state: RunState::Running,
            position: Some((0, 0)),
            batch: Some(BatchProgress {
                table: "users".into(),
                rows_done: 1234,
                rows_total: Some(5000),
                ..BatchProgress::default()
            }),
            lock_retries: 3,
            ..Progress::default()
        };
        let mut monitor = MonitorState::default();
        monitor.sample.replicas.push(ReplicaLag {
            name: "replica1".into(),
            state: "streaming".into(),
            sent_bytes: 0,
            replay_bytes: 4096,
            write_lag: Duration::ZERO,
            flush_lag: Duration::ZERO,
            replay_lag: Duration::from_millis(1500),
            gone_since: None,
        });
        let text = render(&plan, &progress, &monitor);
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
        let value = |name: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name)
                .map(|s| match s.value {
                    prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    _ => f64::NAN,
                })
        };
        assert_eq!(value("cutover_backfill_rows_done"), Some(1234.0));
        assert_eq!(value("cutover_lock_timeouts_total"), Some(3.0));
        let lag = scrape
            .samples
            .iter()
            .find(|s| s.metric == "cutover_replication_lag_seconds")
            .expect("lag");
        assert_eq!(lag.labels.get("replica"), Some("replica1"));
        let limit = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "cutover_abort_limit"
                    && s.labels.get("criterion") == Some("replication_lag")
            })
            .expect("the lag limit");
        assert!(matches!(limit.value, prometheus_parse::Value::Gauge(v) if v == 60.0));
    }

    #[test]
    fn a_port_alone_listens_and_a_bad_address_says_what_to_do() {
        let plan = crate::plan::parse(
            std::path::Path::new("p.toml"),
            "name = \"p\"\n[[phases]]\nname = \"x\"\n[[phases.steps]]\nkind = \"gate\"\nmessage = \"m\"\n",
        )
        .expect("plan");
        assert_eq!(serve(":0", MetricsSource::new(&plan)), Ok(()));
        let err = serve("no-such-host-name:x", MetricsSource::new(&plan)).expect_err("bad address");
        assert!(
            err.starts_with("--metrics no-such-host-name:x: cannot listen there"),
            "{err}"
        );
    }

    /// Every `cutover_*` name in `text`.
    fn names_in(text: &str) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        let mut rest = text;
        while let Some(i) = rest.find("cutover_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            if end > "cutover_".len() {
                names.insert(tail[..end].to_string());
            }
            rest = &tail[end.max(1)..];
        }
        names
    }

    #[test]
    fn the_dashboard_and_the_alerts_chart_only_metrics_that_exist() {
        let plan = crate::plan::parse(
            std::path::Path::new("p.toml"),
            "name = \"p\"\n[throttle]\nmax_rows_per_second = 10\nreplication_lag = \"5s\"\n[[phases]]\nname = \"m\"\n[[phases.steps]]\nkind = \"backfill\"\ntable = \"users\"\nkey = \"id\"\nset = \"c = 1\"\n",
        )
        .expect("plan");
        let progress = Progress {
            position: Some((0, 0)),
            batch: Some(BatchProgress {
                table: "users".into(),
                rows_total: Some(10),
                eta: Some(Duration::from_secs(1)),
                ..BatchProgress::default()
            }),
            ..Progress::default()
        };
        let mut monitor = MonitorState::default();
        monitor.sample.replicas.push(ReplicaLag {
            name: "replica1".into(),
            state: "streaming".into(),
            sent_bytes: 0,
            replay_bytes: 0,
            write_lag: Duration::ZERO,
            flush_lag: Duration::ZERO,
            replay_lag: Duration::ZERO,
            gone_since: None,
        });
        monitor.sample.slots.push(crate::monitor::sample::SlotInfo {
            name: "s".into(),
            kind: "physical".into(),
            active: true,
            retained_bytes: 1,
        });
        monitor.sample.probe = Some(crate::monitor::sample::ProbeStats {
            p50: Duration::ZERO,
            p95: Duration::ZERO,
            max: Duration::ZERO,
            samples: 1,
            errors: 0,
        });
        let exposed = names_in(&render(&plan, &progress, &monitor));
        for (file, text) in [
            (
                "assets/grafana-dashboard.json",
                include_str!("../../assets/grafana-dashboard.json"),
            ),
            (
                "assets/prometheus-alerts.yml",
                include_str!("../../assets/prometheus-alerts.yml"),
            ),
        ] {
            let used = names_in(text);
            assert!(!used.is_empty(), "{file} uses no metric");
            let unknown: Vec<_> = used.difference(&exposed).collect();
            assert!(unknown.is_empty(), "{file} uses {unknown:?}, not exposed");
        }
    }

    #[test]
    fn throttle_causes_are_one_word_each() {
        let cases = [
            ("", ""),
            ("paced: ≤ 2000 rows/s (max_rows_per_second)", "pace"),
            (
                "gentle: probe p95 12ms (target 10ms), pacing ≤ 900 rows/s",
                "probe_latency",
            ),
            (
                "throttled: no monitor sample for 3.0s (failing closed)",
                "stale_monitor",
            ),
            (
                "throttled: replica r1 gone since 03:10:00: holding",
                "replica_gone",
            ),
            ("throttled: replica r1 lag 7.2s > 5s", "replication_lag"),
            (
                "throttled: replica r1 600 MB behind > 512 MB",
                "replication_lag_bytes",
            ),
            ("throttled: slot s1 retains 3 GB > 512 MB", "slot_retained"),
            (
                "throttled: probe p95 400ms > max_stall 150ms (commits wait behind the batches' writes)",
                "max_stall",
            ),
        ];
        for (reason, cause) in cases {
            assert_eq!(throttle_cause(reason), cause, "{reason}");
        }
    }
}
