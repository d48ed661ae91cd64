//! The adapter's own tests: statements split, described and classified.

use super::*;

fn one(sql: &str) -> Kind {
    let stmts = parse(sql);
    assert_eq!(stmts.len(), 1, "{sql}: {stmts:?}");
    stmts
        .into_iter()
        .next()
        .map(|s| s.kind)
        .unwrap_or(Kind::Read)
}

#[test]
fn statements_split_with_offsets_and_without_semicolons() {
    let sql = "CREATE INDEX CONCURRENTLY i ON public.\"Users\" (email);\n  update users set a = 1";
    let stmts = parse(sql);
    assert_eq!(stmts.len(), 2);
    assert_eq!(stmts[0].offset, 0);
    assert_eq!(
        stmts[0].text,
        "CREATE INDEX CONCURRENTLY i ON public.\"Users\" (email)"
    );
    assert_eq!(
        stmts[0].kind,
        Kind::CreateIndex {
            table: Rel {
                schema: Some("public".into()),
                name: "Users".into()
            },
            concurrently: true
        }
    );
    assert_eq!(&sql[stmts[1].offset..stmts[1].offset + 6], "update");
    assert_eq!(
        stmts[1].kind,
        Kind::Update {
            table: Rel::from_sql("users"),
            has_where: false
        }
    );
}

#[test]
fn text_the_grammar_rejects_is_kept_as_unparsed() {
    let stmts = parse("this is not sql; SELECT 1");
    assert_eq!(stmts.len(), 2, "{stmts:?}");
    assert!(matches!(stmts[0].kind, Kind::Unparsed { .. }));
    assert_eq!(stmts[0].text, "this is not sql");
    assert_eq!(stmts[1].kind, Kind::Read);
    let stmts = parse("ALTER TABLE users ADD COLUMN");
    assert!(matches!(stmts[0].kind, Kind::Unparsed { .. }), "{stmts:?}");
}

#[test]
fn alter_table_actions_are_described() {
    let Kind::AlterTable { table, actions } = one(
        "ALTER TABLE Users ADD COLUMN x int DEFAULT random() NOT NULL, \
         ADD CONSTRAINT c CHECK (x > 0) NOT VALID, ALTER COLUMN y TYPE bigint USING y::bigint, \
         ADD CONSTRAINT u UNIQUE USING INDEX u_idx",
    ) else {
        panic!("not an ALTER TABLE")
    };
    assert_eq!(table, Rel::from_sql("users"));
    assert_eq!(
        actions[0],
        Action::AddColumn {
            column: "x".into(),
            ty: "int".into(),
            default: Some(("random()".into(), true)),
            not_null: true,
            generated: false,
            constraints: vec![],
            references: None,
        }
    );
    assert!(matches!(
        &actions[1],
        Action::AddConstraint { kind: ConstraintKind::Check, not_valid: true, name: Some(n), .. } if n == "c"
    ));
    assert_eq!(
        actions[2],
        Action::SetType {
            column: "y".into(),
            ty: "bigint".into(),
            using: true
        }
    );
    assert!(matches!(
        &actions[3],
        Action::AddConstraint {
            kind: ConstraintKind::Unique,
            using_index: true,
            ..
        }
    ));
}

#[test]
fn defaults_are_volatile_only_when_a_call_may_be() {
    let default_of = |sql: &str| match one(sql) {
        Kind::AlterTable { actions, .. } => match &actions[0] {
            Action::AddColumn { default, .. } => default.clone().map(|d| d.1),
            _ => None,
        },
        _ => None,
    };
    assert_eq!(
        default_of("ALTER TABLE t ADD COLUMN a int DEFAULT 0"),
        Some(false)
    );
    assert_eq!(
        default_of("ALTER TABLE t ADD COLUMN a timestamptz DEFAULT now()"),
        Some(false)
    );
    assert_eq!(
        default_of("ALTER TABLE t ADD COLUMN a text DEFAULT lower('X') || 'y'"),
        Some(false)
    );
    assert_eq!(
        default_of("ALTER TABLE t ADD COLUMN a uuid DEFAULT gen_random_uuid()"),
        Some(true)
    );
    assert_eq!(
        default_of("ALTER TABLE t ADD COLUMN a int DEFAULT my_function()"),
        Some(true)
    );
    assert_eq!(
        default_of("ALTER TABLE t ADD COLUMN a bigserial"),
        Some(true)
    );
    assert_eq!(default_of("ALTER TABLE t ADD COLUMN a int"), None);
}

