//! The reducer and the whole screen, without a terminal.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::*;
use crate::engine::events::{Event, EventKind, Level};
use crate::engine::progress::StepStatus::{self, *};
use crate::engine::progress::{BatchProgress, GateInfo, RunState};
use crate::monitor::MonitorState;
use crate::monitor::sample::{LockWait, ProbeStats, ReplicaLag, Sample};

const PLAN: &str = include_str!("../../../plans/rename_column_with_trigger.toml");

pub(super) fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + secs)
}

pub(super) fn app() -> App {
    let plan =
        crate::plan::parse(Path::new("plans/rename_column_with_trigger.toml"), PLAN).unwrap();
    let mut app = App::new(
        plan,
        "plans/rename_column_with_trigger.toml".into(),
        "postgres://ops@db1:5432/shop".into(),
    );
    app.now = t(100);
    app.progress.run_id = Some(7);
    let loaded =
        crate::plan::from_text(Path::new("plans/rename_column_with_trigger.toml"), PLAN).unwrap();
    app.dry_run = Some(crate::lint::plan::analyze(
        &loaded,
        &mut crate::lint::Schema::new(crate::lint::DEFAULT_PG_MAJOR),
    ));
    app
}

pub(super) fn statuses(done: usize) -> Vec<Vec<StepStatus>> {
    let mut n = 0;
    [2, 4, 1]
        .iter()
        .map(|len| {
            (0..*len)
                .map(|_| {
                    n += 1;
                    if n <= done { Done } else { Pending }
                })
                .collect()
        })
        .collect()
}

pub(super) fn event(at: u64, kind: EventKind) -> Event {
    Event {
        at: t(at),
        level: kind.level(),
        kind,
    }
}

pub(super) fn waiting_at_gate() -> App {
    let mut a = app();
    a.progress.state = RunState::WaitingGate;
    a.progress.statuses = statuses(0);
    a.progress.position = Some((0, 0));
    a.progress.gate = Some(GateInfo {
        phase: 0,
        name: "expand".into(),
        message: String::new(),
        irreversible: false,
    });
    a.on_event(&event(
        1,
        EventKind::Notice {
            message: "connected to postgres://ops@db1:5432/shop".into(),
        },
    ));
    a.on_event(&event(
        2,
        EventKind::GateWaiting {
            phase: 0,
            name: "expand".into(),
            message: String::new(),
            irreversible: false,
        },
    ));
    a
}

pub(super) fn backfilling_throttled() -> App {
    let mut a = app();
    a.progress.state = RunState::Running;
    let mut s = statuses(2);
    s[1][0] = Running;
    a.progress.statuses = s;
    a.progress.position = Some((1, 0));
    a.step_times
        .insert((0, 0), (t(10), Some(Duration::from_millis(3))));
    a.step_times
        .insert((0, 1), (t(11), Some(Duration::from_millis(4))));
    a.step_times.insert((1, 0), (t(40), None));
    a.progress.batch = Some(BatchProgress {
        table: "users".into(),
        rows_done: 412_000,
        rows_updated: 411_950,
        rows_total: Some(1_000_000),
        rows_per_sec: 68_000.0,
        eta: Some(Duration::from_secs(9)),
        batch_size: 12_000,
        last_batch: Duration::from_millis(180),
        target_batch: Duration::from_millis(200),
        batches: 41,
        workers: Vec::new(),
    });
    a.last_batch = a.progress.batch.clone();
    a.progress.throttle = Some("throttled: replica replica1 lag 7.2s > 5s".into());
    a.plan.throttle.replication_lag =
        Some(crate::plan::units::HumanDuration(Duration::from_secs(5)));
    a.plan.abort.replication_lag = Some(crate::plan::units::HumanDuration(Duration::from_secs(60)));
    a.rate_history = (0..60).map(|i| Some(40_000 + (i % 7) * 5_000)).collect();
    let sample = Sample {
        seq: 9,
        at: t(99),
        replicas: vec![ReplicaLag {
            name: "replica1".into(),
            state: "streaming".into(),
            sent_bytes: 0,
            replay_bytes: 48_000_000,
            write_lag: Duration::ZERO,
            flush_lag: Duration::ZERO,
            replay_lag: Duration::from_millis(7200),
            gone_since: None,
        }],
        lock_waits: vec![LockWait {
            pid: 4242,
            application: "shop-api".into(),
            waits_for: "transactionid".into(),
            mode: "ShareLock".into(),
            blocked_by: vec![1001],
            waited: Duration::from_millis(350),
            query: "UPDATE users SET email = $1 WHERE id = $2".into(),
            behind_us: true,
            ours: false,
        }],
        tps: 310.0,
        rollbacks_per_sec: 0.5,
        active: 5,
        idle_in_xact: 1,
        probe: Some(ProbeStats {
            p50: Duration::from_millis(1),
            p95: Duration::from_millis(3),
            max: Duration::from_millis(9),
            samples: 100,
            errors: 0,
        }),
        ..Sample::default()
    };
    a.monitor = Arc::new(MonitorState {
        sample,
        history: Default::default(),
    });
    a.on_event(&event(
        40,
        EventKind::StepStarted {
            phase: 1,
            step: 0,
            name: "backfill users".into(),
            kind: "backfill".into(),
        },
    ));
    a.on_event(&event(
        52,
        EventKind::Throttled {
            reason: "throttled: replica replica1 lag 7.2s > 5s".into(),
        },
    ));
    a
}

