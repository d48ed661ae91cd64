//! The screen tells the truth at the moments that matter: a gate mid-run
//! before the irreversible phase, a pause, a DDL waiting for its lock, a
//! verify step, the log's newest entry, and what is printed on exit.

use std::sync::Arc;
use std::time::Duration;

use super::tests::{
    aborted, app, backfilling_throttled, event, finished, render, snapshot, statuses, t,
    waiting_at_gate,
};
use super::*;
use crate::engine::events::EventKind;
use crate::engine::progress::StepStatus::*;
use crate::engine::progress::{BatchProgress, GateInfo, RunState};
use crate::monitor::MonitorState;
use crate::monitor::sample::{LockWait, OpenXact, Sample};
use crate::ui::panes::log::visible_rows;
use crate::ui::summary::exit_summary;

/// Migrate done, its "deploy the app" gate released, waiting at the
/// contract phase's own gate (irreversible).
fn at_the_irreversible_gate() -> App {
    let mut a = app();
    a.progress.state = RunState::WaitingGate;
    a.progress.statuses = statuses(6);
    a.progress.position = Some((1, 3));
    a.progress.gate = Some(GateInfo {
        phase: 2,
        name: "contract".into(),
        message: "advancing starts contract, which cannot be rolled back".into(),
        irreversible: true,
    });
    for (i, (p, s)) in [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (1, 3)]
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
    a.on_event(&event(
        50,
        EventKind::GateReleased {
            phase: 1,
            name: "deploy the app".into(),
            by: "operator".into(),
        },
    ));
    a.on_event(&event(
        51,
        EventKind::GateWaiting {
            phase: 2,
            name: "contract".into(),
            message: "advancing starts contract, which cannot be rolled back".into(),
            irreversible: true,
        },
    ));
    a
}

#[test]
fn a_gate_mid_run_shows_what_advancing_runs_and_agrees_with_the_journal() {
    let a = at_the_irreversible_gate();
    snapshot("irreversible_gate", &a);
    let screen = render(&a, 160, 48);
    // The gauge counts done steps as `cutover status` does.
    assert!(screen.contains("6/7 steps done"), "{screen}");
    // The released gate step is done, not waiting.
    let gate_row = screen
        .lines()
        .find(|l| l.contains("deploy the app"))
        .unwrap();
    assert!(
        gate_row.contains('✓') && !gate_row.contains('⏸'),
        "{gate_row}"
    );
    let contract = screen.lines().find(|l| l.contains("contract  ⚠")).unwrap();
    assert!(
        contract.contains("IRREVERSIBLE") && contract.contains('⏸'),
        "{contract}"
    );
    // Now / next: the message, irreversibility, the statements and locks.
    assert!(
        screen.contains("WAITING AT GATE contract: advancing starts contract"),
        "{screen}"
    );
    assert!(
        screen.contains("IRREVERSIBLE phase (type users to confirm)"),
        "{screen}"
    );
    assert!(
        screen.contains("ALTER TABLE users DROP COLUMN name"),
        "{screen}"
    );
    assert!(screen.contains("ACCESS EXCLUSIVE on users"), "{screen}");
    // At 80×24 the irreversible phase is in view.
    let small = render(&a, 80, 24);
    assert!(small.contains("IRREVERSIBLE"), "{small}");
    assert!(small.contains("contract  ⚠"), "{small}");
}

#[test]
fn enter_inspects_and_never_advances() {
    let mut a = waiting_at_gate();
    assert_eq!(a.update(Action::Inspect), None);
    assert_eq!(a.modal, Modal::Inspect(Inspect::NowNext));
    let screen = render(&a, 100, 30);
    assert!(screen.contains("Now / next"), "{screen}");
    assert!(screen.contains("WAITING AT GATE expand"), "{screen}");
    assert_eq!(a.update(Action::Cancel), None);
    assert_eq!(a.modal, Modal::None);
}

#[test]
fn a_paused_backfill_shows_no_running_rate_and_a_gap() {
    let mut a = backfilling_throttled();
    a.progress.throttle = None;
    a.progress.state = RunState::Paused;
    a.on_tick(t(101));
    assert_eq!(a.rate_history.back(), Some(&None), "a gap, not a bar");
    snapshot("paused", &a);
    let screen = render(&a, 160, 48);
    assert!(screen.contains("0 keys/s"), "{screen}");
    assert!(screen.contains("ETA — (paused)"), "{screen}");
    assert!(!screen.contains("68k keys/s"), "{screen}");
}

