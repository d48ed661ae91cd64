//! Each rule: SQL it must flag (message snapshot-tested) and the safe
//! alternative it must pass.

use super::*;

fn scope(phase: &str, irreversible: bool) -> Scope {
    Scope {
        phase: Some(phase.into()),
        irreversible,
        role: Role::Step,
    }
}

fn run(sql: &str, scope: &Scope, pg: u32) -> Vec<Hit> {
    let mut schema = Schema::new(pg);
    lint_sql(sql, &mut schema, scope).1
}

fn rules(sql: &str, scope: &Scope, pg: u32) -> Vec<Rule> {
    run(sql, scope, pg).iter().map(|h| h.rule).collect()
}

/// The rule fires on `bad` (only that rule) and not on `good`; returns the
/// finding as printed, for the snapshot.
fn case(rule: Rule, bad: &str, good: &[&str], scope: &Scope, pg: u32) -> String {
    let hits = run(bad, scope, pg);
    assert_eq!(
        hits.iter().map(|h| h.rule).collect::<Vec<_>>(),
        vec![rule],
        "{bad}: {hits:#?}"
    );
    for ok in good {
        assert!(
            !rules(ok, scope, pg).contains(&rule),
            "{ok} should pass {}",
            rule.name()
        );
    }
    format!(
        "{}\n\n{}: {}\nhelp: {}\n",
        bad,
        hits[0].rule.name(),
        hits[0].message,
        hits[0].help
    )
}

fn expand() -> Scope {
    scope("expand", false)
}

