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
    let got = match got {
        Some(value) if value == expected => {
            return Ok(format!("{} = {}", spec.sql.trim(), show(&value)));
        }
        Some(value) => value,
        None => Some("no row".to_string()),
    };
    // A failed verification is an abort criterion: stop, keep everything
    // as it is for the operator to inspect; `cutover run` re-checks.
    let trip = crate::engine::guard::Trip {
        criterion: "failed_verification",
        value: show(&got),
        limit: format!("expected {}", show(&expected)),
        detail: format!("`{}` returned {}", spec.sql.trim(), show(&got)),
    };
    ctx.out
        .emit(crate::engine::events::EventKind::CriterionTripped {
            criterion: trip.criterion.into(),
            value: trip.value.clone(),
            limit: trip.limit.clone(),
            detail: trip.detail.clone(),
        });
    let reason = format!(
        "verification failed: `{}` returned {}, expected {}",
        spec.sql.trim(),
        show(&got),
        show(&expected)
    );
    ctx.control.abort.abort(reason.clone());
    Err(StepError::Stopped(crate::engine::control::Stop::Aborted(
        reason,
    )))
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