pub(super) fn aborted() -> App {
    let mut a = backfilling_throttled();
    a.progress.state = RunState::Aborted;
    a.progress.batch = None;
    a.progress.throttle = None;
    a.progress.reason = Some("aborted by the operator (cockpit)".into());
    a.engine_exit = Some(3);
    a.on_event(&event(
        60,
        EventKind::Aborted {
            reason: "aborted by the operator (cockpit)".into(),
            at: "phase migrate, step 1 \"backfill users\"".into(),
        },
    ));
    a
}

pub(super) fn finished() -> App {
    let mut a = app();
    a.progress.state = RunState::Finished;
    a.progress.statuses = statuses(7);
    a.engine_exit = Some(0);
    for (i, (p, s)) in [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (1, 3), (2, 0)]
        .iter()
        .enumerate()
    {
        a.step_times.insert(
            (*p, *s),
            (
                t(i as u64),
                Some(Duration::from_millis(100 * (i as u64 + 1))),
            ),
        );
    }
    a.on_event(&event(90, EventKind::Finished { elapsed_ms: 95_000 }));
    a
}

pub(super) fn render(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| crate::ui::layout::draw(f, app)).unwrap();
    terminal.backend().to_string()
}

pub(super) fn snapshot(name: &str, app: &App) {
    for (w, h) in [(80, 24), (100, 30), (160, 48)] {
        let screen = render(app, w, h);
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(r"cutover-\d+\.log", "cutover-UID.log");
        settings.bind(|| insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen));
    }
}

#[test]
fn screen_waiting_at_a_gate() {
    snapshot("waiting_at_gate", &waiting_at_gate());
}

#[test]
fn screen_backfill_running_and_throttled() {
    snapshot("backfill_throttled", &backfilling_throttled());
}

#[test]
fn screen_backfill_with_four_workers() {
    let mut a = backfilling_throttled();
    if let Some(b) = a.progress.batch.as_mut() {
        b.workers = vec![1.0, 0.5, 0.25, 0.0];
    }
    snapshot("backfill_workers", &a);
}

#[test]
fn a_replica_whose_lag_the_role_cannot_see_says_so() {
    let mut a = backfilling_throttled();
    let mut sample = a.monitor.sample.clone();
    sample.replicas[0].state = String::new();
    sample.replicas[0].replay_bytes = 0;
    sample.replicas[0].replay_lag = Duration::ZERO;
    a.monitor = Arc::new(MonitorState {
        sample,
        history: Default::default(),
    });
    let screen = render(&a, 160, 48);
    assert!(
        screen.contains("replica1     lag hidden from this role: GRANT pg_monitor"),
        "{screen}"
    );
    // No 0 s / 0 B line for it.
    assert!(
        !screen
            .lines()
            .any(|l| l.contains("replica1 ") && l.contains(" B ")),
        "{screen}"
    );
}

#[test]
fn screen_abort_confirmation() {
    let mut a = backfilling_throttled();
    assert_eq!(a.update(Action::Abort), None);
    snapshot("abort_confirmation", &a);
}

#[test]
fn screen_aborted() {
    snapshot("aborted", &aborted());
}

#[test]
fn screen_finished() {
    snapshot("finished", &finished());
}

#[test]
fn advance_is_sent_only_at_a_gate() {
    let mut a = waiting_at_gate();
    assert_eq!(
        a.update(Action::Advance),
        Some(Effect::Send(Command::Advance {
            by: "operator".into()
        }))
    );
    let mut b = backfilling_throttled();
    assert_eq!(b.update(Action::Advance), None);
}

#[test]
fn an_irreversible_gate_needs_the_table_name() {
    let mut a = waiting_at_gate();
    a.progress.gate.as_mut().unwrap().irreversible = true;
    assert_eq!(a.update(Action::Advance), None);
    assert!(matches!(a.modal, Modal::ConfirmIrreversible { .. }));
    for c in "user".chars() {
        a.update(Action::Type(c));
    }
    assert_eq!(
        a.update(Action::Confirm),
        None,
        "wrong word: nothing happens"
    );
    a.update(Action::Type('s'));
    assert_eq!(
        a.update(Action::Confirm),
        Some(Effect::Send(Command::Advance {
            by: "operator".into()
        }))
    );
    assert_eq!(a.modal, Modal::None);
}

