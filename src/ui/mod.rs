//! The cockpit: ratatui over the engine handle. State is a pure reducer
//! (`app`), keys map to `Action`s (`keys`), each pane renders from borrowed
//! state (`panes`), and the loop draws at most 15 frames a second and only
//! when something changed.

pub mod action;
pub mod app;
pub mod keys;
pub mod layout;
pub mod locking;
pub mod now;
pub mod panes;
pub mod summary;
pub mod text;
pub mod theme;

use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_util::StreamExt;

use crate::db::Target;
use crate::engine::driver::{EngineHandle, RunOptions, spawn_run};
use crate::engine::rollback::spawn_rollback;
use crate::exit;
use crate::plan::LoadedPlan;
use app::{App, Effect};

/// Fastest redraw: 15 frames a second.
const FRAME: Duration = Duration::from_millis(1000 / 15);

/// Opens the cockpit on a run of the plan; returns the exit code.
pub async fn run_cockpit(
    loaded: LoadedPlan,
    target: Target,
    opts: RunOptions,
    taps: crate::report::taps::Taps,
) -> color_eyre::Result<i32> {
    let mut app = App::new(
        loaded.plan.clone(),
        loaded.path.display().to_string(),
        target.display(),
    );
    // Each step's statements and locks, for "now / next" and inspect.
    app.dry_run = Some(crate::lint::plan::analyze(
        &loaded,
        &mut crate::lint::Schema::new(crate::lint::DEFAULT_PG_MAJOR),
    ));
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, &mut app, loaded, target, opts, &taps).await;
    // Restored on every path; panics are covered by ratatui's hook.
    ratatui::restore();
    // Every exit says where the run stands and what to type next.
    print!("{}", summary::exit_summary(&app));
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    loaded: LoadedPlan,
    target: Target,
    opts: RunOptions,
    taps: &crate::report::taps::Taps,
) -> color_eyre::Result<i32> {
    let mut handle: EngineHandle = taps.attach(spawn_run(loaded.clone(), target.clone(), opts));
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            terminal.draw(|f| layout::draw(f, app))?;
            dirty = false;
            last_draw = Instant::now();
        }
        let redraw_in = FRAME.saturating_sub(last_draw.elapsed());
        let running = app.engine_running();
        let mut effect = None;
        tokio::select! {
            event = handle.events.recv(), if running => match event {
                Some(e) => {
                    app.on_event(&e);
                    dirty = true;
                }
                None => {
                    let code = match (&mut handle.task).await {
                        Ok(outcome) => outcome.exit_code(),
                        Err(e) => {
                            // A crashed engine is an emergency: its
                            // connections are gone, the server cancelled
                            // its statement. Never exit 0.
                            let msg = format!("the engine crashed ({e}); `cutover status` shows where the run stands");
                            tracing::error!("{msg}");
                            app.progress.reason = Some(msg);
                            exit::FAILED
                        }
                    };
                    let progress = handle.progress.borrow().clone();
                    app.set_progress(progress);
                    app.engine_exit = Some(code);
                    dirty = true;
                    if app.quitting {
                        break;
                    }
                }
            },
            Ok(()) = handle.progress.changed(), if running => {
                let progress = handle.progress.borrow().clone();
                app.set_progress(progress);
                dirty = true;
            }
            Ok(()) = handle.monitor.changed(), if running => {
                let monitor = handle.monitor.borrow().clone();
                app.set_monitor(monitor);
                dirty = true;
            }
            term = keys.next() => match term {
                Some(Ok(TermEvent::Key(key))) if key.kind == KeyEventKind::Press => {
                    if let Some(action) = keys::action_for(key, &app.modal) {
                        effect = app.update(action);
                    }
                    dirty = true;
                }
                Some(Ok(TermEvent::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                // The terminal is gone: let go of the run safely.
                Some(Err(_)) | None => {
                    app.quitting = true;
                    effect = Some(Effect::Send(crate::engine::control::Command::Detach));
                }
            },
            _ = tick.tick() => {
                app.on_tick(SystemTime::now());
                dirty = true;
            }
            _ = tokio::time::sleep(redraw_in), if dirty => {}
        }
        match effect {
            Some(Effect::Send(cmd)) => {
                // A detach also ends lock-retry waits at their next boundary
                // (the command itself is read only at safe points).
                if cmd == crate::engine::control::Command::Detach {
                    handle.abort.detach();
                }
                let _ = handle.commands.send(cmd).await;
            }
            Some(Effect::Abort(reason)) => handle.abort.abort(reason),
            Some(Effect::StartRollback) => {
                handle = taps.attach(spawn_rollback(loaded.clone(), target.clone(), None));
                app.engine_exit = None;
            }
            Some(Effect::Quit) => break,
            Some(Effect::Signal { pid, terminate }) => {
                let _ = handle
                    .commands
                    .send(crate::engine::control::Command::SignalSession {
                        pid,
                        terminate,
                        by: "the operator (cockpit)".into(),
                    })
                    .await;
            }
            None => {}
        }
        if app.quitting && !app.engine_running() {
            break;
        }
    }
    Ok(app.engine_exit.unwrap_or(exit::DETACHED))
}