#[test]
fn held_by_a_limit_reads_zero_and_says_why_pacing_is_not_red() {
    let a = backfilling_throttled();
    let screen = render(&a, 160, 48);
    assert!(
        screen.contains("0 keys/s  ETA — (throttled: replica replica1 lag 7.2s > 5s)"),
        "{screen}"
    );
    let mut paced = backfilling_throttled();
    paced.progress.throttle = Some("paced: ≤ 5000 rows/s (max_rows_per_second)".into());
    let screen = render(&paced, 160, 48);
    assert!(screen.contains("RUNNING (paced)"), "{screen}");
    assert!(!screen.contains("THROTTLED"), "{screen}");
    assert!(screen.contains("68k keys/s"), "{screen}");
}

/// The contract DDL retrying on its lock behind an idle transaction.
fn waiting_for_a_lock() -> App {
    let mut a = at_the_irreversible_gate();
    a.progress.gate = None;
    a.progress.state = RunState::Running;
    a.progress.position = Some((2, 0));
    a.progress.statuses[2][0] = Running;
    a.on_event(&event(
        60,
        EventKind::StepStarted {
            phase: 2,
            step: 0,
            name: "drop trigger and name".into(),
            kind: "sql".into(),
        },
    ));
    a.on_event(&event(
        80,
        EventKind::Retry {
            name: "drop trigger and name".into(),
            retry: 6,
            of: 20,
            wait_ms: 1800,
            reason: "canceling statement due to lock timeout".into(),
        },
    ));
    let sample = Sample {
        seq: 30,
        at: t(99),
        lock_waits: vec![
            LockWait {
                pid: 500,
                application: "cutover".into(),
                waits_for: "relation users".into(),
                mode: "AccessExclusiveLock".into(),
                blocked_by: vec![4242],
                waited: Duration::from_millis(1500),
                query: "DROP TRIGGER cutover_sync_users_full_name ON users".into(),
                behind_us: false,
                ours: true,
            },
            LockWait {
                pid: 777,
                application: "shop-api".into(),
                waits_for: "relation users".into(),
                mode: "RowExclusiveLock".into(),
                blocked_by: vec![500],
                waited: Duration::from_millis(900),
                query: "UPDATE users SET email = $1 WHERE id = $2".into(),
                behind_us: true,
                ours: false,
            },
        ],
        open_xacts: vec![
            OpenXact {
                pid: 4242,
                state: "idle in transaction".into(),
                age: Duration::from_secs(54),
                xmin_age: None,
                application: "psql".into(),
                query: "SELECT * FROM users WHERE id = 1".into(),
            },
            OpenXact {
                pid: 500,
                state: "active".into(),
                age: Duration::from_secs(20),
                xmin_age: None,
                application: "cutover".into(),
                query: "DROP TRIGGER cutover_sync_users_full_name ON users".into(),
            },
        ],
        ..Sample::default()
    };
    a.set_monitor(Arc::new(MonitorState {
        sample,
        history: Default::default(),
    }));
    a
}

#[test]
fn a_ddl_waiting_for_its_lock_names_the_blocker_everywhere() {
    let mut a = waiting_for_a_lock();
    snapshot("waiting_for_lock", &a);
    // Quitting says it stops at the next retry.
    a.update(Action::Quit);
    assert!(render(&a, 80, 24).contains("Stop retrying and quit? (y/n)"));
    a.update(Action::Cancel);
    let screen = render(&a, 160, 48);
    let header = screen.lines().next().unwrap();
    assert!(
        header.contains("WAITING FOR LOCK on users (retry 6/20)"),
        "{header}"
    );
    let row = screen
        .lines()
        .find(|l| l.contains("drop trigger and name"))
        .unwrap();
    assert!(row.contains("WAITING FOR LOCK (retry 6/20)"), "{row}");
    assert!(
        screen.contains(
            "blocked by pid 4242 psql, idle in transaction 54.0s: SELECT * FROM users WHERE id = 1"
        ),
        "{screen}"
    );
    assert!(screen.contains("ROOT: idle in transaction"), "{screen}");
    assert!(screen.contains("pid 4242 idle in transaction"), "{screen}");
    // Activity labels cutover's own transaction.
    assert!(screen.contains("pid 500 (cutover) active"), "{screen}");
    // Between retries nothing of ours waits: the blocker stays named.
    let mut between = a.monitor.sample.clone();
    between.lock_waits.clear();
    a.set_monitor(Arc::new(MonitorState {
        sample: between,
        history: Default::default(),
    }));
    let screen = render(&a, 160, 48);
    assert!(screen.contains("blocked by pid 4242 psql"), "{screen}");
}