#[test]
fn abort_asks_first() {
    let mut a = backfilling_throttled();
    assert_eq!(a.update(Action::Abort), None);
    assert_eq!(a.modal, Modal::ConfirmAbort);
    assert_eq!(a.update(Action::Cancel), None);
    assert_eq!(a.modal, Modal::None);
    a.update(Action::Abort);
    assert_eq!(
        a.update(Action::Confirm),
        Some(Effect::Abort("aborted by the operator (cockpit)".into()))
    );
}

#[test]
fn batch_size_keys_double_halve_and_reset() {
    let mut a = backfilling_throttled();
    assert_eq!(
        a.update(Action::BatchUp),
        Some(Effect::Send(Command::SetBatchSize(Some(24_000))))
    );
    a.progress.batch_override = Some(24_000);
    assert_eq!(
        a.update(Action::BatchDown),
        Some(Effect::Send(Command::SetBatchSize(Some(12_000))))
    );
    assert_eq!(
        a.update(Action::BatchAuto),
        Some(Effect::Send(Command::SetBatchSize(None)))
    );
}

#[test]
fn pause_toggles() {
    let mut a = backfilling_throttled();
    assert_eq!(
        a.update(Action::TogglePause),
        Some(Effect::Send(Command::Pause {
            by: "operator".into()
        }))
    );
    a.progress.state = RunState::Paused;
    assert_eq!(
        a.update(Action::TogglePause),
        Some(Effect::Send(Command::Resume {
            by: "operator".into()
        }))
    );
}

#[test]
fn rollback_shows_what_it_undoes_and_needs_the_table_name() {
    let mut a = aborted();
    assert_eq!(a.update(Action::Rollback), None);
    match &a.modal {
        Modal::ConfirmRollback { undo, refused, .. } => {
            assert_eq!(refused, &None);
            assert_eq!(
                undo,
                &[
                    "clean up \"backfill users\"".to_string(),
                    "undo \"sync trigger users_full_name\"".to_string(),
                    "undo \"add full_name\"".to_string()
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    for c in "users".chars() {
        a.update(Action::Type(c));
    }
    assert_eq!(a.update(Action::Confirm), Some(Effect::StartRollback));
}

#[test]
fn rollback_after_the_irreversible_phase_is_refused_with_the_reason() {
    let mut a = finished();
    a.update(Action::Rollback);
    match &a.modal {
        Modal::ConfirmRollback {
            refused: Some(why), ..
        } => assert!(why.contains("irreversible"), "{why}"),
        other => panic!("{other:?}"),
    }
    for c in "users".chars() {
        a.update(Action::Type(c));
    }
    assert_eq!(a.update(Action::Confirm), None);
}

#[test]
fn quit_while_a_step_runs_asks_then_detaches() {
    let mut a = backfilling_throttled();
    assert_eq!(a.update(Action::Quit), None);
    assert_eq!(a.modal, Modal::ConfirmQuit);
    assert_eq!(
        a.update(Action::Confirm),
        Some(Effect::Send(Command::Detach))
    );
    assert!(a.quitting);
    // At a gate nothing runs: it detaches at once; after the end it quits.
    let mut g = waiting_at_gate();
    assert_eq!(g.update(Action::Quit), Some(Effect::Send(Command::Detach)));
    let mut f = finished();
    assert_eq!(f.update(Action::Quit), Some(Effect::Quit));
}

#[test]
fn ctrl_c_detaches_then_aborts() {
    let mut a = backfilling_throttled();
    assert_eq!(
        a.update(Action::Interrupt),
        Some(Effect::Send(Command::Detach))
    );
    assert!(matches!(
        a.update(Action::Interrupt),
        Some(Effect::Abort(_))
    ));
}

#[test]
fn the_footer_shows_only_keys_that_apply() {
    let gate = render(&waiting_at_gate(), 160, 48);
    let footer = gate.lines().last().unwrap().to_string();
    assert!(footer.contains("advance gate"), "{footer}");
    assert!(!footer.contains("batch size"), "{footer}");
    assert!(!footer.contains("roll back"), "{footer}");
    let running = render(&backfilling_throttled(), 160, 48);
    let footer = running.lines().last().unwrap().to_string();
    assert!(
        footer.contains("batch size") && footer.contains("abort"),
        "{footer}"
    );
    assert!(!footer.contains("advance gate"), "{footer}");
    let done = render(&aborted(), 160, 48);
    let footer = done.lines().last().unwrap().to_string();
    assert!(
        footer.contains("roll back") && !footer.contains(" abort "),
        "{footer}"
    );
}

#[test]
fn log_keeps_its_last_lines() {
    let mut a = app();
    for i in 0..600 {
        a.on_event(&event(
            i,
            EventKind::Notice {
                message: format!("line {i}"),
            },
        ));
    }
    assert_eq!(a.log.len(), 500);
    assert_eq!(a.log.back().map(|l| l.text.as_str()), Some("line 599"));
    assert_eq!(a.log.back().map(|l| l.level), Some(Level::Info));
}
