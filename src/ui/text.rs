//! Text that fits: lines cut with an ellipsis (never silently), and
//! wrapping that the log pane measures itself, so it knows how many rows
//! each entry takes.

use ratatui::text::{Line, Span};

/// Columns a string takes (ratatui's own measure).
fn cols(s: &str) -> usize {
    Span::raw(s).width()
}

/// Columns a character takes.
fn char_cols(c: char) -> usize {
    cols(c.encode_utf8(&mut [0; 4]))
}

/// `HH:MM:SS` (UTC) of a time.
pub fn clock(t: std::time::SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(11..19).unwrap_or(&s).to_string()
}

/// Cuts a string to `width` columns, ending in "…" when it was longer.
pub fn ellipsize(s: &str, width: usize) -> String {
    if cols(s) <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_cols(c);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Cuts a styled line to `width` columns, ending in "…" when it was longer.
pub fn fit(line: Line<'_>, width: usize) -> Line<'static> {
    let style = line.style;
    let alignment = line.alignment;
    let total: usize = line.spans.iter().map(|s| cols(&s.content)).sum();
    let mut spans: Vec<Span<'static>> = Vec::new();
    if total <= width {
        spans = line
            .spans
            .into_iter()
            .map(|s| Span::styled(s.content.into_owned(), s.style))
            .collect();
    } else {
        let mut left = width;
        for s in line.spans {
            if left == 0 {
                break;
            }
            let w = cols(&s.content);
            if w < left {
                left -= w;
                spans.push(Span::styled(s.content.into_owned(), s.style));
            } else {
                // The last span that fits ends the line with the ellipsis.
                spans.push(Span::styled(ellipsize(&s.content, left), s.style));
                if w == left {
                    // Exactly full but more follows: replace its last column.
                    let last = spans.pop().map(|s| s.content.into_owned());
                    let text = last.unwrap_or_default();
                    spans.push(Span::styled(ellipsize(&format!("{text}…"), left), s.style));
                }
                break;
            }
        }
    }
    let mut out = Line::from(spans).style(style);
    out.alignment = alignment;
    out
}

/// Wraps text into rows of at most `width` columns, breaking at spaces
/// when it can and inside a word when it must.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut used = 0;
    for word in text.split(' ') {
        let w = cols(word);
        let gap = usize::from(used > 0);
        if used + gap + w <= width {
            if gap == 1 {
                row.push(' ');
            }
            row.push_str(word);
            used += gap + w;
            continue;
        }
        if used > 0 {
            rows.push(std::mem::take(&mut row));
            used = 0;
        }
        // A word longer than a row is split.
        for c in word.chars() {
            let cw = char_cols(c);
            if used + cw > width {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            row.push(c);
            used += cw;
        }
    }
    if used > 0 || rows.is_empty() {
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_ends_in_an_ellipsis() {
        assert_eq!(ellipsize("abcdef", 6), "abcdef");
        assert_eq!(ellipsize("abcdefg", 6), "abcde…");
        let l = fit(Line::from(vec![Span::raw("abc"), Span::raw("defgh")]), 6);
        assert_eq!(l.to_string(), "abcde…");
        let l = fit(Line::from(vec![Span::raw("abc"), Span::raw("def")]), 3);
        assert_eq!(l.to_string(), "ab…");
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_splits_long_words() {
        assert_eq!(wrap("one two three", 7), vec!["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), vec![""]);
    }
}
