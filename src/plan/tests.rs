use std::path::Path;
use std::time::Duration;

use super::*;

const GOOD: &str = r#"
name = "rename users.name to full_name"
description = "expand/contract rename"

[settings]
lock_timeout = "2s"
lock_retries = 5
retry_backoff = "100ms..2s"

[throttle]
replication_lag = "5s"
replication_lag_bytes = "512MB"
target_batch_time = "200ms"

[abort]
replication_lag = "60s"
blocked_sessions = 20

[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users ADD COLUMN full_name text"
rollback = "ALTER TABLE users DROP COLUMN IF EXISTS full_name"

[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "full_name = name"
where = "full_name IS NULL"
batch_size = 5000
[[phases.steps]]
kind = "verify"
sql = "SELECT count(*) FROM users WHERE full_name IS DISTINCT FROM name"
expect = 0
[[phases.steps]]
kind = "create_index"
name = "users_full_name_idx"
table = "users"
columns = ["full_name"]
[[phases.steps]]
kind = "gate"
message = "Deploy the app version that reads full_name, then advance."

[[phases]]
name = "contract"
irreversible = true
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE users DROP COLUMN name"
"#;

fn err(text: &str) -> PlanError {
    parse(Path::new("plans/p.toml"), text).unwrap_err()
}

#[test]
fn the_design_example_parses() {
    let plan = parse(Path::new("p.toml"), GOOD).unwrap();
    assert_eq!(plan.phases.len(), 3);
    assert_eq!(plan.settings.lock_timeout.0, Duration::from_secs(2));
    assert_eq!(plan.settings.retry_backoff.max, Duration::from_secs(2));
    assert_eq!(plan.throttle.replication_lag_bytes.unwrap().0, 512_000_000);
    assert_eq!(plan.abort.blocked_sessions, Some(20));
    assert_eq!(plan.phases[1].gate, model::GateMode::Auto);
    assert!(plan.phases[2].irreversible);
    let kinds: Vec<&str> = plan.phases[1]
        .steps
        .iter()
        .map(|s| s.get_ref().kind())
        .collect();
    assert_eq!(kinds, ["backfill", "verify", "create_index", "gate"]);
    match plan.phases[1].steps[0].get_ref() {
        Step::Backfill(b) => {
            assert_eq!(b.where_.as_deref(), Some("full_name IS NULL"));
            assert_eq!(b.batch_size, Some(5000));
            assert!(b.vacuum_behind, "vacuum behind is on by default");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn vacuum_behind_can_be_turned_off() {
    let plan = parse(
        Path::new("p.toml"),
        &GOOD.replace(
            "batch_size = 5000",
            "batch_size = 5000\nvacuum_behind = false",
        ),
    )
    .unwrap();
    match plan.phases[1].steps[0].get_ref() {
        Step::Backfill(b) => assert!(!b.vacuum_behind),
        other => panic!("{other:?}"),
    }
}

#[test]
fn workers_are_bounded_and_tune_without_changing_what_the_step_is() {
    let with = |n: &str| {
        GOOD.replace(
            "batch_size = 5000",
            &format!("batch_size = 5000\nworkers = {n}"),
        )
    };
    let plan = parse(Path::new("p.toml"), &with("4")).unwrap();
    let step = plan.phases[1].steps[0].get_ref();
    match step {
        Step::Backfill(b) => assert_eq!(b.workers, Some(4)),
        other => panic!("{other:?}"),
    }
    let plain = parse(Path::new("p.toml"), GOOD).unwrap();
    assert_eq!(
        identity::fingerprint(step),
        identity::fingerprint(plain.phases[1].steps[0].get_ref()),
        "a run started with one worker resumes with four"
    );
    assert!(
        err(&with("0"))
            .to_string()
            .contains("`workers` must be at least 1")
    );
    assert!(
        err(&with("65"))
            .to_string()
            .contains("more than 64 sessions")
    );
}

#[test]
fn defaults_fill_missing_sections() {
    let plan = parse(
        Path::new("p.toml"),
        "name = \"x\"\n[[phases]]\nname = \"a\"\n[[phases.steps]]\nkind = \"sql\"\nsql = \"SELECT 1\"\n",
    )
    .unwrap();
    assert_eq!(plan.settings.lock_retries, 20);
    assert_eq!(plan.settings.lock_timeout.0, Duration::from_millis(500));
    assert_eq!(plan.abort.stale_monitor.0, Duration::from_secs(15));
    assert_eq!(plan.phases[0].gate, model::GateMode::Manual);
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let e = err("name = \"x\"\n[[phases]\n");
    assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
    assert!(e.to_string().starts_with("plans/p.toml:2:"), "{e}");
}

#[test]
fn unknown_step_kind_lists_the_kinds() {
    let text = GOOD.replace("kind = \"verify\"", "kind = \"verfy\"");
    let e = err(&text);
    let msg = e.to_string();
    assert!(msg.contains("verfy"), "{msg}");
    assert!(
        msg.contains(
            "sql, create_index, backfill, copy_rows, sync_trigger, not_null, constraint, verify, swap, gate"
        ),
        "{msg}"
    );
    let line = text.lines().position(|l| l.contains("verfy")).unwrap() + 1;
    // The step table starts at its header or first key.
    let (l, _) = e.position.unwrap();
    assert!(
        l <= line && l >= line - 1,
        "reported line {l}, kind is on {line}: {msg}"
    );
}

#[test]
fn missing_key_on_backfill_is_named() {
    let text = GOOD.replace("key = \"id\"\n", "");
    let e = err(&text);
    assert!(e.message.contains("missing field `key`"), "{e}");
    assert!(e.position.is_some(), "{e}");
}

#[test]
fn bad_duration_points_at_the_value() {
    let text = GOOD.replace("lock_timeout = \"2s\"", "lock_timeout = \"2 sex\"");
    let e = err(&text);
    let line = text.lines().position(|l| l.contains("2 sex")).unwrap() + 1;
    assert_eq!(e.position, Some((line, 16)), "{e}");
    assert!(e.message.contains("not a duration"), "{e}");
    assert!(e.to_string().contains("lock_timeout = \"2 sex\""), "{e}");
}

#[test]
fn unknown_fields_are_refused() {
    let e = err(&GOOD.replace("batch_size = 5000", "batchsize = 5000"));
    assert!(e.message.contains("batchsize"), "{e}");
}

#[test]
fn duplicate_phase_names_are_refused() {
    let e = err(&GOOD.replace("name = \"migrate\"", "name = \"expand\""));
    assert!(e.message.contains("used twice"), "{e}");
    assert!(e.position.is_some());
}

#[test]
fn empty_phase_is_refused() {
    let e = err("name = \"x\"\n[[phases]]\nname = \"a\"\nsteps = []\n");
    assert!(e.message.contains("has no steps"), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(3));
}

#[test]
fn irreversible_phases_must_come_last() {
    let text = GOOD.replace(
        "name = \"migrate\"\ngate = \"auto\"",
        "name = \"migrate\"\ngate = \"auto\"\nirreversible = true",
    );
    // migrate irreversible then contract irreversible is fine …
    parse(Path::new("p.toml"), &text).unwrap();
    // … but a reversible phase after an irreversible one is not.
    let text = GOOD
        .replace(
            "name = \"expand\"",
            "name = \"expand\"\nirreversible = true",
        )
        .replace(
            "rollback = \"ALTER TABLE users DROP COLUMN IF EXISTS full_name\"\n",
            "",
        );
    let e = err(&text);
    assert!(e.message.contains("must come last"), "{e}");
}

#[test]
fn rollback_in_an_irreversible_phase_is_refused() {
    let text = GOOD.replace(
        "sql = \"ALTER TABLE users DROP COLUMN name\"",
        "sql = \"ALTER TABLE users DROP COLUMN name\"\nrollback = \"SELECT 1\"",
    );
    let e = err(&text);
    assert!(e.message.contains("would never run"), "{e}");
}

#[test]
fn plan_hash_changes_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, GOOD).unwrap();
    let a = load(&path).unwrap().hash;
    std::fs::write(&path, GOOD.replace("5000", "6000")).unwrap();
    let b = load(&path).unwrap().hash;
    assert_ne!(a, b);
    assert_eq!(a.len(), 64);
}

#[test]
fn a_zero_rate_limit_is_refused_and_named() {
    let plan = "name = \"x\"\n[throttle]\nmax_rows_per_second = 0\n\
                [[phases]]\nname = \"a\"\n[[phases.steps]]\nkind = \"sql\"\nsql = \"SELECT 1\"\n";
    let e = err(plan);
    assert!(
        e.to_string().contains("[throttle] max_rows_per_second = 0"),
        "{e}"
    );
    let ok = parse(Path::new("p.toml"), &plan.replace("= 0", "= 25000")).unwrap();
    assert_eq!(ok.throttle.max_rows_per_second, Some(25_000));
}

#[test]
fn index_storage_parameters_and_include_are_checked() {
    let index = |extra: &str| {
        format!(
            "name = \"p\"\n[[phases]]\nname = \"a\"\n[[phases.steps]]\nkind = \"create_index\"\n\
             name = \"i\"\ntable = \"t\"\ncolumns = [\"c\"]\n{extra}\n"
        )
    };
    let ok = parse(
        Path::new("p.toml"),
        &index("include = [\"d\"]\nwith = { fillfactor = 90, buffering = \"auto\" }"),
    )
    .expect("parses");
    let Step::CreateIndex(s) = ok.phases[0].steps[0].get_ref() else {
        panic!("a create_index step");
    };
    assert_eq!(s.include, ["d"]);
    assert_eq!(s.with.len(), 2);
    let e = err(&index("with = { \"fill factor\" = 90 }"));
    assert!(e.message.contains("not a storage parameter name"), "{e}");
    let e = err(&index("with = { fillfactor = [90] }"));
    assert!(
        e.message
            .contains("must be a number, true/false or a string"),
        "{e}"
    );
    let e = err(&index("include = [\" \"]"));
    assert!(e.message.contains("`include` takes column names"), "{e}");
}

#[test]
fn allow_unsafe_is_only_for_an_exclusion_constraint() {
    let constraint = |definition: &str| {
        format!(
            "name = \"p\"\n[[phases]]\nname = \"a\"\n[[phases.steps]]\nkind = \"constraint\"\n\
             name = \"k\"\ntable = \"t\"\ndefinition = \"{definition}\"\nallow_unsafe = \"small table\"\n"
        )
    };
    parse(
        Path::new("p.toml"),
        &constraint("EXCLUDE USING gist (r WITH &&)"),
    )
    .expect("EXCLUDE may carry allow_unsafe");
    let e = err(&constraint("PRIMARY KEY (id)"));
    assert!(e.message.contains("only for EXCLUDE"), "{e}");
}

#[test]
fn a_versioned_step_without_versions_is_a_plan_error_naming_the_step() {
    let text = "name = \"x\"\n[[phases]]\nname = \"expand\"\n[[phases.steps]]\nkind = \"alter_column\"\n\
                table = \"users\"\ncolumn = \"age\"\ntype = \"bigint\"\n";
    let e = err(text);
    assert!(e.message.contains("alter users.age"), "{e}");
    assert!(e.message.contains("add `[versions]`"), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(4));
    let with = format!("{text}[versions]\nold = \"public\"\nnew = \"app_v2\"\n");
    let ok = parse(Path::new("p.toml"), &with);
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[test]
fn an_alter_column_that_changes_nothing_is_refused() {
    let text = "name = \"x\"\n[versions]\nold = \"public\"\nnew = \"v2\"\n[[phases]]\nname = \"e\"\n\
                [[phases.steps]]\nkind = \"alter_column\"\ntable = \"users\"\ncolumn = \"age\"\n";
    let e = err(text);
    assert!(e.message.contains("changes nothing"), "{e}");
}

#[test]
fn an_unknown_on_delete_action_is_refused() {
    let text = "name = \"x\"\n[versions]\nold = \"public\"\nnew = \"v2\"\n[[phases]]\nname = \"e\"\n\
                [[phases.steps]]\nkind = \"alter_column\"\ntable = \"users\"\ncolumn = \"team_id\"\n\
                references = { table = \"teams\", on_delete = \"DROP TABLE teams\" }\n";
    let e = err(text);
    assert!(e.message.contains("must be one of NO ACTION"), "{e}");
    let ok = parse(
        Path::new("p.toml"),
        &text.replace("DROP TABLE teams", "cascade"),
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[test]
fn the_plan_reference_in_assets_parses() {
    let text = include_str!("../../assets/plan-reference.toml");
    let plan = parse(Path::new("assets/plan-reference.toml"), text).expect("the reference parses");
    assert!(plan.settings.max_stall.is_some());
    assert!(plan.throttle.probe_latency.is_some());
    assert!(plan.abort.lock_wait.is_some());
}

#[test]
fn an_irreversible_gate_of_a_version_plan_is_confirmed_with_its_table() {
    for (file, table) in [
        ("versions_alter_column.toml", "users"),
        ("versions_drop_not_null.toml", "users"),
        ("versions_drop_constraint.toml", "users"),
        ("versions_rename_column.toml", "users"),
        ("versions_rename_table.toml", "users"),
    ] {
        let path = format!("{}/plans/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("a shipped plan");
        let plan = parse(Path::new(&path), &text).expect("it parses");
        assert_eq!(main_table(&plan), table, "{file}");
    }
}
