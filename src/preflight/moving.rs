//! The preflight of a plan that moves tables to another database: the
//! main database runs with `wal_level = logical` and the role may publish
//! the tables and replicate; every moved table has a primary key (its
//! replica identity); the other database is reachable, the role there may
//! create a subscription, and any table already there is empty (unless
//! this plan's move is already under way).

use super::{Item, Level};
use crate::db::databases::Databases;
use crate::db::{Conn, Target};
use crate::plan::LoadedPlan;
use crate::plan::model::Step;
use crate::statements::replication as sql;

/// The main database's side: (wal_level, superuser, replication, CREATE
/// on the database).
const SOURCE: &str = "SELECT current_setting('wal_level'), r.rolsuper, r.rolreplication,
       has_database_privilege(current_database(), 'CREATE')
     FROM pg_roles r WHERE r.rolname = current_user";

/// A table: (exists, has a primary key, the role owns it (or is superuser)).
const TABLE: &str = "SELECT to_regclass($1) IS NOT NULL,
       EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'),
       coalesce((SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass($1)), false)
         OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)";

/// A move of this plan under way: a publication of a run of it carries
/// the table, or its switchover froze it (`$1` the table as the plan
/// names it, `$2` the name pattern). Compared as regclass: the plan may
/// leave out the schema.
const UNDER_WAY: &str = "SELECT EXISTS (SELECT 1 FROM pg_publication_tables
       WHERE pubname LIKE $2 AND format('%I.%I', schemaname, tablename)::regclass = to_regclass($1))
     OR EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $3)";

/// The other database's side: may the role create a subscription there.
const OTHER: &str = "SELECT rolsuper OR (current_setting('server_version_num')::int >= 160000
       AND pg_has_role(current_user, 'pg_create_subscription', 'USAGE'))
     FROM pg_roles WHERE rolname = current_user";

fn item(level: Level, subject: impl Into<String>, message: impl Into<String>) -> Item {
    Item {
        level,
        subject: subject.into(),
        message: message.into(),
    }
}

/// The items of a move; none when the plan moves nothing.
pub async fn check(loaded: &LoadedPlan, main: &Target, databases: &Databases) -> Vec<Item> {
    let moves: Vec<(&str, &[String])> = loaded
        .plan
        .phases
        .iter()
        .flat_map(|p| p.steps.iter())
        .filter_map(|s| match s.get_ref() {
            Step::Replicate(r) => Some((r.to.as_str(), r.tables.as_slice())),
            _ => None,
        })
        .collect();
    if moves.is_empty() {
        return Vec::new();
    }
    let mut items = Vec::new();
    let source = match Conn::connect(main).await {
        Ok(c) => c,
        Err(e) => return vec![item(Level::Error, "main database", e.to_string())],
    };
    match source.client.query_one(SOURCE, &[]).await {
        Ok(r) => {
            let (wal, superuser, replication, create): (String, bool, bool, bool) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            if wal != "logical" {
                items.push(item(
                    Level::Error,
                    "wal_level",
                    format!(
                        "the main database runs with wal_level = {wal}; moving tables needs \
                         logical: ALTER SYSTEM SET wal_level = logical, then restart the server"
                    ),
                ));
            }
            if !superuser && !replication {
                items.push(item(
                    Level::Error,
                    "replication privilege",
                    "the subscription connects to the main database as this role, which needs \
                     REPLICATION (ALTER ROLE … REPLICATION)",
                ));
            }
            if !superuser && !create {
                items.push(item(
                    Level::Error,
                    "publication",
                    "creating the publication needs CREATE on the main database",
                ));
            }
        }
        Err(e) => items.push(item(Level::Error, "main database", e.to_string())),
    }
    for (database, tables) in moves {
        let listed: Vec<String> = if tables.iter().any(|t| t == "*") {
            match source.client.query(sql::ALL_TABLES, &[]).await {
                Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
                Err(e) => {
                    items.push(item(Level::Error, "tables", e.to_string()));
                    Vec::new()
                }
            }
        } else {
            tables
                .iter()
                .map(|t| crate::db::quote_qualified(t))
                .collect()
        };
        let pattern = format!("cutover\\_move\\_%\\_{}", database.replace('_', "\\_"));
        let mut fresh = Vec::new();
        for table in &listed {
            let subject = format!("replicate {table}");
            match source.client.query_one(TABLE, &[table]).await {
                Ok(r) => {
                    let (exists, pk, owns): (bool, bool, bool) = (r.get(0), r.get(1), r.get(2));
                    if !exists {
                        continue; // the catalog check names it
                    }
                    if !pk {
                        items.push(item(
                            Level::Error,
                            subject.clone(),
                            "no primary key: logical replication needs one (the replica \
                             identity) to carry updates and deletes",
                        ));
                    }
                    if !owns {
                        items.push(item(
                            Level::Error,
                            subject.clone(),
                            "the role does not own the table; publishing it needs ownership",
                        ));
                    }
                }
                Err(e) => items.push(item(Level::Error, subject.clone(), e.to_string())),
            }
            let under_way = source
                .client
                .query_one(UNDER_WAY, &[table, &pattern, &sql::FREEZE_TRIGGER])
                .await
                .map(|r| r.get::<_, bool>(0))
                .unwrap_or(false);
            if !under_way {
                fresh.push(table.clone());
            }
        }
        items.extend(check_other(databases, database, &fresh).await);
    }
    items
}

async fn check_other(databases: &Databases, database: &str, fresh: &[String]) -> Vec<Item> {
    let subject = format!("database {database}");
    let Some(target) = databases.get(database) else {
        return vec![item(
            Level::Error,
            subject,
            format!(
                "no URL: pass --database {database}=URL or set {}",
                crate::db::databases::env_var(database)
            ),
        )];
    };
    let other = match Conn::connect(target).await {
        Ok(c) => c,
        Err(e) => return vec![item(Level::Error, subject, e.to_string())],
    };
    let mut items = vec![item(
        Level::Info,
        subject.clone(),
        format!("reachable at {}", target.display()),
    )];
    match other.client.query_one(OTHER, &[]).await {
        Ok(r) if r.get::<_, Option<bool>>(0) == Some(true) => {}
        Ok(_) => items.push(item(
            Level::Error,
            subject.clone(),
            "creating the subscription needs a superuser here (or, from PostgreSQL 16, a \
             member of pg_create_subscription)",
        )),
        Err(e) => items.push(item(Level::Error, subject.clone(), e.to_string())),
    }
    for table in fresh {
        let q = format!("SELECT EXISTS (SELECT 1 FROM {table})");
        let exists = other
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[table])
            .await;
        let filled = match exists {
            Ok(r) if r.get::<_, bool>(0) => other
                .client
                .query_one(&q, &[])
                .await
                .map(|r| r.get::<_, bool>(0))
                .unwrap_or(false),
            _ => false,
        };
        if filled {
            items.push(item(
                Level::Error,
                format!("{table} on {database}"),
                "already holds rows; the initial copy would clash with them. Empty or drop it",
            ));
        }
    }
    items
}