#[test]
fn create_index_not_concurrently() {
    let out = case(
        Rule::CreateIndexNotConcurrently,
        "CREATE INDEX users_email_idx ON users (email)",
        &[
            "CREATE INDEX CONCURRENTLY users_email_idx ON users (email)",
            // A table made earlier in the same plan has no readers yet.
            "CREATE TABLE t (id int); CREATE INDEX t_id ON t (id)",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn drop_index_not_concurrently() {
    let out = case(
        Rule::DropIndexNotConcurrently,
        "DROP INDEX users_email_idx",
        &["DROP INDEX CONCURRENTLY IF EXISTS users_email_idx"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn concurrently_in_transaction() {
    let out = case(
        Rule::ConcurrentlyInTransaction,
        "ALTER TABLE users ADD COLUMN c int; CREATE INDEX CONCURRENTLY users_c ON users (c)",
        &["CREATE INDEX CONCURRENTLY users_c ON users (c)"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    // In a .sql file only an explicit BEGIN makes a transaction.
    let file = Scope {
        phase: None,
        irreversible: false,
        role: Role::File,
    };
    assert_eq!(
        rules("BEGIN; DROP INDEX CONCURRENTLY i; COMMIT;", &file, 15),
        vec![Rule::ConcurrentlyInTransaction]
    );
    assert!(rules("SELECT 1; DROP INDEX CONCURRENTLY i;", &file, 15).is_empty());
}

#[test]
fn constraint_without_not_valid() {
    let out = case(
        Rule::ConstraintWithoutNotValid,
        "ALTER TABLE addresses ADD CONSTRAINT addresses_user_fk FOREIGN KEY (user_id) REFERENCES users (id)",
        &[
            "ALTER TABLE addresses ADD CONSTRAINT addresses_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
            "ALTER TABLE users VALIDATE CONSTRAINT users_age_check",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    assert_eq!(
        rules(
            "ALTER TABLE users ADD CONSTRAINT c CHECK (age >= 0)",
            &expand(),
            15
        ),
        vec![Rule::ConstraintWithoutNotValid]
    );
}

#[test]
fn set_not_null_scans() {
    let out = case(
        Rule::SetNotNullScans,
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
        &[
            "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
           ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n\
           ALTER TABLE users ALTER COLUMN email SET NOT NULL",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    // Before PostgreSQL 12 the validated check does not spare the scan.
    assert!(
        rules(
            "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL",
            &expand(),
            11
        )
        .contains(&Rule::SetNotNullScans)
    );
}

#[test]
fn add_column_rewrites() {
    let out = case(
        Rule::AddColumnRewrites,
        "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()",
        &[
            "ALTER TABLE users ADD COLUMN verified boolean DEFAULT false",
            "ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT now()",
            "ALTER TABLE users ADD COLUMN token uuid",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    assert_eq!(
        rules(
            "ALTER TABLE users ADD COLUMN n int GENERATED ALWAYS AS (age + 1) STORED",
            &expand(),
            15
        ),
        vec![Rule::AddColumnRewrites]
    );
    // Versions compare with ≥: 11 is the first without the rewrite.
    let constant = "ALTER TABLE users ADD COLUMN verified boolean DEFAULT false";
    assert_eq!(
        rules(constant, &expand(), 10),
        vec![Rule::AddColumnRewrites]
    );
    assert!(rules(constant, &expand(), 11).is_empty());
}

#[test]
fn add_column_not_null() {
    let out = case(
        Rule::AddColumnNotNull,
        "ALTER TABLE users ADD COLUMN status text NOT NULL",
        &[
            "ALTER TABLE users ADD COLUMN status text NOT NULL DEFAULT 'active'",
            "ALTER TABLE users ADD COLUMN status text",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn alter_type_rewrites() {
    let out = case(
        Rule::AlterTypeRewrites,
        "ALTER TABLE users ALTER COLUMN age TYPE bigint",
        &[
            // Binary-compatible when the old type is known (from the plan
            // here; from the database in `cutover check`).
            "ALTER TABLE users ADD COLUMN nick varchar(20);\n\
             ALTER TABLE users ALTER COLUMN nick TYPE varchar(40)",
            "ALTER TABLE users ADD COLUMN nick varchar(20);\n\
             ALTER TABLE users ALTER COLUMN nick TYPE text",
            "ALTER TABLE users ADD COLUMN price numeric(10,2);\n\
             ALTER TABLE users ALTER COLUMN price TYPE numeric(12,2)",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    // Narrowing, and changing scale, rewrite.
    assert!(
        rules(
            "ALTER TABLE users ADD COLUMN nick varchar(40);\n\
             ALTER TABLE users ALTER COLUMN nick TYPE varchar(20)",
            &expand(),
            15
        )
        .contains(&Rule::AlterTypeRewrites)
    );
    // Unknown current type of a maybe-compatible change: flagged, and says
    // how to find out.
    let hits = run(
        "ALTER TABLE users ALTER COLUMN email TYPE text",
        &expand(),
        15,
    );
    assert_eq!(hits.len(), 1);
    assert!(hits[0].help.contains("cutover check"), "{}", hits[0].help);
    let mut schema = Schema::new(15);
    schema.set_column_type(
        &sql::Rel::from_sql("users"),
        "email",
        "character varying(100)",
    );
    assert!(
        lint_sql(
            "ALTER TABLE users ALTER COLUMN email TYPE text",
            &mut schema,
            &expand()
        )
        .1
        .is_empty()
    );
}

#[test]
fn type_changes_that_keep_the_table() {
    let r = |old: &str, new: &str| type_change_rewrites(Some(old), new, false);
    assert_eq!(r("character varying(10)", "varchar(20)"), Some(false));
    assert_eq!(r("varchar(10)", "varchar"), Some(false));
    assert_eq!(r("varchar", "varchar(10)"), Some(true));
    assert_eq!(r("varchar(10)", "text"), Some(false));
    assert_eq!(r("text", "varchar"), Some(false));
    assert_eq!(r("numeric(10,2)", "numeric(12,2)"), Some(false));
    assert_eq!(r("numeric(10,2)", "numeric(12,3)"), Some(true));
    assert_eq!(r("integer", "bigint"), Some(true));
    assert_eq!(r("cidr", "inet"), Some(false));
    assert_eq!(
        type_change_rewrites(Some("varchar(10)"), "text", true),
        Some(true)
    );
    assert_eq!(type_change_rewrites(None, "bigint", false), Some(true));
    assert_eq!(type_change_rewrites(None, "text", false), None);
}

#[test]
fn unique_without_index() {
    let out = case(
        Rule::UniqueWithoutIndex,
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
        &["ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    assert_eq!(
        rules("ALTER TABLE users ADD PRIMARY KEY (id)", &expand(), 15),
        vec![Rule::UniqueWithoutIndex]
    );
    // A table created in the plan can take its constraints directly.
    assert!(
        rules(
            "CREATE TABLE a (id int); ALTER TABLE a ADD PRIMARY KEY (id)",
            &expand(),
            15
        )
        .is_empty()
    );
}

#[test]
fn rename_before_contract() {
    let out = case(
        Rule::RenameBeforeContract,
        "ALTER TABLE users RENAME COLUMN name TO full_name",
        &[],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    let contract = scope("contract", true);
    assert!(
        rules(
            "ALTER TABLE users RENAME COLUMN name TO full_name",
            &contract,
            15
        )
        .is_empty()
    );
    assert!(rules("ALTER TABLE users RENAME TO users_old", &contract, 15).is_empty());
    assert_eq!(
        rules("ALTER TABLE users RENAME TO users_old", &expand(), 15),
        vec![Rule::RenameBeforeContract]
    );
}

#[test]
fn drop_before_contract() {
    let out = case(
        Rule::DropBeforeContract,
        "ALTER TABLE users DROP COLUMN name",
        &[],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    let contract = scope("contract", true);
    assert!(rules("ALTER TABLE users DROP COLUMN name", &contract, 15).is_empty());
    assert!(rules("DROP TABLE users_old", &contract, 15).is_empty());
    assert_eq!(
        rules("DROP TABLE users_old", &expand(), 15),
        vec![Rule::DropBeforeContract]
    );
    // A rollback drops what its step made: that is its job.
    let rollback = Scope {
        role: Role::Rollback,
        ..expand()
    };
    assert!(
        rules(
            "ALTER TABLE users DROP COLUMN IF EXISTS full_name",
            &rollback,
            15
        )
        .is_empty()
    );
}

#[test]
fn update_without_where() {
    let out = case(
        Rule::UpdateWithoutWhere,
        "UPDATE users SET full_name = name",
        &["UPDATE users SET full_name = name WHERE id = 1"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn delete_without_where() {
    let out = case(
        Rule::DeleteWithoutWhere,
        "DELETE FROM sessions",
        &["DELETE FROM sessions WHERE expires_at < now()"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn vacuum_full() {
    let out = case(
        Rule::VacuumFull,
        "VACUUM FULL users",
        &["VACUUM (ANALYZE) users"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    assert_eq!(
        rules("VACUUM (FULL, ANALYZE) users", &expand(), 15),
        vec![Rule::VacuumFull]
    );
}

#[test]
fn cluster() {
    let out = case(
        Rule::Cluster,
        "CLUSTER users USING users_pkey",
        &["ANALYZE users"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn reindex_not_concurrently() {
    let out = case(
        Rule::ReindexNotConcurrently,
        "REINDEX INDEX users_email_idx",
        &["REINDEX INDEX CONCURRENTLY users_email_idx"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn unparsable() {
    let out = case(
        Rule::Unparsable,
        "ALTER TABLE users ADD COLUMN",
        &["ALTER TABLE users ADD COLUMN c int"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

fn file() -> Scope {
    Scope {
        phase: None,
        irreversible: false,
        role: Role::File,
    }
}

#[test]
fn validate_in_same_transaction() {
    let out = case(
        Rule::ValidateInSameTransaction,
        "BEGIN; ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (b_id) REFERENCES b (id) NOT VALID; \
         ALTER TABLE a VALIDATE CONSTRAINT f; COMMIT;",
        &[
            // A file's statements autocommit: each in its own transaction.
            "ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (b_id) REFERENCES b (id) NOT VALID; \
             ALTER TABLE a VALIDATE CONSTRAINT f;",
            "BEGIN; ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (b_id) REFERENCES b (id) NOT VALID; \
             COMMIT; BEGIN; ALTER TABLE a VALIDATE CONSTRAINT f; COMMIT;",
            "ALTER TABLE a VALIDATE CONSTRAINT f",
        ],
        &file(),
        15,
    );
    insta::assert_snapshot!(out);
    // A `sql` step's statements share one transaction; so do one ALTER's
    // actions; and domains have the same trap.
    for sql in [
        "ALTER TABLE a ADD CONSTRAINT c CHECK (x > 0) NOT VALID; ALTER TABLE a VALIDATE CONSTRAINT c",
        "ALTER TABLE a ADD CONSTRAINT c CHECK (x > 0) NOT VALID, VALIDATE CONSTRAINT c",
        "ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0) NOT VALID; ALTER DOMAIN d VALIDATE CONSTRAINT c",
    ] {
        assert!(
            rules(sql, &expand(), 15).contains(&Rule::ValidateInSameTransaction),
            "{sql}"
        );
    }
}

#[test]
fn detach_partition_not_concurrently() {
    let out = case(
        Rule::DetachPartitionNotConcurrently,
        "ALTER TABLE measurements DETACH PARTITION measurements_2020",
        &[
            "ALTER TABLE measurements DETACH PARTITION measurements_2020 CONCURRENTLY",
            "ALTER TABLE measurements DETACH PARTITION measurements_2020 FINALIZE",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    let old = run(
        "ALTER TABLE measurements DETACH PARTITION measurements_2020",
        &expand(),
        13,
    );
    assert!(old[0].message.contains("needs PostgreSQL 14"), "{old:?}");
}

#[test]
fn attach_partition_scans() {
    let attach =
        "ALTER TABLE m ATTACH PARTITION m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')";
    let out = case(
        Rule::AttachPartitionScans,
        attach,
        &[
            &format!(
                "ALTER TABLE m_2024 ADD CONSTRAINT m_2024_bound \
                 CHECK (at >= '2024-01-01' AND at < '2025-01-01') NOT VALID; \
                 ALTER TABLE m_2024 VALIDATE CONSTRAINT m_2024_bound; {attach}"
            ),
            &format!("CREATE TABLE m_2024 (LIKE m); {attach}"),
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    // A rollback re-attaching what its step detached is the point.
    let undo = Scope {
        role: Role::Rollback,
        ..expand()
    };
    assert!(rules(attach, &undo, 15).is_empty());
}

#[test]
fn domain_constraint_without_not_valid() {
    let out = case(
        Rule::DomainConstraintWithoutNotValid,
        "ALTER DOMAIN positive ADD CONSTRAINT positive_check CHECK (VALUE > 0)",
        &[
            "ALTER DOMAIN positive ADD CONSTRAINT positive_check CHECK (VALUE > 0) NOT VALID",
            "ALTER DOMAIN positive VALIDATE CONSTRAINT positive_check",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    assert_eq!(
        rules("ALTER DOMAIN positive SET NOT NULL", &expand(), 15),
        vec![Rule::DomainConstraintWithoutNotValid]
    );
}

#[test]
fn create_domain_with_check() {
    let out = case(
        Rule::CreateDomainWithCheck,
        "CREATE DOMAIN positive AS int CHECK (VALUE > 0)",
        &[
            "CREATE DOMAIN positive AS int",
            "CREATE DOMAIN code AS text NOT NULL",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn exclude_constraint() {
    let out = case(
        Rule::ExcludeConstraint,
        "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&)",
        &["CREATE TABLE b (room int, during tstzrange); \
           ALTER TABLE b ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&)"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn truncate() {
    let out = case(
        Rule::Truncate,
        "TRUNCATE users CASCADE",
        &[
            "DELETE FROM users WHERE id BETWEEN 1 AND 1000",
            "CREATE TABLE t (id int); TRUNCATE t",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    assert_eq!(
        rules("TRUNCATE TABLE users", &file(), 15),
        vec![Rule::Truncate]
    );
}

#[test]
fn drop_default_not_null() {
    let out = case(
        Rule::DropDefaultNotNull,
        "ALTER TABLE users ADD COLUMN flag boolean NOT NULL DEFAULT false; \
         ALTER TABLE users ALTER COLUMN flag DROP DEFAULT",
        &[
            "ALTER TABLE users ADD COLUMN flag boolean DEFAULT false; \
             ALTER TABLE users ALTER COLUMN flag DROP DEFAULT",
            "CREATE TABLE t (id int NOT NULL DEFAULT 0); ALTER TABLE t ALTER COLUMN id DROP DEFAULT",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    // Offline, a column's NOT NULL is unknown: flagged, and said so.
    let unknown = run(
        "ALTER TABLE users ALTER COLUMN flag DROP DEFAULT",
        &expand(),
        15,
    );
    assert_eq!(unknown.len(), 1);
    assert!(
        unknown[0].message.contains("not known offline"),
        "{unknown:?}"
    );
    // In the contract phase the application has moved on.
    assert!(
        rules(
            "ALTER TABLE users ADD COLUMN flag boolean NOT NULL DEFAULT false; \
             ALTER TABLE users ALTER COLUMN flag DROP DEFAULT",
            &scope("contract", true),
            15
        )
        .is_empty()
    );
}

#[test]
fn drop_not_null_before_contract() {
    let out = case(
        Rule::DropNotNullBeforeContract,
        "ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
        &["ALTER TABLE users ALTER COLUMN email SET DEFAULT ''"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    assert!(
        rules(
            "ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
            &scope("contract", true),
            15
        )
        .is_empty()
    );
}

#[test]
fn drop_database() {
    let out = case(
        Rule::DropDatabase,
        "DROP DATABASE legacy",
        &["DROP SCHEMA IF EXISTS scratch"],
        &file(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn drop_schema_cascade() {
    let out = case(
        Rule::DropSchemaCascade,
        "DROP SCHEMA legacy CASCADE",
        &["DROP SCHEMA legacy", "DROP SCHEMA legacy RESTRICT"],
        &scope("contract", true),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn set_logged_rewrites() {
    let out = case(
        Rule::SetLoggedRewrites,
        "ALTER TABLE events SET UNLOGGED",
        &["CREATE TABLE e (id int); ALTER TABLE e SET LOGGED"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    assert_eq!(
        rules("ALTER TABLE events SET LOGGED", &expand(), 15),
        vec![Rule::SetLoggedRewrites]
    );
}

#[test]
fn set_tablespace_rewrites() {
    let out = case(
        Rule::SetTablespaceRewrites,
        "ALTER TABLE events SET TABLESPACE fast_ssd",
        &["ALTER TABLE events SET (fillfactor = 90)"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn refresh_matview_not_concurrently() {
    let out = case(
        Rule::RefreshNotConcurrently,
        "REFRESH MATERIALIZED VIEW daily_totals",
        &["REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals"],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn transaction_left_open() {
    let out = case(
        Rule::TransactionLeftOpen,
        "BEGIN;\nCREATE TABLE t (id int);",
        &[
            "BEGIN; CREATE TABLE t (id int); COMMIT;",
            "START TRANSACTION; CREATE TABLE t (id int); END;",
            "CREATE TABLE t (id int);",
        ],
        &file(),
        15,
    );
    insta::assert_snapshot!(out);
    assert_eq!(
        rules("BEGIN; CREATE TABLE t (id int)", &expand(), 15),
        vec![Rule::TransactionLeftOpen]
    );
}

#[test]
fn add_column_with_a_validated_constraint() {
    // A foreign key on a column that starts with a value, or an inline
    // CHECK, is validated against every row under ACCESS EXCLUSIVE.
    for sql in [
        "ALTER TABLE a ADD COLUMN b_id bigint DEFAULT 1 REFERENCES b (id)",
        "ALTER TABLE a ADD COLUMN n int CHECK (n > 0)",
    ] {
        assert_eq!(
            rules(sql, &expand(), 15),
            vec![Rule::ConstraintWithoutNotValid],
            "{sql}"
        );
    }
    for ok in [
        "ALTER TABLE a ADD COLUMN b_id bigint REFERENCES b (id)",
        "ALTER TABLE a ADD COLUMN b_id bigint DEFAULT NULL REFERENCES b (id)",
    ] {
        assert!(rules(ok, &expand(), 15).is_empty(), "{ok}");
    }
    let hit = run(
        "ALTER TABLE a ADD COLUMN b_id bigint DEFAULT 1 REFERENCES b (id)",
        &expand(),
        15,
    );
    insta::assert_snapshot!(format!("{}\nhelp: {}", hit[0].message, hit[0].help));
}

#[test]
fn add_column_inline_constraint_scans() {
    // An inline CHECK is checked against every row, an inline UNIQUE or
    // PRIMARY KEY builds its index, while the table is locked ACCESS
    // EXCLUSIVE. An inline REFERENCES on a column that starts NULL is not
    // checked row by row (measured on PostgreSQL 15: as fast as a plain ADD
    // COLUMN on 3M rows, where the inline CHECK read them all).
    let out = case(
        Rule::UniqueWithoutIndex,
        "ALTER TABLE a ADD COLUMN id2 bigint PRIMARY KEY",
        &[
            "ALTER TABLE a ADD COLUMN id2 bigint",
            "ALTER TABLE a ADD CONSTRAINT a_pkey PRIMARY KEY USING INDEX a_pkey",
            "CREATE TABLE t (id int); ALTER TABLE t ADD COLUMN id2 bigint PRIMARY KEY",
        ],
        &expand(),
        15,
    );
    insta::assert_snapshot!(out);
    for (sql, rule) in [
        (
            "ALTER TABLE a ADD COLUMN code text UNIQUE",
            Rule::UniqueWithoutIndex,
        ),
        (
            "ALTER TABLE a ADD COLUMN n int CHECK (n > 0)",
            Rule::ConstraintWithoutNotValid,
        ),
    ] {
        assert_eq!(rules(sql, &expand(), 15), vec![rule], "{sql}");
    }
}

#[test]
fn vacuum_full_switched_off_is_plain_vacuum() {
    for sql in [
        "VACUUM (FULL FALSE) t",
        "VACUUM (FULL off) t",
        "VACUUM (full 0, ANALYZE) t",
        "VACUUM (ANALYZE, FULL false) t",
    ] {
        assert!(
            !rules(sql, &file(), 15).contains(&Rule::VacuumFull),
            "{sql}"
        );
    }
    for sql in [
        "VACUUM (FULL) t",
        "VACUUM (FULL TRUE) t",
        "VACUUM (FULL on, ANALYZE) t",
        "VACUUM FULL t",
    ] {
        assert!(rules(sql, &file(), 15).contains(&Rule::VacuumFull), "{sql}");
    }
}

/// The fragment rule that fires on `bad` (and none on `good`), as printed.
fn fragment_case(
    rule: Rule,
    shape: fragments::Shape,
    field: &'static str,
    bad: &str,
    good: &[&str],
) -> String {
    let frag = |text: &str| fragments::Fragment {
        field,
        text: text.to_string(),
        shape,
    };
    let hit = fragments::check(&frag(bad)).unwrap_or_else(|| panic!("{bad} passed"));
    assert_eq!(hit.rule, rule, "{bad}: {hit:?}");
    for ok in good {
        assert_eq!(fragments::check(&frag(ok)), None, "{ok}");
    }
    format!(
        "{bad}\n\n{}: {}\nhelp: {}\n",
        hit.rule.name(),
        hit.message,
        hit.help
    )
}

#[test]
fn fragment_escapes() {
    let out = fragment_case(
        Rule::FragmentEscapes,
        fragments::Shape::Expression,
        "where",
        "v IS NULL) OR (true",
        &["v IS NULL OR (w > 0 AND note <> ')')"],
    );
    insta::assert_snapshot!(out);
    for bad in [
        "a = 1 WHERE true",
        "a = 1; DELETE FROM users",
        "a = 1 -- why",
    ] {
        let hit = fragments::check(&fragments::Fragment {
            field: "set",
            text: bad.into(),
            shape: fragments::Shape::Assignments,
        });
        assert_eq!(hit.map(|h| h.rule), Some(Rule::FragmentEscapes), "{bad}");
    }
}

#[test]
fn fragment_unparsable() {
    let out = fragment_case(
        Rule::FragmentUnparsable,
        fragments::Shape::Assignments,
        "set",
        "full_name first || last",
        &["full_name = first || ' ' || last, \"Nick\" = NULL"],
    );
    insta::assert_snapshot!(out);
    let hit = fragments::check(&fragments::Fragment {
        field: "where",
        text: "v IS".into(),
        shape: fragments::Shape::Expression,
    });
    assert_eq!(hit.map(|h| h.rule), Some(Rule::FragmentUnparsable));
}

#[test]
fn every_rule_is_tested_above() {
    // Keeps this file honest when a rule is added: each name appears in a
    // test function of the same name.
    let source = include_str!("tests.rs");
    for rule in Rule::ALL {
        let func = format!("fn {}()", rule.name().replace('-', "_"));
        assert!(
            source.contains(&func),
            "no test `{func}` for {}",
            rule.name()
        );
    }
}