#[test]
fn the_root_blocker_can_be_cancelled_after_a_confirmation() {
    let mut a = waiting_for_a_lock();
    while a.focus != Pane::Locks {
        a.update(Action::FocusNext);
    }
    // The root blocker is the first row; our own session is never offered.
    assert_eq!(a.selected_other_session(), Some(4242));
    // Enter drills into it.
    a.update(Action::Inspect);
    assert_eq!(a.modal, Modal::Inspect(Inspect::Session(4242)));
    let screen = render(&a, 100, 30);
    assert!(screen.contains("state: idle in transaction"), "{screen}");
    assert!(screen.contains("pg_cancel_backend(4242)"), "{screen}");
    a.update(Action::Cancel);
    assert_eq!(a.update(Action::CancelSession), None);
    assert_eq!(
        a.modal,
        Modal::ConfirmSignal {
            pid: 4242,
            terminate: false
        }
    );
    let screen = render(&a, 160, 48);
    assert!(
        screen.contains("Cancel the query of 4242? (y/n)"),
        "{screen}"
    );
    assert_eq!(
        a.update(Action::Confirm),
        Some(Effect::Signal {
            pid: 4242,
            terminate: false
        })
    );
    // A new sample that puts another blocker first keeps 4242 selected.
    let mut sample = a.monitor.sample.clone();
    sample.lock_waits[0].blocked_by = vec![9999, 4242];
    a.set_monitor(Arc::new(MonitorState {
        sample,
        history: Default::default(),
    }));
    assert_eq!(a.lock_rows().len(), 4);
    assert_eq!(a.selected_other_session(), Some(4242));
    assert_eq!(a.lock_rows()[a.lock_selected].pid, 4242);
    a.update(Action::ScrollDown);
    assert_eq!(a.lock_rows()[a.lock_selected].pid, 500);
    assert_eq!(a.selected_other_session(), None, "ours is never offered");
    assert_eq!(a.update(Action::TerminateSession), None);
    assert_eq!(a.modal, Modal::None);
}

#[test]
fn a_verify_step_has_its_own_display() {
    let mut a = backfilling_throttled();
    a.progress.throttle = None;
    a.progress.position = Some((1, 1));
    a.progress.batch = Some(BatchProgress {
        table: "users vs users".into(),
        rows_done: 20_000,
        rows_total: Some(100_000),
        batch_size: 10_000,
        batches: 2,
        workers: Vec::new(),
        ..BatchProgress::default()
    });
    a.on_tick(t(100));
    a.progress.batch.as_mut().unwrap().rows_done = 40_000;
    a.on_tick(t(102));
    assert!(
        (a.rows_per_sec() - 10_000.0).abs() < 1e-6,
        "{}",
        a.rows_per_sec()
    );
    assert_eq!(a.eta(), Some(Duration::from_secs(6)));
    snapshot("verify", &a);
    let screen = render(&a, 160, 48);
    assert!(screen.contains("Verify"), "{screen}");
    assert!(screen.contains("chunks compared"), "{screen}");
    assert!(!screen.contains("target"), "{screen}");
}

