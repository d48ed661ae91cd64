//! Connection strings without their secrets, for every place one is shown.

/// Removes the password from a connection string in URL form
/// (`postgres://user:secret@host/db`) or key=value form (`password=secret`),
/// including `password=` inside a URL's query string.
pub fn redact(conn: &str) -> String {
    let mut out = redact_url_userinfo(conn);
    out = redact_password_params(&out);
    out
}

fn redact_url_userinfo(conn: &str) -> String {
    let Some(scheme_end) = conn.find("://") else {
        return conn.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &conn[rest_start..];
    // The userinfo ends at the last '@' before the query: a password with
    // an unescaped '/' or '@' is hidden whole (too much hidden beats a
    // password shown).
    let authority_end = rest.find('?').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return conn.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return conn.to_string();
    };
    format!(
        "{}{}:***{}",
        &conn[..rest_start],
        &userinfo[..colon],
        &rest[at..]
    )
}

fn redact_password_params(conn: &str) -> String {
    let lower = conn.to_ascii_lowercase();
    let mut out = String::with_capacity(conn.len());
    let mut i = 0;
    while let Some(found) = lower[i..].find("password") {
        let start = i + found;
        let key_end = start + "password".len();
        let preceded_ok = start == 0
            || matches!(
                conn.as_bytes()[start - 1],
                b' ' | b'?' | b'&' | b'\t' | b'\n'
            );
        let after = conn[key_end..].trim_start();
        if !preceded_ok || !after.starts_with('=') {
            out.push_str(&conn[i..key_end]);
            i = key_end;
            continue;
        }
        let eq = key_end + (conn[key_end..].len() - after.len());
        out.push_str(&conn[i..=eq]);
        let value_start = eq + 1;
        let value = &conn[value_start..];
        let skipped_ws = value.len() - value.trim_start().len();
        let value = value.trim_start();
        let value_len = if let Some(stripped) = value.strip_prefix('\'') {
            // key='quoted value with \' escapes'
            let mut len = 1;
            let mut escaped = false;
            for c in stripped.chars() {
                len += c.len_utf8();
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '\'' {
                    break;
                }
            }
            len
        } else {
            value.find([' ', '&', '\t', '\n']).unwrap_or(value.len())
        };
        out.push_str(&conn[value_start..value_start + skipped_ws]);
        out.push_str("***");
        i = value_start + skipped_ws + value_len;
    }
    out.push_str(&conn[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn url_password_is_hidden() {
        assert_eq!(
            redact("postgres://alice:s3cr3t@db.internal:5432/app"),
            "postgres://alice:***@db.internal:5432/app"
        );
        assert_eq!(
            redact("postgresql://alice:p%40ss@host/app?sslmode=require"),
            "postgresql://alice:***@host/app?sslmode=require"
        );
    }

    #[test]
    fn url_without_password_is_unchanged() {
        let url = "postgres://alice@host:5432/app";
        assert_eq!(redact(url), url);
        assert_eq!(redact("postgres://host/app"), "postgres://host/app");
    }

    #[test]
    fn keyword_password_is_hidden() {
        assert_eq!(
            redact("host=h user=u password=hunter2 dbname=d"),
            "host=h user=u password=*** dbname=d"
        );
        assert_eq!(
            redact("host=h password = 'a b\\' c' dbname=d"),
            "host=h password = *** dbname=d"
        );
        assert_eq!(
            redact("postgres://u@h/db?password=hunter2&sslmode=disable"),
            "postgres://u@h/db?password=***&sslmode=disable"
        );
    }

    #[test]
    fn no_secret_survives_any_form() {
        for conn in [
            "postgres://u:hunter2@h/db",
            "postgres://u:hunter2@h/db?password=hunter2",
            "user=u PASSWORD=hunter2",
            "password='hunter2'",
        ] {
            assert!(!redact(conn).contains("hunter2"), "{conn} leaked");
        }
    }

    #[test]
    fn words_containing_password_are_left_alone() {
        assert_eq!(redact("host=h passwordless=1"), "host=h passwordless=1");
    }
}
