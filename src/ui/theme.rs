//! Colours that mean something: amber past half an abort limit, red past a
//! throttle limit (or the abort limit).

use ratatui::style::{Color, Modifier, Style};

/// Normal text.
pub fn normal() -> Style {
    Style::default()
}

/// Secondary text.
pub fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

/// Good news.
pub fn ok() -> Style {
    Style::default().fg(Color::Green)
}

/// Look at this.
pub fn warn() -> Style {
    Style::default().fg(Color::Yellow)
}

/// Act on this.
pub fn danger() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// Titles and the current step.
pub fn strong() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

/// Our own sessions.
pub fn ours() -> Style {
    Style::default()
        .fg(Color::Cyan)
        .add_modifier(Modifier::BOLD)
}

/// The focused pane's border.
pub fn focus() -> Style {
    Style::default()
        .fg(Color::Cyan)
        .add_modifier(Modifier::BOLD)
}

/// Pacing the operator asked for (a rate limit, gentle mode): not a
/// warning, so not red or amber.
pub fn paced() -> Style {
    Style::default().fg(Color::Blue)
}

/// The selected row of a focused pane.
pub fn selected() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

/// The style of a value against its limits: red past the throttle limit
/// (or the abort limit), amber past half the abort limit.
pub fn against(value: f64, throttle: Option<f64>, abort: Option<f64>) -> Style {
    if throttle.is_some_and(|t| value > t) || abort.is_some_and(|a| value > a) {
        danger()
    } else if abort.is_some_and(|a| value > a / 2.0) {
        warn()
    } else {
        normal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_follow_the_limits() {
        assert_eq!(against(1.0, Some(5.0), Some(60.0)), normal());
        assert_eq!(against(31.0, None, Some(60.0)), warn());
        assert_eq!(against(6.0, Some(5.0), Some(60.0)), danger());
        assert_eq!(against(61.0, None, Some(60.0)), danger());
        assert_eq!(against(1e9, None, None), normal());
    }
}
