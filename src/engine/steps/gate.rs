//! `kind = "gate"`: waits for the operator (or `cutover advance`, or `--yes`).

use super::{Ctx, StepError};
use crate::engine::events::EventKind;
use crate::engine::progress::{GateInfo, RunState};
use crate::plan::model::GateStep;

/// Waits at the gate.
pub async fn run(spec: &GateStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let name = ctx.name.clone();
    let by = wait_at_gate(ctx, &name, &spec.message, false).await?;
    Ok(format!("released by {by}"))
}

/// Announces a gate, waits for its release, and says who released it.
/// Phase gates and gate steps both come through here.
pub async fn wait_at_gate(
    ctx: &mut Ctx<'_>,
    name: &str,
    message: &str,
    irreversible: bool,
) -> Result<String, StepError> {
    wait(ctx.control, ctx.out, ctx.phase, name, message, irreversible).await
}

/// As [`wait_at_gate`], from the driver (no step context yet).
pub async fn wait(
    control: &mut crate::engine::control::Control,
    out: &crate::engine::emitter::Emitter,
    phase: usize,
    name: &str,
    message: &str,
    irreversible: bool,
) -> Result<String, StepError> {
    control.forget_advance(out);
    let info = GateInfo {
        phase,
        name: name.to_string(),
        message: message.to_string(),
        irreversible,
    };
    out.progress(|p| {
        p.state = RunState::WaitingGate;
        p.gate = Some(info);
    });
    out.emit(EventKind::GateWaiting {
        phase,
        name: name.to_string(),
        message: message.to_string(),
        irreversible,
    });
    let result = control.wait_advance(out).await;
    out.progress(|p| {
        p.gate = None;
        if result.is_ok() {
            p.state = RunState::Running;
        }
    });
    let by = result?;
    out.emit(EventKind::GateReleased {
        phase,
        name: name.to_string(),
        by: by.clone(),
    });
    Ok(by)
}
