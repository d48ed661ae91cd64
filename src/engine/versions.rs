//! The completion hook of version schemas: when the plan's irreversible
//! phase completes (the old application version is retired), the new
//! version's shape becomes physical — write rules dropped, each copied
//! column swapped into place (old dropped, copy renamed, its constraints
//! given their final names), dropped columns dropped, renames done, and
//! the old version schema retired if cutover made it. Called by the walk,
//! once the phase's last step is done (and again on a resume, which finds
//! it done by the schema's comment).

use super::control::Control;
use super::emitter::Emitter;
use super::error::StepError;
use super::events::EventKind;
use super::oversight::Oversight;
use super::steps::altered::duplicates;
use super::steps::versions::{old_tables, schema_state};
use super::steps::{Ctx, versions::constraint_columns};
use crate::db::{Conn, RetryPolicy, execute_with_retry, quote_ident, quote_literal};
use crate::plan::{Plan, Step};
use crate::statements::versions::{
    Model, completed_comment, drop_write_rule_sql, hidden_column, schema_comment, versioned_steps,
};

/// Where the hook runs: the run's connections and the phase it ends.
pub(crate) struct Hook<'a> {
    /// The migration connection.
    pub conn: &'a Conn,
    /// The journal connection.
    pub journal_conn: &'a Conn,
    /// Journal run id.
    pub run_id: i64,
    /// The irreversible phase.
    pub phase: usize,
    /// DDL retries.
    pub policy: RetryPolicy,
    /// The plan's other databases.
    pub databases: &'a crate::db::databases::Databases,
}

/// At the end of phase `hook.phase`: if it is the irreversible phase, runs
/// [`complete`] and says what it did. An error is how the run stops: at the
/// phase's last step, and the next `cutover run` tries again.
pub(crate) async fn on_phase_done(
    plan: &Plan,
    hook: Hook<'_>,
    control: &mut Control,
    out: &Emitter,
    oversight: &Oversight,
) -> Result<(), StepError> {
    if !plan.phases[hook.phase].irreversible {
        return Ok(());
    }
    on_irreversible_done(plan, hook, control, out, oversight).await
}

async fn on_irreversible_done(
    plan: &Plan,
    hook: Hook<'_>,
    control: &mut Control,
    out: &Emitter,
    oversight: &Oversight,
) -> Result<(), StepError> {
    let last = plan.phases[hook.phase].steps.len().saturating_sub(1);
    let mut ctx = Ctx {
        conn: hook.conn,
        journal_conn: hook.journal_conn,
        plan,
        run_id: hook.run_id,
        phase: hook.phase,
        step: last,
        journal: None,
        policy: hook.policy,
        control,
        out,
        name: format!("version schema of {}", plan.phases[hook.phase].name()),
        monitor: &oversight.monitor,
        focus: &oversight.focus,
        counters: &oversight.counters,
        monitor_started: oversight.started,
        databases: hook.databases,
    };
    if let Some(done) = complete(&mut ctx).await? {
        out.emit(EventKind::Notice { message: done });
    }
    Ok(())
}

/// Makes the new version's shape physical, once. The views of the new
/// version keep working (they follow the tables by identity). Returns what
/// it did, or `None` when there was nothing to do.
pub async fn complete(ctx: &mut Ctx<'_>) -> Result<Option<String>, StepError> {
    let plan = ctx.plan;
    let Some(v) = plan.versions.clone() else {
        return Ok(None);
    };
    let state = schema_state(ctx.conn, &v)
        .await
        .map_err(|e| ctx.db_error(e))?;
    if state.as_deref() != Some(schema_comment(plan).as_str()) {
        return Ok(None);
    }
    let all = versioned_steps(plan);
    let steps: Vec<&Step> = all.iter().map(|(_, s)| *s).collect();
    let tables = old_tables(ctx.conn, &v, plan)
        .await
        .map_err(|e| ctx.db_error(e))?;
    let constraints = constraint_columns(ctx.conn, &v, plan)
        .await
        .map_err(|e| ctx.db_error(e))?;
    let model = Model::build_in(&steps, &tables, &constraints).map_err(StepError::Failed)?;
    let copies = duplicates(&steps, &v, &tables, &constraints, ctx.conn).await?;
    let old = quote_ident(&v.old);
    let mut sql = String::new();
    // Write rules go first: after the swap nobody writes the old shape.
    for step in &steps {
        match step {
            Step::AddColumn(s) if s.up.is_some() => sql.push_str(&drop_write_rule_sql(
                &v,
                &s.table,
                "up",
                &hidden_column(&s.column),
            )),
            Step::DropColumn(s) if s.down.is_some() => {
                sql.push_str(&drop_write_rule_sql(&v, &s.table, "down", &s.column))
            }
            _ => {}
        }
    }
    for copy in &copies {
        sql.push_str(&copy.drop_rules_sql(&v));
    }
    for view in &model.views {
        let qtable = format!("{old}.{}", quote_ident(&view.table));
        for col in &view.dropped {
            sql.push_str(&format!(
                "ALTER TABLE {qtable} DROP COLUMN {};\n",
                quote_ident(col)
            ));
        }
        for col in &view.columns {
            if col.physical != col.visible {
                sql.push_str(&format!(
                    "ALTER TABLE {qtable} RENAME COLUMN {} TO {};\n",
                    quote_ident(&col.physical),
                    quote_ident(&col.visible)
                ));
            }
        }
        for copy in copies.iter().filter(|c| c.table == view.table) {
            // The copy's final name may differ from the step's when a
            // later rename_column renamed it.
            let mut copy = copy.clone();
            if let Some(c) = view.columns.iter().find(|c| c.physical == copy.hidden) {
                copy.visible = c.visible.clone();
            }
            sql.push_str(&copy.contract_sql(&v));
        }
        if view.name != view.table {
            sql.push_str(&format!(
                "ALTER TABLE {qtable} RENAME TO {};\n",
                quote_ident(&view.name)
            ));
        }
    }
    if v.old != "public" {
        // Only a version schema (views alone) is retired; never tables.
        sql.push_str(&format!(
            "DO $cutover$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
             WHERE c.relnamespace = {ns}::pg_catalog.regnamespace AND c.relkind <> 'v') \
             THEN EXECUTE 'DROP SCHEMA {old} CASCADE'; END IF; END $cutover$;\n",
            ns = quote_literal(&v.old),
            old = old.replace('\'', "''")
        ));
    }
    sql.push_str(&format!(
        "COMMENT ON SCHEMA {} IS {};\n",
        quote_ident(&v.new),
        quote_literal(&completed_comment(plan))
    ));
    let cancel = ctx.control.abort.token().clone();
    let mut report = ctx.retry_reporter();
    execute_with_retry(ctx.conn, &sql, &ctx.policy, &cancel, &mut report)
        .await
        .map_err(|e| ctx.db_error(e))?;
    Ok(Some(format!(
        "version schema {}: the new shape is physical in {}",
        v.new, v.old
    )))
}
