//! What the operator can ask for: the only link between input (`keys`)
//! and state (`app`). Both import it; neither imports the other's types
//! for it.

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Release the gate (`n` only: Enter inspects).
    Advance,
    /// Pause or resume batches.
    TogglePause,
    /// Double the batch size.
    BatchUp,
    /// Halve the batch size.
    BatchDown,
    /// Back to automatic batch sizing.
    BatchAuto,
    /// Halve the pace (`max_rows_per_second`), live.
    PaceDown,
    /// Double the pace (or lift it when it is already high).
    PaceUp,
    /// Stop holding batches for a replica the run lost.
    ReleaseReplica,
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
    /// A page of the log up.
    PageUp,
    /// A page of the log down.
    PageDown,
    /// Back to the newest log entry.
    ScrollEnd,
    /// The oldest log entry.
    ScrollHome,
    /// Show the selected row or the current step in full.
    Inspect,
    /// Cancel the selected session's query (asks first).
    CancelSession,
    /// Terminate the selected session (asks first).
    TerminateSession,
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
