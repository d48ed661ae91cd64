//! Where a step's values are in the plan file, down to the byte inside a
//! TOML string, so findings point at the statement that caused them.

use std::ops::Range;

/// Where each step's `sql` and `rollback` values are in the plan file.
pub(super) struct SqlSpans<'t> {
    doc: Option<toml::Spanned<toml::de::DeTable<'t>>>,
}

impl<'t> SqlSpans<'t> {
    /// The plan file's TOML, kept for its spans.
    pub(super) fn read(text: &'t str) -> SqlSpans<'t> {
        SqlSpans {
            doc: toml::de::DeTable::parse(text).ok(),
        }
    }

    /// The span of a step's field value.
    pub(super) fn find(&self, phase: usize, step: usize, field: &str) -> Option<Range<usize>> {
        use toml::de::DeValue;
        let doc = self.doc.as_ref()?.get_ref();
        let DeValue::Array(phases) = doc.get("phases")?.get_ref() else {
            return None;
        };
        let DeValue::Table(p) = phases.get(phase)?.get_ref() else {
            return None;
        };
        let DeValue::Array(steps) = p.get("steps")?.get_ref() else {
            return None;
        };
        let DeValue::Table(s) = steps.get(step)?.get_ref() else {
            return None;
        };
        Some(s.get(field)?.span())
    }
}

/// The file offset of byte `offset` of a TOML string value whose source is
/// `span` (quotes included), following escapes in basic strings.
pub(super) fn value_offset(text: &str, span: &Range<usize>, offset: usize) -> usize {
    let Some(raw) = text.get(span.clone()) else {
        return span.start;
    };
    let (quote, literal) = if raw.starts_with("\"\"\"") {
        (3, false)
    } else if raw.starts_with("'''") {
        (3, true)
    } else if raw.starts_with('"') {
        (1, false)
    } else if raw.starts_with('\'') {
        (1, true)
    } else {
        return span.start;
    };
    let mut start = span.start + quote;
    if quote == 3 {
        // A newline right after the opening quotes is not part of the value.
        if text[start..].starts_with("\r\n") {
            start += 2;
        } else if text[start..].starts_with('\n') {
            start += 1;
        }
    }
    if literal {
        return start + offset;
    }
    let body = &text[start..span.end.saturating_sub(quote).max(start)];
    let mut decoded = 0;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if decoded >= offset {
            return start + i;
        }
        if c != '\\' {
            decoded += c.len_utf8();
            continue;
        }
        match chars.peek().map(|&(_, n)| n) {
            Some('u') | Some('U') => {
                let n = if chars.peek().map(|p| p.1) == Some('u') {
                    4
                } else {
                    8
                };
                chars.next();
                let hex: String = (0..n).filter_map(|_| chars.next().map(|p| p.1)).collect();
                decoded += u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .map_or(1, char::len_utf8);
            }
            Some(n) if n.is_whitespace() => {
                // A line-ending backslash: it and the following blanks vanish.
                while chars.peek().is_some_and(|p| p.1.is_whitespace()) {
                    chars.next();
                }
            }
            Some(_) => {
                chars.next();
                decoded += 1;
            }
            None => {}
        }
    }
    start + body.len()
}
