//! `kind = "verify"`: a read-only query whose value must match `expect`;
//! a mismatch fails the step (and so stops the run).

use super::{Ctx, StepError};
use crate::plan::model::VerifyStep;

/// Runs the check.
pub async fn run(spec: &VerifyStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let cancel = ctx.control.abort.token().clone();
    let messages = ctx
        .conn
        .cancellable(ctx.conn.client.simple_query(&spec.sql), &cancel, || {
            format!("verify query `{}`", spec.sql.trim())
        })
        .await
        .map_err(|e| ctx.db_error(e))?;
    let got = messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
        _ => None,
    });
    let expected = expected_text(&spec.expect);
    match got {
        Some(value) if value == expected => Ok(format!("{} = {}", spec.sql.trim(), show(&value))),
        Some(value) => Err(StepError::Failed(format!(
            "verification failed: `{}` returned {}, expected {}",
            spec.sql.trim(),
            show(&value),
            show(&expected)
        ))),
        None => Err(StepError::Failed(format!(
            "verification failed: `{}` returned no row, expected {}",
            spec.sql.trim(),
            show(&expected)
        ))),
    }
}

/// `expect` as PostgreSQL prints the value in text form.
pub fn expected_text(expect: &toml::Value) -> Option<String> {
    Some(match expect {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(true) => "t".into(),
        toml::Value::Boolean(false) => "f".into(),
        other => other.to_string(),
    })
}

fn show(v: &Option<String>) -> String {
    match v {
        Some(s) => s.clone(),
        None => "NULL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::expected_text;

    #[test]
    fn expectations_render_like_postgres_text() {
        assert_eq!(
            expected_text(&toml::Value::Integer(0)).as_deref(),
            Some("0")
        );
        assert_eq!(
            expected_text(&toml::Value::Boolean(true)).as_deref(),
            Some("t")
        );
        assert_eq!(
            expected_text(&toml::Value::String("ok".into())).as_deref(),
            Some("ok")
        );
    }
}
