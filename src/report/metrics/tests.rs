//! The exposition, the server and the shipped dashboard and alerts.

use std::time::Duration;

use super::causes::throttle_cause;
use super::*;
use crate::engine::progress::BatchProgress;
use crate::engine::progress::RunState;
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
            include_str!("../../../assets/grafana-dashboard.json"),
        ),
        (
            "assets/prometheus-alerts.yml",
            include_str!("../../../assets/prometheus-alerts.yml"),
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

#[test]
fn a_moves_subscription_and_its_limits_are_exposed() {
    use crate::monitor::subscription::{CopyProgress, SubscriptionSample, TableSync};
    let plan = crate::plan::parse(
        std::path::Path::new("p.toml"),
        "name = \"p\"\n[abort]\nslot_retained_wal = \"4GB\"\n[[phases]]\nname = \"a\"\n[[phases.steps]]\nkind = \"gate\"\nmessage = \"m\"\n",
    )
    .expect("plan");
    let mut monitor = MonitorState::default();
    monitor.sample.subscription = Some(SubscriptionSample {
        name: "cutover_move_1".into(),
        database: "target".into(),
        tables: vec![TableSync {
            table: "public.users".into(),
            state: "d".into(),
        }],
        copy: Some(CopyProgress {
            bytes: 1_000_000,
            total: Some(4_000_000),
            rate: 500_000.0,
            eta: Some(Duration::from_secs(6)),
        }),
        apply_lag_bytes: Some(2048),
        apply_lag: Some(Duration::from_millis(250)),
        slot_retained_bytes: Some(123_456),
        error: None,
    });
    let text = render(&plan, &Progress::default(), &monitor);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(
        value(
            "cutover_subscription_table_streaming",
            Some(("state", "copying"))
        ),
        Some(0.0)
    );
    assert_eq!(value("cutover_subscription_copy_bytes", None), Some(1e6));
    assert_eq!(
        value("cutover_subscription_copy_eta_seconds", None),
        Some(6.0)
    );
    assert_eq!(
        value("cutover_subscription_apply_lag_bytes", None),
        Some(2048.0)
    );
    assert_eq!(
        value("cutover_subscription_slot_retained_bytes", None),
        Some(123_456.0)
    );
    assert_eq!(
        value(
            "cutover_abort_value",
            Some(("criterion", "slot_retained_wal"))
        ),
        Some(123_456.0)
    );
    assert_eq!(
        value(
            "cutover_abort_limit",
            Some(("criterion", "slot_retained_wal"))
        ),
        Some(4e9)
    );
}