#[test]
fn the_newest_log_entry_is_visible_when_lines_wrap() {
    let mut a = app();
    for i in 0..40 {
        a.on_event(&event(
            i,
            EventKind::Notice {
                message: format!("entry {i} {}", "long words that wrap ".repeat(4)),
            },
        ));
    }
    let rows = visible_rows(&a, 40, 10);
    assert_eq!(rows.len(), 10);
    let text: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    assert!(text.iter().any(|r| r.contains("entry 39")), "{text:#?}");
    assert!(text.last().unwrap().contains("wrap"), "{text:#?}");
    // Scrolled away, new entries are counted, not shown; End returns.
    a.update(Action::PageUp);
    assert_eq!(a.log_scroll, crate::ui::app::LOG_PAGE);
    a.on_event(&event(
        41,
        EventKind::Notice {
            message: "newest".into(),
        },
    ));
    assert_eq!(a.log_unseen, 1);
    let screen = render(&a, 160, 48);
    assert!(screen.contains("1 new · End/G: latest"), "{screen}");
    assert!(!screen.contains("newest"), "{screen}");
    a.update(Action::ScrollEnd);
    assert_eq!((a.log_scroll, a.log_unseen), (0, 0));
    let screen = render(&a, 160, 48);
    assert!(screen.contains("newest"), "{screen}");
}

#[test]
fn clocks_stop_and_panes_go_stale_when_the_run_stops() {
    let a = aborted();
    // Started at 40, aborted at 60; the screen is drawn at 100.
    assert_eq!(a.step_elapsed(1, 0), Some(Duration::from_secs(20)));
    let screen = render(&a, 160, 48);
    assert!(screen.contains("Replication · stale since"), "{screen}");
    assert!(
        screen.contains("users: 412000 / ~1000000 keys, 411950 changed; stopped"),
        "{screen}"
    );
}

#[test]
fn every_exit_prints_where_the_run_stands_and_what_to_type() {
    let s = exit_summary(&aborted());
    assert!(
        s.contains("run #7 \"rename users.name to full_name (trigger)\" aborted"),
        "{s}"
    );
    assert!(
        s.contains("reason: aborted by the operator (cockpit)"),
        "{s}"
    );
    assert!(
        s.contains("stopped at: phase migrate, step 1 \"backfill users\" (2/7 steps done)"),
        "{s}"
    );
    assert!(
        s.contains("rows: 412000 keys walked of ~1000000, 411950 changed (users)"),
        "{s}"
    );
    assert!(
        s.contains("next: cutover run plans/rename_column_with_trigger.toml"),
        "{s}"
    );
    assert!(
        s.contains("cutover rollback plans/rename_column_with_trigger.toml"),
        "{s}"
    );
    let s = exit_summary(&finished());
    assert!(
        s.contains("finished") && s.contains("(7/7 steps done)"),
        "{s}"
    );
    let mut detached = waiting_at_gate();
    detached.engine_exit = Some(130);
    let s = exit_summary(&detached);
    assert!(s.contains("detached at a gate"), "{s}");
    assert!(
        s.contains("next: cutover run plans/rename_column_with_trigger.toml"),
        "{s}"
    );
}

#[test]
fn a_gate_step_ending_its_phase_says_the_next_phase_waits_at_its_own_gate() {
    let mut a = at_the_irreversible_gate();
    a.progress.statuses[1][3] = Running;
    a.progress.gate = Some(GateInfo {
        phase: 1,
        name: "deploy the app".into(),
        message: "Deploy the app version that reads and writes full_name, then advance.".into(),
        irreversible: false,
    });
    let screen = render(&a, 160, 48);
    assert!(
        screen.contains("WAITING AT GATE deploy the app: Deploy the app version"),
        "{screen}"
    );
    assert!(
        screen.contains("next: phase contract (IRREVERSIBLE), which waits at its own gate"),
        "{screen}"
    );
    let row = screen
        .lines()
        .find(|l| l.contains("deploy the app  gate"))
        .unwrap();
    assert!(row.contains('⏸') && row.contains('▸'), "{row}");
    assert!(screen.contains("5/7 steps done"), "{screen}");
}

#[test]
fn help_has_the_keys_and_a_legend_at_every_size() {
    let mut a = backfilling_throttled();
    a.update(Action::Help);
    snapshot("help", &a);
    for (w, h) in [(80, 24), (100, 30), (160, 48)] {
        let screen = render(&a, w, h);
        assert!(screen.contains("Legend"), "{screen}");
        assert!(screen.contains("⚠ IRREVERSIBLE"), "{screen}");
        assert!(screen.contains("log file"), "{screen}");
        assert!(!screen.contains("more than fits"), "{screen}");
    }
}
