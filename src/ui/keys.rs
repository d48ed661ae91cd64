//! The keymap: keys become `Action`s; one table drives the footer, the `?`
//! help and the dispatch, so they can never drift apart.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Modal};

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Release the gate.
    Advance,
    /// Pause or resume batches.
    TogglePause,
    /// Double the batch size.
    BatchUp,
    /// Halve the batch size.
    BatchDown,
    /// Back to automatic batch sizing.
    BatchAuto,
    /// Abort (asks first).
    Abort,
    /// Roll back (asks first).
    Rollback,
    /// Next pane.
    FocusNext,
    /// Previous pane.
    FocusPrev,
    /// Scroll the log up.
    ScrollUp,
    /// Scroll the log down.
    ScrollDown,
    /// Show or hide the help.
    Help,
    /// Quit (detaches safely; asks while a step runs).
    Quit,
    /// Yes / Enter in a dialog.
    Confirm,
    /// No / Esc in a dialog.
    Cancel,
    /// A character typed into a dialog.
    Type(char),
    /// Backspace in a dialog.
    Backspace,
    /// Ctrl-C: detach; twice: abort now.
    Interrupt,
}

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

/// The keymap outside dialogs.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: "n/Enter",
        action: Action::Advance,
        what: "advance gate",
        applies: |a| a.at_gate(),
    },
    Binding {
        keys: "p",
        action: Action::TogglePause,
        what: "pause/resume",
        applies: |a| a.engine_running() && !a.at_gate(),
    },
    Binding {
        keys: "+/-",
        action: Action::BatchUp,
        what: "batch size",
        applies: |a| a.batch_running(),
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
        keys: "tab",
        action: Action::FocusNext,
        what: "next pane",
        applies: |_| true,
    },
    Binding {
        keys: "↑/↓",
        action: Action::ScrollUp,
        what: "scroll log",
        applies: |_| true,
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
        Modal::ConfirmAbort | Modal::ConfirmQuit => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Confirm),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Some(Action::Cancel),
            _ => None,
        },
        Modal::Help => match key.code {
            KeyCode::Char('?') | KeyCode::Esc | KeyCode::Char('q') => Some(Action::Help),
            _ => None,
        },
        Modal::None => match key.code {
            KeyCode::Char('n') | KeyCode::Enter => Some(Action::Advance),
            KeyCode::Char('p') => Some(Action::TogglePause),
            KeyCode::Char('+') | KeyCode::Char('=') => Some(Action::BatchUp),
            KeyCode::Char('-') => Some(Action::BatchDown),
            KeyCode::Char('0') => Some(Action::BatchAuto),
            KeyCode::Char('a') => Some(Action::Abort),
            KeyCode::Char('r') => Some(Action::Rollback),
            KeyCode::Tab | KeyCode::Right => Some(Action::FocusNext),
            KeyCode::BackTab | KeyCode::Left => Some(Action::FocusPrev),
            KeyCode::Up | KeyCode::PageUp => Some(Action::ScrollUp),
            KeyCode::Down | KeyCode::PageDown => Some(Action::ScrollDown),
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
        assert_eq!(
            action_for(key(KeyCode::Enter), &none),
            Some(Action::Advance)
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
