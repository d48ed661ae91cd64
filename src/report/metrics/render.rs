//! The exposition text for one moment of a run.

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

use super::abort::abort_rows;
use super::causes::throttle_cause;
use super::sheet::{Rows, Sheet, labels, secs};
use crate::engine::progress::StepStatus;
use crate::engine::progress::{Progress, RunState};
use crate::monitor::MonitorState;
use crate::plan::Plan;

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
    let throttle_limits: Rows = [
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
        std::time::Duration::ZERO
    } else {
        s.taken.elapsed()
    };
    sheet.one(
        "cutover_monitor_sample_age_seconds",
        "Age of the newest monitor sample",
        secs(age),
    );
    if let Some(sub) = &s.subscription {
        subscription(&mut sheet, sub);
    }
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

/// A move's subscription on the other database: each table's sync state,
/// the initial copy, the apply lag and the WAL its slot holds back.
fn subscription(sheet: &mut Sheet, sub: &crate::monitor::subscription::SubscriptionSample) {
    let l = |extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("subscription", sub.name.as_str()),
            ("database", sub.database.as_str()),
        ];
        pairs.extend_from_slice(extra);
        labels(&pairs)
    };
    sheet.gauge(
        "cutover_subscription_table_streaming",
        "1 for a moved table that is synchronised and streaming, 0 while it is copied",
        sub.tables
            .iter()
            .map(|t| {
                (
                    l(&[("table", &t.table), ("state", t.state_text())]),
                    f64::from(u8::from(t.state == "r")),
                )
            })
            .collect(),
    );
    if let Some(c) = &sub.copy {
        sheet.gauge(
            "cutover_subscription_copy_bytes",
            "Bytes the initial copy has written on the other database",
            vec![(l(&[]), c.bytes as f64)],
        );
        sheet.gauge(
            "cutover_subscription_copy_bytes_per_second",
            "The initial copy's rate",
            vec![(l(&[]), c.rate)],
        );
        if let Some(eta) = c.eta {
            sheet.gauge(
                "cutover_subscription_copy_eta_seconds",
                "Time left in the initial copy at its rate",
                vec![(l(&[]), secs(eta))],
            );
        }
    }
    if let Some(b) = sub.apply_lag_bytes {
        sheet.gauge(
            "cutover_subscription_apply_lag_bytes",
            "Source WAL the other database has not yet applied",
            vec![(l(&[]), b as f64)],
        );
    }
    if let Some(d) = sub.apply_lag {
        sheet.gauge(
            "cutover_subscription_apply_lag_seconds",
            "Age of the last change the other database applied",
            vec![(l(&[]), secs(d))],
        );
    }
    if let Some(b) = sub.slot_retained_bytes {
        sheet.gauge(
            "cutover_subscription_slot_retained_bytes",
            "WAL the subscription's slot holds back on the source",
            vec![(l(&[]), b as f64)],
        );
    }
}