#[test]
fn autocommit_statements_are_known_from_the_grammar() {
    let auto = |sql: &str| parse(sql).iter().any(Statement::needs_autocommit);
    assert!(auto("CREATE INDEX CONCURRENTLY i ON t (c)"));
    assert!(auto("drop index concurrently i"));
    assert!(auto("REINDEX INDEX CONCURRENTLY i"));
    assert!(auto("VACUUM (ANALYZE) users"));
    assert!(auto("vacuum users"));
    assert!(auto("CREATE DATABASE x"));
    assert!(auto("DROP DATABASE x"));
    assert!(auto(
        "ALTER TABLE measurements DETACH PARTITION measurements_2020 CONCURRENTLY"
    ));
    assert!(auto("alter table m detach partition p concurrently;"));
    assert!(!auto("ALTER TABLE m DETACH PARTITION p"));
    assert!(!auto("ALTER TABLE m DETACH PARTITION p FINALIZE"));
    assert!(!auto("CREATE INDEX i ON t (c)"));
    assert!(!auto("SELECT 'concurrently'"));
    assert!(!auto("ALTER TABLE users ADD COLUMN c int"));
}

#[test]
fn other_statements_keep_their_leading_words() {
    assert_eq!(
        one(
            "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
        ),
        Kind::Other {
            what: "CREATE FUNCTION".into()
        }
    );
    assert_eq!(
        one("ALTER SEQUENCE users_id_seq OWNED BY users_v2.id"),
        Kind::Other {
            what: "ALTER SEQUENCE".into()
        }
    );
    assert_eq!(
        one("DROP TRIGGER t ON public.users"),
        Kind::DropTrigger {
            table: Some(Rel::from_sql("public.users"))
        }
    );
    assert_eq!(
        one("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"),
        Kind::Lock {
            tables: vec![Rel::from_sql("users")],
            mode: "SHARE ROW EXCLUSIVE".into()
        }
    );
}

#[test]
fn the_forms_of_issue_24_are_described() {
    assert_eq!(
        one("TRUNCATE a, b CASCADE"),
        Kind::Truncate {
            tables: vec![Rel::from_sql("a"), Rel::from_sql("b")],
            cascade: true
        }
    );
    assert!(matches!(
        one("REFRESH MATERIALIZED VIEW CONCURRENTLY v"),
        Kind::Refresh {
            concurrently: true,
            ..
        }
    ));
    assert!(matches!(
        one("ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0) NOT VALID"),
        Kind::AlterDomain {
            action: DomainAction::AddConstraint {
                not_valid: true,
                ..
            },
            ..
        }
    ));
    assert!(matches!(
        one("CREATE DOMAIN d AS int CHECK (VALUE > 0)"),
        Kind::CreateDomain { check: true, .. }
    ));
    assert_eq!(
        one("DROP SCHEMA s CASCADE"),
        Kind::DropSchema {
            schemas: vec!["s".into()],
            cascade: true
        }
    );
    let Kind::AlterTable { actions, .. } = one(
        "ALTER TABLE m ATTACH PARTITION p FOR VALUES IN (1), SET TABLESPACE t, \
         ALTER COLUMN c DROP DEFAULT, ALTER COLUMN c DROP NOT NULL",
    ) else {
        panic!("not an ALTER TABLE")
    };
    assert_eq!(
        actions,
        vec![
            Action::AttachPartition {
                partition: Rel::from_sql("p")
            },
            Action::SetTablespace,
            Action::DropDefault { column: "c".into() },
            Action::DropNotNull { column: "c".into() },
        ]
    );
    for (sql, full) in [
        ("VACUUM (FULL FALSE) t", false),
        ("VACUUM (FULL off) t", false),
        ("VACUUM (FULL) t", true),
        ("VACUUM (ANALYZE, FULL true) t", true),
    ] {
        assert!(
            matches!(one(sql), Kind::Vacuum { full: f, .. } if f == full),
            "{sql}"
        );
    }
}

#[test]
fn inline_references_name_their_table() {
    let Kind::CreateTable { references, .. } =
        one("CREATE TABLE o (id int, user_id bigint REFERENCES public.users (id))")
    else {
        panic!("not a CREATE TABLE")
    };
    assert_eq!(references, vec![Rel::from_sql("public.users")]);
    let Kind::AlterTable { actions, .. } =
        one("ALTER TABLE o ADD COLUMN u bigint DEFAULT 1 REFERENCES users (id)")
    else {
        panic!("not an ALTER TABLE")
    };
    assert!(matches!(
        &actions[0],
        Action::AddColumn { references: Some(r), .. } if *r == Rel::from_sql("users")
    ));
}
