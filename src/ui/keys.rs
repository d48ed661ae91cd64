//! The keymap: keys become `Action`s; one table drives the footer, the `?`
//! help and the dispatch, so they can never drift apart.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;
use super::app::{App, Modal, Pane};
use crate::engine::progress::RunState;

/// One entry of the keymap.
pub struct Binding {
    /// The keys, as shown.
    pub keys: &'static str,
    /// What they do.
    pub action: Action,
    /// Said in the footer and help.
    pub what: &'static str,
    /// Whether the binding applies right now.
    pub applies: fn(&App) -> bool,
}

/// The keymap outside dialogs, in the footer's order.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: "n",
        action: Action::Advance,
        what: "advance gate",
        applies: |a| a.at_gate(),
    },
    Binding {
        keys: "p",
        action: Action::TogglePause,
        what: "pause/resume",
        applies: |a| {
            a.engine_running()
                && matches!(a.progress.state, RunState::Running | RunState::Paused)
                && !a.at_gate()
        },
    },
    Binding {
        keys: "+/-",
        action: Action::BatchUp,
        what: "batch size",
        applies: |a| a.batch_running() && a.current_kind() != Some("verify"),
    },
    Binding {
        keys: "[/]",
        action: Action::PaceDown,
        what: "pace",
        applies: |a| a.batch_running(),
    },
    Binding {
        keys: "L",
        action: Action::ReleaseReplica,
        what: "release lost replica",
        applies: |a| a.lost_replica().is_some(),
    },
    Binding {
        keys: "0",
        action: Action::BatchAuto,
        what: "auto batch",
        applies: |a| a.batch_running() && a.progress.batch_override.is_some(),
    },
    Binding {
        keys: "a",
        action: Action::Abort,
        what: "abort",
        applies: |a| a.engine_running(),
    },
    Binding {
        keys: "r",
        action: Action::Rollback,
        what: "roll back",
        applies: |a| a.can_roll_back(),
    },
    Binding {
        keys: "c/k",
        action: Action::CancelSession,
        what: "cancel/kill session",
        applies: |a| a.selected_other_session().is_some(),
    },
    Binding {
        keys: "Enter",
        action: Action::Inspect,
        what: "inspect",
        applies: |a| {
            (a.focus == Pane::Locks && !a.lock_rows().is_empty()) || a.progress.position.is_some()
        },
    },
    Binding {
        keys: "tab",
        action: Action::FocusNext,
        what: "next pane",
        applies: |_| true,
    },
    Binding {
        keys: "↑/↓",
        action: Action::ScrollDown,
        what: "select",
        applies: |a| a.focus == Pane::Locks && a.lock_rows().len() > 1,
    },
    Binding {
        keys: "↑/↓/PgUp/PgDn",
        action: Action::ScrollUp,
        what: "scroll log",
        applies: |a| a.focus != Pane::Locks && a.log.len() > 1,
    },
    Binding {
        keys: "End/G",
        action: Action::ScrollEnd,
        what: "latest",
        applies: |a| a.log_scroll > 0,
    },
    Binding {
        keys: "?",
        action: Action::Help,
        what: "help",
        applies: |_| true,
    },
    Binding {
        keys: "q",
        action: Action::Quit,
        what: "quit",
        applies: |_| true,
    },
];

/// Maps a key to an action, given the open dialog.
pub fn action_for(key: KeyEvent, modal: &Modal) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Interrupt);
    }
    match modal {
        Modal::ConfirmRollback { .. } | Modal::ConfirmIrreversible { .. } => match key.code {
            KeyCode::Enter => Some(Action::Confirm),
            KeyCode::Esc => Some(Action::Cancel),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char(c) => Some(Action::Type(c)),
            _ => None,
        },
        Modal::ConfirmAbort | Modal::ConfirmQuit | Modal::ConfirmSignal { .. } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Confirm),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Some(Action::Cancel),
            _ => None,
        },
        Modal::Help => match key.code {
            KeyCode::Char('?') | KeyCode::Esc | KeyCode::Char('q') => Some(Action::Help),
            _ => None,
        },
        Modal::Inspect(_) => match key.code {
            KeyCode::Enter | KeyCode::Esc | KeyCode::Char('q') => Some(Action::Cancel),
            _ => None,
        },
        Modal::None => match key.code {
            KeyCode::Char('n') => Some(Action::Advance),
            KeyCode::Enter => Some(Action::Inspect),
            KeyCode::Char('p') => Some(Action::TogglePause),
            KeyCode::Char('+') | KeyCode::Char('=') => Some(Action::BatchUp),
            KeyCode::Char('-') => Some(Action::BatchDown),
            KeyCode::Char('0') => Some(Action::BatchAuto),
            KeyCode::Char('[') => Some(Action::PaceDown),
            KeyCode::Char(']') => Some(Action::PaceUp),
            KeyCode::Char('L') => Some(Action::ReleaseReplica),
            KeyCode::Char('a') => Some(Action::Abort),
            KeyCode::Char('r') => Some(Action::Rollback),
            KeyCode::Char('c') => Some(Action::CancelSession),
            KeyCode::Char('k') => Some(Action::TerminateSession),
            KeyCode::Tab | KeyCode::Right => Some(Action::FocusNext),
            KeyCode::BackTab | KeyCode::Left => Some(Action::FocusPrev),
            KeyCode::Up => Some(Action::ScrollUp),
            KeyCode::Down => Some(Action::ScrollDown),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown => Some(Action::PageDown),
            KeyCode::End | KeyCode::Char('G') => Some(Action::ScrollEnd),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::ScrollHome),
            KeyCode::Char('?') => Some(Action::Help),
            KeyCode::Char('q') => Some(Action::Quit),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions_outside_dialogs() {
        let none = Modal::None;
        assert_eq!(
            action_for(key(KeyCode::Char('n')), &none),
            Some(Action::Advance)
        );
        // Enter inspects; only `n` releases a gate.
        assert_eq!(
            action_for(key(KeyCode::Enter), &none),
            Some(Action::Inspect)
        );
        assert_eq!(
            action_for(key(KeyCode::End), &none),
            Some(Action::ScrollEnd)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('G')), &none),
            Some(Action::ScrollEnd)
        );
        assert_eq!(
            action_for(key(KeyCode::PageUp), &none),
            Some(Action::PageUp)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('p')), &none),
            Some(Action::TogglePause)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('+')), &none),
            Some(Action::BatchUp)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('-')), &none),
            Some(Action::BatchDown)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('0')), &none),
            Some(Action::BatchAuto)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('a')), &none),
            Some(Action::Abort)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('r')), &none),
            Some(Action::Rollback)
        );
        assert_eq!(
            action_for(key(KeyCode::Tab), &none),
            Some(Action::FocusNext)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('?')), &none),
            Some(Action::Help)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('q')), &none),
            Some(Action::Quit)
        );
        assert_eq!(action_for(key(KeyCode::Char('x')), &none), None);
    }

    #[test]
    fn dialogs_take_their_own_keys() {
        assert_eq!(
            action_for(key(KeyCode::Char('y')), &Modal::ConfirmAbort),
            Some(Action::Confirm)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('n')), &Modal::ConfirmAbort),
            Some(Action::Cancel)
        );
        // 'a' inside the abort dialog does not abort again.
        assert_eq!(
            action_for(key(KeyCode::Char('a')), &Modal::ConfirmAbort),
            None
        );
        let typing = Modal::ConfirmRollback {
            undo: vec![],
            typed: String::new(),
            refused: None,
        };
        assert_eq!(
            action_for(key(KeyCode::Char('u')), &typing),
            Some(Action::Type('u'))
        );
        assert_eq!(
            action_for(key(KeyCode::Char('q')), &typing),
            Some(Action::Type('q'))
        );
        assert_eq!(
            action_for(key(KeyCode::Enter), &typing),
            Some(Action::Confirm)
        );
        assert_eq!(action_for(key(KeyCode::Esc), &typing), Some(Action::Cancel));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(ctrl_c, &typing), Some(Action::Interrupt));
    }
}
